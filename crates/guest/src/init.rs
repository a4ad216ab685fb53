//! The default initramfs: busybox, a small `/init` script, and hooks for tests.
//!
//! Boot protocol between the host and this `/init` (tests rely on it):
//! - Without `rewind.run=` on the kernel command line, `/init` prints
//!   [`READY_MARKER`] on its own line and runs an interactive busybox shell on
//!   the console with job control; when the shell exits the machine powers off.
//! - With `rewind.run=<path>`, it runs that program instead (with the console
//!   as its controlling terminal), then prints [`EXIT_STATUS_PREFIX`] followed
//!   by the exit status (e.g. `Rewind: exit status 0`) and powers off.
//!   The kernel keeps dotted parameters such as `rewind.run` out of init's
//!   arguments and environment, so `/init` reads them from `/proc/cmdline`.

use crate::cpio::Initramfs;

/// Printed by the default `/init` just before the interactive shell starts.
pub const READY_MARKER: &str = "Rewind: busybox shell ready";

/// Printed by the default `/init`, followed by a decimal number, after the
/// `rewind.run=` program exits.
pub const EXIT_STATUS_PREFIX: &str = "Rewind: exit status ";

/// The kernel command-line parameter naming a program for `/init` to run instead of a shell.
pub const RUN_PARAM: &str = "rewind.run";

/// A kernel command line that suits the default guest on the QEMU-`virt`
/// compatible board: the console on the first NS16550A UART.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0";

/// The default `/init`, run by busybox `sh` as PID 1.
pub const DEFAULT_INIT: &str = r#"#!/bin/sh
# Rewind's default /init (PID 1), run by busybox sh. See crates/guest/src/init.rs.
# Applet links first: until then only /bin/busybox and /bin/sh exist.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
hostname rewind

run=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        rewind.run=*) run="${arg#rewind.run=}" ;;
    esac
done

if [ -n "$run" ]; then
    setsid cttyhack "$run"
    echo "Rewind: exit status $?"
else
    echo "Rewind: busybox shell ready"
    PS1='rewind:\w\$ ' setsid cttyhack sh
fi
poweroff -f
"#;

/// The skeleton of the default initramfs, for callers that want to add more
/// (files with [`Initramfs::add_file`], or a new `/init`) before [`Initramfs::finish`]:
/// standard directories, `/dev/console` (5:1, needed before devtmpfs is
/// mounted, since the kernel opens it for init's stdin/stdout/stderr),
/// `/bin/busybox` with `/bin/sh` linking to it, minimal `/etc/passwd` and
/// `/etc/group`, and [`DEFAULT_INIT`] as `/init`.
pub fn busybox_initramfs(busybox: &[u8]) -> Initramfs {
    let mut fs = Initramfs::new();
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "mnt",
    ] {
        fs.add_dir(dir, 0o755);
    }
    fs.add_dir("root", 0o700)
        .add_dir("tmp", 0o1777)
        .add_char_device("dev/console", 5, 1, 0o600)
        .add_file("bin/busybox", busybox, 0o755)
        .add_symlink("bin/sh", "busybox")
        .add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        .add_file("etc/group", b"root:x:0:\n", 0o644)
        .add_file("init", DEFAULT_INIT.as_bytes(), 0o755);
    fs
}

/// The default initramfs as bytes: [`busybox_initramfs`] plus `extra` files,
/// each `(path, contents, permission bits)`. Parent directories are created as
/// needed, and an extra file at `/init` replaces the default script.
pub fn default_initramfs(busybox: &[u8], extra: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    let mut fs = busybox_initramfs(busybox);
    for (path, data, mode) in extra {
        fs.add_file(path, data, *mode);
    }
    fs.finish()
}

/// Finds the last `Rewind: exit status N` line in console output.
pub fn parse_exit_status(console: &str) -> Option<i32> {
    console.lines().rev().find_map(|line| {
        let rest = line.trim_end_matches('\r');
        let i = rest.find(EXIT_STATUS_PREFIX)?;
        rest[i + EXIT_STATUS_PREFIX.len()..].trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::testing::parse;

    #[test]
    fn default_initramfs_has_console_busybox_and_init() {
        let bytes = default_initramfs(b"BUSYBOX", &[]);
        let members = parse(&bytes);
        let find = |name: &str| {
            members
                .iter()
                .find(|m| m.0 == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(
            (
                find("dev/console").1,
                find("dev/console").2,
                find("dev/console").3
            ),
            (0o020_600, 5, 1)
        );
        assert_eq!(
            (find("bin/busybox").1, &find("bin/busybox").6[..]),
            (0o100_755, &b"BUSYBOX"[..])
        );
        assert_eq!(
            (find("bin/sh").1, &find("bin/sh").6[..]),
            (0o120_777, &b"busybox"[..])
        );
        assert_eq!(
            (find("init").1, &find("init").6[..]),
            (0o100_755, DEFAULT_INIT.as_bytes())
        );
        assert_eq!(find("tmp").1, 0o041_777);
        for dir in ["proc", "sys", "dev", "usr/bin", "usr/sbin", "sbin"] {
            assert_eq!(find(dir).1 & 0o170_000, 0o040_000, "{dir}");
        }
    }

    #[test]
    fn extra_files_are_added_with_parents_and_can_replace_init() {
        let extra = vec![
            (
                "/opt/work/run.sh".to_string(),
                b"#!/bin/sh\nexit 3\n".to_vec(),
                0o755,
            ),
            (
                "/init".to_string(),
                b"#!/bin/sh\necho custom\n".to_vec(),
                0o755,
            ),
        ];
        let members = parse(&default_initramfs(b"BB", &extra));
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert!(
            names.ends_with(&["opt", "opt/work", "opt/work/run.sh"]),
            "{names:?}"
        );
        let init: Vec<_> = members.iter().filter(|m| m.0 == "init").collect();
        assert_eq!(init.len(), 1);
        assert_eq!(init[0].6, b"#!/bin/sh\necho custom\n");
    }

    #[test]
    fn init_script_prints_the_markers_tests_look_for() {
        assert!(DEFAULT_INIT.contains(&format!("echo \"{READY_MARKER}\"")));
        assert!(DEFAULT_INIT.contains(&format!("echo \"{EXIT_STATUS_PREFIX}$?\"")));
        assert!(DEFAULT_INIT.contains(&format!("{RUN_PARAM}=*) run=\"${{arg#{RUN_PARAM}=}}\"")));
        assert!(DEFAULT_INIT.trim_end().ends_with("poweroff -f"));
    }

    #[test]
    fn init_script_is_valid_shell_syntax() {
        // POSIX sh on the host parses the script without running it.
        let Ok(out) = std::process::Command::new("sh")
            .args(["-n", "-c", DEFAULT_INIT])
            .output()
        else {
            eprintln!("no sh on the host; skipping the syntax check");
            return;
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn exit_status_is_read_from_console_output() {
        let console = "[    1.0] Run /init as init process\r\nhello\r\nRewind: exit status 3\r\n[    1.2] reboot: Power down\r\n";
        assert_eq!(parse_exit_status(console), Some(3));
        assert_eq!(parse_exit_status("Rewind: busybox shell ready\n"), None);
    }
}

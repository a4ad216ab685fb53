//! The default initramfs: busybox, kernel modules, a small `/init` script,
//! and hooks for tests.
//!
//! Boot protocol between the host and this `/init` (tests rely on it):
//! - First it loads the kernel modules listed in `/etc/rewind-modules` (one
//!   path per line, in dependency order, written by [`modules_initramfs`]):
//!   the virtio-mmio transport, virtio-blk, virtio-net, virtio-rng, ext4 and
//!   what they need — when the device tree has virtio-mmio nodes, or always
//!   with `rewind.modules=yes`; `rewind.modules=no` skips this.
//! - With `root=<device>` on the kernel command line (`/dev/vda`, or
//!   `UUID=...`/`LABEL=...`), it waits for the device (up to `rootdelay=`
//!   seconds, default 10), mounts it on `/newroot` (type `rootfstype=`,
//!   default ext4; read-write unless `ro` is given; `rootflags=` adds
//!   options), prints [`SWITCH_ROOT_MARKER`] followed by the device, moves
//!   `/proc`, `/sys` and `/dev` there and `switch_root`s to `init=` (default
//!   `/sbin/init`). If that fails it prints [`ROOT_FAILED_MARKER`] and a reason
//!   and carries on as without `root=`.
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

/// Printed by the default `/init`, followed by the `root=` value, just before
/// it switches to the root file system.
pub const SWITCH_ROOT_MARKER: &str = "Rewind: switching to the root file system on ";

/// Printed by the default `/init`, followed by the reason, when `root=` was
/// given but the root file system could not be mounted or has no init.
pub const ROOT_FAILED_MARKER: &str = "Rewind: no root file system: ";

/// The kernel command-line parameter naming a program for `/init` to run instead of a shell.
pub const RUN_PARAM: &str = "rewind.run";

/// The kernel command-line parameter that, set to `no`, stops `/init` from
/// loading the kernel modules of the initramfs.
pub const MODULES_PARAM: &str = "rewind.modules";

/// Where the default initramfs lists the modules `/init` loads, in order.
pub const MODULE_LIST_PATH: &str = "/etc/rewind-modules";

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

run= modules=auto root= rootfstype=ext4 rootflags= rootmode=rw rootdelay=10 init=/sbin/init
set -f
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        rewind.run=*) run="${arg#rewind.run=}" ;;
        rewind.modules=*) modules="${arg#rewind.modules=}" ;;
        root=*) root="${arg#root=}" ;;
        rootfstype=*) rootfstype="${arg#rootfstype=}" ;;
        rootflags=*) rootflags="${arg#rootflags=}" ;;
        rootdelay=*) rootdelay="${arg#rootdelay=}" ;;
        init=*) init="${arg#init=}" ;;
        ro) rootmode=ro ;;
        rw) rootmode=rw ;;
    esac
done
set +f
case "$rootdelay" in ''|*[!0-9]*) rootdelay=10 ;; esac

# Kernel modules (virtio, ext4 and what they need), in dependency order.
# By default only when the machine has virtio-mmio devices: loading them
# costs seconds of guest time that a machine without them would waste.
# rewind.modules=yes loads them always, rewind.modules=no never.
if [ "$modules" = auto ]; then
    modules=no
    for node in /sys/firmware/devicetree/base/soc/virtio_mmio@*; do
        [ -e "$node" ] && modules=yes
    done
fi
if [ "$modules" != no ] && [ -f /etc/rewind-modules ]; then
    while read -r module; do
        insmod "$module" || echo "Rewind: could not load $module"
    done < /etc/rewind-modules
fi

# The device named by root=, once it exists.
root_device() {
    case "$1" in
        UUID=*|LABEL=*) findfs "$1" 2>/dev/null ;;
        *) [ -b "$1" ] && echo "$1" ;;
    esac
}

# Mounts root= on /newroot and switches to it; returns only on failure.
switch_to_root() {
    tries=$((rootdelay * 10))
    until dev=$(root_device "$root"); do
        if [ "$tries" -le 0 ]; then
            echo "Rewind: no root file system: $root did not appear"
            return 1
        fi
        tries=$((tries - 1))
        sleep 0.1
    done
    mkdir -p /newroot
    if ! mount -t "$rootfstype" -o "$rootmode${rootflags:+,$rootflags}" "$dev" /newroot; then
        echo "Rewind: no root file system: cannot mount $dev as $rootfstype"
        return 1
    fi
    # -L too: an absolute symbolic link only resolves inside the new root.
    if [ ! -x "/newroot$init" ] && [ ! -L "/newroot$init" ]; then
        echo "Rewind: no root file system: $root has no $init"
        umount /newroot
        return 1
    fi
    echo "Rewind: switching to the root file system on $root"
    for fs in dev proc sys; do
        mount --move "/$fs" "/newroot/$fs" 2>/dev/null || umount -l "/$fs"
    done
    exec switch_root /newroot "$init"
}

if [ -n "$root" ]; then
    switch_to_root
fi

if [ -n "$run" ]; then
    # The program runs under a shell that leads its session: when a session
    # leader exits, the kernel hangs up its terminal and drops output not yet
    # sent, so that shell first waits for the output to drain (stty setting
    # the settings it read waits until everything is sent).
    setsid cttyhack sh -c '"$0"; s=$?; stty "$(stty -g)" 2>/dev/null; exit $s' "$run"
    echo "Rewind: exit status $?"
else
    echo "Rewind: busybox shell ready"
    PS1='rewind:\w\$ ' setsid cttyhack sh
fi
stty "$(stty -g)" 2>/dev/null
poweroff -f
"#;

/// The skeleton of the default initramfs, for callers that want to add more
/// (files with [`Initramfs::add_file`], or a new `/init`) before [`Initramfs::finish`]:
/// standard directories, `/dev/console` (5:1, needed before devtmpfs is
/// mounted, since the kernel opens it for init's stdin/stdout/stderr),
/// `/bin/busybox` with `/bin/sh` linking to it, minimal `/etc/passwd` and
/// `/etc/group`, and [`DEFAULT_INIT`] as `/init`. It has no kernel modules;
/// [`modules_initramfs`] adds them.
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

/// The default initramfs as bytes, without kernel modules:
/// [`busybox_initramfs`] plus `extra` files, each `(path, contents, permission
/// bits)`. Parent directories are created as needed, and an extra file at
/// `/init` replaces the default script.
pub fn default_initramfs(busybox: &[u8], extra: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    modules_initramfs(busybox, &KernelModules::default(), extra)
}

/// Kernel modules for an initramfs, uncompressed, as the guest cache holds
/// them (see [`crate::default_guest_initramfs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelModules {
    /// The kernel's `uname -r`; the files go under `/lib/modules/<version>/`.
    pub kernel_version: String,
    /// The modules to load, in load order (each after what it depends on):
    /// `(path relative to /lib/modules/<version>/, contents)`, e.g.
    /// `kernel/fs/ext4/ext4.ko`.
    pub modules: Vec<(String, Vec<u8>)>,
    /// Other files for `/lib/modules/<version>/`: `modules.dep` and
    /// `modules.alias` for the modules above, so that busybox `modprobe`
    /// (which the kernel runs to load a module on demand) finds them.
    pub index_files: Vec<(String, Vec<u8>)>,
}

impl KernelModules {
    /// Total size of the files in bytes.
    pub fn size(&self) -> usize {
        self.modules
            .iter()
            .chain(&self.index_files)
            .map(|(_, d)| d.len())
            .sum()
    }
}

/// The default initramfs with kernel modules, as bytes: [`busybox_initramfs`],
/// the files of `modules` under `/lib/modules/<version>/`, the list
/// [`MODULE_LIST_PATH`] that `/init` loads them from (absent when there are no
/// modules), then `extra` files as in [`default_initramfs`].
///
/// # Panics
/// If a module path is not a plain relative path (the cache checks them).
pub fn modules_initramfs(
    busybox: &[u8],
    modules: &KernelModules,
    extra: &[(String, Vec<u8>, u32)],
) -> Vec<u8> {
    let mut fs = busybox_initramfs(busybox);
    if !modules.modules.is_empty() {
        let dir = format!("lib/modules/{}", modules.kernel_version);
        let mut list = String::new();
        for (path, data) in &modules.modules {
            fs.add_file(&format!("{dir}/{path}"), data, 0o644);
            list.push_str(&format!("/{dir}/{path}\n"));
        }
        for (path, data) in &modules.index_files {
            fs.add_file(&format!("{dir}/{path}"), data, 0o644);
        }
        fs.add_file(MODULE_LIST_PATH, list.as_bytes(), 0o644);
    }
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
        assert!(DEFAULT_INIT.contains(&format!("echo \"{SWITCH_ROOT_MARKER}$root\"")));
        assert_eq!(
            DEFAULT_INIT
                .matches(&format!("echo \"{ROOT_FAILED_MARKER}"))
                .count(),
            3
        );
        assert!(DEFAULT_INIT.contains(&format!("{RUN_PARAM}=*) run=\"${{arg#{RUN_PARAM}=}}\"")));
        assert!(DEFAULT_INIT.contains(&format!(
            "{MODULES_PARAM}=*) modules=\"${{arg#{MODULES_PARAM}=}}\""
        )));
        assert!(DEFAULT_INIT.contains(&format!("done < {MODULE_LIST_PATH}\n")));
        assert!(DEFAULT_INIT.trim_end().ends_with("poweroff -f"));
    }

    #[test]
    fn modules_go_under_lib_modules_and_are_listed_in_order() {
        let modules = KernelModules {
            kernel_version: "6.12-test".into(),
            modules: vec![
                ("kernel/fs/jbd2/jbd2.ko".into(), b"JBD2".to_vec()),
                ("kernel/fs/ext4/ext4.ko".into(), b"EXT4".to_vec()),
            ],
            index_files: vec![("modules.dep".into(), b"dep".to_vec())],
        };
        assert_eq!(modules.size(), 11);
        let extra = vec![("/opt/x".to_string(), b"x".to_vec(), 0o755)];
        let members = parse(&modules_initramfs(b"BB", &modules, &extra));
        let get = |name: &str| {
            members
                .iter()
                .find(|m| m.0 == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(
            get("lib/modules/6.12-test/kernel/fs/ext4/ext4.ko").6,
            b"EXT4"
        );
        assert_eq!(get("lib/modules/6.12-test/modules.dep").6, b"dep");
        assert_eq!(
            get("lib/modules/6.12-test/kernel/fs/jbd2/jbd2.ko").1,
            0o100_644
        );
        assert_eq!(
            get("etc/rewind-modules").6,
            b"/lib/modules/6.12-test/kernel/fs/jbd2/jbd2.ko\n/lib/modules/6.12-test/kernel/fs/ext4/ext4.ko\n"
        );
        assert_eq!(get("opt/x").6, b"x");
        // Without modules there is no list, and the result is the plain initramfs.
        assert_eq!(
            modules_initramfs(b"BB", &KernelModules::default(), &extra),
            default_initramfs(b"BB", &extra)
        );
        assert!(!parse(&default_initramfs(b"BB", &[]))
            .iter()
            .any(|m| m.0 == "etc/rewind-modules" || m.0.starts_with("lib")));
    }

    /// Runs `DEFAULT_INIT`'s command-line parsing and root-device logic with
    /// the host's sh, with stand-ins for the commands that need a guest.
    #[test]
    fn init_script_parses_the_command_line_and_falls_back_without_a_root_device() {
        let dir = std::env::temp_dir().join(format!("rewind-guest-init-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Everything before the module loading, with /proc/cmdline replaced,
        // then the root functions, then a report of what was parsed.
        let parse_end = DEFAULT_INIT.find("# Kernel modules").unwrap();
        let parse_start = DEFAULT_INIT.find("run= modules=").unwrap();
        let funcs_start = DEFAULT_INIT.find("# The device named by root=").unwrap();
        let funcs_end = DEFAULT_INIT.find("if [ -n \"$root\" ]").unwrap();
        let cmdline = dir.join("cmdline");
        let parse = DEFAULT_INIT[parse_start..parse_end]
            .replace("/proc/cmdline", &cmdline.display().to_string());
        let funcs = &DEFAULT_INIT[funcs_start..funcs_end];
        let report = "echo \"run=$run modules=$modules root=$root type=$rootfstype mode=$rootmode flags=$rootflags delay=$rootdelay init=$init\"";
        let run = |line: &str, then: &str| {
            std::fs::write(&cmdline, line).unwrap();
            let script = format!("{parse}{funcs}\n{then}\n{report}\n");
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .current_dir(&dir)
                .output()
                .ok()?;
            assert!(
                out.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let Some(out) = run(
            "console=ttyS0 root=/nonexistent/vda rootdelay=0 ro rootflags=noatime init=/bin/sh rewind.modules=no rewind.run=/x *\n",
            "switch_to_root; echo \"status=$?\"",
        ) else {
            eprintln!("no sh on the host; skipping");
            return;
        };
        assert_eq!(
            out,
            format!(
                "{ROOT_FAILED_MARKER}/nonexistent/vda did not appear\nstatus=1\n\
                 run=/x modules=no root=/nonexistent/vda type=ext4 mode=ro flags=noatime delay=0 init=/bin/sh\n"
            )
        );
        // Defaults, and a rootdelay that is not a number.
        let out = run("console=ttyS0 rootdelay=1;reboot\n", "").unwrap();
        assert_eq!(
            out,
            "run= modules=auto root= type=ext4 mode=rw flags= delay=10 init=/sbin/init\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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

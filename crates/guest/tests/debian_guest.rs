//! End-to-end checks of the default guest against the real Debian archive, and
//! boots of it on QEMU (the reference machine Rewind's board imitates).
//!
//! They need the network (and, for the boots, `qemu-system-riscv64`; for the
//! virtio disk tests also `mke2fs` and `debugfs` from e2fsprogs), so they are
//! ignored by default. Run them with
//!
//!     cargo test -p rewind-guest -- --ignored --test-threads 1
//!
//! The cache is `$REWIND_GUEST_TEST_CACHE`, or `rewind-guest-e2e` in the
//! temporary directory; it is kept between runs so that only the first fetches.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rewind_guest::{
    default_guest, default_guest_initramfs, default_guest_modules, default_initramfs,
    detect_kernel_format, parse_exit_status, GuestFiles, KernelFormat, DEFAULT_CMDLINE,
    READY_MARKER, ROOT_FAILED_MARKER, SWITCH_ROOT_MARKER,
};

fn test_cache() -> PathBuf {
    std::env::var_os("REWIND_GUEST_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("rewind-guest-e2e"))
}

fn guest() -> GuestFiles {
    default_guest(&test_cache(), &mut |m| eprintln!("{m}")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs the network: fetches about 113 MB from the Debian archive"]
fn fetches_debians_kernel_busybox_and_opensbi() {
    let mut messages = Vec::new();
    let files = default_guest(&test_cache(), &mut |m| {
        eprintln!("{m}");
        messages.push(m.to_string());
    })
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{files:#?}");

    let kernel = std::fs::read(&files.kernel).unwrap();
    let format = detect_kernel_format(&kernel).unwrap();
    eprintln!("kernel: {} bytes, {}", kernel.len(), format.describe());
    assert!(
        matches!(format, KernelFormat::Image(h) if h.text_offset == 0x20_0000 && h.image_size >= kernel.len() as u64)
    );
    assert!(
        files.kernel_version.ends_with("-riscv64"),
        "{}",
        files.kernel_version
    );

    let firmware = std::fs::read(&files.firmware).unwrap();
    assert!(
        firmware.len() > 100_000 && firmware.len() < 4 << 20,
        "fw_dynamic.bin is {} bytes",
        firmware.len()
    );
    let initrd = std::fs::read(&files.initrd).unwrap();
    assert!(
        initrd.starts_with(b"070701"),
        "initrd is a newc cpio archive"
    );

    // The second call is a silent cache hit with the same answer.
    let mut again = Vec::new();
    let files2 = default_guest(&test_cache(), &mut |m| again.push(m.to_string())).unwrap();
    assert_eq!(files, files2);
    assert!(again.is_empty(), "{again:?}");
    let manifest =
        std::fs::read_to_string(files.kernel.parent().unwrap().join("manifest.txt")).unwrap();
    eprintln!("{manifest}");
}

/// QEMU with the console on stdio (for interactive tests), its output
/// collected as it comes, or on a file.
struct Qemu {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    /// Where the serial output goes instead of stdout.
    serial_file: Option<PathBuf>,
}

impl Qemu {
    /// `None` when QEMU is not installed.
    fn boot(files: &GuestFiles, initrd: &Path, cmdline: &str) -> Option<Qemu> {
        Self::spawn(files, initrd, cmdline, &[], None)
    }

    /// A guest that needs no input, with more QEMU arguments (devices). The
    /// serial port goes to `serial_file`: on a pipe that is full, QEMU holds
    /// bytes back and may drop them, which lost lines on a loaded machine.
    fn boot_with(
        files: &GuestFiles,
        initrd: &Path,
        cmdline: &str,
        extra: &[String],
        serial_file: &Path,
    ) -> Option<Qemu> {
        let _ = std::fs::remove_file(serial_file);
        Self::spawn(files, initrd, cmdline, extra, Some(serial_file))
    }

    fn spawn(
        files: &GuestFiles,
        initrd: &Path,
        cmdline: &str,
        extra: &[String],
        serial_file: Option<&Path>,
    ) -> Option<Qemu> {
        let serial = match serial_file {
            Some(f) => format!("file:{}", f.display()),
            None => "stdio".to_string(),
        };
        let mut child = Command::new("qemu-system-riscv64")
            .args([
                "-M", "virt", "-m", "512M", "-smp", "2", "-display", "none", "-monitor", "none",
            ])
            .args(["-serial", &serial])
            .args(["-no-reboot", "-bios"])
            .arg(&files.firmware)
            .arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", cmdline])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&output);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Some(Qemu {
            child,
            output,
            serial_file: serial_file.map(Path::to_path_buf),
        })
    }

    fn text(&self) -> String {
        match &self.serial_file {
            Some(f) => String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned(),
            None => String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned(),
        }
    }

    /// Waits up to `seconds` for `needle` in the output.
    fn wait_for(&mut self, needle: &str, seconds: u64) -> bool {
        for _ in 0..seconds * 10 {
            if self.text().contains(needle) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.text().contains(needle);
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Waits up to `seconds` for QEMU to exit (the guest powered off).
    fn wait_exit(&mut self, seconds: u64) -> bool {
        for _ in 0..seconds * 10 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs the network and qemu-system-riscv64"]
fn default_guest_boots_to_an_interactive_shell_on_qemu() {
    let files = guest();
    let Some(mut qemu) = Qemu::boot(&files, &files.initrd, DEFAULT_CMDLINE) else {
        eprintln!("qemu-system-riscv64 is not installed; skipping");
        return;
    };
    assert!(
        qemu.wait_for(READY_MARKER, 300),
        "no ready marker:\n{}",
        qemu.text()
    );
    let stdin = qemu.child.stdin.as_mut().unwrap();
    // Job control works only with a controlling terminal; `$-` contains `m` then.
    stdin
        .write_all(b"echo answer=$((6*7)) flags=$- tty=$(tty)\nexit\n")
        .unwrap();
    stdin.flush().unwrap();
    assert!(qemu.wait_for("answer=42", 60), "{}", qemu.text());
    assert!(
        qemu.wait_exit(60),
        "the machine did not power off after `exit`:\n{}",
        qemu.text()
    );
    let text = qemu.text();
    eprintln!("{text}");
    let line = text.lines().find(|l| l.starts_with("answer=42")).unwrap();
    assert!(
        line.contains("tty=/dev/ttyS0"),
        "the shell has the console as its terminal: {line}"
    );
    assert!(
        line.split("flags=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .contains('m'),
        "job control: {line}"
    );
}

#[test]
#[ignore = "needs the network and qemu-system-riscv64"]
fn a_workload_runs_instead_of_the_shell_and_its_exit_status_is_printed() {
    let files = guest();
    let busybox = std::fs::read(files.kernel.parent().unwrap().join("busybox")).unwrap();
    let script = b"#!/bin/sh\necho \"hello from the workload on $(uname -r)\"\nexit 3\n".to_vec();
    let initrd_bytes = default_initramfs(&busybox, &[("/opt/workload".to_string(), script, 0o755)]);
    let initrd = test_cache().join("workload-initramfs.cpio");
    std::fs::write(&initrd, initrd_bytes).unwrap();
    let cmdline = format!("{DEFAULT_CMDLINE} rewind.run=/opt/workload");
    let serial = test_cache().join("workload-serial.txt");
    let Some(mut qemu) = Qemu::boot_with(&files, &initrd, &cmdline, &[], &serial) else {
        eprintln!("qemu-system-riscv64 is not installed; skipping");
        return;
    };
    assert!(
        qemu.wait_exit(300),
        "the machine did not power off:\n{}",
        qemu.text()
    );
    let text = qemu.text();
    eprintln!("{text}");
    assert!(
        text.contains(&format!(
            "hello from the workload on {}",
            files.kernel_version
        )),
        "{text}"
    );
    assert_eq!(parse_exit_status(&text), Some(3));
    assert!(!text.contains(READY_MARKER));
}

/// `program` from PATH or the sbin directories (e2fsprogs lives in /usr/sbin).
fn tool(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A scratch directory under the test cache, emptied.
fn scratch(name: &str) -> PathBuf {
    let dir = test_cache().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An ext4 image of `size` (e.g. "64M") holding the tree at `content`;
/// `None` without e2fsprogs.
fn ext4_image(image: &Path, content: &Path, size: &str) -> Option<()> {
    let Some(mke2fs) = tool("mke2fs") else {
        eprintln!("mke2fs (e2fsprogs) is not installed; skipping");
        return None;
    };
    let out = Command::new(mke2fs)
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(content)
        .arg(image)
        .arg(size)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// A file's contents inside an ext4 image, read on the host with debugfs.
fn read_from_image(image: &Path, path: &str) -> String {
    let out = Command::new(tool("debugfs").expect("debugfs comes with mke2fs"))
        .args(["-R", &format!("cat {path}")])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// QEMU arguments for a virtio-blk disk (raw image), a virtio-net card on
/// QEMU's user network, a virtio-rng and a virtio console (to nothing), all
/// on virtio-mmio as Rewind's board has them.
fn virtio_devices(disk: &Path) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},format=raw,if=none,id=d0", disk.display()),
        "-device".into(),
        "virtio-blk-device,drive=d0".into(),
        "-netdev".into(),
        "user,id=n0".into(),
        "-device".into(),
        "virtio-net-device,netdev=n0".into(),
        "-device".into(),
        "virtio-rng-device".into(),
        "-chardev".into(),
        "null,id=c0".into(),
        "-device".into(),
        "virtio-serial-device".into(),
        "-device".into(),
        "virtconsole,chardev=c0".into(),
    ]
}

/// The lines of `text` that start with `prefix`, without it.
fn lines_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(prefix))
        .collect()
}

#[test]
#[ignore = "needs the network, qemu-system-riscv64 and e2fsprogs"]
fn debians_modules_drive_virtio_disk_network_and_rng_on_qemu() {
    let files = guest();
    let modules = default_guest_modules(&test_cache(), &mut |m| eprintln!("{m}")).unwrap();
    let names: Vec<&str> = modules.modules.iter().map(|(p, _)| p.as_str()).collect();
    eprintln!("modules in load order: {names:#?}");
    for wanted in [
        "virtio_mmio.ko",
        "virtio_blk.ko",
        "virtio_net.ko",
        "virtio-rng.ko",
        "ext4.ko",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(&format!("/{wanted}"))),
            "{wanted}"
        );
    }

    let dir = scratch("virtio");
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("hello.txt"), "written by the host\n").unwrap();
    let disk = dir.join("disk.img");
    if ext4_image(&disk, &content, "64M").is_none() {
        return;
    }
    let check = r#"#!/bin/sh
echo "CHECK modules: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
[ -b /dev/vda ] && echo "CHECK vda: $(cat /sys/block/vda/size) sectors"
mkdir -p /mnt/disk
mount -t ext4 /dev/vda /mnt/disk && echo "CHECK mounted: $(grep ' /mnt/disk ' /proc/mounts)"
echo "CHECK host file: $(cat /mnt/disk/hello.txt)"
echo "written by the guest" > /mnt/disk/from-guest.txt && umount /mnt/disk && echo "CHECK unmounted"
ip link show eth0 >/dev/null && echo "CHECK eth0: $(cat /sys/class/net/eth0/address)"
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -s /bin/true 2>&1 | grep -q "lease of" && echo "CHECK dhcp lease"
[ -c /dev/hwrng ] && echo "CHECK hwrng: $(cat /sys/class/misc/hw_random/rng_current)"
echo "CHECK random bytes: $(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n' | wc -c)"
[ -c /dev/hvc0 ] && echo "CHECK hvc0"
"#;
    let initrd_bytes = default_guest_initramfs(
        &test_cache(),
        &[("/opt/check".to_string(), check.as_bytes().to_vec(), 0o755)],
        &mut |m| eprintln!("{m}"),
    )
    .unwrap();
    eprintln!(
        "initramfs with the check script: {} bytes",
        initrd_bytes.len()
    );
    let initrd = dir.join("initramfs.cpio");
    std::fs::write(&initrd, initrd_bytes).unwrap();
    let cmdline = format!("{DEFAULT_CMDLINE} rewind.run=/opt/check");
    let serial = dir.join("serial.txt");
    let Some(mut qemu) =
        Qemu::boot_with(&files, &initrd, &cmdline, &virtio_devices(&disk), &serial)
    else {
        eprintln!("qemu-system-riscv64 is not installed; skipping");
        return;
    };
    assert!(
        qemu.wait_exit(600),
        "the machine did not power off:\n{}",
        qemu.text()
    );
    let text = qemu.text();
    eprintln!("{text}");
    assert_eq!(parse_exit_status(&text), Some(0), "{text}");
    assert!(!text.contains("Rewind: could not load"), "{text}");
    let checks = lines_after(&text, "CHECK ");
    let has = |prefix: &str| checks.iter().find(|c| c.starts_with(prefix)).copied();
    let loaded = has("modules: ").unwrap();
    for m in [
        "virtio_mmio",
        "virtio_blk",
        "virtio_net",
        "net_failover",
        "failover",
        "virtio_rng",
        "ext4",
        "jbd2",
        "mbcache",
        "crc16",
        "crc32c_generic",
    ] {
        assert!(loaded.split(' ').any(|l| l == m), "{m} not in {loaded}");
    }
    assert_eq!(has("vda: "), Some("vda: 131072 sectors"));
    assert!(
        has("mounted: ").is_some_and(|m| m.contains("/dev/vda /mnt/disk ext4 rw")),
        "{checks:?}"
    );
    assert_eq!(has("host file: "), Some("host file: written by the host"));
    assert!(has("unmounted").is_some(), "{checks:?}");
    assert!(has("eth0: 52:54:00:").is_some(), "{checks:?}");
    assert!(has("dhcp lease").is_some(), "{checks:?}");
    assert_eq!(has("hwrng: "), Some("hwrng: virtio_rng.0"));
    assert_eq!(has("random bytes: "), Some("random bytes: 32"));
    assert!(has("hvc0").is_some(), "{checks:?}");
    assert_eq!(
        read_from_image(&disk, "/from-guest.txt"),
        "written by the guest\n"
    );
}

#[test]
#[ignore = "needs the network, qemu-system-riscv64 and e2fsprogs"]
fn root_on_a_virtio_disk_is_mounted_read_write_and_its_init_runs() {
    let files = guest();
    let busybox = std::fs::read(files.kernel.parent().unwrap().join("busybox")).unwrap();
    let dir = scratch("rootfs");
    // A minimal root file system: busybox, and an /sbin/init that reports and powers off.
    let tree = dir.join("tree");
    for d in ["bin", "sbin", "proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::write(tree.join("bin/busybox"), &busybox).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    let init = r#"#!/bin/sh
B=/bin/busybox
echo "ROOTFS init is PID $$ with arguments: $*"
echo "ROOTFS root: $($B grep ' / ' /proc/mounts)"
echo "ROOTFS devices: $($B ls /dev/vda /dev/console /dev/pts 2>&1 | $B tr '\n' ' ')"
echo "ROOTFS initramfs gone: $($B ls /init /etc/rewind-modules 2>&1 | $B wc -l)"
echo "written by the root file system's init" > /proof && $B sync && echo "ROOTFS wrote /proof"
$B poweroff -f
"#;
    std::fs::write(tree.join("sbin/init"), init).unwrap();
    let mut perms = std::fs::metadata(tree.join("sbin/init"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(tree.join("sbin/init"), perms.clone()).unwrap();
    std::fs::set_permissions(tree.join("bin/busybox"), perms).unwrap();
    let disk = dir.join("root.img");
    if ext4_image(&disk, &tree, "64M").is_none() {
        return;
    }
    let cmdline = format!("{DEFAULT_CMDLINE} root=/dev/vda");
    let serial = dir.join("serial.txt");
    let Some(mut qemu) = Qemu::boot_with(
        &files,
        &files.initrd,
        &cmdline,
        &virtio_devices(&disk),
        &serial,
    ) else {
        eprintln!("qemu-system-riscv64 is not installed; skipping");
        return;
    };
    assert!(
        qemu.wait_exit(600),
        "the machine did not power off:\n{}",
        qemu.text()
    );
    let text = qemu.text();
    eprintln!("{text}");
    assert!(!text.contains(ROOT_FAILED_MARKER), "{text}");
    assert!(!text.contains(READY_MARKER), "{text}");
    assert!(
        text.contains(&format!("{SWITCH_ROOT_MARKER}/dev/vda")),
        "{text}"
    );
    let lines = lines_after(&text, "ROOTFS ");
    assert!(
        lines.contains(&"init is PID 1 with arguments: "),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("root: /dev/vda / ext4 rw,")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("devices: /dev/console /dev/vda") && l.contains("/dev/pts")),
        "{lines:?}"
    );
    assert!(lines.contains(&"initramfs gone: 2"), "{lines:?}");
    assert!(lines.contains(&"wrote /proof"), "{lines:?}");
    assert_eq!(
        read_from_image(&disk, "/proof"),
        "written by the root file system's init\n"
    );
}

#[test]
#[ignore = "needs the network and qemu-system-riscv64"]
fn a_missing_root_device_falls_back_to_the_workload_and_modprobe_works() {
    let files = guest();
    // With rewind.modules=no nothing is loaded; modprobe then loads modules
    // with their dependencies from our modules.dep, or by alias from modules.alias.
    let script = br#"#!/bin/sh
echo "modules: $(wc -l < /proc/modules)"
modprobe virtio_net && modprobe crypto-crc32c
echo "after modprobe: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
"#
    .to_vec();
    let initrd_bytes = default_guest_initramfs(
        &test_cache(),
        &[("/opt/workload".to_string(), script, 0o755)],
        &mut |m| eprintln!("{m}"),
    )
    .unwrap();
    let dir = scratch("noroot");
    let initrd = dir.join("initramfs.cpio");
    std::fs::write(&initrd, initrd_bytes).unwrap();
    let cmdline = format!(
        "{DEFAULT_CMDLINE} root=/dev/vda rootdelay=1 rewind.modules=no rewind.run=/opt/workload"
    );
    let serial = dir.join("serial.txt");
    let Some(mut qemu) = Qemu::boot_with(&files, &initrd, &cmdline, &[], &serial) else {
        eprintln!("qemu-system-riscv64 is not installed; skipping");
        return;
    };
    assert!(
        qemu.wait_exit(600),
        "the machine did not power off:\n{}",
        qemu.text()
    );
    let text = qemu.text();
    eprintln!("{text}");
    assert!(
        text.contains(&format!("{ROOT_FAILED_MARKER}/dev/vda did not appear")),
        "{text}"
    );
    assert!(text.contains("modules: 0"), "rewind.modules=no: {text}");
    assert_eq!(
        lines_after(&text, "after modprobe: "),
        ["crc32c_generic failover net_failover virtio_net "],
        "{text}"
    );
    assert_eq!(parse_exit_status(&text), Some(0));
}

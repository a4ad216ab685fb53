//! End-to-end checks of the default guest against the real Debian archive, and
//! boots of it on QEMU (the reference machine Rewind's board imitates).
//!
//! They need the network (and, for the boots, `qemu-system-riscv64`), so they
//! are ignored by default. Run them with
//!
//!     cargo test -p rewind-guest -- --ignored --test-threads 1
//!
//! The cache is `$REWIND_GUEST_TEST_CACHE`, or `rewind-guest-e2e` in the
//! temporary directory; it is kept between runs so that only the first fetches.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rewind_guest::{
    default_guest, default_initramfs, detect_kernel_format, parse_exit_status, GuestFiles,
    KernelFormat, DEFAULT_CMDLINE, READY_MARKER,
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

/// QEMU with the console on stdio, its output collected as it comes.
struct Qemu {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Qemu {
    /// `None` when QEMU is not installed.
    fn boot(files: &GuestFiles, initrd: &Path, cmdline: &str) -> Option<Qemu> {
        let mut child = Command::new("qemu-system-riscv64")
            .args([
                "-M", "virt", "-m", "512M", "-smp", "2", "-display", "none", "-serial", "stdio",
                "-monitor", "none",
            ])
            .args(["-no-reboot", "-bios"])
            .arg(&files.firmware)
            .arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", cmdline])
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
        Some(Qemu { child, output })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
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
    let Some(mut qemu) = Qemu::boot(&files, &initrd, &cmdline) else {
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

//! Helpers shared by the tests/virtio_*.rs tests: building bare-metal guests,
//! running `rewind` with a time limit, and building Linux test initramfs
//! images from the default guest.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The cross compiler that builds the bare-metal guests.
pub const CROSS_GCC: &str = "riscv64-linux-gnu-gcc";

pub fn virtio_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("virtio")
}

/// A directory of this test's own for scratch files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("virtio")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Fails the test with a clear message when a required host tool is missing.
pub fn require_tool(tool: &str, package: &str) {
    if let Err(e) = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!(
            "`{tool}` cannot be run ({e}). This test needs it: run ./test.sh, which installs it \
             (Debian package {package}), or install it by hand."
        );
    }
}

/// Builds tests/virtio/<name>.c with start.S into a bare-metal ELF in `dir`.
pub fn build_guest(name: &str, dir: &Path) -> PathBuf {
    require_tool(CROSS_GCC, "gcc-riscv64-linux-gnu");
    let src = virtio_dir();
    let elf = dir.join(format!("{name}.elf"));
    let output = Command::new(CROSS_GCC)
        .args([
            "-march=rv64gc",
            "-mabi=lp64d",
            "-mcmodel=medany",
            "-ffreestanding",
            "-fno-builtin",
            "-nostdlib",
            "-nostartfiles",
            "-static",
            "-O2",
            "-Wall",
            "-Werror",
            "-Wl,--build-id=none",
            "-Wl,--no-warn-rwx-segments",
        ])
        .arg("-T")
        .arg(src.join("link.ld"))
        .arg(src.join("start.S"))
        .arg(src.join(format!("{name}.c")))
        .arg("-o")
        .arg(&elf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CROSS_GCC}: {e}"));
    assert!(
        output.status.success(),
        "building tests/virtio/{name}.c failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elf
}

/// What a run printed, and how it ended.
pub struct RunOutput {
    /// None if the run was killed after its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// The run's output, for failure messages.
    pub fn describe(&self) -> String {
        let ending = match self.status {
            None => "was killed (it hung)".to_string(),
            Some(s) => format!("ended with {s}"),
        };
        format!(
            "the run {ending}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

fn read_all(mut from: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `rewind run ARGS` with no input, killing it after `limit`.
pub fn run_rewind(args: &[String], limit: Duration) -> RunOutput {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start rewind: {e}"));
    let stderr = read_all(child.stderr.take().expect("stderr is piped"));
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut bytes);
        let _ = done_tx.send(());
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let timed_out = done_rx.recv_timeout(limit).is_err();
    if timed_out {
        // Not waited for yet, so the pid is still this child's.
        let _ = child.kill();
    }
    let status = child.wait().expect("waiting for rewind");
    RunOutput {
        status: if timed_out { None } else { Some(status) },
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The default guest's files (fetched on first use into the shared cache).
pub fn guest() -> rewind_guest::GuestFiles {
    let cache = rewind_guest::default_cache_dir();
    let mut progress = |line: &str| eprintln!("rewind-guest: {line}");
    rewind_guest::default_guest(&cache, &mut progress)
        .unwrap_or_else(|e| panic!("cannot prepare the default guest: {e}"))
}

/// Writes an initramfs (the default guest's busybox and kernel modules) with
/// `/test.sh` = `script` into `dir`, and returns the `rewind run` arguments
/// that boot it and run the script (its exit status is printed as
/// `Rewind: exit status N`).
pub fn linux_args(dir: &Path, script: &str) -> Vec<String> {
    let files = guest();
    let cache = rewind_guest::default_cache_dir();
    let mut progress = |line: &str| eprintln!("rewind-guest: {line}");
    let extra = vec![("test.sh".to_string(), script.as_bytes().to_vec(), 0o755)];
    let image = rewind_guest::default_guest_initramfs(&cache, &extra, &mut progress)
        .unwrap_or_else(|e| panic!("cannot build the test initramfs: {e}"));
    let initrd = dir.join("initramfs.cpio");
    std::fs::write(&initrd, image).expect("writing the test initramfs");
    vec![
        "--kernel".into(),
        files.kernel.display().to_string(),
        "--initrd".into(),
        initrd.display().to_string(),
        "--firmware".into(),
        files.firmware.display().to_string(),
        "--mem".into(),
        "256M".into(),
        "--append".into(),
        format!("{} rewind.run=/test.sh", rewind_guest::DEFAULT_CMDLINE),
    ]
}

/// Panics unless a Linux run powered off after its script exited 0.
pub fn expect_script_passed(run: &RunOutput, what: &str) {
    let exit = rewind_guest::parse_exit_status(&run.stdout);
    assert!(
        run.code() == Some(0) && exit == Some(0),
        "{what}: the guest script did not exit 0 (exit status {exit:?}); {}",
        run.describe()
    );
}

/// Runs `mke2fs -t ext4 -d FROM IMAGE SIZE`.
pub fn make_ext4(from: &Path, image: &Path, size: &str) {
    require_tool("mke2fs", "e2fsprogs");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(from)
        .arg(image)
        .arg(size)
        .output()
        .expect("running mke2fs");
    assert!(
        out.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `debugfs -R "cat PATH" IMAGE`: a file's contents as the host sees them.
pub fn debugfs_cat(image: &Path, path: &str) -> String {
    require_tool("debugfs", "e2fsprogs");
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .expect("running debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// BLAKE3 of a file.
pub fn file_hash(path: &Path) -> [u8; 32] {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    *blake3::hash(&bytes).as_bytes()
}

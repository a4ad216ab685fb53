//! End-to-end boots of Debian's riscv64 kernel on Rewind.
//!
//! The guest is the default one (`rewind_guest::default_guest`: Debian trixie's
//! kernel, busybox-static and OpenSBI, fetched with apt on first use and
//! cached), booted by the `rewind` binary as a user would run it:
//! - `rewind run` with no options, to the busybox shell of the default
//!   `/init`, then powered off by typing `poweroff -f` there;
//! - the same with a plain busybox initramfs (`default_initramfs` plus our
//!   programs) on one, two and four harts, with OpenSBI and the built-in SBI;
//! - running our own workload, `tests/guest/workload.c` (integer, memory,
//!   floating-point and threaded kernels), whose output must match QEMU's for
//!   the same kernel, initramfs and number of harts line for line, in the same
//!   six configurations;
//! - twice in the same configuration, which must give the same console bytes
//!   and state hash, and once with another command line, which must not;
//! - running `tests/guest/clock.c`, which reads the clocks through the vDSO;
//! - with broken input (missing or malformed files, too little memory, unknown
//!   options), which must be one `rewind: ` sentence and a nonzero exit status;
//! - without an initramfs, where the kernel panics and `rewind` says so.
//!
//! QEMU (`qemu-system-riscv64`) and the cross compiler (`riscv64-linux-gnu-gcc`)
//! are required, not optional: `./test.sh` installs them. Every run is killed
//! after `RUN_TIMEOUT`: a hang is a failure.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

use rewind_guest::{GuestFiles, EXIT_STATUS_PREFIX, READY_MARKER};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::Duration;

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");
const CROSS_GCC: &str = "riscv64-linux-gnu-gcc";
const QEMU: &str = "qemu-system-riscv64";
/// A run that takes longer has hung. The longest, the default guest (which
/// loads kernel modules), retires 3.4 billion instructions: half a minute on
/// an idle 2-core machine, a few times that on a busy one.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Guest RAM, the same on Rewind and QEMU.
const MEM: &str = "512M";
/// Where tests/guest/workload.c and clock.c are in the initramfs.
const WORKLOAD_PATH: &str = "/workload";
const CLOCK_PATH: &str = "/clock";
/// The workload's first and last lines (see tests/guest/workload.c).
const WORKLOAD_BEGIN: &str = "WORKLOAD BEGIN";
const WORKLOAD_END: &str = "WORKLOAD END checksum ";

// ---- Shared, built once per test process ------------------------------------

struct Guest {
    files: GuestFiles,
    /// busybox-static, read from the cache (see `guest`).
    busybox: Vec<u8>,
}

/// The default guest, fetched (or found in the cache) once per test process.
fn guest() -> &'static Guest {
    static GUEST: OnceLock<Result<Guest, String>> = OnceLock::new();
    let guest = GUEST.get_or_init(|| {
        let cache = rewind_guest::default_cache_dir();
        let mut progress = |line: &str| eprintln!("boot tests: {line}");
        let files = rewind_guest::default_guest(&cache, &mut progress).map_err(|e| {
            format!(
                "cannot fetch the default guest into {}: {e}",
                cache.display()
            )
        })?;
        // `GuestFiles` does not name busybox; it sits beside the kernel in
        // the cache (<cache>/debian-trixie-riscv64/busybox).
        let path = files.kernel.with_file_name("busybox");
        let busybox = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read busybox from the cache, {}: {e}",
                path.display()
            )
        })?;
        Ok(Guest { files, busybox })
    });
    guest.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("boot");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A fresh file name in the output directory, unique within and across test
/// processes that run at different times (stale files are removed first).
fn fresh_path(stem: &str, extension: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = out_dir().join(format!("{stem}-{}-{n}.{extension}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Fails the test with a clear message when a required host tool is missing.
fn require_tool(tool: &str, package: &str) {
    if let Err(e) = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!(
            "`{tool}` cannot be run ({e}). The boot tests need it: run ./test.sh, \
             which installs it (Debian package {package}), or install it by hand."
        );
    }
}

/// Builds tests/guest/<name>.c into a static riscv64 Linux executable.
fn build_guest_program(name: &str) -> Result<Vec<u8>, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guest")
        .join(format!("{name}.c"));
    let elf = out_dir().join(format!("{name}-{}", std::process::id()));
    let output = Command::new(CROSS_GCC)
        .args(["-static", "-O2", "-pthread", "-Wall", "-Werror", "-o"])
        .arg(&elf)
        .arg(&source)
        .arg("-lm")
        .output()
        .map_err(|e| format!("cannot run {CROSS_GCC}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} failed:\n{}{}",
            source.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let binary = std::fs::read(&elf).map_err(|e| format!("cannot read {}: {e}", elf.display()));
    let _ = std::fs::remove_file(&elf);
    binary
}

/// The default initramfs plus our guest programs (`/workload`, `/clock`),
/// built once per test process.
fn test_initrd() -> &'static Path {
    static INITRD: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let initrd = INITRD.get_or_init(|| {
        require_tool(CROSS_GCC, "gcc-riscv64-linux-gnu");
        let extra = vec![
            (
                WORKLOAD_PATH.to_string(),
                build_guest_program("workload")?,
                0o755,
            ),
            (CLOCK_PATH.to_string(), build_guest_program("clock")?, 0o755),
        ];
        let image = rewind_guest::default_initramfs(&guest().busybox, &extra);
        // The same sources give the same bytes, so test processes running at
        // once may share the file; each writes a private copy and renames it.
        let path = out_dir().join("test-initramfs.cpio");
        let tmp = path.with_extension(format!("cpio.tmp-{}", std::process::id()));
        std::fs::write(&tmp, image)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    });
    initrd.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn workload_cmdline() -> String {
    format!("console=ttyS0 rewind.run={WORKLOAD_PATH}")
}

// ---- Running processes with a watchdog -------------------------------------

/// What a run printed, and how it ended.
struct RunOutput {
    /// What was run, for failure messages.
    command: String,
    /// None if the run was killed after RUN_TIMEOUT.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    wall: Duration,
}

impl RunOutput {
    /// Everything about the run, for a failure message.
    fn describe(&self) -> String {
        let ending = match self.status {
            None => format!("was killed after {} s (it hung)", RUN_TIMEOUT.as_secs()),
            Some(s) => format!("ended with {s} after {:.1} s", self.wall.as_secs_f64()),
        };
        format!(
            "{}\n{ending}\n--- stdout (last 6000 bytes) ---\n{}\n--- stderr ---\n{}",
            self.command,
            tail(&self.stdout, 6000),
            tail(&self.stderr, 6000)
        )
    }

    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Console input that waits for a prompt: once stdout contains `after`,
/// `send` is written to stdin and stdin is closed.
struct Reply {
    after: &'static str,
    send: &'static str,
}

/// Runs `command` with stdout and stderr captured; stdin is empty, or gets
/// `reply`'s text once its prompt has appeared. The run ends when stdout
/// closes (the process exited); if that takes longer than RUN_TIMEOUT, the
/// process is killed.
fn run_with_timeout(mut command: Command, reply: Option<Reply>) -> RunOutput {
    let shown = format!("{command:?}");
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    // host time of host processes, for messages only
    let started = std::time::Instant::now();
    let mut child = command
        .stdin(if reply.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr = thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only truncates the output shown in a failure message.
        let _ = stderr_pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdout_pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            bytes.extend_from_slice(&buf[..n]);
            if let (Some(reply), Some(_)) = (&reply, &stdin) {
                // Search the new bytes and enough before them to find a
                // prompt split across two reads.
                let from = (bytes.len() - n).saturating_sub(reply.after.len());
                if contains(&bytes[from..], reply.after.as_bytes()) {
                    let mut input = stdin.take().expect("checked above");
                    // A failed write shows up as a missing power-off.
                    let _ = input.write_all(reply.send.as_bytes());
                    // Dropping `input` closes the guest's console input.
                }
            }
        }
        // The receiver is gone only if the test already failed.
        let _ = done_tx.send(());
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let timed_out = done_rx.recv_timeout(RUN_TIMEOUT).is_err();
    if timed_out {
        // The child has not been waited for, so its pid is still its own.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for {shown}: {e}"));
    RunOutput {
        command: shown,
        status: (!timed_out).then_some(status),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        wall: started.elapsed(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- Rewind and QEMU -------------------------------------------------------

/// The firmware choices the matrix covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fw {
    /// Debian's OpenSBI fw_dynamic.bin from the guest cache.
    OpenSbi,
    /// Rewind's built-in SBI.
    Builtin,
}

impl Fw {
    fn arg(self) -> String {
        match self {
            Fw::OpenSbi => guest().files.firmware.display().to_string(),
            Fw::Builtin => "builtin".to_string(),
        }
    }
}

/// A finished `rewind run` with its parsed `--report`.
struct RewindRun {
    output: RunOutput,
    /// None if the report is missing or not JSON (the reason is in `output`).
    report: Option<Value>,
}

impl RewindRun {
    fn describe(&self) -> String {
        format!(
            "{}\n--- report ---\n{}",
            self.output.describe(),
            self.report
                .as_ref()
                .map_or("(none)".to_string(), |r| r.to_string())
        )
    }

    fn report_str(&self, key: &str) -> Option<&str> {
        self.report.as_ref()?.get(key)?.as_str()
    }

    /// Panics unless the guest powered off and `rewind` exited 0.
    fn expect_poweroff(&self, what: &str) {
        assert!(
            self.output.code() == Some(0) && self.report_str("exit_reason") == Some("poweroff"),
            "{what}: expected a power-off and exit status 0\n{}",
            self.describe()
        );
    }

    fn state_hash(&self) -> &str {
        self.report_str("state_hash")
            .unwrap_or_else(|| panic!("no state_hash in the report\n{}", self.describe()))
    }
}

/// Runs `rewind run <args> --report FILE`.
fn rewind(tag: &str, args: &[String], reply: Option<Reply>) -> RewindRun {
    let report_path = fresh_path(tag, "json");
    let mut command = Command::new(REWIND);
    command
        .arg("run")
        .args(args)
        .arg("--report")
        .arg(&report_path);
    let output = run_with_timeout(command, reply);
    let report: Option<Value> = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let _ = std::fs::remove_file(&report_path);
    let guest_ns = report
        .as_ref()
        .and_then(|r| r["guest_time_ns"].as_u64())
        .unwrap_or(0);
    let instructions: u64 = report
        .as_ref()
        .and_then(|r| r["instructions_retired"].as_array())
        .map_or(0, |a| a.iter().filter_map(Value::as_u64).sum());
    eprintln!(
        "boot tests: {tag}: rewind took {:.1} s ({:.2} s of guest time, {:.2}G instructions)",
        output.wall.as_secs_f64(),
        guest_ns as f64 / 1e9,
        instructions as f64 / 1e9
    );
    RewindRun { output, report }
}

/// Arguments that boot the guest's kernel and `initrd` with the given firmware,
/// harts and command line.
fn boot_args(initrd: &Path, smp: u16, fw: Fw, append: &str) -> Vec<String> {
    vec![
        "--kernel".into(),
        guest().files.kernel.display().to_string(),
        "--initrd".into(),
        initrd.display().to_string(),
        "--firmware".into(),
        fw.arg(),
        "--mem".into(),
        MEM.into(),
        "--smp".into(),
        smp.to_string(),
        "--append".into(),
        append.into(),
    ]
}

/// Boots the workload on Rewind.
fn rewind_workload(tag: &str, smp: u16, fw: Fw, append: &str) -> RewindRun {
    let args = boot_args(test_initrd(), smp, fw, append);
    rewind(tag, &args, None)
}

/// The workload's run on Rewind with the usual command line, once per test
/// process and configuration: the QEMU comparison and the determinism test
/// share it.
fn workload_run(smp: u16, fw: Fw) -> &'static RewindRun {
    static RUNS: [OnceLock<RewindRun>; 6] = [const { OnceLock::new() }; 6];
    let slot = match smp {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => panic!("no workload run slot for {smp} harts"),
    } + if fw == Fw::Builtin { 3 } else { 0 };
    RUNS[slot].get_or_init(|| {
        let tag = format!("workload-smp{smp}-{fw:?}");
        rewind_workload(&tag, smp, fw, &workload_cmdline())
    })
}

/// Boots the workload initramfs on QEMU's `virt` board with OpenSBI and
/// returns the serial output.
fn qemu_workload(smp: u16) -> String {
    require_tool(QEMU, "qemu-system-misc");
    let guest = guest();
    // The serial port goes to a file: QEMU drops bytes still queued for a full
    // pipe when it exits.
    let serial = fresh_path(&format!("qemu-smp{smp}"), "serial.txt");
    let mut command = Command::new(QEMU);
    command
        .args(["-M", "virt", "-m", MEM, "-smp", &smp.to_string()])
        .arg("-bios")
        .arg(&guest.files.firmware)
        .arg("-kernel")
        .arg(&guest.files.kernel)
        .arg("-initrd")
        .arg(test_initrd())
        .arg("-append")
        .arg(workload_cmdline())
        .args(["-display", "none", "-monitor", "none", "-serial"])
        .arg(format!("file:{}", serial.display()));
    let mut run = run_with_timeout(command, None);
    run.stdout = std::fs::read(&serial)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&serial);
    eprintln!(
        "boot tests: QEMU with {smp} harts took {:.1} s",
        run.wall.as_secs_f64()
    );
    assert!(
        run.code() == Some(0) && rewind_guest::parse_exit_status(&run.stdout) == Some(0),
        "the workload failed on QEMU (the reference), so Rewind cannot be compared with it\n{}",
        run.describe()
    );
    run.stdout
}

/// QEMU's serial output for the workload on `smp` harts, run once per process.
fn qemu_reference(smp: u16) -> &'static str {
    static RUNS: [OnceLock<String>; 3] = [const { OnceLock::new() }; 3];
    let slot = match smp {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => panic!("no QEMU reference slot for {smp} harts"),
    };
    RUNS[slot].get_or_init(|| qemu_workload(smp))
}

/// The workload's lines in console output, from its first line to its
/// checksum line, without carriage returns or kernel log lines.
fn workload_lines(console: &str) -> Result<Vec<&str>, String> {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let begin = lines
        .iter()
        .position(|l| *l == WORKLOAD_BEGIN)
        .ok_or_else(|| format!("no `{WORKLOAD_BEGIN}` line"))?;
    let end = lines[begin..]
        .iter()
        .position(|l| l.starts_with(WORKLOAD_END))
        .ok_or_else(|| format!("no `{WORKLOAD_END}...` line after `{WORKLOAD_BEGIN}`"))?;
    Ok(lines[begin..=begin + end]
        .iter()
        .copied()
        .filter(|l| !is_kernel_log_line(l))
        .collect())
}

/// A kernel message such as `[    1.234567] ...`; its timing may differ between machines.
fn is_kernel_log_line(line: &str) -> bool {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .is_some_and(|(stamp, _)| {
            let stamp = stamp.trim_start();
            !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

/// Runs the workload on Rewind and checks its output against QEMU's.
fn check_workload_matches_qemu(smp: u16, fw: Fw) {
    let tag = format!("workload-smp{smp}-{fw:?}");
    let run = workload_run(smp, fw);
    run.expect_poweroff(&tag);
    check_report_fields(run, smp.into());
    let console = &run.output.stdout;
    assert_eq!(
        rewind_guest::parse_exit_status(console),
        Some(0),
        "the workload did not exit 0 (no `{EXIT_STATUS_PREFIX}0` line)\n{}",
        run.describe()
    );
    let ours = workload_lines(console)
        .unwrap_or_else(|e| panic!("Rewind's console: {e}\n{}", run.describe()));
    let reference = qemu_reference(smp);
    let theirs = workload_lines(reference)
        .unwrap_or_else(|e| panic!("QEMU's console: {e}\n{}", tail(reference, 6000)));
    if ours != theirs {
        let diff: Vec<String> = (0..ours.len().max(theirs.len()))
            .filter_map(|i| {
                let (a, b) = (ours.get(i), theirs.get(i));
                (a != b).then(|| format!("  rewind: {a:?}\n  qemu:   {b:?}"))
            })
            .collect();
        panic!(
            "the workload's output on Rewind ({smp} harts, {fw:?}) differs from QEMU's:\n{}\n\
             --- Rewind ---\n{}\n--- QEMU ---\n{}",
            diff.join("\n"),
            ours.join("\n"),
            theirs.join("\n")
        );
    }
}

/// Boots a busybox initramfs (`default_initramfs` with our programs added)
/// to the default /init's shell, types `poweroff -f` there, and checks that
/// the machine powers off.
fn check_shell_boot(smp: u16, fw: Fw) {
    let tag = format!("shell-smp{smp}-{fw:?}");
    let args = boot_args(test_initrd(), smp, fw, rewind_guest::DEFAULT_CMDLINE);
    let run = rewind(
        &tag,
        &args,
        Some(Reply {
            after: READY_MARKER,
            send: "poweroff -f\n",
        }),
    );
    assert!(
        run.output.stdout.contains(READY_MARKER),
        "{tag}: no `{READY_MARKER}` on the console\n{}",
        run.describe()
    );
    run.expect_poweroff(&tag);
    assert!(
        run.output.stdout.contains("reboot: Power down"),
        "{tag}: the kernel did not say it powers down\n{}",
        run.describe()
    );
}

// ---- The tests ---------------------------------------------------------------

/// `rewind run` with no options boots the default guest to the busybox shell;
/// `poweroff -f` typed there stops it cleanly.
#[test]
fn default_guest_boots_to_the_shell_and_powers_off() {
    guest();
    let run = rewind(
        "shell-default",
        &[],
        Some(Reply {
            after: READY_MARKER,
            send: "poweroff -f\n",
        }),
    );
    assert!(
        run.output.stdout.contains(READY_MARKER),
        "no `{READY_MARKER}` on the console\n{}",
        run.describe()
    );
    run.expect_poweroff("the default guest");
    assert!(
        run.output.stdout.contains(&guest().files.kernel_version),
        "the console does not show the kernel version {}\n{}",
        guest().files.kernel_version,
        run.describe()
    );
}

#[test]
fn shell_boot_on_2_harts_with_opensbi() {
    check_shell_boot(2, Fw::OpenSbi);
}

#[test]
fn shell_boot_on_4_harts_with_opensbi() {
    check_shell_boot(4, Fw::OpenSbi);
}

#[test]
fn shell_boot_on_1_hart_with_builtin_sbi() {
    check_shell_boot(1, Fw::Builtin);
}

#[test]
fn shell_boot_on_2_harts_with_builtin_sbi() {
    check_shell_boot(2, Fw::Builtin);
}

#[test]
fn shell_boot_on_4_harts_with_builtin_sbi() {
    check_shell_boot(4, Fw::Builtin);
}

#[test]
fn workload_matches_qemu_on_1_hart_with_opensbi() {
    check_workload_matches_qemu(1, Fw::OpenSbi);
}

#[test]
fn workload_matches_qemu_on_2_harts_with_opensbi() {
    check_workload_matches_qemu(2, Fw::OpenSbi);
}

#[test]
fn workload_matches_qemu_on_4_harts_with_opensbi() {
    check_workload_matches_qemu(4, Fw::OpenSbi);
}

#[test]
fn workload_matches_qemu_on_1_hart_with_builtin_sbi() {
    check_workload_matches_qemu(1, Fw::Builtin);
}

#[test]
fn workload_matches_qemu_on_2_harts_with_builtin_sbi() {
    check_workload_matches_qemu(2, Fw::Builtin);
}

#[test]
fn workload_matches_qemu_on_4_harts_with_builtin_sbi() {
    check_workload_matches_qemu(4, Fw::Builtin);
}

/// Two runs of one configuration are the same run: same console bytes, same
/// instruction counts, same state hash. A different kernel command line is a
/// different machine, with a different hash.
#[test]
fn same_configuration_gives_the_same_state_hash() {
    let first = workload_run(2, Fw::OpenSbi);
    first.expect_poweroff("the first run");
    check_report_fields(first, 2);
    let second = rewind_workload("determinism-again", 2, Fw::OpenSbi, &workload_cmdline());
    second.expect_poweroff("the second run");
    check_report_fields(&second, 2);
    if first.output.stdout != second.output.stdout {
        let (a, b) = (&first.output.stdout, &second.output.stdout);
        let line = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "two runs of one configuration printed different console output, from line {}:\n\
             first:  {:?}\nsecond: {:?}\n--- first ---\n{}\n--- second ---\n{}",
            line + 1,
            a.lines().nth(line),
            b.lines().nth(line),
            first.describe(),
            second.describe()
        );
    }
    let fields = ["instructions_retired", "guest_time_ns", "state_hash"];
    for field in fields {
        let (a, b) = (
            &first.report.as_ref().unwrap()[field],
            &second.report.as_ref().unwrap()[field],
        );
        assert_eq!(a, b, "two runs of one configuration differ in {field}");
    }

    let other_cmdline = format!("{} rewind.variant=1", workload_cmdline());
    let other = rewind_workload("determinism-other", 2, Fw::OpenSbi, &other_cmdline);
    other.expect_poweroff("the run with another command line");
    check_report_fields(&other, 2);
    assert_ne!(
        first.state_hash(),
        other.state_hash(),
        "a different kernel command line gave the same state hash"
    );
}

/// Every field of the report is present with a plausible value.
fn check_report_fields(run: &RewindRun, harts: usize) {
    let report = run
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("no JSON report\n{}", run.describe()));
    let fail = |what: &str| -> ! { panic!("report: {what}\n{}", run.describe()) };
    let object = report
        .as_object()
        .unwrap_or_else(|| fail("not a JSON object"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "engine",
            "exit_code",
            "exit_reason",
            "guest_time_ns",
            "instructions_retired",
            "position",
            "seed",
            "state_hash",
            "translated_instructions",
            "wall_seconds"
        ],
        "report fields\n{}",
        run.describe()
    );
    if report["seed"] != 0 {
        fail("seed is not the default, 0");
    }
    let default_engine = rewind_hart::Engine::default_for_host().name();
    if report["engine"] != default_engine {
        fail(&format!(
            "engine is not the host's default, {default_engine}"
        ));
    }
    if report["exit_reason"] != "poweroff" {
        fail("exit_reason is not \"poweroff\"");
    }
    if report["exit_code"] != 0 {
        fail("exit_code is not 0");
    }
    let retired = report["instructions_retired"]
        .as_array()
        .unwrap_or_else(|| fail("instructions_retired is not an array"));
    if retired.len() != harts {
        fail(&format!("instructions_retired has not {harts} entries"));
    }
    if !retired.iter().all(|n| n.as_u64().is_some_and(|n| n > 0)) {
        fail("a hart retired no instructions");
    }
    let translated = report["translated_instructions"]
        .as_array()
        .unwrap_or_else(|| fail("translated_instructions is not an array"));
    if translated.len() != harts {
        fail(&format!("translated_instructions has not {harts} entries"));
    }
    for (t, r) in translated.iter().zip(retired) {
        let t = t
            .as_u64()
            .unwrap_or_else(|| fail("translated_instructions holds a non-integer"));
        if t > r.as_u64().unwrap() {
            fail("a hart translated more instructions than it retired");
        }
        // Under the translator a boot spends most of its instructions in
        // hot loops; under the interpreter nothing is translated.
        let translating = default_engine == "jit";
        if translating != (t > 0) {
            fail("translated_instructions does not fit the engine");
        }
    }
    let guest_time = report["guest_time_ns"]
        .as_u64()
        .unwrap_or_else(|| fail("guest_time_ns is not an unsigned integer"));
    // A boot takes a good fraction of a second of guest time, and every hart
    // retires at most one instruction per nanosecond.
    if guest_time < 100_000_000 {
        fail("guest_time_ns is implausibly small for a Linux boot");
    }
    if retired
        .iter()
        .any(|n| n.as_u64().unwrap() > guest_time + 1_000_000)
    {
        fail("a hart retired more instructions than nanoseconds passed");
    }
    let wall = report["wall_seconds"]
        .as_f64()
        .unwrap_or_else(|| fail("wall_seconds is not a number"));
    if !(wall > 0.0 && wall <= run.output.wall.as_secs_f64() + 1.0) {
        fail("wall_seconds is not between 0 and the run's duration");
    }
    let hash = report["state_hash"]
        .as_str()
        .unwrap_or_else(|| fail("state_hash is not a string"));
    if !(hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        fail("state_hash is not 64 lowercase hex digits");
    }
}

/// Runs `rewind run <args>` (no boot expected) and checks that it fails with
/// one `rewind: ` sentence on stderr that contains `expected`, and status 1.
fn check_one_sentence_error(args: &[String], expected: &str) {
    let mut command = Command::new(REWIND);
    command.arg("run").args(args);
    let run = run_with_timeout(command, None);
    let stderr = run.stderr.trim_end();
    assert!(
        run.code() == Some(1)
            && stderr.starts_with("rewind: ")
            && stderr.lines().count() == 1
            && stderr.contains(expected)
            && !stderr.contains("panicked")
            && !stderr.contains("RUST_BACKTRACE"),
        "expected exit status 1 and one sentence on stderr starting `rewind: ` and \
         containing `{expected}`\n{}",
        run.describe()
    );
}

#[test]
fn missing_or_malformed_files_are_one_sentence_errors() {
    let missing = out_dir().join("no-such-kernel");
    check_one_sentence_error(
        &["--kernel".into(), missing.display().to_string()],
        "no-such-kernel",
    );

    let garbage = fresh_path("garbage-kernel", "bin");
    let bytes: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    check_one_sentence_error(
        &["--kernel".into(), garbage.display().to_string()],
        "garbage-kernel",
    );
    let empty = fresh_path("empty-kernel", "bin");
    std::fs::write(&empty, b"").unwrap();
    check_one_sentence_error(
        &["--kernel".into(), empty.display().to_string()],
        "empty-kernel",
    );

    let guest = guest();
    let kernel = guest.files.kernel.display().to_string();
    check_one_sentence_error(
        &[
            "--kernel".into(),
            kernel.clone(),
            "--initrd".into(),
            missing
                .with_file_name("no-such-initrd")
                .display()
                .to_string(),
        ],
        "no-such-initrd",
    );
    check_one_sentence_error(
        &[
            "--kernel".into(),
            kernel.clone(),
            "--firmware".into(),
            missing
                .with_file_name("no-such-firmware")
                .display()
                .to_string(),
        ],
        "no-such-firmware",
    );
    let _ = std::fs::remove_file(&garbage);
    let _ = std::fs::remove_file(&empty);
}

#[test]
fn too_little_memory_for_the_kernel_is_a_one_sentence_error() {
    let guest = guest();
    for (mem, fw) in [
        ("4M", Fw::OpenSbi),
        ("4M", Fw::Builtin),
        ("64M", Fw::OpenSbi),
    ] {
        let args = [
            "--kernel".into(),
            guest.files.kernel.display().to_string(),
            "--initrd".into(),
            guest.files.initrd.display().to_string(),
            "--firmware".into(),
            fw.arg(),
            "--mem".into(),
            mem.into(),
        ];
        check_one_sentence_error(&args, "--mem");
    }
}

#[test]
fn bad_options_are_rejected_with_usage_errors() {
    for args in [
        &["run", "--no-such-option"][..],
        &["run", "--mem", "12Q"],
        &["run", "--smp", "0"],
        &["no-such-command"],
    ] {
        let mut command = Command::new(REWIND);
        command.args(args);
        let run = run_with_timeout(command, None);
        assert!(
            run.code() == Some(2) && !run.stderr.contains("panicked"),
            "`rewind {}` should be a usage error (exit status 2)\n{}",
            args.join(" "),
            run.describe()
        );
    }
}

/// Without an initramfs the kernel cannot mount a root file system and
/// panics; `rewind` notices, says so and exits 1 instead of spinning forever.
#[test]
fn kernel_panic_is_reported_and_exits_nonzero() {
    let guest = guest();
    let args = [
        "--kernel".into(),
        guest.files.kernel.display().to_string(),
        "--firmware".into(),
        Fw::OpenSbi.arg(),
        "--mem".into(),
        MEM.into(),
        "--append".into(),
        rewind_guest::DEFAULT_CMDLINE.into(),
    ];
    let run = rewind("panic", &args, None);
    assert!(
        run.output.code() == Some(1)
            && run.report_str("exit_reason") == Some("kernel-panic")
            && run.output.stdout.contains("Kernel panic - not syncing")
            && run
                .output
                .stderr
                .contains("rewind: the guest kernel panicked")
            && run.output.stderr.contains("Unable to mount root fs")
            && !run.output.stderr.contains("panicked at"),
        "expected a reported kernel panic (unable to mount root fs) and exit status 1\n{}",
        run.describe()
    );
}

/// User programs read the time through the vDSO, which executes `rdtime` in
/// user mode; that needs the firmware to open the `time` counter to S and U
/// mode (mcounteren and scounteren, as OpenSBI does).
fn check_user_clock(fw: Fw) {
    let tag = format!("clock-{fw:?}");
    let append = format!("console=ttyS0 rewind.run={CLOCK_PATH}");
    let run = rewind(&tag, &boot_args(test_initrd(), 1, fw, &append), None);
    run.expect_poweroff(&tag);
    let console = &run.output.stdout;
    assert!(
        rewind_guest::parse_exit_status(console) == Some(0)
            && console.lines().any(|l| l.trim_end() == "clock: ok"),
        "{tag}: tests/guest/clock.c failed (exit status 132 is SIGILL: a clock read trapped)\n{}",
        run.describe()
    );
    // The guest's wall clock starts at 2026-01-01T00:00:00Z, not at the host's time.
    let realtime: i64 = console
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("clock: realtime "))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{tag}: no `clock: realtime` line\n{}", run.describe()));
    assert!(
        (1_767_225_600..1_767_225_600 + 60).contains(&realtime),
        "{tag}: the guest's realtime clock reads {realtime}, not the first minute of 2026\n{}",
        run.describe()
    );
}

#[test]
fn user_programs_read_the_clock_with_opensbi() {
    check_user_clock(Fw::OpenSbi);
}

#[test]
fn user_programs_read_the_clock_with_builtin_sbi() {
    check_user_clock(Fw::Builtin);
}

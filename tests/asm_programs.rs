//! Rewind's own self-checking bare-metal assembly programs (tests/asm/*.S).
//!
//! Each program is built with the RISC-V cross compiler and run with no
//! firmware: first on QEMU's `virt` board, the reference, then on Rewind
//! with each engine. Both
//! must exit 0 and print `PASS <name>`. A program checks itself and prints
//! `FAIL <name> case <n> line <l>: got 0x.. expected 0x..` (or an unexpected
//! trap) before exiting nonzero through the test finisher; see tests/asm/test.h.
//!
//! QEMU and the cross compiler are required, not optional: `./test.sh` installs
//! them (Debian packages gcc-riscv64-linux-gnu and qemu-system-misc).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The cross compiler that builds the programs.
const CROSS_GCC: &str = "riscv64-linux-gnu-gcc";
/// The reference machine.
const QEMU: &str = "qemu-system-riscv64";
/// A run that takes longer than this has hung (a program needs well under a second).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Instruction set the programs are written for (see tests/asm/test.h).
const MARCH: &str = "-march=rv64gc_zba_zbb_zbs_zicbom_zicboz_zihintpause_zicsr_zifencei";

fn asm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("asm")
}

/// Fails the test with a clear message when a required host tool is missing.
fn require_tool(tool: &str, package: &str) {
    match Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) => panic!(
            "`{tool}` cannot be run ({e}). The assembly tests need it: run ./test.sh, \
             which installs it (Debian package {package}), or install it by hand."
        ),
    }
}

/// Builds tests/asm/<name>.S (with common.S) into an ELF file and returns its path.
fn build(name: &str) -> PathBuf {
    require_tool(CROSS_GCC, "gcc-riscv64-linux-gnu");
    let dir = asm_dir();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asm");
    std::fs::create_dir_all(&out_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
    let elf = out_dir.join(format!("{name}.elf"));
    let output = Command::new(CROSS_GCC)
        .arg(MARCH)
        .args(["-mabi=lp64d", "-nostdlib", "-nostartfiles", "-static"])
        .arg("-Wl,--build-id=none")
        .arg("-T")
        .arg(dir.join("link.ld"))
        .arg("-I")
        .arg(&dir)
        .arg(dir.join("common.S"))
        .arg(dir.join(format!("{name}.S")))
        .arg("-o")
        .arg(&elf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CROSS_GCC}: {e}"));
    assert!(
        output.status.success(),
        "building tests/asm/{name}.S failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elf
}

/// What a run printed, and how it ended.
struct RunOutput {
    /// None if the run was killed after RUN_TIMEOUT.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

fn read_all(mut from: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only truncates the output shown in a failure message.
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs a command with its output captured. The run ends when its stdout closes
/// (it exited); if that has not happened after RUN_TIMEOUT, it is killed.
fn run_with_timeout(mut command: Command) -> RunOutput {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let stderr = read_all(child.stderr.take().expect("stderr is piped"));
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut bytes);
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
        status: if timed_out { None } else { Some(status) },
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Panics with the run's output unless it exited 0 and printed `PASS <name>`.
fn expect_pass(machine: &str, name: &str, elf: &Path, run: RunOutput) {
    let passed = run.status.is_some_and(|s| s.success())
        && run
            .stdout
            .lines()
            .any(|l| l.trim_end() == format!("PASS {name}"));
    if passed {
        return;
    }
    let ending = match run.status {
        None => format!("was killed after {} s (it hung)", RUN_TIMEOUT.as_secs()),
        Some(s) => format!("ended with {s}"),
    };
    panic!(
        "tests/asm/{name}.S failed on {machine}: it {ending}.\n\
         program: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        elf.display(),
        run.stdout,
        run.stderr
    );
}

fn run_on_qemu(name: &str, elf: &Path) {
    require_tool(QEMU, "qemu-system-misc");
    // The serial port goes to a file: QEMU drops bytes still queued for a
    // full pipe when the test finisher makes it exit.
    let serial = elf.with_extension("qemu-serial.txt");
    let _ = std::fs::remove_file(&serial);
    let mut command = Command::new(QEMU);
    command
        .args([
            "-M", "virt", "-bios", "none", "-display", "none", "-monitor", "none",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-kernel")
        .arg(elf);
    let mut run = run_with_timeout(command);
    run.stdout = std::fs::read(&serial)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    expect_pass("QEMU (the reference)", name, elf, run);
}

/// Runs the program on Rewind with each engine: the interpreter, and the
/// translator translating every block at its first run (the programs run
/// most of their code once).
fn run_on_rewind(name: &str, elf: &Path) {
    let engines = [
        ("Rewind (interp)", &["--engine", "interp"][..]),
        (
            "Rewind (jit)",
            &["--engine", "jit", "--jit-threshold", "0"][..],
        ),
    ];
    // The translator exists on x86-64 hosts only.
    let count = if cfg!(target_arch = "x86_64") { 2 } else { 1 };
    for (engine, options) in engines.into_iter().take(count) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rewind"));
        command
            .args(["run", "--firmware", "none"])
            .args(options)
            .arg("--kernel")
            .arg(elf);
        expect_pass(engine, name, elf, run_with_timeout(command));
    }
}

/// Builds the program, then runs it on QEMU and, once that passes, on Rewind.
fn check_program(name: &str) {
    let elf = build(name);
    run_on_qemu(name, &elf);
    run_on_rewind(name, &elf);
}

macro_rules! asm_programs {
    ($($name:ident => $test:ident,)*) => {
        $(
            #[test]
            fn $test() {
                check_program(stringify!($name));
            }
        )*

        /// Every program in tests/asm has a test above, and every test a program.
        #[test]
        fn every_asm_program_is_listed() {
            let listed: Vec<&str> = vec![$(stringify!($name)),*];
            let mut found: Vec<String> = std::fs::read_dir(asm_dir())
                .expect("tests/asm is readable")
                .filter_map(|entry| {
                    let path = entry.expect("tests/asm entry is readable").path();
                    let stem = path.file_stem()?.to_str()?.to_owned();
                    (path.extension()? == "S" && stem != "common").then_some(stem)
                })
                .collect();
            found.sort();
            let mut listed_sorted: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
            listed_sorted.sort();
            assert_eq!(
                found, listed_sorted,
                "the programs in tests/asm and the list in tests/asm_programs.rs differ"
            );
        }
    };
}

asm_programs! {
    rv64i => rv64i_instructions_pass_on_qemu_and_rewind,
    rv64m => rv64m_instructions_pass_on_qemu_and_rewind,
    rv64a => rv64a_instructions_pass_on_qemu_and_rewind,
    rv64c => rv64c_instructions_pass_on_qemu_and_rewind,
    rv64f => rv64f_instructions_and_fcsr_pass_on_qemu_and_rewind,
    rv64d => rv64d_instructions_pass_on_qemu_and_rewind,
    zb => zba_zbb_zbs_instructions_pass_on_qemu_and_rewind,
    zicsr => zicsr_instructions_and_csrs_pass_on_qemu_and_rewind,
    counters => counters_and_counter_enables_pass_on_qemu_and_rewind,
    cbo => cache_block_operations_pass_on_qemu_and_rewind,
    traps => trap_causes_and_values_pass_on_qemu_and_rewind,
    delegation => trap_and_interrupt_delegation_pass_on_qemu_and_rewind,
    interrupts => interrupt_sources_and_priorities_pass_on_qemu_and_rewind,
    wfi => wfi_waits_and_traps_pass_on_qemu_and_rewind,
    sstc => sstc_supervisor_timer_passes_on_qemu_and_rewind,
    pmp => pmp_regions_and_locks_pass_on_qemu_and_rewind,
    misaligned => misaligned_accesses_pass_on_qemu_and_rewind,
    sv39 => sv39_paging_passes_on_qemu_and_rewind,
    sv48 => sv48_paging_passes_on_qemu_and_rewind,
    sv57 => sv57_paging_passes_on_qemu_and_rewind,
}

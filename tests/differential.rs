//! Differential tests against QEMU: generated instruction sequences must
//! produce the same bytes on `qemu-system-riscv64 -M virt -bios none` and on
//! `rewind run --firmware none` with the translating engine translating
//! every block at its first run (the interpreter is held to the translator
//! by crates/hart/tests/engines.rs, and to QEMU by tests/asm_programs.rs).
//!
//! Each test generates sequences of one instruction class (tests/diff/gen.rs),
//! batches them into bare-metal programs (tests/diff/harness.S,
//! tests/diff/seq_macros.inc, tests/diff/link.ld), builds them with
//! riscv64-linux-gnu-gcc, runs every program on QEMU (the reference) and on
//! the subject, and compares the per-sequence register and memory dumps.
//!
//! Environment:
//! - `REWIND_DIFF_SEED`: base seed (decimal or 0x-hex); default `BASE_SEED`.
//! - `REWIND_DIFF_SEQUENCES`: sequences per test (default `DEFAULT_SEQUENCES`).
//! - `REWIND_DIFF_ONLY`: run only this sequence index (to reproduce a failure;
//!   alone in its program, its code sits at other addresses than in the full
//!   run, which only auipc/jal/lla results show; the kept program of a failing
//!   run reproduces it exactly: `rewind run --firmware none --kernel <elf>`).
//! - `REWIND_DIFF_SUBJECT=qemu`: compare QEMU with itself instead of Rewind,
//!   which checks that the generated programs are deterministic.
//! - `REWIND_DIFF_CC`, `REWIND_DIFF_QEMU`: tool paths (default from `PATH`).
//! - `REWIND_DIFF_JOBS`: programs in flight per test (default `DEFAULT_JOBS`).
//! - `REWIND_DIFF_KEEP=1`: keep the programs and outputs of passing batches
//!   (failing ones are always kept) in `$CARGO_TARGET_TMPDIR/differential/`.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

#[path = "diff/gen.rs"]
mod gen;

use gen::{Class, Sequence};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

const BASE_SEED: u64 = 0x5eed_0000_d1ff_2024;
/// Sequences per test when REWIND_DIFF_SEQUENCES is not set.
const DEFAULT_SEQUENCES: u64 = 8000;
/// Sequences per program: amortizes the start-up of gcc and QEMU.
const SEQUENCES_PER_PROGRAM: u64 = 100;
/// Programs in flight per test (cargo runs tests in parallel as well).
const DEFAULT_JOBS: usize = 2;
/// A run that takes longer than this has hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Stop a test after this many mismatching sequences.
const MAX_REPORTED: usize = 5;

const MARCH: &str = "-march=rv64gc_zba_zbb_zbs";

#[test]
fn integer_sequences_match_qemu() {
    run_class(Class::Integer, "integer_sequences_match_qemu");
}

#[test]
fn fp_sequences_match_qemu() {
    run_class(Class::Fp, "fp_sequences_match_qemu");
}

#[test]
fn atomic_and_memory_sequences_match_qemu() {
    run_class(
        Class::AtomicMemory,
        "atomic_and_memory_sequences_match_qemu",
    );
}

#[test]
fn compressed_and_branch_sequences_match_qemu() {
    run_class(
        Class::CompressedBranch,
        "compressed_and_branch_sequences_match_qemu",
    );
}

#[test]
fn mixed_sequences_match_qemu() {
    run_class(Class::Mixed, "mixed_sequences_match_qemu");
}

// ---------------------------------------------------------------------------
// Configuration

#[derive(Clone, Debug)]
enum Subject {
    Rewind(PathBuf),
    Qemu,
}

impl Subject {
    fn name(&self) -> &'static str {
        match self {
            Subject::Rewind(_) => "rewind",
            Subject::Qemu => "qemu (second run)",
        }
    }

    fn file_tag(&self) -> &'static str {
        match self {
            Subject::Rewind(_) => "rewind",
            Subject::Qemu => "qemu2",
        }
    }
}

struct Config {
    seed: u64,
    count: u64,
    only: Option<u64>,
    subject: Subject,
    cc: String,
    qemu: String,
    keep: bool,
    jobs: usize,
}

fn parse_u64(name: &str, text: &str) -> u64 {
    let t = text.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a decimal or 0x-hex integer"))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| parse_u64(name, &v))
}

impl Config {
    fn from_env() -> Config {
        let subject = match std::env::var("REWIND_DIFF_SUBJECT").as_deref() {
            Ok("qemu") => Subject::Qemu,
            Ok("rewind") | Err(_) => Subject::Rewind(PathBuf::from(env!("CARGO_BIN_EXE_rewind"))),
            Ok(other) => panic!("REWIND_DIFF_SUBJECT={other:?}: expected `rewind` or `qemu`"),
        };
        Config {
            seed: env_u64("REWIND_DIFF_SEED").unwrap_or(BASE_SEED),
            count: env_u64("REWIND_DIFF_SEQUENCES").unwrap_or(DEFAULT_SEQUENCES),
            only: env_u64("REWIND_DIFF_ONLY"),
            subject,
            cc: std::env::var("REWIND_DIFF_CC").unwrap_or_else(|_| "riscv64-linux-gnu-gcc".into()),
            qemu: std::env::var("REWIND_DIFF_QEMU")
                .unwrap_or_else(|_| "qemu-system-riscv64".into()),
            keep: std::env::var_os("REWIND_DIFF_KEEP").is_some(),
            jobs: env_u64("REWIND_DIFF_JOBS")
                .unwrap_or(DEFAULT_JOBS as u64)
                .max(1) as usize,
        }
    }
}

/// Fails (never skips) when a tool is missing.
fn require_tool(program: &str, package: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{program}` is missing or does not run. The differential tests need it and fail \
         without it: ./test.sh installs it (`apt-get install {package}` on Debian/Ubuntu), \
         or point REWIND_DIFF_CC / REWIND_DIFF_QEMU at it."
    );
}

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("diff")
}

// ---------------------------------------------------------------------------
// Running programs

struct RunOutput {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
    timed_out: bool,
}

impl RunOutput {
    fn describe_end(&self) -> String {
        let status = if self.timed_out {
            format!("killed after {} s (hang)", RUN_TIMEOUT.as_secs())
        } else {
            match self.status {
                Some(s) => format!("{s}"),
                None => "no exit status".into(),
            }
        };
        let stderr = String::from_utf8_lossy(&self.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        if tail.is_empty() {
            status
        } else {
            format!("{status}; stderr ends with:\n    {}", tail.join("\n    "))
        }
    }
}

/// Runs `cmd` with a watchdog: a run that does not finish within
/// RUN_TIMEOUT is killed and reported as a hang.
fn run_with_timeout(mut cmd: Command) -> RunOutput {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let (done_tx, done_rx) = mpsc::channel();
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        let _ = done_tx.send(());
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    // stdout reaches end of file when the process exits (or closes it).
    let timed_out = match done_rx.recv_timeout(RUN_TIMEOUT) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => false,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            true
        }
    };
    let status = child.wait().ok();
    RunOutput {
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
        status,
        timed_out,
    }
}

fn run_qemu(cfg: &Config, elf: &Path) -> RunOutput {
    // QEMU's serial port goes to a file, not a pipe: when a pipe is full,
    // QEMU holds bytes back and its exit through the test finisher drops
    // them, which made runs on a loaded machine lose their last lines.
    let serial = elf.with_extension("qemu-serial.txt");
    let _ = std::fs::remove_file(&serial);
    let mut cmd = Command::new(&cfg.qemu);
    cmd.args([
        "-M", "virt", "-bios", "none", "-display", "none", "-monitor", "none",
    ])
    .arg("-serial")
    .arg(format!("file:{}", serial.display()))
    .arg("-kernel")
    .arg(elf);
    let mut run = run_with_timeout(cmd);
    run.stdout = std::fs::read(&serial).unwrap_or_default();
    run
}

fn run_subject(cfg: &Config, elf: &Path) -> RunOutput {
    match &cfg.subject {
        Subject::Qemu => run_qemu(cfg, elf),
        Subject::Rewind(bin) => {
            let mut cmd = Command::new(bin);
            // The translating engine (on x86-64 hosts), translating every
            // block at its first run: generated sequences run once.
            cmd.arg("run");
            if cfg!(target_arch = "x86_64") {
                cmd.args(["--engine", "jit", "--jit-threshold", "0"]);
            }
            cmd.args(["--firmware", "none", "--kernel"]).arg(elf);
            run_with_timeout(cmd)
        }
    }
}

fn build(cfg: &Config, source: &Path, elf: &Path) -> Result<(), String> {
    let dir = diff_dir();
    let output = Command::new(&cfg.cc)
        .args([
            MARCH,
            "-mabi=lp64d",
            "-nostdlib",
            "-nostartfiles",
            "-static",
            "-Wl,--build-id=none",
            "-Wl,--no-relax",
            "-Wl,--no-warn-rwx-segments",
            "-T",
        ])
        .arg(dir.join("link.ld"))
        .arg(dir.join("harness.S"))
        .arg(source)
        .arg("-o")
        .arg(elf)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cfg.cc))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} failed to build {} (a generator bug):\n{}",
        cfg.cc,
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    ))
}

// ---------------------------------------------------------------------------
// Comparing outputs

/// The output of one program, cut into per-sequence blocks.
struct Parsed<'a> {
    /// Lines before the first sequence header.
    preamble: Vec<&'a str>,
    blocks: BTreeMap<u64, Vec<&'a str>>,
    /// Sequence indices in output order.
    order: Vec<u64>,
    /// "END", a "TRAP ..." line, or nothing (output cut short).
    ending: Option<&'a str>,
}

fn parse(text: &str) -> Parsed<'_> {
    let mut p = Parsed {
        preamble: Vec::new(),
        blocks: BTreeMap::new(),
        order: Vec::new(),
        ending: None,
    };
    let mut current: Option<u64> = None;
    for line in text.lines() {
        if let Some(hex) = line.strip_prefix('@') {
            if let Ok(index) = u64::from_str_radix(hex, 16) {
                current = Some(index);
                p.order.push(index);
                p.blocks.insert(index, Vec::new());
                continue;
            }
        }
        if line == "END" || line.starts_with("TRAP ") {
            p.ending = Some(line);
        }
        match current {
            Some(i) => p.blocks.get_mut(&i).expect("block").push(line),
            None => p.preamble.push(line),
        }
    }
    p
}

/// One differing dump entry: a register, fcsr/fflags, or a scratch
/// doubleword. `None` means the side did not print it (it kept its initial
/// value).
struct Difference {
    key: String,
    reference: Option<String>,
    subject: Option<String>,
}

struct Mismatch {
    index: u64,
    report: String,
    /// Empty when the subject printed nothing for the sequence.
    differences: Vec<Difference>,
}

/// The sequence at `index` within `sequences`.
fn find(sequences: &[Sequence], index: u64) -> &Sequence {
    sequences
        .iter()
        .find(|s| s.index == index)
        .expect("sequence of this program")
}

fn describe_sequence(seq: &Sequence) -> String {
    format!(
        "initial state:\n{}\ngenerated code:\n{}",
        indent(&seq.describe_initial_state()),
        indent(&seq.body())
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// A sequence's dump as (key, value) entries in output order.
fn entries<'a>(lines: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    lines
        .iter()
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect()
}

/// The differing entries of two dumps of the same sequence.
fn differences(reference: &[&str], subject: &[&str]) -> Vec<Difference> {
    let r = entries(reference);
    let s = entries(subject);
    let lookup = |list: &[(&str, &str)], key: &str| {
        list.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let mut keys: Vec<&str> = r.iter().map(|(k, _)| *k).collect();
    keys.extend(
        s.iter()
            .map(|(k, _)| *k)
            .filter(|k| !r.iter().any(|(rk, _)| rk == k)),
    );
    keys.into_iter()
        .filter_map(|key| {
            let (a, b) = (lookup(&r, key), lookup(&s, key));
            (a != b).then(|| Difference {
                key: key.to_string(),
                reference: a,
                subject: b,
            })
        })
        .collect()
}

/// Compares the subject's output with QEMU's, sequence by sequence.
fn compare(cfg: &Config, reference: &RunOutput, subject: &RunOutput) -> Vec<Mismatch> {
    let ref_text = String::from_utf8_lossy(&reference.stdout);
    let sub_text = String::from_utf8_lossy(&subject.stdout);
    let r = parse(&ref_text);
    let s = parse(&sub_text);
    let who = cfg.subject.name();
    let tag = format!("{}:", cfg.subject.file_tag());
    let mut found = Vec::new();

    for &index in &r.order {
        let Some(sub_lines) = s.blocks.get(&index) else {
            // Once the subject's output stops, every later sequence is missing too.
            found.push(Mismatch {
                index,
                differences: Vec::new(),
                report: format!(
                    "{who} printed nothing for this sequence (its output ends with {:?}; {})",
                    sub_text.lines().last().unwrap_or(""),
                    subject.describe_end()
                ),
            });
            return found;
        };
        let diffs = differences(&r.blocks[&index], sub_lines);
        if diffs.is_empty() {
            continue;
        }
        let mut report = String::from("differences (\"-\": not printed, i.e. unchanged):\n");
        for d in diffs.iter().take(16) {
            let _ = writeln!(
                report,
                "    {:<7} qemu: {:<18} {tag:<8}{}",
                d.key,
                d.reference.as_deref().unwrap_or("-"),
                d.subject.as_deref().unwrap_or("-")
            );
        }
        if subject.timed_out || !subject.status.is_some_and(|st| st.success()) {
            let _ = writeln!(report, "({who}: {})", subject.describe_end());
        }
        found.push(Mismatch {
            index,
            report,
            differences: diffs,
        });
    }
    if found.is_empty()
        && (ref_text != sub_text
            || reference.status.map(|s| s.code()) != subject.status.map(|s| s.code()))
    {
        // Same sequence dumps, but something around them differs.
        let first = ref_text
            .lines()
            .zip(sub_text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(ref_text.lines().count().min(sub_text.lines().count()));
        let last = *r.order.last().unwrap_or(&0);
        found.push(Mismatch {
            index: last,
            differences: Vec::new(),
            report: format!(
                "all sequence dumps match, but the output or exit differs at output line {}:\n    \
                 qemu:   {:?} ({})\n    {tag:<8}{:?} ({})\n  (extra lines before the first \
                 sequence: {:?})",
                first + 1,
                ref_text.lines().nth(first).unwrap_or("<end of output>"),
                reference.describe_end(),
                sub_text.lines().nth(first).unwrap_or("<end of output>"),
                subject.describe_end(),
                s.preamble,
            ),
        });
    }
    found
}

/// The reference run must be clean; otherwise the generator (or the harness)
/// produced something that traps or hangs, which is a bug of this test.
fn check_reference(
    cfg: &Config,
    class: Class,
    sequences: &[Sequence],
    reference: &RunOutput,
    source: &Path,
) -> Result<(), String> {
    let text = String::from_utf8_lossy(&reference.stdout);
    let r = parse(&text);
    let clean = !reference.timed_out
        && reference.status.is_some_and(|s| s.success())
        && r.ending == Some("END")
        && r.order.len() == sequences.len()
        && r.preamble.is_empty();
    if clean {
        return Ok(());
    }
    let culprit = r.order.last().map(|&i| find(sequences, i));
    Err(format!(
        "QEMU did not run {} cleanly (seed {:#x}, class {}): {} sequences of {} printed, \
         ending {:?}; {}.\nThis is a bug of the generator or harness (tests/diff/).\n{}",
        source.display(),
        cfg.seed,
        class.name(),
        r.order.len(),
        sequences.len(),
        r.ending,
        reference.describe_end(),
        culprit
            .map(|s| format!(
                "last sequence started: {}\n{}",
                s.index,
                describe_sequence(s)
            ))
            .unwrap_or_default()
    ))
}

// ---------------------------------------------------------------------------
// The test driver

/// Known deviations of QEMU 7.2 (the reference) from the RISC-V
/// specification. A sequence whose first differing item is one of these, as
/// verified on the values, is counted and skipped rather than reported: the
/// subject must produce the value the specification requires in at least one
/// differing register written by the suspect instruction in that item.
///
/// - ctzw: QEMU 7.2 counts over all 64 bits when the low word is zero
///   (trans_ctzw passes the unextended operand to ctzi(.., 32)), returning
///   33..=63 instead of 32. Fixed upstream in QEMU 8.1.
fn known_qemu_bug(item: &str, seq: &Sequence, m: &Mismatch) -> Option<&'static str> {
    if m.differences.is_empty() {
        return None;
    }
    let ctzw_rds: Vec<usize> = item
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ctzw x"))
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .collect();
    let is_ctzw_bug = |d: &Difference| {
        let Some(rd) = d
            .key
            .strip_prefix('x')
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return false;
        };
        let value = |v: &Option<String>| match v {
            Some(v) => u64::from_str_radix(v, 16).ok(),
            None => seq.table.get(34 + rd).copied(),
        };
        ctzw_rds.contains(&rd)
            && value(&d.reference).is_some_and(|v| (33..=63).contains(&v))
            && value(&d.subject) == Some(32)
    };
    // Other differences may follow from the wrong value within the same item
    // (say, a branch over `ctzw x4, x26; zext.h x19, x4`).
    m.differences
        .iter()
        .any(is_ctzw_bug)
        .then_some("QEMU 7.2 ctzw of a zero low word (returns ctz of all 64 bits, not 32)")
}

/// The first item of a mismatching sequence after which the outputs differ,
/// found by running every prefix of the sequence (same initial state, first
/// k items).
struct Culprit {
    /// Number of items in the shortest differing prefix.
    len: usize,
    mismatch: Mismatch,
    elf: PathBuf,
}

/// Runs every prefix of every sequence in `seqs` in one program. Prefix k of
/// `seqs[i]` is numbered i * 1000 + k.
fn find_culprits(
    cfg: &Config,
    work: &Path,
    stem: &str,
    seqs: &[&Sequence],
) -> Result<Vec<Option<Culprit>>, String> {
    let prefixes: Vec<Sequence> = seqs
        .iter()
        .enumerate()
        .flat_map(|(i, seq)| {
            (1..=seq.items.len()).map(move |k| seq.prefix(k, i as u64 * 1000 + k as u64))
        })
        .collect();
    let macros = diff_dir().join("seq_macros.inc");
    let source = work.join(format!("{stem}_prefixes.S"));
    let elf = source.with_extension("elf");
    std::fs::write(
        &source,
        gen::program_source(macros.to_str().expect("UTF-8 path"), &prefixes),
    )
    .map_err(|e| format!("cannot write {}: {e}", source.display()))?;
    build(cfg, &source, &elf)?;
    let reference = run_qemu(cfg, &elf);
    let subject = run_subject(cfg, &elf);
    let mut culprits: Vec<Option<Culprit>> = seqs.iter().map(|_| None).collect();
    for m in compare(cfg, &reference, &subject) {
        let i = (m.index / 1000) as usize;
        if i < culprits.len() && culprits[i].is_none() {
            culprits[i] = Some(Culprit {
                len: (m.index % 1000) as usize,
                mismatch: m,
                elf: elf.clone(),
            });
        }
    }
    Ok(culprits)
}

/// What one program found.
#[derive(Default)]
struct BatchOutcome {
    sequences: u64,
    /// Reports of mismatching sequences.
    failures: Vec<String>,
    /// Sequences skipped because of a known QEMU bug: (index, which bug).
    known_bugs: Vec<(u64, &'static str)>,
    /// The subject hung or stopped before the end: stop the test here
    /// rather than wait for it on every program.
    fatal: bool,
}

/// Builds and runs one program of `indices`. Returns an error if the program
/// could not be built or did not run cleanly on QEMU (a bug of this test).
fn run_batch(
    cfg: &Config,
    class: Class,
    test_name: &str,
    work: &Path,
    macros: &str,
    indices: &[u64],
) -> Result<BatchOutcome, String> {
    let sequences: Vec<Sequence> = indices
        .iter()
        .map(|&i| gen::generate(class, cfg.seed, i))
        .collect();
    let stem = format!("prog_{}", indices[0]);
    let source = work.join(format!("{stem}.S"));
    let elf = work.join(format!("{stem}.elf"));
    std::fs::write(&source, gen::program_source(macros, &sequences)).expect("write source");
    build(cfg, &source, &elf)?;

    let reference = run_qemu(cfg, &elf);
    check_reference(cfg, class, &sequences, &reference, &source)?;
    let subject = run_subject(cfg, &elf);
    let mismatches = compare(cfg, &reference, &subject);
    let ref_out = work.join(format!("{stem}.qemu.out"));
    let sub_out = work.join(format!("{stem}.{}.out", cfg.subject.file_tag()));

    let mut outcome = BatchOutcome {
        sequences: sequences.len() as u64,
        fatal: subject.timed_out
            || parse(&String::from_utf8_lossy(&subject.stdout)).ending != Some("END"),
        ..BatchOutcome::default()
    };
    let culprit_seqs: Vec<&Sequence> = mismatches
        .iter()
        .map(|m| find(&sequences, m.index))
        .collect();
    let culprits = if mismatches.is_empty() {
        Ok(Vec::new())
    } else {
        find_culprits(cfg, work, &stem, &culprit_seqs)
    };
    for (n, m) in mismatches.iter().enumerate() {
        let seq = culprit_seqs[n];
        let culprit = match &culprits {
            Ok(list) => match &list[n] {
                Some(c) => {
                    let item = &seq.items[c.len - 1];
                    if let Some(bug) = known_qemu_bug(item, seq, &c.mismatch) {
                        outcome.known_bugs.push((m.index, bug));
                        continue;
                    }
                    format!(
                        "first differing item: {k} of {n} (the output after the first {k} items):\n\
                         {}{}the {k} items, differing last ({}):\n{}",
                        indent(item),
                        indent(&c.mismatch.report),
                        c.elf.display(),
                        indent(&seq.items[..c.len].concat()),
                        k = c.len,
                        n = seq.items.len(),
                    )
                }
                None => "(no prefix of the sequence differs when run on its own)\n".to_string(),
            },
            Err(e) => format!("(could not narrow it down: {e})\n"),
        };
        outcome.failures.push(format!(
            "=== {class} sequence {index} (seed {seed:#x}) differs between QEMU and {who}\n\
             {report}\n\
             reproduce: REWIND_DIFF_SEED={seed:#x} REWIND_DIFF_ONLY={index} cargo test \
             --test differential {test_name}\n\
             program: {src} ({elf}); outputs: {ref_out}, {sub_out}\n{culprit}{desc}",
            class = class.name(),
            index = m.index,
            seed = cfg.seed,
            who = cfg.subject.name(),
            report = m.report.trim_end(),
            src = source.display(),
            elf = elf.display(),
            ref_out = ref_out.display(),
            sub_out = sub_out.display(),
            desc = describe_sequence(seq),
        ));
    }
    if outcome.failures.is_empty() && !cfg.keep {
        let _ = std::fs::remove_file(&source);
        let _ = std::fs::remove_file(&elf);
    } else {
        std::fs::write(&ref_out, &reference.stdout).expect("write output");
        std::fs::write(&sub_out, &subject.stdout).expect("write output");
    }
    Ok(outcome)
}

fn run_class(class: Class, test_name: &str) {
    let cfg = Config::from_env();
    require_tool(&cfg.cc, "gcc-riscv64-linux-gnu");
    require_tool(&cfg.qemu, "qemu-system-misc");
    if let Subject::Rewind(bin) = &cfg.subject {
        assert!(
            bin.exists(),
            "the rewind binary {} does not exist",
            bin.display()
        );
    }

    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("differential")
        .join(class.name());
    std::fs::create_dir_all(&work).expect("create the work directory");
    let macros = diff_dir().join("seq_macros.inc");
    let macros = macros.to_str().expect("UTF-8 path");

    let batches: Vec<Vec<u64>> = match cfg.only {
        Some(i) => vec![vec![i]],
        None => (0..cfg.count)
            .collect::<Vec<u64>>()
            .chunks(SEQUENCES_PER_PROGRAM as usize)
            .map(|c| c.to_vec())
            .collect(),
    };

    // Batches run on a few worker threads: a run is mostly waiting on
    // process start-up and pipes, so this fills the host's cores.
    let next = AtomicUsize::new(0);
    let stop = AtomicUsize::new(0);
    type BatchResult = (usize, Result<BatchOutcome, String>);
    let results: Mutex<Vec<BatchResult>> = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..cfg.jobs.min(batches.len()).max(1) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= batches.len() || stop.load(Ordering::SeqCst) >= MAX_REPORTED {
                    break;
                }
                let result = run_batch(&cfg, class, test_name, &work, macros, &batches[n]);
                let bad = match &result {
                    Ok(outcome) if !outcome.fatal => outcome.failures.len(),
                    _ => MAX_REPORTED,
                };
                stop.fetch_add(bad, Ordering::SeqCst);
                results.lock().expect("results").push((n, result));
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.0);
    let mut ran = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut known: Vec<(u64, &str)> = Vec::new();
    for (_, result) in results {
        match result {
            Ok(outcome) => {
                ran += outcome.sequences;
                failures.extend(outcome.failures);
                known.extend(outcome.known_bugs);
            }
            Err(e) => panic!("{e}"),
        }
    }
    let mut known_summary = String::new();
    let mut bugs: Vec<&str> = known.iter().map(|k| k.1).collect();
    bugs.sort_unstable();
    bugs.dedup();
    for bug in bugs {
        let which: Vec<String> = known
            .iter()
            .filter(|k| k.1 == bug)
            .map(|k| k.0.to_string())
            .collect();
        let _ = writeln!(
            known_summary,
            "  skipped {} sequences for a known QEMU bug, {bug}: {}",
            which.len(),
            which.join(", ")
        );
    }
    failures.truncate(MAX_REPORTED);
    assert!(
        failures.is_empty(),
        "{} of the {ran} {} sequences run differ between QEMU and {} (at most {MAX_REPORTED} \
         shown; the run stops there):\n{known_summary}\n{}",
        failures.len(),
        class.name(),
        cfg.subject.name(),
        failures.join("\n")
    );
    eprintln!(
        "{} {} sequences (seed {:#x}) match between QEMU and {}; {} skipped\n{known_summary}",
        ran - known.len() as u64,
        class.name(),
        cfg.seed,
        cfg.subject.name(),
        known.len(),
    );
}

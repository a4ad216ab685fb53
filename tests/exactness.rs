//! Every way of reaching a state ends in the same state: bare-metal programs
//! (tests/exact/*.S) whose outcome depends on state that is easy to forget
//! (what the TLB holds after a PTE changed without SFENCE.VMA, decoded code
//! that was rewritten, LR reservations, timers, idle time) run uninterrupted
//! and are restored from snapshots taken along the way; every restore must
//! end with the same exit status and state hash as the uninterrupted run.
//!
//! The programs are built with the RISC-V cross compiler (./test.sh installs
//! it) and need no firmware, no guest download and no QEMU.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[path = "common/exact.rs"]
mod exact;
#[path = "common/process.rs"]
mod process;
use exact::build;
use process::{path_arg as arg, scratch, Finished, REWIND};

/// Runs `rewind ARGS` to its end with no input.
fn rewind(args: &[String]) -> Finished {
    process::run(REWIND, args, Stdio::null())
}

/// How a run ended: its exit status and what its report says.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Option<i32>,
    exit_reason: String,
    state_hash: String,
    /// The report's position (steps all harts took).
    position: u64,
}

fn outcome(run: &Finished, report: &Path) -> Outcome {
    let text = std::fs::read_to_string(report)
        .unwrap_or_else(|e| panic!("no report {} ({e}); {}", report.display(), run.describe()));
    let json: Value = serde_json::from_str(&text).expect("the report is JSON");
    Outcome {
        code: run.code(),
        exit_reason: json["exit_reason"].as_str().unwrap_or_default().to_string(),
        state_hash: json["state_hash"].as_str().unwrap_or_default().to_string(),
        position: json["position"].as_u64().unwrap_or(u64::MAX),
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The options that run program `elf` on `harts` harts.
fn program_args(elf: &Path, harts: u32) -> Vec<String> {
    strings(&[
        "--firmware",
        "none",
        "--kernel",
        &arg(elf),
        "--smp",
        &harts.to_string(),
    ])
}

/// Runs the program uninterrupted, taking a snapshot every `every`
/// instructions, then restores each snapshot and checks that it ends as
/// the uninterrupted run did. Returns that ending and the snapshot count.
fn every_snapshot_restores_to_the_same_end(
    name: &'static str,
    harts: u32,
    every: u64,
) -> (Outcome, usize) {
    let elf = build(name);
    let dir = scratch("exactness", name);
    let snaps = dir.join("snaps");
    let report = dir.join("run.json");
    let mut args = vec!["run".to_string()];
    args.extend(program_args(&elf, harts));
    args.extend(strings(&[
        "--snapshot-every",
        &every.to_string(),
        "--snapshot-dir",
        &arg(&snaps),
        "--report",
        &arg(&report),
    ]));
    let run = rewind(&args);
    let reference = outcome(&run, &report);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&snaps)
        .expect("the snapshot directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "too few snapshots: {}", run.describe());
    for file in &files {
        let report = dir.join("restored.json");
        let restored = rewind(&strings(&[
            "restore",
            &arg(file),
            "--report",
            &arg(&report),
        ]));
        assert_eq!(
            outcome(&restored, &report),
            reference,
            "{name} restored from {} ends differently from the uninterrupted run; {}",
            file.display(),
            restored.describe()
        );
    }
    (reference, files.len())
}

/// A hart keeps using a translation its page table no longer has until
/// SFENCE.VMA: the TLB is state, and a restore must bring it back.
#[test]
fn a_translation_cached_before_a_pte_changed_survives_a_restore() {
    let (end, _) = every_snapshot_restores_to_the_same_end("stale_tlb", 1, 100_000);
    assert_eq!(
        (end.code, end.exit_reason.as_str()),
        (Some(0), "poweroff"),
        "the uninterrupted run did not keep its cached translations: {end:?}"
    );
}

/// Rewritten code, LR/SC, timers, idle time and page flips on two harts.
#[test]
fn two_harts_rewriting_code_and_page_tables_restore_from_any_snapshot() {
    let (end, count) = every_snapshot_restores_to_the_same_end("mix", 2, 50_000);
    assert_eq!(
        (end.code, end.exit_reason.as_str()),
        (Some(0), "poweroff"),
        "{end:?}"
    );
    assert!(count >= 10, "only {count} snapshots");
}

/// Runs `rewind ARGS --report FILE` and returns how it ended.
fn outcome_of(dir: &Path, name: &str, mut args: Vec<String>) -> (Outcome, Finished) {
    let report = dir.join(format!("{name}.json"));
    args.extend(strings(&["--report", &arg(&report)]));
    let run = rewind(&args);
    (outcome(&run, &report), run)
}

/// `--stop-at N` stops at position N (after N steps, before the next), and every
/// way of getting there (a run, a recording made with it, a replay of a
/// longer recording, a restore of an earlier snapshot, a restore of a
/// snapshot taken exactly there) ends in the same state.
#[test]
fn every_way_to_stop_at_a_position_ends_in_the_same_state() {
    let elf = build("mix");
    let program = program_args(&elf, 2);
    let dir = scratch("exactness", "stop-at");
    let with = |first: &[&str], rest: &[&str]| {
        let mut args = strings(first);
        args.extend(program.iter().cloned());
        args.extend(strings(rest));
        args
    };
    // One recording of the whole run, for the replays.
    let whole = dir.join("whole.rwd");
    let (recorded, run) = outcome_of(&dir, "whole", with(&["record", "-o", &arg(&whole)], &[]));
    assert_eq!(recorded.exit_reason, "poweroff", "{}", run.describe());
    // Counts inside hart 0's turn, inside hart 1's, at the end of a turn,
    // and at power-on.
    for n in [0u64, 1, 9_999, 10_000, 15_003, 333_333, 777_777] {
        let n_arg = n.to_string();
        let stop = ["--stop-at", n_arg.as_str()];
        let (reference, run) = outcome_of(&dir, "run", with(&["run"], &stop));
        assert_eq!(
            (
                reference.code,
                reference.exit_reason.as_str(),
                reference.position
            ),
            (Some(0), "stop-at", n),
            "run --stop-at {n}; {}",
            run.describe()
        );
        let mut ways = Vec::new();
        ways.push((
            "a replay of the whole recording",
            strings(&["replay", &arg(&whole), "--stop-at", &n_arg]),
        ));
        let short = dir.join(format!("stopped-{n}.rwd"));
        let (made, run) = outcome_of(&dir, "record", with(&["record", "-o", &arg(&short)], &stop));
        assert_eq!(made, reference, "record --stop-at {n}; {}", run.describe());
        ways.push((
            "a replay of a recording made with --stop-at",
            strings(&["replay", &arg(&short)]),
        ));
        for at in [n / 2, n] {
            let snap = dir.join(format!("at-{at}.rws"));
            let at_arg = at.to_string();
            let taken = rewind(&with(
                &["run"],
                &["--snapshot-at", &at_arg, "--snapshot-out", &arg(&snap)],
            ));
            assert!(snap.exists(), "{}", taken.describe());
            ways.push((
                if at == n {
                    "a restore of a snapshot taken there"
                } else {
                    "a restore of an earlier snapshot"
                },
                strings(&["restore", &arg(&snap), "--stop-at", &n_arg]),
            ));
        }
        for (way, args) in ways {
            let (got, run) = outcome_of(&dir, "way", args);
            assert_eq!(got, reference, "{way}, stopped at {n}; {}", run.describe());
        }
    }
}

#[test]
fn a_restore_cannot_stop_before_its_snapshot() {
    let elf = build("stale_tlb");
    let dir = scratch("exactness", "stop-before");
    let snap = dir.join("s.rws");
    let mut args = strings(&["run"]);
    args.extend(program_args(&elf, 1));
    args.extend(strings(&[
        "--snapshot-at",
        "200000",
        "--snapshot-out",
        &arg(&snap),
    ]));
    rewind(&args);
    let run = rewind(&strings(&["restore", &arg(&snap), "--stop-at", "1000"]));
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    assert_eq!(
        run.stderr_lines(),
        ["rewind: --stop-at 1000 is before the snapshot, which was taken at position 200000"],
        "{}",
        run.describe()
    );
}

/// A replay that starts from a snapshot taken while the recording was
/// made (in the middle of a round, with a translation the page table no
/// longer has in the TLB) reaches the recorded end, checkpoints and all.
#[test]
fn a_replay_from_a_snapshot_with_a_stale_translation_matches_the_recording() {
    let elf = build("stale_tlb");
    let dir = scratch("exactness", "replay-from");
    let recording = dir.join("run.rwd");
    let snap = dir.join("spin.rws");
    let mut args = strings(&["record", "-o", &arg(&recording)]);
    args.extend(program_args(&elf, 1));
    args.extend(strings(&[
        "--checkpoint-every",
        "50000",
        "--snapshot-at",
        "300001",
        "--snapshot-out",
        &arg(&snap),
    ]));
    let (recorded, run) = outcome_of(&dir, "record", args);
    assert_eq!(recorded.code, Some(0), "{}", run.describe());
    let (replayed, run) = outcome_of(
        &dir,
        "replay",
        strings(&["replay", &arg(&recording), "--from", &arg(&snap)]),
    );
    assert_eq!(replayed, recorded, "{}", run.describe());
    assert!(
        run.stderr.contains("matches the recording"),
        "{}",
        run.describe()
    );
}

//! `--seed N` seeds everything the guest draws entropy from: the same seed
//! repeats a run to the same state, another seed gives the guest other
//! random numbers, and a recording keeps its seed so that replay repeats it.

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;

#[path = "common/process.rs"]
mod process;
use process::{path_arg as arg, scratch, Finished, REWIND};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// What the guest printed between the markers, and the report.
struct Run {
    finished: Finished,
    random: String,
    report: Value,
}

/// Boots the default guest with `args`, has it print 16 bytes of
/// /dev/urandom, and powers it off.
fn run(dir: &Path, name: &str, args: &[&str]) -> Run {
    let script = dir.join("script.txt");
    std::fs::write(
        &script,
        "echo RANDOM-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')-END\npoweroff -f\n",
    )
    .unwrap();
    let report = dir.join(format!("{name}.json"));
    let mut all = strings(args);
    all.extend(strings(&["--mem", "256M", "--report", &arg(&report)]));
    let stdin = std::fs::File::open(&script).unwrap();
    let finished = process::run(REWIND, &all, Stdio::from(stdin));
    let out = finished.stdout_text();
    let random = out
        .rsplit("RANDOM-")
        .next()
        .and_then(|rest| rest.split("-END").next())
        .filter(|r| r.len() == 32)
        .unwrap_or_else(|| panic!("the guest printed no random bytes\n{}", finished.describe()))
        .to_string();
    let report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    Run {
        finished,
        random,
        report,
    }
}

#[test]
fn the_same_seed_repeats_a_run_and_another_seed_changes_the_guests_entropy() {
    let dir = scratch("seeds", "linux");
    let first = run(&dir, "seed-7-a", &["run", "--seed", "7"]);
    let again = run(&dir, "seed-7-b", &["run", "--seed", "7"]);
    let other = run(&dir, "seed-8", &["run", "--seed", "8"]);
    let default = run(&dir, "default", &["run"]);
    for r in [&first, &again, &other, &default] {
        assert_eq!(r.finished.code(), Some(0), "{}", r.finished.describe());
    }
    assert_eq!(first.random, again.random);
    assert_eq!(first.report["state_hash"], again.report["state_hash"]);
    assert_eq!(first.report["seed"], 7);
    assert_ne!(
        first.random, other.random,
        "seeds 7 and 8 gave the same bytes"
    );
    assert_ne!(first.report["state_hash"], other.report["state_hash"]);
    assert_eq!(default.report["seed"], 0);

    // A recording keeps its seed, and its replay draws the same bytes.
    let recording = dir.join("seed-8.rwd");
    let recorded = run(
        &dir,
        "recorded",
        &["record", "-o", &arg(&recording), "--seed", "8"],
    );
    assert_eq!(recorded.random, other.random);
    let report = dir.join("replay.json");
    let replay = process::run(
        REWIND,
        &strings(&["replay", &arg(&recording), "--report", &arg(&report)]),
        Stdio::null(),
    );
    assert_eq!(replay.code(), Some(0), "{}", replay.describe());
    assert!(
        replay.stdout_text().contains(&other.random),
        "{}",
        replay.describe()
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["seed"], 8);
    assert_eq!(json["state_hash"], other.report["state_hash"]);
}

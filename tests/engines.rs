//! The two engines end in the same state: Debian's kernel booted with the
//! translator and with the interpreter (on one hart and on two) powers off
//! at the same position with the same state hash, the two boots hold the
//! same state every 50 million steps when run side by side, a guest that
//! reboots is in the same state on both, and a recording made with
//! either replays with the other, matching every checkpoint and the
//! recorded end. (crates/hart/tests/engines.rs compares them instruction
//! by instruction on random programs.)

// The translator exists on x86-64 hosts only.
#![cfg(target_arch = "x86_64")]

#[path = "common/process.rs"]
mod process;

use process::{path_arg as arg, scratch, REWIND};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs `rewind ARGS --report FILE` with `poweroff -f` typed at the shell;
/// returns the report.
fn run(dir: &Path, name: &str, args: &[&str]) -> Value {
    let input = dir.join("poweroff.txt");
    std::fs::write(&input, "poweroff -f\n").expect("the guest's input");
    let report = dir.join(format!("{name}.json"));
    let mut all = strings(args);
    all.extend(strings(&["--report", &arg(&report)]));
    let run = process::run(
        REWIND,
        &all,
        Stdio::from(std::fs::File::open(&input).expect("the input file")),
    );
    assert_eq!(run.code(), Some(0), "{name}: {}", run.describe());
    let text = std::fs::read_to_string(&report).expect("the report");
    serde_json::from_str(&text).expect("JSON")
}

/// Position, state hash and engine of a report.
fn end(report: &Value) -> (u64, String, String) {
    (
        report["position"].as_u64().expect("a position"),
        report["state_hash"].as_str().expect("a hash").to_string(),
        report["engine"].as_str().expect("an engine").to_string(),
    )
}

#[test]
fn linux_boots_to_the_same_state_on_both_engines() {
    let dir = scratch("engines", "boot");
    for harts in ["1", "2"] {
        let jit = end(&run(
            &dir,
            "jit",
            &["run", "--smp", harts, "--engine", "jit"],
        ));
        let interp = end(&run(
            &dir,
            "interp",
            &["run", "--smp", harts, "--engine", "interp"],
        ));
        assert_eq!(jit.2, "jit");
        assert_eq!(interp.2, "interp");
        assert_eq!(
            (jit.0, &jit.1),
            (interp.0, &interp.1),
            "{harts} harts: the engines end apart"
        );
    }
}

/// A guest reset builds the machine's RAM anew under the same translator:
/// a guest that reboots is, well into its second boot, in the same state
/// on both engines.
#[test]
fn a_rebooted_guest_is_in_the_same_state_on_both_engines() {
    let dir = scratch("engines", "reboot");
    // The first boot reaches the shell in about a billion steps.
    let stop = "1600000000";
    let mut ends = Vec::new();
    for engine in ["jit", "interp"] {
        let input = dir.join("reboot.txt");
        std::fs::write(&input, "reboot -f\n").expect("the guest's input");
        let report = dir.join(format!("{engine}.json"));
        let run = process::run(
            REWIND,
            &strings(&[
                "run",
                "--engine",
                engine,
                "--stop-at",
                stop,
                "--report",
                &arg(&report),
            ]),
            Stdio::from(std::fs::File::open(&input).expect("the input file")),
        );
        assert_eq!(run.code(), Some(0), "{engine}: {}", run.describe());
        let banners = run.stdout_text().matches("Linux version").count();
        assert_eq!(banners, 2, "{engine}: the guest did not boot twice");
        let text = std::fs::read_to_string(&report).expect("the report");
        ends.push(end(&serde_json::from_str(&text).expect("JSON")));
    }
    assert_eq!((ends[0].0, &ends[0].1), (ends[1].0, &ends[1].1));
}

#[test]
fn a_recording_made_with_one_engine_replays_with_the_other() {
    let dir = scratch("engines", "record-replay");
    for (recorder, replayer) in [("jit", "interp"), ("interp", "jit")] {
        let recording = dir.join(format!("{recorder}.rwd"));
        let recorded = run(
            &dir,
            &format!("record-{recorder}"),
            &["record", "-o", &arg(&recording), "--engine", recorder],
        );
        let report = dir.join(format!("replay-{replayer}.json"));
        let replay = process::run(
            REWIND,
            &strings(&[
                "replay",
                &arg(&recording),
                "--engine",
                replayer,
                "--serial",
                "none",
                "--report",
                &arg(&report),
            ]),
            Stdio::null(),
        );
        assert_eq!(replay.code(), Some(0), "{}", replay.describe());
        let replayed: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("the report"))
                .expect("JSON");
        assert_eq!(replayed["replay"]["state_hash_matches"], Value::Bool(true));
        assert!(replayed["replay"]["checkpoints_verified"].as_u64() > Some(0));
        let (position, hash, engine) = end(&replayed);
        assert_eq!(engine, replayer);
        assert_eq!((position, hash), (end(&recorded).0, end(&recorded).1));
    }
}

/// Debian's kernel booting on two harts, once per engine, in one process:
/// stopped every 50 million steps, the two machines hold the same state
/// (the whole machine's hash: harts, TLBs, RAM, devices) every time.
#[test]
fn a_linux_boot_runs_in_lockstep_on_both_engines() {
    use rewind_hart::Engine;
    use rewind_machine::{Machine, Round};
    use rewind_session::build::{machine_config, Shape, DEFAULT_RTC_EPOCH_NS};

    let boot = rewind_session::images::from_options(None, None, None, None)
        .unwrap_or_else(|e| panic!("the default guest: {e}"));
    let machine = |engine| {
        let shape = Shape {
            mem_size: 256 << 20,
            harts: 2,
            rtc_epoch_ns: DEFAULT_RTC_EPOCH_NS,
            seed: 0,
            virtio: Default::default(),
        };
        let mut m = Machine::new(machine_config(&boot, shape).expect("a configuration"))
            .expect("a machine");
        m.set_engine(engine).expect("the engine");
        m
    };
    let (mut interp, mut jit) = (machine(Engine::Interp), machine(Engine::Jit));
    // Runs to `position`; false if the machine stopped first.
    let run_to = |m: &mut Machine, position: u64| loop {
        match m.run_round_until(Some(position)) {
            Round::Paused => return true,
            Round::Stopped(_) => return false,
            Round::Idle { wake } if wake != u64::MAX => m.skip_to(wake),
            Round::Idle { .. } => return false,
            _ => {}
        }
    };
    let step = 50_000_000;
    for k in 1..=20u64 {
        let position = k * step;
        let (a, b) = (run_to(&mut interp, position), run_to(&mut jit, position));
        assert_eq!(a, b, "one engine stopped before {position}, the other not");
        assert_eq!(interp.position(), jit.position());
        assert!(
            interp.state_hash() == jit.state_hash(),
            "the engines differ at position {}",
            interp.position()
        );
        if !a {
            break;
        }
    }
    assert!(jit.harts.iter().map(|h| h.translated_steps()).sum::<u64>() > step);
}

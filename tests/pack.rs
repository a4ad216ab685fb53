//! `rewind pack` and `record --pack`: a packed recording replays, and a
//! packed snapshot restores, on a host that has none of the files the
//! machine was built from: an empty guest cache, the disk image gone.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[path = "common/exact.rs"]
mod exact;
#[path = "common/process.rs"]
mod process;
use process::{path_arg as arg, scratch, Finished, REWIND};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs `rewind ARGS` with `REWIND_CACHE=cache` and stdin from `input`.
fn rewind(args: &[String], cache: &Path, input: Option<&Path>) -> Finished {
    let stdin = match input {
        Some(path) => Stdio::from(std::fs::File::open(path).unwrap()),
        None => Stdio::null(),
    };
    let mut env_args = vec![format!("REWIND_CACHE={}", arg(cache)), REWIND.to_string()];
    env_args.extend(args.iter().cloned());
    process::run("env", &env_args, stdin)
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or(Value::Null)
}

/// A copy of this host's default guest cache, which the test may delete.
fn private_cache(dir: &Path) -> PathBuf {
    let cache = rewind_guest::default_cache_dir();
    rewind_guest::default_guest(&cache, &mut |_| {}).expect("the default guest");
    let copy = dir.join("cache");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&cache)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success(), "copying the guest cache");
    copy
}

#[test]
fn packed_recordings_and_snapshots_need_no_file_of_the_host() {
    let dir = scratch("pack", "default-guest");
    let cache = private_cache(&dir);
    let empty = dir.join("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    // A disk whose bytes the guest prints.
    let disk = dir.join("disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..16].copy_from_slice(b"packed-disk-data");
    std::fs::write(&disk, &bytes).unwrap();
    let script = dir.join("script.txt");
    std::fs::write(&script, "head -c 16 /dev/vda; echo; poweroff -f\n").unwrap();
    let machine = ["--mem", "256M", "--disk", &arg(&disk)];

    // record --pack, and a recording packed afterwards.
    let packed = dir.join("packed.rwd");
    let plain = dir.join("plain.rwd");
    let recorded_report = dir.join("recorded.json");
    let mut args = strings(&["record", "-o", &arg(&packed), "--pack"]);
    args.extend(strings(&machine));
    args.extend(strings(&["--report", &arg(&recorded_report)]));
    let recorded = rewind(&args, &cache, Some(&script));
    assert_eq!(recorded.code(), Some(0), "{}", recorded.describe());
    assert!(recorded.stdout_text().contains("packed-disk-data"));
    let mut args = strings(&["record", "-o", &arg(&plain)]);
    args.extend(strings(&machine));
    let plain_run = rewind(&args, &cache, Some(&script));
    assert_eq!(plain_run.code(), Some(0), "{}", plain_run.describe());
    let repacked = dir.join("plain.packed.rwd");
    let pack = rewind(&strings(&["pack", &arg(&plain)]), &cache, None);
    assert_eq!(pack.code(), Some(0), "{}", pack.describe());
    assert!(repacked.exists(), "{}", pack.describe());

    // A snapshot taken during boot, packed.
    let snap = dir.join("boot.rws");
    let mut args = strings(&[
        "run",
        "--snapshot-at",
        "200000000",
        "--snapshot-out",
        &arg(&snap),
    ]);
    args.extend(strings(&machine));
    let run = rewind(&args, &cache, Some(&script));
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let packed_snap = dir.join("boot.packed.rws");
    let pack = rewind(&strings(&["pack", &arg(&snap)]), &cache, None);
    assert_eq!(pack.code(), Some(0), "{}", pack.describe());

    let inspect = rewind(&strings(&["inspect", &arg(&packed)]), &cache, None);
    assert!(
        inspect.stdout_text().contains("packed      yes"),
        "{}",
        inspect.describe()
    );
    let inspect = rewind(&strings(&["inspect", &arg(&plain)]), &cache, None);
    assert!(
        inspect.stdout_text().contains("packed      no"),
        "{}",
        inspect.describe()
    );

    // Nothing of the host's is left: no cache, no disk image.
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::remove_file(&disk).unwrap();

    let expected = report(&recorded_report)["state_hash"].clone();
    for recording in [&packed, &repacked] {
        let out = dir.join("replay.json");
        let replay = rewind(
            &strings(&["replay", &arg(recording), "--report", &arg(&out)]),
            &empty,
            None,
        );
        assert_eq!(replay.code(), Some(0), "{}", replay.describe());
        assert!(replay.stdout_text().contains("packed-disk-data"));
        let json = report(&out);
        assert_eq!(json["replay"]["state_hash_matches"], true, "{json}");
        if recording == &packed {
            assert_eq!(json["state_hash"], expected);
        }
    }
    // (The unpacked recording would fetch the default guest into the empty
    // cache, then miss its disk: not tried here, to spare the download.)

    let restore = rewind(
        &strings(&["restore", &arg(&packed_snap)]),
        &empty,
        Some(&script),
    );
    assert_eq!(restore.code(), Some(0), "{}", restore.describe());
    assert!(
        restore.stdout_text().contains("packed-disk-data"),
        "{}",
        restore.describe()
    );
}

#[test]
fn pack_refuses_what_it_cannot_pack_in_one_sentence() {
    let dir = scratch("pack", "refusals");
    let cache = dir.join("cache");
    // Any program will do: the recording ends at once.
    let elf = dir.join("prog.elf");
    std::fs::copy(exact::build("fail_256"), &elf).unwrap();
    let recording = dir.join("r.rwd");
    let record = rewind(
        &strings(&[
            "record",
            "-o",
            &arg(&recording),
            "--firmware",
            "none",
            "--kernel",
            &arg(&elf),
        ]),
        &cache,
        None,
    );
    assert_eq!(record.code(), Some(1), "{}", record.describe());
    let packed = dir.join("r.packed.rwd");
    assert_eq!(
        rewind(&strings(&["pack", &arg(&recording)]), &cache, None).code(),
        Some(0)
    );
    let cases = [
        (
            strings(&["pack", &arg(&packed)]),
            "carries its files already",
        ),
        (
            strings(&["pack", &arg(&recording), "-o", &arg(&recording)]),
            "give -o a path other than",
        ),
        (
            strings(&["pack", &arg(&dir.join("missing.rwd"))]),
            "cannot open",
        ),
    ];
    for (args, expected) in cases {
        let run = rewind(&args, &cache, None);
        let lines = run.stderr_lines();
        assert!(
            run.code() == Some(1) && lines.len() == 1 && lines[0].contains(expected),
            "{}",
            run.describe()
        );
    }
    // The kernel gone, the packed recording still replays.
    std::fs::remove_file(&elf).unwrap();
    let replay = rewind(&strings(&["replay", &arg(&packed)]), &cache, None);
    assert_eq!(
        replay.code(),
        Some(1),
        "the guest's own failure: {}",
        replay.describe()
    );
    assert!(
        replay.stderr.contains("matches the recording"),
        "{}",
        replay.describe()
    );
}

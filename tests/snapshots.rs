//! Snapshots end to end: `rewind run|record --snapshot-at/--snapshot-every`,
//! `rewind restore`, `rewind replay --from` and the control socket, on the
//! default guest's kernel booting an initramfs whose `/init` runs one of
//! three non-interactive workloads (so that no input timing can differ
//! between runs) and powers off:
//!
//! - COMPUTE (one hart): awk in a loop, files in /tmp, checksums;
//! - PARALLEL (four harts): four such workers at once;
//! - DISK (one hart, an ext4 virtio disk): reads, compresses and writes
//!   files, dropping the caches, then reads back what it wrote.
//!
//! Each workload has one uninterrupted reference run (shared by the tests).
//! A run that snapshots must print the same bytes and end in the same state
//! as the reference; a run restored from a snapshot in a new process must
//! print exactly the end of the reference's console output and end with
//! the same state hash, instruction counts and guest time. The tests:
//!
//! 1. restore from snapshots taken during boot, during disk I/O, with four
//!    harts mid-workload, and while recording (then `replay --from` the
//!    full snapshot and the last of an incremental series must match the
//!    recording);
//! 2. restoring a snapshot and snapshotting again before running gives the
//!    same bytes;
//! 3. an incremental series restores from its middle and its end, and a
//!    missing link is named; a series taken while the guest writes its disk
//!    stores in each incremental snapshot only the disk blocks written since
//!    the one before, and its chain rebuilds the whole overlay exactly;
//! 4. damaged, truncated, foreign and well-sealed-but-wrong files, and
//!    changed boot files or disks, are refused with one `rewind: ` sentence;
//! 5. the control socket's status, pause, snapshot, resume and quit.
//!
//! Every run is killed after `LIMIT`: a hang is a failure. The kernel and
//! OpenSBI come from the default guest's cache (fetched on first use);
//! `mke2fs` (e2fsprogs) makes the disk image.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

#[path = "common/process.rs"]
mod process;
use process::{path_arg as arg, Finished, LIMIT, REWIND};

// ---- Scratch files -----------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("snapshots")
}

fn scratch(name: &str) -> PathBuf {
    process::scratch("snapshots", name)
}

// ---- Running rewind with a watchdog ------------------------------------------

/// A `rewind` process being run.
struct Running {
    command: String,
    child: Child,
    stdout: thread::JoinHandle<Vec<u8>>,
    /// What stderr has said so far (a thread appends as it arrives).
    stderr_so_far: Arc<Mutex<Vec<u8>>>,
    stderr: thread::JoinHandle<()>,
    #[allow(clippy::disallowed_types)] // host time of host processes, for the watchdog
    started: std::time::Instant,
}

fn read_all(mut from: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only shortens the output shown in a failure message.
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

/// Starts `rewind ARGS` with no input.
fn start(args: &[String]) -> Running {
    let command = format!("rewind {}", args.join(" "));
    let mut child = Command::new(REWIND)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let stdout = read_all(child.stdout.take().expect("stdout is piped"));
    let stderr_so_far = Arc::new(Mutex::new(Vec::new()));
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let sink = Arc::clone(&stderr_so_far);
    let stderr = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    Running {
        command,
        child,
        stdout,
        stderr_so_far,
        stderr,
        #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
        started: std::time::Instant::now(),
    }
}

impl Running {
    /// Whether stderr has said `text` so far.
    fn said(&self, text: &str) -> bool {
        let bytes = self.stderr_so_far.lock().unwrap();
        String::from_utf8_lossy(&bytes).contains(text)
    }

    /// Whether the process has ended.
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the process to end, killing it after LIMIT; with `kill`,
    /// kills it at once.
    fn finish_or_kill(mut self, kill: bool) -> Finished {
        let mut status = None;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            if kill || self.started.elapsed() > LIMIT {
                // Not reaped yet, so the pid is still this child's.
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Finished {
            command: self.command,
            status,
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: {
                let _ = self.stderr.join();
                let bytes = self.stderr_so_far.lock().unwrap();
                String::from_utf8_lossy(&bytes).into_owned()
            },
            failure: None,
            wall: self.started.elapsed(),
        }
    }

    fn finish(self) -> Finished {
        self.finish_or_kill(false)
    }
}

fn rewind(args: &[String]) -> Finished {
    start(args).finish()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

// ---- Reports ---------------------------------------------------------------------

/// What `--report` says.
#[derive(Clone, Debug)]
struct Report {
    exit_reason: String,
    /// Where the run ended (the report's position).
    position: u64,
    state_hash: String,
    json: Value,
}

fn read_report(path: &Path, run: &Finished) -> Report {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report {} ({e}); {}", path.display(), run.describe()));
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the report {} is not JSON ({e}): {text}", path.display()));
    let position = json["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position in the report: {text}"));
    Report {
        exit_reason: json["exit_reason"].as_str().unwrap_or_default().to_string(),
        position,
        state_hash: json["state_hash"].as_str().unwrap_or_default().to_string(),
        json,
    }
}

// ---- The guest -------------------------------------------------------------------

/// The compute workload: awk in a loop, files in /tmp, a checksum.
const COMPUTE: &str = r#"#!/bin/sh
set -e
echo "WORK BEGIN"
mkdir -p /tmp/w
i=0
while [ $i -lt 24 ]; do
    awk -v s=$i 'BEGIN { t = s; for (k = 0; k < 4000; k++) t = (t * 69069 + 1) % 4294967296; print t }' > /tmp/w/r$i
    echo "round $i $(cat /tmp/w/r$i)"
    i=$((i + 1))
done
echo "files $(ls /tmp/w | wc -l) sum $(cat /tmp/w/* | md5sum)"
echo "WORK END"
"#;

/// Four workers at once, for four harts.
const PARALLEL: &str = r#"#!/bin/sh
set -e
echo "WORK BEGIN"
mkdir -p /tmp/w
for w in 0 1 2 3; do
    (
        i=0
        while [ $i -lt 10 ]; do
            awk -v s=$((w * 100 + i)) 'BEGIN { t = s; for (k = 0; k < 4000; k++) t = (t * 69069 + 1) % 4294967296; print t }' > /tmp/w/r$w-$i
            i=$((i + 1))
        done
        echo "worker $w $(cat /tmp/w/r$w-* | md5sum)"
    ) &
done
wait
echo "files $(ls /tmp/w | wc -l) sum $(cat /tmp/w/* | md5sum)"
echo "WORK END"
"#;

/// Reads and writes an ext4 file system on /dev/vda, dropping the caches
/// so that the data really goes through the disk, then reads back what it
/// wrote from a fresh mount.
const DISK: &str = r#"#!/bin/sh
set -e
echo "WORK BEGIN"
mount -t ext4 /dev/vda /mnt
echo "input $(md5sum < /mnt/input.bin)"
echo "DISK BEGIN"
i=0
while [ $i -lt 16 ]; do
    echo 3 > /proc/sys/vm/drop_caches
    dd if=/mnt/input.bin bs=65536 skip=$((i * 2 % 32)) count=8 2>/dev/null | gzip -1 > /mnt/out$i.gz
    sync
    echo "out$i $(md5sum < /mnt/out$i.gz)"
    i=$((i + 1))
done
umount /mnt
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 -o ro /dev/vda /mnt
echo "reread $(cat /mnt/out*.gz | md5sum)"
umount /mnt
echo "DISK END"
echo "WORK END"
"#;

struct Guest {
    kernel: PathBuf,
    firmware: PathBuf,
    initrd: PathBuf,
}

/// The default guest's kernel and firmware, and an initramfs like its own
/// with the workloads added; made once per test process.
fn guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let cache = rewind_guest::default_cache_dir();
        let mut progress = |line: &str| eprintln!("snapshot tests: {line}");
        let files = rewind_guest::default_guest(&cache, &mut progress)
            .unwrap_or_else(|e| panic!("cannot prepare the default guest: {e}"));
        let extra = [
            ("compute.sh", COMPUTE),
            ("parallel.sh", PARALLEL),
            ("disk.sh", DISK),
        ]
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec(), 0o755));
        let image = rewind_guest::default_guest_initramfs(&cache, &extra, &mut progress)
            .unwrap_or_else(|e| panic!("cannot build the test initramfs: {e}"));
        std::fs::create_dir_all(root()).expect("creating the scratch root");
        let initrd = root().join("initramfs.cpio");
        let tmp = root().join(format!("initramfs.cpio.tmp-{}", std::process::id()));
        std::fs::write(&tmp, image)
            .and_then(|()| std::fs::rename(&tmp, &initrd))
            .expect("writing the test initramfs");
        Guest {
            kernel: files.kernel,
            firmware: files.firmware,
            initrd,
        }
    })
}

/// An ext4 image holding input.bin (2 MiB of pseudo-random bytes), made
/// once per test process. It is used without `persist`, so it never changes.
fn disk_image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = scratch("disk-image");
        let content = dir.join("content");
        std::fs::create_dir_all(&content).unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..2 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(content.join("input.bin"), data).unwrap();
        let image = dir.join("vda.img");
        let out = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-d"])
            .arg(&content)
            .arg(&image)
            .arg("32M")
            .output()
            .unwrap_or_else(|e| panic!("cannot run mke2fs (Debian's e2fsprogs): {e}"));
        assert!(
            out.status.success(),
            "mke2fs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        image
    })
}

/// The configurations whose runs are snapshotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// COMPUTE on one hart.
    Compute,
    /// PARALLEL on four harts.
    Parallel,
    /// DISK on one hart with an ext4 disk.
    Disk,
}

impl Workload {
    /// The options of `rewind run` for it.
    fn args(self) -> Vec<String> {
        let g = guest();
        let (script, smp) = match self {
            Workload::Compute => ("/compute.sh", "1"),
            Workload::Parallel => ("/parallel.sh", "4"),
            Workload::Disk => ("/disk.sh", "1"),
        };
        let mut args = vec![
            "--kernel".to_string(),
            arg(&g.kernel),
            "--initrd".to_string(),
            arg(&g.initrd),
            "--firmware".to_string(),
            arg(&g.firmware),
            "--mem".to_string(),
            "256M".to_string(),
            "--smp".to_string(),
            smp.to_string(),
            "--append".to_string(),
            format!("console=ttyS0 rewind.run={script}"),
        ];
        if self == Workload::Disk {
            args.extend(["--disk".to_string(), arg(disk_image())]);
        }
        args
    }
}

// ---- Uninterrupted runs and snapshots of them ------------------------------------

/// `rewind run` of a workload with `extra` options and a report.
fn run_args(w: Workload, extra: &[String], report: &Path) -> Vec<String> {
    let mut args = vec!["run".to_string()];
    args.extend(w.args());
    args.extend(extra.iter().cloned());
    args.extend(["--report".to_string(), arg(report)]);
    args
}

/// Panics unless the run (or a restored or replayed part of one) ended
/// with the workload's script exiting 0 and the machine powering off.
fn expect_workload_finished(run: &Finished, what: &str) {
    let stdout = run.stdout_text();
    assert!(
        run.code() == Some(0)
            && stdout.contains("WORK END")
            && rewind_guest::parse_exit_status(&stdout) == Some(0),
        "{what}: the workload did not finish (exit 0 after WORK END); {}",
        run.describe()
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{what}: rewind panicked; {}",
        run.describe()
    );
}

/// One uninterrupted run of a workload, shared by the tests.
struct Reference {
    run: Finished,
    report: Report,
}

impl Reference {
    /// A point well inside the run, `num/den` of the way through.
    fn at(&self, num: u64, den: u64) -> u64 {
        self.report.position / den * num
    }
}

fn reference(w: Workload) -> &'static Reference {
    static REFERENCES: [OnceLock<Reference>; 3] = [const { OnceLock::new() }; 3];
    REFERENCES[w as usize].get_or_init(|| {
        let dir = scratch(&format!("reference-{w:?}"));
        let path = dir.join("report.json");
        let run = rewind(&run_args(w, &[], &path));
        expect_workload_finished(&run, &format!("the uninterrupted {w:?} run"));
        let report = read_report(&path, &run);
        assert_eq!(report.exit_reason, "poweroff", "{}", run.describe());
        Reference { run, report }
    })
}

/// Where a workload's shared snapshot is taken, and what the restored run
/// must (and must not) print: proof that the snapshot was taken in the
/// phase it is meant to catch.
struct Phase {
    /// The snapshot's instruction count.
    at: u64,
    /// Printed after the snapshot point.
    after: &'static str,
    /// Printed before it.
    before: &'static str,
    name: &'static str,
}

fn phase(w: Workload) -> Phase {
    let r = reference(w);
    match w {
        // The workload starts after about 850 million instructions.
        Workload::Compute => Phase {
            at: 300_000_000,
            after: "Run /init as init process",
            before: "",
            name: "during the kernel's boot",
        },
        // Boot is a quarter of the instructions; the workers the rest.
        Workload::Parallel => Phase {
            at: r.at(2, 3),
            after: "WORK END",
            before: "WORK BEGIN",
            name: "while four workers run on four harts",
        },
        // The disk phase is from about 62% to 98% of the run.
        Workload::Disk => Phase {
            at: r.at(4, 5),
            after: "DISK END",
            before: "DISK BEGIN",
            name: "while the guest reads and writes its disk",
        },
    }
}

/// A run of a workload that took a full snapshot, and where it is.
struct Snap {
    file: PathBuf,
    at: u64,
}

/// Panics unless `run`'s stderr announces the snapshot `file`.
fn expect_announced(run: &Finished, kind: &str, file: &Path) {
    let announce = format!("rewind: {kind} snapshot {} written (", file.display());
    assert!(
        run.stderr.contains(&announce) && file.exists(),
        "no `{announce}` on stderr, or no such file; {}",
        run.describe()
    );
}

/// Panics unless a run that took snapshots did exactly what the
/// uninterrupted run did: the same console bytes and the same end.
fn expect_same_as_reference(r: &Reference, run: &Finished, report: &Report, what: &str) {
    expect_workload_finished(run, what);
    assert!(
        run.stdout == r.run.stdout,
        "{what}: the console output differs from the uninterrupted run's; {}\n--- uninterrupted ---\n{}",
        run.describe(),
        r.run.describe()
    );
    assert_eq!(
        (&report.state_hash, report.position),
        (&r.report.state_hash, r.report.position),
        "{what}: the final state differs from the uninterrupted run's; {}",
        run.describe()
    );
}

/// The shared full snapshot of a workload (at `phase(w).at`), from a run
/// that must itself go on exactly as the uninterrupted one.
fn snapshot(w: Workload) -> &'static Snap {
    static SNAPS: [OnceLock<Snap>; 3] = [const { OnceLock::new() }; 3];
    SNAPS[w as usize].get_or_init(|| {
        let r = reference(w);
        let at = phase(w).at;
        let dir = scratch(&format!("snapshot-{w:?}"));
        let file = dir.join("snap.rws");
        let path = dir.join("report.json");
        let extra = strings(&[
            "--snapshot-at",
            &at.to_string(),
            "--snapshot-out",
            &arg(&file),
        ]);
        let run = rewind(&run_args(w, &extra, &path));
        let report = read_report(&path, &run);
        expect_same_as_reference(
            r,
            &run,
            &report,
            &format!("the {w:?} run that snapshots at position {at}"),
        );
        expect_announced(&run, "full", &file);
        Snap { file, at }
    })
}

/// `rewind restore FILE --report REPORT` with `extra` options.
fn restore_args(file: &Path, report: &Path, extra: &[String]) -> Vec<String> {
    let mut args = vec!["restore".to_string(), arg(file)];
    args.extend(["--report".to_string(), arg(report)]);
    args.extend(extra.iter().cloned());
    args
}

/// Panics unless `restored` (a run resumed from a snapshot at `at`)
/// finished as the uninterrupted run did: it printed exactly what that run
/// printed after the snapshot point and ended in the same state.
fn expect_finishes_like(r: &Reference, restored: &Finished, report: &Report, at: u64, what: &str) {
    let context = format!(
        "{what} (snapshot at position {at}; the uninterrupted run retires {} in all)",
        r.report.position
    );
    expect_workload_finished(restored, &context);
    assert_eq!(
        report.exit_reason,
        "poweroff",
        "{context}; {}",
        restored.describe()
    );
    assert!(
        !restored.stdout.is_empty() && r.run.stdout.ends_with(&restored.stdout),
        "{context}: the restored run's console output is not the end of the uninterrupted run's; {}\n--- uninterrupted ---\n{}",
        restored.describe(),
        r.run.describe()
    );
    assert_eq!(
        (&report.state_hash, &report.json["instructions_retired"], &report.json["guest_time_ns"]),
        (
            &r.report.state_hash,
            &r.report.json["instructions_retired"],
            &r.report.json["guest_time_ns"]
        ),
        "{context}: the restored run ends in another state (state hash, instructions per hart, guest time); {}",
        restored.describe()
    );
}

/// Restores a workload's shared snapshot and checks that the run finishes
/// like the uninterrupted one, in the phase it was meant to catch.
fn restore_finishes_like_the_uninterrupted_run(w: Workload) {
    let r = reference(w);
    let snap = snapshot(w);
    let phase = phase(w);
    let dir = scratch(&format!("restore-{w:?}"));
    let path = dir.join("report.json");
    let restored = rewind(&restore_args(&snap.file, &path, &[]));
    let report = read_report(&path, &restored);
    let what = format!("{w:?} restored from a snapshot taken {}", phase.name);
    expect_finishes_like(r, &restored, &report, snap.at, &what);
    let stdout = restored.stdout_text();
    assert!(
        stdout.contains(phase.after) && (phase.before.is_empty() || !stdout.contains(phase.before)),
        "{what}: the snapshot at position {} was not taken {} (the restored run should print `{}` but not `{}`); {}",
        snap.at,
        phase.name,
        phase.after,
        phase.before,
        restored.describe()
    );
}

// ---- 1. Restored runs finish like uninterrupted ones ------------------------------

#[test]
fn a_run_restored_from_a_snapshot_taken_during_boot_finishes_like_the_uninterrupted_run() {
    restore_finishes_like_the_uninterrupted_run(Workload::Compute);
}

#[test]
fn a_run_restored_from_a_snapshot_taken_during_disk_io_finishes_like_the_uninterrupted_run() {
    restore_finishes_like_the_uninterrupted_run(Workload::Disk);
}

#[test]
fn a_four_hart_run_restored_mid_workload_finishes_like_the_uninterrupted_run() {
    restore_finishes_like_the_uninterrupted_run(Workload::Parallel);
}

#[test]
fn a_snapshot_taken_while_recording_replays_and_restores_to_the_recorded_end() {
    let w = Workload::Compute;
    let r = reference(w);
    let at = r.at(2, 3);
    let dir = scratch("recording");
    let recording = dir.join("run.rwd");
    let file = dir.join("snap.rws");
    let record_report = dir.join("record.json");
    let mut args = vec!["record".to_string(), "-o".to_string(), arg(&recording)];
    args.extend(w.args());
    args.extend(strings(&[
        "--snapshot-at",
        &at.to_string(),
        "--snapshot-out",
        &arg(&file),
        "--report",
        &arg(&record_report),
    ]));
    // And a series, whose last (incremental) snapshot replay starts from too.
    let series = dir.join("series");
    let every = r.at(2, 7);
    args.extend(strings(&[
        "--snapshot-every",
        &every.to_string(),
        "--snapshot-dir",
        &arg(&series),
    ]));
    let recorded = rewind(&args);
    let recorded_report = read_report(&record_report, &recorded);
    expect_same_as_reference(r, &recorded, &recorded_report, "the recorded run");
    expect_announced(&recorded, "full", &file);

    // Replay from the snapshot: the rest of the recording, to its end.
    let replay_report = dir.join("replay.json");
    let replayed = rewind(&strings(&[
        "replay",
        &arg(&recording),
        "--from",
        &arg(&file),
        "--report",
        &arg(&replay_report),
    ]));
    let report = read_report(&replay_report, &replayed);
    expect_finishes_like(r, &replayed, &report, at, "the replay from the snapshot");
    assert!(
        replayed.stderr.contains("matches the recording")
            && report.json["replay"]["state_hash_matches"] == Value::Bool(true)
            && report.state_hash == recorded_report.state_hash,
        "the replay from the snapshot does not end with the recording's state hash; {}",
        replayed.describe()
    );
    let stdout = replayed.stdout_text();
    assert!(
        !stdout.contains("WORK BEGIN"),
        "the replay starts before the snapshot point ({at}); {}",
        replayed.describe()
    );

    // Restore the same snapshot as a live run: it finishes as recorded.
    let restore_report = dir.join("restore.json");
    let restored = rewind(&restore_args(&file, &restore_report, &[]));
    let report = read_report(&restore_report, &restored);
    expect_finishes_like(
        r,
        &restored,
        &report,
        at,
        "the snapshot taken while recording, restored",
    );
    assert_eq!(report.state_hash, recorded_report.state_hash);
    assert!(
        restored.stdout == replayed.stdout,
        "the restored and the replayed run print different things after the snapshot;\n--- restored ---\n{}\n--- replayed ---\n{}",
        restored.describe(),
        replayed.describe()
    );

    // The last of the series: an incremental snapshot, found with its
    // parents beside it.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&series)
        .expect("reading the snapshot directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "a snapshot every {every}: {files:?}");
    let last = &files[2];
    expect_announced(&recorded, "incremental", last);
    let replay_report = dir.join("replay-series.json");
    let from_series = rewind(&strings(&[
        "replay",
        &arg(&recording),
        "--from",
        &arg(last),
        "--report",
        &arg(&replay_report),
    ]));
    let report = read_report(&replay_report, &from_series);
    expect_finishes_like(
        r,
        &from_series,
        &report,
        every * 3,
        "the replay from the last incremental snapshot",
    );
    assert!(
        from_series.stderr.contains("matches the recording"),
        "{}",
        from_series.describe()
    );

    // A snapshot from a run that was not recorded is refused by replay.
    let other = &snapshot(Workload::Compute).file;
    let refused = rewind(&strings(&[
        "replay",
        &arg(&recording),
        "--from",
        &arg(other),
    ]));
    expect_one_error(&refused, "replay --from a snapshot of an unrecorded run");
    assert!(
        refused.stderr.contains("not taken during a recording"),
        "{}",
        refused.describe()
    );
}

// ---- 2. Save, restore, save ------------------------------------------------------

/// A snapshot as a chain of its own: a full one, or one stored on top of
/// the power-on RAM it names (whose pages it leaves out; applied over zero
/// RAM, those stay zero, which is enough to compare what it stores).
fn alone(
    snapshot: rewind_snapshot::Snapshot,
) -> Result<rewind_snapshot::SnapshotChain, rewind_snapshot::SnapshotError> {
    use rewind_snapshot::SnapshotChain;
    match snapshot.parent() {
        Some(base) => SnapshotChain::on_base(vec![snapshot], base),
        None => SnapshotChain::new(vec![snapshot]),
    }
}

/// Where two snapshot files differ, component by component and page by
/// page, for a failure message.
fn differences(a: &Path, b: &Path) -> String {
    use rewind_snapshot::Snapshot;
    let (sa, sb) = match (Snapshot::open(a), Snapshot::open(b)) {
        (Ok(sa), Ok(sb)) => (sa, sb),
        (ra, rb) => return format!("they do not both open: {:?} / {:?}", ra.err(), rb.err()),
    };
    let mut found = Vec::new();
    if (sa.parent(), sa.ram_size()) != (sb.parent(), sb.ram_size()) {
        found.push(format!(
            "header: parent {:?} vs {:?}, RAM size {} vs {}",
            sa.parent().map(|p| p.to_string()),
            sb.parent().map(|p| p.to_string()),
            sa.ram_size(),
            sb.ram_size()
        ));
    }
    let names_a: Vec<&str> = sa.components().map(|(n, _)| n).collect();
    let names_b: Vec<&str> = sb.components().map(|(n, _)| n).collect();
    if names_a != names_b {
        found.push(format!("component names/order: {names_a:?} vs {names_b:?}"));
    }
    for (name, bytes) in sa.components() {
        match sb.component(name) {
            None => found.push(format!("component `{name}` only in the first")),
            Some(other) if other != bytes => {
                let first = bytes
                    .iter()
                    .zip(other)
                    .position(|(x, y)| x != y)
                    .unwrap_or(bytes.len().min(other.len()));
                found.push(format!(
                    "component `{name}` differs ({} vs {} bytes, first difference at byte {first})",
                    bytes.len(),
                    other.len()
                ));
            }
            Some(_) => {}
        }
    }
    let pages_a: Vec<u64> = sa.page_indices().collect();
    let pages_b: Vec<u64> = sb.page_indices().collect();
    if pages_a != pages_b {
        found.push(format!(
            "the page lists differ ({} vs {} pages)",
            pages_a.len(),
            pages_b.len()
        ));
    }
    if sa.ram_size() == sb.ram_size() && sa.parent() == sb.parent() {
        let size = sa.ram_size() as usize;
        let (mut ra, mut rb) = (vec![0u8; size], vec![0u8; size]);
        let applied = alone(sa)
            .and_then(|c| c.apply_pages(&mut ra))
            .and_then(|()| alone(sb))
            .and_then(|c| c.apply_pages(&mut rb));
        match applied {
            Err(e) => found.push(format!("applying the pages failed: {e}")),
            Ok(()) => {
                let differing: Vec<String> = ra
                    .chunks(4096)
                    .zip(rb.chunks(4096))
                    .enumerate()
                    .filter(|(_, (x, y))| x != y)
                    .map(|(i, _)| format!("{:#x}", 0x8000_0000u64 + i as u64 * 4096))
                    .collect();
                if !differing.is_empty() {
                    found.push(format!(
                        "{} RAM pages differ, first at {:?}",
                        differing.len(),
                        &differing[..differing.len().min(8)]
                    ));
                }
            }
        }
    }
    if found.is_empty() {
        "the components and RAM are the same, so the encoding differs".to_string()
    } else {
        found.join("; ")
    }
}

/// Restores `a` with `--snapshot-at at --snapshot-out b`, stopping the run
/// once `b` is written.
fn resnapshot(a: &Path, at: u64, b: &Path) -> Finished {
    let report = b.with_extension("json");
    let args = restore_args(
        a,
        &report,
        &strings(&[
            "--snapshot-at",
            &at.to_string(),
            "--snapshot-out",
            &arg(b),
            "--serial",
            "none",
        ]),
    );
    run_until_written(&args, b)
}

/// Runs `args` until it has announced the full snapshot `file`, then stops
/// the run.
fn run_until_written(args: &[String], file: &Path) -> Finished {
    let mut running = start(args);
    let announce = format!("rewind: full snapshot {} written (", file.display());
    let written = |running: &Running| running.said(&announce) && running.said(" ms)");
    while !written(&running) && !running.exited() && running.started.elapsed() < LIMIT {
        thread::sleep(Duration::from_millis(20));
    }
    let stop = written(&running);
    running.finish_or_kill(stop)
}

#[test]
fn snapshotting_a_restored_machine_before_it_runs_gives_the_same_bytes() {
    for w in [Workload::Compute, Workload::Disk, Workload::Parallel] {
        let a = &snapshot(w).file;
        let at = snapshot(w).at;
        let dir = scratch(&format!("resave-{w:?}"));
        let original = std::fs::read(a).expect("reading the snapshot");
        for (name, at) in [("same", at), ("lower", 1)] {
            let b = dir.join(format!("{name}.rws"));
            let run = resnapshot(a, at, &b);
            expect_announced(&run, "full", &b);
            assert!(!run.stderr.contains("panicked"), "{}", run.describe());
            let again = std::fs::read(&b).expect("reading the new snapshot");
            assert!(
                again == original,
                "{w:?}: {} (taken at position {at} after restoring {}) differs from it: {}",
                b.display(),
                a.display(),
                differences(a, &b)
            );
        }
    }
}

// ---- 3. Incremental chains -----------------------------------------------------------

#[test]
fn an_incremental_chain_restores_to_the_uninterrupted_end_and_a_missing_link_is_named() {
    use rewind_snapshot::Snapshot;
    let w = Workload::Compute;
    let r = reference(w);
    let every = r.at(2, 9);
    let dir = scratch("chain");
    let series = dir.join("series");
    let path = dir.join("report.json");
    let extra = strings(&[
        "--snapshot-every",
        &every.to_string(),
        "--snapshot-dir",
        &arg(&series),
    ]);
    let run = rewind(&run_args(w, &extra, &path));
    let report = read_report(&path, &run);
    expect_same_as_reference(r, &run, &report, "the run taking a snapshot series");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&series)
        .expect("reading the snapshot directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        4,
        "a snapshot every {every} of {} instructions: expected 4 files, found {files:?}",
        r.report.position
    );
    let mut previous: Option<Snapshot> = None;
    let mut taken = Vec::new();
    for (k, file) in files.iter().enumerate() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let icount: u64 = name
            .strip_prefix(&format!("snap-{:05}-", k + 1))
            .and_then(|rest| rest.strip_suffix(".rws"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not snap-{:05}-ICOUNT.rws", k + 1));
        let due = every * (k as u64 + 1);
        assert!(
            (due..due + 1_000_000).contains(&icount),
            "{name}: taken at {icount}, but it was due at {due}"
        );
        taken.push(icount);
        let kind = if k == 0 { "full" } else { "incremental" };
        expect_announced(&run, kind, file);
        let snap = Snapshot::open(file).unwrap_or_else(|e| panic!("{e}"));
        match &previous {
            None => assert_eq!(
                snap.parent().map(|p| p.0.to_vec()),
                snap.component("host:power-on").map(<[u8]>::to_vec),
                "{name} should be stored on top of the power-on RAM it names"
            ),
            Some(p) => {
                assert_eq!(snap.parent(), Some(p.id()), "{name} names another parent");
                let full = std::fs::metadata(&files[0]).unwrap().len();
                let this = std::fs::metadata(file).unwrap().len();
                assert!(
                    this < full / 2,
                    "{name} ({this} bytes) is not much smaller than the full snapshot ({full} bytes)"
                );
            }
        }
        previous = Some(snap);
    }

    for k in [2, 3] {
        let (file, at) = (&files[k], taken[k]);
        let path = dir.join("restored.json");
        let restored = rewind(&restore_args(file, &path, &[]));
        let report = read_report(&path, &restored);
        expect_finishes_like(
            r,
            &restored,
            &report,
            at,
            &format!("restored from {}", file.display()),
        );
    }

    // Without the second snapshot, the later ones cannot be restored.
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for file in &files {
        std::fs::copy(file, broken.join(file.file_name().unwrap())).unwrap();
    }
    let missing = Snapshot::open(&files[1]).unwrap().id().to_string();
    std::fs::remove_file(broken.join(files[1].file_name().unwrap())).unwrap();
    for file in [&files[2], &files[3]] {
        let file = broken.join(file.file_name().unwrap());
        let run = rewind(&restore_args(&file, &dir.join("never.json"), &[]));
        let line = expect_one_error(&run, "restoring a chain with a missing link");
        assert!(
            line.contains(&missing) && line.contains("parent"),
            "the message does not name the missing parent {missing}: {line}"
        );
    }
}

/// The blocks an overlay file (a snapshot's `host:disk N` or
/// `host:disk-changes N`) holds: its header is 64 bytes, each block 8 + 4096,
/// its checksum 32.
fn overlay_blocks(component: &[u8]) -> usize {
    (component.len() - 64 - 32) / (8 + 4096)
}

#[test]
fn an_incremental_series_during_disk_writes_stores_only_the_written_blocks_and_restores() {
    use rewind_snapshot::Snapshot;
    let w = Workload::Disk;
    let r = reference(w);
    let every = r.at(1, 40);
    let dir = scratch("disk-chain");
    let series = dir.join("series");
    let path = dir.join("report.json");
    let extra = strings(&[
        "--snapshot-every",
        &every.to_string(),
        "--snapshot-dir",
        &arg(&series),
    ]);
    let run = rewind(&run_args(w, &extra, &path));
    let report = read_report(&path, &run);
    expect_same_as_reference(r, &run, &report, "the run taking a snapshot series");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&series)
        .expect("reading the snapshot directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 39, "a snapshot every {every}: {files:?}");
    let icount = |file: &Path| -> u64 {
        let name = file.file_name().unwrap().to_string_lossy();
        name.rsplit('-')
            .next()
            .and_then(|n| n.strip_suffix(".rws"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not snap-N-ICOUNT.rws"))
    };

    // A full snapshot, from another run, where the 35th of the series was
    // taken (in the disk phase, about 87% of the way): the whole overlay
    // there, to which the chain's must be equal.
    let full = dir.join("full.rws");
    let at = icount(&files[34]);
    let extra = strings(&[
        "--snapshot-at",
        &at.to_string(),
        "--snapshot-out",
        &arg(&full),
        "--stop-at",
        &(at + 1).to_string(),
    ]);
    let stopped = rewind(&run_args(w, &extra, &dir.join("full.json")));
    expect_announced(&stopped, "full", &full);

    // Rebuild the overlay link by link, as a restore does: the first holds
    // the whole overlay, each later one only the blocks written since the
    // one before.
    let spec = rewind_disk::DiskSpec {
        path: disk_image().to_owned(),
        read_only: false,
        persist: false,
    };
    let mut disk = rewind_disk::Disk::open(&spec).expect("opening the disk image");
    let mut changed = Vec::new();
    for (k, file) in files.iter().take(35).enumerate() {
        let snap = Snapshot::open(file).unwrap_or_else(|e| panic!("{e}"));
        let (whole, changes) = (
            snap.component("host:disk 0"),
            snap.component("host:disk-changes 0"),
        );
        match (k, whole, changes) {
            (0, Some(whole), None) => disk
                .read_overlay(&mut &whole[..], whole.len() as u64, file)
                .unwrap_or_else(|e| panic!("{e}")),
            (1.., None, Some(changes)) => {
                changed.push(overlay_blocks(changes));
                disk.apply_overlay_changes(&mut &changes[..], changes.len() as u64, file)
                    .unwrap_or_else(|e| panic!("{e}"))
            }
            _ => panic!(
                "{}: the first snapshot of a series holds the whole disk (host:disk 0), \
                 a later one the blocks written since (host:disk-changes 0); it has {:?}",
                file.display(),
                snap.components().map(|(n, _)| n).collect::<Vec<_>>()
            ),
        }
    }
    let mut rebuilt = Vec::new();
    disk.write_overlay(&mut rebuilt, Path::new("rebuilt"))
        .unwrap();
    let whole = Snapshot::open(&full).unwrap_or_else(|e| panic!("{e}"));
    let whole = whole
        .component("host:disk 0")
        .expect("a full snapshot holds the whole disk");
    assert!(
        rebuilt == whole,
        "the overlay rebuilt from the first 35 snapshots of the series ({} blocks) is not the one \
         the full snapshot at the same instruction ({at}) holds ({} blocks)",
        overlay_blocks(&rebuilt),
        overlay_blocks(whole)
    );
    // The 35th link holds what was written in its fortieth of the run, far
    // less than the whole overlay (the guest writes about 8 MiB in the
    // disk phase, the last third of the run), and so is its file.
    let (link, overlay) = (*changed.last().unwrap(), overlay_blocks(whole));
    let file_len = std::fs::metadata(&files[34]).unwrap().len();
    eprintln!("disk blocks per link: {changed:?}; the whole overlay: {overlay} blocks");
    assert!(
        link > 0 && link * 4 < overlay && file_len < whole.len() as u64 / 2,
        "{} holds {link} disk blocks in {file_len} bytes; the whole overlay is {overlay} \
         blocks, {} bytes (blocks per link: {changed:?})",
        files[34].display(),
        whole.len()
    );

    // Restored from a link in the middle of the disk phase (the guest then
    // writes more and reads everything back) and from the last one taken
    // before the run's last fortieth (a link at the very end may come after
    // the workload's last words).
    let middle = phase(w).at;
    let k = files
        .iter()
        .position(|f| icount(f) >= middle)
        .expect("a snapshot in the disk phase");
    let last = files
        .iter()
        .rev()
        .find(|f| icount(f) <= r.at(39, 40))
        .expect("a snapshot before the run's last fortieth");
    for file in [&files[k], last] {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let at = icount(file);
        let path = dir.join("restored.json");
        let restored = rewind(&restore_args(file, &path, &[]));
        let report = read_report(&path, &restored);
        expect_finishes_like(r, &restored, &report, at, &format!("restored from {name}"));
    }
}

// ---- 4. Damaged files ------------------------------------------------------------------

/// Panics unless the run failed with exactly one `rewind: ` line on stderr,
/// without panicking or running the guest; returns the line.
fn expect_one_error(run: &Finished, what: &str) -> String {
    let lines = run.stderr_lines();
    assert!(
        run.status.is_some() && run.code() != Some(0),
        "{what}: expected a nonzero exit status; {}",
        run.describe()
    );
    assert!(
        !run.stderr.contains("panicked") && run.code() != Some(101),
        "{what}: rewind panicked; {}",
        run.describe()
    );
    assert!(
        lines.len() == 1 && lines[0].starts_with("rewind: "),
        "{what}: expected one `rewind: ` line on stderr; {}",
        run.describe()
    );
    assert!(
        run.stdout.is_empty(),
        "{what}: the machine ran; {}",
        run.describe()
    );
    lines[0].to_string()
}

#[test]
fn damaged_truncated_and_foreign_snapshot_files_are_refused_with_one_sentence() {
    use rewind_snapshot::{Pages, Snapshot, SnapshotId, SnapshotWriter};
    let good = &snapshot(Workload::Compute).file;
    let bytes = std::fs::read(good).expect("reading the snapshot");
    let dir = scratch("damaged");
    let len = bytes.len();
    // Header fields (see crates/snapshot/src/lib.rs): magic, version, flags,
    // id, RAM size, page size, the component table's length; then the
    // sections: the component table at 176, and the page data at the end.
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("random bytes".into(), {
            let mut x = 0x2545_f491_4f6c_dd1du64;
            (0..65536)
                .map(|_| {
                    x ^= x << 7;
                    x ^= x >> 9;
                    x as u8
                })
                .collect()
        }),
        ("the magic and nothing more".into(), bytes[..8].to_vec()),
        ("the test's initramfs".into(), {
            std::fs::read(&guest().initrd).unwrap()[..1 << 20].to_vec()
        }),
    ];
    for cut in [
        1,
        7,
        8,
        12,
        100,
        175,
        176,
        200,
        4096,
        len / 2,
        len - 4096,
        len - 1,
    ] {
        cases.push((format!("cut at byte {cut} of {len}"), bytes[..cut].to_vec()));
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"trailing");
    cases.push(("8 bytes appended".into(), longer));
    for (at, what) in [
        (0, "magic"),
        (8, "version"),
        (12, "flags"),
        (20, "id"),
        (50, "parent id"),
        (82, "RAM size"),
        (89, "page size"),
        (93, "pages per block"),
        (100, "component table length"),
        (110, "component table checksum"),
        (170, "page data length"),
        (180, "component table"),
        (len / 2, "page data"),
        (len - 1, "the last byte"),
    ] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        cases.push((format!("byte {at} ({what}) flipped"), damaged));
    }

    // Files that pass every checksum but are wrong inside, written with the
    // crate's writer from the good snapshot's components and RAM.
    let snap = Snapshot::open(good).expect("opening the good snapshot");
    let components: Vec<(String, Vec<u8>)> = snap
        .components()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    // It is stored on top of the machine's power-on RAM: the pages it lists
    // over zero RAM are all a rewrite needs.
    let base = snap.parent().expect("a snapshot on top of power-on RAM");
    let listed: Vec<usize> = snap.page_indices().map(|p| p as usize).collect();
    let mut ram = vec![0u8; snap.ram_size() as usize];
    alone(snap)
        .and_then(|c| c.apply_pages(&mut ram))
        .expect("applying the good snapshot's pages");
    let write_on = |components: &[(String, Vec<u8>)], ram: &[u8], base: SnapshotId| {
        let pages: Vec<usize> = listed
            .iter()
            .copied()
            .filter(|&p| p < ram.len() / 4096)
            .collect();
        let mut out = Vec::new();
        SnapshotWriter::new()
            .write(
                &mut out,
                components,
                ram,
                Pages::Dirty {
                    parent: base,
                    pages: &pages,
                },
            )
            .expect("writing a snapshot");
        out
    };
    let write = |components: &[(String, Vec<u8>)], ram: &[u8]| write_on(components, ram, base);
    assert!(
        write(&components, &ram) == bytes,
        "writing the same components and RAM again gives other bytes"
    );
    let edited_components = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut c = components.clone();
        let part = c.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| {
            panic!(
                "no component `{name}` in {:?}",
                components.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        });
        edit(&mut part.1);
        c
    };
    let edited =
        |name: &str, edit: &dyn Fn(&mut Vec<u8>)| write(&edited_components(name, edit), &ram);
    let without = |name: &str| {
        let c: Vec<_> = components
            .iter()
            .filter(|(n, _)| n != name)
            .cloned()
            .collect();
        write(&c, &ram)
    };
    let config = |edit: &dyn Fn(&mut Value)| {
        edited("host:config", &|bytes| {
            let mut json: Value = serde_json::from_slice(bytes).expect("host:config is JSON");
            edit(&mut json);
            *bytes = serde_json::to_vec(&json).unwrap();
        })
    };
    // A recording of the same machine (a header and nothing more): another
    // Rewind file, not a snapshot.
    let recorded: rewind_replay::RecordedConfig = serde_json::from_slice(
        &components
            .iter()
            .find(|(n, _)| n == "host:config")
            .expect("a host:config component")
            .1,
    )
    .expect("host:config decodes");
    let header = rewind_replay::Header {
        writer: "0.1.0".to_string(),
        config: recorded,
        checkpoint_every: 1_000_000,
        packed: Vec::new(),
    };
    let recording = rewind_replay::RecordingWriter::create(
        Vec::new(),
        rewind_machine::MODEL_VERSION,
        &header,
        &mut [],
    )
    .and_then(|w| w.finish())
    .expect("writing a recording");
    cases.push(("a recording".to_string(), recording));
    let mut with_extra = components.clone();
    with_extra.push(("gizmo".to_string(), vec![1, 2, 3]));
    let mut resealed = bytes.clone();
    resealed[180] ^= 0x40;
    rewind_snapshot::reseal(&mut resealed);
    cases.extend([
        ("no hart 0".to_string(), without("hart 0")),
        (
            "no machine configuration".to_string(),
            without("host:config"),
        ),
        ("no uart".to_string(), without("uart")),
        (
            "hart 0 cut in half".to_string(),
            edited("hart 0", &|b| b.truncate(b.len() / 2)),
        ),
        (
            "the uart's state one byte longer".to_string(),
            edited("uart", &|b| b.push(0)),
        ),
        (
            "the machine's counters garbled".to_string(),
            edited("machine", &|b| b.iter_mut().for_each(|x| *x = 0xff)),
        ),
        (
            "the configuration not JSON".to_string(),
            edited("host:config", &|b| *b = b"{ not json".to_vec()),
        ),
        (
            "the configuration with two harts".to_string(),
            config(&|c| c["harts"] = 2.into()),
        ),
        (
            "the configuration with 512 MiB".to_string(),
            config(&|c| c["mem_size"] = (512u64 << 20).into()),
        ),
        (
            "the configuration with 1 TiB of RAM".to_string(),
            config(&|c| c["mem_size"] = (1u64 << 40).into()),
        ),
        (
            "the kernel's hash changed".to_string(),
            config(&|c| c["kernel"]["blake3"][0] = 0.into()),
        ),
        (
            "the kernel missing".to_string(),
            config(&|c| c["kernel"]["path"] = "/nonexistent/Image".into()),
        ),
        ("an unknown component".to_string(), write(&with_extra, &ram)),
        (
            "RAM half the size".to_string(),
            write(&components, &ram[..ram.len() / 2]),
        ),
        (
            "an incremental snapshot of nothing here".to_string(),
            write_on(&components, &ram, SnapshotId([7; 32])),
        ),
        (
            "another power-on RAM beneath it".to_string(),
            write_on(
                &edited_components("host:power-on", &|b| *b = vec![9; 32]),
                &ram,
                SnapshotId([9; 32]),
            ),
        ),
        (
            "a component table byte flipped and resealed".to_string(),
            resealed,
        ),
    ]);

    for (i, (what, content)) in cases.iter().enumerate() {
        let file = dir.join(format!("case-{i}.rws"));
        std::fs::write(&file, content).unwrap();
        let run = rewind(&restore_args(&file, &dir.join("never.json"), &[]));
        let line = expect_one_error(&run, &format!("restoring a snapshot with {what}"));
        eprintln!("{what}: {line}");
    }

    // Files that are not there or not files.
    for path in [dir.join("absent.rws"), dir.clone()] {
        let run = rewind(&restore_args(&path, &dir.join("never.json"), &[]));
        let line = expect_one_error(&run, &format!("restoring {}", path.display()));
        assert!(line.contains(&arg(&path)), "{line}");
    }
}

// ---- 5. The control socket -----------------------------------------------------------

/// A client of the control socket.
struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects once the socket exists (the run must still be going).
    fn connect(path: &Path, running: &mut Running) -> Client {
        let stream = loop {
            if let Ok(stream) = UnixStream::connect(path) {
                break stream;
            }
            assert!(
                !running.exited() && running.started.elapsed() < Duration::from_secs(120),
                "no control socket at {} appeared",
                path.display()
            );
            thread::sleep(Duration::from_millis(20));
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        Client {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    /// Sends one line and reads the one-line answer.
    fn send(&mut self, line: &str) -> Value {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("sending {line}: {e}"));
        let mut answer = String::new();
        self.reader
            .read_line(&mut answer)
            .unwrap_or_else(|e| panic!("no answer to {line}: {e}"));
        assert!(
            answer.ends_with('\n'),
            "no answer line to {line}: {answer:?}"
        );
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("the answer to {line} is not JSON ({e}): {answer}"))
    }

    fn status(&mut self) -> Value {
        let status = self.send(r#"{"cmd":"status"}"#);
        assert_eq!(status["ok"], Value::Bool(true), "{status}");
        for field in ["position", "guest_ns", "rounds"] {
            assert!(status[field].is_u64(), "status without {field}: {status}");
        }
        let retired = status["instructions_retired"]
            .as_array()
            .unwrap_or_else(|| panic!("status without instructions_retired: {status}"));
        assert_eq!(retired.len(), 1, "one hart: {status}");
        // Every instruction retired is a step; so is every trap entered.
        assert!(
            retired[0].as_u64() <= status["position"].as_u64(),
            "{status}"
        );
        status
    }
}

#[test]
fn the_control_socket_reports_pauses_snapshots_resumes_and_quits() {
    let w = Workload::Compute;
    let r = reference(w);
    let dir = scratch("control");
    let socket = dir.join("control.sock");
    let path = dir.join("report.json");
    let file = dir.join("paused.rws");
    let mut running = start(&run_args(w, &strings(&["--control", &arg(&socket)]), &path));
    let mut client = Client::connect(&socket, &mut running);

    let status = client.status();
    assert_eq!(status["state"], "running", "{status}");

    // Lines that are not requests are answered, and the connection stays.
    for bad in [
        "this is not JSON",
        r#"{"cmd":"reboot"}"#,
        r#"{"cmd":"snapshot"}"#,
        "[1, 2]",
    ] {
        let answer = client.send(bad);
        assert!(
            answer["ok"] == Value::Bool(false)
                && answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad} -> {answer}"
        );
    }
    let before = client.status();

    let paused = client.send(r#"{"cmd":"pause"}"#);
    assert_eq!(paused["ok"], Value::Bool(true), "{paused}");
    let first = client.status();
    thread::sleep(Duration::from_millis(500));
    let second = client.status();
    assert_eq!(first["state"], "paused", "{first}");
    for field in ["position", "guest_ns", "rounds"] {
        assert_eq!(
            first[field], second[field],
            "a paused machine moved: {first} then {second}"
        );
    }
    let icount = first["position"].as_u64().unwrap();
    assert!(
        icount >= before["position"].as_u64().unwrap() && icount < r.report.position,
        "paused at {icount}, after the run's end ({}) or before {before}",
        r.report.position
    );

    let request = serde_json::json!({"cmd": "snapshot", "path": arg(&file)}).to_string();
    let written = client.send(&request);
    assert_eq!(written["ok"], Value::Bool(true), "{written}");
    assert_eq!(written["path"], arg(&file), "{written}");
    assert_eq!(written["position"], icount, "{written}");
    let size = std::fs::metadata(&file)
        .unwrap_or_else(|e| panic!("no snapshot {} ({e}) after {written}", file.display()))
        .len();
    assert_eq!(written["bytes"], size, "{written}");
    let nowhere = dir.join("no such directory").join("x.rws");
    let request = serde_json::json!({"cmd": "snapshot", "path": arg(&nowhere)}).to_string();
    let failed = client.send(&request);
    assert!(
        failed["ok"] == Value::Bool(false)
            && failed["error"]
                .as_str()
                .is_some_and(|e| e.contains(&arg(&nowhere))),
        "{failed}"
    );
    let still = client.status();
    assert_eq!(
        (&still["state"], &still["position"]),
        (&first["state"], &first["position"])
    );

    let resumed = client.send(r#"{"cmd":"resume"}"#);
    assert_eq!(resumed["ok"], Value::Bool(true), "{resumed}");
    loop {
        let status = client.status();
        assert_eq!(status["state"], "running", "{status}");
        if status["position"].as_u64().unwrap() > icount {
            break;
        }
        assert!(!running.exited(), "the run ended after resuming");
        thread::sleep(Duration::from_millis(50));
    }
    let quit = client.send(r#"{"cmd":"quit"}"#);
    assert_eq!(quit["ok"], Value::Bool(true), "{quit}");
    let run = running.finish();
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert!(!run.stderr.contains("panicked"), "{}", run.describe());
    let report = read_report(&path, &run);
    assert_eq!(report.exit_reason, "quit", "{}", run.describe());
    assert!(
        report.position < r.report.position,
        "quit after the workload's end: {}",
        run.describe()
    );
    assert!(!socket.exists(), "the control socket is left behind");

    // The snapshot taken while paused restores and finishes the workload.
    let path = dir.join("restored.json");
    let restored = rewind(&restore_args(&file, &path, &[]));
    let report = read_report(&path, &restored);
    expect_finishes_like(
        r,
        &restored,
        &report,
        icount,
        "restored from the control socket's snapshot",
    );
}

// ---- Files a snapshot needs -----------------------------------------------------------

/// Flips one bit of the file at `offset`.
fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_snapshot_whose_boot_files_or_disk_changed_is_refused_naming_the_file() {
    let dir = scratch("changed-files");
    let g = guest();
    let kernel = dir.join("Image");
    let initrd = dir.join("initramfs.cpio");
    let disk = dir.join("vda.img");
    std::fs::copy(&g.kernel, &kernel).unwrap();
    std::fs::copy(&g.initrd, &initrd).unwrap();
    std::fs::copy(disk_image(), &disk).unwrap();
    // The Disk workload on copies of its files, snapshotted as it starts.
    let file = dir.join("early.rws");
    let mut args = vec!["run".to_string()];
    args.extend(Workload::Disk.args().into_iter().map(|a| {
        if a == arg(&g.kernel) {
            arg(&kernel)
        } else if a == arg(&g.initrd) {
            arg(&initrd)
        } else if a == arg(disk_image()) {
            arg(&disk)
        } else {
            a
        }
    }));
    args.extend(strings(&[
        "--snapshot-at",
        "1000000",
        "--snapshot-out",
        &arg(&file),
        "--serial",
        "none",
    ]));
    let run = run_until_written(&args, &file);
    expect_announced(&run, "full", &file);

    let originals: Vec<(PathBuf, Vec<u8>)> = [&kernel, &initrd, &disk]
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .into();
    let mut problems = Vec::new();
    for (what, path, change) in [
        ("the kernel changed", &kernel, 0),
        ("the initramfs changed", &initrd, 1),
        ("the disk image changed", &disk, 2),
        ("the kernel removed", &kernel, 3),
        ("the disk image removed", &disk, 3),
    ] {
        for (p, bytes) in &originals {
            std::fs::write(p, bytes).unwrap();
        }
        match change {
            0 => flip(path, 4096),
            1 => flip(path, 1000),
            2 => flip(path, 2 << 20),
            _ => std::fs::remove_file(path).unwrap(),
        }
        let run = rewind(&restore_args(&file, &dir.join("never.json"), &[]));
        let line = expect_one_error(&run, &format!("restoring a snapshot with {what}"));
        // The snapshot was not taken during a recording: a message about
        // "the recording" would send the user looking for one.
        if !line.contains(&arg(path)) || line.contains("recording") {
            problems.push(format!("{what}: {line}"));
        }
    }
    assert!(
        problems.is_empty(),
        "restore refused the snapshot, but its messages do not name the changed file, or speak of a recording where there is none:\n{}",
        problems.join("\n")
    );
}

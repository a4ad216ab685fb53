//! Debian's Linux on Rewind's virtio devices: the default guest's kernel and
//! modules boot an initramfs whose /test.sh exercises the devices, and the
//! host checks what the guest did.
//!
//! - ext4 on virtio-blk: the guest reads a file the host put in an image made
//!   with `mke2fs -d`, writes one, and the host reads it back with `debugfs`
//!   (with `persist`), or from the saved overlay (without it), while the
//!   base image stays byte for byte the same;
//! - a qcow2 image with a raw backing file is read correctly;
//! - hvc0 output reaches its backend, virtio-rng gives bytes, and two runs
//!   give the same bytes and the same state hash;
//! - through user-mode networking the guest fetches a page with busybox
//!   `wget` from an HTTP server this test runs on the host's loopback;
//! - an overlay lives in `--overlay-dir` as a file without a name while the
//!   guest writes its disk, and a missing `--overlay-dir` is one sentence.

#[path = "virtio/common.rs"]
mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A Linux boot and script take well under a minute; this is for a loaded host.
const LIMIT: Duration = Duration::from_secs(600);

const HELLO: &str = "hello from the host";
const WRITTEN: &str = "written by the guest";

/// The script for the disk tests: vda is a writable ext4 image, vdb a
/// read-only qcow2 image over an ext4 backing file, hvc0 a console.
const DISK_SCRIPT: &str = r#"#!/bin/sh
set -e
mount -t ext4 /dev/vda /mnt
test "$(cat /mnt/hello.txt)" = "hello from the host"
echo "vda: $(cat /mnt/hello.txt), $(wc -l < /mnt/sub/numbers.txt) numbers"
echo "written by the guest" > /mnt/guest.txt
dd if=/dev/zero of=/mnt/zeros bs=4096 count=256 2>/dev/null
sync
umount /mnt
mkdir -p /b
mount -t ext4 -o ro /dev/vdb /b
echo "vdb: $(cat /b/which.txt), sum $(md5sum < /b/numbers.txt)"
test "$(cat /b/which.txt)" = "the backing file"
umount /b
echo "to hvc0 from the guest" > /dev/hvc0
echo "rng: $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
"#;

/// vda: an ext4 image with hello.txt and sub/numbers.txt; vdb: a qcow2 image
/// whose backing file is an ext4 image with which.txt and numbers.txt.
fn make_disks(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let a = dir.join("a");
    std::fs::create_dir_all(a.join("sub")).unwrap();
    std::fs::write(a.join("hello.txt"), format!("{HELLO}\n")).unwrap();
    let numbers: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    std::fs::write(a.join("sub/numbers.txt"), &numbers).unwrap();
    let vda = dir.join("vda.img");
    make_ext4(&a, &vda, "64M");

    let b = dir.join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("which.txt"), "the backing file\n").unwrap();
    std::fs::write(b.join("numbers.txt"), &numbers).unwrap();
    let base = dir.join("vdb-base.img");
    make_ext4(&b, &base, "32M");
    require_tool("qemu-img", "qemu-utils");
    let vdb = dir.join("vdb.qcow2");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&base)
        .arg(&vdb)
        .output()
        .expect("running qemu-img");
    assert!(
        out.status.success(),
        "qemu-img create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (vda, vdb)
}

fn disk_args(dir: &Path, vda: &str, vdb: &Path, hvc: &Path) -> Vec<String> {
    let mut args = linux_args(dir, DISK_SCRIPT);
    args.extend([
        "--disk".into(),
        vda.into(),
        "--disk".into(),
        format!("{},ro", vdb.display()),
        "--hvc".into(),
        format!("file:{}", hvc.display()),
    ]);
    args
}

/// The guest's `rng: ...` line.
fn rng_line(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("rng: "))
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

fn report_hash(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("reading the report");
    let key = "\"state_hash\": \"";
    let start = text.find(key).expect("a state_hash in the report") + key.len();
    text[start..start + 64].to_string()
}

#[test]
fn ext4_on_a_persistent_disk_is_written_through_to_the_image() {
    let dir = scratch("linux_persist");
    let (vda, vdb) = make_disks(&dir);
    let vdb_before = file_hash(&vdb);
    let vda_before = file_hash(&vda);
    let hvc = dir.join("hvc.out");
    let args = disk_args(&dir, &format!("{},persist", vda.display()), &vdb, &hvc);
    let run = run_rewind(&args, LIMIT);
    expect_script_passed(&run, "the persistent-disk script");
    assert!(
        run.stdout
            .contains("vda: hello from the host, 2000 numbers"),
        "{}",
        run.describe()
    );
    assert_eq!(debugfs_cat(&vda, "/guest.txt"), format!("{WRITTEN}\n"));
    assert_eq!(debugfs_cat(&vda, "/hello.txt"), format!("{HELLO}\n"));
    assert_ne!(file_hash(&vda), vda_before, "persist writes into the image");
    assert_eq!(file_hash(&vdb), vdb_before, "a read-only disk is unchanged");
    assert_eq!(
        // The guest's tty turns \n into \r\n (ONLCR), as on any terminal.
        std::fs::read_to_string(&hvc).expect("reading the hvc0 output"),
        "to hvc0 from the guest\r\n"
    );
}

#[test]
fn overlay_runs_leave_the_base_unchanged_save_the_writes_and_repeat_exactly() {
    let dir = scratch("linux_overlay");
    let (vda, vdb) = make_disks(&dir);
    let vda_before = file_hash(&vda);
    let mut results = Vec::new();
    for i in 0..2 {
        let hvc = dir.join(format!("hvc{i}.out"));
        let overlay = dir.join(format!("vda{i}.overlay"));
        let report = dir.join(format!("report{i}.json"));
        let mut args = disk_args(&dir, &vda.display().to_string(), &vdb, &hvc);
        args.extend([
            "--save-overlay".into(),
            format!("0:{}", overlay.display()),
            "--report".into(),
            report.display().to_string(),
        ]);
        let run = run_rewind(&args, LIMIT);
        expect_script_passed(&run, "the overlay script");
        assert_eq!(file_hash(&vda), vda_before, "the base image is unchanged");
        assert!(overlay.exists(), "no overlay saved; {}", run.describe());
        assert_eq!(
            std::fs::read_to_string(&hvc).unwrap(),
            "to hvc0 from the guest\r\n"
        );
        results.push((rng_line(&run.stdout), report_hash(&report)));
        if i == 0 {
            // The overlay holds the guest's writes: applied to the base, the
            // host sees the new file.
            let spec = rewind_disk::DiskSpec::parse(&vda.display().to_string()).unwrap();
            let mut disk = rewind_disk::Disk::open(&spec).expect("opening the base");
            disk.load_overlay(&overlay)
                .expect("loading the saved overlay");
            let mut bytes = vec![0u8; disk.size() as usize];
            disk.read_at(0, &mut bytes).expect("reading the disk");
            let merged = dir.join("merged.img");
            std::fs::write(&merged, bytes).unwrap();
            assert_eq!(debugfs_cat(&merged, "/guest.txt"), format!("{WRITTEN}\n"));
        }
    }
    assert_eq!(results[0].0.len(), "rng: ".len() + 32, "{results:?}");
    assert_eq!(
        results[0], results[1],
        "two identical runs differ (rng bytes, state hash)"
    );
}

/// The guest writes 4 MiB to its disk, says so on hvc0 and waits there for
/// the host, which meanwhile looks at the running Rewind's open files. hvc0
/// stays open from before `written` to the answer: input that reaches a tty
/// nobody has open is dropped.
const OVERLAY_DIR_SCRIPT: &str = r#"#!/bin/sh
set -e
dd if=/dev/urandom of=/dev/vda bs=65536 count=64 oflag=direct 2>/dev/null
exec 3<> /dev/hvc0
echo written >&3
read go <&3
echo "the host said $go"
"#;

/// The files process `pid` has open in `dir`, and the bytes of host storage
/// each occupies (`/proc/PID/fd/N` reaches a file even without a name).
fn open_files_in(pid: u32, dir: &Path) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("listing the run's open files")
        .filter_map(|e| {
            let fd = e.ok()?.path();
            let target = std::fs::read_link(&fd).ok()?;
            target
                .starts_with(dir)
                .then(|| std::fs::metadata(&fd).map_or(0, |m| m.blocks() * 512))
        })
        .collect()
}

#[test]
fn a_disk_overlay_is_a_file_without_a_name_in_the_overlay_dir() {
    let dir = scratch("linux_overlay_dir");
    let overlays = dir.join("overlays");
    std::fs::create_dir_all(&overlays).unwrap();
    let overlays = overlays.canonicalize().unwrap();
    let vda = dir.join("vda.img");
    std::fs::File::create(&vda)
        .and_then(|f| f.set_len(16 << 20))
        .unwrap();
    let vda_before = file_hash(&vda);
    let hvc = dir.join("hvc");
    for end in ["in", "out"] {
        let fifo = dir.join(format!("hvc.{end}"));
        let made = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("running mkfifo");
        assert!(made.success(), "mkfifo {} failed", fifo.display());
    }
    let mut args = vec!["run".to_string()];
    args.extend(linux_args(&dir, OVERLAY_DIR_SCRIPT));
    args.extend([
        "--disk".into(),
        vda.display().to_string(),
        "--overlay-dir".into(),
        overlays.display().to_string(),
        "--hvc".into(),
        format!("pipe:{}", hvc.display()),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting rewind");
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    // Stdout ends when Rewind does: the watchdog waits for that.
    let (stdout_done, stdout) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout_pipe.read_to_string(&mut s);
        let _ = stdout_done.send(s);
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    // hvc0's output, line by line; it ends when Rewind does.
    let (lines_tx, lines) = mpsc::channel();
    let out_fifo = dir.join("hvc.out");
    std::thread::spawn(move || {
        let Ok(out) = std::fs::File::open(out_fifo) else {
            return;
        };
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let said_written = loop {
        match lines.recv_timeout(LIMIT) {
            Ok(line) if line.trim() == "written" => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    let mut open = Vec::new();
    let mut left_in_dir = Vec::new();
    if said_written {
        open = open_files_in(child.id(), &overlays);
        left_in_dir = std::fs::read_dir(&overlays)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("hvc.in"))
            .and_then(|mut input| input.write_all(b"go\n"))
            .expect("answering the guest on hvc0");
    } else {
        let _ = child.kill();
    }
    let stdout = stdout.recv_timeout(LIMIT);
    if stdout.is_err() {
        // Not waited for yet, so the pid is still this child's.
        let _ = child.kill();
    }
    let status = child.wait().expect("waiting for rewind");
    let run = RunOutput {
        status: stdout.is_ok().then_some(status),
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        said_written,
        "the guest never said `written` on hvc0; {}",
        run.describe()
    );
    assert_eq!(
        open.len(),
        1,
        "Rewind should have one file open in {} (its overlay), has {open:?}; {}",
        overlays.display(),
        run.describe()
    );
    assert!(
        open[0] >= 4 << 20,
        "the overlay file holds {} bytes, less than the 4 MiB the guest wrote",
        open[0]
    );
    assert!(
        left_in_dir.is_empty(),
        "the overlay file has a name: {left_in_dir:?}"
    );
    expect_script_passed(&run, "the --overlay-dir script");
    assert!(
        run.stdout.contains("the host said go"),
        "{}",
        run.describe()
    );
    assert_eq!(std::fs::read_dir(&overlays).unwrap().count(), 0);
    assert_eq!(file_hash(&vda), vda_before, "the base image is unchanged");

    // A directory that is not there: one sentence, before the guest runs.
    let missing = dir.join("no-such-dir");
    let mut args = linux_args(&dir, OVERLAY_DIR_SCRIPT);
    args.extend([
        "--disk".into(),
        vda.display().to_string(),
        "--overlay-dir".into(),
        missing.display().to_string(),
    ]);
    let run = run_rewind(&args, LIMIT);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        run.code() == Some(1)
            && lines
                == [format!(
                    "rewind: cannot keep disk overlays in --overlay-dir {}: No such file or directory (os error 2)",
                    missing.display()
                )]
            && run.stdout.is_empty(),
        "{}",
        run.describe()
    );
}

/// Serves `body` over HTTP/1.0 on 127.0.0.1 (an ephemeral port) to at most
/// a few clients, for at most LIMIT; returns the port.
fn serve(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn the_guest_fetches_a_page_from_the_host_over_user_networking() {
    let dir = scratch("linux_net");
    let port = serve("a page from the host's loopback\n");
    let script = format!(
        r#"#!/bin/sh
set -e
ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -s /bin/true
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "page: $(wget -q -O - http://10.0.2.2:{port}/page.txt)"
"#
    );
    let mut args = linux_args(&dir, &script);
    args.extend(["--net".into(), "user".into()]);
    let run = run_rewind(&args, LIMIT);
    expect_script_passed(&run, "the networking script");
    assert!(
        run.stdout.contains("lease of 10.0.2.15 obtained"),
        "{}",
        run.describe()
    );
    assert!(
        run.stdout.contains("page: a page from the host's loopback"),
        "{}",
        run.describe()
    );
}

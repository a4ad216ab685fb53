//! The console backends of `--serial` (and `--hvc`, which shares them):
//! a unix socket Rewind listens on, a pair of named pipes, a file and none.
//! A bare-metal guest (tests/virtio/uart_echo.c) echoes its UART input in
//! upper case until a '.', so a round trip shows input arriving through the
//! backend and output leaving through it.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]
// Host time here only bounds how long the test waits for the process.
#![allow(clippy::disallowed_types)]

#[path = "virtio/common.rs"]
mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting rewind")
}

/// Waits for the child to exit by itself (killing it after LIMIT); returns
/// its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.code(), err);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return (None, "killed after the time limit".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads from `from` until `want` has been seen (or the stream ends).
fn read_until(from: &mut impl Read, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains(want) {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn echo_args(dir: &Path, serial: String) -> Vec<String> {
    let elf = build_guest("uart_echo", dir);
    vec![
        "--firmware".into(),
        "none".into(),
        "--kernel".into(),
        elf.display().to_string(),
        "--mem".into(),
        "16M".into(),
        "--serial".into(),
        serial,
    ]
}

#[test]
fn a_unix_socket_console_carries_input_and_output_both_ways() {
    let dir = scratch("console_unix");
    let socket = dir.join("serial.sock");
    let child = spawn(&echo_args(&dir, format!("unix:{}", socket.display())));
    let started = Instant::now();
    let mut stream = loop {
        match UnixStream::connect(&socket) {
            Ok(s) => break s,
            Err(e) if started.elapsed() > LIMIT => panic!("cannot connect to the console: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    stream
        .set_read_timeout(Some(LIMIT))
        .expect("setting a timeout");
    // Output from before the client connected is kept for it.
    assert!(read_until(&mut stream, "ready\n").contains("ready\n"));
    stream
        .write_all(b"over a socket.")
        .expect("writing to the console");
    let echo = read_until(&mut stream, "OVER A SOCKET.\n");
    assert!(echo.contains("OVER A SOCKET.\n"), "got {echo:?}");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn named_pipes_carry_input_and_output() {
    let dir = scratch("console_pipe");
    let base = dir.join("serial");
    for suffix in [".in", ".out"] {
        let path = format!("{}{suffix}", base.display());
        let ok = Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("running mkfifo");
        assert!(ok.success(), "mkfifo {path} failed");
    }
    let child = spawn(&echo_args(&dir, format!("pipe:{}", base.display())));
    let mut output = std::fs::File::open(format!("{}.out", base.display())).expect("opening .out");
    let mut input = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("{}.in", base.display()))
        .expect("opening .in");
    assert!(read_until(&mut output, "ready\n").contains("ready\n"));
    input.write_all(b"through pipes.").expect("writing .in");
    let echo = read_until(&mut output, "THROUGH PIPES.\n");
    assert!(echo.contains("THROUGH PIPES.\n"), "got {echo:?}");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn file_and_none_consoles_take_output_away_from_stdout() {
    let dir = scratch("console_file");
    let elf = build_guest("blk_malformed", &dir);
    let disk = dir.join("disk.img");
    let mut bytes = vec![0u8; 64 * 1024];
    bytes[..23].copy_from_slice(b"REWIND VIRTIO TEST DISK");
    std::fs::write(&disk, bytes).unwrap();
    let out = dir.join("serial.txt");
    for serial in [format!("file:{}", out.display()), "none".to_string()] {
        let run = run_rewind(
            &[
                "--firmware".into(),
                "none".into(),
                "--kernel".into(),
                elf.display().to_string(),
                "--mem".into(),
                "16M".into(),
                "--disk".into(),
                disk.display().to_string(),
                "--disk".into(),
                format!("{},ro", disk.display()),
                "--serial".into(),
                serial,
            ],
            LIMIT,
        );
        assert_eq!(run.code(), Some(0), "{}", run.describe());
        assert_eq!(run.stdout, "", "stdout carries nothing");
    }
    let text = std::fs::read_to_string(&out).expect("reading the serial file");
    assert!(text.contains("PASS virtio-blk-malformed"), "{text}");
}

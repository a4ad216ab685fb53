//! The gdb server end to end: gdb-multiarch (./test.sh installs it) in batch
//! mode drives `rewind replay --gdb` through scripted sessions on bare-metal
//! programs with symbols (tests/gdb/*.S) and on a Linux recording, forward
//! and backward (in a Linux guest too, back past its disk writes), and the
//! replay still ends in the recorded state.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "common/exact.rs"]
mod exact;
#[path = "common/process.rs"]
mod process;
use exact::build_with_symbols;
use process::{path_arg as arg, scratch, Finished, LIMIT, REWIND};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The machine the bare-metal programs run on: `elf` with no firmware,
/// 16 MiB, `harts` harts.
fn program_options(elf: &Path, harts: usize) -> Vec<String> {
    strings(&[
        "--firmware",
        "none",
        "--mem",
        "16M",
        "--smp",
        &harts.to_string(),
        "--kernel",
        &arg(elf),
    ])
}

/// Records `elf` (see [`program_options`]); returns the recording and its
/// report.
fn record(dir: &Path, elf: &Path, harts: usize) -> (PathBuf, Value) {
    let recording = dir.join("run.rwd");
    let report = dir.join("record.json");
    let mut args = strings(&["record", "-o", &arg(&recording), "--report", &arg(&report)]);
    args.extend(program_options(elf, harts));
    let run = process::run(REWIND, &args, Stdio::null());
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let json = std::fs::read_to_string(&report).expect("the record report");
    (recording, serde_json::from_str(&json).expect("JSON"))
}

/// A session: what gdb printed, and what the server printed and how it ended.
struct Session {
    gdb: Finished,
    server_stderr: String,
    server_code: Option<i32>,
}

impl Session {
    fn describe(&self) -> String {
        format!(
            "{}\n--- the server (exit {:?}) ---\n{}",
            self.gdb.describe(),
            self.server_code,
            self.server_stderr
        )
    }

    fn stdout(&self) -> String {
        self.gdb.stdout_text()
    }

    /// Every `monitor when` answer: (position, hart). (gdb in batch mode
    /// prints what monitor commands say on its stderr.)
    fn whens(&self) -> Vec<(u64, u64)> {
        self.gdb
            .stderr
            .lines()
            .filter_map(|line| {
                let (position, rest) = line.split_once(" (hart ")?;
                let hart = rest.split(',').next()?.parse().ok()?;
                Some((position.parse().ok()?, hart))
            })
            .collect()
    }

    /// Values printed by `printf "@NAME=%d\n"`, in order.
    fn values(&self, name: &str) -> Vec<String> {
        let key = format!("@{name}=");
        self.stdout()
            .lines()
            .filter_map(|l| l.strip_prefix(&key).map(str::to_string))
            .collect()
    }

    /// The state hash the server printed when gdb left.
    fn final_hash(&self) -> Option<String> {
        let line = self
            .server_stderr
            .lines()
            .find(|l| l.contains("gdb session ended"))?;
        Some(line.rsplit("state hash ").next()?.trim().to_string())
    }
}

/// Starts `rewind ARGS --gdb unix:SOCKET`, waits until it listens, runs gdb
/// on `elf` (if any) with `script` after `target remote`, and waits for
/// both.
/// `rewind ARGS --gdb unix:SOCKET`, once it says it listens.
struct Server {
    child: Child,
    /// Its stderr's lines as they come, and those read so far.
    lines: mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    stderr: String,
}

fn start_server(args: &[String], socket: &Path) -> Server {
    let _ = std::fs::remove_file(socket);
    let mut server_args = args.to_vec();
    server_args.extend(strings(&["--gdb", &format!("unix:{}", arg(socket))]));
    let mut child: Child = Command::new(REWIND)
        .args(&server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start rewind: {e}"));
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // The server says when it listens.
    let mut stderr = String::new();
    loop {
        match lines.recv_timeout(LIMIT) {
            Ok(line) => {
                stderr.push_str(&line);
                stderr.push('\n');
                if line.contains("waiting for gdb") {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("rewind never listened for gdb:\n{stderr}");
            }
        }
    }
    Server {
        child,
        lines,
        reader,
        stderr,
    }
}

fn session(dir: &Path, args: &[String], elf: Option<&Path>, script: &str) -> Session {
    let socket = dir.join("gdb.sock");
    let Server {
        child: mut server,
        lines,
        reader,
        stderr: mut server_stderr,
    } = start_server(args, &socket);
    let script_path = dir.join("session.gdb");
    let mut file = std::fs::File::create(&script_path).expect("the gdb script");
    writeln!(
        file,
        "set pagination off\nset confirm off\nset architecture riscv:rv64\ntarget remote {}\n{script}",
        arg(&socket)
    )
    .expect("writing the gdb script");
    drop(file);
    let mut gdb_args = strings(&["-batch", "-nx", "-x", &arg(&script_path)]);
    if let Some(elf) = elf {
        gdb_args.push(arg(elf));
    }
    let gdb = process::run("gdb-multiarch", &gdb_args, Stdio::null());
    // gdb has gone: the server ends by itself.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // the watchdog's host time
    let started = std::time::Instant::now();
    let server_code = loop {
        match server.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if started.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = server.kill();
                let _ = server.wait();
                break None;
            }
        }
    };
    let _ = reader.join();
    server_stderr.extend(lines.try_iter().map(|l| l + "\n"));
    Session {
        gdb,
        server_stderr,
        server_code,
    }
}

/// One hart of tests/gdb/counter.S: `bump(n)` adds n to `counter` for
/// n = 1, 2, ... A function breakpoint stops at each call with its
/// argument; a watchpoint on the variable stops right after each write,
/// forward, and right before it, backward; stepping back and forth moves
/// one position at a time; and the start of history is reported as such.
#[test]
fn breakpoints_watchpoints_and_steps_work_forward_and_backward() {
    let dir = scratch("gdb", "counter");
    let elf = build_with_symbols("counter");
    let (recording, _) = record(&dir, &elf, 1);
    let s = session(
        &dir,
        &strings(&["replay", &arg(&recording)]),
        Some(&elf),
        r#"
monitor when
info threads
break bump
continue
printf "@a0=%d\n", $a0
monitor when
continue
printf "@a0=%d\n", $a0
monitor when
p $priv
printf "@priv=%d\n", $priv
printf "@mhartid=%d\n", $mhartid
delete
watch *(long *)&counter
continue
printf "@counter=%d\n", *(long *)&counter
monitor when
reverse-continue
printf "@counter=%d\n", *(long *)&counter
monitor when
reverse-continue
printf "@counter=%d\n", *(long *)&counter
monitor when
delete
stepi
monitor when
stepi
monitor when
reverse-stepi
monitor when
reverse-stepi
monitor when
reverse-continue
monitor when
kill
"#,
    );
    let what = s.describe();
    assert_eq!(s.values("a0"), ["1", "2"], "{what}");
    assert_eq!(s.values("priv"), ["3"], "M-mode; {what}");
    assert_eq!(s.values("mhartid"), ["0"], "{what}");
    // After the second bump's entry, the watch sees counter become 1 + 2;
    // backward, it stops before that write (counter 1), then before the
    // first (counter 0).
    assert_eq!(s.values("counter"), ["3", "1", "0"], "{what}");
    let whens: Vec<u64> = s.whens().iter().map(|w| w.0).collect();
    let [start, hit1, hit2, wrote, before_write, before_first, step1, step2, back1, back2, begin] =
        whens[..]
    else {
        panic!("11 `monitor when` answers expected; {what}");
    };
    assert_eq!(start, 0, "{what}");
    assert!(0 < hit1 && hit1 < hit2 && hit2 < wrote, "{what}");
    // Backward to just before the instruction that wrote.
    assert!(before_first < hit2 && before_write == wrote - 1, "{what}");
    assert_eq!(
        (step1, step2, back1, back2),
        (
            before_first + 1,
            before_first + 2,
            before_first + 1,
            before_first
        ),
        "{what}"
    );
    assert_eq!(begin, 0, "{what}");
    assert!(
        s.stdout().contains("No more reverse-execution history"),
        "{what}"
    );
    assert!(s.stdout().contains("Breakpoint 1, bump ()"), "{what}");
}

/// Two harts are two threads; a breakpoint for thread 2 stops hart 1.
#[test]
fn every_hart_is_a_thread() {
    let dir = scratch("gdb", "threads");
    let elf = build_with_symbols("counter");
    let (recording, _) = record(&dir, &elf, 2);
    let s = session(
        &dir,
        &strings(&["replay", &arg(&recording)]),
        Some(&elf),
        r#"
info threads
break spin thread 2
continue
monitor when
printf "@a0=%d\n", $a0
thread 1
printf "@hart0pc=%lx\n", $pc
kill
"#,
    );
    let what = s.describe();
    let out = s.stdout();
    assert!(
        out.contains("Thread 1.1") && out.contains("Thread 1.2"),
        "{what}"
    );
    assert!(out.contains("Thread 2 hit Breakpoint"), "{what}");
    let whens = s.whens();
    assert_eq!(whens.len(), 1, "{what}");
    assert_eq!(whens[0].1, 1, "the hart about to step is hart 1; {what}");
    assert_eq!(s.values("a0"), ["1"], "hart 1's a0 is its hart id; {what}");
}

/// gdb drives a replay back and forth (steps, seeks, reverse and forward
/// continues); running on to the end afterwards ends in the state the
/// recording ended in.
#[test]
fn a_replay_driven_back_and_forth_ends_in_the_recorded_state() {
    let dir = scratch("gdb", "back-and-forth");
    let elf = build_with_symbols("counter");
    let (recording, report) = record(&dir, &elf, 2);
    let s = session(
        &dir,
        &strings(&["replay", &arg(&recording)]),
        Some(&elf),
        r#"
break bump
continue
continue
continue
stepi
reverse-stepi
reverse-stepi
reverse-continue
monitor seek 12000
maintenance flush register-cache
monitor when
monitor seek 100
monitor when
continue
delete
continue
monitor when
monitor seek 5
monitor when
delete
continue
monitor when
kill
"#,
    );
    let what = s.describe();
    // `monitor seek` answers with where it went, as `monitor when` does.
    let whens: Vec<u64> = s.whens().iter().map(|w| w.0).collect();
    let end = report["position"].as_u64().expect("a position");
    assert_eq!(whens, [12000, 12000, 100, 100, end, 5, 5, end], "{what}");
    let recorded_hash = report["state_hash"].as_str().expect("a state hash");
    assert_eq!(s.final_hash().as_deref(), Some(recorded_hash), "{what}");
    // gdb's kill was answered, so a script that ends with it succeeds.
    assert_eq!(s.gdb.code(), Some(0), "{what}");
}

/// A bad address, a port in use or options that do not go with --gdb are
/// one sentence and a nonzero exit, before anything runs.
#[test]
fn bad_gdb_options_are_refused_in_one_sentence() {
    let dir = scratch("gdb", "bad-address");
    let elf = build_with_symbols("counter");
    let (recording, _) = record(&dir, &elf, 1);
    let run = process::run(
        REWIND,
        &strings(&["replay", &arg(&recording), "--gdb", "nowhere"]),
        Stdio::null(),
    );
    assert_eq!(run.code(), Some(2), "{}", run.describe());
    assert!(
        run.stderr.contains("is not a gdb address"),
        "{}",
        run.describe()
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let run = process::run(
        REWIND,
        &strings(&["replay", &arg(&recording), "--gdb", &port]),
        Stdio::null(),
    );
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    assert!(
        run.stderr.contains("cannot listen for gdb on 127.0.0.1:"),
        "{}",
        run.describe()
    );
    // Options of a replay that runs by itself do not go with --gdb.
    let run = process::run(
        REWIND,
        &strings(&["replay", &arg(&recording), "--gdb", "1", "--stop-at", "5"]),
        Stdio::null(),
    );
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.describe());
}

/// Records the default guest with `input` on its console (after `grep -w
/// FUNCTION /proc/kallsyms`, then `poweroff -f`) and `extra` options;
/// returns the recording, its report, FUNCTION's address in hex, and the
/// console output.
fn record_linux(
    dir: &Path,
    function: &str,
    input: &str,
    extra: &[String],
) -> (PathBuf, Value, String, String) {
    let script = dir.join("input.txt");
    std::fs::write(
        &script,
        format!("grep -w {function} /proc/kallsyms\n{input}poweroff -f\n"),
    )
    .expect("the guest's input");
    let recording = dir.join("linux.rwd");
    let report = dir.join("record.json");
    let mut args = strings(&["record", "-o", &arg(&recording), "--report", &arg(&report)]);
    args.extend_from_slice(extra);
    // Input from a regular file reaches the guest when it reads it, so the
    // recording is the same every time.
    let run = process::run(
        REWIND,
        &args,
        Stdio::from(std::fs::File::open(&script).expect("the input file")),
    );
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let stdout = run.stdout_text();
    let address = stdout
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            let address = words.next()?;
            let hex = address.len() == 16 && address.chars().all(|c| c.is_ascii_hexdigit());
            (hex && words.nth(1) == Some(function)).then(|| address.to_string())
        })
        .unwrap_or_else(|| panic!("the guest did not list {function}; {}", run.describe()));
    assert!(
        address.chars().any(|c| c != '0'),
        "kallsyms hides addresses: {address}"
    );
    let json = std::fs::read_to_string(&report).expect("the record report");
    (
        recording,
        serde_json::from_str(&json).expect("JSON"),
        address,
        stdout,
    )
}

/// The default guest (Debian's kernel): a breakpoint on a kernel function
/// whose address the guest itself reads from /proc/kallsyms is hit twice;
/// reverse-continue from the second hit comes back to the first, at the
/// same position with the same registers.
#[test]
fn a_kernel_function_breakpoint_reverse_continues_to_its_previous_hit() {
    let dir = scratch("gdb", "linux");
    let (recording, _, address, _) = record_linux(&dir, "do_sys_openat2", "", &[]);
    let registers = "info registers pc sp ra gp tp a0 a1 a2 s0 priv sstatus satp";
    let s = session(
        &dir,
        &strings(&["replay", &arg(&recording)]),
        None,
        &format!(
            "break *0x{address}\ncontinue\nmonitor when\n{registers}\ncontinue\nmonitor when\n{registers}\nreverse-continue\nmonitor when\n{registers}\nkill\n"
        ),
    );
    let what = s.describe();
    let whens = s.whens();
    assert_eq!(whens.len(), 3, "{what}");
    assert!(whens[0].0 < whens[1].0, "{what}");
    assert_eq!(whens[2], whens[0], "back at the first hit; {what}");
    let lines: Vec<String> = s
        .stdout()
        .lines()
        .filter(|l| {
            [
                "pc ", "sp ", "ra ", "gp ", "tp ", "a0 ", "a1 ", "a2 ", "s0 ", "priv ", "sstatus ",
                "satp ",
            ]
            .iter()
            .any(|r| l.starts_with(r))
        })
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 36, "{what}");
    assert_eq!(
        lines[24..],
        lines[..12],
        "the first hit's registers; {what}"
    );
    assert_ne!(lines[12..24], lines[..12], "{what}");
    assert!(lines[0].contains(&address), "{what}");
}

/// A Linux guest writes its disk twice (the second write partly over the
/// first, partly beyond it) and reads it back after each. Under gdb the
/// replay goes to the end, back to the first write (past both: the disk
/// must be as it was there, or the guest reads back something else), and
/// to the end again, in the recorded state both times. The guest's console
/// output is shown once, as the replay first gets there.
#[test]
fn going_back_past_disk_writes_puts_the_disk_back() {
    let dir = scratch("gdb", "linux-disk");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 4 << 20]).expect("the disk image");
    let input = "dd if=/dev/urandom of=/dev/vda bs=4096 count=64 oflag=direct\n\
                 md5sum /dev/vda\n\
                 dd if=/dev/urandom of=/dev/vda bs=4096 count=32 seek=48 oflag=direct\n\
                 md5sum /dev/vda\n";
    let (recording, report, address, console) = record_linux(
        &dir,
        "blkdev_write_iter",
        input,
        &strings(&["--disk", &arg(&disk)]),
    );
    // gdb's Python keeps the first write's position for `monitor seek`.
    let shown = dir.join("console.txt");
    let s = session(
        &dir,
        &strings(&[
            "replay",
            &arg(&recording),
            "--serial",
            &format!("file:{}", arg(&shown)),
        ]),
        None,
        &format!(
            r#"
break *0x{address}
continue
python first_write = gdb.execute("monitor when", to_string=True).split()[0]
delete
continue
monitor hash
python gdb.execute("monitor seek " + first_write)
monitor when
continue
monitor hash
kill
"#
        ),
    );
    let what = s.describe();
    let recorded = report["state_hash"].as_str().expect("a state hash");
    assert_eq!(hashes(&s), [recorded, recorded], "{what}");
    let whens = s.whens();
    assert_eq!(whens.len(), 2, "{what}");
    assert_eq!(
        whens[0], whens[1],
        "seek answers with where it went; {what}"
    );
    let end = report["position"].as_u64().expect("a position");
    assert!(whens[0].0 < end, "{what}");
    let shown = std::fs::read_to_string(&shown).expect("the replay's console output");
    assert!(
        shown == console,
        "shown once:\n{shown}\n--- recorded:\n{console}"
    );
}

/// The options that run tests/gdb/<name>.S live, with a report.
fn live_run(elf: &Path, harts: usize, report: &Path) -> Vec<String> {
    let mut args = strings(&["run"]);
    args.extend(program_options(elf, harts));
    args.extend(strings(&["--report", &arg(report)]));
    args
}

/// `rewind run --gdb` goes backward without having been asked to record:
/// reverse-continue returns to the first hit, and once gdb detaches the
/// run goes on to the end the plain run reaches.
#[test]
fn a_live_run_goes_backward_and_runs_on_when_gdb_detaches() {
    let dir = scratch("gdb", "live");
    let elf = build_with_symbols("counter");
    let plain_report = dir.join("plain.json");
    let plain = process::run(REWIND, &live_run(&elf, 2, &plain_report), Stdio::null());
    assert_eq!(plain.code(), Some(0), "{}", plain.describe());
    let report = dir.join("live.json");
    let s = session(
        &dir,
        &live_run(&elf, 2, &report),
        Some(&elf),
        r#"
break bump
continue
monitor when
printf "@a0=%d\n", $a0
continue
printf "@a0=%d\n", $a0
reverse-continue
monitor when
printf "@a0=%d\n", $a0
delete
detach
"#,
    );
    let what = s.describe();
    assert_eq!(s.values("a0"), ["1", "2", "1"], "{what}");
    let whens = s.whens();
    assert_eq!(whens.len(), 2, "{what}");
    assert_eq!(whens[0], whens[1], "{what}");
    assert_eq!(s.server_code, Some(0), "{what}");
    assert!(
        s.server_stderr.contains("the run goes on without gdb"),
        "{what}"
    );
    let json = |path: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("a report")).expect("JSON")
    };
    let (live, plain) = (json(&report), json(&plain_report));
    assert_eq!(live["exit_reason"], "poweroff", "{what}");
    assert_eq!(live["state_hash"], plain["state_hash"], "{what}");
}

/// `rewind restore --gdb`: history begins at the snapshot.
#[test]
fn a_restored_machine_goes_back_to_its_snapshot_and_no_further() {
    let dir = scratch("gdb", "restore");
    let elf = build_with_symbols("counter");
    let snap = dir.join("at-5000.rws");
    let mut args = live_run(&elf, 1, &dir.join("taken.json"));
    args.extend(strings(&[
        "--snapshot-at",
        "5000",
        "--snapshot-out",
        &arg(&snap),
    ]));
    let taken = process::run(REWIND, &args, Stdio::null());
    assert_eq!(taken.code(), Some(0), "{}", taken.describe());
    let s = session(
        &dir,
        &strings(&["restore", &arg(&snap)]),
        Some(&elf),
        "monitor when\nbreak bump\ncontinue\nmonitor when\nreverse-continue\nmonitor when\nkill\n",
    );
    let what = s.describe();
    let whens: Vec<u64> = s.whens().iter().map(|w| w.0).collect();
    assert_eq!(whens.len(), 3, "{what}");
    assert_eq!(whens[0], 5000, "{what}");
    assert!(whens[1] > 5000, "{what}");
    assert_eq!(whens[2], 5000, "{what}");
    assert!(
        s.stdout().contains("No more reverse-execution history"),
        "{what}"
    );
}

/// A minimal client of gdb's remote protocol, for what gdb's batch mode
/// cannot do (interrupt a running target).
struct Remote(std::os::unix::net::UnixStream);

impl Remote {
    fn send(&mut self, packet: &str) {
        let sum = packet.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        write!(self.0, "${packet}#{sum:02x}").expect("sending a packet");
    }

    /// The next packet's body (acknowledging it), skipping acks.
    fn receive(&mut self) -> String {
        use std::io::Read;
        let mut body = Vec::new();
        let mut byte = [0u8];
        loop {
            self.0
                .read_exact(&mut byte)
                .expect("reading from the server");
            if byte[0] == b'$' {
                break;
            }
        }
        loop {
            self.0
                .read_exact(&mut byte)
                .expect("reading from the server");
            if byte[0] == b'#' {
                break;
            }
            body.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.0.read_exact(&mut sum).expect("reading a checksum");
        self.0.write_all(b"+").expect("acknowledging");
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// gdb's Ctrl-C (the 0x03 byte) stops a machine that would run for ever.
#[test]
fn an_interrupt_stops_a_running_machine() {
    let dir = scratch("gdb", "interrupt");
    let elf = exact::build("tick");
    let socket = dir.join("gdb.sock");
    let mut server = start_server(&live_run(&elf, 1, &dir.join("report.json")), &socket).child;
    let stream = std::os::unix::net::UnixStream::connect(&socket).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a timeout");
    let mut remote = Remote(stream);
    remote.send("?");
    let first = remote.receive();
    assert!(first.starts_with('T'), "{first}");
    remote.send("vCont;c");
    // The machine runs (the tick program never ends) until interrupted.
    remote.0.write_all(&[0x03]).expect("interrupting");
    let stop = remote.receive();
    assert!(stop.starts_with("T02"), "SIGINT expected: {stop}");
    remote.send("qRcmd,7768656e"); // monitor when
    let mut answer = String::new();
    loop {
        let packet = remote.receive();
        if packet == "OK" {
            break;
        }
        if let Some(hex) = packet.strip_prefix('O') {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            answer.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let position: u64 = answer
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("monitor when said {answer:?}"));
    assert!(position > 0, "{answer}");
    remote.send("k");
    let status = server.wait().expect("rewind ends");
    assert_eq!(status.code(), Some(0));
}

/// The state hashes `monitor hash` printed, in order.
fn hashes(s: &Session) -> Vec<String> {
    s.gdb
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

/// Every way of reaching a position ends in the same state: `run
/// --stop-at N` and seeking to N under gdb (backward and forward, in a
/// replay and in a live run), and where reverse motions stop.
#[test]
fn seeking_to_a_position_gives_the_state_a_run_stopped_there_has() {
    let dir = scratch("gdb", "seek-exact");
    let elf = build_with_symbols("counter");
    let (recording, _) = record(&dir, &elf, 2);
    let reference = |n: u64| -> String {
        let report = dir.join(format!("stop-{n}.json"));
        let mut args = live_run(&elf, 2, &report);
        args.extend(strings(&["--stop-at", &n.to_string()]));
        let run = process::run(REWIND, &args, Stdio::null());
        assert_eq!(run.code(), Some(0), "{}", run.describe());
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("a report"))
                .expect("JSON");
        assert_eq!(json["position"].as_u64(), Some(n), "{}", run.describe());
        json["state_hash"].as_str().expect("a hash").to_string()
    };
    let order = [15_003u64, 7, 20_000, 1, 10_006, 0, 5_000, 10_000];
    let mut script: String = order
        .iter()
        .map(|n| format!("monitor seek {n}\nmonitor hash\n"))
        .collect();
    // Where reverse motions stop is a position too.
    script.push_str("break bump\ncontinue\ncontinue\nreverse-stepi\nmonitor when\nmonitor hash\n");
    script.push_str("reverse-continue\nmonitor when\nmonitor hash\nkill\n");
    let live_report = dir.join("live.json");
    for (what, args) in [
        ("a replay", strings(&["replay", &arg(&recording)])),
        ("a live run", live_run(&elf, 2, &live_report)),
    ] {
        let s = session(&dir, &args, Some(&elf), &script);
        let context = format!("{what}: {}", s.describe());
        let got = hashes(&s);
        let whens = s.whens();
        assert_eq!(got.len(), order.len() + 2, "{context}");
        // Seeks answer with `when` too: the last two are the reverse stops.
        let reverse: Vec<u64> = whens[whens.len() - 2..].iter().map(|w| w.0).collect();
        let positions: Vec<u64> = order.iter().copied().chain(reverse).collect();
        for (n, hash) in positions.iter().zip(&got) {
            assert_eq!(hash, &reference(*n), "{what} at position {n}; {context}");
        }
    }
}

/// A replay under gdb compares the recorded checkpoints on its first pass
/// forward, as a plain replay does: a recording whose checkpoint was
/// altered is named as diverged there, and forward motion ends.
#[test]
fn a_replay_under_gdb_finds_a_divergence_on_its_way_forward() {
    use rewind_replay::format::{read_all, RecordingWriter};
    use rewind_replay::Event;
    let dir = scratch("gdb", "diverged");
    let elf = build_with_symbols("counter");
    let recording = dir.join("run.rwd");
    let mut args = strings(&[
        "record",
        "-o",
        &arg(&recording),
        "--checkpoint-every",
        "4000",
    ]);
    args.extend(program_options(&elf, 1));
    let run = process::run(REWIND, &args, Stdio::null());
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let mut read = read_all(&recording).expect("reading the recording");
    let index = read
        .events
        .iter()
        .position(|e| matches!(e, Event::Checkpoint { .. }))
        .expect("a checkpoint");
    if let Event::Checkpoint { state, .. } = &mut read.events[index] {
        state.harts[0].x[10] ^= 1;
    }
    let altered = dir.join("altered.rwd");
    let out = std::fs::File::create(&altered).expect("creating the altered recording");
    let mut writer =
        RecordingWriter::create(out, rewind_machine::MODEL_VERSION, &read.header, &mut [])
            .expect("writing the header");
    for event in read.events {
        writer.push(event).expect("writing an event");
    }
    writer.finish().expect("finishing the recording");
    let s = session(
        &dir,
        &strings(&["replay", &arg(&altered)]),
        Some(&elf),
        "continue\nmonitor when\nkill\n",
    );
    let what = s.describe();
    assert!(
        s.server_stderr
            .contains("the replay diverged from the recording: at position")
            && s.server_stderr.contains("hart 0 register a0 (x10)"),
        "{what}"
    );
}

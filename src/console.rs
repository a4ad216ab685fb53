//! The host side of the guest's consoles: the UART (`--serial`) and the
//! virtio console hvc0 (`--hvc`), each on a backend: stdio, a file (output
//! only), a unix socket we listen on (one client at a time), or a pair of
//! named pipes `PATH.in` / `PATH.out` (as QEMU's `pipe:`).
//!
//! Reader threads turn every live input source (a terminal, a pipe, a
//! socket) into messages on one channel; the run loop hands bytes to the
//! guest only at round boundaries and only when the guest listens, so the
//! instant at which input reaches the guest is chosen by the machine (and
//! recorded), never by thread timing. A regular file on stdin is read by
//! the run loop itself as the guest takes it: all of it is there from the
//! start, so a run fed from a file repeats exactly without a recording. On a terminal, stdin is put in
//! raw mode for the life of the `Consoles` (restored by `Drop`, which runs on
//! every return path and on unwinding) and Ctrl-A starts a command, as in
//! QEMU: Ctrl-A x quits, Ctrl-A h lists the keys, Ctrl-A a sends a Ctrl-A.

use nix::sys::termios::{self, SetArg, Termios};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

const CTRL_A: u8 = 0x01;
/// Output kept for a unix-socket console while no client is connected.
const SOCKET_BACKLOG: usize = 64 * 1024;

pub const HELP: &str = "\r\nC-a h    print this help\r\nC-a x    exit Rewind\r\nC-a s    take a snapshot\r\nC-a a    send C-a to the guest\r\n";

/// Where a console's bytes go and come from, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Standard input and output.
    Stdio,
    /// Nothing: output is dropped and no input comes.
    Null,
    /// Output to a file (created or truncated); no input.
    File(PathBuf),
    /// A unix socket Rewind listens on; one client at a time.
    Unix(PathBuf),
    /// Named pipes PATH.in (input) and PATH.out (output), made beforehand
    /// with mkfifo.
    Pipe(PathBuf),
}

impl Backend {
    /// Parses `stdio`, `none`, `file:PATH`, `unix:PATH` or `pipe:PATH`.
    pub fn parse(text: &str) -> Result<Backend, String> {
        let path = |rest: &str, kind: &str| {
            if rest.is_empty() {
                Err(format!("'{text}' names no path: use {kind}:PATH"))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match text.split_once(':') {
            None if text == "stdio" => Ok(Backend::Stdio),
            None if text == "none" => Ok(Backend::Null),
            Some(("file", rest)) => Ok(Backend::File(path(rest, "file")?)),
            Some(("unix", rest)) => Ok(Backend::Unix(path(rest, "unix")?)),
            Some(("pipe", rest)) => Ok(Backend::Pipe(path(rest, "pipe")?)),
            _ => Err(format!(
                "'{text}' is not a console backend: use stdio, none, file:PATH, unix:PATH or pipe:PATH"
            )),
        }
    }
}

pub use rewind_session::console::{Command, PortId};

/// The option that names a port's backend, for messages.
fn option(id: PortId) -> &'static str {
    match id {
        PortId::Serial => "--serial",
        PortId::Hvc => "--hvc",
    }
}

enum Message {
    Bytes(PortId, Vec<u8>),
    Eof(PortId),
    Client(PortId, UnixStream),
    ClientGone(PortId),
}

/// Restores the terminal's settings when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output processing so the host's own messages end lines properly.
        raw.output_flags = saved.output_flags;
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

enum Output {
    Null,
    Stdout,
    File(File),
    Socket {
        client: Option<UnixStream>,
        backlog: Vec<u8>,
        path: PathBuf,
    },
}

struct Port {
    /// Input waiting for the guest.
    pending: VecDeque<u8>,
    /// No more input can come (stdin closed, or a backend without input).
    eof: bool,
    /// Input from a regular file, read here as the guest takes it rather
    /// than by a thread: all of it is there from the start, so when each
    /// byte reaches the guest depends on the guest alone, and a run fed
    /// from a file repeats without a recording.
    file: Option<File>,
    /// Input may come at any moment from a person or another program, so an
    /// idle guest is paced in real time rather than skipped ahead.
    live: bool,
    /// stdin on a terminal: Ctrl-A commands are recognised.
    interactive: bool,
    escape: bool,
    output: Output,
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Output::Socket { path, .. } = &self.output {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub struct Consoles {
    rx: Receiver<Message>,
    serial: Port,
    hvc: Option<Port>,
    /// Set by SIGTERM, SIGHUP or SIGINT: leave cleanly, restoring the terminal.
    pub interrupted: Arc<AtomicBool>,
    _raw: Option<RawMode>,
    /// Bytes of guest output handed to the backends.
    output_count: u64,
}

fn spawn_reader(tx: Sender<Message>, id: PortId, mut from: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Message::Eof(id));
                    return;
                }
                Ok(n) => {
                    if tx.send(Message::Bytes(id, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Listens on `path`, one client at a time: its bytes are input, and it
/// receives the output while connected.
fn listen(tx: Sender<Message>, id: PortId, path: &Path) -> Result<(), String> {
    // A socket left by an earlier run is replaced; any other file is not.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        format!(
            "cannot listen on the unix socket {} for {}: {e}",
            path.display(),
            option(id)
        )
    })?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(writer) = stream.try_clone() else {
                continue;
            };
            if tx.send(Message::Client(id, writer)).is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Message::Bytes(id, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
            if tx.send(Message::ClientGone(id)).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Standard input, if it is a regular file (`rewind run < script.txt`).
fn stdin_file() -> Option<File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let file = File::from(fd);
    file.metadata().ok()?.is_file().then_some(file)
}

/// Opens a FIFO (or file) read-write, so that opening never blocks waiting
/// for the other end and the input never sees end-of-file.
fn open_fifo(path: &Path, id: PortId) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open the named pipe {} for {} (make PATH.in and PATH.out with mkfifo): {e}",
                path.display(),
                option(id)
            )
        })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Port {
    /// A port that has no input and drops its output (`none`).
    fn closed() -> Port {
        Port {
            pending: VecDeque::new(),
            eof: true,
            file: None,
            live: false,
            interactive: false,
            escape: false,
            output: Output::Null,
        }
    }

    fn open(
        backend: &Backend,
        id: PortId,
        tx: &Sender<Message>,
        stdin_interactive: bool,
        input: bool,
    ) -> Result<Port, String> {
        let mut port = Port::closed();
        match backend {
            Backend::Null => {}
            Backend::Stdio => {
                port.eof = false;
                port.live = stdin_interactive;
                port.interactive = stdin_interactive;
                port.output = Output::Stdout;
                if input && !stdin_interactive {
                    port.file = stdin_file();
                }
                if port.file.is_none() && (input || stdin_interactive) {
                    spawn_reader(tx.clone(), id, std::io::stdin());
                }
            }
            Backend::File(path) => {
                let file = File::create(path).map_err(|e| {
                    format!("cannot create {} for {}: {e}", path.display(), option(id))
                })?;
                port.output = Output::File(file);
            }
            Backend::Unix(path) => {
                listen(tx.clone(), id, path)?;
                port.eof = false;
                port.live = true;
                port.output = Output::Socket {
                    client: None,
                    backlog: Vec::new(),
                    path: path.clone(),
                };
            }
            Backend::Pipe(path) => {
                let input = open_fifo(&with_suffix(path, ".in"), id)?;
                let output = open_fifo(&with_suffix(path, ".out"), id)?;
                spawn_reader(tx.clone(), id, input);
                port.eof = false;
                port.live = true;
                port.output = Output::File(output);
            }
        }
        Ok(port)
    }

    fn write(&mut self, bytes: &[u8]) {
        // A closed or failing output must not stop the guest or panic; the
        // bytes are simply dropped.
        match &mut self.output {
            Output::Null => {}
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            Output::File(f) => {
                let _ = f.write_all(bytes);
            }
            Output::Socket {
                client, backlog, ..
            } => match client {
                Some(stream) => {
                    if stream.write_all(bytes).is_err() {
                        *client = None;
                    }
                }
                None => {
                    let room = SOCKET_BACKLOG.saturating_sub(backlog.len());
                    backlog.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            },
        }
    }

    fn accept(&mut self, message: Message, commands: &mut Vec<Command>) {
        match message {
            Message::Eof(_) => self.eof = true,
            Message::Client(_, mut stream) => {
                if let Output::Socket {
                    client, backlog, ..
                } = &mut self.output
                {
                    if stream.write_all(backlog).is_ok() {
                        *client = Some(stream);
                    }
                    backlog.clear();
                }
            }
            Message::ClientGone(_) => {
                if let Output::Socket { client, .. } = &mut self.output {
                    *client = None;
                }
            }
            Message::Bytes(_, bytes) if !self.interactive => self.pending.extend(bytes),
            Message::Bytes(_, bytes) => {
                for b in bytes {
                    if self.escape {
                        self.escape = false;
                        match b {
                            b'x' | b'X' => commands.push(Command::Quit),
                            b'h' | b'H' | b'?' => commands.push(Command::Help),
                            b's' | b'S' => commands.push(Command::Snapshot),
                            b'a' | CTRL_A => self.pending.push_back(CTRL_A),
                            _ => {}
                        }
                    } else if b == CTRL_A {
                        self.escape = true;
                    } else {
                        self.pending.push_back(b);
                    }
                }
            }
        }
    }
}

impl Consoles {
    /// Opens the serial console's backend and, if given, hvc0's.
    pub fn new(serial: &Backend, hvc: Option<&Backend>) -> Result<Consoles, String> {
        Self::open(serial, hvc, true)
    }

    /// Consoles for output only (replay): stdin is read only on a terminal,
    /// for the Ctrl-A keys, and what is typed never reaches the guest.
    pub fn output_only(serial: &Backend, hvc: Option<&Backend>) -> Result<Consoles, String> {
        for backend in std::iter::once(serial).chain(hvc) {
            if matches!(backend, Backend::Unix(_) | Backend::Pipe(_)) {
                return Err(
                    "a replay takes no console input: use stdio, none or file:PATH".to_string(),
                );
            }
        }
        Self::open(serial, hvc, false)
    }

    /// Consoles that drop all output and never have input, with no reader
    /// threads and no signal handlers: for a machine driven in-process
    /// (fuzz targets, tests).
    pub fn none() -> Consoles {
        let (_, rx) = mpsc::channel();
        Consoles {
            rx,
            serial: Port::closed(),
            hvc: Some(Port::closed()),
            interrupted: Arc::new(AtomicBool::new(false)),
            _raw: None,
            output_count: 0,
        }
    }

    fn open(serial: &Backend, hvc: Option<&Backend>, input: bool) -> Result<Consoles, String> {
        if serial == &Backend::Stdio && hvc == Some(&Backend::Stdio) {
            return Err("stdio can serve only one of --serial and --hvc".to_string());
        }
        let uses_stdio = serial == &Backend::Stdio || hvc == Some(&Backend::Stdio);
        let interactive = uses_stdio && std::io::stdin().is_terminal();
        let (tx, rx) = mpsc::channel();
        let serial = Port::open(serial, PortId::Serial, &tx, interactive, input)?;
        let hvc = match hvc {
            Some(b) => Some(Port::open(b, PortId::Hvc, &tx, interactive, input)?),
            None => None,
        };
        let raw = if interactive { RawMode::enter() } else { None };
        let interrupted = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGINT,
        ] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
        }
        Ok(Consoles {
            rx,
            serial,
            hvc,
            interrupted,
            _raw: raw,
            output_count: 0,
        })
    }

    fn port(&mut self, id: PortId) -> Option<&mut Port> {
        match id {
            PortId::Serial => Some(&mut self.serial),
            PortId::Hvc => self.hvc.as_mut(),
        }
    }

    fn ports(&self) -> impl Iterator<Item = &Port> {
        std::iter::once(&self.serial).chain(self.hvc.as_ref())
    }

    /// True when input may arrive at any moment (a terminal, a socket, a
    /// pipe), so an idle guest should be paced in real time.
    pub fn live(&self) -> bool {
        self.ports().any(|p| p.live)
    }

    /// True once no console can produce more input and every byte of it was
    /// delivered.
    pub fn exhausted(&self) -> bool {
        self.ports().all(|p| p.eof && p.pending.is_empty())
    }

    /// True while some console may still produce input as time passes (a
    /// terminal, a pipe, a socket). A file's input is all there already:
    /// only the guest, by listening, decides when it goes on.
    pub fn may_produce(&self) -> bool {
        self.ports().any(|p| !p.eof && p.file.is_none())
    }

    /// Reads more of the consoles' input files, as far as the guest may
    /// take it soon (a few KiB ahead).
    pub fn read_files(&mut self) {
        const AHEAD: usize = 4096;
        for port in std::iter::once(&mut self.serial).chain(self.hvc.as_mut()) {
            let Some(file) = &mut port.file else { continue };
            let mut buf = [0u8; AHEAD];
            while port.pending.len() < AHEAD {
                match file.read(&mut buf[..AHEAD - port.pending.len()]) {
                    Ok(0) | Err(_) => {
                        // A read error ends the input, as end of file does.
                        port.eof = true;
                        port.file = None;
                        break;
                    }
                    Ok(n) => port.pending.extend(&buf[..n]),
                }
            }
        }
    }

    /// How many bytes of output the consoles have been handed so far.
    pub fn output_count(&self) -> u64 {
        self.output_count
    }

    pub fn has_input(&self, id: PortId) -> bool {
        match id {
            PortId::Serial => !self.serial.pending.is_empty(),
            PortId::Hvc => self.hvc.as_ref().is_some_and(|p| !p.pending.is_empty()),
        }
    }

    /// Takes what the input sources produced so far, without blocking.
    pub fn poll(&mut self) -> Vec<Command> {
        let mut commands = Vec::new();
        while let Ok(message) = self.rx.try_recv() {
            self.dispatch(message, &mut commands);
        }
        commands
    }

    /// Blocks until an input source produces something or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) -> Vec<Command> {
        let mut commands = Vec::new();
        match self.rx.recv_timeout(timeout) {
            Ok(message) => self.dispatch(message, &mut commands),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
        }
        commands.extend(self.poll());
        commands
    }

    fn dispatch(&mut self, message: Message, commands: &mut Vec<Command>) {
        let id = match &message {
            Message::Bytes(id, _)
            | Message::Eof(id)
            | Message::Client(id, _)
            | Message::ClientGone(id) => *id,
        };
        if let Some(port) = self.port(id) {
            port.accept(message, commands);
        }
    }

    /// Up to `max` bytes of pending input for console `id`, left pending.
    pub fn peek(&self, id: PortId, max: usize) -> Vec<u8> {
        let port = match id {
            PortId::Serial => Some(&self.serial),
            PortId::Hvc => self.hvc.as_ref(),
        };
        port.map(|p| p.pending.iter().take(max).copied().collect())
            .unwrap_or_default()
    }

    /// Drops the first `n` pending input bytes of console `id` (delivered).
    pub fn consume(&mut self, id: PortId, n: usize) {
        if let Some(p) = self.port(id) {
            let n = n.min(p.pending.len());
            p.pending.drain(..n);
        }
    }

    /// Sends guest output to console `id`'s backend.
    pub fn write(&mut self, id: PortId, bytes: &[u8]) {
        self.output_count += bytes.len() as u64;
        if let Some(p) = self.port(id) {
            p.write(bytes);
        }
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }
}

/// The session layer drives machines through this.
impl rewind_session::Console for Consoles {
    fn write(&mut self, port: PortId, bytes: &[u8]) {
        Consoles::write(self, port, bytes)
    }
    fn output_count(&self) -> u64 {
        Consoles::output_count(self)
    }
    fn interrupted(&self) -> bool {
        Consoles::interrupted(self)
    }
    fn poll(&mut self) -> Vec<Command> {
        Consoles::poll(self)
    }
    fn wait(&mut self, timeout: Duration) -> Vec<Command> {
        Consoles::wait(self, timeout)
    }
    fn read_files(&mut self) {
        Consoles::read_files(self)
    }
    fn has_input(&self, port: PortId) -> bool {
        Consoles::has_input(self, port)
    }
    fn peek(&self, port: PortId, max: usize) -> Vec<u8> {
        Consoles::peek(self, port, max)
    }
    fn consume(&mut self, port: PortId, n: usize) {
        Consoles::consume(self, port, n)
    }
    fn may_produce(&self) -> bool {
        Consoles::may_produce(self)
    }
    fn live(&self) -> bool {
        Consoles::live(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Backend;
    use std::path::PathBuf;

    #[test]
    fn backends_parse_and_bad_ones_are_one_sentence() {
        assert_eq!(Backend::parse("stdio"), Ok(Backend::Stdio));
        assert_eq!(Backend::parse("none"), Ok(Backend::Null));
        assert_eq!(
            Backend::parse("file:/tmp/a:b"),
            Ok(Backend::File(PathBuf::from("/tmp/a:b")))
        );
        assert_eq!(
            Backend::parse("unix:sock"),
            Ok(Backend::Unix(PathBuf::from("sock")))
        );
        assert_eq!(
            Backend::parse("pipe:/tmp/p"),
            Ok(Backend::Pipe(PathBuf::from("/tmp/p")))
        );
        for bad in ["", "tcp:1234", "file:", "stdio:x", "/dev/ttyS0"] {
            let e = Backend::parse(bad).unwrap_err();
            assert!(e.ends_with("PATH") || e.ends_with(":PATH"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}

//! The host side of the guest console: stdin in, stdout out.
//!
//! A reader thread turns stdin into messages; the run loop hands bytes to the
//! UART only at round boundaries, so the instant at which input reaches the
//! guest is chosen by the machine (and, later, recorded), never by thread
//! timing. On a terminal, stdin is put in raw mode for the life of the
//! `Console` (restored by `Drop`, which runs on every return path and on
//! unwinding) and Ctrl-A starts a command, as in QEMU: Ctrl-A x quits,
//! Ctrl-A h lists the keys, Ctrl-A a sends a Ctrl-A.

use nix::sys::termios::{self, SetArg, Termios};
use std::collections::VecDeque;
use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

const CTRL_A: u8 = 0x01;

pub const HELP: &str =
    "\r\nC-a h    print this help\r\nC-a x    exit Rewind\r\nC-a a    send C-a to the guest\r\n";

/// Something the user asked of Rewind itself (not of the guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
}

enum Message {
    Bytes(Vec<u8>),
    Eof,
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

pub struct Console {
    rx: Receiver<Message>,
    pending: VecDeque<u8>,
    eof: bool,
    interactive: bool,
    escape: bool,
    /// Set by SIGTERM, SIGHUP or SIGINT: leave cleanly, restoring the terminal.
    pub interrupted: Arc<AtomicBool>,
    _raw: Option<RawMode>,
}

impl Console {
    pub fn new() -> Console {
        let interactive = std::io::stdin().is_terminal();
        let raw = if interactive { RawMode::enter() } else { None };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Message::Eof);
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Message::Bytes(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let interrupted = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGINT,
        ] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
        }
        Console {
            rx,
            pending: VecDeque::new(),
            eof: false,
            interactive,
            escape: false,
            interrupted,
            _raw: raw,
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// True once stdin is closed and every byte of it was delivered.
    pub fn exhausted(&self) -> bool {
        self.eof && self.pending.is_empty()
    }

    pub fn has_input(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes what stdin produced so far, without blocking.
    pub fn poll(&mut self) -> Vec<Command> {
        let mut commands = Vec::new();
        while let Ok(message) = self.rx.try_recv() {
            self.accept(message, &mut commands);
        }
        commands
    }

    /// Blocks until stdin produces something or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) -> Vec<Command> {
        let mut commands = Vec::new();
        if self.eof {
            return commands;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(message) => self.accept(message, &mut commands),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.eof = true,
        }
        commands.extend(self.poll());
        commands
    }

    fn accept(&mut self, message: Message, commands: &mut Vec<Command>) {
        match message {
            Message::Eof => self.eof = true,
            Message::Bytes(bytes) if !self.interactive => self.pending.extend(bytes),
            Message::Bytes(bytes) => {
                for b in bytes {
                    if self.escape {
                        self.escape = false;
                        match b {
                            b'x' | b'X' => commands.push(Command::Quit),
                            b'h' | b'H' | b'?' => commands.push(Command::Help),
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

    /// Removes up to `max` bytes of pending guest input.
    pub fn take(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.pending.len());
        self.pending.drain(..n).collect()
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }
}

//! The control socket (`--control PATH`): programs drive a running machine
//! with one JSON object per line, and get one JSON object per line back.
//!
//! ```text
//! {"cmd": "status"}                      -> {"ok": true, "state": "running", "position": ..., ...}
//! {"cmd": "pause"} / {"cmd": "resume"}   -> {"ok": true}
//! {"cmd": "snapshot", "path": "FILE"}    -> {"ok": true, "path": "FILE", "bytes": ..., "ms": ...}
//! {"cmd": "quit"}                        -> {"ok": true}
//! ```
//!
//! A thread per client reads requests and hands each to the run loop, which
//! answers it at its next round boundary: like console input, a request takes
//! effect at a point the machine chooses. None of them changes what the guest
//! sees (pausing stops guest time along with the guest), so a run driven this
//! way stays deterministic and, recorded, replays without the socket.

use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

/// The longest request line accepted (a request is a few dozen bytes).
const MAX_LINE: usize = 64 * 1024;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    Status,
    Pause,
    Resume,
    Snapshot { path: PathBuf },
    Quit,
}

/// A request with the way back to its client.
pub struct Pending {
    pub request: Request,
    reply: Sender<Value>,
}

impl Pending {
    /// Answers the client (who may have gone; that is not an error).
    pub fn answer(self, reply: Value) {
        let _ = self.reply.send(reply);
    }
}

/// The listening socket and the requests waiting for the run loop.
pub struct Control {
    rx: Receiver<Pending>,
    path: PathBuf,
}

impl Control {
    /// Listens on `path` (a socket left there by an earlier run is replaced;
    /// any other file is not).
    pub fn listen(path: &Path) -> Result<Control, String> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if meta.file_type().is_socket() {
                let _ = std::fs::remove_file(path);
            }
        }
        let listener = UnixListener::bind(path).map_err(|e| {
            format!(
                "cannot listen on the control socket {}: {e}",
                path.display()
            )
        })?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || serve(stream, tx));
            }
        });
        Ok(Control {
            rx,
            path: path.to_path_buf(),
        })
    }

    /// Requests waiting now, without blocking.
    pub fn poll(&mut self) -> Vec<Pending> {
        self.rx.try_iter().collect()
    }

    /// Waits up to `timeout` for a request (while paused).
    pub fn wait(&mut self, timeout: Duration) -> Option<Pending> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves one client: a request per line, an answer per line.
fn serve(stream: UnixStream, tx: Sender<Pending>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = if line.len() > MAX_LINE {
            error(format!("a request is one line of at most {MAX_LINE} bytes"))
        } else if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            match serde_json::from_slice::<Request>(&line) {
                Err(e) => error(format!(
                    "not a request ({e}); send e.g. {{\"cmd\": \"status\"}}"
                )),
                Ok(request) => {
                    let (reply, answer) = mpsc::channel();
                    if tx.send(Pending { request, reply }).is_err() {
                        return;
                    }
                    match answer.recv() {
                        Ok(value) => value,
                        Err(_) => error("the machine has stopped".to_string()),
                    }
                }
            }
        };
        let mut text = answer.to_string();
        text.push('\n');
        if writer.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// A failure answer.
pub fn error(message: String) -> Value {
    json!({"ok": false, "error": message})
}

use std::io::Read as _;

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn requests_parse_and_unknown_ones_do_not() {
        let parse = |s: &str| serde_json::from_str::<Request>(s);
        assert_eq!(parse(r#"{"cmd":"status"}"#).unwrap(), Request::Status);
        assert_eq!(
            parse(r#"{"cmd":"snapshot","path":"a.rws"}"#).unwrap(),
            Request::Snapshot {
                path: "a.rws".into()
            }
        );
        for bad in [
            r#"{"cmd":"reboot"}"#,
            r#"{"cmd":"snapshot"}"#,
            r#"{"cmd":"snapshot","path":"a","x":1}"#,
            "[]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

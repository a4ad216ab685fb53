//! Where gdb connects: a TCP port on 127.0.0.1, `HOST:PORT`, or
//! `unix:PATH`.

use gdbstub::conn::{Connection, ConnectionExt};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// A parsed `--gdb` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GdbAddress {
    Tcp(String),
    Unix(PathBuf),
}

impl std::str::FromStr for GdbAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, as in unix:/tmp/rewind.sock".to_string());
            }
            return Ok(GdbAddress::Unix(PathBuf::from(path)));
        }
        if let Ok(port) = s.parse::<u16>() {
            return Ok(GdbAddress::Tcp(format!("127.0.0.1:{port}")));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(GdbAddress::Tcp(s.to_string()))
            }
            _ => Err(format!(
                "`{s}` is not a gdb address: give a port (1234), HOST:PORT or unix:PATH"
            )),
        }
    }
}

impl std::fmt::Display for GdbAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GdbAddress::Tcp(addr) => write!(f, "{addr}"),
            GdbAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound address, waiting for gdb.
pub enum GdbListener {
    Tcp(TcpListener),
    /// Removes its socket file when dropped.
    Unix(UnixListener, PathBuf),
}

impl GdbListener {
    pub fn bind(address: &GdbAddress) -> io::Result<GdbListener> {
        match address {
            GdbAddress::Tcp(addr) => TcpListener::bind(addr).map(GdbListener::Tcp),
            GdbAddress::Unix(path) => {
                UnixListener::bind(path).map(|l| GdbListener::Unix(l, path.clone()))
            }
        }
    }

    /// What gdb's `target remote` takes to reach this listener.
    pub fn target_remote(&self) -> String {
        match self {
            GdbListener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".to_string()),
            GdbListener::Unix(_, path) => path.display().to_string(),
        }
    }

    /// Waits for gdb to connect (or, when the listener does not block,
    /// takes a connection waiting).
    pub fn accept(&self) -> io::Result<GdbConnection> {
        match self {
            GdbListener::Tcp(l) => l.accept().map(|(s, _)| GdbConnection::Tcp(s)),
            GdbListener::Unix(l, _) => l.accept().map(|(s, _)| GdbConnection::Unix(s)),
        }
    }

    /// Waits for gdb to connect, looking at `give_up` ten times a second
    /// (a user's Ctrl-C, which a blocking accept would not notice); None
    /// when it said to give up.
    pub fn accept_unless(&self, give_up: impl Fn() -> bool) -> io::Result<Option<GdbConnection>> {
        self.set_nonblocking(true)?;
        let accepted = loop {
            match self.accept() {
                Ok(conn) => break Some(conn),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if give_up() {
                        break None;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        };
        self.set_nonblocking(false)?;
        if let Some(conn) = &accepted {
            conn.set_nonblocking(false)?;
        }
        Ok(accepted)
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            GdbListener::Tcp(l) => l.set_nonblocking(on),
            GdbListener::Unix(l, _) => l.set_nonblocking(on),
        }
    }
}

impl Drop for GdbListener {
    fn drop(&mut self) {
        if let GdbListener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One gdb connection.
pub enum GdbConnection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl GdbConnection {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            GdbConnection::Tcp(s) => s.set_nonblocking(on),
            GdbConnection::Unix(s) => s.set_nonblocking(on),
        }
    }
}

impl Connection for GdbConnection {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        match self {
            GdbConnection::Tcp(s) => Connection::write(s, byte),
            GdbConnection::Unix(s) => Connection::write(s, byte),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            GdbConnection::Tcp(s) => Connection::write_all(s, buf),
            GdbConnection::Unix(s) => Connection::write_all(s, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            GdbConnection::Tcp(s) => Connection::flush(s),
            GdbConnection::Unix(s) => Connection::flush(s),
        }
    }

    fn on_session_start(&mut self) -> io::Result<()> {
        match self {
            GdbConnection::Tcp(s) => s.set_nodelay(true),
            GdbConnection::Unix(_) => Ok(()),
        }
    }
}

impl ConnectionExt for GdbConnection {
    fn read(&mut self) -> io::Result<u8> {
        match self {
            GdbConnection::Tcp(s) => ConnectionExt::read(s),
            GdbConnection::Unix(s) => ConnectionExt::read(s),
        }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        match self {
            GdbConnection::Tcp(s) => ConnectionExt::peek(s),
            GdbConnection::Unix(s) => ConnectionExt::peek(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_ports_hosts_or_unix_paths() {
        assert_eq!("1234".parse(), Ok(GdbAddress::Tcp("127.0.0.1:1234".into())));
        assert_eq!("0.0.0.0:9".parse(), Ok(GdbAddress::Tcp("0.0.0.0:9".into())));
        assert_eq!("unix:/tmp/x".parse(), Ok(GdbAddress::Unix("/tmp/x".into())));
        assert!("unix:".parse::<GdbAddress>().is_err());
        assert!("host:port".parse::<GdbAddress>().is_err());
        assert!("99999".parse::<GdbAddress>().is_err());
    }
}

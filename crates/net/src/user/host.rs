//! Everything the user-mode backend asks of the host, behind one seam: its clock, TCP connects,
//! UDP sockets, the listeners of port forwards and the DNS upstream.
//!
//! [`RealHost`] is the host itself, what [`UserNet::new`](super::UserNet::new) uses. The other
//! implementation is [`SimulatedHost`](super::SimulatedHost), which keeps all of it in memory so
//! that a fuzzer or a test can drive the backend without touching the host's network or clock.
//! The NAT code sees only these traits, so both run exactly the same code above them.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};

use crate::clock::HostClock;

/// What the backend does to the host.
pub(crate) trait Host: Send + Debug {
    /// Host time in microseconds since the backend was created; never goes backwards.
    fn now_us(&self) -> u64;
    /// Starts a non-blocking TCP connect to `target`. An error is a refusal at once.
    fn connect_tcp(&mut self, target: SocketAddr) -> io::Result<Box<dyn HostStream>>;
    /// A non-blocking UDP socket connected to `target`.
    fn open_udp(&mut self, target: SocketAddr) -> io::Result<Box<dyn HostDatagrams>>;
    /// Listens on 127.0.0.1:`port` for a host port forward.
    fn listen_tcp(&mut self, port: u16) -> io::Result<Box<dyn HostListener>>;
    /// Where DNS queries to 10.0.2.3:53 go by default.
    fn dns_upstream(&self) -> Option<SocketAddr>;
}

/// Where a non-blocking connect stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectStatus {
    Pending,
    Connected,
    Failed,
}

/// A non-blocking host TCP stream; reads and writes fail with `WouldBlock` when they would
/// wait. Dropping it closes the connection.
pub(crate) trait HostStream: Read + Write + Send + Debug {
    /// Where its connect stands, without blocking.
    fn connect_status(&mut self) -> ConnectStatus;
    /// Sends FIN: no more writes.
    fn shutdown_write(&mut self);
}

/// A connected, non-blocking host UDP socket.
pub(crate) trait HostDatagrams: Send + Debug {
    /// Sends one datagram.
    fn send(&mut self, payload: &[u8]) -> io::Result<usize>;
    /// Takes one datagram into `buf`; `WouldBlock` when none waits.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// A non-blocking listener of a host port forward.
pub(crate) trait HostListener: Send + Debug {
    /// The next connection, made non-blocking; `WouldBlock` when none waits.
    fn accept(&mut self) -> io::Result<Box<dyn HostStream>>;
}

/// The host's own sockets, monotonic clock and /etc/resolv.conf.
#[derive(Debug)]
pub(crate) struct RealHost {
    clock: HostClock,
}

impl RealHost {
    pub(crate) fn new() -> RealHost {
        RealHost {
            clock: HostClock::new(),
        }
    }
}

impl Host for RealHost {
    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    fn connect_tcp(&mut self, target: SocketAddr) -> io::Result<Box<dyn HostStream>> {
        Ok(Box::new(connect_nonblocking(target)?))
    }

    fn open_udp(&mut self, target: SocketAddr) -> io::Result<Box<dyn HostDatagrams>> {
        let local: SocketAddr = match target {
            SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(target)?;
        socket.set_nonblocking(true)?;
        Ok(Box::new(socket))
    }

    fn listen_tcp(&mut self, port: u16) -> io::Result<Box<dyn HostListener>> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        Ok(Box::new(listener))
    }

    fn dns_upstream(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
        first_ipv4_nameserver(&text).map(|ip| SocketAddr::new(IpAddr::V4(ip), 53))
    }
}

/// Starts a non-blocking connect to `target`.
fn connect_nonblocking(target: SocketAddr) -> io::Result<TcpStream> {
    let family = match target {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let res = match target {
        SocketAddr::V4(a) => connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => connect(fd.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match res {
        Ok(()) | Err(Errno::EINPROGRESS) => {
            let stream = TcpStream::from(fd);
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Err(e) => Err(e.into()),
    }
}

impl HostStream for TcpStream {
    fn connect_status(&mut self) -> ConnectStatus {
        match self.peer_addr() {
            Ok(_) => ConnectStatus::Connected,
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => match self.take_error() {
                Ok(None) => ConnectStatus::Pending,
                _ => ConnectStatus::Failed,
            },
            Err(_) => ConnectStatus::Failed,
        }
    }

    fn shutdown_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl HostDatagrams for UdpSocket {
    fn send(&mut self, payload: &[u8]) -> io::Result<usize> {
        UdpSocket::send(self, payload)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        UdpSocket::recv(self, buf)
    }
}

impl HostListener for TcpListener {
    fn accept(&mut self) -> io::Result<Box<dyn HostStream>> {
        let (stream, _) = TcpListener::accept(self)?;
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        Ok(Box::new(stream))
    }
}

/// The first IPv4 `nameserver` in the text of a resolv.conf.
fn first_ipv4_nameserver(resolv_conf: &str) -> Option<Ipv4Addr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<Ipv4Addr>().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_from_resolv_conf() {
        let text = "# comment\nsearch example\nnameserver fe80::1\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
        assert_eq!(
            first_ipv4_nameserver(text),
            Some(Ipv4Addr::new(192, 0, 2, 53))
        );
        assert_eq!(first_ipv4_nameserver("search x\n"), None);
    }
}

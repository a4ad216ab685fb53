//! A host that lives in memory, for fuzzing and tests: see [`SimulatedHost`].

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::host::{ConnectStatus, Host, HostDatagrams, HostListener, HostStream};

/// What a greeting peer (port % 4 == 3) sends before it closes.
const GREETING: &[u8] = b"220 simulated host ready\r\n";
/// Where the simulated host's DNS queries go (192.0.2.53:53, a documentation address).
const DNS_UPSTREAM: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 53), 53);
/// Most bytes an echo peer holds before it stops reading (and the guest's window closes).
const ECHO_BUFFER: usize = 4096;
/// Most datagrams a UDP peer holds for the guest; more are lost, as a full socket loses them.
const MAX_QUEUED_DATAGRAMS: usize = 8;
/// Larger than any UDP payload the NAT passes to the guest (1472 bytes), so it is dropped.
const OVERSIZED_DATAGRAM: usize = 2000;

/// A host in memory for [`UserNet::with_simulated_host`](super::UserNet::with_simulated_host).
///
/// The backend runs all of its own code (smoltcp, DHCP, the TCP and UDP NAT) against it, but
/// opens no host socket, reads no host file and reads no host clock: what it sends the guest
/// is a function of the frames the guest sent and of how far the clock was moved. Clones share
/// one clock, so a caller keeps a clone to move it.
///
/// Every address behaves the same; the destination port picks what answers there, by its low
/// two bits, so that a fuzzer reaches every kind of peer by flipping one bit:
///
/// | port % 4 | TCP | UDP |
/// |---|---|---|
/// | 0 | refused at once | no socket can be opened (the guest gets ICMP port unreachable) |
/// | 1 | connects at the next poll; echoes what the guest sends, and closes after the guest does | echoes each datagram |
/// | 2 | the connect never completes (the guest is refused after the connect timeout) | swallows each datagram |
/// | 3 | connects at once, sends "220 simulated host ready\r\n" and closes; data from the guest resets it | answers each datagram with one too large for the guest, then echoes it |
///
/// DNS queries go to 192.0.2.53:53, an echo port: a query comes back as its own answer. Port
/// forwards cannot be set up: the simulated host has nothing that could connect to them.
#[derive(Clone, Debug, Default)]
pub struct SimulatedHost {
    /// Host time in microseconds; moves only when told to.
    clock_us: Arc<AtomicU64>,
}

/// What a port answers with, by its low two bits (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Refused,
    Echo,
    BlackHole,
    Greeter,
}

fn peer(port: u16) -> Peer {
    match port % 4 {
        0 => Peer::Refused,
        1 => Peer::Echo,
        2 => Peer::BlackHole,
        _ => Peer::Greeter,
    }
}

fn refused() -> io::Error {
    io::Error::from(ErrorKind::ConnectionRefused)
}

fn would_block() -> io::Error {
    io::Error::from(ErrorKind::WouldBlock)
}

impl SimulatedHost {
    /// A host whose clock reads zero.
    pub fn new() -> SimulatedHost {
        SimulatedHost::default()
    }

    /// Moves the clock forward by `us` microseconds (TCP retransmissions, connect timeouts and
    /// the UDP NAT's idle timeout all follow it).
    pub fn advance_clock_us(&self, us: u64) {
        let now = self.clock_us.load(Ordering::Relaxed);
        self.clock_us
            .store(now.saturating_add(us), Ordering::Relaxed);
    }
}

impl Host for SimulatedHost {
    fn now_us(&self) -> u64 {
        self.clock_us.load(Ordering::Relaxed)
    }

    fn connect_tcp(&mut self, target: SocketAddr) -> io::Result<Box<dyn HostStream>> {
        let stream = match peer(target.port()) {
            Peer::Refused => return Err(refused()),
            Peer::Echo => SimulatedStream::Echo {
                polled: false,
                buffer: VecDeque::new(),
                guest_finished: false,
            },
            Peer::BlackHole => SimulatedStream::BlackHole,
            Peer::Greeter => SimulatedStream::Greeter { sent: 0 },
        };
        Ok(Box::new(stream))
    }

    fn open_udp(&mut self, target: SocketAddr) -> io::Result<Box<dyn HostDatagrams>> {
        match peer(target.port()) {
            Peer::Refused => Err(refused()),
            kind => Ok(Box::new(SimulatedDatagrams {
                kind,
                queue: VecDeque::new(),
            })),
        }
    }

    fn listen_tcp(&mut self, _port: u16) -> io::Result<Box<dyn HostListener>> {
        Err(io::Error::new(
            ErrorKind::Unsupported,
            "the simulated host has no listening sockets",
        ))
    }

    fn dns_upstream(&self) -> Option<SocketAddr> {
        Some(DNS_UPSTREAM.into())
    }
}

/// The far end of a simulated TCP connection.
#[derive(Debug)]
enum SimulatedStream {
    Echo {
        /// Has the backend asked how the connect stands (it completes at the second look)?
        polled: bool,
        /// Bytes received and not yet echoed.
        buffer: VecDeque<u8>,
        /// The guest's FIN was passed on.
        guest_finished: bool,
    },
    BlackHole,
    Greeter {
        /// How much of [`GREETING`] was read.
        sent: usize,
    },
}

impl HostStream for SimulatedStream {
    fn connect_status(&mut self) -> ConnectStatus {
        match self {
            SimulatedStream::Echo { polled, .. } if !*polled => {
                *polled = true;
                ConnectStatus::Pending
            }
            SimulatedStream::BlackHole => ConnectStatus::Pending,
            _ => ConnectStatus::Connected,
        }
    }

    fn shutdown_write(&mut self) {
        if let SimulatedStream::Echo { guest_finished, .. } = self {
            *guest_finished = true;
        }
    }
}

impl Read for SimulatedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SimulatedStream::Echo {
                buffer,
                guest_finished,
                ..
            } => {
                if buffer.is_empty() {
                    return if *guest_finished {
                        Ok(0)
                    } else {
                        Err(would_block())
                    };
                }
                let n = buf.len().min(buffer.len());
                for (dst, src) in buf.iter_mut().zip(buffer.drain(..n)) {
                    *dst = src;
                }
                Ok(n)
            }
            SimulatedStream::BlackHole => Err(would_block()),
            SimulatedStream::Greeter { sent } => {
                let rest = &GREETING[*sent..];
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                *sent += n;
                Ok(n) // 0 once all is sent: the host closed
            }
        }
    }
}

impl Write for SimulatedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SimulatedStream::Echo {
                buffer,
                guest_finished,
                ..
            } => {
                if *guest_finished {
                    return Err(io::Error::from(ErrorKind::BrokenPipe));
                }
                let n = buf.len().min(ECHO_BUFFER - buffer.len());
                if n == 0 && !buf.is_empty() {
                    return Err(would_block());
                }
                buffer.extend(&buf[..n]);
                Ok(n)
            }
            SimulatedStream::BlackHole => Err(would_block()),
            SimulatedStream::Greeter { .. } => Err(io::Error::from(ErrorKind::ConnectionReset)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The far end of a simulated UDP flow.
#[derive(Debug)]
struct SimulatedDatagrams {
    kind: Peer,
    /// Datagrams for the guest, oldest first.
    queue: VecDeque<Vec<u8>>,
}

impl SimulatedDatagrams {
    fn answer(&mut self, datagram: Vec<u8>) {
        if self.queue.len() < MAX_QUEUED_DATAGRAMS {
            self.queue.push_back(datagram);
        }
    }
}

impl HostDatagrams for SimulatedDatagrams {
    fn send(&mut self, payload: &[u8]) -> io::Result<usize> {
        match self.kind {
            Peer::Echo => self.answer(payload.to_vec()),
            Peer::Greeter => {
                self.answer(vec![0x5a; OVERSIZED_DATAGRAM]);
                self.answer(payload.to_vec());
            }
            Peer::Refused | Peer::BlackHole => {}
        }
        Ok(payload.len())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let datagram = self.queue.pop_front().ok_or_else(would_block)?;
        // As a real socket does, a datagram longer than the buffer is cut to fit.
        let n = buf.len().min(datagram.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(port: u16) -> io::Result<Box<dyn HostStream>> {
        SimulatedHost::new().connect_tcp((Ipv4Addr::LOCALHOST, port).into())
    }

    #[test]
    fn the_port_picks_the_peer() {
        assert_eq!(
            connect(8080).unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
        let mut echo = connect(8081).unwrap();
        assert_eq!(echo.connect_status(), ConnectStatus::Pending);
        assert_eq!(echo.connect_status(), ConnectStatus::Connected);
        let mut black_hole = connect(8082).unwrap();
        for _ in 0..3 {
            assert_eq!(black_hole.connect_status(), ConnectStatus::Pending);
        }
        let mut greeter = connect(8083).unwrap();
        assert_eq!(greeter.connect_status(), ConnectStatus::Connected);
    }

    #[test]
    fn an_echo_peer_echoes_until_full_and_ends_after_the_guest() {
        let mut s = connect(1).unwrap();
        let mut buf = [0; 16];
        assert_eq!(s.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(s.write(&[7; 5000]).unwrap(), ECHO_BUFFER);
        assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(s.read(&mut buf).unwrap(), 16);
        assert_eq!(buf, [7; 16]);
        s.shutdown_write();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), ECHO_BUFFER - 16);
    }

    #[test]
    fn a_greeter_greets_closes_and_resets_on_data() {
        let mut s = connect(3).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, GREETING);
        assert_eq!(
            s.write(b"hi").unwrap_err().kind(),
            ErrorKind::ConnectionReset
        );
    }

    #[test]
    fn udp_peers_echo_swallow_or_add_an_oversized_answer() {
        let mut host = SimulatedHost::new();
        let mut open = |port| host.open_udp((Ipv4Addr::LOCALHOST, port).into());
        assert!(open(4).is_err());
        let mut buf = [0; 4096];
        let mut echo = open(5).unwrap();
        echo.send(b"ping").unwrap();
        let n = echo.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        let mut sink = open(6).unwrap();
        sink.send(b"ping").unwrap();
        assert!(sink.recv(&mut buf).is_err());
        let mut twice = open(7).unwrap();
        twice.send(b"ping").unwrap();
        assert_eq!(twice.recv(&mut buf).unwrap(), OVERSIZED_DATAGRAM);
        let n = twice.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
    }

    #[test]
    fn clones_share_the_clock() {
        let host = SimulatedHost::new();
        let handle = host.clone();
        handle.advance_clock_us(1500);
        assert_eq!(host.now_us(), 1500);
        handle.advance_clock_us(u64::MAX);
        assert_eq!(host.now_us(), u64::MAX);
    }
}

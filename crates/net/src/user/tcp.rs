//! TCP NAT: each guest connection is a smoltcp socket spliced to a host TCP stream.
//!
//! Guest to host: when the guest's SYN for a new connection arrives, the backend starts a
//! non-blocking host connect and puts a smoltcp socket in LISTEN on the SYN's destination
//! address and port with SYN|ACK paused, then hands the SYN to the stack. The socket takes the
//! SYN (SYN-RECEIVED) but answers only once the host connect succeeds; if it fails or takes
//! longer than [`CONNECT_TIMEOUT_MS`], the socket is aborted, which sends the guest an RST:
//! the guest sees exactly what connecting to the host port would give it.
//!
//! Host to guest (port forwards): an accepted host connection gets a smoltcp socket that
//! connects from 10.0.2.2 to the guest's port.
//!
//! Once both sides are up, bytes are copied each poll, as much as the other side takes:
//! data stays in smoltcp's buffers while the host socket would block, which closes the
//! guest's window (and a host read only takes what the socket's send buffer has room for).
//! A FIN from either side becomes a half-close on the other; a reset or error on the host
//! side aborts the guest connection; a reset from the guest drops the host connection.
//! A connection is forgotten once its socket is closed and has nothing left to send.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::Ipv4Address;

use super::host::{ConnectStatus, Host, HostStream};
use super::wire::{GATEWAY_IP, GUEST_IP};

/// How long a host connect may take before the guest is refused; also how long a port
/// forward's connect to the guest may take, and (doubled, from the guest's SYN) how long the
/// guest may take to complete its handshake.
pub const CONNECT_TIMEOUT_MS: u64 = 30_000;
/// Most TCP connections at once; further SYNs are refused.
pub const MAX_CONNECTIONS: usize = 256;
/// Each socket's receive and send buffer.
const BUFFER_BYTES: usize = 64 * 1024;
/// Most read or write calls per connection per poll, so that one busy connection cannot
/// starve the rest.
const MAX_IO_PER_POLL: usize = 16;
/// Local ports 10.0.2.2 uses for connections to the guest (port forwards).
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// (guest address, guest port, far address, far port): the connection as the guest sees it.
pub type Tuple = (Ipv4Address, u16, Ipv4Address, u16);

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Guest-initiated: the host connect is in progress; SYN|ACK is paused.
    HostConnecting,
    /// Port forward: the socket is connecting to the guest.
    GuestConnecting,
    /// Both sides up: bytes are copied.
    Open,
    /// The host side is finished with or failed; waiting for the socket to close.
    Done,
}

#[derive(Debug)]
struct Conn {
    handle: SocketHandle,
    tuple: Tuple,
    host: Box<dyn HostStream>,
    phase: Phase,
    started_ms: u64,
    /// The host sent FIN; the socket was closed after it.
    host_eof: bool,
    /// The guest's FIN was passed on: the host stream's write half is shut down.
    host_write_shut: bool,
}

#[derive(Debug)]
pub struct TcpNat {
    conns: BTreeMap<u64, Conn>,
    by_tuple: BTreeMap<Tuple, u64>,
    next_id: u64,
    next_port: u16,
}

impl Default for TcpNat {
    fn default() -> TcpNat {
        TcpNat {
            conns: BTreeMap::new(),
            by_tuple: BTreeMap::new(),
            next_id: 0,
            next_port: *EPHEMERAL_PORTS.start(),
        }
    }
}

fn new_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; BUFFER_BYTES]),
        tcp::SocketBuffer::new(vec![0; BUFFER_BYTES]),
    );
    // The host side already coalesces writes; delaying small segments only adds latency.
    s.set_nagle_enabled(false);
    s
}

/// Has the guest closed its sending half (its FIN is in, or the connection is gone)?
fn guest_finished(state: tcp::State) -> bool {
    matches!(
        state,
        tcp::State::CloseWait
            | tcp::State::LastAck
            | tcp::State::Closing
            | tcp::State::TimeWait
            | tcp::State::Closed
    )
}

impl TcpNat {
    /// How many connections are tracked.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Is there a live connection for this tuple, given a new SYN on it? A finished one, or one
    /// in TIME-WAIT (the guest may reuse its port at once when the host closed first; RFC 6191
    /// lets a new SYN end TIME-WAIT), is forgotten here, so that the SYN starts afresh.
    pub fn is_live(&mut self, sockets: &mut SocketSet<'static>, tuple: &Tuple) -> bool {
        let Some(&id) = self.by_tuple.get(tuple) else {
            return false;
        };
        let gone = self.conns.get(&id).is_none_or(|c| {
            let socket = sockets.get::<tcp::Socket>(c.handle);
            socket_gone(socket) || socket.state() == tcp::State::TimeWait
        });
        if gone {
            self.remove(sockets, id);
        }
        !gone
    }

    /// Starts a guest-initiated connection for a SYN on `tuple`, to the host's `target`.
    /// Returns false when it cannot (the host refused at once, too many connections); the
    /// caller then hands the SYN to the stack, which answers RST.
    pub fn open_from_guest(
        &mut self,
        sockets: &mut SocketSet<'static>,
        host: &mut dyn Host,
        tuple: Tuple,
        target: SocketAddr,
        now_ms: u64,
    ) -> bool {
        if self.conns.len() >= MAX_CONNECTIONS {
            return false;
        }
        let Ok(host) = host.connect_tcp(target) else {
            return false;
        };
        let mut socket = new_socket();
        if socket.listen((tuple.2, tuple.3)).is_err() {
            return false;
        }
        socket.pause_synack(true);
        let handle = sockets.add(socket);
        self.insert(Conn {
            handle,
            tuple,
            host,
            phase: Phase::HostConnecting,
            started_ms: now_ms,
            host_eof: false,
            host_write_shut: false,
        });
        true
    }

    /// Connects an accepted (non-blocking) host connection to the guest's `guest_port` (a port
    /// forward).
    pub fn open_forward(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        host: Box<dyn HostStream>,
        guest_port: u16,
        now_ms: u64,
    ) {
        if self.conns.len() >= MAX_CONNECTIONS {
            return; // dropping `host` closes it
        }
        let Some(port) = self.free_port(guest_port) else {
            return;
        };
        let mut socket = new_socket();
        if socket
            .connect(iface.context(), (GUEST_IP, guest_port), (GATEWAY_IP, port))
            .is_err()
        {
            return;
        }
        let handle = sockets.add(socket);
        self.insert(Conn {
            handle,
            tuple: (GUEST_IP, guest_port, GATEWAY_IP, port),
            host,
            phase: Phase::GuestConnecting,
            started_ms: now_ms,
            host_eof: false,
            host_write_shut: false,
        });
    }

    /// Moves connections along: finishes host connects, copies bytes both ways, passes on
    /// FINs, resets and timeouts. Never blocks.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ms: u64) {
        for conn in self.conns.values_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
            match conn.phase {
                Phase::HostConnecting => match conn.host.connect_status() {
                    ConnectStatus::Connected => {
                        socket.pause_synack(false);
                        conn.phase = Phase::Open;
                    }
                    ConnectStatus::Pending
                        if now_ms.saturating_sub(conn.started_ms) < CONNECT_TIMEOUT_MS => {}
                    ConnectStatus::Pending | ConnectStatus::Failed => {
                        socket.abort(); // RST|ACK to the guest's SYN
                        conn.phase = Phase::Done;
                    }
                },
                Phase::GuestConnecting => match socket.state() {
                    tcp::State::SynSent
                        if now_ms.saturating_sub(conn.started_ms) >= CONNECT_TIMEOUT_MS =>
                    {
                        socket.abort();
                        conn.phase = Phase::Done;
                    }
                    tcp::State::SynSent => {}
                    _ => conn.phase = Phase::Open,
                },
                // A guest that never completes its handshake (it went away) is given up on.
                Phase::Open
                    if socket.state() == tcp::State::SynReceived
                        && now_ms.saturating_sub(conn.started_ms) >= 2 * CONNECT_TIMEOUT_MS =>
                {
                    socket.abort();
                    conn.phase = Phase::Done;
                }
                Phase::Open | Phase::Done => {}
            }
            if conn.phase == Phase::Open {
                pump(conn, socket);
            }
        }
    }

    /// Forgets connections whose socket is finished, closing their host streams.
    pub fn reap(&mut self, sockets: &mut SocketSet<'static>) {
        let gone: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| socket_gone(sockets.get::<tcp::Socket>(c.handle)))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.remove(sockets, id);
        }
    }

    fn insert(&mut self, conn: Conn) {
        let id = self.next_id;
        self.next_id += 1;
        self.by_tuple.insert(conn.tuple, id);
        self.conns.insert(id, conn);
    }

    fn remove(&mut self, sockets: &mut SocketSet<'static>, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            if self.by_tuple.get(&conn.tuple) == Some(&id) {
                self.by_tuple.remove(&conn.tuple);
            }
            sockets.remove(conn.handle);
            // Dropping conn.host closes the host stream.
        }
    }

    /// A local port on 10.0.2.2 not in use toward `guest_port`.
    fn free_port(&mut self, guest_port: u16) -> Option<u16> {
        let span = usize::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL_PORTS.end() {
                *EPHEMERAL_PORTS.start()
            } else {
                port + 1
            };
            if !self
                .by_tuple
                .contains_key(&(GUEST_IP, guest_port, GATEWAY_IP, port))
            {
                return Some(port);
            }
        }
        None
    }
}

/// Is the socket finished: closed with its RST (if any) sent, or back to LISTEN because the
/// guest reset a connection that was waiting for its host connect?
fn socket_gone(socket: &tcp::Socket) -> bool {
    match socket.state() {
        tcp::State::Listen => true,
        tcp::State::Closed => socket.remote_endpoint().is_none(),
        _ => false,
    }
}

/// Copies bytes both ways between an open connection's socket and host stream.
fn pump(conn: &mut Conn, socket: &mut tcp::Socket<'static>) {
    // Guest to host.
    for _ in 0..MAX_IO_PER_POLL {
        if !socket.can_recv() {
            break;
        }
        let host = &mut conn.host;
        match socket.recv(|buf| match host.write(buf) {
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        }) {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
            Ok(Err(e)) if e.kind() != ErrorKind::WouldBlock => {
                socket.abort(); // the host reset the connection
                conn.phase = Phase::Done;
                return;
            }
            _ => break,
        }
    }
    if !conn.host_write_shut && guest_finished(socket.state()) && socket.recv_queue() == 0 {
        conn.host.shutdown_write();
        conn.host_write_shut = true;
    }

    // Host to guest.
    for _ in 0..MAX_IO_PER_POLL {
        if conn.host_eof || !socket.may_send() || socket.send_queue() >= socket.send_capacity() {
            break;
        }
        let host = &mut conn.host;
        match socket.send(|buf| {
            if buf.is_empty() {
                return (0, Err(ErrorKind::WouldBlock.into()));
            }
            match host.read(buf) {
                Ok(n) => (n, Ok(n)),
                Err(e) => (0, Err(e)),
            }
        }) {
            Ok(Ok(0)) => {
                conn.host_eof = true;
                socket.close(); // FIN after the queued data
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
            Ok(Err(e)) if e.kind() == ErrorKind::WouldBlock => break,
            Ok(Err(_)) => {
                socket.abort(); // the host reset the connection
                conn.phase = Phase::Done;
                return;
            }
            Err(_) => break,
        }
    }
    if conn.host_eof && conn.host_write_shut {
        conn.phase = Phase::Done;
    }
}

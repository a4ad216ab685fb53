//! UDP NAT: each (guest address, guest port, destination, destination port) is a flow with its
//! own connected, non-blocking host socket. Datagrams from the guest are sent on it; datagrams
//! the host socket receives come back to the guest from the destination's address and port.
//! A flow idle for [`IDLE_TIMEOUT_MS`] is closed; past [`MAX_FLOWS`] the least recently used
//! one is. Datagrams too large for one unfragmented IP packet toward the guest are dropped.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;

use smoltcp::wire::Ipv4Address;

use super::host::{Host, HostDatagrams};
use super::wire::MAX_UDP_PAYLOAD;

/// How long a flow lives without traffic either way.
pub const IDLE_TIMEOUT_MS: u64 = 60_000;
/// Most flows open at once.
pub const MAX_FLOWS: usize = 256;
/// Most datagrams taken from one flow per poll, so that one busy flow cannot starve the rest.
const MAX_DATAGRAMS_PER_POLL: usize = 64;

/// (guest address, guest port, destination address, destination port).
pub type FlowKey = (Ipv4Address, u16, Ipv4Address, u16);

#[derive(Debug)]
struct Flow {
    socket: Box<dyn HostDatagrams>,
    last_used_ms: u64,
}

#[derive(Debug, Default)]
pub struct UdpNat {
    flows: BTreeMap<FlowKey, Flow>,
    buf: Vec<u8>,
}

impl UdpNat {
    /// Sends a guest datagram to `target` on the flow's host socket, opening the flow first if
    /// needed. An error means no host socket could be opened or connected.
    pub fn send(
        &mut self,
        host: &mut dyn Host,
        key: FlowKey,
        target: SocketAddr,
        payload: &[u8],
        now_ms: u64,
    ) -> io::Result<()> {
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= MAX_FLOWS {
                self.evict_least_recently_used();
            }
            let socket = host.open_udp(target)?;
            self.flows.insert(
                key,
                Flow {
                    socket,
                    last_used_ms: now_ms,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return Ok(());
        };
        flow.last_used_ms = now_ms;
        // A full host buffer or an ICMP error from an earlier datagram (ECONNREFUSED) loses this
        // datagram, as the network would.
        let _ = flow.socket.send(payload);
        Ok(())
    }

    /// Takes the datagrams waiting on host sockets, in flow order, and closes idle flows.
    /// `deliver` gets the flow and a payload; it returns false when the guest's queue is full.
    pub fn poll(&mut self, now_ms: u64, mut deliver: impl FnMut(&FlowKey, &[u8]) -> bool) {
        if self.buf.is_empty() {
            self.buf = vec![0; 65536];
        }
        for (key, flow) in &mut self.flows {
            for _ in 0..MAX_DATAGRAMS_PER_POLL {
                match flow.socket.recv(&mut self.buf) {
                    Ok(n) => {
                        flow.last_used_ms = now_ms;
                        if n <= MAX_UDP_PAYLOAD && !deliver(key, &self.buf[..n]) {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // WouldBlock, or a pending ICMP error (ECONNREFUSED): nothing to deliver.
                    Err(_) => break,
                }
            }
        }
        self.flows
            .retain(|_, f| now_ms.saturating_sub(f.last_used_ms) < IDLE_TIMEOUT_MS);
    }

    /// How many flows are open.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self
            .flows
            .iter()
            .min_by_key(|(_, f)| f.last_used_ms)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.flows.remove(&k);
        }
    }
}

//! The user-mode backend: NAT between the guest's 10.0.2.0/24 and the host's sockets, needing
//! no privileges, in the spirit of QEMU's `-netdev user` (slirp).
//!
//! | address | what answers there |
//! |---|---|
//! | 10.0.2.2 | the gateway (ARP, ping, DHCP server); TCP/UDP to 10.0.2.2:P go to the host's 127.0.0.1:P |
//! | 10.0.2.3 | DNS: UDP and TCP port 53 are forwarded to the host's nameserver (the first IPv4 `nameserver` in /etc/resolv.conf); without one, the guest gets ICMP port unreachable |
//! | 10.0.2.15 | the guest, as handed out by DHCP |
//! | anything else | TCP and UDP are connected from the host as they are |
//!
//! Host port forwards listen on 127.0.0.1:HP and connect from 10.0.2.2 to 10.0.2.15:GP.
//!
//! How a guest frame is handled ([`UserNet::send`]): ARP requests for 10.0.2.2 and 10.0.2.3,
//! ICMP to them and all TCP go to the smoltcp stack (with "any IP" on, so it takes TCP for
//! every destination); UDP is handled here: DHCP by the server, the rest by the UDP NAT.
//! Everything else (IPv6, multicast, IP fragments, frames for other MAC addresses) is dropped.
//!
//! Not supported: IPv6, ICMP beyond echo replies from 10.0.2.2 and 10.0.2.3, IP fragments,
//! UDP port forwards.
//!
//! Everything done to the host (sockets, clock, resolv.conf) goes through the [`host::Host`]
//! seam: [`UserNet::new`] uses the real host, [`UserNet::with_simulated_host`] a host in
//! memory (see [`SimulatedHost`]) for fuzzing and tests.

mod dhcp;
mod host;
mod queue;
mod simulated;
mod tcp;
mod udp;
mod wire;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    HardwareAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket,
    TcpRepr, UdpPacket, UdpRepr,
};

use crate::{NetBackend, NetError};
use host::{Host, HostListener, RealHost};
use queue::FrameQueue;
pub use simulated::SimulatedHost;
use wire::{in_guest_net, DNS_IP, GATEWAY_IP, GATEWAY_MAC, GUEST_PREFIX_LEN};

/// The shortest host time between two rounds of host-side work when the guest is quiet.
const POLL_INTERVAL_US: u64 = 200;

/// Configuration of the user-mode backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserNetConfig {
    /// The guest NIC's MAC address (the virtio-net device's), used until the guest's first
    /// frame shows its address.
    pub guest_mac: [u8; 6],
    /// TCP port forwards: (host port on 127.0.0.1, guest port on 10.0.2.15).
    pub host_forwards: Vec<(u16, u16)>,
    /// Seeds the stack's generator (TCP initial sequence numbers the guest
    /// sees). The frames are logged inputs, so any fixed seed replays; the
    /// machine's `--seed` chooses it.
    pub random_seed: u64,
}

impl Default for UserNetConfig {
    fn default() -> UserNetConfig {
        UserNetConfig {
            guest_mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            host_forwards: Vec::new(),
            random_seed: 0x5245_5749_4e44_4e45,
        }
    }
}

/// The user-mode NAT backend.
pub struct UserNet {
    host: Box<dyn Host>,
    iface: Interface,
    sockets: SocketSet<'static>,
    queue: FrameQueue,
    /// The guest's MAC address, as last seen in a frame from it.
    guest_mac: EthernetAddress,
    tcp: tcp::TcpNat,
    udp: udp::UdpNat,
    forwards: Vec<(Box<dyn HostListener>, u16)>,
    dns_upstream: Option<SocketAddr>,
    /// When [`NetBackend::poll`] last did host-side work, in host microseconds.
    last_host_poll_us: Option<u64>,
    /// Has the guest sent a frame since then?
    guest_sent: bool,
}

impl std::fmt::Debug for UserNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserNet")
            .field("guest_mac", &self.guest_mac)
            .field("tcp_connections", &self.tcp.len())
            .field("udp_flows", &self.udp.len())
            .field("queued_for_guest", &self.queue.to_guest.len())
            .field("dns_upstream", &self.dns_upstream)
            .finish_non_exhaustive()
    }
}

impl UserNet {
    /// Sets up the network and listens on the host forwards' ports.
    pub fn new(cfg: UserNetConfig) -> Result<UserNet, NetError> {
        UserNet::with_host(cfg, Box::new(RealHost::new()))
    }

    /// Sets up the network on a host that lives in memory: nothing reaches the host's network
    /// or clock, and the frames for the guest depend only on the frames from it and on when
    /// `host`'s clock (shared with its clones) is moved. For fuzzing and tests; port forwards
    /// are refused.
    pub fn with_simulated_host(
        cfg: UserNetConfig,
        host: SimulatedHost,
    ) -> Result<UserNet, NetError> {
        UserNet::with_host(cfg, Box::new(host))
    }

    fn with_host(cfg: UserNetConfig, mut host: Box<dyn Host>) -> Result<UserNet, NetError> {
        let mut forwards = Vec::with_capacity(cfg.host_forwards.len());
        for &(host_port, guest_port) in &cfg.host_forwards {
            let listener = host
                .listen_tcp(host_port)
                .map_err(|source| NetError::HostForward {
                    port: host_port,
                    source,
                })?;
            forwards.push((listener, guest_port));
        }

        let mut queue = FrameQueue::default();
        let mut config = Config::new(HardwareAddress::Ethernet(GATEWAY_MAC));
        config.random_seed = cfg.random_seed;
        let mut iface = Interface::new(config, &mut queue, stack_time(host.now_us()));
        iface.update_ip_addrs(|addrs| {
            for ip in [GATEWAY_IP, DNS_IP] {
                // Capacity is at least 2 (smoltcp's default iface-max-addr-count).
                let _ = addrs.push(IpCidr::new(ip.into(), GUEST_PREFIX_LEN));
            }
        });
        // Take TCP for any destination: the guest's connections to the outside are NATed.
        iface.set_any_ip(true);

        let guest_mac = EthernetAddress(cfg.guest_mac);
        let dns_upstream = host.dns_upstream();
        Ok(UserNet {
            host,
            iface,
            sockets: SocketSet::new(Vec::new()),
            queue,
            guest_mac,
            tcp: tcp::TcpNat::default(),
            udp: udp::UdpNat::default(),
            forwards,
            dns_upstream,
            last_host_poll_us: None,
            guest_sent: false,
        })
    }

    /// Where DNS queries to 10.0.2.3:53 go; `None` makes DNS unsupported (the guest gets ICMP
    /// port unreachable for UDP and a reset for TCP). Defaults to the first IPv4 nameserver in
    /// the host's /etc/resolv.conf, port 53 (on a simulated host, to its echo upstream).
    pub fn set_dns_upstream(&mut self, upstream: Option<SocketAddr>) {
        self.dns_upstream = upstream;
    }

    /// Where DNS queries to 10.0.2.3:53 go, if anywhere.
    pub fn dns_upstream(&self) -> Option<SocketAddr> {
        self.dns_upstream
    }

    /// How many TCP connections are tracked (for diagnostics and tests).
    pub fn tcp_connections(&self) -> usize {
        self.tcp.len()
    }

    /// How many UDP flows are open (for diagnostics and tests).
    pub fn udp_flows(&self) -> usize {
        self.udp.len()
    }

    /// The host address a guest's connection to `dst:port` goes to, or `None` if that
    /// destination is refused.
    fn host_target(&self, dst: Ipv4Address, port: u16) -> Option<SocketAddr> {
        if dst == GATEWAY_IP {
            Some((Ipv4Addr::LOCALHOST, port).into())
        } else if dst == DNS_IP {
            self.dns_upstream.filter(|_| port == 53)
        } else if in_guest_net(dst)
            || dst.is_broadcast()
            || dst.is_multicast()
            || dst.is_unspecified()
            || dst.is_loopback()
        {
            None
        } else {
            Some((dst, port).into())
        }
    }

    /// Hands a frame to the smoltcp stack and lets it answer.
    fn feed_stack(&mut self, frame: &[u8]) {
        self.queue.to_stack.push_back(frame.to_vec());
        let now = stack_time(self.host.now_us());
        self.iface.poll(now, &mut self.queue, &mut self.sockets);
    }

    fn send_arp(&mut self, frame: &[u8], payload: &[u8]) {
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return;
        };
        // With "any IP" on, the stack would claim every address; only the gateway and the DNS
        // forwarder exist on this network.
        let ours = target_protocol_addr == GATEWAY_IP || target_protocol_addr == DNS_IP;
        if ours && matches!(operation, ArpOperation::Request | ArpOperation::Reply) {
            self.feed_stack(frame);
        }
    }

    fn send_ipv4(&mut self, frame: &[u8], payload: &[u8]) {
        let caps = ChecksumCapabilities::default();
        let Ok(packet) = Ipv4Packet::new_checked(payload) else {
            return;
        };
        let Ok(ip) = Ipv4Repr::parse(&packet, &caps) else {
            return;
        };
        if packet.more_frags() || packet.frag_offset() != 0 {
            return; // fragments are not supported
        }
        match ip.next_header {
            IpProtocol::Tcp => self.send_tcp(frame, &ip, packet.payload()),
            IpProtocol::Udp => self.send_udp(frame, &ip, packet.payload()),
            IpProtocol::Icmp if ip.dst_addr == GATEWAY_IP || ip.dst_addr == DNS_IP => {
                self.feed_stack(frame); // echo replies
            }
            _ => {}
        }
    }

    fn send_tcp(&mut self, frame: &[u8], ip: &Ipv4Repr, payload: &[u8]) {
        let caps = ChecksumCapabilities::default();
        let Ok(packet) = TcpPacket::new_checked(payload) else {
            return;
        };
        let Ok(tcp) = TcpRepr::parse(&packet, &ip.src_addr.into(), &ip.dst_addr.into(), &caps)
        else {
            return;
        };
        let tuple = (ip.src_addr, tcp.src_port, ip.dst_addr, tcp.dst_port);
        let new_syn = tcp.control == TcpControl::Syn && tcp.ack_number.is_none();
        if new_syn && !self.tcp.is_live(&mut self.sockets, &tuple) {
            if let Some(target) = self.host_target(ip.dst_addr, tcp.dst_port) {
                let now_ms = self.host.now_us() / 1000;
                self.tcp.open_from_guest(
                    &mut self.sockets,
                    self.host.as_mut(),
                    tuple,
                    target,
                    now_ms,
                );
            }
            // Without a new socket, the stack answers the SYN with RST.
        }
        self.feed_stack(frame);
        // A new socket that did not take the SYN is dropped again.
        self.tcp.reap(&mut self.sockets);
    }

    fn send_udp(&mut self, frame: &[u8], ip: &Ipv4Repr, payload: &[u8]) {
        let caps = ChecksumCapabilities::default();
        let Ok(packet) = UdpPacket::new_checked(payload) else {
            return;
        };
        let Ok(udp) = UdpRepr::parse(&packet, &ip.src_addr.into(), &ip.dst_addr.into(), &caps)
        else {
            return;
        };
        if udp.dst_port == dhcp::SERVER_PORT {
            if let Some(reply) = dhcp::reply_frame(packet.payload()) {
                self.queue.push_to_guest(reply);
            }
            return;
        }
        let dst = ip.dst_addr;
        if dst.is_broadcast() || dst.is_multicast() || dst == wire::GUEST_BROADCAST {
            return;
        }
        if let Some(target) = self.host_target(dst, udp.dst_port) {
            let key = (ip.src_addr, udp.src_port, dst, udp.dst_port);
            let now_ms = self.host.now_us() / 1000;
            let host = self.host.as_mut();
            if self
                .udp
                .send(host, key, target, packet.payload(), now_ms)
                .is_ok()
            {
                return;
            }
        }
        // Refused: the stack has no UDP sockets, so it answers ICMP port unreachable.
        self.feed_stack(frame);
    }
}

impl NetBackend for UserNet {
    fn send(&mut self, frame: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        let dst = eth.dst_addr();
        if dst != GATEWAY_MAC && !dst.is_broadcast() {
            return;
        }
        self.guest_sent = true;
        let src = eth.src_addr();
        if src.is_unicast() {
            self.guest_mac = src;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.send_arp(frame, eth.payload()),
            EthernetProtocol::Ipv4 => self.send_ipv4(frame, eth.payload()),
            _ => {}
        }
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        self.queue.to_guest.pop_front()
    }

    fn poll(&mut self) {
        // The machine polls every round, far more often than host sockets need: unless the
        // guest has sent something, host-side work (a system call per socket) is done at most
        // every POLL_INTERVAL_US.
        let now_us = self.host.now_us();
        let due = self
            .last_host_poll_us
            .is_none_or(|last| now_us.saturating_sub(last) >= POLL_INTERVAL_US);
        if !due && !self.guest_sent {
            return;
        }
        self.last_host_poll_us = Some(now_us);
        self.guest_sent = false;
        let now_ms = now_us / 1000;

        for (listener, guest_port) in &mut self.forwards {
            for _ in 0..16 {
                match listener.accept() {
                    Ok(stream) => self.tcp.open_forward(
                        &mut self.iface,
                        &mut self.sockets,
                        stream,
                        *guest_port,
                        now_ms,
                    ),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }

        self.tcp.service(&mut self.sockets, now_ms);

        let (queue, guest_mac) = (&mut self.queue, self.guest_mac);
        self.udp
            .poll(now_ms, |&(guest_ip, guest_port, far_ip, far_port), data| {
                queue.push_to_guest(wire::udp_frame(
                    guest_mac,
                    (far_ip, far_port),
                    (guest_ip, guest_port),
                    data,
                ))
            });

        self.iface
            .poll(stack_time(now_us), &mut self.queue, &mut self.sockets);
        self.tcp.reap(&mut self.sockets);
    }
}

/// Host microseconds as smoltcp's time.
fn stack_time(us: u64) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_map_to_host_addresses() {
        let mut net = UserNet::new(UserNetConfig::default()).unwrap();
        let upstream: SocketAddr = "127.0.0.53:53".parse().unwrap();
        net.set_dns_upstream(Some(upstream));
        let target = |net: &UserNet, a: [u8; 4], port| net.host_target(Ipv4Address::from(a), port);
        assert_eq!(
            target(&net, [10, 0, 2, 2], 8080),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(target(&net, [10, 0, 2, 3], 53), Some(upstream));
        assert_eq!(target(&net, [10, 0, 2, 3], 80), None);
        assert_eq!(target(&net, [10, 0, 2, 15], 80), None);
        assert_eq!(target(&net, [10, 0, 2, 99], 80), None);
        assert_eq!(target(&net, [255, 255, 255, 255], 80), None);
        assert_eq!(target(&net, [224, 0, 0, 251], 5353), None);
        assert_eq!(target(&net, [127, 0, 0, 1], 80), None);
        // Anything else is connected as it is (this test opens no connection).
        assert_eq!(
            target(&net, [192, 0, 2, 1], 443),
            Some("192.0.2.1:443".parse().unwrap())
        );
        net.set_dns_upstream(None);
        assert_eq!(target(&net, [10, 0, 2, 3], 53), None);
    }

    #[test]
    fn user_net_is_send() {
        fn is_send<T: Send>() {}
        is_send::<UserNet>();
        is_send::<crate::Tap>();
    }
}

//! A fake guest for driving a backend: a smoltcp interface (a real TCP/IP stack) whose
//! Ethernet frames go through an in-memory pipe to and from a [`NetBackend`], exactly as the
//! virtio-net device would pass them; plus builders and parsers for hand-made frames.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rewind_net::NetBackend;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, HardwareAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    UdpPacket, UdpRepr,
};

pub const GUEST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
pub const GATEWAY_MAC: EthernetAddress = EthernetAddress([0x52, 0x55, 10, 0, 2, 2]);
pub const GUEST_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
pub const GATEWAY_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
pub const DNS_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 3);

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Most rounds any wait may take before the test fails: a backstop far past
/// what [`DEADLINE`] allows even in an optimised build, so the deadline governs
/// (5M rounds once ran out in under a second, before a host SYN retransmit).
pub const MAX_ROUNDS: u64 = 1_000_000_000;

/// The guest's side of the wire.
#[derive(Default)]
pub struct Pipe {
    /// Frames the backend produced, waiting for the guest stack.
    pub to_guest: VecDeque<Vec<u8>>,
    /// Frames the guest stack transmitted, waiting for the backend.
    pub from_guest: VecDeque<Vec<u8>>,
}

impl Device for Pipe {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let f = self.to_guest.pop_front()?;
        Some((Rx(f), Tx(&mut self.from_guest)))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.from_guest))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

pub struct Rx(Vec<u8>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut v = vec![0; len];
        let r = f(&mut v);
        self.0.push_back(v);
        r
    }
}

/// A smoltcp "guest" wired to a backend.
pub struct Guest<B: NetBackend> {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub pipe: Pipe,
    pub net: B,
    start: Instant,
    /// Every frame the backend delivered, in order.
    pub delivered: Vec<Vec<u8>>,
}

impl<B: NetBackend> Guest<B> {
    /// A guest with no address yet (for DHCP).
    pub fn unconfigured(net: B) -> Guest<B> {
        let mut pipe = Pipe::default();
        let mut config = Config::new(HardwareAddress::Ethernet(GUEST_MAC));
        config.random_seed = 0x1234_5678;
        let start = Instant::now();
        let iface = Interface::new(config, &mut pipe, smoltcp::time::Instant::from_millis(0));
        Guest {
            iface,
            sockets: SocketSet::new(Vec::new()),
            pipe,
            net,
            start,
            delivered: Vec::new(),
        }
    }

    /// A guest configured as DHCP would: 10.0.2.15/24, default route via 10.0.2.2.
    pub fn configured(net: B) -> Guest<B> {
        let mut g = Guest::unconfigured(net);
        g.iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(GUEST_IP.into(), 24)).unwrap();
        });
        g.iface
            .routes_mut()
            .add_default_ipv4_route(GATEWAY_IP)
            .unwrap();
        g
    }

    pub fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_millis(self.start.elapsed().as_millis() as i64)
    }

    /// One round: the guest stack runs, its frames go to the backend, the backend polls, and
    /// its frames come back to the guest stack.
    pub fn round(&mut self) {
        let now = self.now();
        self.iface.poll(now, &mut self.pipe, &mut self.sockets);
        while let Some(f) = self.pipe.from_guest.pop_front() {
            self.net.send(&f);
        }
        self.net.poll();
        while let Some(f) = self.net.recv() {
            self.delivered.push(f.clone());
            self.pipe.to_guest.push_back(f);
        }
        self.iface.poll(now, &mut self.pipe, &mut self.sockets);
    }

    /// Runs rounds until `done` holds; fails the test after [`DEADLINE`] or [`MAX_ROUNDS`].
    pub fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Guest<B>) -> bool) {
        let start = Instant::now();
        for _ in 0..MAX_ROUNDS {
            self.round();
            if done(self) {
                return;
            }
            if start.elapsed() > DEADLINE {
                break;
            }
        }
        panic!("timed out waiting for {what}");
    }
}

/// Polls a backend directly until it has a frame; fails after the deadline.
pub fn next_frame(net: &mut impl NetBackend, what: &str) -> Vec<u8> {
    let start = Instant::now();
    for _ in 0..MAX_ROUNDS {
        if let Some(f) = net.recv() {
            return f;
        }
        net.poll();
        if start.elapsed() > DEADLINE {
            break;
        }
    }
    panic!("timed out waiting for {what}");
}

/// Drains what a backend has ready after a few polls (for "no answer" checks).
pub fn drain(net: &mut impl NetBackend) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..10 {
        net.poll();
        while let Some(f) = net.recv() {
            out.push(f);
        }
    }
    out
}

pub fn ethernet(dst: EthernetAddress, ethertype: EthernetProtocol, payload_len: usize) -> Vec<u8> {
    let mut f = vec![0; 14 + payload_len];
    EthernetRepr {
        src_addr: GUEST_MAC,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f
}

pub fn arp_request(target: Ipv4Address) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: GUEST_MAC,
        source_protocol_addr: GUEST_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut f = ethernet(
        EthernetAddress::BROADCAST,
        EthernetProtocol::Arp,
        repr.buffer_len(),
    );
    repr.emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    f
}

/// An IPv4 frame from the guest; `emit` fills the IP payload.
pub fn ipv4(
    dst_mac: EthernetAddress,
    src: Ipv4Address,
    dst: Ipv4Address,
    proto: IpProtocol,
    payload_len: usize,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len,
        hop_limit: 64,
    };
    let mut f = ethernet(dst_mac, EthernetProtocol::Ipv4, 20 + payload_len);
    let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
    repr.emit(&mut p, &ChecksumCapabilities::default());
    emit(p.payload_mut());
    f
}

pub fn udp(
    dst_mac: EthernetAddress,
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    payload: &[u8],
) -> Vec<u8> {
    ipv4(
        dst_mac,
        src.0,
        dst.0,
        IpProtocol::Udp,
        8 + payload.len(),
        |buf| {
            UdpRepr {
                src_port: src.1,
                dst_port: dst.1,
            }
            .emit(
                &mut UdpPacket::new_unchecked(buf),
                &src.0.into(),
                &dst.0.into(),
                payload.len(),
                |p| p.copy_from_slice(payload),
                &ChecksumCapabilities::default(),
            );
        },
    )
}

/// A parsed frame from the backend: Ethernet header and, for IPv4, the IP header and payload.
pub struct Parsed {
    pub eth: EthernetRepr,
    pub ip: Option<Ipv4Repr>,
    pub ip_payload: Vec<u8>,
    pub arp: Option<ArpRepr>,
}

/// Parses a frame from the backend, checking the IPv4 header checksum.
pub fn parse(frame: &[u8]) -> Parsed {
    let eth_frame = EthernetFrame::new_checked(frame).expect("ethernet frame");
    let eth = EthernetRepr::parse(&eth_frame).unwrap();
    let mut out = Parsed {
        eth,
        ip: None,
        ip_payload: Vec::new(),
        arp: None,
    };
    match eth.ethertype {
        EthernetProtocol::Arp => {
            let p = ArpPacket::new_checked(eth_frame.payload()).unwrap();
            out.arp = Some(ArpRepr::parse(&p).unwrap());
        }
        EthernetProtocol::Ipv4 => {
            let p = Ipv4Packet::new_checked(eth_frame.payload()).unwrap();
            out.ip =
                Some(Ipv4Repr::parse(&p, &ChecksumCapabilities::default()).expect("ip checksum"));
            out.ip_payload = p.payload().to_vec();
        }
        _ => {}
    }
    out
}

/// Parses a UDP frame from the backend (checking both checksums): (src, dst, payload).
pub fn parse_udp(frame: &[u8]) -> ((Ipv4Address, u16), (Ipv4Address, u16), Vec<u8>) {
    let p = parse(frame);
    let ip = p.ip.expect("an IPv4 frame");
    assert_eq!(ip.next_header, IpProtocol::Udp, "a UDP frame");
    let u = UdpPacket::new_checked(&p.ip_payload[..]).unwrap();
    let r = UdpRepr::parse(
        &u,
        &ip.src_addr.into(),
        &ip.dst_addr.into(),
        &ChecksumCapabilities::default(),
    )
    .expect("udp checksum");
    (
        (ip.src_addr, r.src_port),
        (ip.dst_addr, r.dst_port),
        u.payload().to_vec(),
    )
}

//! Guest Ethernet frames into the user-mode network backend (`UserNet`: ARP, DHCP server, ICMP
//! echo, the TCP and UDP NAT on smoltcp): whatever a hostile guest sends, the host must not
//! panic, and every frame the backend hands the guest must be well formed (checksums right,
//! from the gateway's MAC address, no longer than the MTU).
//!
//! The backend runs on its simulated host (`UserNet::with_simulated_host`, see
//! crates/net/src/user/simulated.rs): no host socket is opened and no host clock read, so a run
//! is safe and repeats exactly. The destination port picks the simulated peer (port % 4: 0
//! refused, 1 echo, 2 black hole, 3 greeter), so the fuzzer reaches every NAT path.
//!
//! Input: up to [`MAX_OPS`] operations, each a tag byte and what it needs:
//! - `tag % 4 == 0`: move the simulated clock by `CLOCK_STEPS_US[(tag >> 2) % 8]` and poll.
//! - `tag % 4 == 1`: a frame (u16 little-endian length, then the bytes), sent after the
//!   target reseals it: IPv4 total length, header checksum and TCP/UDP/ICMP checksums made
//!   right, so that mutations get past checksum checks into DHCP, NAT and TCP.
//! - `tag % 4 == 2`: a frame sent as it is (to reach the checks themselves).
//! - `tag % 4 == 3`: a frame that continues a TCP connection: its sequence and
//!   acknowledgement numbers are set from the backend's last segment on the same connection
//!   (and ACK is set), then it is resealed. Without this, the fuzzer would have to guess
//!   32-bit sequence numbers to get past a handshake.
//!
//! After each frame the target takes the backend's replies, as the virtio-net device would.
//! Seeds in fuzz/corpus/usernet_frames are written by
//! `cargo run -p rewind-net --example fuzz_seeds -- fuzz/corpus/usernet_frames`.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use rewind_net::{NetBackend, SimulatedHost, UserNet, UserNetConfig};

/// Most operations taken from one input, so that each run stays short.
const MAX_OPS: usize = 96;
/// Longest frame taken from the input: somewhat over the 1514 bytes of a full-MTU frame.
const MAX_INPUT_FRAME: usize = 1600;
/// The longest frame the backend may hand the guest (a 1500-byte IP MTU, no FCS).
const MAX_FRAME_TO_GUEST: usize = 1514;
/// How far a poll operation moves the clock: to reach the 200 µs poll interval, TCP
/// retransmissions, the 30 s connect timeout and the 60 s UDP idle timeout.
const CLOCK_STEPS_US: [u64; 8] = [
    0, 150, 1_000, 20_000, 250_000, 1_500_000, 31_000_000, 61_000_000,
];
/// The backend's limits on connections and flows (crates/net tcp.rs and udp.rs).
const MAX_CONNECTIONS: usize = 256;
const MAX_FLOWS: usize = 256;
/// The gateway's MAC address: the source of every frame to the guest.
const GATEWAY_MAC: [u8; 6] = [0x52, 0x55, 10, 0, 2, 2];

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const TCP_SYN: u8 = 0x02;
const TCP_FIN: u8 = 0x01;
const TCP_ACK: u8 = 0x10;

fuzz_target!(|data: &[u8]| {
    let host = SimulatedHost::new();
    let mut net = UserNet::with_simulated_host(UserNetConfig::default(), host.clone())
        .expect("a backend without port forwards builds");
    let mut peers = TcpPeers::default();
    let mut input = data;
    for _ in 0..MAX_OPS {
        let Some((&tag, rest)) = input.split_first() else {
            break;
        };
        input = rest;
        if tag % 4 == 0 {
            host.advance_clock_us(CLOCK_STEPS_US[usize::from(tag >> 2) % 8]);
            net.poll();
        } else {
            let Some(frame) = take_frame(&mut input) else {
                break;
            };
            let mut frame = frame.to_vec();
            if tag % 4 == 3 {
                peers.continue_connection(&mut frame);
            }
            if tag % 4 != 2 {
                reseal(&mut frame);
            }
            net.send(&frame);
        }
        take_replies(&mut net, &mut peers);
    }
    // Let timers run out: retransmissions, connect and idle timeouts.
    for _ in 0..3 {
        host.advance_clock_us(31_000_000);
        net.poll();
        take_replies(&mut net, &mut peers);
    }
    assert!(net.tcp_connections() <= MAX_CONNECTIONS);
    assert!(net.udp_flows() <= MAX_FLOWS);
});

/// A length-prefixed frame from the input, if it is all there.
fn take_frame<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len)) % (MAX_INPUT_FRAME + 1);
    let frame = rest.get(..len)?;
    *input = &rest[len..];
    Some(frame)
}

/// Takes every frame the backend has for the guest and checks it.
fn take_replies(net: &mut UserNet, peers: &mut TcpPeers) {
    while let Some(frame) = net.recv() {
        check_frame(&frame);
        peers.learn(&frame);
    }
}

/// A frame from the backend must be one it could have built: Ethernet from the gateway,
/// ARP or IPv4 with every checksum right.
fn check_frame(frame: &[u8]) {
    assert!(
        (ETH_HEADER..=MAX_FRAME_TO_GUEST).contains(&frame.len()),
        "a frame of {} bytes to the guest",
        frame.len()
    );
    assert_eq!(frame[6..12], GATEWAY_MAC, "a frame not from the gateway");
    let ethertype = [frame[12], frame[13]];
    if ethertype == ETHERTYPE_ARP {
        return;
    }
    assert_eq!(ethertype, ETHERTYPE_IPV4, "a frame neither ARP nor IPv4");
    let ip = &frame[ETH_HEADER..];
    let Some(packet) = Ipv4::parse(ip) else {
        panic!("a malformed IPv4 header to the guest: {ip:02x?}");
    };
    assert_eq!(packet.total_len, ip.len(), "IPv4 total length");
    assert_eq!(
        checksum(0, &ip[..packet.header_len]),
        0,
        "IPv4 header checksum"
    );
    let l4 = &ip[packet.header_len..];
    match packet.protocol {
        PROTO_TCP | PROTO_UDP => assert_eq!(
            checksum(pseudo_header_sum(ip, l4.len()), l4),
            0,
            "TCP or UDP checksum to the guest"
        ),
        PROTO_ICMP => assert_eq!(checksum(0, l4), 0, "ICMP checksum to the guest"),
        other => panic!("IP protocol {other} to the guest"),
    }
}

/// The parts of an IPv4 header the target needs.
struct Ipv4 {
    header_len: usize,
    total_len: usize,
    protocol: u8,
    fragment: bool,
}

impl Ipv4 {
    fn parse(ip: &[u8]) -> Option<Ipv4> {
        let header_len = usize::from(*ip.first()? & 0x0f) * 4;
        if ip[0] >> 4 != 4 || header_len < 20 || header_len > ip.len() {
            return None;
        }
        let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
        Some(Ipv4 {
            header_len,
            total_len: usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            protocol: ip[9],
            fragment: flags_offset & 0x3fff != 0,
        })
    }
}

/// Makes an Ethernet + IPv4 frame's lengths and checksums right, whatever else it says, so
/// that the backend's parsers look past them.
fn reseal(frame: &mut [u8]) {
    if frame.len() < ETH_HEADER || frame[12..14] != ETHERTYPE_IPV4 {
        return;
    }
    let ip = &mut frame[ETH_HEADER..];
    let Some(packet) = Ipv4::parse(ip) else {
        return;
    };
    let total_len = ip.len().min(usize::from(u16::MAX));
    let ip = &mut ip[..total_len];
    ip[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    let h = packet.header_len;
    ip[10..12].fill(0);
    let sum = checksum(0, &ip[..h]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    if packet.fragment {
        return; // only the first fragment has a transport header, and fragments are dropped
    }
    let l4_len = total_len - h;
    let pseudo = pseudo_header_sum(ip, l4_len);
    let (_, l4) = ip.split_at_mut(h);
    let field = match packet.protocol {
        PROTO_TCP if l4_len >= 20 => 16,
        PROTO_UDP if l4_len >= 8 => {
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            6
        }
        PROTO_ICMP if l4_len >= 4 => 2,
        _ => return,
    };
    l4[field..field + 2].fill(0);
    let mut sum = checksum(
        if packet.protocol == PROTO_ICMP {
            0
        } else {
            pseudo
        },
        l4,
    );
    if packet.protocol == PROTO_UDP && sum == 0 {
        sum = 0xffff; // zero means "no checksum" in UDP
    }
    l4[field..field + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The one's-complement sum of the IPv4 pseudo-header for a transport segment of `l4_len`.
fn pseudo_header_sum(ip: &[u8], l4_len: usize) -> u32 {
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&ip[12..20]);
    pseudo[9] = ip[9];
    pseudo[10..].copy_from_slice(&(l4_len as u16).to_be_bytes());
    u32::from(!checksum(0, &pseudo))
}

/// The Internet checksum of `bytes`, starting from the partial sum `initial`.
fn checksum(initial: u32, bytes: &[u8]) -> u16 {
    let mut sum = u64::from(initial);
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A TCP connection as the guest names it: (guest port, far address, far port).
type ConnKey = (u16, [u8; 4], u16);

/// What the backend last said on each TCP connection: (the sequence number after its
/// segment, the acknowledgement number in it).
#[derive(Default)]
struct TcpPeers {
    last: BTreeMap<ConnKey, (u32, Option<u32>)>,
}

/// Offsets of a TCP segment in an Ethernet frame: (IP header, TCP header, payload).
fn tcp_offsets(frame: &[u8]) -> Option<(usize, usize, usize)> {
    if frame.len() < ETH_HEADER || frame[12..14] != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = Ipv4::parse(&frame[ETH_HEADER..])?;
    if ip.protocol != PROTO_TCP || ip.fragment {
        return None;
    }
    let tcp = ETH_HEADER + ip.header_len;
    let data_offset = usize::from(*frame.get(tcp + 12)? >> 4) * 4;
    let payload = tcp + data_offset;
    (data_offset >= 20 && payload <= frame.len()).then_some((ETH_HEADER, tcp, payload))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl TcpPeers {
    /// Notes a segment from the backend to the guest.
    fn learn(&mut self, frame: &[u8]) {
        let Some((ip, tcp, payload)) = tcp_offsets(frame) else {
            return;
        };
        let flags = frame[tcp + 13];
        let far: [u8; 4] = frame[ip + 12..ip + 16].try_into().expect("4 bytes");
        let key = (be16(frame, tcp + 2), far, be16(frame, tcp));
        let len = (frame.len() - payload) as u32
            + u32::from(flags & TCP_SYN != 0)
            + u32::from(flags & TCP_FIN != 0);
        let next = be32(frame, tcp + 4).wrapping_add(len);
        let ack = (flags & TCP_ACK != 0).then(|| be32(frame, tcp + 8));
        self.last.insert(key, (next, ack));
    }

    /// Sets a guest segment's sequence and acknowledgement numbers to follow the backend's
    /// last segment on its connection.
    fn continue_connection(&self, frame: &mut [u8]) {
        let Some((ip, tcp, _)) = tcp_offsets(frame) else {
            return;
        };
        let far: [u8; 4] = frame[ip + 16..ip + 20].try_into().expect("4 bytes");
        let key = (be16(frame, tcp), far, be16(frame, tcp + 2));
        let Some(&(next, ack)) = self.last.get(&key) else {
            return;
        };
        if let Some(ack) = ack {
            frame[tcp + 4..tcp + 8].copy_from_slice(&ack.to_be_bytes());
        }
        frame[tcp + 8..tcp + 12].copy_from_slice(&next.to_be_bytes());
        frame[tcp + 13] |= TCP_ACK;
    }
}

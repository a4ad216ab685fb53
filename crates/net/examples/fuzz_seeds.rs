//! Writes the seed corpus of the `usernet_frames` fuzz target:
//!
//!     cargo run -p rewind-net --example fuzz_seeds -- fuzz/corpus/usernet_frames
//!
//! Each seed is a short conversation a real guest would have with the user-mode network, in
//! the target's input format (see fuzz/fuzz_targets/usernet_frames.rs): a tag byte per
//! operation; frames behind a u16 little-endian length. The frames carry correct checksums,
//! although the target reseals them anyway. TCP segments after a SYN use the "continue" tag,
//! so that the target gives them the sequence numbers the backend expects.

use std::path::PathBuf;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket,
    UdpRepr,
};

const GUEST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const GATEWAY_MAC: EthernetAddress = EthernetAddress([0x52, 0x55, 10, 0, 2, 2]);
const GUEST_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const DNS_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 3);
/// A documentation address: "the outside".
const FAR_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);

/// Ports on the simulated host, by what answers there (port % 4).
const REFUSED: u16 = 8080;
const ECHO: u16 = 8081;
const BLACK_HOLE: u16 = 8082;
const GREETER: u16 = 8083;

/// One operation of a fuzz input.
enum Op {
    /// Move the clock by the target's step number `n` (0: not at all; 6: 31 s) and poll.
    Poll(u8),
    /// A frame, resealed by the target.
    Frame(Vec<u8>),
    /// A TCP frame that continues its connection (sequence numbers set by the target).
    Continue(Vec<u8>),
}

fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        let (tag, frame) = match op {
            Op::Poll(step) => (step << 2, None),
            Op::Frame(f) => (1, Some(f)),
            Op::Continue(f) => (3, Some(f)),
        };
        out.push(tag);
        if let Some(f) = frame {
            out.extend_from_slice(&u16::try_from(f.len()).unwrap().to_le_bytes());
            out.extend_from_slice(f);
        }
    }
    out
}

fn ethernet(dst: EthernetAddress, ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0; 14 + payload.len()];
    EthernetRepr {
        src_addr: GUEST_MAC,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(payload);
    f
}

fn arp_request(target: Ipv4Address) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: GUEST_MAC,
        source_protocol_addr: GUEST_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut p = vec![0; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    ethernet(EthernetAddress::BROADCAST, EthernetProtocol::Arp, &p)
}

/// An IPv4 frame; `emit` fills the transport part of `len` bytes.
fn ipv4(
    dst_mac: EthernetAddress,
    src: Ipv4Address,
    dst: Ipv4Address,
    proto: IpProtocol,
    len: usize,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: len,
        hop_limit: 64,
    };
    let mut p = vec![0; 20 + len];
    let mut packet = Ipv4Packet::new_unchecked(&mut p[..]);
    repr.emit(&mut packet, &ChecksumCapabilities::default());
    emit(packet.payload_mut());
    ethernet(dst_mac, EthernetProtocol::Ipv4, &p)
}

fn udp(src: (Ipv4Address, u16), dst: (Ipv4Address, u16), payload: &[u8]) -> Vec<u8> {
    let dst_mac = if dst.0 == Ipv4Address::BROADCAST {
        EthernetAddress::BROADCAST
    } else {
        GATEWAY_MAC
    };
    ipv4(
        dst_mac,
        src.0,
        dst.0,
        IpProtocol::Udp,
        8 + payload.len(),
        |b| {
            UdpRepr {
                src_port: src.1,
                dst_port: dst.1,
            }
            .emit(
                &mut UdpPacket::new_unchecked(b),
                &src.0.into(),
                &dst.0.into(),
                payload.len(),
                |p| p.copy_from_slice(payload),
                &ChecksumCapabilities::default(),
            )
        },
    )
}

/// A TCP segment from the guest's port 40000. `ack` sets the ACK flag (the target fills in
/// the number when the segment continues a connection).
fn tcp(dst: (Ipv4Address, u16), control: TcpControl, ack: bool, payload: &[u8]) -> Vec<u8> {
    let syn = control == TcpControl::Syn;
    let repr = TcpRepr {
        src_port: 40000,
        dst_port: dst.1,
        control,
        seq_number: TcpSeqNumber(0x1000),
        ack_number: ack.then_some(TcpSeqNumber(0)),
        window_len: 8192,
        window_scale: None,
        max_seg_size: syn.then_some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    ipv4(
        GATEWAY_MAC,
        GUEST_IP,
        dst.0,
        IpProtocol::Tcp,
        repr.buffer_len(),
        |b| {
            repr.emit(
                &mut TcpPacket::new_unchecked(b),
                &GUEST_IP.into(),
                &dst.0.into(),
                &ChecksumCapabilities::default(),
            )
        },
    )
}

fn ping(dst: Ipv4Address) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x77,
        seq_no: 1,
        data: b"rewind ping",
    };
    ipv4(
        GATEWAY_MAC,
        GUEST_IP,
        dst,
        IpProtocol::Icmp,
        repr.buffer_len(),
        |b| {
            repr.emit(
                &mut Icmpv4Packet::new_unchecked(b),
                &ChecksumCapabilities::default(),
            )
        },
    )
}

fn dhcp(message_type: DhcpMessageType, requested_ip: Option<Ipv4Address>) -> Vec<u8> {
    let repr = DhcpRepr {
        message_type,
        transaction_id: 0x3903_f326,
        secs: 0,
        client_hardware_address: GUEST_MAC,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: Ipv4Address::UNSPECIFIED,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip,
        client_identifier: Some(GUEST_MAC),
        server_identifier: requested_ip.map(|_| GATEWAY_IP),
        parameter_request_list: Some(&[1, 3, 6, 12, 15, 28, 42, 51, 54]),
        dns_servers: None,
        max_size: Some(576),
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut payload = vec![0; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .unwrap();
    udp(
        (Ipv4Address::UNSPECIFIED, 68),
        (Ipv4Address::BROADCAST, 67),
        &payload,
    )
}

/// A DNS query for the A record of example.com.
fn dns_query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["example", "com"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Each seed's conversation, after an ARP request for the gateway: as a real guest's would,
/// it tells the backend the guest's MAC address, which its replies need.
fn seeds() -> Vec<(&'static str, Vec<Op>)> {
    use Op::*;
    let ack = |dst, payload: &[u8]| Continue(tcp(dst, TcpControl::Psh, true, payload));
    let fin = |dst| Continue(tcp(dst, TcpControl::Fin, true, &[]));
    vec![
        (
            "dhcp",
            vec![
                Frame(dhcp(DhcpMessageType::Discover, None)),
                Poll(0),
                Frame(dhcp(DhcpMessageType::Request, Some(GUEST_IP))),
                Poll(0),
            ],
        ),
        (
            "arp-and-ping",
            vec![
                Frame(arp_request(DNS_IP)),
                Frame(ping(GATEWAY_IP)),
                Frame(ping(DNS_IP)),
                Poll(2),
            ],
        ),
        (
            "tcp-echo",
            vec![
                Frame(tcp((GATEWAY_IP, ECHO), TcpControl::Syn, false, &[])),
                Poll(1),
                Poll(2),
                ack((GATEWAY_IP, ECHO), b"GET / HTTP/1.0\r\n\r\n"),
                Poll(2),
                ack((GATEWAY_IP, ECHO), &[]),
                fin((GATEWAY_IP, ECHO)),
                Poll(2),
                ack((GATEWAY_IP, ECHO), &[]),
                Poll(2),
            ],
        ),
        (
            "tcp-greeter",
            vec![
                Frame(tcp((FAR_IP, GREETER), TcpControl::Syn, false, &[])),
                Poll(1),
                ack((FAR_IP, GREETER), &[]),
                Poll(2),
                ack((FAR_IP, GREETER), b"QUIT\r\n"),
                Poll(2),
            ],
        ),
        (
            "tcp-refused-and-timeout",
            vec![
                Frame(tcp((GATEWAY_IP, REFUSED), TcpControl::Syn, false, &[])),
                Frame(tcp((FAR_IP, BLACK_HOLE), TcpControl::Syn, false, &[])),
                Frame(tcp((DNS_IP, 80), TcpControl::Syn, false, &[])),
                Poll(5),
                Poll(6),
            ],
        ),
        (
            "tcp-dns",
            vec![
                Frame(tcp((DNS_IP, 53), TcpControl::Syn, false, &[])),
                Poll(1),
                Poll(2),
                ack((DNS_IP, 53), &dns_query()),
                Poll(2),
            ],
        ),
        (
            "udp-dns",
            vec![
                Frame(udp((GUEST_IP, 33000), (DNS_IP, 53), &dns_query())),
                Poll(2),
            ],
        ),
        (
            "udp-nat",
            vec![
                Frame(udp((GUEST_IP, 5000), (GATEWAY_IP, 7001), b"echo")),
                Frame(udp((GUEST_IP, 5001), (GATEWAY_IP, 7000), b"refused")),
                Frame(udp((GUEST_IP, 5002), (FAR_IP, 7003), b"oversized")),
                Frame(udp((GUEST_IP, 5003), (FAR_IP, 7002), b"swallowed")),
                Poll(2),
                Poll(7),
            ],
        ),
    ]
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz_seeds DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, ops) in seeds() {
        let mut bytes = encode(&[Op::Frame(arp_request(GATEWAY_IP))]);
        bytes.extend(encode(&ops));
        assert!(bytes.len() < 4096, "{name} is {} bytes", bytes.len());
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

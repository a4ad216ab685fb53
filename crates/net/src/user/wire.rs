//! The user-mode network's fixed addresses, and building the frames the backend sends itself.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

/// The guest network, 10.0.2.0/24, as QEMU's user networking lays it out.
pub const GUEST_NET: Ipv4Address = Ipv4Address::new(10, 0, 2, 0);
/// The guest network's prefix length.
pub const GUEST_PREFIX_LEN: u8 = 24;
/// The gateway, which is also the host: 10.0.2.2:PORT is the host's 127.0.0.1:PORT.
pub const GATEWAY_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// The DNS forwarder.
pub const DNS_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 3);
/// The guest network's broadcast address.
pub const GUEST_BROADCAST: Ipv4Address = Ipv4Address::new(10, 0, 2, 255);
/// The one address the DHCP server hands out.
pub const GUEST_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
/// The gateway's (and DNS forwarder's) MAC address, as in QEMU: 52:55 then the IP address.
pub const GATEWAY_MAC: EthernetAddress = EthernetAddress([0x52, 0x55, 10, 0, 2, 2]);

const ETH_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// The largest UDP payload that fits one unfragmented 1500-byte IP packet.
pub const MAX_UDP_PAYLOAD: usize = 1500 - IPV4_HEADER - UDP_HEADER;

/// Is `addr` inside 10.0.2.0/24?
pub fn in_guest_net(addr: Ipv4Address) -> bool {
    let mask = u32::MAX << (32 - GUEST_PREFIX_LEN);
    u32::from(addr) & mask == u32::from(GUEST_NET) & mask
}

/// An Ethernet + IPv4 + UDP frame from the backend to the guest. `payload` must fit
/// [`MAX_UDP_PAYLOAD`].
pub fn udp_frame(
    dst_mac: EthernetAddress,
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    payload: &[u8],
) -> Vec<u8> {
    debug_assert!(payload.len() <= MAX_UDP_PAYLOAD);
    let caps = ChecksumCapabilities::default();
    let mut frame = vec![0; ETH_HEADER + IPV4_HEADER + UDP_HEADER + payload.len()];
    EthernetRepr {
        src_addr: GATEWAY_MAC,
        dst_addr: dst_mac,
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: UDP_HEADER + payload.len(),
        hop_limit: 64,
    }
    .emit(
        &mut Ipv4Packet::new_unchecked(&mut frame[ETH_HEADER..]),
        &caps,
    );
    UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut frame[ETH_HEADER + IPV4_HEADER..]),
        &src.0.into(),
        &dst.0.into(),
        payload.len(),
        |buf| buf.copy_from_slice(payload),
        &caps,
    );
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_net_membership() {
        assert!(in_guest_net(GUEST_IP));
        assert!(in_guest_net(Ipv4Address::new(10, 0, 2, 255)));
        assert!(!in_guest_net(Ipv4Address::new(10, 0, 3, 1)));
        assert!(!in_guest_net(Ipv4Address::new(127, 0, 0, 1)));
    }

    #[test]
    fn udp_frame_parses_back_with_valid_checksums() {
        let f = udp_frame(
            EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            (GATEWAY_IP, 7),
            (GUEST_IP, 4000),
            b"hello",
        );
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let caps = ChecksumCapabilities::default();
        let ipr = Ipv4Repr::parse(&ip, &caps).unwrap();
        assert_eq!((ipr.src_addr, ipr.dst_addr), (GATEWAY_IP, GUEST_IP));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        let ur = UdpRepr::parse(&udp, &GATEWAY_IP.into(), &GUEST_IP.into(), &caps).unwrap();
        assert_eq!((ur.src_port, ur.dst_port), (7, 4000));
        assert_eq!(udp.payload(), b"hello");
    }
}

//! The DHCP server: every client gets 10.0.2.15/24, router 10.0.2.2, DNS 10.0.2.3.
//!
//! It answers DISCOVER with OFFER, REQUEST with ACK (or NAK when the client asks for another
//! address), INFORM with ACK, and ignores DECLINE, RELEASE and requests meant for another
//! server. There is one guest, so there is no lease table: the answer depends only on the
//! request. Replies follow RFC 2131 §4.1: to the client's address if it has one, else to
//! 255.255.255.255, at the broadcast MAC address if the client asked for broadcast.

use smoltcp::wire::{DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, Ipv4Address};

use super::wire::{udp_frame, DNS_IP, GATEWAY_IP, GUEST_IP};

/// The server's and client's UDP ports.
pub const SERVER_PORT: u16 = 67;
/// The client's UDP port.
pub const CLIENT_PORT: u16 = 68;

/// The lease handed out, in seconds.
pub const LEASE_SECS: u32 = 86400;

const SUBNET_MASK: Ipv4Address = Ipv4Address::new(255, 255, 255, 0);

/// BOOTP's minimum message size; some clients drop shorter replies.
const MIN_MESSAGE_LEN: usize = 300;

/// The reply frame to one DHCP message (the UDP payload of a datagram to port 67), if any.
pub fn reply_frame(request: &[u8]) -> Option<Vec<u8>> {
    let packet = DhcpPacket::new_checked(request).ok()?;
    let req = DhcpRepr::parse(&packet).ok()?;
    if req.server_identifier.is_some_and(|id| id != GATEWAY_IP) {
        return None; // the client chose another server
    }
    let (message_type, your_ip, lease) = match req.message_type {
        DhcpMessageType::Discover => (DhcpMessageType::Offer, GUEST_IP, Some(LEASE_SECS)),
        DhcpMessageType::Request => {
            let wanted = req
                .requested_ip
                .or((!req.client_ip.is_unspecified()).then_some(req.client_ip));
            if wanted == Some(GUEST_IP) {
                (DhcpMessageType::Ack, GUEST_IP, Some(LEASE_SECS))
            } else {
                (DhcpMessageType::Nak, Ipv4Address::UNSPECIFIED, None)
            }
        }
        DhcpMessageType::Inform => (DhcpMessageType::Ack, Ipv4Address::UNSPECIFIED, None),
        _ => return None,
    };
    let nak = message_type == DhcpMessageType::Nak;
    let mut reply = DhcpRepr {
        message_type,
        transaction_id: req.transaction_id,
        secs: 0,
        client_hardware_address: req.client_hardware_address,
        client_ip: if nak {
            Ipv4Address::UNSPECIFIED
        } else {
            req.client_ip
        },
        your_ip,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: (!nak).then_some(GATEWAY_IP),
        subnet_mask: (!nak).then_some(SUBNET_MASK),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: req.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(GATEWAY_IP),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: lease,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    if !nak {
        let servers = reply.dns_servers.insert(Default::default());
        servers.push(DNS_IP).ok()?;
    }
    let mut payload = vec![0; reply.buffer_len().max(MIN_MESSAGE_LEN)];
    reply
        .emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .ok()?;

    let to_client_ip = !req.client_ip.is_unspecified() && !nak;
    let dst_ip = if to_client_ip {
        req.client_ip
    } else {
        Ipv4Address::BROADCAST
    };
    let dst_mac = if req.broadcast || nak {
        EthernetAddress::BROADCAST
    } else {
        req.client_hardware_address
    };
    Some(udp_frame(
        dst_mac,
        (GATEWAY_IP, SERVER_PORT),
        (dst_ip, CLIENT_PORT),
        &payload,
    ))
}

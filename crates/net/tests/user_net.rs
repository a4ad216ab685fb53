//! The user-mode backend driven by a fake guest: hand-built frames, and a smoltcp guest stack
//! talking to it through an in-memory pipe. Every host socket is on 127.0.0.1.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]
// Test deadlines are wall-clock time; no guest state is involved.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use common::*;
use rewind_net::{NetBackend, NetError, UserNet, UserNetConfig};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::wire::{
    ArpOperation, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetProtocol, Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpCidr, IpProtocol,
    Ipv4Address,
};

const IO_TIMEOUT: Option<Duration> = Some(Duration::from_secs(20));

fn user_net() -> UserNet {
    UserNet::new(UserNetConfig::default()).expect("user net")
}

fn tcp_socket(buf: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; buf]),
        tcp::SocketBuffer::new(vec![0; buf]),
    )
}

fn udp_socket() -> udp::Socket<'static> {
    udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16384]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16384]),
    )
}

/// A port on 127.0.0.1 with nothing listening (bound, then closed).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn arp_for_gateway_and_dns_is_answered_and_other_addresses_are_not() {
    let mut net = user_net();
    for target in [GATEWAY_IP, DNS_IP] {
        net.send(&arp_request(target));
        let reply = parse(&next_frame(&mut net, "an ARP reply"));
        assert_eq!(reply.eth.dst_addr, GUEST_MAC);
        assert_eq!(reply.eth.src_addr, GATEWAY_MAC);
        assert_eq!(
            reply.arp,
            Some(ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: GATEWAY_MAC,
                source_protocol_addr: target,
                target_hardware_addr: GUEST_MAC,
                target_protocol_addr: GUEST_IP,
            })
        );
    }
    for target in [
        GUEST_IP,
        Ipv4Address::new(10, 0, 2, 77),
        Ipv4Address::new(192, 0, 2, 1),
    ] {
        net.send(&arp_request(target));
        assert!(
            drain(&mut net).is_empty(),
            "ARP for {target} must not be answered"
        );
    }
}

#[test]
fn ping_to_gateway_is_answered() {
    let mut net = user_net();
    let data = b"ping-data-0123456789";
    let echo = Icmpv4Repr::EchoRequest {
        ident: 0x77,
        seq_no: 3,
        data,
    };
    let frame = ipv4(
        GATEWAY_MAC,
        GUEST_IP,
        GATEWAY_IP,
        IpProtocol::Icmp,
        echo.buffer_len(),
        |b| {
            echo.emit(
                &mut Icmpv4Packet::new_unchecked(b),
                &ChecksumCapabilities::default(),
            )
        },
    );
    net.send(&arp_request(GATEWAY_IP)); // the gateway learns the guest's MAC
    drain(&mut net);
    net.send(&frame);
    let p = parse(&next_frame(&mut net, "an echo reply"));
    let ip = p.ip.unwrap();
    assert_eq!((ip.src_addr, ip.dst_addr), (GATEWAY_IP, GUEST_IP));
    let icmp = Icmpv4Packet::new_checked(&p.ip_payload[..]).unwrap();
    let repr = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::EchoReply {
            ident: 0x77,
            seq_no: 3,
            data
        }
    );
}

fn dhcp_message(
    message_type: DhcpMessageType,
    broadcast: bool,
    requested_ip: Option<Ipv4Address>,
    server_identifier: Option<Ipv4Address>,
) -> Vec<u8> {
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
        broadcast,
        requested_ip,
        client_identifier: Some(GUEST_MAC),
        server_identifier,
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
        EthernetAddress::BROADCAST,
        (Ipv4Address::UNSPECIFIED, 68),
        (Ipv4Address::BROADCAST, 67),
        &payload,
    )
}

/// Sends a DHCP message and returns the reply's Ethernet destination and parsed DHCP repr
/// (owned fields checked by the caller through the closure).
fn dhcp_exchange(net: &mut UserNet, msg: Vec<u8>, check: impl FnOnce(EthernetAddress, &DhcpRepr)) {
    net.send(&msg);
    let frame = next_frame(net, "a DHCP reply");
    let p = parse(&frame);
    let (src, dst, payload) = parse_udp(&frame);
    assert_eq!(src, (GATEWAY_IP, 67));
    assert_eq!(dst, (Ipv4Address::BROADCAST, 68));
    assert!(payload.len() >= 300, "BOOTP minimum size");
    let packet = DhcpPacket::new_checked(&payload[..]).unwrap();
    let repr = DhcpRepr::parse(&packet).unwrap();
    assert_eq!(repr.transaction_id, 0x3903_f326);
    assert_eq!(repr.client_hardware_address, GUEST_MAC);
    check(p.eth.dst_addr, &repr);
}

fn assert_full_config(repr: &DhcpRepr) {
    assert_eq!(repr.your_ip, GUEST_IP);
    assert_eq!(repr.server_identifier, Some(GATEWAY_IP));
    assert_eq!(repr.router, Some(GATEWAY_IP));
    assert_eq!(repr.subnet_mask, Some(Ipv4Address::new(255, 255, 255, 0)));
    assert_eq!(repr.dns_servers.as_deref(), Some(&[DNS_IP][..]));
    assert_eq!(repr.lease_duration, Some(86400));
}

#[test]
fn dhcp_discover_gets_offer_and_request_gets_ack_with_router_and_dns() {
    let mut net = user_net();
    dhcp_exchange(
        &mut net,
        dhcp_message(DhcpMessageType::Discover, false, None, None),
        |eth_dst, r| {
            assert_eq!(r.message_type, DhcpMessageType::Offer);
            assert_eq!(
                eth_dst, GUEST_MAC,
                "unicast to chaddr without the broadcast flag"
            );
            assert_full_config(r);
        },
    );
    dhcp_exchange(
        &mut net,
        dhcp_message(
            DhcpMessageType::Request,
            true,
            Some(GUEST_IP),
            Some(GATEWAY_IP),
        ),
        |eth_dst, r| {
            assert_eq!(r.message_type, DhcpMessageType::Ack);
            assert_eq!(
                eth_dst,
                EthernetAddress::BROADCAST,
                "the client asked for broadcast"
            );
            assert_full_config(r);
        },
    );
}

#[test]
fn dhcp_request_for_another_address_gets_nak_and_other_servers_requests_are_ignored() {
    let mut net = user_net();
    let other = Ipv4Address::new(10, 0, 2, 99);
    dhcp_exchange(
        &mut net,
        dhcp_message(DhcpMessageType::Request, false, Some(other), None),
        |_, r| {
            assert_eq!(r.message_type, DhcpMessageType::Nak);
            assert_eq!(r.your_ip, Ipv4Address::UNSPECIFIED);
        },
    );
    let another_server = Some(Ipv4Address::new(10, 0, 2, 4));
    net.send(&dhcp_message(
        DhcpMessageType::Request,
        false,
        Some(GUEST_IP),
        another_server,
    ));
    assert!(drain(&mut net).is_empty());
}

#[test]
fn smoltcp_dhcp_client_gets_a_lease() {
    let mut g = Guest::unconfigured(user_net());
    let h = g.sockets.add(dhcpv4::Socket::new());
    let mut config = None;
    g.run_until("a DHCP lease", |g| {
        if let Some(dhcpv4::Event::Configured(c)) = g.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            config = Some((c.address, c.router, c.dns_servers.to_vec()));
        }
        config.is_some()
    });
    let (address, router, dns_servers) = config.unwrap();
    assert_eq!(address, smoltcp::wire::Ipv4Cidr::new(GUEST_IP, 24));
    assert_eq!(router, Some(GATEWAY_IP));
    assert_eq!(dns_servers, [DNS_IP]);
}

/// Appends everything the socket has received so far to `out`.
fn read_available(s: &mut tcp::Socket, out: &mut Vec<u8>) {
    while let Ok(n) = s.recv(|b| {
        out.extend_from_slice(b);
        (b.len(), b.len())
    }) {
        if n == 0 {
            break;
        }
    }
}

/// Connects the guest to `dst:port` and returns the socket handle.
fn guest_connect(
    g: &mut Guest<UserNet>,
    dst: Ipv4Address,
    port: u16,
    buf: usize,
) -> smoltcp::iface::SocketHandle {
    let h = g.sockets.add(tcp_socket(buf));
    let cx = g.iface.context();
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(cx, (dst, port), 40000)
        .unwrap();
    h
}

#[test]
fn tcp_to_gateway_reaches_host_loopback_and_data_flows_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.set_read_timeout(IO_TIMEOUT).unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 512];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "request cut short");
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap(); // server closes first
        let eof = s.read(&mut buf).unwrap(); // then sees the guest's FIN
        (peer, req, eof)
    });

    let mut g = Guest::configured(user_net());
    let h = guest_connect(&mut g, GATEWAY_IP, port, 4096);
    g.run_until("the connection", |g| {
        g.sockets.get::<tcp::Socket>(h).may_send()
    });
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .send_slice(b"GET / HTTP/1.0\r\nHost: 10.0.2.2\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    g.run_until("the response and the server's FIN", |g| {
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        read_available(s, &mut resp);
        !s.may_recv()
    });
    assert_eq!(resp, b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    g.sockets.get_mut::<tcp::Socket>(h).close();
    g.run_until("the guest's socket to close", |g| {
        matches!(
            g.sockets.get::<tcp::Socket>(h).state(),
            tcp::State::Closed | tcp::State::TimeWait
        )
    });
    let (peer, req, eof) = server.join().unwrap();
    assert!(peer.ip().is_loopback());
    assert_eq!(req, b"GET / HTTP/1.0\r\nHost: 10.0.2.2\r\n\r\n");
    assert_eq!(eof, 0, "the guest's FIN reaches the host as end of file");
}

#[test]
fn tcp_half_close_from_guest_is_passed_on_and_the_connection_is_forgotten() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(IO_TIMEOUT).unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap(); // until the guest's FIN
        s.write_all(b"got ").unwrap();
        s.write_all(&req).unwrap();
        req
    }); // dropping the stream sends FIN

    let mut g = Guest::configured(user_net());
    let h = guest_connect(&mut g, GATEWAY_IP, port, 4096);
    g.run_until("the connection", |g| {
        g.sockets.get::<tcp::Socket>(h).may_send()
    });
    let s = g.sockets.get_mut::<tcp::Socket>(h);
    s.send_slice(b"question").unwrap();
    s.close();
    let mut resp = Vec::new();
    g.run_until("the answer and the server's FIN", |g| {
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        read_available(s, &mut resp);
        !s.may_recv() && s.state() == tcp::State::TimeWait
    });
    assert_eq!(resp, b"got question");
    assert_eq!(server.join().unwrap(), b"question");
    g.run_until("the backend to forget the connection", |g| {
        g.net.tcp_connections() == 0
    });
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

#[test]
fn tcp_bulk_transfer_both_ways_keeps_every_byte() {
    const LEN: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(IO_TIMEOUT).unwrap();
        s.set_write_timeout(IO_TIMEOUT).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            let data: Vec<u8> = (0..LEN).map(|i| pattern(i + 5)).collect();
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        (&s).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });

    let mut g = Guest::configured(user_net());
    let h = guest_connect(&mut g, GATEWAY_IP, port, 65536);
    let mut sent = 0;
    let mut received = Vec::new();
    g.run_until("1 MiB each way", |g| {
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        if s.may_send() && sent < LEN {
            while sent < LEN {
                let n = s
                    .send(|b| {
                        let n = b.len().min(LEN - sent);
                        for (k, x) in b[..n].iter_mut().enumerate() {
                            *x = pattern(sent + k);
                        }
                        (n, n)
                    })
                    .unwrap();
                if n == 0 {
                    break;
                }
                sent += n;
            }
            if sent == LEN {
                s.close();
            }
        }
        read_available(s, &mut received);
        sent == LEN && !s.may_recv() && s.send_queue() == 0
    });
    assert_eq!(received.len(), LEN);
    assert!(received
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(i + 5)));
    let got = server.join().unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
}

#[test]
fn tcp_to_a_closed_host_port_is_refused() {
    let port = closed_port();
    let mut g = Guest::configured(user_net());
    let h = guest_connect(&mut g, GATEWAY_IP, port, 4096);
    g.run_until("the reset", |g| {
        g.sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed
    });
    g.run_until("the backend to forget the attempt", |g| {
        g.net.tcp_connections() == 0
    });
}

#[test]
fn tcp_to_the_dns_address_on_another_port_is_refused() {
    let mut g = Guest::configured(user_net());
    let h = guest_connect(&mut g, DNS_IP, 80, 4096);
    g.run_until("the reset", |g| {
        g.sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed
    });
    assert_eq!(g.net.tcp_connections(), 0);
}

/// Runs a UDP echo server on 127.0.0.1 for `count` datagrams; returns its address.
fn udp_echo_server(
    count: usize,
    prefix: &'static [u8],
) -> (SocketAddr, thread::JoinHandle<SocketAddr>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(IO_TIMEOUT).unwrap();
    let addr = sock.local_addr().unwrap();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut peer = None;
        for _ in 0..count {
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            let mut reply = prefix.to_vec();
            reply.extend_from_slice(&buf[..n]);
            sock.send_to(&reply, from).unwrap();
            peer = Some(from);
        }
        peer.unwrap()
    });
    (addr, t)
}

#[test]
fn udp_to_gateway_reaches_host_loopback_and_replies_come_back() {
    let (addr, server) = udp_echo_server(2, b"echo:");
    let mut g = Guest::configured(user_net());
    let h = g.sockets.add(udp_socket());
    g.sockets.get_mut::<udp::Socket>(h).bind(5555).unwrap();
    let mut replies = Vec::new();
    for (i, msg) in [&b"one"[..], b"two"].into_iter().enumerate() {
        g.sockets
            .get_mut::<udp::Socket>(h)
            .send_slice(msg, (GATEWAY_IP, addr.port()))
            .unwrap();
        g.run_until("the echo", |g| {
            if let Ok((data, meta)) = g.sockets.get_mut::<udp::Socket>(h).recv() {
                replies.push((data.to_vec(), meta.endpoint));
            }
            replies.len() > i
        });
    }
    let peer = server.join().unwrap();
    assert!(peer.ip().is_loopback());
    let from = smoltcp::wire::IpEndpoint::new(GATEWAY_IP.into(), addr.port());
    assert_eq!(
        replies,
        vec![(b"echo:one".to_vec(), from), (b"echo:two".to_vec(), from)]
    );
    assert_eq!(g.net.udp_flows(), 1, "both datagrams used one flow");
}

#[test]
fn dns_queries_to_10_0_2_3_go_to_the_upstream_nameserver() {
    let (addr, server) = udp_echo_server(1, b"answer:");
    let mut net = user_net();
    net.set_dns_upstream(Some(addr));
    let mut g = Guest::configured(net);
    let h = g.sockets.add(udp_socket());
    g.sockets.get_mut::<udp::Socket>(h).bind(33333).unwrap();
    g.sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(b"query", (DNS_IP, 53))
        .unwrap();
    let mut reply = None;
    g.run_until("the DNS answer", |g| {
        if let Ok((data, meta)) = g.sockets.get_mut::<udp::Socket>(h).recv() {
            reply = Some((data.to_vec(), meta.endpoint));
        }
        reply.is_some()
    });
    server.join().unwrap();
    let (data, from) = reply.unwrap();
    assert_eq!(data, b"answer:query");
    assert_eq!(from, smoltcp::wire::IpEndpoint::new(DNS_IP.into(), 53));
}

#[test]
fn dns_without_an_upstream_is_port_unreachable() {
    let mut net = user_net();
    net.set_dns_upstream(None);
    net.send(&arp_request(DNS_IP));
    drain(&mut net);
    net.send(&udp(GATEWAY_MAC, (GUEST_IP, 40001), (DNS_IP, 53), b"query"));
    let p = parse(&next_frame(&mut net, "an ICMP error"));
    let ip = p.ip.unwrap();
    assert_eq!((ip.src_addr, ip.dst_addr), (DNS_IP, GUEST_IP));
    let icmp = Icmpv4Packet::new_checked(&p.ip_payload[..]).unwrap();
    match Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap() {
        Icmpv4Repr::DstUnreachable { reason, .. } => {
            assert_eq!(reason, Icmpv4DstUnreachable::PortUnreachable)
        }
        other => panic!("expected port unreachable, got {other:?}"),
    }
}

#[test]
fn frames_not_for_the_gateway_are_ignored() {
    let mut net = user_net();
    let other_mac = EthernetAddress([0x52, 0x54, 0, 0, 0, 9]);
    net.send(&udp(other_mac, (GUEST_IP, 1), (GATEWAY_IP, 7), b"x"));
    net.send(&ethernet(GATEWAY_MAC, EthernetProtocol::Ipv6, 60));
    net.send(&[0u8; 5]); // runt
    net.send(&udp(
        GATEWAY_MAC,
        (GUEST_IP, 1),
        (Ipv4Address::new(10, 0, 2, 255), 7),
        b"x",
    ));
    assert!(drain(&mut net).is_empty());
    assert_eq!(net.udp_flows(), 0);
}

/// Binds a host forward on a free port (retrying if another process takes it first).
fn user_net_with_forward(guest_port: u16) -> (UserNet, u16) {
    for _ in 0..20 {
        let hp = closed_port();
        let cfg = UserNetConfig {
            host_forwards: vec![(hp, guest_port)],
            ..UserNetConfig::default()
        };
        match UserNet::new(cfg) {
            Ok(net) => return (net, hp),
            Err(NetError::HostForward { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free host port");
}

#[test]
fn host_port_forward_reaches_the_guest_listener() {
    let (net, hp) = user_net_with_forward(8080);
    let mut g = Guest::configured(net);
    let h = g.sockets.add(tcp_socket(4096));
    g.sockets.get_mut::<tcp::Socket>(h).listen(8080).unwrap();

    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", hp)).unwrap();
        s.set_read_timeout(IO_TIMEOUT).unwrap();
        s.write_all(b"hello guest").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        resp
    });

    let mut req = Vec::new();
    let mut remote = None;
    g.run_until("the request and the client's FIN", |g| {
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        remote = remote.or(s.remote_endpoint());
        read_available(s, &mut req);
        s.state() == tcp::State::CloseWait
    });
    assert_eq!(req, b"hello guest");
    assert_eq!(remote.unwrap().addr, GATEWAY_IP.into());
    let s = g.sockets.get_mut::<tcp::Socket>(h);
    s.send_slice(b"hello host").unwrap();
    s.close();
    g.run_until("the guest socket to close", |g| {
        g.sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed
    });
    assert_eq!(client.join().unwrap(), b"hello host");
    // The backend's side closed first (the host's FIN), so it holds TIME-WAIT for a while.
}

#[test]
fn host_forward_on_a_busy_port_is_an_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = UserNet::new(UserNetConfig {
        host_forwards: vec![(port, 80)],
        ..UserNetConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, NetError::HostForward { port: p, .. } if p == port));
    assert!(err.to_string().contains(&port.to_string()));
}

#[test]
fn dhcp_then_tcp_with_a_guest_that_starts_unconfigured() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"welcome").unwrap();
    });
    let mut g = Guest::unconfigured(user_net());
    let dhcp = g.sockets.add(dhcpv4::Socket::new());
    g.run_until("a DHCP lease", |g| {
        match g.sockets.get_mut::<dhcpv4::Socket>(dhcp).poll() {
            Some(dhcpv4::Event::Configured(c)) => {
                let (addr, router) = (c.address, c.router);
                g.iface.update_ip_addrs(|a| {
                    a.clear();
                    a.push(IpCidr::Ipv4(addr)).unwrap();
                });
                g.iface
                    .routes_mut()
                    .add_default_ipv4_route(router.unwrap())
                    .unwrap();
                true
            }
            _ => false,
        }
    });
    let h = guest_connect(&mut g, GATEWAY_IP, port, 4096);
    let mut got = Vec::new();
    g.run_until("the greeting and FIN", |g| {
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        read_available(s, &mut got);
        s.state() == tcp::State::CloseWait
    });
    assert_eq!(got, b"welcome");
    server.join().unwrap();
}

/// A listener on 127.0.0.1 whose accept queue is already full, so that further connects stay
/// pending (Linux drops their SYNs) until it accepts.
fn full_listener() -> (TcpListener, TcpStream, u16) {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let listener = TcpListener::from(fd);
    let port = listener.local_addr().unwrap().port();
    let filler = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (listener, filler, port)
}

#[test]
fn tcp_guest_is_answered_only_once_the_host_connect_completes() {
    let (listener, _filler, port) = full_listener();
    let mut g = Guest::configured(user_net());
    let h = guest_connect(&mut g, GATEWAY_IP, port, 4096);
    // While the host connect is pending the guest gets no SYN|ACK (nor anything else for this
    // connection): run until the backend tracks it, then a while longer.
    g.run_until("the backend to start the host connect", |g| {
        g.net.tcp_connections() == 1
    });
    let seen = g.delivered.len();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        g.round();
    }
    assert_eq!(g.sockets.get::<tcp::Socket>(h).state(), tcp::State::SynSent);
    for f in &g.delivered[seen..] {
        let p = parse(f);
        assert_ne!(
            p.ip.map(|ip| ip.next_header),
            Some(IpProtocol::Tcp),
            "no TCP while pending"
        );
    }

    // Free the accept queue: the host's SYN retransmission gets through, and so does the guest.
    let (first, _) = listener.accept().unwrap();
    drop(first);
    g.run_until("the connection", |g| {
        g.sockets.get::<tcp::Socket>(h).may_send()
    });
    let (mut host, _) = listener.accept().unwrap();
    host.set_read_timeout(IO_TIMEOUT).unwrap();
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .send_slice(b"late")
        .unwrap();
    let mut got = Vec::new();
    host.set_nonblocking(true).unwrap();
    g.run_until("the data at the host", |_| {
        let mut buf = [0u8; 16];
        if let Ok(n) = host.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got == b"late"
    });
}

#[test]
fn tcp_guest_can_reuse_its_port_right_after_the_host_closed_first() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        for greeting in [&b"first"[..], b"second"] {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(greeting).unwrap();
        } // each stream is closed by the host first
    });
    let mut g = Guest::configured(user_net());
    for expected in [&b"first"[..], b"second"] {
        let h = guest_connect(&mut g, GATEWAY_IP, port, 4096); // same local port both times
        let mut got = Vec::new();
        g.run_until("the greeting and the host's FIN", |g| {
            let s = g.sockets.get_mut::<tcp::Socket>(h);
            read_available(s, &mut got);
            s.state() == tcp::State::CloseWait
        });
        assert_eq!(got, expected);
        g.sockets.get_mut::<tcp::Socket>(h).close();
        g.run_until("the guest's side to close", |g| {
            g.sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed
        });
        g.sockets.remove(h);
    }
    server.join().unwrap();
}

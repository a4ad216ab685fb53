//! The user-mode backend on a simulated host (what the `usernet_frames` fuzz target uses): the
//! NAT reaches the simulated peers and no host socket, and the frames for the guest are a pure
//! function of the frames from it and of the simulated clock.

// The shared fake guest's deadlines are wall-clock time; no guest state is involved.
#![allow(clippy::disallowed_types)]

mod common;

use common::*;
use rewind_net::{NetBackend, NetError, SimulatedHost, UserNet, UserNetConfig};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{
    IpProtocol, Ipv4Address, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

/// The guest stack's rounds run on host time, so each round also moves the simulated clock
/// by a millisecond, as a real host's would.
fn simulated_guest() -> (Guest<UserNet>, SimulatedHost) {
    let host = SimulatedHost::new();
    let net = UserNet::with_simulated_host(UserNetConfig::default(), host.clone()).unwrap();
    (Guest::configured(net), host)
}

fn tick<'g>(g: &'g mut Guest<UserNet>, host: &SimulatedHost) -> &'g mut Guest<UserNet> {
    host.advance_clock_us(1000);
    g
}

fn connect(g: &mut Guest<UserNet>, port: u16) -> smoltcp::iface::SocketHandle {
    let h = g.sockets.add(tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 8192]),
        tcp::SocketBuffer::new(vec![0; 8192]),
    ));
    let cx = g.iface.context();
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(cx, (GATEWAY_IP, port), 40000)
        .unwrap();
    h
}

#[test]
fn an_echo_port_echoes_and_closes_after_the_guest() {
    let (mut g, host) = simulated_guest();
    let h = connect(&mut g, 8081);
    g.run_until("the connection", |g| {
        tick(g, &host).sockets.get::<tcp::Socket>(h).may_send()
    });
    let s = g.sockets.get_mut::<tcp::Socket>(h);
    s.send_slice(b"echo me").unwrap();
    s.close();
    let mut echoed = Vec::new();
    g.run_until("the echo and the host's FIN", |g| {
        let s = tick(g, &host).sockets.get_mut::<tcp::Socket>(h);
        while let Ok(n) = s.recv(|b| {
            echoed.extend_from_slice(b);
            (b.len(), b.len())
        }) {
            if n == 0 {
                break;
            }
        }
        !s.may_recv()
    });
    assert_eq!(echoed, b"echo me");
    g.run_until("the backend to forget the connection", |g| {
        tick(g, &host).net.tcp_connections() == 0
    });
}

#[test]
fn refused_black_hole_and_greeter_ports_behave_as_documented() {
    let (mut g, host) = simulated_guest();
    let refused = connect(&mut g, 8080);
    g.run_until("the reset", |g| {
        tick(g, &host).sockets.get::<tcp::Socket>(refused).state() == tcp::State::Closed
    });

    let greeter = connect(&mut g, 8083);
    let mut greeting = Vec::new();
    g.run_until("the greeting and the host's FIN", |g| {
        let s = tick(g, &host).sockets.get_mut::<tcp::Socket>(greeter);
        if s.can_recv() {
            s.recv(|b| {
                greeting.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        !s.may_recv() && s.state() != tcp::State::SynSent
    });
    assert_eq!(greeting, b"220 simulated host ready\r\n");

    let black_hole = connect(&mut g, 8082);
    for _ in 0..10 {
        tick(&mut g, &host).round();
    }
    assert_eq!(
        g.sockets.get::<tcp::Socket>(black_hole).state(),
        tcp::State::SynSent,
        "no answer while the host connect is pending"
    );
    host.advance_clock_us(31_000_000); // past the connect timeout
    g.run_until("the reset after the connect timeout", |g| {
        tick(g, &host)
            .sockets
            .get::<tcp::Socket>(black_hole)
            .state()
            == tcp::State::Closed
    });
}

#[test]
fn udp_to_an_echo_port_and_dns_come_back() {
    let (mut g, host) = simulated_guest();
    let h = g.sockets.add(udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]),
    ));
    let s = g.sockets.get_mut::<udp::Socket>(h);
    s.bind(5000).unwrap();
    s.send_slice(b"to 7001", (GATEWAY_IP, 7001)).unwrap();
    s.send_slice(b"a query", (DNS_IP, 53)).unwrap();
    let mut got = Vec::new();
    // The clock stands still: the guest's sending is what makes the backend look at its
    // flows (and the guest stack may wait a wall-clock second for ARP, which would take the
    // ticking clock past the flows' idle timeout).
    g.run_until("both answers", |g| {
        let s = g.sockets.get_mut::<udp::Socket>(h);
        while let Ok((data, meta)) = s.recv() {
            got.push((meta.endpoint.port, data.to_vec()));
        }
        got.len() == 2
    });
    got.sort();
    assert_eq!(
        got,
        [(53, b"a query".to_vec()), (7001, b"to 7001".to_vec())]
    );
    assert_eq!(g.net.udp_flows(), 2);
    host.advance_clock_us(61_000_000); // past the idle timeout
    g.net.poll();
    assert_eq!(g.net.udp_flows(), 0);
}

#[test]
fn a_simulated_host_refuses_port_forwards() {
    let cfg = UserNetConfig {
        host_forwards: vec![(8080, 80)],
        ..UserNetConfig::default()
    };
    let err = UserNet::with_simulated_host(cfg, SimulatedHost::new()).unwrap_err();
    assert!(matches!(err, NetError::HostForward { port: 8080, .. }));
    assert_eq!(
        err.to_string(),
        "cannot listen on 127.0.0.1:8080 for a host port forward: the simulated host has no listening sockets"
    );
}

fn tcp_frame(dst: Ipv4Address, dst_port: u16, control: TcpControl, payload: &[u8]) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: 40000,
        dst_port,
        control,
        seq_number: TcpSeqNumber(1000),
        ack_number: None,
        window_len: 8192,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    ipv4(
        GATEWAY_MAC,
        GUEST_IP,
        dst,
        IpProtocol::Tcp,
        repr.buffer_len(),
        |b| {
            repr.emit(
                &mut TcpPacket::new_unchecked(b),
                &GUEST_IP.into(),
                &dst.into(),
                &ChecksumCapabilities::default(),
            )
        },
    )
}

/// Every frame the backend hands the guest for a fixed script of guest frames and clock moves.
fn run_script() -> Vec<Vec<u8>> {
    let host = SimulatedHost::new();
    let mut net = UserNet::with_simulated_host(UserNetConfig::default(), host.clone()).unwrap();
    let script = [
        arp_request(GATEWAY_IP),
        tcp_frame(GATEWAY_IP, 8081, TcpControl::Syn, &[]),
        tcp_frame(GATEWAY_IP, 8080, TcpControl::Syn, &[]),
        tcp_frame(Ipv4Address::new(192, 0, 2, 1), 80, TcpControl::Syn, &[]),
        udp(GATEWAY_MAC, (GUEST_IP, 5000), (DNS_IP, 53), b"query"),
        udp(
            GATEWAY_MAC,
            (GUEST_IP, 5001),
            (GATEWAY_IP, 7000),
            b"refused",
        ),
        udp(GATEWAY_MAC, (GUEST_IP, 5002), (GATEWAY_IP, 7003), b"twice"),
    ];
    let mut out = Vec::new();
    for frame in &script {
        net.send(frame);
        for step_us in [0, 150, 5000, 1_500_000] {
            host.advance_clock_us(step_us);
            net.poll();
            out.extend(std::iter::from_fn(|| net.recv()));
        }
    }
    out
}

#[test]
fn the_frames_for_the_guest_depend_only_on_its_frames_and_the_clock() {
    let first = run_script();
    assert_eq!(first, run_script());
    // ARP reply, SYN|ACK (and its retransmission), RST, RST, DNS echo, ICMP unreachable,
    // and the echo of "twice" (the oversized answer before it is dropped).
    let udp_payloads: Vec<Vec<u8>> = first
        .iter()
        .filter_map(|f| {
            let p = parse(f);
            let ip = p.ip?;
            (ip.next_header == IpProtocol::Udp).then(|| {
                let u = UdpPacket::new_checked(&p.ip_payload[..]).unwrap();
                UdpRepr::parse(
                    &u,
                    &ip.src_addr.into(),
                    &ip.dst_addr.into(),
                    &ChecksumCapabilities::default(),
                )
                .unwrap();
                u.payload().to_vec()
            })
        })
        .collect();
    assert_eq!(udp_payloads, [b"query".to_vec(), b"twice".to_vec()]);
    let tcp_controls: Vec<(u16, TcpControl, bool)> = first
        .iter()
        .filter_map(|f| {
            let p = parse(f);
            let ip = p.ip?;
            (ip.next_header == IpProtocol::Tcp).then(|| {
                let t = TcpPacket::new_checked(&p.ip_payload[..]).unwrap();
                let r = TcpRepr::parse(
                    &t,
                    &ip.src_addr.into(),
                    &ip.dst_addr.into(),
                    &ChecksumCapabilities::default(),
                )
                .unwrap();
                (r.src_port, r.control, r.ack_number.is_some())
            })
        })
        .collect();
    assert!(
        tcp_controls.contains(&(8081, TcpControl::Syn, true)),
        "{tcp_controls:?}"
    );
    assert!(
        tcp_controls.contains(&(8080, TcpControl::Rst, true)),
        "{tcp_controls:?}"
    );
    assert!(
        tcp_controls.contains(&(80, TcpControl::Rst, true)),
        "{tcp_controls:?}"
    );
}

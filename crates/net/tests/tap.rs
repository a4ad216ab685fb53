//! The TAP backend, tested with a real Linux network stack as the "guest": a TAP interface is
//! moved into a network namespace made for the test, and this process bridges its frames to a
//! [`UserNet`], just as the virtio-net device would bridge a guest's. In the namespace,
//! busybox's `udhcpc` gets a lease from UserNet's DHCP server (when busybox is installed;
//! otherwise the address is set by hand) and `curl` fetches a page from a server on the host's
//! 127.0.0.1 through 10.0.2.2. No frame leaves the machine: the namespace's only link is the
//! TAP interface, whose other end is this process.
//!
//! This needs root (to create the interface and the namespace), `ip` and `curl`; without them
//! the test says so on stderr and passes without checking anything.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]
// Test deadlines are wall-clock time; no guest state is involved.
#![allow(clippy::disallowed_types)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rewind_net::{NetBackend, NetError, Tap, UserNet, UserNetConfig};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespace and the scratch directory, however the test ends.
struct Cleanup {
    netns: String,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Bridges frames between the TAP interface and UserNet until `child` exits; returns its
/// output. Fails the test after 30 seconds.
fn bridge_until_exit(tap: &mut Tap, net: &mut UserNet, mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        let mut moved = false;
        while let Some(f) = tap.recv() {
            net.send(&f);
            moved = true;
        }
        net.poll();
        while let Some(f) = net.recv() {
            tap.send(&f);
            moved = true;
        }
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "timed out waiting for {what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !moved {
            // Nothing to do; let the namespace's processes run (the machine has 2 cores).
            thread::yield_now();
        }
    }
}

fn write_dhcp_script(dir: &Path, result: &Path) -> PathBuf {
    let script = dir.join("udhcpc.script");
    let text = format!(
        "#!/bin/sh\n\
         case \"$1\" in\n\
         bound|renew)\n\
         ip addr add \"$ip/$subnet\" dev \"$interface\"\n\
         ip route add default via \"$router\" dev \"$interface\"\n\
         echo \"ip=$ip subnet=$subnet router=$router dns=$dns serverid=$serverid lease=$lease\" > {}\n\
         ;;\n\
         esac\n",
        result.display()
    );
    std::fs::write(&script, text).unwrap();
    run(&["chmod", "+x", script.to_str().unwrap()]);
    script
}

#[test]
fn tap_bridges_a_linux_network_namespace_to_user_net() {
    if !nix::unistd::Uid::effective().is_root() || !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: creating a TAP interface needs root and /dev/net/tun");
        return;
    }
    if !have("ip") || !have("curl") {
        eprintln!("skipped: needs `ip` (iproute2) and `curl`");
        return;
    }
    let pid = std::process::id();
    let (ifname, netns) = (format!("rwtap{pid}"), format!("rewind-net-test-{pid}"));
    let dir = std::env::temp_dir().join(format!("rewind-net-tap-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup {
        netns: netns.clone(),
        dir: dir.clone(),
    };

    let mut tap = Tap::open(&ifname).expect("open TAP");
    assert_eq!(tap.ifname(), ifname);
    run(&["ip", "netns", "add", &netns]);
    run(&["ip", "link", "set", &ifname, "netns", &netns]);
    let in_ns = |args: &[&str]| {
        let mut v = vec!["ip", "netns", "exec", &netns];
        v.extend_from_slice(args);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run_ns = |args: &[&str]| {
        let v = in_ns(args);
        run(&v.iter().map(String::as_str).collect::<Vec<_>>());
    };
    run_ns(&["ip", "link", "set", "lo", "up"]);
    run_ns(&[
        "ip",
        "link",
        "set",
        &ifname,
        "address",
        "52:54:00:12:34:56",
        "up",
    ]);

    let mut net = UserNet::new(UserNetConfig::default()).unwrap();
    net.set_dns_upstream(None); // nothing in this test may query the host's resolver

    // DHCP: busybox udhcpc, as a guest's init would run it (with an ARP check of the offer).
    if have("busybox") {
        let result = dir.join("lease");
        let script = write_dhcp_script(&dir, &result);
        let args = in_ns(&[
            "busybox",
            "udhcpc",
            "-f",
            "-q",
            "-n",
            "-t",
            "5",
            "-T",
            "1",
            "-a200",
            "-i",
            &ifname,
            "-s",
            script.to_str().unwrap(),
        ]);
        let child = Command::new(&args[0])
            .args(&args[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = bridge_until_exit(&mut tap, &mut net, child, "udhcpc");
        assert!(
            out.status.success(),
            "udhcpc failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lease = std::fs::read_to_string(&result).expect("the lease script ran");
        assert_eq!(
            lease.trim(),
            "ip=10.0.2.15 subnet=255.255.255.0 router=10.0.2.2 dns=10.0.2.3 serverid=10.0.2.2 lease=86400"
        );
    } else {
        eprintln!("busybox is not installed: configuring the namespace by hand instead of udhcpc");
        run_ns(&["ip", "addr", "add", "10.0.2.15/24", "dev", &ifname]);
        run_ns(&["ip", "route", "add", "default", "via", "10.0.2.2"]);
    }

    // TCP through the gateway to the host's loopback, with Linux's TCP as the guest's.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let server_body = body.clone();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            req.extend_from_slice(&buf[..n]);
        }
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{server_body}",
            server_body.len()
        )
        .unwrap();
        String::from_utf8(req).unwrap()
    });
    let url = format!("http://10.0.2.2:{port}/hello");
    let args = in_ns(&["curl", "-sS", "--max-time", "20", &url]);
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = bridge_until_exit(&mut tap, &mut net, child, "curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), body);
    let req = server.join().unwrap();
    assert!(req.starts_with("GET /hello HTTP/1.1\r\n"), "{req}");
    assert_eq!(tap.dropped_frames(), 0);
}

#[test]
fn tap_open_rejects_bad_names() {
    for bad in ["", "has/slash", "much-too-long-name"] {
        assert!(
            matches!(Tap::open(bad), Err(NetError::BadTapName(_))),
            "{bad:?}"
        );
    }
}

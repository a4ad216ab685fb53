//! Parsing the command line's network option.
//!
//! Accepted forms:
//! - `user` — user-mode NAT with defaults.
//! - `user,hostfwd=HP-GP` — also forward host 127.0.0.1:HP to guest 10.0.2.15:GP (TCP). QEMU's
//!   spelling `hostfwd=tcp:[127.0.0.1]:HP-[10.0.2.15]:GP` is accepted too. Repeatable.
//! - `user,mac=52:54:00:12:34:56` — the guest's MAC address (as the device is configured).
//! - `tap=NAME` or `tap,ifname=NAME` — the TAP interface NAME.

use crate::tap::check_ifname;
use crate::user::UserNetConfig;
use crate::NetError;

/// Which backend to build, as chosen on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetSpec {
    /// User-mode networking with NAT.
    User(UserNetConfig),
    /// A TAP interface with this name.
    Tap(String),
}

impl NetSpec {
    /// Parses `user`, `user,hostfwd=8080-80`, `user,mac=…`, `tap=tap0` or `tap,ifname=tap0`.
    pub fn parse(arg: &str) -> Result<NetSpec, NetError> {
        let bad = |reason: String| NetError::BadSpec {
            spec: arg.to_string(),
            reason,
        };
        let mut parts = arg.split(',');
        let head = parts.next().unwrap_or("");
        if let Some(name) = head.strip_prefix("tap=") {
            if let Some(extra) = parts.next() {
                return Err(bad(format!("`tap` takes no option {extra:?}")));
            }
            check_ifname(name)?;
            return Ok(NetSpec::Tap(name.to_string()));
        }
        match head {
            "tap" => {
                let mut name = None;
                for part in parts {
                    match part.strip_prefix("ifname=") {
                        Some(n) if name.is_none() => name = Some(n),
                        Some(_) => return Err(bad("`ifname` is given twice".into())),
                        None => return Err(bad(format!("`tap` has no option {part:?}"))),
                    }
                }
                let name =
                    name.ok_or_else(|| bad("`tap` needs an interface name: tap=NAME".into()))?;
                check_ifname(name)?;
                Ok(NetSpec::Tap(name.to_string()))
            }
            "user" => {
                let mut cfg = UserNetConfig::default();
                for part in parts {
                    if let Some(fwd) = part.strip_prefix("hostfwd=") {
                        let (hp, gp) = parse_hostfwd(fwd).map_err(|r| bad(r.to_string()))?;
                        if cfg.host_forwards.iter().any(|&(h, _)| h == hp) {
                            return Err(bad(format!("host port {hp} is forwarded twice")));
                        }
                        cfg.host_forwards.push((hp, gp));
                    } else if let Some(mac) = part.strip_prefix("mac=") {
                        cfg.guest_mac = parse_mac(mac).ok_or_else(|| {
                            bad(format!(
                                "{mac:?} is not a unicast MAC address like 52:54:00:12:34:56"
                            ))
                        })?;
                    } else {
                        return Err(bad(format!(
                            "`user` has no option {part:?} (options: hostfwd=HOSTPORT-GUESTPORT, mac=MAC)"
                        )));
                    }
                }
                Ok(NetSpec::User(cfg))
            }
            _ => Err(bad(
                "expected `user`, `user,hostfwd=HOSTPORT-GUESTPORT` or `tap=NAME`".into(),
            )),
        }
    }
}

/// Parses `HP-GP` or QEMU's `tcp:[127.0.0.1]:HP-[10.0.2.15]:GP`.
fn parse_hostfwd(s: &str) -> Result<(u16, u16), &'static str> {
    const SYNTAX: &str =
        "hostfwd must be HOSTPORT-GUESTPORT or tcp:[127.0.0.1]:HOSTPORT-[10.0.2.15]:GUESTPORT";
    let (host, guest) = s.split_once('-').ok_or(SYNTAX)?;
    let host_port = if let Some(rest) = host.strip_prefix("tcp:") {
        let (addr, port) = rest.split_once(':').ok_or(SYNTAX)?;
        if !matches!(addr, "" | "127.0.0.1" | "localhost") {
            return Err("hostfwd listens on 127.0.0.1 only");
        }
        port
    } else if host.starts_with("udp:") {
        return Err("hostfwd forwards TCP only");
    } else {
        host
    };
    let guest_port = match guest.split_once(':') {
        Some(("" | "10.0.2.15", port)) => port,
        Some(_) => return Err("hostfwd forwards to the guest at 10.0.2.15 only"),
        None => guest,
    };
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err("hostfwd ports must be numbers from 1 to 65535"),
        Ok(n) => Ok(n),
    };
    Ok((port(host_port)?, port(guest_port)?))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    // Multicast (group bit set) or all-zero addresses cannot be a NIC's address.
    (parts.next().is_none() && mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_alone_is_the_default_config() {
        assert_eq!(
            NetSpec::parse("user").unwrap(),
            NetSpec::User(UserNetConfig::default())
        );
    }

    #[test]
    fn hostfwd_short_and_qemu_forms() {
        let NetSpec::User(cfg) = NetSpec::parse(
            "user,hostfwd=8080-80,hostfwd=tcp::2222-:22,hostfwd=tcp:127.0.0.1:9000-10.0.2.15:9",
        )
        .unwrap() else {
            panic!("not user");
        };
        assert_eq!(cfg.host_forwards, vec![(8080, 80), (2222, 22), (9000, 9)]);
    }

    #[test]
    fn mac_option_sets_guest_mac() {
        let NetSpec::User(cfg) = NetSpec::parse("user,mac=52:54:00:ab:cd:ef").unwrap() else {
            panic!("not user");
        };
        assert_eq!(cfg.guest_mac, [0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
    }

    #[test]
    fn tap_forms() {
        assert_eq!(
            NetSpec::parse("tap=tap0").unwrap(),
            NetSpec::Tap("tap0".into())
        );
        assert_eq!(
            NetSpec::parse("tap,ifname=tap1").unwrap(),
            NetSpec::Tap("tap1".into())
        );
    }

    #[test]
    fn bad_specs_are_rejected_with_a_reason() {
        for bad in [
            "",
            "usr",
            "user,hostfwd=80",
            "user,hostfwd=0-80",
            "user,hostfwd=70000-80",
            "user,hostfwd=udp::53-:53",
            "user,hostfwd=tcp:0.0.0.0:80-:80",
            "user,hostfwd=8080-80,hostfwd=8080-81",
            "user,mac=01:00:00:00:00:01",
            "user,mac=52:54:00:12:34",
            "user,restrict=on",
            "tap",
            "tap=",
            "tap=a/b",
            "tap=averyveryverylongname",
            "tap=tap0,vhost=on",
        ] {
            let err = NetSpec::parse(bad).expect_err(bad);
            assert!(!err.to_string().is_empty());
        }
    }
}

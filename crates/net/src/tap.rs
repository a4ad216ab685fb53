//! The TAP backend: the guest's frames go to a Linux TAP interface and back, unchanged.
//!
//! `/dev/net/tun` is opened non-blocking and attached to the interface with `TUNSETIFF`
//! (`IFF_TAP | IFF_NO_PI`: plain Ethernet frames, no packet-information prefix, no virtio-net
//! header). Attaching creates the interface if it does not exist, which needs `CAP_NET_ADMIN`;
//! an unprivileged user can attach to a persistent interface made for them beforehand
//! (`ip tuntap add dev tap0 mode tap user $USER`). Configuring the host side (addresses,
//! bridging, bringing the link up) is left to the administrator.
//!
//! A frame the kernel cannot take at once (its queue is full) is dropped, as a NIC would.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::{NetBackend, NetError};

nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, libc::ifreq);

/// Largest frame read from the interface: a 64 KiB IP packet with its Ethernet header.
const MAX_FRAME: usize = 65536 + 14;

/// A TAP interface carrying the guest's Ethernet frames.
#[derive(Debug)]
pub struct Tap {
    file: File,
    ifname: String,
    buf: Vec<u8>,
    dropped: u64,
}

/// Checks that `name` is a name Linux accepts for a network interface.
pub(crate) fn check_ifname(name: &str) -> Result<(), NetError> {
    let ok = (1..libc::IFNAMSIZ).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(NetError::BadTapName(name.to_string()))
    }
}

impl Tap {
    /// Opens `/dev/net/tun` and attaches to (or creates) the TAP interface `ifname`.
    pub fn open(ifname: &str) -> Result<Tap, NetError> {
        check_ifname(ifname)?;
        let err = |source| NetError::Tap {
            ifname: ifname.to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(err)?;

        // SAFETY: `ifreq` is a C struct of integer arrays and a union of integers, pointers
        // and plain structs; all-zero bytes are a valid value of every field.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        // check_ifname guarantees at most IFNAMSIZ - 1 bytes, so the name stays NUL-terminated.
        for (dst, &src) in ifr.ifr_name.iter_mut().zip(ifname.as_bytes()) {
            *dst = src as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: `file` is an open descriptor of /dev/net/tun; TUNSETIFF reads one `ifreq`
        // through the pointer, which points to a live, fully initialised `ifreq` that outlives
        // the call; the kernel does not keep the pointer.
        unsafe { tun_set_iff(file.as_raw_fd(), &ifr) }.map_err(|e| err(e.into()))?;

        Ok(Tap {
            file,
            ifname: ifname.to_string(),
            buf: vec![0; MAX_FRAME],
            dropped: 0,
        })
    }

    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// How many guest frames the kernel refused (full queue, interface down).
    pub fn dropped_frames(&self) -> u64 {
        self.dropped
    }
}

impl NetBackend for Tap {
    fn send(&mut self, frame: &[u8]) {
        // One write is one frame; a short write cannot happen on a TAP descriptor.
        if (&self.file).write(frame).is_err() {
            self.dropped += 1;
        }
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            match (&self.file).read(&mut self.buf) {
                Ok(0) => return None,
                Ok(n) => return Some(self.buf[..n].to_vec()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: nothing queued. Other errors (the interface went away) look the
                // same to the guest: no frame.
                Err(_) => return None,
            }
        }
    }

    fn poll(&mut self) {
        // Frames are read in recv(); the kernel queues them meanwhile.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_like_linux() {
        for good in ["tap0", "t", "rewind-tap.15_x", "abcdefghijklmno"] {
            assert!(check_ifname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a:1",
            "a\0",
            "abcdefghijklmnop",
        ] {
            assert!(
                matches!(check_ifname(bad), Err(NetError::BadTapName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn open_rejects_a_bad_name_before_touching_the_host() {
        assert!(matches!(
            Tap::open("no/slash"),
            Err(NetError::BadTapName(_))
        ));
    }
}

//! Host-side network backends for Rewind's virtio-net device.
//!
//! Two backends implement [`NetBackend`]:
//! - [`UserNet`]: user-mode networking with NAT in the spirit of QEMU's `-netdev user` (slirp).
//!   It needs no privileges. The guest lives on 10.0.2.0/24 as 10.0.2.15; 10.0.2.2 is the
//!   gateway and the host (connections to 10.0.2.2:PORT reach the host's 127.0.0.1:PORT),
//!   10.0.2.3 the DNS forwarder. It is built on the `smoltcp` TCP/IP stack.
//! - [`Tap`]: a Linux TAP interface (`/dev/net/tun`), for real networking. It needs
//!   `CAP_NET_ADMIN` or a persistent TAP device owned by the user.
//!
//! # The determinism contract
//! Everything here is on the host side of the machine boundary. A backend never touches guest
//! state: the device hands it the frames the guest transmits ([`NetBackend::send`]) and takes
//! the frames for the guest from it ([`NetBackend::recv`]) only at round boundaries, where each
//! delivered frame is an external input that the recorder logs. What a backend produces, and
//! when, depends on host sockets and a host monotonic clock (TCP retransmission, DHCP and NAT
//! timers), so frame content and timing are nondeterministic by nature; that is why they are
//! logged, and why replay never consults a backend. Within a backend, nothing that picks the
//! next frame depends on hash-map iteration order: connections and flows are kept in
//! `BTreeMap`s and frames in `VecDeque`s.
//!
//! Every call is non-blocking. No threads are started.

mod clock;
mod spec;
mod tap;
mod user;

pub use spec::NetSpec;
pub use tap::Tap;
pub use user::{SimulatedHost, UserNet, UserNetConfig};

/// A host-side network backend for the guest's virtio-net device.
pub trait NetBackend: Send {
    /// A frame the guest transmitted (Ethernet, no virtio header).
    fn send(&mut self, frame: &[u8]);
    /// The next frame for the guest, if one is ready; never blocks.
    fn recv(&mut self) -> Option<Vec<u8>>;
    /// Does host-side work (accept/connect/read host sockets, timers); never blocks. Called at
    /// round boundaries.
    fn poll(&mut self);
}

/// Why a network backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A `--net` argument that does not parse.
    #[error("network option {spec:?} is invalid: {reason}")]
    BadSpec {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A host port forward whose host port cannot be listened on.
    #[error("cannot listen on 127.0.0.1:{port} for a host port forward: {source}")]
    HostForward {
        /// The host port.
        port: u16,
        /// The error from the host.
        source: std::io::Error,
    },
    /// A TAP interface name that Linux would not accept.
    #[error("TAP interface name {0:?} is invalid: it must be 1 to 15 bytes without '/', ':', whitespace or NUL")]
    BadTapName(String),
    /// `/dev/net/tun` could not be opened or the TAP interface attached.
    #[error("cannot open TAP interface {ifname} through /dev/net/tun: {source} (this needs CAP_NET_ADMIN, or a persistent TAP device owned by this user)")]
    Tap {
        /// The interface name.
        ifname: String,
        /// The error from the host.
        source: std::io::Error,
    },
}

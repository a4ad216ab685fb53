//! The in-memory "wire" between the guest and smoltcp.
//!
//! Frames from the guest that the stack should see are queued in `to_stack`; every frame the
//! stack transmits, and every frame the backend builds itself (DHCP, UDP NAT), is queued in
//! `to_guest`, in the order produced, for [`NetBackend::recv`](crate::NetBackend::recv).

use std::collections::VecDeque;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Most frames held for the guest. Past this the stack is told the device is busy (TCP keeps
/// its data and retransmits later) and the backend's own UDP frames are dropped, as a full NIC
/// ring would drop them.
pub(crate) const MAX_QUEUED_FOR_GUEST: usize = 1024;

/// The largest Ethernet frame either way, without FCS: a 1500-byte IP MTU.
pub(crate) const MAX_FRAME: usize = 1514;

#[derive(Debug, Default)]
pub(crate) struct FrameQueue {
    pub(crate) to_stack: VecDeque<Vec<u8>>,
    pub(crate) to_guest: VecDeque<Vec<u8>>,
}

impl FrameQueue {
    /// Queues a frame the backend built for the guest, unless the queue is full.
    pub(crate) fn push_to_guest(&mut self, frame: Vec<u8>) -> bool {
        if self.to_guest.len() < MAX_QUEUED_FOR_GUEST {
            self.to_guest.push_back(frame);
            true
        } else {
            false
        }
    }
}

impl Device for FrameQueue {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.to_stack.pop_front()?;
        // A reply to this frame (ARP, RST, ICMP) may exceed the cap by one: it is bounded by
        // the guest's own sending.
        Some((RxToken(frame), TxToken(&mut self.to_guest)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        (self.to_guest.len() < MAX_QUEUED_FOR_GUEST).then_some(TxToken(&mut self.to_guest))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // The default: checksums are verified on receive and computed on transmit, since the
        // guest's virtio-net is offered no checksum offload.
        caps
    }
}

pub(crate) struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub(crate) struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

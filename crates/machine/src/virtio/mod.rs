//! Paravirtual I/O: virtio 1.x devices on the virtio-mmio transport
//! (version 2), as on QEMU `virt`: eight slots at 0x1000_1000 + n × 0x1000,
//! slot n on PLIC source 1 + n.
//!
//! One module per part: [`queue`] (split virtqueues), [`mmio`] (the
//! transport's registers), and one per device: [`blk`], [`net`],
//! [`console`], [`rng`]. Each keeps its guest-visible state in a serde
//! struct that the machine's state hash covers.
//!
//! # Why not rust-vmm's virtio-queue
//!
//! The issue asked for rust-vmm's `virtio-queue` unless it does not fit. It
//! does not, for one reason: it reaches guest memory only through
//! `vm-memory`'s `GuestMemory`, and (as of vm-memory 0.18 / virtio-queue
//! 0.18) every access there, the used-ring updates included, goes through
//! `VolatileSlice`s — raw host pointers into guest memory obtained through
//! `&self`. Rewind's RAM ([`rewind_hart::Ram`]) must see every device write:
//! a write to a page a hart decoded code from must invalidate that code, and
//! every written page must be marked dirty for snapshots. The only hooks
//! vm-memory offers for that are its `Bitmap` (which sees writes but cannot
//! invalidate anything until processing ends), and making `VolatileSlice`s
//! over `Ram` needs `unsafe { VolatileSlice::with_bitmap(ptr, ..) }` on a raw
//! pointer aliasing `Ram`'s private byte vector while the machine also holds
//! it mutably — exactly the unsafe aliasing we must not introduce (the safe
//! `From<&mut [u8]>` needs a `&mut` that `&self` methods cannot produce). So
//! the queue handling here is our own, small and bounded: it reads through
//! `Ram::read_bytes` and writes through `Ram::write_bytes`, and validates
//! everything it reads (see [`queue`]'s assumptions). Its parser is fuzzed
//! (fuzz/fuzz_targets/virtqueue.rs).
//!
//! # Hostile guests
//!
//! A guest that breaks the rules (bad queue size, misaligned or
//! out-of-RAM rings, descriptor loops, chains longer than the queue, buffers
//! outside RAM, malformed requests) gets DEVICE_NEEDS_RESET (status bit
//! 0x40) and a configuration-change interrupt; the device then ignores the
//! queue until the driver resets it, and the host records a one-line warning
//! naming the device and the problem ([`Virtio::take_warnings`]). Requests
//! the spec lets fail (e.g. a read beyond the disk) get an error status
//! instead. Nothing the guest does can panic the host or reach memory
//! outside guest RAM.

pub mod blk;
pub mod console;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod rng;

use crate::state::{mismatch, Saved, StateError};
use queue::{Chain, Queue, QueueError};
use rewind_hart::Ram;

pub use mmio::{VirtioMmio, BASE, SLOTS, SLOT_SIZE};

/// Device-independent feature bits.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
pub const F_VERSION_1: u64 = 1 << 32;

/// Device status bits.
pub const STATUS_ACKNOWLEDGE: u32 = 1;
pub const STATUS_DRIVER: u32 = 2;
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_NEEDS_RESET: u32 = 0x40;
pub const STATUS_FAILED: u32 = 0x80;

/// Interrupt status bits.
pub const INT_USED_BUFFER: u32 = 1;
pub const INT_CONFIG_CHANGE: u32 = 2;

/// At most this many warnings are issued in a machine's life; a guest that
/// breaks its devices in a loop cannot flood the host's terminal.
const MAX_WARNINGS: u64 = 64;

/// Why a device stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Request(String),
}

/// What a device's queue handlers work with during one notification or
/// input delivery.
pub struct QueueCtx<'a> {
    pub ram: &'a mut Ram,
    pub queues: &'a mut [Queue],
    /// VIRTIO_F_INDIRECT_DESC was negotiated.
    pub indirect: bool,
    /// The features the driver accepted.
    pub features: u64,
    /// Set when a used buffer must interrupt the driver.
    pub interrupt: bool,
}

impl QueueCtx<'_> {
    /// The driver accepted feature `feature` (a bit mask).
    pub fn negotiated(&self, feature: u64) -> bool {
        self.features & feature != 0
    }

    /// The next available chain of queue `q`; `None` if there is none or
    /// the queue does not exist or is not ready.
    pub fn pop(&mut self, q: usize) -> Result<Option<Chain>, QueueError> {
        match self.queues.get_mut(q) {
            Some(queue) if queue.ready => queue.pop(self.ram, self.indirect),
            _ => Ok(None),
        }
    }

    /// Gives back the chain just popped from queue `q`.
    pub fn unpop(&mut self, q: usize) {
        if let Some(queue) = self.queues.get_mut(q) {
            queue.unpop();
        }
    }

    /// Returns chain `head` of queue `q` to the driver with `len` bytes
    /// written, and notes whether that should interrupt.
    pub fn complete(&mut self, q: usize, head: u16, len: u32) -> Result<(), QueueError> {
        let Some(queue) = self.queues.get_mut(q) else {
            return Ok(());
        };
        queue.push_used(self.ram, head, len)?;
        if !queue.interrupt_suppressed(self.ram) {
            self.interrupt = true;
        }
        Ok(())
    }
}

/// A device behind a virtio-mmio transport.
pub enum Device {
    Blk(blk::Blk),
    Net(net::Net),
    Console(console::Console),
    Rng(rng::Rng),
}

/// The guest-visible state of a device, for hashing and snapshots.
#[derive(serde::Serialize)]
pub enum DeviceState<'a> {
    Blk(&'a blk::BlkState),
    Net(&'a net::Net),
    Console(&'a console::Console),
    Rng(&'a rng::Rng),
}

impl Device {
    pub fn id(&self) -> u32 {
        match self {
            Device::Blk(_) => blk::ID,
            Device::Net(_) => net::ID,
            Device::Console(_) => console::ID,
            Device::Rng(_) => rng::ID,
        }
    }

    /// A name for messages, e.g. `virtio-blk 0`.
    pub fn name(&self) -> String {
        match self {
            Device::Blk(b) => format!("virtio-blk {}", b.state.index),
            Device::Net(n) => format!("virtio-net {}", n.index),
            Device::Console(_) => "virtio-console (hvc0)".to_string(),
            Device::Rng(_) => "virtio-rng".to_string(),
        }
    }

    /// Every feature the device offers.
    pub fn features(&self) -> u64 {
        let specific = match self {
            Device::Blk(b) => b.features(),
            Device::Net(n) => n.features(),
            Device::Console(_) => console::F_MULTIPORT,
            Device::Rng(_) => 0,
        };
        F_VERSION_1 | F_INDIRECT_DESC | specific
    }

    /// QueueNumMax of each queue.
    pub fn queue_sizes(&self) -> Vec<u16> {
        match self {
            Device::Blk(_) => vec![blk::QUEUE_SIZE],
            Device::Net(_) => vec![net::QUEUE_SIZE; 2],
            Device::Console(_) => vec![
                console::QUEUE_SIZE,
                console::QUEUE_SIZE,
                console::CONTROL_QUEUE_SIZE,
                console::CONTROL_QUEUE_SIZE,
            ],
            Device::Rng(_) => vec![rng::QUEUE_SIZE],
        }
    }

    /// The device-specific configuration space.
    pub fn config(&self) -> Vec<u8> {
        match self {
            Device::Blk(b) => b.config(),
            Device::Net(n) => n.config(),
            Device::Console(c) => c.config(),
            Device::Rng(_) => Vec::new(),
        }
    }

    /// A device reset (by the driver, or of the machine): the device
    /// forgets what the driver set up, but keeps its backend and what waits
    /// for the host.
    pub fn reset(&mut self) {
        if let Device::Console(c) = self {
            c.reset();
        }
    }

    /// The driver notified queue `queue`.
    pub fn notify(&mut self, queue: usize, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        match self {
            Device::Blk(b) => b.notify(ctx),
            Device::Net(n) => n.notify(queue, ctx),
            Device::Console(c) => c.notify(queue, ctx),
            Device::Rng(r) => r.notify(ctx),
        }
    }

    pub fn state(&self) -> DeviceState<'_> {
        match self {
            Device::Blk(b) => DeviceState::Blk(&b.state),
            Device::Net(n) => DeviceState::Net(n),
            Device::Console(c) => DeviceState::Console(c),
            Device::Rng(r) => DeviceState::Rng(r),
        }
    }

    /// The kind of device, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Device::Blk(_) => "block",
            Device::Net(_) => "network",
            Device::Console(_) => "console",
            Device::Rng(_) => "entropy",
        }
    }
}

/// A device's state in a snapshot, without its host backend (the second
/// half of its slot's component, see [`VirtioMmio`]'s [`Saved`]). bincode
/// stores the variant as its index, so the order of the variants is part of
/// the snapshot format: add new kinds at the end.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum SavedDevice {
    Blk(<blk::Blk as Saved>::State),
    Net(<net::Net as Saved>::State),
    Console(<console::Console as Saved>::State),
    Rng(<rng::Rng as Saved>::State),
}

impl SavedDevice {
    fn kind(&self) -> &'static str {
        match self {
            SavedDevice::Blk(_) => "block",
            SavedDevice::Net(_) => "network",
            SavedDevice::Console(_) => "console",
            SavedDevice::Rng(_) => "entropy",
        }
    }
}

/// Dispatches to the device's own [`Saved`], after checking that the
/// snapshot has the same kind of device in this slot.
impl Saved for Device {
    type State = SavedDevice;

    fn saved(&self) -> SavedDevice {
        match self {
            Device::Blk(d) => SavedDevice::Blk(d.saved()),
            Device::Net(d) => SavedDevice::Net(d.saved()),
            Device::Console(d) => SavedDevice::Console(d.saved()),
            Device::Rng(d) => SavedDevice::Rng(d.saved()),
        }
    }

    fn check(&self, part: &str, state: &SavedDevice) -> Result<(), StateError> {
        match (self, state) {
            (Device::Blk(d), SavedDevice::Blk(s)) => d.check(part, s),
            (Device::Net(d), SavedDevice::Net(s)) => d.check(part, s),
            (Device::Console(d), SavedDevice::Console(s)) => d.check(part, s),
            (Device::Rng(d), SavedDevice::Rng(s)) => d.check(part, s),
            _ => Err(mismatch(
                part,
                format!(
                    "it is a {} device where this machine has a {} device",
                    state.kind(),
                    self.kind()
                ),
            )),
        }
    }

    fn apply(&mut self, state: SavedDevice) {
        match (self, state) {
            (Device::Blk(d), SavedDevice::Blk(s)) => d.apply(s),
            (Device::Net(d), SavedDevice::Net(s)) => d.apply(s),
            (Device::Console(d), SavedDevice::Console(s)) => d.apply(s),
            (Device::Rng(d), SavedDevice::Rng(s)) => d.apply(s),
            _ => unreachable!("check refuses a state of another kind"),
        }
    }
}

/// The virtio-mmio slots of the board and the warnings their devices raised.
#[derive(Default)]
pub struct Virtio {
    /// Populated transports; transport i sits in slot i.
    pub slots: Vec<VirtioMmio>,
    /// One-line problems for the user (host-side only: not guest state).
    warnings: Vec<String>,
    issued: u64,
}

impl Virtio {
    /// Transports for `devices`, in slots 0, 1, ... in that order.
    pub fn new(devices: Vec<Device>) -> Self {
        Virtio {
            slots: devices
                .into_iter()
                .enumerate()
                .map(|(slot, d)| VirtioMmio::new(slot, d))
                .collect(),
            warnings: Vec::new(),
            issued: 0,
        }
    }

    /// Base address and PLIC source of each populated slot, for the device tree.
    pub fn fdt_entries(&self) -> Vec<(u64, u32)> {
        self.slots.iter().map(|t| (t.base(), t.irq())).collect()
    }

    /// Size of the whole window of slots.
    pub const WINDOW: u64 = SLOT_SIZE * SLOTS as u64;

    /// A guest read at `offset` into the window.
    pub fn read(&mut self, offset: u64, size: u8) -> Option<u64> {
        let slot = (offset / SLOT_SIZE) as usize;
        let off = offset % SLOT_SIZE;
        match self.slots.get_mut(slot) {
            Some(t) => t.read(off, size),
            None => mmio::read_empty(off, size),
        }
    }

    /// A guest write at `offset` into the window; `false` is an access fault.
    pub fn write(&mut self, ram: &mut Ram, offset: u64, size: u8, value: u64) -> bool {
        let slot = (offset / SLOT_SIZE) as usize;
        let off = offset % SLOT_SIZE;
        let Some(t) = self.slots.get_mut(slot) else {
            return mmio::write_empty(off, size);
        };
        let ok = t.write(ram, off, size, value);
        self.collect_warnings(slot);
        ok
    }

    /// Moves the warnings a transport raised into the shared list.
    pub(crate) fn collect_warnings(&mut self, slot: usize) {
        let Some(t) = self.slots.get_mut(slot) else {
            return;
        };
        for w in t.take_warnings() {
            self.issued += 1;
            if self.issued < MAX_WARNINGS {
                self.warnings.push(w);
            } else if self.issued == MAX_WARNINGS {
                self.warnings
                    .push("further virtio warnings are suppressed".to_string());
            }
        }
    }

    /// Takes the warnings raised since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Resets every transport (a machine reset); devices keep their
    /// backends and host-facing queues.
    pub fn reset(&mut self) {
        for t in &mut self.slots {
            t.reset();
        }
    }
}

/// Which virtio devices a machine has besides its disks (whose backends are
/// passed separately, see [`crate::Machine::with_disks`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtioConfig {
    /// The MAC address of each virtio-net device.
    pub net_macs: Vec<[u8; 6]>,
    /// A virtio-console (hvc0).
    pub hvc: bool,
    /// A virtio-rng device, and where its bytes come from.
    pub rng: Option<rng::Entropy>,
}

impl Virtio {
    /// The devices of a machine, in slot order: the disks (so the first is
    /// vda), the network devices, the console, the entropy source.
    /// Err(n): `n` devices are more than the board's slots.
    pub fn build(
        config: &VirtioConfig,
        disks: Vec<Box<dyn blk::BlockBackend>>,
        seed: u64,
    ) -> Result<Virtio, usize> {
        let mut devices: Vec<Device> = Vec::new();
        for (i, d) in disks.into_iter().enumerate() {
            devices.push(Device::Blk(blk::Blk::new(i, d)));
        }
        for (i, &mac) in config.net_macs.iter().enumerate() {
            devices.push(Device::Net(net::Net::new(i, mac)));
        }
        if config.hvc {
            devices.push(Device::Console(console::Console::default()));
        }
        if let Some(entropy) = config.rng {
            devices.push(Device::Rng(rng::Rng::new(entropy, seed)));
        }
        if devices.len() > SLOTS {
            return Err(devices.len());
        }
        Ok(Virtio::new(devices))
    }

    /// The slot holding the device `pick` selects.
    fn find(&mut self, pick: impl Fn(&Device) -> bool) -> Option<usize> {
        self.slots.iter().position(|t| pick(&t.device))
    }

    /// Offers a received frame to network device `index`; true when the
    /// device took it (delivered or dropped), false when it has no receive
    /// buffer now and the frame should be offered again later.
    pub fn push_net_frame(&mut self, ram: &mut Ram, index: usize, frame: &[u8]) -> bool {
        let Some(slot) = self.find(|d| matches!(d, Device::Net(n) if n.index == index)) else {
            return true;
        };
        let t = &mut self.slots[slot];
        if !t.live() {
            // No driver: the frame is lost, as on a real card.
            if let Device::Net(n) = &mut t.device {
                n.rx_dropped += 1;
            }
            return true;
        }
        let delivery = t.with_queues(ram, |d, ctx| match d {
            Device::Net(n) => n.receive(ctx, frame),
            _ => Ok(net::Delivery::Dropped),
        });
        self.collect_warnings(slot);
        delivery != Some(net::Delivery::NoBuffer)
    }

    /// Frames network device `index` transmitted since the last call.
    pub fn take_net_frames(&mut self, index: usize) -> Vec<Vec<u8>> {
        let Some(slot) = self.find(|d| matches!(d, Device::Net(n) if n.index == index)) else {
            return Vec::new();
        };
        match &mut self.slots[slot].device {
            Device::Net(n) => n.tx.drain(..).collect(),
            _ => Vec::new(),
        }
    }

    /// Offers console input to hvc0; returns how many bytes it took.
    pub fn push_hvc_input(&mut self, ram: &mut Ram, bytes: &[u8]) -> usize {
        let Some(slot) = self.find(|d| matches!(d, Device::Console(_))) else {
            return 0;
        };
        let taken = self.slots[slot].with_queues(ram, |d, ctx| match d {
            Device::Console(c) => c.receive(ctx, bytes),
            _ => Ok(0),
        });
        self.collect_warnings(slot);
        taken.unwrap_or(0)
    }

    /// Bytes the guest wrote to hvc0 since the last call.
    pub fn take_hvc_output(&mut self) -> Vec<u8> {
        for t in &mut self.slots {
            if let Device::Console(c) = &mut t.device {
                return std::mem::take(&mut c.output);
            }
        }
        Vec::new()
    }

    /// With host entropy: how many bytes the guest's waiting requests want.
    pub fn entropy_wanted(&mut self, ram: &mut Ram) -> usize {
        let Some(slot) = self.find(|d| matches!(d, Device::Rng(_))) else {
            return 0;
        };
        self.slots[slot]
            .with_queues(ram, |d, ctx| match d {
                Device::Rng(r) => Ok(r.wanted(ctx)),
                _ => Ok(0),
            })
            .unwrap_or(0) as usize
    }

    /// With host entropy: fills waiting requests; returns the bytes used.
    pub fn push_entropy(&mut self, ram: &mut Ram, bytes: &[u8]) -> usize {
        let Some(slot) = self.find(|d| matches!(d, Device::Rng(_))) else {
            return 0;
        };
        let taken = self.slots[slot].with_queues(ram, |d, ctx| match d {
            Device::Rng(r) if r.source == rng::Entropy::Host => r.receive(ctx, bytes),
            _ => Ok(0),
        });
        self.collect_warnings(slot);
        taken.unwrap_or(0)
    }

    /// The backend of disk `index` (e.g. to save its overlay).
    pub fn disk_mut(&mut self, index: usize) -> Option<&mut dyn blk::BlockBackend> {
        self.slots.iter_mut().find_map(|t| match &mut t.device {
            Device::Blk(b) if b.state.index == index => Some(b.backend.as_mut()),
            _ => None,
        })
    }

    /// The state of every slot, for the machine's state hash.
    pub fn state(&self) -> Vec<mmio::SlotState<'_>> {
        self.slots.iter().map(VirtioMmio::slot_state).collect()
    }
}

#[cfg(test)]
mod tests;

//! The virtio-mmio transport, version 2 (virtio 1.x §4.2.2).
//!
//! Assumptions, written down:
//! - Registers below 0x100 are 32 bits wide; other access sizes read zero
//!   and write nothing (as on QEMU). The configuration space from 0x100 takes
//!   1-, 2-, 4- and 8-byte accesses and is read-only here (no device offers a
//!   writable field).
//! - A slot without a device answers like QEMU's empty transports: the magic
//!   value, version 2, device ID 0, and zeros.
//! - Queue registers can be changed only while the queue is not ready; a
//!   queue becomes ready only if its size and rings pass
//!   [`Queue::validate`], otherwise the device needs a reset.
//! - FEATURES_OK is accepted only for a subset of the offered features that
//!   includes VIRTIO_F_VERSION_1 (otherwise the bit does not stick, as the
//!   spec prescribes).
//! - Queues are processed only while DRIVER_OK is set and DEVICE_NEEDS_RESET
//!   is not; setting DRIVER_OK processes what was already made available.
//! - The interrupt line is high while InterruptStatus is nonzero.

use super::queue::Queue;
use super::{
    Device, DeviceError, QueueCtx, F_INDIRECT_DESC, F_VERSION_1, INT_CONFIG_CHANGE,
    INT_USED_BUFFER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, STATUS_NEEDS_RESET,
};
use crate::state::{mismatch, same_len, Saved, StateError};
use rewind_hart::Ram;

pub const BASE: u64 = 0x1000_1000;
pub const SLOT_SIZE: u64 = 0x1000;
pub const SLOTS: usize = 8;

pub const MAGIC: u32 = 0x7472_6976;
pub const VERSION: u32 = 2;
/// "QEMU", the vendor ID QEMU's transports report.
pub const VENDOR: u32 = 0x554d_4551;

pub const MAGIC_VALUE: u64 = 0x000;
pub const VERSION_REG: u64 = 0x004;
pub const DEVICE_ID: u64 = 0x008;
pub const VENDOR_ID: u64 = 0x00c;
pub const DEVICE_FEATURES: u64 = 0x010;
pub const DEVICE_FEATURES_SEL: u64 = 0x014;
pub const DRIVER_FEATURES: u64 = 0x020;
pub const DRIVER_FEATURES_SEL: u64 = 0x024;
pub const QUEUE_SEL: u64 = 0x030;
pub const QUEUE_NUM_MAX: u64 = 0x034;
pub const QUEUE_NUM: u64 = 0x038;
pub const QUEUE_READY: u64 = 0x044;
pub const QUEUE_NOTIFY: u64 = 0x050;
pub const INTERRUPT_STATUS: u64 = 0x060;
pub const INTERRUPT_ACK: u64 = 0x064;
pub const STATUS: u64 = 0x070;
pub const QUEUE_DESC_LOW: u64 = 0x080;
pub const QUEUE_DESC_HIGH: u64 = 0x084;
pub const QUEUE_DRIVER_LOW: u64 = 0x090;
pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
pub const SHM_SEL: u64 = 0x0ac;
pub const SHM_LEN_LOW: u64 = 0x0b0;
pub const SHM_LEN_HIGH: u64 = 0x0b4;
pub const SHM_BASE_LOW: u64 = 0x0b8;
pub const SHM_BASE_HIGH: u64 = 0x0bc;
pub const CONFIG_GENERATION: u64 = 0x0fc;
pub const CONFIG: u64 = 0x100;

/// The transport's guest-visible registers and queues.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransportState {
    pub status: u32,
    pub device_features_sel: u32,
    pub driver_features_sel: u32,
    pub driver_features: u64,
    pub queue_sel: u32,
    pub queues: Vec<Queue>,
    pub interrupt_status: u32,
    pub shm_sel: u32,
}

impl TransportState {
    fn new(queue_sizes: &[u16]) -> Self {
        TransportState {
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: queue_sizes.iter().map(|&max| Queue::new(max)).collect(),
            interrupt_status: 0,
            shm_sel: 0,
        }
    }
}

/// The state of one slot, for hashing and snapshots.
#[derive(serde::Serialize)]
pub struct SlotState<'a> {
    pub slot: usize,
    pub transport: &'a TransportState,
    pub device: super::DeviceState<'a>,
}

/// One virtio-mmio transport and its device.
pub struct VirtioMmio {
    pub slot: usize,
    pub state: TransportState,
    pub device: Device,
    warnings: Vec<String>,
}

fn set_low(v: &mut u64, low: u32) {
    *v = (*v & !0xffff_ffff) | low as u64;
}

fn set_high(v: &mut u64, high: u32) {
    *v = (*v & 0xffff_ffff) | (high as u64) << 32;
}

/// A read of an empty slot.
pub fn read_empty(offset: u64, size: u8) -> Option<u64> {
    if size != 4 || !offset.is_multiple_of(4) {
        return Some(0);
    }
    Some(match offset {
        MAGIC_VALUE => MAGIC,
        VERSION_REG => VERSION,
        VENDOR_ID => VENDOR,
        _ => 0,
    } as u64)
}

/// A write to an empty slot: ignored.
pub fn write_empty(_offset: u64, _size: u8) -> bool {
    true
}

impl VirtioMmio {
    pub fn new(slot: usize, device: Device) -> Self {
        VirtioMmio {
            slot,
            state: TransportState::new(&device.queue_sizes()),
            device,
            warnings: Vec::new(),
        }
    }

    pub fn base(&self) -> u64 {
        BASE + SLOT_SIZE * self.slot as u64
    }

    /// The PLIC source of this slot.
    pub fn irq(&self) -> u32 {
        1 + self.slot as u32
    }

    /// The interrupt line towards the PLIC.
    pub fn interrupt(&self) -> bool {
        self.state.interrupt_status != 0
    }

    /// DEVICE_NEEDS_RESET is set: the device does nothing until a reset.
    pub fn needs_reset(&self) -> bool {
        self.state.status & STATUS_NEEDS_RESET != 0
    }

    /// The driver is running and the device is working.
    pub fn live(&self) -> bool {
        self.state.status & STATUS_DRIVER_OK != 0 && !self.needs_reset()
    }

    pub fn slot_state(&self) -> SlotState<'_> {
        SlotState {
            slot: self.slot,
            transport: &self.state,
            device: self.device.state(),
        }
    }

    /// A device reset (status 0 or a machine reset).
    pub fn reset(&mut self) {
        self.state = TransportState::new(&self.device.queue_sizes());
        self.device.reset();
    }

    /// Problems raised since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The device broke the rules: it needs a reset and says so.
    fn fail(&mut self, problem: &dyn std::fmt::Display) {
        if self.needs_reset() {
            return;
        }
        self.state.status |= STATUS_NEEDS_RESET;
        if self.state.status & STATUS_DRIVER_OK != 0 {
            self.state.interrupt_status |= INT_CONFIG_CHANGE;
        }
        self.warnings.push(format!(
            "{} (virtio_mmio@{:x}): {problem}; the device stops until the guest resets it",
            self.device.name(),
            self.base()
        ));
    }

    /// Runs `f` on the device and its queues if the device is live, then
    /// raises the interrupt for used buffers and handles errors. `None` when
    /// the device is not live or failed.
    pub fn with_queues<R>(
        &mut self,
        ram: &mut Ram,
        f: impl FnOnce(&mut Device, &mut QueueCtx) -> Result<R, DeviceError>,
    ) -> Option<R> {
        if !self.live() {
            return None;
        }
        let mut ctx = QueueCtx {
            ram,
            queues: &mut self.state.queues,
            indirect: self.state.driver_features & F_INDIRECT_DESC != 0,
            features: self.state.driver_features,
            interrupt: false,
        };
        let result = f(&mut self.device, &mut ctx);
        if ctx.interrupt {
            self.state.interrupt_status |= INT_USED_BUFFER;
        }
        if let Device::Blk(b) = &mut self.device {
            for e in std::mem::take(&mut b.host_errors) {
                self.warnings.push(format!("{}: {e}", self.device.name()));
            }
        }
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                self.fail(&e);
                None
            }
        }
    }

    fn notify(&mut self, ram: &mut Ram, queue: usize) {
        if self.state.queues.get(queue).is_some_and(|q| q.ready) {
            self.with_queues(ram, |d, ctx| d.notify(queue, ctx));
        }
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.state.queues.get_mut(self.state.queue_sel as usize)
    }

    /// A guest read of register `offset`.
    pub fn read(&mut self, offset: u64, size: u8) -> Option<u64> {
        if offset >= CONFIG {
            let config = self.device.config();
            let mut bytes = [0u8; 8];
            let size = (size as usize).min(8);
            let start = (offset - CONFIG) as usize;
            for (i, b) in bytes.iter_mut().take(size).enumerate() {
                *b = config.get(start + i).copied().unwrap_or(0);
            }
            return Some(u64::from_le_bytes(bytes));
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Some(0);
        }
        let s = &self.state;
        let queue = s.queues.get(s.queue_sel as usize);
        let v: u32 = match offset {
            MAGIC_VALUE => MAGIC,
            VERSION_REG => VERSION,
            DEVICE_ID => self.device.id(),
            VENDOR_ID => VENDOR,
            DEVICE_FEATURES => match s.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => queue.map_or(0, |q| q.max_size as u32),
            QUEUE_NUM => queue.map_or(0, |q| q.size as u32),
            QUEUE_READY => queue.is_some_and(|q| q.ready) as u32,
            QUEUE_DESC_LOW => queue.map_or(0, |q| q.desc_table as u32),
            QUEUE_DESC_HIGH => queue.map_or(0, |q| (q.desc_table >> 32) as u32),
            QUEUE_DRIVER_LOW => queue.map_or(0, |q| q.avail_ring as u32),
            QUEUE_DRIVER_HIGH => queue.map_or(0, |q| (q.avail_ring >> 32) as u32),
            QUEUE_DEVICE_LOW => queue.map_or(0, |q| q.used_ring as u32),
            QUEUE_DEVICE_HIGH => queue.map_or(0, |q| (q.used_ring >> 32) as u32),
            INTERRUPT_STATUS => s.interrupt_status,
            STATUS => s.status,
            // No shared memory regions: length all ones means "none".
            SHM_LEN_LOW | SHM_LEN_HIGH | SHM_BASE_LOW | SHM_BASE_HIGH => u32::MAX,
            CONFIG_GENERATION => 0,
            _ => 0,
        };
        Some(v as u64)
    }

    /// A guest write of register `offset`; never faults.
    pub fn write(&mut self, ram: &mut Ram, offset: u64, size: u8, value: u64) -> bool {
        if offset >= CONFIG || size != 4 || !offset.is_multiple_of(4) {
            return true;
        }
        let v = value as u32;
        let features_locked = self.state.status & STATUS_FEATURES_OK != 0;
        match offset {
            DEVICE_FEATURES_SEL => self.state.device_features_sel = v,
            DRIVER_FEATURES_SEL => self.state.driver_features_sel = v,
            DRIVER_FEATURES if !features_locked => match self.state.driver_features_sel {
                0 => set_low(&mut self.state.driver_features, v),
                1 => set_high(&mut self.state.driver_features, v),
                _ => {}
            },
            QUEUE_SEL => self.state.queue_sel = v,
            QUEUE_NUM => {
                if let Some(q) = self.selected().filter(|q| !q.ready) {
                    // A size no queue can have fails validation as 0.
                    q.size = u16::try_from(v).unwrap_or(0);
                }
            }
            QUEUE_DESC_LOW | QUEUE_DESC_HIGH | QUEUE_DRIVER_LOW | QUEUE_DRIVER_HIGH
            | QUEUE_DEVICE_LOW | QUEUE_DEVICE_HIGH => {
                if let Some(q) = self.selected().filter(|q| !q.ready) {
                    match offset {
                        QUEUE_DESC_LOW => set_low(&mut q.desc_table, v),
                        QUEUE_DESC_HIGH => set_high(&mut q.desc_table, v),
                        QUEUE_DRIVER_LOW => set_low(&mut q.avail_ring, v),
                        QUEUE_DRIVER_HIGH => set_high(&mut q.avail_ring, v),
                        QUEUE_DEVICE_LOW => set_low(&mut q.used_ring, v),
                        _ => set_high(&mut q.used_ring, v),
                    }
                }
            }
            QUEUE_READY => self.set_queue_ready(ram, v & 1 != 0),
            QUEUE_NOTIFY => self.notify(ram, (v & 0xffff) as usize),
            INTERRUPT_ACK => self.state.interrupt_status &= !v,
            STATUS => self.set_status(ram, v),
            SHM_SEL => self.state.shm_sel = v,
            _ => {}
        }
        true
    }

    fn set_queue_ready(&mut self, ram: &Ram, ready: bool) {
        let index = self.state.queue_sel as usize;
        let Some(q) = self.state.queues.get_mut(index) else {
            return;
        };
        if !ready {
            q.ready = false;
            return;
        }
        if q.ready {
            return;
        }
        match q.validate(index, ram) {
            Ok(()) => q.ready = true,
            Err(e) => self.fail(&e),
        }
    }

    fn set_status(&mut self, ram: &mut Ram, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.state.status;
        let mut new = (value & 0xff) | (old & STATUS_NEEDS_RESET);
        if new & STATUS_FEATURES_OK != 0 && old & STATUS_FEATURES_OK == 0 {
            let wanted = self.state.driver_features;
            let offered = self.device.features();
            if wanted & !offered != 0 || wanted & F_VERSION_1 == 0 {
                new &= !STATUS_FEATURES_OK;
            }
        }
        self.state.status = new;
        if new & STATUS_DRIVER_OK != 0 && old & STATUS_DRIVER_OK == 0 {
            for queue in 0..self.state.queues.len() {
                self.notify(ram, queue);
            }
        }
    }
}

/// A slot's component is its transport's registers and queues followed by its
/// device's state (the device has no component of its own, so that the two,
/// which only make sense together, are restored together).
impl Saved for VirtioMmio {
    type State = (TransportState, super::SavedDevice);

    fn saved(&self) -> Self::State {
        (self.state.clone(), self.device.saved())
    }

    /// The device first, since another kind of device explains any other
    /// difference; then the queues, which the fresh device sized.
    fn check(&self, part: &str, (transport, device): &Self::State) -> Result<(), StateError> {
        self.device.check(part, device)?;
        same_len(
            part,
            "queues",
            transport.queues.len(),
            self.state.queues.len(),
        )?;
        for (q, (restored, fresh)) in transport.queues.iter().zip(&self.state.queues).enumerate() {
            if restored.max_size != fresh.max_size {
                return Err(mismatch(
                    part,
                    format!("queue {q} has another maximum size"),
                ));
            }
        }
        Ok(())
    }

    fn apply(&mut self, (transport, device): Self::State) {
        self.state = transport;
        self.device.apply(device);
    }
}

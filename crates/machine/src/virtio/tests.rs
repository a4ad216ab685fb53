//! Unit tests of the transport, the queues and each device, driven the way a
//! guest driver drives them: register writes and rings in RAM.

use super::blk::{self, MemDisk};
use super::mmio::*;
use super::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use super::*;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 1 << 20;
/// Where queue q's rings live: a 16 KiB area each.
fn desc_addr(q: usize) -> u64 {
    RAM_BASE + 0x4000 * q as u64
}
fn avail_addr(q: usize) -> u64 {
    desc_addr(q) + 0x1000
}
fn used_addr(q: usize) -> u64 {
    desc_addr(q) + 0x2000
}
/// Data buffers start here.
const DATA: u64 = RAM_BASE + 0x4_0000;

struct Driver {
    t: Virtio,
    ram: Ram,
    /// Next free descriptor per queue, and the avail index.
    next_desc: Vec<u16>,
    avail_idx: Vec<u16>,
    sizes: Vec<u16>,
}

impl Driver {
    fn new(device: Device) -> Driver {
        Self::with_sizes(device, None)
    }

    /// A driver that set the device up (all offered features accepted),
    /// with queue sizes `sizes` (default: 16).
    fn with_sizes(device: Device, sizes: Option<Vec<u16>>) -> Driver {
        Self::set_up(device, sizes, u64::MAX)
    }

    /// A driver that set the device up accepting only the offered features
    /// in `accepted`, with queue sizes `sizes` (default: 16).
    fn set_up(device: Device, sizes: Option<Vec<u16>>, accepted: u64) -> Driver {
        let queues = device.queue_sizes().len();
        let sizes = sizes.unwrap_or(vec![16; queues]);
        let mut d = Driver {
            t: Virtio::new(vec![device]),
            ram: Ram::new(RAM_BASE, RAM_SIZE),
            next_desc: vec![0; queues],
            avail_idx: vec![0; queues],
            sizes: sizes.clone(),
        };
        d.w(STATUS, (STATUS_ACKNOWLEDGE | STATUS_DRIVER) as u64);
        let features = d.features() & accepted;
        d.w(DRIVER_FEATURES_SEL, 0);
        d.w(DRIVER_FEATURES, features & 0xffff_ffff);
        d.w(DRIVER_FEATURES_SEL, 1);
        d.w(DRIVER_FEATURES, features >> 32);
        d.w(
            STATUS,
            (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK) as u64,
        );
        assert_ne!(d.r(STATUS) as u32 & STATUS_FEATURES_OK, 0);
        for (q, &size) in sizes.iter().enumerate() {
            d.setup_queue(q, size);
        }
        d.w(
            STATUS,
            (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK) as u64,
        );
        d
    }

    fn setup_queue(&mut self, q: usize, size: u16) {
        self.w(QUEUE_SEL, q as u64);
        self.w(QUEUE_NUM, size as u64);
        for (low, addr) in [
            (QUEUE_DESC_LOW, desc_addr(q)),
            (QUEUE_DRIVER_LOW, avail_addr(q)),
            (QUEUE_DEVICE_LOW, used_addr(q)),
        ] {
            self.w(low, addr & 0xffff_ffff);
            self.w(low + 4, addr >> 32);
        }
        self.w(QUEUE_READY, 1);
    }

    fn features(&mut self) -> u64 {
        self.w(DEVICE_FEATURES_SEL, 0);
        let low = self.r(DEVICE_FEATURES);
        self.w(DEVICE_FEATURES_SEL, 1);
        low | self.r(DEVICE_FEATURES) << 32
    }

    fn r(&mut self, offset: u64) -> u64 {
        self.t
            .read(offset, 4)
            .expect("virtio registers never fault")
    }

    fn w(&mut self, offset: u64, value: u64) {
        assert!(self.t.write(&mut self.ram, offset, 4, value));
    }

    fn put(&mut self, addr: u64, bytes: &[u8]) {
        self.ram.write_bytes(addr, bytes).expect("inside RAM");
    }

    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.ram.read_bytes(addr, &mut v).expect("inside RAM");
        v
    }

    /// Writes descriptor `index` of a table at `table`.
    fn desc(&mut self, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut b = Vec::new();
        b.extend_from_slice(&addr.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&next.to_le_bytes());
        self.put(table + 16 * index as u64, &b);
    }

    /// Makes `head` available on queue q.
    fn offer(&mut self, q: usize, head: u16) {
        let slot = self.avail_idx[q] % self.sizes[q];
        self.put(avail_addr(q) + 4 + 2 * slot as u64, &head.to_le_bytes());
        self.avail_idx[q] = self.avail_idx[q].wrapping_add(1);
        let idx = self.avail_idx[q];
        self.put(avail_addr(q) + 2, &idx.to_le_bytes());
    }

    /// Adds a chain of (addr, len, writable) buffers to queue q and makes it
    /// available; returns its head.
    fn add(&mut self, q: usize, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc[q];
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            let index = (head + i as u16) % self.sizes[q];
            let last = i + 1 == bufs.len();
            let flags = if write { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT };
            let next = (index + 1) % self.sizes[q];
            self.desc(desc_addr(q), index, addr, len, flags, next);
        }
        self.next_desc[q] = (head + bufs.len() as u16) % self.sizes[q];
        self.offer(q, head);
        head
    }

    fn notify(&mut self, q: usize) {
        self.w(QUEUE_NOTIFY, q as u64);
    }

    fn used_idx(&self, q: usize) -> u16 {
        u16::from_le_bytes(self.get(used_addr(q) + 2, 2).try_into().unwrap())
    }

    /// The used element at position `i` of queue q: (id, len).
    fn used(&self, q: usize, i: u16) -> (u32, u32) {
        let e = self.get(used_addr(q) + 4 + 8 * (i % self.sizes[q]) as u64, 8);
        (
            u32::from_le_bytes(e[..4].try_into().unwrap()),
            u32::from_le_bytes(e[4..].try_into().unwrap()),
        )
    }

    fn status(&mut self) -> u32 {
        self.r(STATUS) as u32
    }

    fn broken(&mut self) -> bool {
        self.status() & STATUS_NEEDS_RESET != 0
    }
}

fn disk(sectors: usize, read_only: bool) -> Device {
    let bytes = (0..sectors * 512)
        .map(|i| (i / 512 + i % 7) as u8)
        .collect();
    Device::Blk(blk::Blk::new(0, Box::new(MemDisk { bytes, read_only })))
}

fn blk_header(kind: u32, sector: u64) -> Vec<u8> {
    let mut h = kind.to_le_bytes().to_vec();
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&sector.to_le_bytes());
    h
}

fn mem_disk(d: &mut Driver) -> &mut MemDisk {
    let backend = d.t.disk_mut(0).expect("disk 0 exists");
    (backend as &mut dyn std::any::Any)
        .downcast_mut::<MemDisk>()
        .expect("a MemDisk")
}

/// Issues a blk request with header at DATA, data buffer at DATA+0x100 and
/// status at DATA+0x80; returns (status byte, used len).
fn blk_request(
    d: &mut Driver,
    kind: u32,
    sector: u64,
    data_len: u32,
    data_writable: bool,
) -> (u8, u32) {
    d.put(DATA, &blk_header(kind, sector));
    d.put(DATA + 0x80, &[0xff]);
    let mut bufs = vec![(DATA, 16, false)];
    if data_len > 0 {
        bufs.push((DATA + 0x100, data_len, data_writable));
    }
    bufs.push((DATA + 0x80, 1, true));
    let before = d.used_idx(0);
    let head = d.add(0, &bufs);
    d.notify(0);
    assert_eq!(
        d.used_idx(0),
        before.wrapping_add(1),
        "the request completed"
    );
    let (id, len) = d.used(0, before);
    assert_eq!(id, head as u32);
    (d.get(DATA + 0x80, 1)[0], len)
}

#[test]
fn the_transport_identifies_itself_and_empty_slots_read_as_qemu_does() {
    let mut d = Driver::new(disk(8, false));
    assert_eq!(d.r(MAGIC_VALUE), 0x7472_6976);
    assert_eq!(d.r(VERSION_REG), 2);
    assert_eq!(d.r(DEVICE_ID), 2);
    // Slot 1 is empty: magic and version, but device ID 0.
    assert_eq!(d.t.read(SLOT_SIZE + MAGIC_VALUE, 4), Some(0x7472_6976));
    assert_eq!(d.t.read(SLOT_SIZE + VERSION_REG, 4), Some(2));
    assert_eq!(d.t.read(SLOT_SIZE + DEVICE_ID, 4), Some(0));
    assert!(d.t.write(&mut d.ram, SLOT_SIZE + STATUS, 4, 1));
    // Wrong access sizes read zero.
    assert_eq!(d.t.read(MAGIC_VALUE, 8), Some(0));
    assert_eq!(d.t.read(MAGIC_VALUE + 1, 4), Some(0));
}

#[test]
fn blk_config_space_holds_capacity_and_seg_max() {
    let mut d = Driver::new(disk(8, false));
    assert_eq!(d.t.read(CONFIG, 8), Some(8));
    assert_eq!(d.t.read(CONFIG, 4), Some(8));
    assert_eq!(d.t.read(CONFIG + 4, 4), Some(0));
    assert_eq!(d.t.read(CONFIG + 12, 4), Some(254));
    assert_eq!(d.t.read(CONFIG + 0x200, 4), Some(0));
    let f = d.features();
    assert_ne!(f & F_VERSION_1, 0);
    assert_ne!(f & blk::F_FLUSH, 0);
    assert_eq!(f & blk::F_RO, 0);
}

#[test]
fn blk_reads_sectors_into_guest_memory_and_interrupts() {
    let mut d = Driver::new(disk(8, false));
    let (status, len) = blk_request(&mut d, blk::T_IN, 2, 1024, true);
    assert_eq!(status, blk::S_OK);
    assert_eq!(len, 1025);
    let expected: Vec<u8> = (1024..2048).map(|i| (i / 512 + i % 7) as u8).collect();
    assert_eq!(d.get(DATA + 0x100, 1024), expected);
    assert_eq!(d.r(INTERRUPT_STATUS), INT_USED_BUFFER as u64);
    assert!(d.t.slots[0].interrupt());
    d.w(INTERRUPT_ACK, INT_USED_BUFFER as u64);
    assert!(!d.t.slots[0].interrupt());
}

#[test]
fn blk_writes_reach_the_disk_and_change_the_state_hash() {
    let mut d = Driver::new(disk(8, false));
    let before = match &d.t.slots[0].device {
        Device::Blk(b) => b.state.writes,
        _ => unreachable!(),
    };
    d.put(DATA + 0x100, &[0xab; 512]);
    let (status, len) = blk_request(&mut d, blk::T_OUT, 7, 512, false);
    assert_eq!((status, len), (blk::S_OK, 1));
    assert_eq!(&mem_disk(&mut d).bytes[7 * 512..8 * 512], &[0xab; 512][..]);
    let after = match &d.t.slots[0].device {
        Device::Blk(b) => b.state.writes,
        _ => unreachable!(),
    };
    assert_ne!(before, after);
    assert_eq!(blk_request(&mut d, blk::T_FLUSH, 0, 0, false).0, blk::S_OK);
}

#[test]
fn blk_read_only_disks_say_so_and_fail_writes() {
    let mut d = Driver::new(disk(8, true));
    assert_ne!(d.features() & blk::F_RO, 0);
    d.put(DATA + 0x100, &[0xab; 512]);
    assert_eq!(
        blk_request(&mut d, blk::T_OUT, 0, 512, false).0,
        blk::S_IOERR
    );
    assert_ne!(mem_disk(&mut d).bytes[0], 0xab);
    assert!(!d.broken());
}

#[test]
fn blk_requests_outside_the_disk_or_unaligned_get_ioerr_and_the_device_keeps_working() {
    let mut d = Driver::new(disk(8, false));
    assert_eq!(blk_request(&mut d, blk::T_IN, 8, 512, true).0, blk::S_IOERR);
    assert_eq!(
        blk_request(&mut d, blk::T_IN, 7, 1024, true).0,
        blk::S_IOERR
    );
    assert_eq!(blk_request(&mut d, blk::T_IN, 0, 100, true).0, blk::S_IOERR);
    // sector * 512 overflows.
    assert_eq!(
        blk_request(&mut d, blk::T_IN, u64::MAX / 2, 512, true).0,
        blk::S_IOERR
    );
    assert_eq!(blk_request(&mut d, 99, 0, 0, false).0, blk::S_UNSUPP);
    assert!(!d.broken());
    assert_eq!(blk_request(&mut d, blk::T_IN, 0, 512, true).0, blk::S_OK);
    assert!(d.t.take_warnings().is_empty());
}

#[test]
fn blk_get_id_returns_the_serial() {
    let mut d = Driver::new(disk(8, false));
    let (status, len) = blk_request(&mut d, blk::T_GET_ID, 0, 20, true);
    assert_eq!((status, len), (blk::S_OK, 21));
    assert_eq!(&d.get(DATA + 0x100, 13), b"rewind-disk-0");
}

#[test]
fn a_request_split_across_odd_descriptors_is_read_by_bytes() {
    let mut d = Driver::new(disk(8, false));
    // Header in two pieces, data in three, status with the last data piece.
    let h = blk_header(blk::T_IN, 1);
    d.put(DATA, &h[..5]);
    d.put(DATA + 0x40, &h[5..]);
    d.add(
        0,
        &[
            (DATA, 5, false),
            (DATA + 0x40, 11, false),
            (DATA + 0x100, 100, true),
            (DATA + 0x200, 312, true),
            (DATA + 0x400, 101, true),
        ],
    );
    d.notify(0);
    assert_eq!(d.used(0, 0).1, 513);
    let disk: Vec<u8> = (512..1024).map(|i| (i / 512 + i % 7) as u8).collect();
    assert_eq!(d.get(DATA + 0x100, 100), disk[..100]);
    assert_eq!(d.get(DATA + 0x200, 312), disk[100..412]);
    assert_eq!(d.get(DATA + 0x400, 100), disk[412..]);
    assert_eq!(d.get(DATA + 0x400 + 100, 1)[0], blk::S_OK);
}

/// Asserts the device needs a reset and warned with a message containing `what`.
fn assert_broken(d: &mut Driver, what: &str) {
    assert!(d.broken(), "the device should need a reset");
    let warnings = d.t.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("virtio-blk 0 (virtio_mmio@10001000): ")
            && warnings[0].contains(what),
        "{warnings:?}"
    );
}

#[test]
fn a_descriptor_loop_breaks_the_device_until_it_is_reset() {
    let mut d = Driver::new(disk(8, false));
    d.put(DATA, &blk_header(blk::T_IN, 0));
    d.desc(desc_addr(0), 0, DATA, 16, DESC_F_NEXT, 1);
    d.desc(desc_addr(0), 1, DATA + 0x100, 16, DESC_F_NEXT, 0);
    d.offer(0, 0);
    d.notify(0);
    assert_broken(&mut d, "longer than 16 descriptors (a loop?)");
    // The driver was running: it hears of it through a config-change interrupt.
    assert_eq!(d.r(INTERRUPT_STATUS) as u32, INT_CONFIG_CHANGE);
    assert!(d.t.slots[0].interrupt());
    assert_eq!(d.used_idx(0), 0);
    // Further notifications are ignored, and warn no more.
    d.notify(0);
    assert!(d.t.take_warnings().is_empty());
    // A reset and a fresh set-up bring it back.
    d.w(STATUS, 0);
    assert_eq!(d.status(), 0);
    assert!(!d.t.slots[0].interrupt());
    let mut d2 = Driver::new(disk(8, false));
    std::mem::swap(&mut d2.ram, &mut d.ram);
    assert_eq!(blk_request(&mut d2, blk::T_IN, 0, 512, true).0, blk::S_OK);
}

#[test]
fn buffers_outside_ram_break_the_device() {
    for (addr, len) in [
        (0x1000u64, 16u32),
        (RAM_BASE + RAM_SIZE - 8, 16),
        (u64::MAX - 7, 16),
        (RAM_BASE + RAM_SIZE, 0),
    ] {
        let mut d = Driver::new(disk(8, false));
        d.add(0, &[(addr, len, false), (DATA + 0x80, 1, true)]);
        d.notify(0);
        assert_broken(&mut d, "which is not inside guest RAM");
    }
}

#[test]
fn bad_queue_sizes_break_the_device_when_the_queue_is_made_ready() {
    for size in [0u16, 3, 100, 512] {
        let mut d = Driver::with_sizes(disk(8, false), Some(vec![size]));
        assert_broken(&mut d, "not a power of two between 1 and 256");
        assert_eq!(d.r(QUEUE_READY), 0);
    }
}

#[test]
fn misaligned_or_outside_rings_break_the_device() {
    let mut d = Driver::new(disk(8, false));
    d.w(STATUS, 0);
    d.w(STATUS, (STATUS_ACKNOWLEDGE | STATUS_DRIVER) as u64);
    d.w(QUEUE_SEL, 0);
    d.w(QUEUE_NUM, 16);
    d.w(QUEUE_DESC_LOW, (desc_addr(0) + 8) & 0xffff_ffff);
    d.w(QUEUE_READY, 1);
    assert!(d.broken());
    assert!(d.t.take_warnings()[0].contains("is not 16-byte aligned"));

    d.w(STATUS, 0);
    d.w(QUEUE_NUM, 16);
    d.w(QUEUE_DESC_LOW, 0);
    d.w(QUEUE_DESC_HIGH, 0);
    d.w(QUEUE_READY, 1);
    assert!(d.t.take_warnings()[0].contains("descriptor table at 0x0"));
}

#[test]
fn an_available_index_far_ahead_breaks_the_device() {
    let mut d = Driver::new(disk(8, false));
    d.put(avail_addr(0) + 2, &100u16.to_le_bytes());
    d.notify(0);
    assert_broken(&mut d, "moved 100 entries past the device");
}

#[test]
fn a_head_or_next_outside_the_table_breaks_the_device() {
    let mut d = Driver::new(disk(8, false));
    d.offer(0, 16);
    d.notify(0);
    assert_broken(&mut d, "head descriptor 16");

    let mut d = Driver::new(disk(8, false));
    d.desc(desc_addr(0), 0, DATA, 16, DESC_F_NEXT, 40);
    d.offer(0, 0);
    d.notify(0);
    assert_broken(&mut d, "chains to 40");
}

#[test]
fn a_readable_buffer_after_a_writable_one_breaks_the_device() {
    let mut d = Driver::new(disk(8, false));
    d.put(DATA, &blk_header(blk::T_IN, 0));
    d.add(
        0,
        &[
            (DATA, 16, false),
            (DATA + 0x80, 1, true),
            (DATA + 0x100, 1, false),
        ],
    );
    d.notify(0);
    assert_broken(&mut d, "follows a device-writable one");
}

#[test]
fn malformed_blk_requests_break_the_device() {
    let mut d = Driver::new(disk(8, false));
    d.add(0, &[(DATA, 8, false), (DATA + 0x80, 1, true)]);
    d.notify(0);
    assert_broken(&mut d, "fewer than the 16-byte header");

    let mut d = Driver::new(disk(8, false));
    d.put(DATA, &blk_header(blk::T_IN, 0));
    d.add(0, &[(DATA, 16, false)]);
    d.notify(0);
    assert_broken(&mut d, "no device-writable byte");
}

#[test]
fn indirect_descriptors_work_and_hostile_tables_break_the_device() {
    let table = DATA + 0x1000;
    let setup = |d: &mut Driver, len: u32| {
        d.put(DATA, &blk_header(blk::T_IN, 3));
        d.desc(table, 0, DATA, 16, DESC_F_NEXT, 1);
        d.desc(table, 1, DATA + 0x100, 512, DESC_F_NEXT | DESC_F_WRITE, 2);
        d.desc(table, 2, DATA + 0x80, 1, DESC_F_WRITE, 0);
        d.desc(desc_addr(0), 0, table, len, DESC_F_INDIRECT, 0);
        d.offer(0, 0);
        d.notify(0);
    };
    let mut d = Driver::new(disk(8, false));
    assert_ne!(d.features() & F_INDIRECT_DESC, 0);
    setup(&mut d, 48);
    assert!(!d.broken());
    assert_eq!(d.used(0, 0), (0, 513));
    assert_eq!(d.get(DATA + 0x80, 1)[0], blk::S_OK);

    let mut d = Driver::new(disk(8, false));
    setup(&mut d, 40);
    assert_broken(&mut d, "not a nonzero multiple of 16");

    // A loop inside the indirect table.
    let mut d = Driver::new(disk(8, false));
    d.desc(table, 2, DATA + 0x80, 1, DESC_F_WRITE | DESC_F_NEXT, 0);
    d.desc(desc_addr(0), 0, table, 48, DESC_F_INDIRECT, 0);
    d.desc(table, 0, DATA, 16, DESC_F_NEXT, 1);
    d.desc(table, 1, DATA + 0x100, 512, DESC_F_NEXT | DESC_F_WRITE, 2);
    d.offer(0, 0);
    d.notify(0);
    assert_broken(&mut d, "longer than 3 descriptors");

    // An indirect descriptor inside the table.
    let mut d = Driver::new(disk(8, false));
    d.desc(table, 0, table, 16, DESC_F_INDIRECT, 0);
    d.desc(desc_addr(0), 0, table, 16, DESC_F_INDIRECT, 0);
    d.offer(0, 0);
    d.notify(0);
    assert_broken(&mut d, "is itself indirect");
}

#[test]
fn indirect_descriptors_are_refused_when_not_negotiated() {
    let mut d = Driver::new(disk(8, false));
    d.w(STATUS, 0);
    d.w(STATUS, (STATUS_ACKNOWLEDGE | STATUS_DRIVER) as u64);
    d.w(DRIVER_FEATURES_SEL, 1);
    d.w(DRIVER_FEATURES, 1);
    d.w(
        STATUS,
        (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK) as u64,
    );
    d.setup_queue(0, 16);
    d.w(STATUS, 0xf);
    d.desc(desc_addr(0), 0, DATA + 0x1000, 48, DESC_F_INDIRECT, 0);
    d.offer(0, 0);
    d.notify(0);
    assert_broken(&mut d, "were not negotiated");
}

#[test]
fn features_ok_does_not_stick_without_version_1_or_with_unknown_features() {
    for (low, high) in [(0u64, 0u64), (1 << 1, 1), (0, 1 | 1 << 10)] {
        let mut d = Driver::new(disk(8, false));
        d.w(STATUS, 0);
        d.w(STATUS, 3);
        d.w(DRIVER_FEATURES_SEL, 0);
        d.w(DRIVER_FEATURES, low);
        d.w(DRIVER_FEATURES_SEL, 1);
        d.w(DRIVER_FEATURES, high);
        d.w(STATUS, 0xb);
        assert_eq!(d.status() & STATUS_FEATURES_OK, 0, "{low:#x} {high:#x}");
    }
}

#[test]
fn nothing_is_processed_before_driver_ok_and_driver_ok_catches_up() {
    let mut d = Driver::new(disk(8, false));
    d.w(STATUS, 0);
    d.w(STATUS, 3);
    d.w(DRIVER_FEATURES_SEL, 1);
    d.w(DRIVER_FEATURES, 1);
    d.w(STATUS, 0xb);
    d.setup_queue(0, 16);
    d.avail_idx[0] = 0;
    d.next_desc[0] = 0;
    d.put(DATA, &blk_header(blk::T_IN, 0));
    d.add(0, &[(DATA, 16, false), (DATA + 0x80, 1, true)]);
    d.notify(0);
    assert_eq!(d.used_idx(0), 0);
    d.w(STATUS, 0xf);
    assert_eq!(d.used_idx(0), 1);
}

#[test]
fn device_writes_mark_guest_pages_dirty() {
    let mut d = Driver::new(disk(8, false));
    d.ram.take_dirty_pages();
    blk_request(&mut d, blk::T_IN, 0, 512, true);
    let dirty = d.ram.take_dirty_pages();
    let page = |addr: u64| ((addr - RAM_BASE) >> 12) as usize;
    assert!(dirty.contains(&page(DATA + 0x100)), "{dirty:?}");
    assert!(dirty.contains(&page(used_addr(0))), "{dirty:?}");
}

#[test]
fn interrupts_are_suppressed_when_the_driver_asks() {
    let mut d = Driver::new(disk(8, false));
    d.put(avail_addr(0), &1u16.to_le_bytes());
    blk_request(&mut d, blk::T_IN, 0, 512, true);
    assert_eq!(d.r(INTERRUPT_STATUS), 0);
}

#[test]
fn net_transmits_frames_without_the_header_and_receives_with_it() {
    let mut d = Driver::new(Device::Net(net::Net::new(0, net::default_mac(0))));
    assert_eq!(d.t.read(CONFIG, 4), Some(0x1200_5452));
    assert_eq!(d.t.read(CONFIG + 5, 1), Some(0x56));
    assert_eq!(d.t.read(CONFIG + 6, 2), Some(1), "link up");
    // Transmit: header + 60-byte frame, header in its own buffer.
    d.put(DATA, &[0; 12]);
    d.put(DATA + 0x100, &[7; 60]);
    d.add(net::TX, &[(DATA, 12, false), (DATA + 0x100, 60, false)]);
    d.notify(net::TX);
    assert_eq!(d.t.take_net_frames(0), vec![vec![7u8; 60]]);
    assert_eq!(d.used(net::TX, 0).1, 0);
    // Receive: no buffer yet.
    assert!(!d.t.push_net_frame(&mut d.ram, 0, &[9; 100]));
    d.add(net::RX, &[(DATA + 0x1000, 1526, true)]);
    assert!(d.t.push_net_frame(&mut d.ram, 0, &[9; 100]));
    assert_eq!(d.used(net::RX, 0), (0, 112));
    let got = d.get(DATA + 0x1000, 112);
    assert_eq!(got[10], 1, "num_buffers");
    assert_eq!(&got[12..], &[9; 100][..]);
    // A frame larger than the buffer is dropped; the buffer stays.
    d.add(net::RX, &[(DATA + 0x2000, 100, true)]);
    assert!(d.t.push_net_frame(&mut d.ram, 0, &[1; 200]));
    assert_eq!(d.used_idx(net::RX), 1);
    assert!(d.t.push_net_frame(&mut d.ram, 0, &[1; 50]));
    assert_eq!(d.used_idx(net::RX), 2);
    // A transmit chain shorter than the header is malformed.
    d.add(net::TX, &[(DATA, 4, false)]);
    d.notify(net::TX);
    assert!(d.broken());
    assert!(d.t.take_warnings()[0].starts_with("virtio-net 0 "));
}

/// A console driver that did not accept MULTIPORT (so the device has no
/// control queues and cannot know when the driver is ready).
fn single_port_console() -> Driver {
    Driver::set_up(
        Device::Console(console::Console::default()),
        None,
        !console::F_MULTIPORT,
    )
}

#[test]
fn console_without_multiport_passes_output_and_input_through_buffers() {
    let mut d = single_port_console();
    d.put(DATA, b"hello ");
    d.put(DATA + 0x100, b"hvc0\n");
    d.add(console::TX, &[(DATA, 6, false)]);
    d.add(console::TX, &[(DATA + 0x100, 5, false)]);
    d.notify(console::TX);
    assert_eq!(d.t.take_hvc_output(), b"hello hvc0\n");
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"abc"), 0, "no buffer yet");
    d.add(console::RX, &[(DATA + 0x1000, 2, true)]);
    d.add(console::RX, &[(DATA + 0x2000, 64, true)]);
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"abcdef"), 6);
    assert_eq!(d.get(DATA + 0x1000, 2), b"ab");
    assert_eq!(d.get(DATA + 0x2000, 4), b"cdef");
    assert_eq!(d.used(console::RX, 1), (1, 4));
}

/// Sends control message (port 0, `event`, `value`) to the console from a
/// buffer at `at`.
fn console_control(d: &mut Driver, at: u64, event: u16, value: u16) {
    let mut message = 0u32.to_le_bytes().to_vec();
    message.extend_from_slice(&event.to_le_bytes());
    message.extend_from_slice(&value.to_le_bytes());
    d.put(at, &message);
    d.add(console::CONTROL_TX, &[(at, 8, false)]);
    d.notify(console::CONTROL_TX);
}

/// The control messages the console wrote into its control receive buffers
/// `first..` (each 64 bytes from CONTROL_IN), as (port, event, value).
fn console_messages(d: &Driver, first: u16) -> Vec<(u32, u16, u16)> {
    (first..d.used_idx(console::CONTROL_RX))
        .map(|i| {
            let (head, len) = d.used(console::CONTROL_RX, i);
            assert_eq!(len, 8);
            let m = d.get(CONTROL_IN + 64 * head as u64, 8);
            (
                u32::from_le_bytes(m[..4].try_into().unwrap()),
                u16::from_le_bytes(m[4..6].try_into().unwrap()),
                u16::from_le_bytes(m[6..].try_into().unwrap()),
            )
        })
        .collect()
}

const CONTROL_IN: u64 = DATA + 0x8000;

/// Linux's driver offers receive buffers before it has set up port 0 and
/// frees, unread, what arrives in them then; it keeps input for a reader of
/// /dev/hvc0 only once the port is a console and open. So with MULTIPORT the
/// device holds input (it stays with the host) until the driver has opened
/// port 0, which the driver says with a control message.
#[test]
fn console_holds_input_until_the_driver_opens_port_0() {
    let mut d = Driver::new(Device::Console(console::Console::default()));
    assert_ne!(d.features() & console::F_MULTIPORT, 0);
    // max_nr_ports (config offset 4) is 1.
    assert_eq!(d.t.read(CONFIG + 4, 4), Some(1));
    d.add(console::RX, &[(DATA, 64, true)]);
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"early"), 0);

    // A control message waits for a control receive buffer.
    console_control(&mut d, DATA + 0x100, console::DEVICE_READY, 1);
    assert_eq!(d.used_idx(console::CONTROL_TX), 1);
    assert_eq!(d.used_idx(console::CONTROL_RX), 0);
    for i in 0..4 {
        d.add(console::CONTROL_RX, &[(CONTROL_IN + 64 * i, 64, true)]);
    }
    d.notify(console::CONTROL_RX);
    assert_eq!(console_messages(&d, 0), [(0, console::DEVICE_ADD, 0)]);
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"early"), 0);

    // The driver added the port: it is a console, the host side is open.
    console_control(&mut d, DATA + 0x200, console::PORT_READY, 1);
    assert_eq!(
        console_messages(&d, 1),
        [(0, console::CONSOLE_PORT, 1), (0, console::PORT_OPEN, 1)]
    );
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"early"), 0);
    assert_eq!(d.used_idx(console::RX), 0, "nothing was written");

    // The driver opened the port: input flows.
    console_control(&mut d, DATA + 0x300, console::PORT_OPEN, 1);
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"early"), 5);
    assert_eq!(d.used(console::RX, 0), (0, 5));
    assert_eq!(d.get(DATA, 5), b"early");

    // The driver closed it again: input waits again.
    console_control(&mut d, DATA + 0x400, console::PORT_OPEN, 0);
    d.add(console::RX, &[(DATA + 0x500, 64, true)]);
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"late"), 0);

    // A device reset forgets that the port was open and what was to be sent.
    console_control(&mut d, DATA + 0x600, console::PORT_OPEN, 1);
    console_control(&mut d, DATA + 0x700, console::DEVICE_READY, 1);
    console_control(&mut d, DATA + 0x800, console::DEVICE_READY, 1);
    assert!(console_state(&d).guest_open);
    assert_eq!(console_state(&d).control.len(), 1, "no buffer for it");
    d.w(STATUS, 0);
    assert!(!console_state(&d).guest_open);
    assert!(console_state(&d).control.is_empty());
}

fn console_state(d: &Driver) -> &console::Console {
    match &d.t.slots[0].device {
        Device::Console(c) => c,
        _ => panic!("not a console"),
    }
}

#[test]
fn console_control_messages_from_a_broken_driver_do_no_harm() {
    let mut d = Driver::new(Device::Console(console::Console::default()));
    // Too short to be a message, or about another port: ignored.
    d.put(DATA, &[6, 0, 0, 0, 6, 0, 1, 0]);
    d.add(console::CONTROL_TX, &[(DATA + 4, 4, false)]);
    d.add(console::CONTROL_TX, &[(DATA, 8, false)]);
    d.notify(console::CONTROL_TX);
    assert_eq!(d.used_idx(console::CONTROL_TX), 2);
    assert!(!d.broken());
    d.add(console::RX, &[(DATA + 0x100, 64, true)]);
    assert_eq!(d.t.push_hvc_input(&mut d.ram, b"x"), 0);
    // Many messages and no buffer to answer in: the backlog is bounded.
    for i in 0..40 {
        console_control(&mut d, DATA + 0x200 + 8 * (i % 8), console::DEVICE_READY, 1);
    }
    assert_eq!(console_state(&d).control.len(), 16);
    // A control receive buffer that cannot hold a message breaks the device.
    d.add(console::CONTROL_RX, &[(CONTROL_IN, 4, true)]);
    d.notify(console::CONTROL_RX);
    assert!(d.broken());
    assert!(d.t.take_warnings()[0].starts_with("virtio-console (hvc0) "));
}

#[test]
fn seeded_rng_fills_requests_from_chacha20_and_host_rng_waits_for_input() {
    let mut d = Driver::new(Device::Rng(rng::Rng::new(rng::Entropy::Seeded, 42)));
    d.add(0, &[(DATA, 100, true)]);
    d.notify(0);
    assert_eq!(d.used(0, 0), (0, 100));
    let mut expected = [0u8; 100];
    rng::ChaCha20::from_seed(42).fill(&mut expected);
    assert_eq!(d.get(DATA, 100), expected);
    assert_eq!(d.t.entropy_wanted(&mut d.ram), 0);

    let mut d = Driver::new(Device::Rng(rng::Rng::new(rng::Entropy::Host, 42)));
    d.add(0, &[(DATA, 32, true)]);
    d.add(0, &[(DATA + 0x100, 16, true)]);
    d.notify(0);
    assert_eq!(d.used_idx(0), 0);
    assert_eq!(d.t.entropy_wanted(&mut d.ram), 48);
    assert_eq!(d.t.push_entropy(&mut d.ram, &[5; 40]), 40);
    assert_eq!(d.used(0, 0), (0, 32));
    assert_eq!(d.used(0, 1), (1, 8));
    assert_eq!(d.get(DATA + 0x100, 9), [5, 5, 5, 5, 5, 5, 5, 5, 0]);
    assert_eq!(d.t.entropy_wanted(&mut d.ram), 0);
}

#[test]
fn warnings_are_limited_over_the_machine_life() {
    let mut d = Driver::new(disk(8, false));
    let mut all = Vec::new();
    for _ in 0..100 {
        d.w(STATUS, 0);
        d.w(QUEUE_NUM, 3);
        d.w(QUEUE_READY, 1);
        all.extend(d.t.take_warnings());
    }
    assert_eq!(all.len(), 64);
    assert_eq!(all[63], "further virtio warnings are suppressed");
}

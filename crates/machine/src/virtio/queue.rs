//! Split virtqueues (virtio 1.x §2.7), walked with every guest-controlled
//! number checked.
//!
//! Assumptions, written down:
//! - The guest is hostile. Every index, address, length and flag read from
//!   guest RAM is checked before use; a violation is a [`QueueError`], never a
//!   panic, and the transport then marks the device DEVICE_NEEDS_RESET.
//! - All guest memory is reached through [`Ram`]: reads with `read_bytes`,
//!   writes with `write_bytes`, so a device write invalidates decoded code on
//!   that page and marks it dirty exactly as a hart's store would.
//! - A chain is collected whole (its buffers' addresses and lengths) before a
//!   device touches any data, so a malformed chain is refused before anything
//!   happens. Its length is bounded by the queue size (by the table size
//!   inside an indirect table, itself at most [`MAX_INDIRECT`] entries), so a
//!   descriptor loop ends as an error after at most that many steps.
//! - Every buffer must lie wholly inside RAM; lengths are added in u64.
//! - VIRTIO_F_EVENT_IDX is not offered: interrupts are suppressed only by the
//!   avail ring's VIRTQ_AVAIL_F_NO_INTERRUPT flag, so the rings are exactly
//!   4 + 2n (avail) and 4 + 8n (used) bytes long.
//! - Everything here is single-threaded and happens at a point the machine
//!   chooses (a hart's store to QueueNotify, or a round boundary), so there
//!   are no memory-ordering concerns.

use rewind_hart::Ram;

/// Size of one descriptor in the table.
pub const DESC_SIZE: u64 = 16;
/// The largest indirect table accepted, in descriptors (QEMU's limit too).
pub const MAX_INDIRECT: u32 = 1024;

pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const DESC_F_INDIRECT: u16 = 4;
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// What went wrong with a queue; each is a sentence that can follow
/// "virtio-blk 0: ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue {queue} has size {size}, which is not a power of two between 1 and {max}")]
    BadSize { queue: usize, size: u16, max: u16 },
    #[error("queue {queue}'s {ring} at {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        queue: usize,
        ring: &'static str,
        addr: u64,
        align: u64,
    },
    #[error("queue {queue}'s {ring} at {addr:#x} ({len} bytes) is not inside guest RAM")]
    RingOutsideRam {
        queue: usize,
        ring: &'static str,
        addr: u64,
        len: u64,
    },
    #[error("the {ring} access at {addr:#x} ({len} bytes) is not inside guest RAM")]
    RingUnreadable {
        ring: &'static str,
        addr: u64,
        len: u64,
    },
    #[error("the available index moved {ahead} entries past the device, more than the queue size {size}")]
    AvailOverrun { ahead: u16, size: u16 },
    #[error("the available ring names head descriptor {head}, outside the table of {size}")]
    BadHead { head: u16, size: u16 },
    #[error("descriptor {index} chains to {next}, outside the table of {size}")]
    BadNext { index: u16, next: u16, size: u32 },
    #[error(
        "the descriptor chain starting at {head} is longer than {limit} descriptors (a loop?)"
    )]
    ChainTooLong { head: u16, limit: u32 },
    #[error(
        "descriptor {index} points at {addr:#x} with length {len}, which is not inside guest RAM"
    )]
    BufferOutsideRam { index: u16, addr: u64, len: u32 },
    #[error("descriptor {index} is indirect, but indirect descriptors were not negotiated")]
    IndirectNotNegotiated { index: u16 },
    #[error("descriptor {index} inside an indirect table is itself indirect")]
    NestedIndirect { index: u16 },
    #[error("indirect descriptor {index} also has the NEXT flag")]
    IndirectWithNext { index: u16 },
    #[error("indirect descriptor {index} has length {len}, not a nonzero multiple of 16 up to {max} entries")]
    BadIndirectLength { index: u16, len: u32, max: u32 },
    #[error("device-readable descriptor {index} follows a device-writable one")]
    ReadableAfterWritable { index: u16 },
}

/// One buffer of a chain: guest-physical address and length, inside RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub addr: u64,
    pub len: u32,
}

/// A descriptor chain taken from the available ring, already checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// The head index, returned in the used ring.
    pub head: u16,
    /// Device-readable buffers, in order.
    pub readable: Vec<Buf>,
    /// Device-writable buffers, in order (all after the readable ones).
    pub writable: Vec<Buf>,
}

impl Chain {
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|b| b.len as u64).sum()
    }

    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|b| b.len as u64).sum()
    }
}

/// A split virtqueue as the transport configures it, and the device's
/// position in its rings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Queue {
    /// QueueNumMax: the largest size the device supports.
    pub max_size: u16,
    /// QueueNum: the size the driver chose (initially `max_size`).
    pub size: u16,
    pub ready: bool,
    /// Guest-physical addresses of the descriptor table, the available
    /// (driver) ring and the used (device) ring.
    pub desc_table: u64,
    pub avail_ring: u64,
    pub used_ring: u64,
    /// The next available-ring entry the device will take.
    pub next_avail: u16,
    /// The next used-ring entry the device will fill.
    pub next_used: u16,
}

#[derive(Clone, Copy, Debug)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

fn read_array<const N: usize>(ram: &Ram, addr: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    ram.read_bytes(addr, &mut b)?;
    Some(b)
}

impl Queue {
    pub fn new(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc_table: 0,
            avail_ring: 0,
            used_ring: 0,
            next_avail: 0,
            next_used: 0,
        }
    }

    /// Back to the state after a device reset.
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    /// Checks the size and the rings' placement (when the driver sets
    /// QueueReady). `queue` is the index, for the message.
    pub fn validate(&self, queue: usize, ram: &Ram) -> Result<(), QueueError> {
        let size = self.size;
        if size == 0 || !size.is_power_of_two() || size > self.max_size {
            return Err(QueueError::BadSize {
                queue,
                size,
                max: self.max_size,
            });
        }
        let n = size as u64;
        for (ring, addr, len, align) in [
            ("descriptor table", self.desc_table, DESC_SIZE * n, 16),
            ("available ring", self.avail_ring, 4 + 2 * n, 2),
            ("used ring", self.used_ring, 4 + 8 * n, 4),
        ] {
            if addr % align != 0 {
                return Err(QueueError::Misaligned {
                    queue,
                    ring,
                    addr,
                    align,
                });
            }
            if ram.offset_of(addr, len).is_none() {
                return Err(QueueError::RingOutsideRam {
                    queue,
                    ring,
                    addr,
                    len,
                });
            }
        }
        Ok(())
    }

    /// An error for ring memory that is not in RAM; `validate` makes this
    /// unreachable for a ready queue, but a restored state or a future bug
    /// must still not panic.
    fn ring_error(&self, ring: &'static str, addr: u64, len: u64) -> QueueError {
        QueueError::RingUnreadable { ring, addr, len }
    }

    /// The driver's available index.
    fn avail_idx(&self, ram: &Ram) -> Result<u16, QueueError> {
        let addr = self.avail_ring.wrapping_add(2);
        read_array::<2>(ram, addr)
            .map(u16::from_le_bytes)
            .ok_or_else(|| self.ring_error("available ring", addr, 2))
    }

    /// How many chains the driver has made available that the device has
    /// not taken yet.
    pub fn pending(&self, ram: &Ram) -> Result<u16, QueueError> {
        let ahead = self.avail_idx(ram)?.wrapping_sub(self.next_avail);
        if ahead > self.size {
            return Err(QueueError::AvailOverrun {
                ahead,
                size: self.size,
            });
        }
        Ok(ahead)
    }

    /// Takes the next available chain, checking all of it; `None` when the
    /// driver has made nothing more available.
    pub fn pop(&mut self, ram: &Ram, indirect_ok: bool) -> Result<Option<Chain>, QueueError> {
        if self.pending(ram)? == 0 {
            return Ok(None);
        }
        let slot = self.next_avail % self.size;
        let addr = self.avail_ring.wrapping_add(4 + 2 * slot as u64);
        let head = read_array::<2>(ram, addr)
            .map(u16::from_le_bytes)
            .ok_or_else(|| self.ring_error("available ring", addr, 2))?;
        if head >= self.size {
            return Err(QueueError::BadHead {
                head,
                size: self.size,
            });
        }
        let chain = self.walk(ram, head, indirect_ok)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    /// Gives back the chain `pop` just took (it stays available).
    pub fn unpop(&mut self) {
        self.next_avail = self.next_avail.wrapping_sub(1);
    }

    fn read_desc(ram: &Ram, table: u64, index: u16) -> Option<Desc> {
        let addr = table.checked_add(index as u64 * DESC_SIZE)?;
        let b = read_array::<16>(ram, addr)?;
        Some(Desc {
            addr: u64::from_le_bytes(b[0..8].try_into().ok()?),
            len: u32::from_le_bytes(b[8..12].try_into().ok()?),
            flags: u16::from_le_bytes(b[12..14].try_into().ok()?),
            next: u16::from_le_bytes(b[14..16].try_into().ok()?),
        })
    }

    fn walk(&self, ram: &Ram, head: u16, indirect_ok: bool) -> Result<Chain, QueueError> {
        let mut chain = Chain {
            head,
            ..Chain::default()
        };
        let mut table = self.desc_table;
        let mut table_len = self.size as u32;
        let mut budget = table_len;
        let mut index = head;
        let mut indirect = false;
        loop {
            if budget == 0 {
                return Err(QueueError::ChainTooLong {
                    head,
                    limit: table_len,
                });
            }
            budget -= 1;
            let d = Self::read_desc(ram, table, index).ok_or(QueueError::RingUnreadable {
                ring: if indirect {
                    "indirect table"
                } else {
                    "descriptor table"
                },
                addr: table,
                len: table_len as u64 * DESC_SIZE,
            })?;
            if d.flags & DESC_F_INDIRECT != 0 {
                if !indirect_ok {
                    return Err(QueueError::IndirectNotNegotiated { index });
                }
                if indirect {
                    return Err(QueueError::NestedIndirect { index });
                }
                if d.flags & DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext { index });
                }
                let entries = d.len / DESC_SIZE as u32;
                if d.len == 0 || d.len % DESC_SIZE as u32 != 0 || entries > MAX_INDIRECT {
                    return Err(QueueError::BadIndirectLength {
                        index,
                        len: d.len,
                        max: MAX_INDIRECT,
                    });
                }
                if ram.offset_of(d.addr, d.len as u64).is_none() {
                    return Err(QueueError::BufferOutsideRam {
                        index,
                        addr: d.addr,
                        len: d.len,
                    });
                }
                table = d.addr;
                table_len = entries;
                budget = entries;
                index = 0;
                indirect = true;
                continue;
            }
            if ram.offset_of(d.addr, d.len as u64).is_none() {
                return Err(QueueError::BufferOutsideRam {
                    index,
                    addr: d.addr,
                    len: d.len,
                });
            }
            let buf = Buf {
                addr: d.addr,
                len: d.len,
            };
            if d.flags & DESC_F_WRITE != 0 {
                chain.writable.push(buf);
            } else {
                if !chain.writable.is_empty() {
                    return Err(QueueError::ReadableAfterWritable { index });
                }
                chain.readable.push(buf);
            }
            if d.flags & DESC_F_NEXT == 0 {
                return Ok(chain);
            }
            if d.next as u32 >= table_len {
                return Err(QueueError::BadNext {
                    index,
                    next: d.next,
                    size: table_len,
                });
            }
            index = d.next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written.
    pub fn push_used(&mut self, ram: &mut Ram, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = self.next_used % self.size.max(1);
        let elem = self.used_ring.wrapping_add(4 + 8 * slot as u64);
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(head as u32).to_le_bytes());
        bytes[4..].copy_from_slice(&len.to_le_bytes());
        ram.write_bytes(elem, &bytes)
            .ok_or_else(|| self.ring_error("used ring", elem, 8))?;
        self.next_used = self.next_used.wrapping_add(1);
        let idx = self.used_ring.wrapping_add(2);
        ram.write_bytes(idx, &self.next_used.to_le_bytes())
            .ok_or_else(|| self.ring_error("used ring", idx, 2))?;
        Ok(())
    }

    /// True when the driver asked not to be interrupted for used buffers.
    pub fn interrupt_suppressed(&self, ram: &Ram) -> bool {
        self.read_u16_ram(ram, self.avail_ring)
            .is_some_and(|flags| flags & AVAIL_F_NO_INTERRUPT != 0)
    }

    fn read_u16_ram(&self, ram: &Ram, addr: u64) -> Option<u16> {
        read_array::<2>(ram, addr).map(u16::from_le_bytes)
    }
}

/// Reads a chain's device-readable buffers front to back.
/// Bytes in `bufs` from byte `offset` of buffer `index` to the end: what a
/// [`Reader`] has left to read or a [`Writer`] has left to fill.
fn bytes_after(bufs: &[Buf], index: usize, offset: u32) -> u64 {
    let rest: u64 = bufs.iter().skip(index).map(|b| b.len as u64).sum();
    rest - offset as u64
}

pub struct Reader<'c> {
    bufs: &'c [Buf],
    index: usize,
    offset: u32,
}

impl<'c> Reader<'c> {
    pub fn new(bufs: &'c [Buf]) -> Self {
        Reader {
            bufs,
            index: 0,
            offset: 0,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        bytes_after(self.bufs, self.index, self.offset)
    }

    /// Reads up to `out.len()` bytes; returns how many it read (fewer only
    /// at the end of the chain).
    pub fn read(&mut self, ram: &Ram, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() && self.index < self.bufs.len() {
            let b = self.bufs[self.index];
            let left = (b.len - self.offset) as usize;
            let n = left.min(out.len() - done);
            let addr = b.addr + self.offset as u64;
            if ram.read_bytes(addr, &mut out[done..done + n]).is_none() {
                // Checked when the chain was taken; stop rather than panic.
                return done;
            }
            done += n;
            self.offset += n as u32;
            if self.offset == b.len {
                self.index += 1;
                self.offset = 0;
            }
        }
        done
    }
}

/// Writes a chain's device-writable buffers front to back, through
/// [`Ram::write_bytes`].
pub struct Writer<'c> {
    bufs: &'c [Buf],
    index: usize,
    offset: u32,
    written: u64,
}

impl<'c> Writer<'c> {
    pub fn new(bufs: &'c [Buf]) -> Self {
        Writer {
            bufs,
            index: 0,
            offset: 0,
            written: 0,
        }
    }

    /// Bytes written so far (the used length).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Room left.
    pub fn remaining(&self) -> u64 {
        bytes_after(self.bufs, self.index, self.offset)
    }

    /// Writes as much of `data` as fits; returns how much that was.
    pub fn write(&mut self, ram: &mut Ram, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() && self.index < self.bufs.len() {
            let b = self.bufs[self.index];
            let left = (b.len - self.offset) as usize;
            let n = left.min(data.len() - done);
            let addr = b.addr + self.offset as u64;
            if ram.write_bytes(addr, &data[done..done + n]).is_none() {
                return done;
            }
            done += n;
            self.written += n as u64;
            self.offset += n as u32;
            if self.offset == b.len {
                self.index += 1;
                self.offset = 0;
            }
        }
        done
    }
}

impl Writer<'_> {
    /// Moves `n` bytes on without writing them (not counted as written).
    pub fn skip(&mut self, mut n: u64) {
        while n > 0 && self.index < self.bufs.len() {
            let left = (self.bufs[self.index].len - self.offset) as u64;
            let step = left.min(n);
            n -= step;
            self.offset += step as u32;
            if self.offset == self.bufs[self.index].len {
                self.index += 1;
                self.offset = 0;
            }
        }
    }
}

//! virtio-blk (virtio 1.x §5.2): read, write, flush and get-id on a
//! [`BlockBackend`].
//!
//! Assumptions, written down:
//! - One request queue of [`QUEUE_SIZE`]; a request is processed in full
//!   when the driver notifies, at that exact instruction, so completion
//!   timing depends only on guest execution. Disk contents are a pure
//!   function of the base image and the writes, so reads are deterministic.
//! - A request's layout is taken from the chain's bytes, not its descriptor
//!   boundaries: a 16-byte header read from the readable part, the data, and
//!   a status byte, the last writable byte.
//! - A chain too short for a header or a status byte is malformed: the
//!   device needs a reset (as on QEMU). Everything else the spec lets a
//!   request fail with gets a status: a range beyond the disk, a length that
//!   is not whole sectors or an offset that overflows is IOERR; a write to a
//!   read-only disk is IOERR (with VIRTIO_BLK_F_RO offered); an unknown type
//!   is UNSUPP. A host I/O error is IOERR and a warning.
//! - Data moves in chunks of at most [`CHUNK`] bytes, so a request for a huge
//!   range never allocates more than that on the host.
//! - The state hash covers the disk through `writes`: a running BLAKE3 hash of
//!   every write (offset and data) since the machine started, which with the
//!   base image determines the contents.

use super::queue::{Chain, Reader, Writer};
use super::{DeviceError, QueueCtx};
use crate::state::{mismatch, Saved, StateError};
use rewind_hart::Ram;
use std::any::Any;

pub const ID: u32 = 2;
pub const QUEUE_SIZE: u16 = 256;
pub const SECTOR: u64 = 512;
/// Largest piece of data moved at once.
pub const CHUNK: usize = 64 * 1024;
/// Segments per request the driver may use (the header and status take two
/// of the queue's descriptors).
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;

pub const F_SEG_MAX: u64 = 1 << 2;
pub const F_RO: u64 = 1 << 5;
pub const F_FLUSH: u64 = 1 << 9;

pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;
pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;
const ID_BYTES: usize = 20;

/// An error from a disk backend; shown to the user, never to the guest.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// What a virtio-blk device stores its sectors in. `Any` lets the program
/// that built the machine get its concrete disk back (e.g. to save an
/// overlay at exit).
pub trait BlockBackend: Any + Send {
    /// Size in bytes.
    fn size(&self) -> u64;
    fn read_only(&self) -> bool;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError>;
    fn flush(&mut self) -> Result<(), BackendError>;
    /// Whether the guest has written to it in a way a debugger cannot take
    /// back (into the image itself, say, or into a backend that keeps no
    /// history): a debugger must not take the machine back past such a
    /// write.
    fn irreversibly_written(&self) -> bool;
}

/// A disk held in host memory: for tests and fuzzing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemDisk {
    pub bytes: Vec<u8>,
    pub read_only: bool,
}

impl BlockBackend for MemDisk {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let range = range(offset, buf.len(), self.bytes.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        if self.read_only {
            return Err("the disk is read-only".into());
        }
        let range = range(offset, data.len(), self.bytes.len())?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    /// Keeps no history, so any disk the guest may write could have been.
    fn irreversibly_written(&self) -> bool {
        !self.read_only
    }
}

fn range(offset: u64, len: usize, size: usize) -> Result<std::ops::Range<usize>, BackendError> {
    let start = usize::try_from(offset).map_err(|_| "offset out of range")?;
    let end = start.checked_add(len).ok_or("offset out of range")?;
    if end > size {
        return Err("access beyond the end of the disk".into());
    }
    Ok(start..end)
}

/// The guest-visible state of a virtio-blk device.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlkState {
    /// Which --disk this is (0 is vda).
    pub index: usize,
    /// Capacity in 512-byte sectors.
    pub capacity: u64,
    pub read_only: bool,
    /// Running hash of every write: BLAKE3(previous || offset || data).
    pub writes: [u8; 32],
}

pub struct Blk {
    pub state: BlkState,
    pub backend: Box<dyn BlockBackend>,
    /// Host I/O errors to report (taken by the transport as warnings).
    pub host_errors: Vec<String>,
}

/// The backend is the host's and stays; only the guest-visible state is
/// stored.
impl Saved for Blk {
    type State = BlkState;

    fn saved(&self) -> BlkState {
        self.state.clone()
    }

    /// The capacity comes from the backend and the index from the
    /// configuration: a snapshot of another disk does not fit this one.
    fn check(&self, part: &str, state: &BlkState) -> Result<(), StateError> {
        if state.capacity != self.state.capacity || state.index != self.state.index {
            return Err(mismatch(part, "the disk has another size".to_string()));
        }
        Ok(())
    }

    fn apply(&mut self, state: BlkState) {
        self.state = state;
    }
}

impl Blk {
    pub fn new(index: usize, backend: Box<dyn BlockBackend>) -> Self {
        Blk {
            state: BlkState {
                index,
                capacity: backend.size() / SECTOR,
                read_only: backend.read_only(),
                writes: [0; 32],
            },
            backend,
            host_errors: Vec::new(),
        }
    }

    pub fn features(&self) -> u64 {
        let ro = if self.state.read_only { F_RO } else { 0 };
        F_SEG_MAX | F_FLUSH | ro
    }

    /// The configuration space: capacity, size_max (unused), seg_max.
    pub fn config(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(16);
        c.extend_from_slice(&self.state.capacity.to_le_bytes());
        c.extend_from_slice(&0u32.to_le_bytes());
        c.extend_from_slice(&SEG_MAX.to_le_bytes());
        c
    }

    /// The serial number get-id returns: "rewind-disk-N", NUL-padded.
    fn serial(&self) -> [u8; ID_BYTES] {
        let mut id = [0u8; ID_BYTES];
        let text = format!("rewind-disk-{}", self.state.index);
        let n = text.len().min(ID_BYTES);
        id[..n].copy_from_slice(&text.as_bytes()[..n]);
        id
    }

    pub fn notify(&mut self, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        while let Some(chain) = ctx.pop(0)? {
            let len = self.request(ctx.ram, &chain)?;
            ctx.complete(0, chain.head, len)?;
        }
        Ok(())
    }

    /// Performs one request; returns the number of bytes written to the
    /// chain (the used length).
    pub fn request(&mut self, ram: &mut Ram, chain: &Chain) -> Result<u32, DeviceError> {
        let mut reader = Reader::new(&chain.readable);
        let mut header = [0u8; 16];
        if reader.read(ram, &mut header) != header.len() {
            return Err(DeviceError::Request(format!(
                "request {} has {} device-readable bytes, fewer than the 16-byte header",
                chain.head,
                chain.readable_len()
            )));
        }
        let writable = chain.writable_len();
        if writable == 0 {
            return Err(DeviceError::Request(format!(
                "request {} has no device-writable byte for its status",
                chain.head
            )));
        }
        if writable > u32::MAX as u64 {
            return Err(DeviceError::Request(format!(
                "request {} has {writable} device-writable bytes, more than a used length can report",
                chain.head
            )));
        }
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        let data_room = writable - 1;
        let mut writer = Writer::new(&chain.writable);
        let status = match kind {
            T_IN => self.read(ram, sector, data_room, &mut writer),
            T_OUT => self.write(ram, sector, &mut reader),
            T_FLUSH => self.host(|d| d.flush(), "flush"),
            T_GET_ID => {
                let id = self.serial();
                let n = (data_room as usize).min(ID_BYTES);
                writer.write(ram, &id[..n]);
                S_OK
            }
            _ => S_UNSUPP,
        };
        // The status is the last writable byte, whatever came before it.
        writer.skip(writable - 1 - writer.written().min(writable - 1));
        writer.write(ram, &[status]);
        Ok(writer.written() as u32)
    }

    /// The byte range of a request, if it is whole sectors inside the disk.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR) {
            return None;
        }
        let start = sector.checked_mul(SECTOR)?;
        let end = start.checked_add(len)?;
        (end <= self.state.capacity * SECTOR).then_some(start)
    }

    fn host(
        &mut self,
        op: impl FnOnce(&mut dyn BlockBackend) -> Result<(), BackendError>,
        what: &str,
    ) -> u8 {
        match op(self.backend.as_mut()) {
            Ok(()) => S_OK,
            Err(e) => {
                self.host_errors
                    .push(format!("the host failed a {what}: {e}"));
                S_IOERR
            }
        }
    }

    fn read(&mut self, ram: &mut Ram, sector: u64, len: u64, writer: &mut Writer) -> u8 {
        let Some(mut offset) = self.range(sector, len) else {
            return S_IOERR;
        };
        let mut left = len;
        let mut buf = vec![0u8; (len as usize).min(CHUNK)];
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            let status = self.host(|d| d.read_at(offset, &mut buf[..n]), "read");
            if status != S_OK {
                return status;
            }
            writer.write(ram, &buf[..n]);
            offset += n as u64;
            left -= n as u64;
        }
        S_OK
    }

    fn write(&mut self, ram: &Ram, sector: u64, reader: &mut Reader) -> u8 {
        let len = reader.remaining();
        if self.state.read_only {
            return S_IOERR;
        }
        let Some(mut offset) = self.range(sector, len) else {
            return S_IOERR;
        };
        let mut left = len;
        let mut buf = vec![0u8; (len as usize).min(CHUNK)];
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            reader.read(ram, &mut buf[..n]);
            let status = self.host(|d| d.write_at(offset, &buf[..n]), "write");
            if status != S_OK {
                return status;
            }
            let mut h = blake3::Hasher::new();
            h.update(&self.state.writes);
            h.update(&offset.to_le_bytes());
            h.update(&buf[..n]);
            self.state.writes = *h.finalize().as_bytes();
            offset += n as u64;
            left -= n as u64;
        }
        S_OK
    }
}

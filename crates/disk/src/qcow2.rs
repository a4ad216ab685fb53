//! qcow2 images as `qemu-img` makes them, read-only.
//!
//! Assumptions, all checked when an image is opened or a cluster is looked up:
//! - Versions 2 and 3, clusters of 512 bytes to 2 MiB (cluster_bits 9..=21),
//!   no encryption, no external data file, no extended L2 entries, zlib (raw
//!   deflate) compression only; any incompatible feature bit we do not know
//!   is refused. The dirty bit is accepted: it concerns refcounts, which a
//!   reader never uses.
//! - Only the active L1/L2 tables are read; refcounts and internal snapshots
//!   are ignored. The L1 table and every L2 table it names lie wholly inside
//!   the file and are cluster-aligned, and the L1 table covers the virtual
//!   size (checked at open, so a lookup never indexes past it).
//! - A data cluster starts inside the file; bytes of a data or compressed
//!   cluster past the end of the file read as zeros, as QEMU reads them (the
//!   last compressed cluster's sector-rounded extent usually ends past EOF).
//! - Unallocated clusters read from the backing image, or as zeros past its
//!   end or without one; zero-flagged clusters read as zeros.
//!
//! Memory is bounded: the L1 table is at most 32 MiB (QEMU's own limit) and no
//! larger than the file, the L2 cache holds at most 4 MiB of tables, and one
//! decompressed cluster (at most 2 MiB) is cached.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use flate2::{Decompress, FlushDecompress, Status};

use crate::image::Image;
use crate::source::ImageSource;
use crate::DiskError;

/// The first four bytes of every qcow image.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";

const V2_HEADER_LEN: u64 = 72;
const V3_HEADER_LEN: u64 = 104;
const MIN_CLUSTER_BITS: u32 = 9;
const MAX_CLUSTER_BITS: u32 = 21;
/// QEMU's QCOW_MAX_L1_SIZE.
const MAX_L1_BYTES: u64 = 32 << 20;
const MAX_BACKING_NAME: u64 = 1023;
const L2_CACHE_BYTES: u64 = 4 << 20;

const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const OFLAG_COMPRESSED: u64 = 1 << 62;
const OFLAG_ZERO: u64 = 1;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FEATURE_NAMES: u32 = 0x6803_f857;
const FEATURE_NAME_ENTRY: usize = 48;

/// A validated qcow2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// log2 of the cluster size, 9..=21.
    pub cluster_bits: u32,
    /// The virtual (guest-visible) size in bytes.
    pub size: u64,
    /// Entries in the L1 table (at least enough to cover `size`).
    pub l1_size: u32,
    /// Where the L1 table starts in the file (cluster-aligned, inside the file).
    pub l1_table_offset: u64,
    /// The backing file's name as stored, if there is one.
    pub backing_file: Option<Vec<u8>>,
    /// The backing file's format from the header extension, if given.
    pub backing_format: Option<String>,
    /// Incompatible feature bits (only ones this reader accepts).
    pub incompatible_features: u64,
}

impl Header {
    /// Bytes in one cluster.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// The number of L1 entries needed to map `size` bytes.
    fn l1_entries_needed(&self) -> u64 {
        let cluster_size = self.cluster_size();
        self.size.div_ceil(cluster_size).div_ceil(cluster_size / 8)
    }
}

fn damaged(path: &Path, offset: u64, what: impl Into<String>) -> DiskError {
    DiskError::Damaged {
        path: path.to_owned(),
        offset,
        what: what.into(),
    }
}

fn unsupported(path: &Path, what: impl Into<String>) -> DiskError {
    DiskError::Unsupported {
        path: path.to_owned(),
        what: what.into(),
    }
}

fn read(path: &Path, src: &dyn ImageSource, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
    src.read_at(offset, buf).map_err(|source| DiskError::Io {
        path: path.to_owned(),
        op: "read",
        offset: Some(offset),
        source,
    })
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(v)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

/// Reads and checks the header, its extensions and the backing file name.
pub fn parse_header(path: &Path, src: &dyn ImageSource) -> Result<Header, DiskError> {
    let file_len = src.len();
    if file_len < V2_HEADER_LEN {
        return Err(damaged(
            path,
            0,
            format!(
                "the header is truncated: the file has {file_len} bytes, a qcow2 header needs at least {V2_HEADER_LEN}"
            ),
        ));
    }
    // The fixed fields of version 3 plus the compression type byte.
    let mut h = [0u8; 112];
    let have = file_len.min(h.len() as u64) as usize;
    read(path, src, 0, &mut h[..have])?;
    if h[..4] != MAGIC {
        return Err(damaged(
            path,
            0,
            "the file does not start with the qcow2 magic",
        ));
    }
    let version = be32(&h, 4);
    match version {
        2 | 3 => {}
        1 => return Err(unsupported(path, "the original qcow format (version 1)")),
        v => {
            return Err(unsupported(
                path,
                format!("qcow2 version {v} (Rewind reads versions 2 and 3)"),
            ))
        }
    }
    let cluster_bits = be32(&h, 20);
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
        return Err(damaged(
            path,
            20,
            format!(
                "cluster_bits is {cluster_bits}; qcow2 allows 9 to 21 (512-byte to 2 MiB clusters)"
            ),
        ));
    }
    let cluster_size = 1u64 << cluster_bits;

    let (header_length, incompatible) = if version == 2 {
        (V2_HEADER_LEN, 0)
    } else {
        if file_len < V3_HEADER_LEN {
            return Err(damaged(
                path,
                0,
                format!(
                    "the version 3 header is truncated: the file has {file_len} bytes, the header needs {V3_HEADER_LEN}"
                ),
            ));
        }
        let hl = u64::from(be32(&h, 100));
        if hl < V3_HEADER_LEN {
            return Err(damaged(
                path,
                100,
                format!("header_length is {hl}; version 3 needs at least {V3_HEADER_LEN}"),
            ));
        }
        if hl > cluster_size {
            return Err(damaged(
                path,
                100,
                format!("header_length {hl} is larger than a cluster ({cluster_size} bytes)"),
            ));
        }
        if hl > file_len {
            return Err(damaged(
                path,
                100,
                format!("the header ({hl} bytes) is longer than the file ({file_len} bytes)"),
            ));
        }
        (hl, be64(&h, 72))
    };

    match be32(&h, 32) {
        0 => {}
        1 => return Err(unsupported(path, "AES encryption")),
        2 => return Err(unsupported(path, "LUKS encryption")),
        m => {
            return Err(damaged(
                path,
                32,
                format!("the encryption method {m} is unknown"),
            ))
        }
    }

    // The backing file name.
    let backing_file_offset = be64(&h, 8);
    let backing_file_size = u64::from(be32(&h, 16));
    let mut backing_file = None;
    if backing_file_offset != 0 && backing_file_size != 0 {
        if backing_file_size > MAX_BACKING_NAME {
            return Err(damaged(
                path,
                16,
                format!(
                    "the backing file name is {backing_file_size} bytes long; the limit is {MAX_BACKING_NAME}"
                ),
            ));
        }
        let end = backing_file_offset.checked_add(backing_file_size);
        if end.is_none_or(|e| e > cluster_size || e > file_len) {
            return Err(damaged(
                path,
                8,
                format!(
                    "the backing file name ({backing_file_size} bytes at {backing_file_offset:#x}) does not lie within the first cluster of the file"
                ),
            ));
        }
        let mut name = vec![0u8; backing_file_size as usize];
        read(path, src, backing_file_offset, &mut name)?;
        if name.contains(&0) {
            return Err(damaged(
                path,
                backing_file_offset,
                "the backing file name contains a NUL byte",
            ));
        }
        backing_file = Some(name);
    }

    // Header extensions, between the header and the backing file name (or
    // the end of the first cluster).
    let ext_end = if backing_file_offset != 0 {
        backing_file_offset
    } else {
        cluster_size
    }
    .min(cluster_size)
    .min(file_len);
    let mut backing_format = None;
    let mut feature_names: BTreeMap<(u8, u8), String> = BTreeMap::new();
    if ext_end > header_length {
        let mut area = vec![0u8; (ext_end - header_length) as usize];
        read(path, src, header_length, &mut area)?;
        let mut i = 0usize;
        while i + 8 <= area.len() {
            let at = header_length + i as u64;
            let ty = be32(&area, i);
            let len = be32(&area, i + 4) as usize;
            if ty == EXT_END {
                break;
            }
            let start = i + 8;
            if len > area.len() - start {
                return Err(damaged(
                    path,
                    at,
                    format!(
                        "header extension {ty:#x} is {len} bytes long and runs past the end of the extension area at {ext_end:#x}"
                    ),
                ));
            }
            let data = &area[start..start + len];
            match ty {
                EXT_BACKING_FORMAT => {
                    let name = String::from_utf8_lossy(data);
                    backing_format = Some(name.trim_end_matches('\0').to_owned());
                }
                EXT_FEATURE_NAMES => {
                    for entry in data.chunks_exact(FEATURE_NAME_ENTRY) {
                        let name = &entry[2..];
                        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                        feature_names.insert(
                            (entry[0], entry[1]),
                            String::from_utf8_lossy(name).into_owned(),
                        );
                    }
                }
                // Unknown extensions may be ignored (the specification says
                // so); the ones for features we refuse are refused by their
                // feature bits below.
                _ => {}
            }
            i = start + len.next_multiple_of(8);
        }
    }

    // Incompatible features.
    let unknown = incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        let bits: Vec<String> = (0..64u8)
            .filter(|b| unknown & (1 << b) != 0)
            .map(|b| match feature_names.get(&(0, b)) {
                Some(name) => format!("bit {b} ({name:?})"),
                None => format!("bit {b}"),
            })
            .collect();
        return Err(unsupported(
            path,
            format!("unknown incompatible features ({})", bits.join(", ")),
        ));
    }
    if incompatible & INCOMPAT_CORRUPT != 0 {
        return Err(damaged(
            path,
            72,
            "QEMU has marked the image corrupt (incompatible feature bit 1); `qemu-img check -r all` may repair it",
        ));
    }
    if incompatible & INCOMPAT_DATA_FILE != 0 {
        return Err(unsupported(
            path,
            "an external data file (incompatible feature bit 2)",
        ));
    }
    if incompatible & INCOMPAT_EXTL2 != 0 {
        return Err(unsupported(
            path,
            "extended L2 entries with subclusters (incompatible feature bit 4)",
        ));
    }
    if header_length > V3_HEADER_LEN {
        match h[104] {
            0 => {}
            1 => return Err(unsupported(path, "zstd compression")),
            t => {
                return Err(damaged(
                    path,
                    104,
                    format!("the compression type {t} is unknown"),
                ))
            }
        }
    } else if incompatible & INCOMPAT_COMPRESSION != 0 {
        return Err(damaged(
            path,
            72,
            format!(
                "incompatible feature bit 3 announces a compression type, but the header ({header_length} bytes) has no room for one"
            ),
        ));
    }

    // Size and L1 table.
    let header = Header {
        version,
        cluster_bits,
        size: be64(&h, 24),
        l1_size: be32(&h, 36),
        l1_table_offset: be64(&h, 40),
        backing_file,
        backing_format,
        incompatible_features: incompatible,
    };
    let l1_bytes = u64::from(header.l1_size) * 8;
    if l1_bytes > MAX_L1_BYTES {
        return Err(damaged(
            path,
            36,
            format!(
                "the L1 table has {} entries, more than QEMU allows ({})",
                header.l1_size,
                MAX_L1_BYTES / 8
            ),
        ));
    }
    let needed = header.l1_entries_needed();
    if needed > u64::from(header.l1_size) {
        return Err(damaged(
            path,
            24,
            format!(
                "the virtual size of {} bytes needs {needed} L1 entries but the L1 table has only {}",
                header.size, header.l1_size
            ),
        ));
    }
    if header.l1_size > 0 {
        if !header.l1_table_offset.is_multiple_of(cluster_size) {
            return Err(damaged(
                path,
                40,
                format!(
                    "the L1 table offset {:#x} is not aligned to a cluster",
                    header.l1_table_offset
                ),
            ));
        }
        let end = header.l1_table_offset.checked_add(l1_bytes);
        if end.is_none_or(|e| e > file_len) {
            return Err(damaged(
                path,
                40,
                format!(
                    "the L1 table at {:#x} ({l1_bytes} bytes) runs past the end of the file ({file_len} bytes)",
                    header.l1_table_offset
                ),
            ));
        }
    }
    Ok(header)
}

/// Where the bytes of one guest cluster are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mapping {
    /// Not in this image: the backing image's, or zeros.
    Unallocated,
    /// Reads as zeros.
    Zero,
    /// At this cluster-aligned host offset.
    Data(u64),
    /// Deflated, `size` bytes at most at host offset `offset`.
    Compressed { offset: u64, size: u64 },
}

/// A decompressed cluster and the (offset, size) it came from.
struct Inflated {
    key: (u64, u64),
    data: Box<[u8]>,
}

#[derive(Default)]
struct Cache {
    clock: u64,
    /// L2 table offset → (last use, entries).
    l2: BTreeMap<u64, (u64, Box<[u64]>)>,
    /// Last use → L2 table offset, for eviction.
    lru: BTreeMap<u64, u64>,
    /// The last decompressed cluster, keyed by its (offset, size).
    inflated: Option<Inflated>,
}

/// An open qcow2 image.
pub(crate) struct Qcow2 {
    path: PathBuf,
    src: Box<dyn ImageSource>,
    header: Header,
    /// The L1 entries that cover the virtual size, each checked.
    l1: Vec<u64>,
    backing: Option<Box<Image>>,
    max_l2_tables: usize,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Qcow2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("backing", &self.backing)
            .finish_non_exhaustive()
    }
}

impl Qcow2 {
    /// Parses the header and loads and checks the L1 table. The backing file
    /// (if the header names one) is not opened: see [`Qcow2::set_backing`].
    pub fn open(path: &Path, src: Box<dyn ImageSource>) -> Result<Qcow2, DiskError> {
        let header = parse_header(path, &*src)?;
        let file_len = src.len();
        let cluster_size = header.cluster_size();
        // Bounded by the check against l1_size, itself bounded by 32 MiB and
        // by the file's length.
        let needed = header.l1_entries_needed() as usize;
        let mut raw = vec![0u8; needed * 8];
        read(path, &*src, header.l1_table_offset, &mut raw)?;
        let mut l1 = Vec::with_capacity(needed);
        for (i, e) in raw.chunks_exact(8).enumerate() {
            let entry = be64(e, 0);
            let l2 = entry & L1E_OFFSET_MASK;
            let at = header.l1_table_offset + i as u64 * 8;
            if l2 != 0 {
                if !l2.is_multiple_of(cluster_size) {
                    return Err(damaged(
                        path,
                        at,
                        format!("L1 entry {i} points to an L2 table at {l2:#x}, which is not aligned to a cluster"),
                    ));
                }
                if l2.checked_add(cluster_size).is_none_or(|e| e > file_len) {
                    return Err(damaged(
                        path,
                        at,
                        format!(
                            "L1 entry {i} points to an L2 table at {l2:#x}, past the end of the file ({file_len} bytes)"
                        ),
                    ));
                }
            }
            l1.push(l2);
        }
        Ok(Qcow2 {
            path: path.to_owned(),
            src,
            max_l2_tables: (L2_CACHE_BYTES / cluster_size).max(1) as usize,
            header,
            l1,
            backing: None,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The header, as checked.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The virtual size in bytes.
    pub fn size(&self) -> u64 {
        self.header.size
    }

    /// The backing file name as stored in the image.
    pub fn backing_name(&self) -> Option<&Path> {
        self.header
            .backing_file
            .as_deref()
            .map(|b| Path::new(OsStr::from_bytes(b)))
    }

    /// Attaches the opened backing image.
    pub fn set_backing(&mut self, backing: Image) {
        self.backing = Some(Box::new(backing));
    }

    /// The backing image, once attached.
    pub fn backing(&self) -> Option<&Image> {
        self.backing.as_deref()
    }

    fn cluster_size(&self) -> u64 {
        self.header.cluster_size()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache is consistent at every point a panic could leave it.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The L2 entry `index` of the table at `l2` (checked at open).
    fn l2_entry(&self, l2: u64, index: usize) -> Result<u64, DiskError> {
        let mut cache = self.lock();
        cache.clock += 1;
        let now = cache.clock;
        if let Some((used, table)) = cache.l2.get_mut(&l2) {
            let old = std::mem::replace(used, now);
            let entry = table.get(index).copied();
            cache.lru.remove(&old);
            cache.lru.insert(now, l2);
            return entry.ok_or_else(|| damaged(&self.path, l2, "an L2 index is out of range"));
        }
        let mut raw = vec![0u8; self.cluster_size() as usize];
        read(&self.path, &*self.src, l2, &mut raw)?;
        let table: Box<[u64]> = raw.chunks_exact(8).map(|e| be64(e, 0)).collect();
        let entry = table.get(index).copied();
        while cache.l2.len() >= self.max_l2_tables {
            let Some((_, victim)) = cache.lru.pop_first() else {
                break;
            };
            cache.l2.remove(&victim);
        }
        cache.l2.insert(l2, (now, table));
        cache.lru.insert(now, l2);
        entry.ok_or_else(|| damaged(&self.path, l2, "an L2 index is out of range"))
    }

    fn lookup(&self, guest: u64) -> Result<Mapping, DiskError> {
        let bits = self.header.cluster_bits;
        let cluster = guest >> bits;
        let l2_bits = bits - 3;
        let l1_index = cluster >> l2_bits;
        let l2_index = (cluster & ((1 << l2_bits) - 1)) as usize;
        let Some(&l2) = usize::try_from(l1_index).ok().and_then(|i| self.l1.get(i)) else {
            return Err(damaged(
                &self.path,
                self.header.l1_table_offset,
                format!("the L1 table does not cover guest offset {guest:#x}"),
            ));
        };
        if l2 == 0 {
            return Ok(Mapping::Unallocated);
        }
        let entry = self.l2_entry(l2, l2_index)?;
        let at = l2 + l2_index as u64 * 8;
        let file_len = self.src.len();
        if entry & OFLAG_COMPRESSED != 0 {
            let shift = 62 - (bits - 8);
            let offset = entry & ((1u64 << shift) - 1);
            let sectors = ((entry >> shift) & ((1u64 << (bits - 8)) - 1)) + 1;
            let size = sectors * 512 - (offset & 511);
            if offset >= file_len {
                return Err(damaged(
                    &self.path,
                    at,
                    format!(
                        "the L2 entry for guest offset {guest:#x} points to compressed data at {offset:#x}, past the end of the file ({file_len} bytes)"
                    ),
                ));
            }
            return Ok(Mapping::Compressed { offset, size });
        }
        if entry & OFLAG_ZERO != 0 {
            return Ok(Mapping::Zero);
        }
        let host = entry & L2E_OFFSET_MASK;
        if host == 0 {
            return Ok(Mapping::Unallocated);
        }
        if !host.is_multiple_of(self.cluster_size()) {
            return Err(damaged(
                &self.path,
                at,
                format!(
                    "the L2 entry for guest offset {guest:#x} points to data at {host:#x}, which is not aligned to a cluster"
                ),
            ));
        }
        if host >= file_len {
            return Err(damaged(
                &self.path,
                at,
                format!(
                    "the L2 entry for guest offset {guest:#x} points to data at {host:#x}, past the end of the file ({file_len} bytes)"
                ),
            ));
        }
        Ok(Mapping::Data(host))
    }

    /// Reads host bytes; the part past the end of the file reads as zeros.
    fn read_host(&self, host: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let avail = self.src.len().saturating_sub(host).min(buf.len() as u64) as usize;
        let (inside, outside) = buf.split_at_mut(avail);
        if !inside.is_empty() {
            read(&self.path, &*self.src, host, inside)?;
        }
        outside.fill(0);
        Ok(())
    }

    fn read_backing(&self, guest: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let Some(backing) = &self.backing else {
            buf.fill(0);
            return Ok(());
        };
        let avail = backing.size().saturating_sub(guest).min(buf.len() as u64) as usize;
        let (inside, outside) = buf.split_at_mut(avail);
        if !inside.is_empty() {
            backing.read_at(guest, inside)?;
        }
        outside.fill(0);
        Ok(())
    }

    fn inflate(&self, guest: u64, offset: u64, size: u64) -> Result<Box<[u8]>, DiskError> {
        let cluster_size = self.cluster_size() as usize;
        // At most 2^(cluster_bits - 8) sectors: twice a cluster.
        let mut input = vec![0u8; size as usize];
        self.read_host(offset, &mut input)?;
        let mut out = vec![0u8; cluster_size].into_boxed_slice();
        let mut inflater = Decompress::new(false);
        loop {
            let (done_in, done_out) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(
                    &input[done_in as usize..],
                    &mut out[done_out as usize..],
                    FlushDecompress::Finish,
                )
                .map_err(|e| {
                    damaged(
                        &self.path,
                        offset,
                        format!("the compressed cluster for guest offset {guest:#x} does not inflate: {e}"),
                    )
                })?;
            if inflater.total_out() as usize == cluster_size {
                return Ok(out);
            }
            let progress = inflater.total_in() != done_in || inflater.total_out() != done_out;
            if status == Status::StreamEnd || !progress {
                return Err(damaged(
                    &self.path,
                    offset,
                    format!(
                        "the compressed cluster for guest offset {guest:#x} inflates to {} bytes instead of {cluster_size}",
                        inflater.total_out()
                    ),
                ));
            }
        }
    }

    fn read_compressed(
        &self,
        guest: u64,
        offset: u64,
        size: u64,
        in_cluster: usize,
        buf: &mut [u8],
    ) -> Result<(), DiskError> {
        let mut cache = self.lock();
        let key = (offset, size);
        let hit = matches!(&cache.inflated, Some(i) if i.key == key);
        if !hit {
            cache.inflated = None;
            let data = self.inflate(guest, offset, size)?;
            cache.inflated = Some(Inflated { key, data });
        }
        if let Some(Inflated { data, .. }) = &cache.inflated {
            buf.copy_from_slice(&data[in_cluster..in_cluster + buf.len()]);
        }
        Ok(())
    }

    /// Reads guest bytes `offset..offset + buf.len()`, which the caller has
    /// checked lie within the virtual size.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let cluster_size = self.cluster_size();
        // A run of data clusters that are contiguous in the file too:
        // (host offset, start in buf, length).
        let mut run: Option<(u64, usize, usize)> = None;
        let mut pos = 0usize;
        while pos < buf.len() {
            let guest = offset + pos as u64;
            let in_cluster = guest & (cluster_size - 1);
            let n = ((cluster_size - in_cluster) as usize).min(buf.len() - pos);
            match self.lookup(guest)? {
                Mapping::Data(host) => {
                    let host = host + in_cluster;
                    match &mut run {
                        Some((start, _, len)) if *start + *len as u64 == host => *len += n,
                        _ => {
                            self.finish_run(run.take(), buf)?;
                            run = Some((host, pos, n));
                        }
                    }
                }
                Mapping::Unallocated => {
                    self.finish_run(run.take(), buf)?;
                    self.read_backing(guest, &mut buf[pos..pos + n])?;
                }
                Mapping::Zero => {
                    self.finish_run(run.take(), buf)?;
                    buf[pos..pos + n].fill(0);
                }
                Mapping::Compressed { offset, size } => {
                    self.finish_run(run.take(), buf)?;
                    self.read_compressed(
                        guest,
                        offset,
                        size,
                        in_cluster as usize,
                        &mut buf[pos..pos + n],
                    )?;
                }
            }
            pos += n;
        }
        self.finish_run(run, buf)
    }

    fn finish_run(
        &self,
        run: Option<(u64, usize, usize)>,
        buf: &mut [u8],
    ) -> Result<(), DiskError> {
        match run {
            Some((host, start, len)) => self.read_host(host, &mut buf[start..start + len]),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal version 3 image: header, L1 at cluster 1, one L2 table at
    /// cluster 2, data at cluster 3; 512-byte clusters, 4 KiB virtual size.
    fn tiny() -> Vec<u8> {
        tiny_with(512)
    }

    fn tiny_with(cs: usize) -> Vec<u8> {
        let mut img = vec![0u8; cs * 4];
        img[..4].copy_from_slice(&MAGIC);
        img[4..8].copy_from_slice(&3u32.to_be_bytes());
        img[20..24].copy_from_slice(&cs.trailing_zeros().to_be_bytes());
        img[24..32].copy_from_slice(&8192u64.to_be_bytes());
        img[36..40].copy_from_slice(&1u32.to_be_bytes());
        img[40..48].copy_from_slice(&(cs as u64).to_be_bytes());
        img[96..100].copy_from_slice(&4u32.to_be_bytes());
        img[100..104].copy_from_slice(&104u32.to_be_bytes());
        img[cs..cs + 8].copy_from_slice(&((2 * cs) as u64 | 1 << 63).to_be_bytes());
        // Guest cluster 1 → host cluster 3.
        img[2 * cs + 8..2 * cs + 16].copy_from_slice(&((3 * cs) as u64 | 1 << 63).to_be_bytes());
        // Guest cluster 2 → zero flag.
        img[2 * cs + 16..2 * cs + 24].copy_from_slice(&1u64.to_be_bytes());
        img[3 * cs..4 * cs].fill(0x5a);
        img
    }

    fn open(bytes: Vec<u8>) -> Result<Qcow2, DiskError> {
        Qcow2::open(Path::new("t.qcow2"), Box::new(bytes))
    }

    #[test]
    fn reads_mapped_unallocated_and_zero_clusters() {
        let q = open(tiny()).unwrap();
        let mut buf = vec![0xffu8; 4096];
        q.read_at(0, &mut buf).unwrap();
        assert!(buf[..512].iter().all(|&b| b == 0));
        assert!(buf[512..1024].iter().all(|&b| b == 0x5a));
        assert!(buf[1024..].iter().all(|&b| b == 0));
        let mut one = [0u8; 3];
        q.read_at(1022, &mut one).unwrap();
        assert_eq!(one, [0x5a, 0x5a, 0]);
    }

    fn patch(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut img = tiny();
        img[at..at + bytes.len()].copy_from_slice(bytes);
        img
    }

    fn error(img: Vec<u8>) -> String {
        open(img).unwrap_err().to_string()
    }

    #[test]
    fn header_damage_is_named_with_its_offset() {
        assert!(error(tiny()[..50].to_vec()).contains("truncated"));
        assert!(error(patch(20, &40u32.to_be_bytes())).contains("cluster_bits is 40"));
        let e = error(patch(24, &u64::MAX.to_be_bytes()));
        assert!(
            e.contains("L1 entries") && e.contains("at offset 0x18"),
            "{e}"
        );
        let e = error(patch(40, &0x10_0000u64.to_be_bytes()));
        assert!(e.contains("runs past the end of the file"), "{e}");
        let e = error(patch(512, &(0x10_0000u64).to_be_bytes()));
        assert!(
            e.contains("L1 entry 0") && e.contains("at offset 0x200"),
            "{e}"
        );
        let e = error(patch(100, &50u32.to_be_bytes()));
        assert!(e.contains("header_length"), "{e}");
        let e = error(patch(36, &u32::MAX.to_be_bytes()));
        assert!(e.contains("more than QEMU allows"), "{e}");
    }

    #[test]
    fn refused_features_are_named() {
        let e = error(patch(72, &(1u64 << 9).to_be_bytes()));
        assert!(e.contains("unknown incompatible features (bit 9)"), "{e}");
        assert!(error(patch(72, &4u64.to_be_bytes())).contains("external data file"));
        assert!(error(patch(72, &16u64.to_be_bytes())).contains("extended L2"));
        assert!(error(patch(72, &2u64.to_be_bytes())).contains("corrupt"));
        assert!(error(patch(32, &1u32.to_be_bytes())).contains("AES encryption"));
        assert!(error(patch(4, &1u32.to_be_bytes())).contains("version 1"));
        // The dirty bit only concerns refcounts.
        open(patch(72, &1u64.to_be_bytes())).unwrap();
    }

    #[test]
    fn unknown_feature_names_come_from_the_feature_table() {
        let mut img = patch(72, &(1u64 << 7).to_be_bytes());
        let ext = 104;
        img[ext..ext + 4].copy_from_slice(&EXT_FEATURE_NAMES.to_be_bytes());
        img[ext + 4..ext + 8].copy_from_slice(&48u32.to_be_bytes());
        img[ext + 8] = 0;
        img[ext + 9] = 7;
        img[ext + 10..ext + 16].copy_from_slice(b"frobby");
        let e = error(img);
        assert!(e.contains("bit 7 (\"frobby\")"), "{e}");
    }

    #[test]
    fn hostile_l2_entries_are_errors_on_read() {
        let cs = 1024;
        let mut img = tiny_with(cs);
        img[2 * cs + 24..2 * cs + 32].copy_from_slice(&(0x7000_0000u64).to_be_bytes());
        img[2 * cs + 32..2 * cs + 40].copy_from_slice(&(0x600u64).to_be_bytes());
        let q = open(img).unwrap();
        let mut buf = [0u8; 16];
        let e = q.read_at(3 * 1024, &mut buf).unwrap_err().to_string();
        assert!(
            e.contains("past the end of the file") && e.contains("0x818"),
            "{e}"
        );
        let e = q.read_at(4 * 1024, &mut buf).unwrap_err().to_string();
        assert!(e.contains("not aligned") && e.contains("0x820"), "{e}");
    }

    #[test]
    fn compressed_garbage_is_an_error() {
        let cs = 512;
        let mut img = tiny();
        let entry = OFLAG_COMPRESSED | (3 * cs as u64);
        img[2 * cs + 8..2 * cs + 16].copy_from_slice(&entry.to_be_bytes());
        let q = open(img).unwrap();
        let mut buf = [0u8; 16];
        let e = q.read_at(512, &mut buf).unwrap_err().to_string();
        assert!(e.contains("compressed cluster"), "{e}");
    }

    #[test]
    fn compressed_clusters_inflate() {
        use flate2::{Compress, Compression, FlushCompress};
        let cs = 512;
        let plain: Vec<u8> = (0..cs).map(|i| (i % 7) as u8).collect();
        let mut deflated = vec![0u8; 1024];
        let mut c = Compress::new(Compression::best(), false);
        c.compress(&plain, &mut deflated, FlushCompress::Finish)
            .unwrap();
        deflated.truncate(c.total_out() as usize);
        let mut img = tiny();
        img.truncate(3 * cs + 100);
        img[3 * cs..3 * cs + deflated.len()].copy_from_slice(&deflated);
        // One sector: the file ends inside it; the rest reads as zeros.
        let entry = OFLAG_COMPRESSED | (3 * cs as u64);
        img[2 * cs + 8..2 * cs + 16].copy_from_slice(&entry.to_be_bytes());
        let q = open(img).unwrap();
        let mut buf = vec![0u8; cs];
        q.read_at(512, &mut buf).unwrap();
        assert_eq!(buf, plain);
    }
}

//! The fixed parts of the format: constants, the header, checksums, the id.
//! The layout itself is described at the top of the crate (lib.rs).

use std::fmt;

pub(crate) const MAGIC: [u8; 8] = *b"RWNDSNAP";
/// The format version this crate writes. It reads this one and every one
/// back to [`OLDEST_FORMAT_VERSION`]: version 1 differs only in compressing
/// blocks with LZ4 instead of zstd (see the crate documentation).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this crate still reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Size of a guest page, the unit of deduplication and of incremental snapshots.
pub const PAGE_SIZE: usize = 4096;
/// Largest RAM a snapshot may describe: bounds what a reader allocates.
pub const MAX_RAM_SIZE: u64 = 1 << 40;
/// Most components one snapshot may hold.
pub const MAX_COMPONENTS: usize = 4096;
/// Longest component name, in bytes.
pub const MAX_COMPONENT_NAME_LEN: usize = 256;

/// Pages compressed together as one block. Measured with LZ4 on a mixed
/// 1 GiB image: 64 pages compress about 2% smaller than 16 and 12% smaller
/// than single pages, at the same speed (single pages were 2x slower: each
/// call resets the compressor's table). A 256 KiB block still fits in L2
/// cache, and is a whole number of zstd's 128 KiB blocks.
pub(crate) const PAGES_PER_BLOCK: u32 = 64;
/// Bounds the scratch buffer a reader allocates for one block (4 MiB).
pub(crate) const MAX_PAGES_PER_BLOCK: u32 = 1024;

pub(crate) const FLAG_INCREMENTAL: u32 = 1;
/// Page reference that marks a page as zero (incremental snapshots only).
pub(crate) const ZERO_REF: u32 = u32::MAX;
/// Block methods: how a block's pages are stored.
pub(crate) const METHOD_RAW: u32 = 0;
/// LZ4 block format: version 1 files only.
pub(crate) const METHOD_LZ4: u32 = 1;
/// One zstd frame: version 2 files only.
pub(crate) const METHOD_ZSTD: u32 = 2;
pub(crate) const BLOCK_ENTRY_LEN: usize = 24;

pub(crate) const OFF_VERSION: usize = 8;
pub(crate) const OFF_FLAGS: usize = 12;
pub(crate) const OFF_ID: usize = 16;
pub(crate) const OFF_PARENT: usize = 48;
pub(crate) const OFF_RAM_SIZE: usize = 80;
pub(crate) const OFF_PAGE_SIZE: usize = 88;
pub(crate) const OFF_PAGES_PER_BLOCK: usize = 92;
pub(crate) const OFF_SECTIONS: usize = 96;
pub(crate) const SECTION_DESC_LEN: usize = 24;
pub(crate) const OFF_BLOCK_DATA_LEN: usize = OFF_SECTIONS + 3 * SECTION_DESC_LEN;
pub(crate) const HEADER_LEN: usize = OFF_BLOCK_DATA_LEN + 8;

/// The checksummed sections, in file order; the page data follows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Components = 0,
    PageTable = 1,
    BlockTable = 2,
}

impl Section {
    pub(crate) const ALL: [Section; 3] =
        [Section::Components, Section::PageTable, Section::BlockTable];

    /// How error messages name the section ("its page table needs ...").
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Section::Components => "its component table",
            Section::PageTable => "its page table",
            Section::BlockTable => "its block table",
        }
    }
}

/// Identifies a snapshot by content: the BLAKE3 of its header, which holds
/// the checksums of everything after it. Incremental snapshots name their
/// parent by it. Displayed as 64 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(pub [u8; 32]);

impl SnapshotId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotId({self})")
    }
}

/// Length and checksum of one section, as the header records them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SectionDesc {
    pub len: u64,
    pub checksum: u128,
}

/// The header's fields, except magic and version, which are constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub flags: u32,
    pub id: SnapshotId,
    pub parent: SnapshotId,
    pub ram_size: u64,
    pub page_size: u32,
    pub pages_per_block: u32,
    pub sections: [SectionDesc; 3],
    pub block_data_len: u64,
}

impl Header {
    /// The header's bytes; the id field holds `self.id` as it is.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        put_u32(&mut b, OFF_VERSION, FORMAT_VERSION);
        put_u32(&mut b, OFF_FLAGS, self.flags);
        b[OFF_ID..OFF_ID + 32].copy_from_slice(&self.id.0);
        b[OFF_PARENT..OFF_PARENT + 32].copy_from_slice(&self.parent.0);
        put_u64(&mut b, OFF_RAM_SIZE, self.ram_size);
        put_u32(&mut b, OFF_PAGE_SIZE, self.page_size);
        put_u32(&mut b, OFF_PAGES_PER_BLOCK, self.pages_per_block);
        for (i, s) in self.sections.iter().enumerate() {
            let off = OFF_SECTIONS + i * SECTION_DESC_LEN;
            put_u64(&mut b, off, s.len);
            b[off + 8..off + 24].copy_from_slice(&s.checksum.to_le_bytes());
        }
        put_u64(&mut b, OFF_BLOCK_DATA_LEN, self.block_data_len);
        b
    }

    /// Reads the fields of a header without judging them; the caller checks
    /// magic, version and id first.
    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let mut sections = [SectionDesc::default(); 3];
        for (i, s) in sections.iter_mut().enumerate() {
            let off = OFF_SECTIONS + i * SECTION_DESC_LEN;
            s.len = get_u64(b, off);
            s.checksum = u128::from_le_bytes(array(b, off + 8));
        }
        Header {
            flags: get_u32(b, OFF_FLAGS),
            id: SnapshotId(array(b, OFF_ID)),
            parent: SnapshotId(array(b, OFF_PARENT)),
            ram_size: get_u64(b, OFF_RAM_SIZE),
            page_size: get_u32(b, OFF_PAGE_SIZE),
            pages_per_block: get_u32(b, OFF_PAGES_PER_BLOCK),
            sections,
            block_data_len: get_u64(b, OFF_BLOCK_DATA_LEN),
        }
    }
}

/// The id of a header: BLAKE3 of all its bytes except the id field itself.
pub(crate) fn header_id(b: &[u8; HEADER_LEN]) -> SnapshotId {
    let mut h = blake3::Hasher::new();
    h.update(&b[..OFF_ID]);
    h.update(&b[OFF_PARENT..]);
    SnapshotId(*h.finalize().as_bytes())
}

/// Checksum of a section or block.
pub(crate) fn checksum(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8; HEADER_LEN], off: usize) -> u32 {
    u32::from_le_bytes(array(b, off))
}

fn get_u64(b: &[u8; HEADER_LEN], off: usize) -> u64 {
    u64::from_le_bytes(array(b, off))
}

/// `N` bytes of the header from `off`; the offsets are constants inside it.
fn array<const N: usize>(b: &[u8; HEADER_LEN], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

/// Recomputes every checksum and the id of a file in place, as far as its
/// structure can be followed, so that a fuzzer's mutations reach the parsers
/// behind the checksums (and tests can build files that are well sealed but
/// wrong inside). Never panics; leaves input it cannot follow as it is.
pub fn reseal(file: &mut [u8]) {
    let Some(header) = file.get(..HEADER_LEN) else {
        return;
    };
    let mut hb = [0u8; HEADER_LEN];
    hb.copy_from_slice(header);
    let mut h = Header::decode(&hb);
    let mut pos = HEADER_LEN;
    let mut block_table = None;
    for (i, s) in Section::ALL.iter().enumerate() {
        let Some(end) = usize::try_from(h.sections[i].len)
            .ok()
            .and_then(|len| pos.checked_add(len))
            .filter(|&end| end <= file.len())
        else {
            break;
        };
        if *s == Section::BlockTable {
            block_table = Some(pos..end);
        }
        h.sections[i].checksum = checksum(&file[pos..end]);
        pos = end;
    }
    if let Some(table) = block_table {
        // The block table's own checksum must follow the block checksums.
        let mut data_pos = pos;
        let mut t = table.start;
        while t + BLOCK_ENTRY_LEN <= table.end {
            let len = u32::from_le_bytes([file[t + 4], file[t + 5], file[t + 6], file[t + 7]]);
            let Some(end) = data_pos
                .checked_add(len as usize)
                .filter(|&e| e <= file.len())
            else {
                break;
            };
            let sum = checksum(&file[data_pos..end]);
            file[t + 8..t + 24].copy_from_slice(&sum.to_le_bytes());
            data_pos = end;
            t += BLOCK_ENTRY_LEN;
        }
        h.sections[Section::BlockTable as usize].checksum = checksum(&file[table]);
    }
    let mut out = h.encode();
    // Keep the magic and version as they were: resealing is not repairing.
    out[..OFF_FLAGS].copy_from_slice(&hb[..OFF_FLAGS]);
    h.id = header_id(&out);
    out[OFF_ID..OFF_ID + 32].copy_from_slice(&h.id.0);
    file[..HEADER_LEN].copy_from_slice(&out);
}

//! Reading a snapshot: every byte is checked (magic, version, bounds, every
//! checksum, every rule of the format) before a [`Snapshot`] exists, so that
//! applying it cannot meet a damaged file halfway through restoring RAM.
//!
//! Lengths are read as u64 and compared with the bytes actually present
//! before anything is sliced or allocated, so memory stays proportional to
//! the file's size whatever its header claims.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::codec::Method;
use crate::error::SnapshotError;
use crate::format::{
    checksum, header_id, Header, Section, SnapshotId, BLOCK_ENTRY_LEN, FLAG_INCREMENTAL,
    FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_COMPONENTS, MAX_COMPONENT_NAME_LEN, MAX_PAGES_PER_BLOCK,
    MAX_RAM_SIZE, METHOD_LZ4, METHOD_RAW, METHOD_ZSTD, OFF_BLOCK_DATA_LEN, OFF_FLAGS,
    OFF_PAGES_PER_BLOCK, OFF_PAGE_SIZE, OFF_PARENT, OFF_RAM_SIZE, OFF_SECTIONS, OFF_VERSION,
    OLDEST_FORMAT_VERSION, PAGE_SIZE, SECTION_DESC_LEN, ZERO_REF,
};
use crate::pages::{parallel, split, useful_threads};

/// The format versions this crate reads.
const READ_VERSIONS: std::ops::RangeInclusive<u32> = OLDEST_FORMAT_VERSION..=FORMAT_VERSION;

/// A snapshot read and fully checked. It owns the file's bytes; pages stay
/// compressed until [`Snapshot::apply_pages`].
pub struct Snapshot {
    pub(crate) file: PathBuf,
    pub(crate) bytes: Vec<u8>,
    version: u32,
    id: SnapshotId,
    parent: Option<SnapshotId>,
    pub(crate) ram_size: u64,
    pub(crate) pages_per_block: usize,
    components: Vec<Component>,
    /// Every page the snapshot lists, in ascending page order.
    pub(crate) entries: Vec<PageEntry>,
    /// For each unique page, the page that uses it first: where it is
    /// decompressed to. Ascending, by the numbering rule of the format.
    pub(crate) first_use: Vec<u32>,
    pub(crate) blocks: Vec<BlockRef>,
}

struct Component {
    name: String,
    data: Range<usize>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct PageEntry {
    pub page: u32,
    /// A unique page number, or ZERO_REF.
    pub unique: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct BlockRef {
    /// Where the stored bytes are in the file.
    pub data: Range<usize>,
    pub method: Method,
    checksum: u128,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("file", &self.file)
            .field("version", &self.version)
            .field("id", &self.id)
            .field("parent", &self.parent)
            .field("ram_size", &self.ram_size)
            .field("components", &self.components.len())
            .field("pages", &self.entries.len())
            .field("unique_pages", &self.first_use.len())
            .finish()
    }
}

impl Snapshot {
    /// Reads and checks the snapshot file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot, SnapshotError> {
        let path = path.as_ref();
        let bytes = crate::file::read_file(path).map_err(|source| SnapshotError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Snapshot::from_bytes(bytes, path)
    }

    /// Checks `bytes` as a snapshot; `file` names it in error messages.
    pub fn from_bytes(bytes: Vec<u8>, file: impl Into<PathBuf>) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_bytes_with_threads(bytes, file, crate::default_threads())
    }

    /// As [`Snapshot::from_bytes`], verifying block checksums on `threads`
    /// threads.
    pub fn from_bytes_with_threads(
        bytes: Vec<u8>,
        file: impl Into<PathBuf>,
        threads: usize,
    ) -> Result<Snapshot, SnapshotError> {
        let file = file.into();
        let parsed = Parser {
            bytes: &bytes,
            file: &file,
        }
        .parse(threads)?;
        Ok(Snapshot {
            file,
            bytes,
            version: parsed.version,
            id: parsed.id,
            parent: parsed.parent,
            ram_size: parsed.ram_size,
            pages_per_block: parsed.pages_per_block,
            components: parsed.components,
            entries: parsed.entries,
            first_use: parsed.first_use,
            blocks: parsed.blocks,
        })
    }

    /// Reads only the header of the snapshot file at `path` and returns its
    /// id and, for an incremental snapshot, its parent's: enough to find a
    /// chain among many files without reading them whole. The header is
    /// checked (its id is its checksum), nothing else is; [`Snapshot::open`]
    /// checks the rest.
    pub fn identify(
        path: impl AsRef<Path>,
    ) -> Result<(SnapshotId, Option<SnapshotId>), SnapshotError> {
        let path = path.as_ref();
        let io = |source| SnapshotError::Io {
            file: path.to_path_buf(),
            source,
        };
        let mut start = Vec::with_capacity(HEADER_LEN);
        std::fs::File::open(path)
            .map_err(io)?
            .take(HEADER_LEN as u64)
            .read_to_end(&mut start)
            .map_err(io)?;
        let (_, header) = Parser {
            bytes: &start,
            file: path,
        }
        .header()?;
        let parent = (header.flags & FLAG_INCREMENTAL != 0).then_some(header.parent);
        Ok((header.id, parent))
    }

    /// The file this snapshot was read from, as given.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn id(&self) -> SnapshotId {
        self.id
    }

    /// The format version of the file: [`crate::FORMAT_VERSION`] for files
    /// this crate writes, as low as [`crate::OLDEST_FORMAT_VERSION`] for
    /// older ones.
    pub fn format_version(&self) -> u32 {
        self.version
    }

    /// The snapshot this one is incremental to, or None for a full one.
    pub fn parent(&self) -> Option<SnapshotId> {
        self.parent
    }

    pub fn is_incremental(&self) -> bool {
        self.parent.is_some()
    }

    /// Size in bytes of the RAM this snapshot is of.
    pub fn ram_size(&self) -> u64 {
        self.ram_size
    }

    /// The components, in the order they were written.
    pub fn components(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.components
            .iter()
            .map(|c| (c.name.as_str(), &self.bytes[c.data.clone()]))
    }

    /// The state of the component called `name`, if the snapshot has one.
    pub fn component(&self, name: &str) -> Option<&[u8]> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .map(|c| &self.bytes[c.data.clone()])
    }

    /// Indices of the pages this snapshot holds, ascending: the non-zero pages
    /// of a full snapshot, the dirty pages (zero or not) of an incremental one.
    pub fn page_indices(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.entries.iter().map(|e| u64::from(e.page))
    }

    /// How many distinct page contents are stored (after deduplication).
    pub fn unique_page_count(&self) -> usize {
        self.first_use.len()
    }
}

/// What parsing finds; becomes a [`Snapshot`] together with the bytes.
struct Parsed {
    version: u32,
    id: SnapshotId,
    parent: Option<SnapshotId>,
    ram_size: u64,
    pages_per_block: usize,
    components: Vec<Component>,
    entries: Vec<PageEntry>,
    first_use: Vec<u32>,
    blocks: Vec<BlockRef>,
}

struct Parser<'a> {
    bytes: &'a [u8],
    file: &'a Path,
}

impl<'a> Parser<'a> {
    fn malformed(&self, at: usize, what: String) -> SnapshotError {
        SnapshotError::Malformed {
            file: self.file.to_path_buf(),
            at: at as u64,
            what,
        }
    }

    fn truncated(&self, what: &'static str, missing: u64) -> SnapshotError {
        SnapshotError::Truncated {
            file: self.file.to_path_buf(),
            at: self.bytes.len() as u64,
            what,
            missing,
        }
    }

    fn check_sum(
        &self,
        range: Range<usize>,
        expected: u128,
        what: impl FnOnce() -> String,
    ) -> Result<(), SnapshotError> {
        if checksum(&self.bytes[range.clone()]) == expected {
            Ok(())
        } else {
            Err(SnapshotError::ChecksumMismatch {
                file: self.file.to_path_buf(),
                start: range.start as u64,
                end: range.end as u64,
                what: what(),
            })
        }
    }

    fn parse(&self, threads: usize) -> Result<Parsed, SnapshotError> {
        let (version, header) = self.header()?;
        let incremental = header.flags & FLAG_INCREMENTAL != 0;
        let page_count = header.ram_size / PAGE_SIZE as u64;

        // Where each section lies; the file must end exactly after the last.
        let mut ranges = [0..0, 0..0, 0..0];
        let mut pos = HEADER_LEN;
        let lens = header
            .sections
            .iter()
            .map(|s| s.len)
            .chain([header.block_data_len]);
        for (i, len) in lens.enumerate() {
            let what = Section::ALL
                .get(i)
                .map_or("its page data", |s| s.describe());
            let end = u64::try_from(pos)
                .ok()
                .and_then(|p| p.checked_add(len))
                .filter(|&end| end <= usize::MAX as u64)
                .ok_or_else(|| {
                    let at = OFF_SECTIONS + i * SECTION_DESC_LEN;
                    self.malformed(
                        at,
                        format!("{what} claims an impossible length of {len} bytes"),
                    )
                })?;
            if end > self.bytes.len() as u64 {
                return Err(self.truncated(what, end - self.bytes.len() as u64));
            }
            let end = end as usize;
            if let Some(r) = ranges.get_mut(i) {
                *r = pos..end;
            }
            pos = end;
        }
        let block_data = ranges[2].end..pos;
        if pos < self.bytes.len() {
            return Err(SnapshotError::TrailingBytes {
                file: self.file.to_path_buf(),
                at: pos as u64,
                extra: (self.bytes.len() - pos) as u64,
            });
        }
        for (i, s) in Section::ALL.iter().enumerate() {
            self.check_sum(ranges[i].clone(), header.sections[i].checksum, || {
                s.describe().to_string()
            })?;
        }

        let components = self.components(ranges[0].clone())?;
        let (entries, first_use) = self.page_table(ranges[1].clone(), page_count, incremental)?;
        let blocks = self.block_table(
            ranges[2].clone(),
            block_data,
            &first_use,
            header.pages_per_block as usize,
            version,
        )?;
        self.verify_blocks(&blocks, threads)?;

        Ok(Parsed {
            version,
            id: header.id,
            parent: incremental.then_some(header.parent),
            ram_size: header.ram_size,
            pages_per_block: header.pages_per_block as usize,
            components,
            entries,
            first_use,
            blocks,
        })
    }

    /// Checks magic, version and id, then the header's fields; returns the
    /// version with them.
    fn header(&self) -> Result<(u32, Header), SnapshotError> {
        let b = self.bytes;
        let magic_len = b.len().min(MAGIC.len());
        if b[..magic_len] != MAGIC[..magic_len] {
            return Err(SnapshotError::NotASnapshot {
                file: self.file.to_path_buf(),
            });
        }
        let Some(hb) = b.get(..HEADER_LEN) else {
            // The version is worth reporting even when the rest is missing:
            // a newer format's header may well be shorter or longer.
            if let Some(v) = b.get(OFF_VERSION..OFF_VERSION + 4) {
                let found = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                if !READ_VERSIONS.contains(&found) {
                    return Err(self.version(found));
                }
            }
            return Err(self.truncated("its header", (HEADER_LEN - b.len()) as u64));
        };
        let mut hb_array = [0u8; HEADER_LEN];
        hb_array.copy_from_slice(hb);
        let found = u32::from_le_bytes([hb[8], hb[9], hb[10], hb[11]]);
        if !READ_VERSIONS.contains(&found) {
            return Err(self.version(found));
        }
        let header = Header::decode(&hb_array);
        self.check_id(&hb_array, &header)?;

        if header.flags & !FLAG_INCREMENTAL != 0 {
            return Err(self.malformed(
                OFF_FLAGS,
                format!(
                    "its flags {:#x} include bits this Rewind does not know",
                    header.flags
                ),
            ));
        }
        let size = header.ram_size;
        if size == 0 || !size.is_multiple_of(PAGE_SIZE as u64) || size > MAX_RAM_SIZE {
            return Err(self.malformed(
                OFF_RAM_SIZE,
                format!(
                    "its RAM size of {size} bytes is not a non-zero multiple of {PAGE_SIZE} up to {MAX_RAM_SIZE}"
                ),
            ));
        }
        if header.page_size as usize != PAGE_SIZE {
            return Err(self.malformed(
                OFF_PAGE_SIZE,
                format!(
                    "its page size is {} bytes, but Rewind's pages are {PAGE_SIZE}",
                    header.page_size
                ),
            ));
        }
        if !(1..=MAX_PAGES_PER_BLOCK).contains(&header.pages_per_block) {
            return Err(self.malformed(
                OFF_PAGES_PER_BLOCK,
                format!(
                    "its blocks of {} pages are outside the allowed 1 to {MAX_PAGES_PER_BLOCK}",
                    header.pages_per_block
                ),
            ));
        }
        let incremental = header.flags & FLAG_INCREMENTAL != 0;
        let names_parent = header.parent.0 != [0; 32];
        if incremental && !names_parent {
            return Err(self.malformed(
                OFF_PARENT,
                "it is marked incremental but names no parent".into(),
            ));
        }
        if !incremental && names_parent {
            return Err(self.malformed(
                OFF_PARENT,
                "it is a full snapshot but names a parent".into(),
            ));
        }
        Ok((found, header))
    }

    fn version(&self, found: u32) -> SnapshotError {
        SnapshotError::UnsupportedVersion {
            file: self.file.to_path_buf(),
            found,
        }
    }

    fn check_id(&self, hb: &[u8; HEADER_LEN], header: &Header) -> Result<(), SnapshotError> {
        if header_id(hb) == header.id {
            Ok(())
        } else {
            Err(SnapshotError::ChecksumMismatch {
                file: self.file.to_path_buf(),
                start: 0,
                end: HEADER_LEN as u64,
                what: "its header, whose checksum is its id".into(),
            })
        }
    }

    fn components(&self, range: Range<usize>) -> Result<Vec<Component>, SnapshotError> {
        let mut c = Cursor::new(self, range.clone(), Section::Components);
        let count = c.u32(|| "the component count".into())?;
        if count as usize > MAX_COMPONENTS {
            return Err(self.malformed(
                range.start,
                format!("it holds {count} components, more than the {MAX_COMPONENTS} allowed"),
            ));
        }
        let mut components = Vec::new();
        let mut name_at = Vec::new();
        for i in 0..count {
            let at = c.pos;
            let len = c.u16(|| format!("the name length of component {i}"))?;
            if len == 0 || len as usize > MAX_COMPONENT_NAME_LEN {
                return Err(self.malformed(
                    at,
                    format!("component {i} has a name of {len} bytes, but names have 1 to {MAX_COMPONENT_NAME_LEN}"),
                ));
            }
            let at = c.pos;
            let name = c.take(u64::from(len), || format!("the name of component {i}"))?;
            let name = std::str::from_utf8(&self.bytes[name]).map_err(|_| {
                self.malformed(at, format!("the name of component {i} is not UTF-8"))
            })?;
            let data_len = c.u64(|| format!("the data length of component {name:?}"))?;
            let data = c.take(data_len, || format!("the data of component {name:?}"))?;
            name_at.push((name, at));
            components.push(Component {
                name: name.to_string(),
                data,
            });
        }
        c.finish(|| "its last component".into())?;
        name_at.sort_unstable();
        if let Some(w) = name_at.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(self.malformed(
                w[1].1,
                format!("the component name {:?} appears twice", w[0].0),
            ));
        }
        Ok(components)
    }

    /// Reads the page table and checks its rules: runs ascend with gaps and
    /// stay inside RAM; zero pages only in incremental snapshots; unique pages
    /// numbered by first use.
    fn page_table(
        &self,
        range: Range<usize>,
        page_count: u64,
        incremental: bool,
    ) -> Result<(Vec<PageEntry>, Vec<u32>), SnapshotError> {
        let section_len = (range.end - range.start) as u64;
        let mut c = Cursor::new(self, range.clone(), Section::PageTable);
        let unique_count = c.u64(|| "the unique page count".into())?;
        // Each unique page needs a reference of 4 bytes in this table.
        if unique_count > page_count || unique_count > section_len / 4 {
            return Err(self.malformed(
                range.start,
                format!("its page table claims {unique_count} unique pages, more than RAM or the table can hold"),
            ));
        }
        let at = c.pos;
        let run_count = c.u64(|| "the run count".into())?;
        // A run takes at least 16 bytes: first page, count and one reference.
        if run_count > section_len / 16 {
            return Err(self.malformed(
                at,
                format!("its page table claims {run_count} runs, more than its {section_len} bytes can hold"),
            ));
        }
        let mut entries = Vec::new();
        let mut first_use = Vec::with_capacity(unique_count as usize);
        let mut next_free = 0u64; // the first page the next run may start at
        for r in 0..run_count {
            let at = c.pos;
            let first = c.u64(|| format!("the first page of run {r}"))?;
            let n = c.u32(|| format!("the length of run {r}"))?;
            if n == 0 {
                return Err(self.malformed(at, format!("run {r} of its page table is empty")));
            }
            if first < next_free {
                return Err(self.malformed(
                    at,
                    format!("run {r} of its page table starts at page {first}, overlapping or touching the run before it"),
                ));
            }
            if first >= page_count || u64::from(n) > page_count - first {
                return Err(self.malformed(
                    at,
                    format!(
                        "run {r} of its page table ({n} pages from page {first}) reaches past the last page of RAM, {}",
                        page_count - 1
                    ),
                ));
            }
            let end = first + u64::from(n); // at most page_count, checked above
            let refs_at = c.pos;
            let refs = c.take(u64::from(n) * 4, || format!("the pages of run {r}"))?;
            for (k, chunk) in self.bytes[refs].chunks_exact(4).enumerate() {
                let unique = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                // page < page_count <= 2^28
                let page = (first + k as u64) as u32;
                let at = refs_at + k * 4;
                if unique == ZERO_REF {
                    if !incremental {
                        return Err(self.malformed(
                            at,
                            format!("page {page} is listed as zero, but a full snapshot lists only non-zero pages"),
                        ));
                    }
                } else if unique as usize == first_use.len() {
                    if u64::from(unique) >= unique_count {
                        return Err(self.malformed(
                            at,
                            format!("page {page} uses unique page {unique}, but there are only {unique_count}"),
                        ));
                    }
                    first_use.push(page);
                } else if unique as usize > first_use.len() {
                    return Err(self.malformed(
                        at,
                        format!(
                            "page {page} uses unique page {unique} before unique page {} was used",
                            first_use.len()
                        ),
                    ));
                }
                entries.push(PageEntry { page, unique });
            }
            next_free = end + 1;
        }
        c.finish(|| "its last run".into())?;
        if first_use.len() as u64 != unique_count {
            return Err(self.malformed(
                range.start,
                format!(
                    "its page table uses {} unique pages, but declares {unique_count}",
                    first_use.len()
                ),
            ));
        }
        Ok((entries, first_use))
    }

    fn block_table(
        &self,
        range: Range<usize>,
        data: Range<usize>,
        first_use: &[u32],
        pages_per_block: usize,
        version: u32,
    ) -> Result<Vec<BlockRef>, SnapshotError> {
        let unique = first_use.len();
        let count = unique.div_ceil(pages_per_block);
        if range.end - range.start != count * BLOCK_ENTRY_LEN {
            return Err(self.malformed(
                range.start,
                format!(
                    "its block table is {} bytes long, but its {unique} unique pages need {count} entries of {BLOCK_ENTRY_LEN} bytes",
                    range.end - range.start
                ),
            ));
        }
        let mut blocks = Vec::with_capacity(count);
        let mut pos = data.start;
        for (b, entry) in self.bytes[range.clone()]
            .chunks_exact(BLOCK_ENTRY_LEN)
            .enumerate()
        {
            let at = range.start + b * BLOCK_ENTRY_LEN;
            let method = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let len = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
            let mut sum = [0u8; 16];
            sum.copy_from_slice(&entry[8..24]);
            let pages = pages_per_block.min(unique - b * pages_per_block);
            let raw_len = pages * PAGE_SIZE;
            // Each version has one compressed method: LZ4 in version 1,
            // zstd in version 2. Raw blocks are in both.
            let method = match (method, version) {
                (METHOD_RAW, _) => Method::Raw,
                (METHOD_LZ4, 1) => Method::Lz4,
                (METHOD_ZSTD, 2..) => Method::Zstd,
                (METHOD_LZ4 | METHOD_ZSTD, _) => {
                    let what = format!(
                        "block {b} has method {method}, which version {version} files do not use"
                    );
                    return Err(self.malformed(at, what));
                }
                _ => {
                    let what = format!("block {b} has an unknown method {method}");
                    return Err(self.malformed(at, what));
                }
            };
            let fits = match method {
                Method::Raw => len == raw_len,
                // Compressing must save at least a byte, or the block is raw.
                Method::Lz4 | Method::Zstd => (1..raw_len).contains(&len),
            };
            if !fits {
                return Err(self.malformed(
                    at,
                    format!(
                        "block {b} claims {len} stored bytes, impossible for {pages} pages stored {}",
                        method.describe()
                    ),
                ));
            }
            let end = pos + len; // pos <= file length, len < 2^32: no overflow
            if end > data.end {
                return Err(self.malformed(
                    at,
                    format!("block {b} reaches past the end of its page data"),
                ));
            }
            blocks.push(BlockRef {
                data: pos..end,
                method,
                checksum: u128::from_le_bytes(sum),
            });
            pos = end;
        }
        if pos != data.end {
            return Err(self.malformed(
                OFF_BLOCK_DATA_LEN,
                format!(
                    "its page data is {} bytes long, but its blocks take {}",
                    data.end - data.start,
                    pos - data.start
                ),
            ));
        }
        Ok(blocks)
    }

    /// Checks every block's checksum, on several threads; reports the first
    /// damaged block in file order, whatever the thread count.
    fn verify_blocks(&self, blocks: &[BlockRef], threads: usize) -> Result<(), SnapshotError> {
        let threads = useful_threads(threads, blocks.len(), 64);
        let bad = parallel(split(blocks.len(), threads).collect(), |range| {
            range
                .into_iter()
                .find(|&b| checksum(&self.bytes[blocks[b].data.clone()]) != blocks[b].checksum)
        });
        match bad.into_iter().flatten().next() {
            None => Ok(()),
            Some(b) => Err(SnapshotError::ChecksumMismatch {
                file: self.file.to_path_buf(),
                start: blocks[b].data.start as u64,
                end: blocks[b].data.end as u64,
                what: format!("block {b} of its page data"),
            }),
        }
    }
}

/// Reads little-endian fields inside one section, which has been checksummed
/// already: running off its end means a malformed file, not a truncated one.
struct Cursor<'p, 'a> {
    parser: &'p Parser<'a>,
    pos: usize,
    end: usize,
    section: Section,
}

impl<'p, 'a> Cursor<'p, 'a> {
    fn new(parser: &'p Parser<'a>, range: Range<usize>, section: Section) -> Self {
        Cursor {
            parser,
            pos: range.start,
            end: range.end,
            section,
        }
    }

    fn take(
        &mut self,
        len: u64,
        what: impl FnOnce() -> String,
    ) -> Result<Range<usize>, SnapshotError> {
        if len > (self.end - self.pos) as u64 {
            return Err(self.parser.malformed(
                self.pos,
                format!(
                    "{} ends at byte {}, in the middle of {}",
                    self.section.describe(),
                    self.end,
                    what()
                ),
            ));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(start..self.pos)
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], SnapshotError> {
        let r = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&self.parser.bytes[r]);
        Ok(a)
    }

    fn u16(&mut self, what: impl FnOnce() -> String) -> Result<u16, SnapshotError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, SnapshotError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, SnapshotError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// The section must end where its content does.
    fn finish(&self, last: impl FnOnce() -> String) -> Result<(), SnapshotError> {
        if self.pos == self.end {
            Ok(())
        } else {
            Err(self.parser.malformed(
                self.pos,
                format!(
                    "{} has {} unexpected bytes after {}",
                    self.section.describe(),
                    self.end - self.pos,
                    last()
                ),
            ))
        }
    }
}

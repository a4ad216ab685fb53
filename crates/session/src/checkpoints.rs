//! In-memory checkpoints of a machine, for seeking and running backwards.
//!
//! A checkpoint is the machine's saved state (the components a snapshot
//! holds) plus its RAM as a table of shared pages: a page no one wrote since
//! the previous checkpoint is the same allocation in both, so a checkpoint
//! costs the pages the guest wrote since the last one, not its RAM. That is
//! the snapshot crate's deduplication, done by reference instead of by
//! content hash, because these never leave the process.
//!
//! Restoring copies back only the pages that can differ: those the guest
//! wrote since RAM last matched a checkpoint, and those where that
//! checkpoint and the one restored hold different pages.
//!
//! Disks (images with an overlay) are kept the same way: a checkpoint
//! holds each disk's overlay as a table of shared blocks, built from the
//! previous one and the blocks written since (which the disk's backend,
//! [`crate::build::DiskBackend`], notes for it), and restoring puts back only the blocks
//! that can differ. A disk that writes into its image (`persist`) cannot be
//! taken back; the timeline refuses to go back past its writes.
//!
//! Memory is bounded: past a cap, checkpoints far from where the user is
//! are dropped first, so they stay dense near the current position and
//! sparse far from it (as rr's do). The first checkpoint, where the
//! timeline begins, is never dropped.

use crate::build::disk_backend;
use rewind_disk::BLOCK_SIZE;
use rewind_hart::{WriteMark, PAGE_SIZE};
use rewind_machine::Machine;
use std::collections::BTreeMap;
use std::sync::Arc;

type Page = Arc<[u8]>;

/// A disk overlay's blocks by index (offset / [`BLOCK_SIZE`]); a block
/// absent reads as the disk's image.
type DiskBlocks = Arc<BTreeMap<u64, Arc<[u8]>>>;

/// One saved machine state.
pub struct Checkpoint {
    position: u64,
    /// Each hart's steps (see `Hart::steps`), to find where a hart stood.
    hart_steps: Vec<u64>,
    parts: Vec<(String, Vec<u8>)>,
    pages: Arc<Vec<Page>>,
    /// Each disk's overlay (`None` for a backend that is not an image).
    disks: Vec<Option<DiskBlocks>>,
    /// Bytes of its state and page and block tables.
    overhead: usize,
}

impl Checkpoint {
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Steps hart `hart` had taken here.
    pub fn hart_steps(&self, hart: usize) -> Option<u64> {
        self.hart_steps.get(hart).copied()
    }
}

/// Where RAM stood the last time it equalled a checkpoint's pages, and
/// the disks their blocks. (What each disk's backend has noted since, and
/// RAM's writes after `mark`, is what may differ now.)
struct Synced {
    pages: Arc<Vec<Page>>,
    mark: WriteMark,
    disks: Vec<Option<DiskBlocks>>,
}

/// The checkpoints of one timeline.
pub struct Checkpoints {
    by_position: BTreeMap<u64, Checkpoint>,
    synced: Option<Synced>,
    zero: Page,
    cap: usize,
    used: usize,
}

impl Checkpoints {
    /// Checkpoints that may use about `cap` bytes in all.
    pub fn new(cap: usize) -> Self {
        Checkpoints {
            by_position: BTreeMap::new(),
            synced: None,
            zero: Arc::from(vec![0u8; PAGE_SIZE as usize]),
            cap,
            used: 0,
        }
    }

    /// Bytes the checkpoints hold, about.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn len(&self) -> usize {
        self.by_position.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_position.is_empty()
    }

    /// Positions of every checkpoint, ascending.
    pub fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_position.keys().copied()
    }

    /// Saves the machine's state now (replacing a checkpoint at the same
    /// position). `near` is where the user is, for choosing what to drop
    /// if the cap is reached.
    pub fn take(&mut self, machine: &mut Machine, near: u64) -> Result<(), String> {
        let position = machine.position();
        if self.by_position.contains_key(&position) {
            return Ok(());
        }
        // The disks first: reading an overlay is the one step that can
        // fail, and then nothing has changed.
        let (disks, fresh_blocks) = self.disk_tables(machine)?;
        let ram = &mut machine.board.ram;
        let (pages, fresh) = match &self.synced {
            Some(synced) => {
                let mut pages = Vec::clone(&synced.pages);
                let written = ram.written_since(synced.mark);
                for &p in &written {
                    pages[p] = self.page_of(ram.page(p));
                }
                (pages, written.len())
            }
            None => {
                let pages: Vec<Page> = (0..ram.pages())
                    .map(|p| self.page_of(ram.page(p)))
                    .collect();
                let fresh = pages.iter().filter(|p| !Arc::ptr_eq(p, &self.zero)).count();
                (pages, fresh)
            }
        };
        let pages = Arc::new(pages);
        let mark = ram.mark();
        self.sync_to(Arc::clone(&pages), mark, disks.clone());
        let parts = machine.save_state();
        let state_bytes: usize = parts.iter().map(|(n, b)| n.len() + b.len()).sum();
        let block_entries: usize = disks.iter().flatten().map(|d| d.len()).sum();
        let overhead = state_bytes
            + pages.len() * std::mem::size_of::<Page>()
            + block_entries * BLOCK_ENTRY_BYTES;
        self.used += fresh * PAGE_SIZE as usize + fresh_blocks * BLOCK_SIZE + overhead;
        self.by_position.insert(
            position,
            Checkpoint {
                position,
                hart_steps: machine.harts.iter().map(|h| h.steps()).collect(),
                parts,
                pages,
                disks,
                overhead,
            },
        );
        self.thin(near);
        Ok(())
    }

    /// Each disk's blocks now, from the table the disks were last synced
    /// to and the blocks written since; with the number of blocks read
    /// anew.
    fn disk_tables(
        &mut self,
        machine: &mut Machine,
    ) -> Result<(Vec<Option<DiskBlocks>>, usize), String> {
        let mut tables = Vec::new();
        let mut fresh = 0;
        for n in 0..disk_count(machine) {
            let synced = self
                .synced
                .as_ref()
                .and_then(|s| s.disks.get(n).cloned().flatten());
            let Some(backend) = disk_backend(machine, n).filter(|b| b.disk().can_put_back()) else {
                tables.push(None);
                continue;
            };
            let (mut table, to_read): (BTreeMap<u64, Arc<[u8]>>, Vec<u64>) = match &synced {
                Some(table) if backend.changed().is_empty() => {
                    tables.push(Some(Arc::clone(table)));
                    continue;
                }
                Some(table) => (BTreeMap::clone(table), backend.changed().iter().collect()),
                None => {
                    let held = backend
                        .disk()
                        .overlay()
                        .map(|o| o.blocks().iter().collect());
                    (BTreeMap::new(), held.unwrap_or_default())
                }
            };
            for index in to_read {
                let block = backend
                    .disk()
                    .held_block(index)
                    .map_err(|e| format!("cannot checkpoint disk {n}: {e}"))?;
                match block {
                    Some(bytes) => {
                        table.insert(index, Arc::from(bytes));
                        fresh += 1;
                    }
                    None => {
                        table.remove(&index);
                    }
                }
            }
            tables.push(Some(Arc::new(table)));
        }
        // Only now that every table is read: a failure above left what
        // each backend noted in place.
        for n in 0..tables.len() {
            if let Some(backend) = disk_backend(machine, n) {
                backend.forget_changed();
            }
        }
        Ok((tables, fresh))
    }

    fn page_of(&self, bytes: &[u8]) -> Page {
        if bytes.iter().all(|&b| b == 0) {
            Arc::clone(&self.zero)
        } else {
            Arc::from(bytes)
        }
    }

    /// The latest checkpoint at or before `position`.
    pub fn at_or_before(&self, position: u64) -> Option<&Checkpoint> {
        self.by_position
            .range(..=position)
            .next_back()
            .map(|(_, c)| c)
    }

    /// The latest checkpoint where hart `hart` had taken at most `steps`
    /// steps and that is at or before `position`.
    pub fn before_hart_step(&self, hart: usize, steps: u64, position: u64) -> Option<&Checkpoint> {
        self.by_position
            .range(..=position)
            .rev()
            .map(|(_, c)| c)
            .find(|c| c.hart_steps(hart).is_some_and(|s| s <= steps))
    }

    /// The checkpoint just before `position` (strictly), if any.
    pub fn before(&self, position: u64) -> Option<&Checkpoint> {
        self.by_position
            .range(..position)
            .next_back()
            .map(|(_, c)| c)
    }

    /// Puts the machine back in the state of the checkpoint at `position`.
    /// The machine must be the one the checkpoints were taken of (or one
    /// built from the same configuration); Err names why a state does not
    /// fit it, and then nothing changed.
    pub fn restore(&mut self, machine: &mut Machine, position: u64) -> Result<(), String> {
        let Some(checkpoint) = self.by_position.get(&position) else {
            return Err(format!("there is no checkpoint at position {position}"));
        };
        if let Some(n) = (0..disk_count(machine)).find(|&n| {
            machine
                .disk_mut(n)
                .is_some_and(|d| d.irreversibly_written())
        }) {
            return Err(format!(
                "the guest wrote into disk {n}'s image itself (opened with persist), which cannot be taken back"
            ));
        }
        // The state first: it is checked whole before anything changes.
        machine
            .restore_state(&checkpoint.parts)
            .map_err(|e| e.to_string())?;
        let ram = &mut machine.board.ram;
        let differ: Vec<usize> = match &self.synced {
            Some(synced) => {
                let mut differ = ram.written_since(synced.mark);
                differ.extend(
                    (0..checkpoint.pages.len())
                        .filter(|&p| !Arc::ptr_eq(&synced.pages[p], &checkpoint.pages[p])),
                );
                differ.sort_unstable();
                differ.dedup();
                differ
            }
            None => (0..checkpoint.pages.len()).collect(),
        };
        let page = PAGE_SIZE as usize;
        let pages = &checkpoint.pages;
        ram.overwrite(&differ, |bytes| {
            for &p in &differ {
                bytes[p * page..(p + 1) * page].copy_from_slice(&pages[p]);
            }
        });
        let (pages, mark) = (Arc::clone(pages), ram.mark());
        let disks = checkpoint.disks.clone();
        let synced_disks = self.synced.as_ref().map(|s| s.disks.clone());
        let put_back = put_back_disks(machine, synced_disks.as_deref(), &disks);
        self.sync_to(pages, mark, disks);
        if put_back.is_err() {
            // Some blocks may not be back: the disks equal no table now,
            // and the next take or restore must look at every block.
            if let Some(synced) = self.synced.take() {
                self.release(synced.pages, synced.disks);
            }
        }
        put_back
    }

    /// Drops the checkpoint at `position`, if there is one (never the
    /// first).
    pub fn drop_at(&mut self, position: u64) {
        if self.by_position.keys().next() == Some(&position) {
            return;
        }
        if let Some(dropped) = self.by_position.remove(&position) {
            self.forget(dropped);
        }
    }

    /// Drops checkpoints until the cap is kept, those far from `near` (and
    /// close to their neighbours) first; never the first, nor the last.
    fn thin(&mut self, near: u64) {
        while self.used > self.cap && self.by_position.len() > 2 {
            let positions: Vec<u64> = self.by_position.keys().copied().collect();
            let victim = (1..positions.len() - 1)
                .min_by_key(|&i| {
                    let gap = positions[i + 1] - positions[i - 1];
                    let distance = positions[i].abs_diff(near).max(1);
                    // Small gaps far away go first: compare gap/distance.
                    (gap as u128) * (u64::MAX as u128 / distance as u128)
                })
                .map(|i| positions[i]);
            let Some(victim) = victim else {
                return;
            };
            let dropped = self
                .by_position
                .remove(&victim)
                .expect("the victim is a checkpoint");
            self.forget(dropped);
        }
    }

    /// RAM now equals `pages` but for what is written after `mark`, and
    /// the disks `disks` but for what their backends noted since.
    fn sync_to(&mut self, pages: Arc<Vec<Page>>, mark: WriteMark, disks: Vec<Option<DiskBlocks>>) {
        if let Some(previous) = self.synced.replace(Synced { pages, mark, disks }) {
            self.release(previous.pages, previous.disks);
        }
    }

    /// Lets go of a page table; if nothing else holds it, the pages only
    /// it held are freed, and no longer counted. (Reference counts make
    /// this exact: a page another checkpoint, or the table RAM was last
    /// synced to, still holds is not freed.)
    fn release(&mut self, pages: Arc<Vec<Page>>, disks: Vec<Option<DiskBlocks>>) {
        if let Ok(pages) = Arc::try_unwrap(pages) {
            let freed = pages.iter().filter(|p| Arc::strong_count(p) == 1).count();
            self.used = self.used.saturating_sub(freed * PAGE_SIZE as usize);
        }
        for table in disks.into_iter().flatten() {
            if let Ok(table) = Arc::try_unwrap(table) {
                let freed = table.values().filter(|b| Arc::strong_count(b) == 1).count();
                self.used = self.used.saturating_sub(freed * BLOCK_SIZE);
            }
        }
    }

    /// The distinct pages all checkpoints (and the table RAM was last
    /// synced to) hold, in bytes, counted one by one: slow, the reference
    /// that [`Checkpoints::used`]'s running count must not fall below.
    pub fn pages_held(&self) -> usize {
        let mut tables: Vec<&Arc<Vec<Page>>> =
            self.by_position.values().map(|c| &c.pages).collect();
        tables.extend(self.synced.as_ref().map(|s| &s.pages));
        // Addresses only tell pages apart here; they reach nothing else.
        let mut pages: Vec<usize> = tables
            .iter()
            .flat_map(|t| t.iter())
            .filter(|p| !Arc::ptr_eq(p, &self.zero))
            .map(|p| Arc::as_ptr(p) as *const u8 as usize)
            .collect();
        pages.sort_unstable();
        pages.dedup();
        pages.len() * PAGE_SIZE as usize
    }

    /// Forgets a checkpoint taken out of the map.
    fn forget(&mut self, dropped: Checkpoint) {
        self.used = self.used.saturating_sub(dropped.overhead);
        self.release(dropped.pages, dropped.disks);
    }
}

/// About what one entry of a disk's block table costs besides its block.
const BLOCK_ENTRY_BYTES: usize = 48;

/// The machine's virtio-blk devices.
fn disk_count(machine: &mut Machine) -> usize {
    (0..).take_while(|&n| machine.disk_mut(n).is_some()).count()
}

/// Puts each disk's blocks back as `target` holds them, where the disks
/// last equalled `synced` (none: never synced, so every block can differ)
/// but for the blocks their backends noted since.
fn put_back_disks(
    machine: &mut Machine,
    synced: Option<&[Option<DiskBlocks>]>,
    target: &[Option<DiskBlocks>],
) -> Result<(), String> {
    for (n, target) in target.iter().enumerate() {
        let Some(target) = target else { continue };
        let Some(backend) = disk_backend(machine, n) else {
            continue;
        };
        let mut differ: Vec<u64> = backend.changed().iter().collect();
        match synced.and_then(|s| s.get(n)).cloned().flatten() {
            Some(synced) => differ.extend(blocks_that_differ(&synced, target)),
            None => {
                let held = backend
                    .disk()
                    .overlay()
                    .map(|o| o.blocks().iter().collect::<Vec<_>>());
                differ.extend(held.unwrap_or_default());
                differ.extend(target.keys().copied());
            }
        }
        differ.sort_unstable();
        differ.dedup();
        let disk = backend.disk_mut();
        for index in differ {
            disk.put_back_block(index, target.get(&index).map(|b| &b[..]))
                .map_err(|e| format!("cannot put disk {n} back: {e}"))?;
        }
        // Putting back is not the guest writing.
        backend.forget_changed();
    }
    Ok(())
}

/// The blocks two tables hold differently (or only one holds).
fn blocks_that_differ<'a>(
    a: &'a BTreeMap<u64, Arc<[u8]>>,
    b: &'a BTreeMap<u64, Arc<[u8]>>,
) -> impl Iterator<Item = u64> + 'a {
    let changed_or_gone = a
        .iter()
        .filter(|(i, block)| b.get(i).is_none_or(|other| !Arc::ptr_eq(block, other)))
        .map(|(&i, _)| i);
    let new = b.keys().filter(|i| !a.contains_key(i)).copied();
    changed_or_gone.chain(new)
}

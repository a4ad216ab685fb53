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
//! Memory is bounded: past a cap, checkpoints far from where the user is
//! are dropped first, so they stay dense near the current position and
//! sparse far from it (as rr's do). The first checkpoint, where the
//! timeline begins, is never dropped.

use rewind_hart::{WriteMark, PAGE_SIZE};
use rewind_machine::Machine;
use std::collections::BTreeMap;
use std::sync::Arc;

type Page = Arc<[u8]>;

/// One saved machine state.
pub struct Checkpoint {
    position: u64,
    /// Each hart's steps (see `Hart::steps`), to find where a hart stood.
    hart_steps: Vec<u64>,
    parts: Vec<(String, Vec<u8>)>,
    pages: Arc<Vec<Page>>,
    /// Bytes of its state and page table.
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

/// Where RAM stood the last time it equalled a checkpoint's pages.
struct Synced {
    pages: Arc<Vec<Page>>,
    mark: WriteMark,
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
    pub fn take(&mut self, machine: &mut Machine, near: u64) {
        let position = machine.position();
        if self.by_position.contains_key(&position) {
            return;
        }
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
        self.sync_to(Arc::clone(&pages), mark);
        let parts = machine.save_state();
        let state_bytes: usize = parts.iter().map(|(n, b)| n.len() + b.len()).sum();
        let overhead = state_bytes + pages.len() * std::mem::size_of::<Page>();
        self.used += fresh * PAGE_SIZE as usize + overhead;
        self.by_position.insert(
            position,
            Checkpoint {
                position,
                hart_steps: machine.harts.iter().map(|h| h.steps()).collect(),
                parts,
                pages,
                overhead,
            },
        );
        self.thin(near);
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
        self.sync_to(pages, mark);
        Ok(())
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

    /// RAM now equals `pages` but for what is written after `mark`.
    fn sync_to(&mut self, pages: Arc<Vec<Page>>, mark: WriteMark) {
        if let Some(previous) = self.synced.replace(Synced { pages, mark }) {
            self.release(previous.pages);
        }
    }

    /// Lets go of a page table; if nothing else holds it, the pages only
    /// it held are freed, and no longer counted. (Reference counts make
    /// this exact: a page another checkpoint, or the table RAM was last
    /// synced to, still holds is not freed.)
    fn release(&mut self, pages: Arc<Vec<Page>>) {
        if let Ok(pages) = Arc::try_unwrap(pages) {
            let freed = pages.iter().filter(|p| Arc::strong_count(p) == 1).count();
            self.used = self.used.saturating_sub(freed * PAGE_SIZE as usize);
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
        self.release(dropped.pages);
    }
}

//! A full snapshot and the incremental snapshots on top of it, checked to fit
//! together before any RAM is touched.

use std::path::Path;

use crate::apply::ApplyOptions;
use crate::error::SnapshotError;
use crate::format::SnapshotId;
use crate::read::Snapshot;

/// Snapshots to restore in order: a full one, then each incremental one on
/// top of the one before. The caller gives the files in that order (for
/// example by keeping a list, or by naming each file by its id and following
/// [`Snapshot::parent`]); the chain checks that they fit.
#[derive(Debug)]
pub struct SnapshotChain {
    snapshots: Vec<Snapshot>,
}

impl SnapshotChain {
    /// Checks that `snapshots` form a chain: the first is full, each later
    /// one is incremental to the one before it, and all are of the same RAM
    /// size.
    pub fn new(snapshots: Vec<Snapshot>) -> Result<Self, SnapshotError> {
        let first = snapshots.first().ok_or(SnapshotError::EmptyChain)?;
        if let Some(parent) = first.parent() {
            return Err(SnapshotError::MissingParent {
                file: first.file().to_path_buf(),
                parent,
            });
        }
        Self::linked(snapshots)
    }

    /// As [`SnapshotChain::new`], for a chain whose first snapshot is
    /// stored on top of RAM that is not in a file but that the caller
    /// rebuilds, named `base` (Rewind: a machine's RAM at power-on, which
    /// the boot images give): the first snapshot must be incremental with
    /// `base` as its parent. The caller puts that RAM in place before
    /// [`SnapshotChain::apply_pages`].
    pub fn on_base(snapshots: Vec<Snapshot>, base: SnapshotId) -> Result<Self, SnapshotError> {
        let first = snapshots.first().ok_or(SnapshotError::EmptyChain)?;
        match first.parent() {
            Some(parent) if parent == base => Self::linked(snapshots),
            Some(parent) => Err(SnapshotError::WrongBase {
                file: first.file().to_path_buf(),
                parent,
                base,
            }),
            None => Err(SnapshotError::FullSnapshotOnBase {
                file: first.file().to_path_buf(),
            }),
        }
    }

    /// Checks the links after the first snapshot.
    fn linked(snapshots: Vec<Snapshot>) -> Result<Self, SnapshotError> {
        for pair in snapshots.windows(2) {
            let (previous, next) = (&pair[0], &pair[1]);
            let Some(parent) = next.parent() else {
                return Err(SnapshotError::FullSnapshotInChain {
                    file: next.file().to_path_buf(),
                    previous_file: previous.file().to_path_buf(),
                });
            };
            if parent != previous.id() {
                return Err(SnapshotError::WrongParent {
                    file: next.file().to_path_buf(),
                    parent,
                    previous_file: previous.file().to_path_buf(),
                    previous_id: previous.id(),
                });
            }
            if next.ram_size() != previous.ram_size() {
                return Err(SnapshotError::RamSizeMismatch {
                    file: next.file().to_path_buf(),
                    size: next.ram_size(),
                    other_file: previous.file().to_path_buf(),
                    other_size: previous.ram_size(),
                });
            }
        }
        Ok(SnapshotChain { snapshots })
    }

    /// Reads and checks every file, then checks that they form a chain, root
    /// first.
    pub fn open<P: AsRef<Path>>(files: &[P]) -> Result<Self, SnapshotError> {
        let snapshots = files
            .iter()
            .map(Snapshot::open)
            .collect::<Result<Vec<_>, _>>()?;
        SnapshotChain::new(snapshots)
    }

    /// The newest snapshot: the machine's state, its components included
    /// (components are saved whole in every snapshot, never incrementally).
    pub fn head(&self) -> &Snapshot {
        // new() refuses an empty chain.
        &self.snapshots[self.snapshots.len() - 1]
    }

    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    pub fn ram_size(&self) -> u64 {
        self.snapshots[0].ram_size()
    }

    /// Sets `ram` to the RAM of the newest snapshot: the full one, then each
    /// incremental one over it.
    pub fn apply_pages(&self, ram: &mut [u8]) -> Result<(), SnapshotError> {
        self.apply_pages_with(ram, ApplyOptions::default())
    }

    /// As [`SnapshotChain::apply_pages`], with options; `ram_is_zeroed`
    /// concerns the RAM before the first snapshot.
    pub fn apply_pages_with(
        &self,
        ram: &mut [u8],
        options: ApplyOptions,
    ) -> Result<(), SnapshotError> {
        for s in &self.snapshots {
            s.apply_pages_with(ram, options)?;
        }
        Ok(())
    }
}

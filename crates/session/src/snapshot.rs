//! Snapshots of a running machine, and restoring them.
//!
//! A snapshot file (crates/snapshot) holds named components and RAM pages.
//! The components are the machine's own state (`Machine::save_state`), and
//! beside it, under names starting with `host:`, what a new process needs to
//! rebuild the same machine: the configuration with the content hashes of
//! its boot files and disks (`host:config`), each disk's overlay
//! (`host:disk N`, or `host:disk-changes N`: see below), and, when the run
//! is being recorded, the position in the recording (`host:recording`).
//! Restoring builds a fresh machine from the configuration (checking every
//! file against its hash, as replay does) and then overwrites its state, RAM
//! and overlays.
//!
//! RAM is stored on top of the machine's power-on RAM: the boot images as
//! loaded, which a restore rebuilds from the same (hash-checked) files. A
//! snapshot that follows no other holds the pages written since power-on
//! and names that RAM by its id (`Machine::power_on_id`, also in
//! `host:power-on`) as its parent, so a booted kernel's unchanged text and
//! data (about 10 MB for Debian's) are neither compressed nor stored; a
//! restore refuses boot files that load differently. Such a snapshot still
//! restores on its own: it is "full" in every sense but the file format's.
//!
//! A series (`--snapshot-every`) starts with one of those; each later one
//! holds only the pages written since the one before (from RAM's write
//! history, not by comparing memory) and names it as its parent. Other
//! snapshots (`--snapshot-at`, Ctrl-A s, the control socket) stand alone.
//!
//! Disks follow the same rule. A snapshot that follows no other holds each
//! disk's whole overlay as `host:disk N`, in the format of a saved overlay
//! (rewind_disk::overlay); a later one of a series holds only the blocks
//! written since the one before, in the same format, as
//! `host:disk-changes N` (from the disk's record of written blocks, which
//! the series takes at each snapshot). A restore starts each disk from the
//! last snapshot of the chain that holds it whole and applies the changes
//! of the ones after it, in order. Snapshots made before incremental disks
//! hold every disk whole in every snapshot, and restore the same way.

use crate::build::image_disk;
use crate::build::{build_machine, check_config, SavedOverlay};
use crate::images::Origin;
use crate::packed::{image_component, ToPack, Unpacked, PACKED_LIST};
use crate::SessionError;
use rewind_hart::WriteMark;
use rewind_machine::Machine;
use rewind_replay::{Position, RecordedConfig};
use rewind_snapshot::{ApplyOptions, Pages, Snapshot, SnapshotChain, SnapshotId, SnapshotWriter};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

/// Component names of the host side.
pub const CONFIG: &str = "host:config";
/// The version of the Rewind that wrote the snapshot, for messages.
const WRITER: &str = "host:writer";
use rewind_machine::state::MODEL_COMPONENT;
const RECORDING: &str = "host:recording";
/// In a snapshot stored on top of the machine's power-on RAM: that RAM's
/// id (`Machine::power_on_id`), which is also the snapshot's parent.
const POWER_ON: &str = "host:power-on";

/// Disk `n`'s whole overlay.
fn disk_component(n: usize) -> String {
    format!("host:disk {n}")
}

/// The blocks of disk `n` written since the snapshot's parent: a new name,
/// so that no reader takes them for the whole overlay.
fn disk_changes_component(n: usize) -> String {
    format!("host:disk-changes {n}")
}

/// When to take snapshots, from the options.
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    /// `--snapshot-at ICOUNT --snapshot-out FILE`.
    pub at: Option<(u64, PathBuf)>,
    /// `--snapshot-every N --snapshot-dir DIR`.
    pub every: Option<(u64, PathBuf)>,
    /// Where Ctrl-A s writes (the --snapshot-dir, else the current directory).
    pub dir: Option<PathBuf>,
}

/// A snapshot written: where, how big, how long it took.
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub millis: f64,
    pub incremental: bool,
}

/// Takes the snapshots a run asks for.
pub struct Snapshotter {
    config: RecordedConfig,
    options: SnapshotOptions,
    /// The series: the next snapshot's instruction count and number, and
    /// the last one's id and write mark.
    series_next: u64,
    series_count: u64,
    series_parent: Option<(SnapshotId, WriteMark)>,
    /// Set while a recording is made: its header's hash.
    recording: Option<[u8; 32]>,
    /// The machine's power-on RAM id, once a snapshot needed it.
    power_on: Option<SnapshotId>,
    /// Files carried inside every snapshot written (`rewind pack`), as
    /// components.
    carried: Vec<(String, Vec<u8>)>,
}

impl Snapshotter {
    pub fn new(config: RecordedConfig, options: SnapshotOptions, machine: &Machine) -> Self {
        let series_next = match &options.every {
            Some((every, _)) => machine.position().saturating_add(*every),
            None => u64::MAX,
        };
        Snapshotter {
            config,
            options,
            series_next,
            series_count: 0,
            series_parent: None,
            recording: None,
            power_on: None,
            carried: Vec::new(),
        }
    }

    /// Snapshots written from now on carry these files (see packed.rs).
    pub fn carry(&mut self, files: &ToPack) -> std::io::Result<()> {
        let list = serde_json::to_vec(&files.list()).expect("a list of images serializes");
        self.carried = vec![(PACKED_LIST.to_string(), list)];
        for (image, stored) in &files.images {
            let mut bytes = Vec::new();
            let mut reader = stored;
            reader.seek(std::io::SeekFrom::Start(0))?;
            reader.read_to_end(&mut bytes)?;
            self.carried.push((image_component(&image.blake3), bytes));
        }
        Ok(())
    }

    /// Snapshots taken from now on name the position in this recording.
    pub fn within_recording(&mut self, header_hash: [u8; 32]) {
        self.recording = Some(header_hash);
    }

    /// Where the machine must stop for `--snapshot-at`, which is taken at
    /// that exact instruction count, inside a round if need be.
    pub fn pause_at(&self) -> Option<u64> {
        self.options.at.as_ref().map(|(at, _)| *at)
    }

    /// The machine stopped where [`Snapshotter::pause_at`] asked (or
    /// further, if it started there): takes the `--snapshot-at` snapshot.
    pub fn paused(&mut self, machine: &mut Machine) -> Result<Vec<Written>, String> {
        match self.options.at.take_if(|(at, _)| machine.position() >= *at) {
            Some((_, path)) => Ok(vec![self.full(machine, &path)?]),
            None => Ok(Vec::new()),
        }
    }

    /// At a round boundary: takes the series snapshot if one is due.
    pub fn boundary(&mut self, machine: &mut Machine) -> Result<Vec<Written>, String> {
        let mut written = Vec::new();
        let icount = machine.position();
        if icount >= self.series_next {
            let (every, dir) = self.options.every.clone().expect("a series has options");
            self.series_next = (icount / every + 1).saturating_mul(every);
            self.series_count += 1;
            let path = dir.join(format!("snap-{:05}-{icount}.rws", self.series_count));
            written.push(self.series(machine, &path)?);
        }
        Ok(written)
    }

    /// A full snapshot to `path` now (Ctrl-A s, the control socket).
    pub fn full(&mut self, machine: &mut Machine, path: &Path) -> Result<Written, String> {
        self.write(machine, path, None).map(|(w, _)| w)
    }

    /// Where Ctrl-A s writes.
    pub fn default_path(&self, machine: &Machine) -> PathBuf {
        let name = format!("rewind-{}.rws", machine.position());
        match &self.options.dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    fn series(&mut self, machine: &mut Machine, path: &Path) -> Result<Written, String> {
        let parent = self.series_parent;
        let (written, id) = self.write(machine, path, parent)?;
        let mark = machine.board.ram.mark();
        self.series_parent = Some((id, mark));
        // The next snapshot of the series stores the disk blocks written
        // from now on. Taken only once this one is written, so that after a
        // failure they would still be stored by the next.
        for n in 0..self.config.disks.len() {
            if let Some(disk) = image_disk(machine, n) {
                disk.take_written_blocks();
            }
        }
        Ok(written)
    }

    fn write(
        &mut self,
        machine: &mut Machine,
        path: &Path,
        parent: Option<(SnapshotId, WriteMark)>,
    ) -> Result<(Written, SnapshotId), String> {
        #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
        // how long it took, for the user
        let started = std::time::Instant::now();
        let mut components = self.components(machine, parent.is_some())?;
        // A snapshot that does not follow another is stored on top of the
        // machine's power-on RAM, which a restore rebuilds from the boot
        // files it checks anyway: pages not written since power-on (zero,
        // or the boot images' kernel text and data) need not be stored,
        // nor read (which would fault in all of a large RAM).
        let (on_top_of, listed) = match parent {
            Some((id, mark)) => (id, machine.board.ram.written_since(mark)),
            None => {
                let base = *self
                    .power_on
                    .get_or_insert_with(|| SnapshotId(machine.power_on_id()));
                components.push((POWER_ON.to_string(), base.0.to_vec()));
                (base, machine.written_since_power_on())
            }
        };
        let pages = Pages::Dirty {
            parent: on_top_of,
            pages: &listed,
        };
        let fail = |e: std::io::Error| format!("cannot write the snapshot {}: {e}", path.display());
        // Through a temporary file renamed into place, so that a crash never
        // leaves a half-written snapshot under the real name.
        let tmp = path.with_extension("rws.tmp");
        let result = (|| {
            let file = File::create(&tmp)?;
            let mut out = BufWriter::new(file);
            let id = SnapshotWriter::new().write(
                &mut out,
                &components,
                machine.board.ram.bytes(),
                pages,
            )?;
            out.flush()?;
            std::fs::rename(&tmp, path)?;
            Ok(id)
        })();
        let id = result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })?;
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok((
            Written {
                path: path.to_path_buf(),
                bytes,
                millis: started.elapsed().as_secs_f64() * 1e3,
                incremental: parent.is_some(),
            },
            id,
        ))
    }

    /// The components of a snapshot; an `incremental` one holds the disk
    /// blocks written since its parent instead of whole overlays.
    fn components(
        &self,
        machine: &mut Machine,
        incremental: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut parts = machine.save_state();
        parts.push((
            WRITER.to_string(),
            env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
        ));
        parts.extend(self.carried.iter().cloned());
        parts.push((
            CONFIG.to_string(),
            serde_json::to_vec(&self.config).expect("the configuration serializes"),
        ));
        if let Some(header) = self.recording {
            let position = RecordingPosition {
                header_blake3: header,
                at: Position {
                    round: machine.rounds,
                    icount: machine.position(),
                },
            };
            parts.push((
                RECORDING.to_string(),
                serde_json::to_vec(&position).expect("a position serializes"),
            ));
        }
        for n in 0..self.config.disks.len() {
            if let Some(disk) = image_disk(machine, n) {
                if disk.overlay().is_some() {
                    let mut bytes = Vec::new();
                    let name = Path::new("the snapshot");
                    let (component, saved) = if incremental {
                        (
                            disk_changes_component(n),
                            disk.write_overlay_changes(&mut bytes, name),
                        )
                    } else {
                        (disk_component(n), disk.write_overlay(&mut bytes, name))
                    };
                    saved.map_err(|e| format!("cannot save disk {n}'s overlay: {e}"))?;
                    parts.push((component, bytes));
                }
            }
        }
        Ok(parts)
    }
}

pub use crate::recorder::header_hash;

/// Where in a recording a snapshot was taken.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RecordingPosition {
    /// BLAKE3 of the recording's header (its configuration).
    pub header_blake3: [u8; 32],
    /// The boundary: every event up to this round was delivered before.
    pub at: Position,
}

/// A snapshot file and the incremental chain it ends, read and checked.
pub struct Restored {
    pub machine: Machine,
    pub config: RecordedConfig,
    pub recording: Option<RecordingPosition>,
}

/// Reads the snapshot at `path` (and, for an incremental one, its parents,
/// found among the snapshots in the same directory). A series can leave
/// thousands of files there: they are told apart by their headers alone,
/// and only the chain's files are read whole.
pub fn open_chain(path: &Path) -> Result<SnapshotChain, SessionError> {
    let message = |e: rewind_snapshot::SnapshotError| SessionError::Message(e.to_string());
    let head = Snapshot::open(path).map_err(message)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut by_id: Option<BTreeMap<SnapshotId, PathBuf>> = None;
    let mut chain = vec![head];
    while let Some(parent) = chain.last().and_then(Snapshot::parent) {
        if on_power_on(chain.last().expect("not empty")) == Some(parent) {
            break;
        }
        let siblings = by_id.get_or_insert_with(|| snapshots_in(dir));
        // Ids are hashes of headers that name their parents, so a chain
        // cannot loop; the bound only makes that plain.
        let found = siblings
            .get(&parent)
            .filter(|_| chain.len() <= siblings.len());
        let Some(file) = found else {
            return Err(SessionError::Message(format!(
                "{} is an incremental snapshot whose parent ({}) is not among the snapshots in {}",
                chain.last().expect("not empty").file().display(),
                parent,
                dir.display()
            )));
        };
        chain.push(Snapshot::open(file).map_err(message)?);
    }
    chain.reverse();
    match chain[0].parent() {
        Some(base) => SnapshotChain::on_base(chain, base),
        None => SnapshotChain::new(chain),
    }
    .map_err(message)
}

/// The power-on RAM a snapshot is stored on top of, if it is.
fn on_power_on(snapshot: &Snapshot) -> Option<SnapshotId> {
    let id = snapshot.component(POWER_ON)?;
    Some(SnapshotId(id.try_into().ok()?))
}

/// The `.rws` files in `dir` by id; files whose header is unreadable or
/// damaged are left out (they cannot be anyone's parent).
fn snapshots_in(dir: &Path) -> BTreeMap<SnapshotId, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rws"))
        .collect();
    // Of two files with one id (copies), the first by name, whatever order
    // the directory lists them in.
    files.sort();
    let mut by_id = BTreeMap::new();
    for file in files {
        if let Ok((id, _)) = Snapshot::identify(&file) {
            by_id.entry(id).or_insert(file);
        }
    }
    by_id
}

/// The RAM a snapshot chain holds, in a buffer of its own.
fn unpack_ram(chain: &SnapshotChain) -> Result<Vec<u8>, SessionError> {
    let size = usize::try_from(chain.ram_size()).map_err(|_| {
        SessionError::Message("the snapshot's RAM is too large for this host".into())
    })?;
    let mut ram = vec![0u8; size];
    let options = ApplyOptions {
        ram_is_zeroed: true,
        ..ApplyOptions::default()
    };
    chain
        .apply_pages_with(&mut ram, options)
        .map_err(|e| SessionError::Message(e.to_string()))?;
    Ok(ram)
}

/// Each disk's overlay as `chain` holds it (see the top of this file).
fn saved_overlays(
    chain: &SnapshotChain,
    disks: usize,
) -> Result<Vec<Option<SavedOverlay<'_>>>, SessionError> {
    let mut saved: Vec<Option<SavedOverlay<'_>>> = vec![None; disks];
    for snapshot in chain.snapshots() {
        let file = snapshot.file();
        for (n, disk) in saved.iter_mut().enumerate() {
            if let Some(whole) = snapshot.component(&disk_component(n)) {
                *disk = Some(SavedOverlay {
                    whole: (file, whole),
                    changes: Vec::new(),
                });
            }
            if let Some(changes) = snapshot.component(&disk_changes_component(n)) {
                let Some(disk) = disk else {
                    return Err(SessionError::Message(format!(
                        "{}: it holds the blocks of disk {n} written since its parent, but no snapshot before it holds the whole disk",
                        file.display()
                    )));
                };
                disk.changes.push((file, changes));
            }
        }
    }
    Ok(saved)
}

/// Refuses a snapshot made by another machine model, naming the Rewind
/// that made it, before any of its state is decoded.
fn check_snapshot_model(head: &Snapshot) -> Result<(), SessionError> {
    let file = head.file().display();
    let model = rewind_machine::state::saved_model(head.component(MODEL_COMPONENT))
        .ok_or_else(|| SessionError::Message(format!("{file}: its machine model is unreadable")))?;
    let writer = match head.component(WRITER) {
        Some(writer) => String::from_utf8_lossy(writer).into_owned(),
        // Before models were numbered, snapshots did not say who made them.
        None => "0.1.0".to_string(),
    };
    crate::recording::check_model(model, &writer, "snapshot", "restore")
        .map_err(|e| SessionError::Message(format!("{file}: {e}")))
}

/// Rebuilds the machine of a snapshot chain. The files it names come from
/// inside it if it is packed, else from `files` (those a recording carries,
/// for `replay --from`), else from the host; its disks keep their overlays
/// in `overlay_dir`.
pub fn restore(
    chain: &SnapshotChain,
    files: &Unpacked,
    overlay_dir: &Path,
) -> Result<Restored, SessionError> {
    let head = chain.head();
    check_snapshot_model(head)?;
    let file = head.file().display().to_string();
    let damaged = |what: String| SessionError::Message(format!("{file}: {what}"));
    let config: RecordedConfig = serde_json::from_slice(
        head.component(CONFIG)
            .ok_or_else(|| damaged("it has no machine configuration".to_string()))?,
    )
    .map_err(|e| damaged(format!("its machine configuration does not decode: {e}")))?;
    // Checked before the RAM buffer is allocated.
    check_config(&config, Origin::Snapshot)?;
    let own = Unpacked::from_snapshot(head)?;
    let files = if own.is_empty() { files } else { &own };
    if chain.ram_size() != config.mem_size {
        return Err(damaged(format!(
            "its RAM holds {} bytes but its configuration says {}",
            chain.ram_size(),
            config.mem_size
        )));
    }
    let overlays = saved_overlays(chain, config.disks.len())?;
    // The pages are unpacked into RAM of their own while another thread
    // reads and checks the boot files and builds the machine; the two are
    // independent, and each is about half of a restore. The machine is
    // built with RAM all zero (build_machine does so for a snapshot), and
    // so is the buffer, so the snapshot can skip every page it leaves out
    // instead of reading (and faulting in) all of RAM.
    // A chain on top of power-on RAM needs the machine's power-on id, which
    // hashes the boot images: that thread computes it too.
    let base = chain.snapshots()[0].parent();
    let (built, ram) = std::thread::scope(|s| {
        let built = s.spawn(|| {
            let machine = build_machine(&config, &overlays, Origin::Snapshot, files, overlay_dir)?;
            let power_on = base.map(|_| SnapshotId(machine.power_on_id()));
            Ok::<_, SessionError>((machine, power_on))
        });
        let ram = unpack_ram(chain);
        (
            built
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            ram,
        )
    });
    let (mut machine, power_on) = built?;
    let mut ram = ram?;
    // The machine's own components (the host's, packed files among them,
    // are not its to read).
    let parts: Vec<(String, Vec<u8>)> = head
        .components()
        .filter(|(name, _)| !name.starts_with("host:"))
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect();
    machine
        .restore_state(&parts)
        .map_err(|e| damaged(e.to_string()))?;
    let mut touched: Vec<usize> = chain
        .snapshots()
        .iter()
        .flat_map(|s| s.page_indices().map(|p| p as usize))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    if let (Some(base), Some(power_on)) = (base, power_on) {
        if base != power_on {
            return Err(damaged(format!(
                "it is stored on top of power-on RAM {base}, but its boot files load as {power_on} here (another version of Rewind may place them differently)"
            )));
        }
        machine.fill_power_on(&mut ram, &touched);
    }
    machine.board.ram.replace(ram, &touched);
    let recording = match head.component(RECORDING) {
        Some(bytes) => Some(
            serde_json::from_slice(bytes)
                .map_err(|e| damaged(format!("its recording position does not decode: {e}")))?,
        ),
        None => None,
    };
    Ok(Restored {
        machine,
        config,
        recording,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of snapshots of one page of RAM holding these components,
    /// each snapshot incremental to the one before.
    fn chain(components: &[&[(String, &[u8])]]) -> SnapshotChain {
        let ram = vec![1u8; 4096];
        let mut snapshots: Vec<Snapshot> = Vec::new();
        for (k, parts) in components.iter().enumerate() {
            let pages = match snapshots.last() {
                None => Pages::All,
                Some(parent) => Pages::Dirty {
                    parent: parent.id(),
                    pages: &[0],
                },
            };
            let mut bytes = Vec::new();
            SnapshotWriter::new()
                .write(&mut bytes, parts, &ram, pages)
                .unwrap();
            snapshots.push(Snapshot::from_bytes(bytes, format!("s{k}.rws")).unwrap());
        }
        SnapshotChain::new(snapshots).unwrap()
    }

    /// What `saved_overlays` made of disk 0, by the bytes of each part.
    fn parts(saved: &[Option<SavedOverlay<'_>>]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
        let disk = saved[0].as_ref()?;
        Some((
            disk.whole.1.to_vec(),
            disk.changes.iter().map(|(_, b)| b.to_vec()).collect(),
        ))
    }

    #[test]
    fn a_disk_starts_from_its_last_whole_overlay_and_takes_the_later_changes_in_order() {
        let (whole, changes) = (disk_component(0), disk_changes_component(0));
        let c = chain(&[
            &[(whole.clone(), b"A")],
            &[(changes.clone(), b"c1")],
            &[(changes.clone(), b"c2")],
        ]);
        let saved = saved_overlays(&c, 1).unwrap();
        assert_eq!(
            parts(&saved),
            Some((b"A".to_vec(), vec![b"c1".to_vec(), b"c2".to_vec()]))
        );
        // Snapshots from before incremental disks hold the whole overlay in
        // every link: the last one is the disk.
        let c = chain(&[&[(whole.clone(), b"A")], &[(whole.clone(), b"B")]]);
        assert_eq!(
            parts(&saved_overlays(&c, 1).unwrap()),
            Some((b"B".to_vec(), vec![]))
        );
        // No overlay saved at all: the disk starts as configured.
        let c = chain(&[&[], &[]]);
        assert_eq!(parts(&saved_overlays(&c, 1).unwrap()), None);
    }

    #[test]
    fn changes_to_a_disk_no_snapshot_holds_whole_are_one_sentence() {
        let c = chain(&[&[], &[(disk_changes_component(0), b"c1")]]);
        let Err(e) = saved_overlays(&c, 1) else {
            panic!("changes without a whole overlay were accepted");
        };
        assert_eq!(
            e.to_string(),
            "s1.rws: it holds the blocks of disk 0 written since its parent, but no snapshot before it holds the whole disk"
        );
    }
}

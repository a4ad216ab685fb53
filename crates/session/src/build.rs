//! Building machines: from boot files and a [`Shape`] (what `run` and
//! `record` start), and from the configuration a recording or snapshot
//! names, checked as the command line would check it, its files found
//! (packed inside the file, at their recorded paths, or in this host's
//! cache for the default guest) and checked against their hashes.

use crate::images::{self, Origin};
use crate::packed::Unpacked;
use crate::SessionError;
use rewind_machine::virtio::blk::{BackendError, BlockBackend};
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::virtio::VirtioConfig;
use rewind_machine::{Machine, MachineConfig};
use rewind_replay::{EntropyRef, RecordedConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::images::BootFiles;
use rewind_disk::{BlockSet, Disk};

/// The most harts `--smp` accepts, and so a file may ask for.
const MAX_HARTS: u32 = 64;

/// Refuses a configuration from a file that the command line would not
/// have accepted: a hostile one must be one sentence, not a machine built
/// as asked (a million harts, a terabyte of RAM).
pub fn check_config(config: &RecordedConfig, origin: Origin) -> Result<(), SessionError> {
    let noun = origin.noun();
    let refuse = |what: String| Err(SessionError::Message(format!("the {noun}'s {what}")));
    if let Err(why) = crate::size::check_mem_size(config.mem_size) {
        return refuse(format!("RAM size of {} bytes {why}", config.mem_size));
    }
    if !(1..=MAX_HARTS).contains(&config.harts) {
        return refuse(format!(
            "machine has {} harts, outside the supported 1 to {MAX_HARTS}",
            config.harts
        ));
    }
    let devices = config.disks.len()
        + config.nets.len()
        + usize::from(config.hvc)
        + usize::from(config.entropy.is_some());
    if devices > rewind_machine::virtio::SLOTS {
        return refuse(format!(
            "machine has {devices} virtio devices, more than the board's {} slots",
            rewind_machine::virtio::SLOTS
        ));
    }
    Ok(())
}

/// A disk's overlay as a snapshot chain holds it: whole, as the last
/// snapshot that holds it whole saved it, then the blocks each later one
/// changed, in order; each with the file it is in.
#[derive(Clone, Debug)]
pub struct SavedOverlay<'a> {
    pub whole: (&'a Path, &'a [u8]),
    pub changes: Vec<(&'a Path, &'a [u8])>,
}

/// The machine of a recording or snapshot, from files checked against its
/// hashes; disk `n` starts from the saved overlay `overlays[n]` if any, and
/// keeps its overlay in `overlay_dir`. A snapshot's machine starts with RAM
/// all zero, since the snapshot replaces it: loading the boot images would
/// be work undone at once.
pub fn build_machine(
    config: &RecordedConfig,
    overlays: &[Option<SavedOverlay<'_>>],
    origin: Origin,
    unpacked: &Unpacked,
    overlay_dir: &Path,
) -> Result<Machine, SessionError> {
    check_config(config, origin)?;
    let boot = images::from_recording(config, origin, unpacked)?;
    let mut disks: Vec<Box<dyn BlockBackend>> = Vec::new();
    for (n, recorded) in config.disks.iter().enumerate() {
        let mut disk = open_disk(n, recorded, origin, unpacked, overlay_dir)?;
        let failed = |e: rewind_disk::DiskError| SessionError::Message(format!("disk {n}: {e}"));
        match overlays.get(n).and_then(Option::as_ref) {
            Some(saved) => {
                let (file, whole) = saved.whole;
                disk.read_overlay(&mut &whole[..], whole.len() as u64, file)
                    .map_err(failed)?;
                for &(file, changes) in &saved.changes {
                    disk.apply_overlay_changes(&mut &changes[..], changes.len() as u64, file)
                        .map_err(failed)?;
                }
            }
            None => {
                if let Some(r) = &recorded.overlay {
                    let bytes = images::checked_image("overlay", r, origin, unpacked)?.bytes;
                    disk.read_overlay(&mut &bytes[..], bytes.len() as u64, Path::new(&r.path))
                        .map_err(failed)?;
                }
            }
        }
        disks.push(Box::new(DiskBackend::new(disk)));
    }
    let shape = Shape {
        mem_size: config.mem_size,
        harts: config.harts as usize,
        rtc_epoch_ns: config.rtc_epoch_ns,
        seed: config.seed,
        virtio: VirtioConfig {
            rng: config.entropy.map(|e| match e {
                EntropyRef::Seeded => Entropy::Seeded,
                EntropyRef::Host => Entropy::Host,
            }),
            net_macs: config.nets.iter().map(|n| n.mac).collect(),
            hvc: config.hvc,
        },
    };
    let config = machine_config(&boot, shape)?;
    Ok(match origin {
        Origin::Recording => Machine::with_disks(config, disks)?,
        Origin::Snapshot => Machine::with_zero_ram(config, disks)?,
    })
}

/// Opens disk `n` of a recording or snapshot over a fresh overlay in
/// `overlay_dir` (a replay never writes into an image), checking that its
/// base is the one recorded. A base packed inside the file is used as it is.
pub fn open_disk(
    n: usize,
    recorded: &rewind_replay::DiskRef,
    origin: Origin,
    unpacked: &Unpacked,
    overlay_dir: &Path,
) -> Result<Disk, SessionError> {
    let noun = origin.noun();
    let cannot = |e: &dyn std::fmt::Display| {
        SessionError::Message(format!("disk {n} of the {noun} cannot be opened: {e}"))
    };
    let path = PathBuf::from(&recorded.path);
    let packed = unpacked.disk(&recorded.base_blake3);
    let checked = packed.is_some();
    let mut disk = match packed {
        // Unpacking checked its content's hash, which is the base's.
        Some(file) => {
            let file = file.map_err(|e| cannot(&e))?;
            let source = rewind_disk::FileSource::new(&path, file).map_err(|e| cannot(&e))?;
            let image = rewind_disk::Image::raw(&path, Box::new(source));
            Disk::from_image_in(image, recorded.read_only, overlay_dir).map_err(|e| cannot(&e))?
        }
        None => {
            let spec = rewind_disk::DiskSpec {
                path: path.clone(),
                read_only: recorded.read_only,
                persist: false,
            };
            Disk::open_in(&spec, overlay_dir).map_err(|e| cannot(&e))?
        }
    };
    if disk.size() != recorded.size
        || (!checked && disk.base_content_hash()? != recorded.base_blake3)
    {
        let path = path.display();
        return Err(SessionError::Message(if recorded.persist {
            format!(
                "disk {n} ({path}) was opened with persist and has changed since (the run wrote into it); restore the image the {noun} started from"
            )
        } else {
            format!("disk {n} ({path}) is not the image the {noun} was made with (its content hash differs)")
        }));
    }
    Ok(disk)
}

/// 2026-01-01T00:00:00Z: what the guest's RTC reads at boot unless
/// `--rtc-epoch` says otherwise. Guest wall time is part of the
/// configuration, never read from the host behind the recording's back.
pub const DEFAULT_RTC_EPOCH_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// A disk image as a virtio-blk backend, keeping what a debugger's
/// in-memory checkpoints need to take it back in time.
pub struct DiskBackend {
    disk: Disk,
    /// Blocks written since the checkpoints last looked
    /// ([`DiskBackend::take_changed`]).
    changed: BlockSet,
    /// Whether the guest wrote into the image itself (`persist`), which
    /// no checkpoint can take back.
    wrote_image: bool,
}

impl DiskBackend {
    pub fn new(disk: Disk) -> Self {
        DiskBackend {
            disk,
            changed: BlockSet::new(),
            wrote_image: false,
        }
    }

    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    pub fn disk_mut(&mut self) -> &mut Disk {
        &mut self.disk
    }

    /// The blocks written since [`DiskBackend::forget_changed`] was last
    /// called (or since it was made).
    pub fn changed(&self) -> &BlockSet {
        &self.changed
    }

    pub fn forget_changed(&mut self) {
        self.changed = BlockSet::new();
    }
}

impl BlockBackend for DiskBackend {
    fn size(&self) -> u64 {
        self.disk.size()
    }
    fn read_only(&self) -> bool {
        self.disk.read_only()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        Ok(self.disk.read_at(offset, buf)?)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let result = self.disk.write_at(offset, data);
        if !data.is_empty() && !self.disk.read_only() {
            // Even after a failure, which may have changed some blocks.
            let block = rewind_disk::BLOCK_SIZE as u64;
            let last = (offset + data.len() as u64 - 1) / block;
            self.changed.insert_range(offset / block, last);
            self.wrote_image |= !self.disk.can_put_back();
        }
        Ok(result?)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(self.disk.flush()?)
    }
    fn irreversibly_written(&self) -> bool {
        self.wrote_image
    }
}

/// What every machine is built from besides its boot files and disks.
pub struct Shape {
    pub mem_size: u64,
    pub harts: usize,
    pub rtc_epoch_ns: u64,
    pub seed: u64,
    pub virtio: VirtioConfig,
}

/// The machine configuration for these boot files.
pub fn machine_config(boot: &BootFiles, shape: Shape) -> Result<MachineConfig, SessionError> {
    let (firmware, kernel) = boot.for_machine()?;
    Ok(MachineConfig {
        mem_size: shape.mem_size,
        harts: shape.harts,
        firmware,
        kernel: Some(kernel),
        initrd: boot.initrd.as_ref().map(|i| Arc::clone(&i.bytes)),
        bootargs: boot.bootargs.clone(),
        rtc_epoch_ns: shape.rtc_epoch_ns,
        seed: shape.seed,
        virtio: shape.virtio,
    })
}

/// The backend of virtio-blk device `n`, if it is a disk image.
pub fn disk_backend(machine: &mut Machine, n: usize) -> Option<&mut DiskBackend> {
    let backend = machine.disk_mut(n)?;
    (backend as &mut dyn std::any::Any).downcast_mut::<DiskBackend>()
}

/// The disk image behind virtio-blk device `n`.
pub fn image_disk(machine: &mut Machine, n: usize) -> Option<&mut Disk> {
    disk_backend(machine, n).map(DiskBackend::disk_mut)
}

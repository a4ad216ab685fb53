//! `rewind record`: a run whose configuration and inputs are written to a
//! recording as the run goes, with a state checkpoint every N steps.
//!
//! Frames are written at every checkpoint and at least once a second of host
//! time, so a recording cut short by a crash or SIGKILL loses at most the
//! last second and replays up to its last complete frame. (Host time decides
//! only when bytes reach the file, never what the guest sees.)

use crate::{CliError, RunArgs};
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::Machine;
use rewind_net::NetSpec;
use rewind_replay::{DiskRef, EntropyRef, Header, NetRef, RecordedConfig};
use rewind_session::build::Shape;
use rewind_session::images::{BootFiles, Image, Origin};
use rewind_session::packed::{ToPack, Unpacked};
use std::fs::File;
use std::path::PathBuf;

pub use rewind_session::recorder::{header_hash, Recorder};

/// What `rewind record` adds to the options of `run`.
pub struct RecordOptions {
    pub output: PathBuf,
    pub checkpoint_every: u64,
    /// `--pack`: carry the files the machine is built from inside.
    pub pack: bool,
}

/// The configuration a recording names: the machine's shape, the boot files
/// and disks by content hash, the network devices.
pub fn recorded_config(
    args: &RunArgs,
    boot: &BootFiles,
    shape: &Shape,
    disks: &mut [rewind_disk::Disk],
) -> Result<RecordedConfig, CliError> {
    let mut disk_refs = Vec::new();
    for (n, (disk, spec)) in disks.iter_mut().zip(&args.disks).enumerate() {
        let overlay = match args.load_overlays.iter().rev().find(|(d, _)| *d == n) {
            Some((_, path)) => Some(Image::read("overlay", path)?.reference),
            None => None,
        };
        disk_refs.push(DiskRef {
            overlay,
            path: spec.path.display().to_string(),
            read_only: spec.read_only,
            persist: spec.persist,
            size: disk.size(),
            base_blake3: disk.base_content_hash()?,
        });
    }
    let nets = args
        .nets
        .iter()
        .zip(&shape.virtio.net_macs)
        .map(|(spec, mac)| NetRef {
            mac: *mac,
            backend: match spec {
                NetSpec::User(_) => "user".to_string(),
                NetSpec::Tap(name) => format!("tap={name}"),
            },
        })
        .collect();
    Ok(RecordedConfig {
        mem_size: shape.mem_size,
        harts: shape.harts as u32,
        firmware: boot.firmware_ref(),
        kernel: boot.kernel.reference.clone(),
        initrd: boot.initrd.as_ref().map(|i| i.reference.clone()),
        default_guest: boot.default_guest,
        bootargs: boot.bootargs.clone(),
        rtc_epoch_ns: shape.rtc_epoch_ns,
        seed: shape.seed,
        entropy: shape.virtio.rng.map(|e| match e {
            Entropy::Seeded => EntropyRef::Seeded,
            Entropy::Host => EntropyRef::Host,
        }),
        hvc: shape.virtio.hvc,
        nets,
        disks: disk_refs,
    })
}

/// Creates the recording `options` ask for of a machine built from
/// `config`, carrying its files when `--pack` asks.
pub fn create_recorder(
    options: &RecordOptions,
    config: RecordedConfig,
    machine: &mut Machine,
) -> Result<Recorder, CliError> {
    let to_pack = match options.pack {
        true => Some(ToPack::gather(
            &config,
            Origin::Recording,
            &Unpacked::default(),
        )?),
        false => None,
    };
    let header = Header {
        writer: env!("CARGO_PKG_VERSION").to_string(),
        config,
        checkpoint_every: options.checkpoint_every,
        packed: to_pack.as_ref().map(ToPack::list).unwrap_or_default(),
    };
    let mut stored: Vec<&File> = to_pack
        .iter()
        .flat_map(|p| p.images.iter().map(|(_, file)| file))
        .collect();
    let mut images: Vec<&mut dyn std::io::Read> = stored
        .iter_mut()
        .map(|f| f as &mut dyn std::io::Read)
        .collect();
    Recorder::create(options.output.clone(), &header, &mut images, machine)
}

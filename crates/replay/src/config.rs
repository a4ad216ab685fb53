//! The configuration a recording was made with: everything besides the
//! inputs that determines what the guest does, with content hashes of the
//! images it was loaded from so that replay can refuse different ones.

use serde::{Deserialize, Serialize};

/// A file the machine was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The path it was read from when recording.
    pub path: String,
    pub size: u64,
    /// BLAKE3 of its content.
    pub blake3: [u8; 32],
}

/// The M-mode firmware.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirmwareRef {
    None,
    Builtin,
    Binary(ImageRef),
}

/// A virtio-blk disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRef {
    pub path: String,
    pub read_only: bool,
    /// Written into the image while recording; replay still uses an overlay.
    pub persist: bool,
    pub size: u64,
    /// BLAKE3 of the guest-visible content of the base image before the run.
    pub base_blake3: [u8; 32],
    /// The overlay the disk started from (`--load-overlay`), if any.
    pub overlay: Option<ImageRef>,
}

/// A virtio-net device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRef {
    pub mac: [u8; 6],
    /// The backend it was recorded with, as given on the command line (for
    /// `inspect`; replay takes frames from the recording instead).
    pub backend: String,
}

/// Where virtio-rng's bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntropyRef {
    /// A generator seeded from `seed`.
    Seeded,
    /// The host's /dev/urandom; every byte is in the recording.
    Host,
}

/// The machine configuration of a recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedConfig {
    pub mem_size: u64,
    pub harts: u32,
    pub firmware: FirmwareRef,
    pub kernel: ImageRef,
    pub initrd: Option<ImageRef>,
    /// True when kernel, initrd and firmware were the default guest's, which
    /// replay fetches into its cache if they are missing.
    pub default_guest: bool,
    pub bootargs: String,
    /// What the RTC showed at virtual time zero, in ns since 1970.
    pub rtc_epoch_ns: u64,
    pub seed: u64,
    pub entropy: Option<EntropyRef>,
    pub hvc: bool,
    pub nets: Vec<NetRef>,
    pub disks: Vec<DiskRef>,
}

/// The header of a recording, after its preamble.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The Rewind version that wrote it, e.g. "0.2.0". Always the first
    /// field: readers of other format versions look for it there.
    pub writer: String,
    pub config: RecordedConfig,
    /// Instructions (summed over harts) between checkpoints.
    pub checkpoint_every: u64,
    /// The images stored in the file after the header (`rewind pack`), in
    /// file order: a replay takes each file the configuration names by this
    /// hash from here instead of the host.
    pub packed: Vec<PackedImage>,
}

/// A file stored inside a recording or snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedImage {
    /// BLAKE3 of its content: what a configuration names it by.
    pub blake3: [u8; 32],
    /// The size of its content in bytes.
    pub size: u64,
    /// The size of its stored (compressed) form in bytes.
    pub stored: u64,
}

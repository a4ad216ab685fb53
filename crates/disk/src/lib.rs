//! Disk images for Rewind's virtio-blk devices.
//!
//! A [`Disk`] is a base image — raw, or qcow2 as `qemu-img` makes it (versions
//! 2 and 3, backing chains, zero and compressed clusters), detected by
//! content — plus, by default, a copy-on-write [`Overlay`] that takes the
//! guest's writes so the image file never changes. The overlay's blocks live
//! in an unnamed sparse file in a host directory (`$TMPDIR`, or the one
//! given), not in host memory, and vanish with the process unless saved.
//! `persist` (raw images only) writes into the file instead; `ro` refuses
//! writes.
//!
//! Every parser here reads untrusted bytes (qcow2 headers, tables, backing
//! file names, saved overlay files): sizes are bounded, arithmetic is
//! checked, reads stay inside the file, and a damaged or hostile input is one
//! [`DiskError`] sentence naming the file and the offset, never a panic.
//! Parsing works over [`ImageSource`], so it runs on files and on memory
//! alike (the fuzz target `fuzz/fuzz_targets/qcow2.rs` feeds it bytes).
//!
//! Determinism: the guest-visible content is a pure function of the base
//! image's bytes and the writes. Nothing reads host time or randomness, and
//! every map is ordered.

mod block_file;
mod block_set;
mod disk;
mod error;
pub mod image;
pub mod overlay;
pub mod qcow2;
mod source;
mod spec;

pub use block_set::BlockSet;
pub use disk::Disk;
pub use error::DiskError;
pub use image::{Format, Image, MAX_CHAIN_DEPTH};
pub use overlay::{read_overlay_file, BaseId, Overlay, BLOCK_SIZE, OVERLAY_MAGIC};
pub use source::{FileOpener, FileSource, ImageSource, NoBackingFiles, Opener};
pub use spec::DiskSpec;

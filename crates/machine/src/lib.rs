//! The Rewind board: RAM, bus, devices, image loading and hart scheduling.
//!
//! Nothing in this crate reads host time or host randomness; the only way
//! anything from outside reaches the guest is through methods the embedding
//! program calls at points the machine chooses.

pub mod board;
pub mod boot;
pub mod devices;
pub mod fdt;
pub mod loader;
pub mod machine;
pub mod sbi;
pub mod state;
pub mod virtio;

pub use boot::Firmware;
pub use loader::KernelImage;
pub use machine::{Machine, MachineConfig, MachineError, Round, RoundCursor, StopReason};

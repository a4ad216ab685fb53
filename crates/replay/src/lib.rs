//! Rewind's recordings: the configuration and the external inputs of a run,
//! with periodic state checkpoints, in a format that survives being cut short.

pub mod config;
pub mod events;
pub mod format;
pub mod packed;

pub use config::{
    DiskRef, EntropyRef, FirmwareRef, Header, ImageRef, NetRef, PackedImage, RecordedConfig,
};
pub use events::{Checkpoint, EndPhase, Event, Port, Position};
pub use format::{read_all, FormatError, Recording, RecordingReader, RecordingWriter};

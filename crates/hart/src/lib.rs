//! Rewind's RV64GC hart: decode, execute, CSRs, privilege modes, traps, MMU,
//! TLB and FPU. It performs no I/O and reads nothing from the host: everything
//! outside the hart is reached through the [`Bus`] trait, and time is the
//! hart's own instruction-derived clock.

mod block;
pub mod bus;
pub mod csr;
mod debug;
pub mod decode;
mod engine;
mod exec;
pub mod fpu;
mod hart;
mod jit;
pub mod memory;
mod mmu;
mod pmp;
mod tlb;

pub use bus::Bus;
pub use debug::{DebugHooks, DebugStop, Space, Watch, WatchKind};
pub use engine::Engine;
pub use hart::{cause, prv, ArchState, Exception, Exit, Hart};
pub use memory::{Ram, WriteMark, PAGE_SIZE};
pub use tlb::{SavedEntry, TlbState};

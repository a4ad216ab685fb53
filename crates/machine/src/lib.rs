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
pub mod page_digest;
pub mod sbi;
pub mod state;
pub mod virtio;

pub use boot::Firmware;
pub use loader::KernelImage;
pub use machine::{Machine, MachineConfig, MachineError, Round, RoundCursor, StopReason};

/// The machine model version: what recordings and snapshots carry so that a
/// Rewind never replays or restores a file made by a machine that behaves
/// differently (it would report a divergence that is no bug of the guest's).
/// It covers everything a file's meaning depends on below the file formats:
/// the round length (`machine::QUANTUM`), what each instruction and device
/// does, the board's device set and memory map, how the device tree and boot
/// state are built, and the layout of every saved state (snapshot
/// components and checkpoint harts, which are bincode encodings of the
/// state structs). Bump it with any such change;
/// `state::tests::the_model_version_pins_what_a_machine_does` fails until
/// its pinned hash is updated too.
///
/// 1. Rewind 0.1.0: files made before models were numbered.
/// 2. The TLB is machine state (saved, hashed, in checkpoints); a machine
///    can stop inside a round, and where is state; a store into another
///    code page no longer ends the running block; the UART says when the
///    guest listens for input; the built-in SBI follows SBI 2.0 more
///    closely (DBCN bounds, HSM and SRST argument checks).
/// 3. Time is counted in positions (steps: instructions retired plus traps
///    entered), each hart saves its trap count, and a machine stopped at a
///    position is just before its next step rather than just after the
///    last instruction; recordings place events by position.
/// 4. The TLB holds 2048 entries per table instead of 256, so which
///    translations a guest keeps using after changing its page tables
///    without SFENCE.VMA (and the saved TLB) differ.
/// 5. The state hash covers RAM through a digest per page (pages known to
///    be zero are not read), so every state hash differs from model 4's.
/// 6. SFENCE.VMA with an address drops only the TLB entries of that
///    address's leaf PTE (model 5 dropped them all), and each saved TLB
///    entry records the level of its leaf.
/// 7. csrrs and csrrc on mip set or clear bits of SEIP's software-writable
///    bit, not of the value read (which ORs in the PLIC's line): model 6
///    latched a high line into mip.SEIP whenever M-mode touched another
///    mip bit, and S-mode can never clear that. With Sstc enabled, mip.STIP
///    ignores writes (model 6 kept them, hidden until STCE was cleared).
///    PAUSE ends its hart's turn: it stalls to the end of the round.
pub const MODEL_VERSION: u32 = 7;

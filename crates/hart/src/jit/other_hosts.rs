//! Hosts the translator does not emit code for: nothing is ever
//! translated, and the interpreter runs everything.

pub(crate) struct JitContext {
    pub(crate) x: *mut u64,
    pub(crate) ram: *mut u8,
    pub(crate) written: *mut u32,
    pub(crate) tlb_data: *const crate::tlb::TlbEntry,
    pub(crate) epoch: u32,
    pub(crate) budget: u64,
    pub(crate) exit_pc: u64,
    pub(crate) exit_before: u64,
    pub(crate) exit_cell: *mut u64,
    pub(crate) tlb_exec: *const crate::tlb::TlbEntry,
    pub(crate) generations: *const u32,
    pub(crate) jumps: *const JumpEntry,
}

pub(crate) const JUMP_CACHE: usize = 1;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct JumpEntry {
    pub(crate) off: u64,
    pub(crate) pc: u64,
    pub(crate) generation: u64,
    pub(crate) chain: u64,
}

pub(crate) type NativeBlock = fn(*mut JitContext) -> u64;

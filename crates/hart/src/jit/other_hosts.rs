//! Hosts the translator does not emit code for: nothing is ever
//! translated, and the interpreter runs everything.

pub(crate) struct JitContext {
    pub(crate) x: *mut u64,
    pub(crate) ram: *mut u8,
    pub(crate) written: *mut u32,
    pub(crate) tlb_read: *const crate::tlb::TlbEntry,
    pub(crate) tlb_write: *const crate::tlb::TlbEntry,
    pub(crate) epoch: u32,
    pub(crate) exit_pc: u64,
}

pub(crate) type NativeBlock = fn(*mut JitContext) -> u64;

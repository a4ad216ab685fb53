//! Hosts the translator does not emit code for: nothing is ever
//! translated, and the interpreter runs everything.

/// Nothing to give translated code: there is none.
pub(crate) struct JitContext;

impl JitContext {
    pub(crate) const fn new() -> Self {
        JitContext
    }
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

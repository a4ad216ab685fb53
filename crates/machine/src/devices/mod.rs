//! The board's devices, one module each, each with its state beside its code.

pub mod clint;
pub mod finisher;
pub mod plic;
pub mod rtc;
pub mod uart;

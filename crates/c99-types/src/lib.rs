//! The C99 `<stdint.h>` "fast" integer types used by `softfloat-sys`.
//!
//! The crates.io `c99` crate derives these by compiling and running a C
//! program through cmake at build time, which would make cmake a build
//! prerequisite of Rewind. Their widths are fixed by each platform's C
//! library ABI, so they are written down here instead; a platform not listed
//! fails to build rather than guessing an ABI.
#![allow(non_camel_case_types)]

pub type int8_t = i8;
pub type int16_t = i16;
pub type int32_t = i32;
pub type int64_t = i64;
pub type uint8_t = u8;
pub type uint16_t = u16;
pub type uint32_t = u32;
pub type uint64_t = u64;

pub type int_fast8_t = i8;
pub type uint_fast8_t = u8;
pub type int_fast64_t = i64;
pub type uint_fast64_t = u64;

// glibc on 64-bit targets makes the 16- and 32-bit fast types `long`.
#[cfg(all(target_env = "gnu", target_pointer_width = "64"))]
mod fast {
    pub type int_fast16_t = i64;
    pub type uint_fast16_t = u64;
    pub type int_fast32_t = i64;
    pub type uint_fast32_t = u64;
}

// musl makes them `int` / `unsigned int`.
#[cfg(target_env = "musl")]
mod fast {
    pub type int_fast16_t = i32;
    pub type uint_fast16_t = u32;
    pub type int_fast32_t = i32;
    pub type uint_fast32_t = u32;
}

#[cfg(not(any(
    all(target_env = "gnu", target_pointer_width = "64"),
    target_env = "musl"
)))]
compile_error!("the C99 fast integer types of this platform's C library are not known to Rewind");

pub use fast::*;

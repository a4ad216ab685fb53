//! Arbitrary bytes as guest code and data: the hart runs them on the real
//! board for a bounded number of instructions. Whatever a hostile guest
//! does (illegal encodings, wild page tables, PMP, device accesses), the
//! host must not panic or touch memory outside guest RAM.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_hart::Hart;
use rewind_machine::board::{Board, RAM_BASE};

fuzz_target!(|data: &[u8]| {
    let mut board = Board::new(64 << 10, 1, 0);
    let len = data.len().min(64 << 10);
    board
        .ram
        .write_bytes(RAM_BASE, &data[..len])
        .expect("fits in RAM");
    let mut hart = Hart::new(0, RAM_BASE);
    // Let traps land somewhere deterministic inside the fuzzed image.
    hart.csr.mtvec = RAM_BASE + 0x100;
    hart.run(&mut board, 20_000);
});

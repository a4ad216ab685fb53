//! Arbitrary bytes as guest code and data, run on two harts in lockstep:
//! one interpreting, one translating every block at its first run. They
//! must stop with the same exits, architectural state and RAM at every
//! comparison point (some of them inside blocks, where budgets end), or
//! the translator differs from the interpreter on these bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_hart::{Engine, Hart};
use rewind_machine::board::{Board, RAM_BASE};

const RAM: u64 = 64 << 10;

fn machine(data: &[u8], engine: Engine) -> (Hart, Board) {
    let mut board = Board::new(RAM, 1, 0);
    let len = data.len().min(RAM as usize);
    board
        .ram
        .write_bytes(RAM_BASE, &data[..len])
        .expect("fits in RAM");
    let mut hart = Hart::new(0, RAM_BASE);
    // Traps land somewhere deterministic inside the fuzzed image.
    hart.csr.mtvec = RAM_BASE + 0x100;
    // The FP unit on or off (as the first byte says), so that FP
    // instructions run, through translated code too, or trap.
    if data.first().is_some_and(|b| b & 1 != 0) {
        hart.csr.mstatus |= 3 << 13;
    }
    hart.set_engine(engine).expect("an x86-64 host");
    hart.set_translation_threshold(0);
    (hart, board)
}

fuzz_target!(|data: &[u8]| {
    let (mut interp, mut interp_board) = machine(data, Engine::Interp);
    let (mut jit, mut jit_board) = machine(data, Engine::Jit);
    for chunk in [1u64, 5, 100, 3, 1000, 17, 5000].iter().cycle().take(24) {
        let to = interp.steps() + chunk;
        let a = interp.run_bounded(&mut interp_board, 20_000, to);
        let b = jit.run_bounded(&mut jit_board, 20_000, to);
        assert_eq!(a, b, "exits differ before step {to}");
        assert_eq!(interp.arch_state(), jit.arch_state(), "states differ at step {to}");
        assert!(
            interp_board.ram.bytes() == jit_board.ram.bytes(),
            "RAM differs at step {to}"
        );
        if interp.clock() >= 20_000 {
            break;
        }
    }
});

//! The decoded-block cache on both engines: code rewritten where a block
//! was cached runs as rewritten, whether the new block is shorter or longer
//! than the old one, and a program with more distinct code than the cache
//! keeps decoded runs on when the cache starts over.

mod common;

use common::enc::{addi, jalr};
use common::*;
use rewind_hart::{Engine, Exit, Hart};

const DRIVER: u64 = RAM_BASE + 0x1000;
const TARGET: u64 = RAM_BASE + 0x2000;

fn hart_on(engine: Engine, pc: u64) -> Hart {
    let mut hart = new_hart(pc);
    hart.set_engine(engine).expect("the engine");
    // Translate at the first run, so that translations are cached too.
    hart.set_translation_threshold(0);
    hart
}

/// `count` increments of `reg`, then a return through x1.
fn target(reg: u32, count: usize) -> Vec<u32> {
    let mut code = vec![addi(reg, reg, 1); count];
    code.push(jalr(0, 1, 0));
    code
}

/// Calls TARGET (through x8), whose body has `count` instructions,
/// `calls` times: each call is one run of exactly its steps, so that the
/// translating engine runs the body as translated code.
fn run_calls(hart: &mut Hart, bus: &mut TestBus, count: u64, calls: u64) {
    for _ in 0..calls {
        hart.pc = DRIVER;
        // The call, the body and the return.
        let exit = hart.run_bounded(bus, u64::MAX, hart.steps() + count + 2);
        assert_eq!(exit, Exit::Retired);
        assert_eq!(hart.pc, DRIVER + 4, "back from the call");
    }
}

#[test]
fn code_rewritten_where_a_block_was_cached_runs_as_rewritten() {
    for engine in [Engine::Interp, Engine::Jit] {
        let mut bus = TestBus::new(1 << 20);
        install_trap_handler(&mut bus);
        bus.write_code(DRIVER, &[jalr(1, 8, 0)]);
        let mut hart = hart_on(engine, DRIVER);
        hart.x[8] = TARGET;

        // Each version replaces the last in place; the cache slot of
        // TARGET's block sees a block of 9, then 3, then 40 instructions.
        for (reg, count) in [(5, 8), (6, 2), (7, 39), (28, 8)] {
            bus.write_code(TARGET, &target(reg, count));
            run_calls(&mut hart, &mut bus, count as u64, 3);
            assert_eq!(hart.x[reg as usize], 3 * count as u64, "{engine:?}: x{reg}");
        }
        assert_eq!(
            (hart.x[5], hart.x[6], hart.x[7]),
            (24, 6, 117),
            "{engine:?}: each version ran only while it was in RAM"
        );
        if engine == Engine::Jit {
            assert!(hart.translated_steps() >= 3 * (8 + 2 + 39 + 8));
        }
    }
}

#[test]
fn more_code_than_the_cache_keeps_decoded_runs_as_written() {
    // 1.25 M instructions in a row, more than the block cache keeps
    // decoded (2^20), run twice: the cache starts over during the first
    // pass, and the second pass builds every block again.
    const INSTS: u64 = 5 << 18;
    let start = RAM_BASE + 0x1000;
    let mut code = vec![addi(5, 5, 1); INSTS as usize];
    code.push(addi(6, 6, 1));
    code.push(jalr(0, 8, 0));
    for engine in [Engine::Interp, Engine::Jit] {
        let mut bus = TestBus::new(8 << 20);
        install_trap_handler(&mut bus);
        bus.write_code(start, &code);
        let mut hart = hart_on(engine, start);
        hart.x[8] = start;
        let steps = 2 * (INSTS + 2);
        let exit = hart.run_bounded(&mut bus, u64::MAX, steps);
        assert_eq!(exit, Exit::Retired, "{engine:?}");
        assert_eq!((hart.x[5], hart.x[6]), (2 * INSTS, 2), "{engine:?}");
        assert_eq!(hart.pc, start, "{engine:?}");
    }
}

#[test]
fn an_instruction_across_a_page_boundary_runs_translated_and_sees_its_upper_half_change() {
    // A loop whose fourth instruction has its halves on two pages.
    let start = RAM_BASE + 0x1ff2;
    let straddling = start + 12;
    assert_eq!(straddling & 0xfff, 0xffe);
    let code = [
        addi(5, 5, 1),
        addi(6, 6, 1),
        addi(7, 7, 1),
        addi(28, 28, 1),
        addi(29, 29, 1),
        jalr(0, 8, 0),
    ];
    let rounds = 50;
    for engine in [Engine::Interp, Engine::Jit] {
        let mut bus = TestBus::new(1 << 20);
        install_trap_handler(&mut bus);
        bus.write_code(start, &code);
        let mut hart = hart_on(engine, start);
        hart.x[8] = start;
        let exit = hart.run_bounded(&mut bus, u64::MAX, 6 * rounds);
        assert_eq!(exit, Exit::Retired, "{engine:?}");
        assert_eq!(
            (hart.x[5], hart.x[28], hart.x[29]),
            (rounds, rounds, rounds),
            "{engine:?}"
        );
        if engine == Engine::Jit {
            // Every step, the straddling one included, ran translated.
            assert_eq!(hart.translated_steps(), 6 * rounds);
        }

        // The upper half (the immediate's bits) changes: addi x28, x28, 3.
        let changed = addi(28, 28, 3);
        assert_eq!(changed & 0xffff, code[3] & 0xffff);
        bus.write_u16(straddling + 2, (changed >> 16) as u16);
        let exit = hart.run_bounded(&mut bus, u64::MAX, 12 * rounds);
        assert_eq!(exit, Exit::Retired, "{engine:?}");
        assert_eq!(
            (hart.x[5], hart.x[28], hart.x[29]),
            (2 * rounds, 4 * rounds, 2 * rounds),
            "{engine:?}: the new upper half took effect at once"
        );
    }
}

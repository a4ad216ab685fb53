//! A debugger's hooks on a hart: breakpoints stop before the instruction,
//! watchpoints right after the access, step limits before the next step;
//! none of them changes what the hart does, and reading memory for a
//! debugger changes nothing the guest can see.

mod common;

use common::*;
use rewind_hart::{DebugHooks, DebugStop, Exit, Hart, Space, Watch, WatchKind};

const CODE: u64 = RAM_BASE + 0x1000;
const DATA: u64 = RAM_BASE + 0x8000;
/// A loop: x5 += 1; store x5 at DATA; load it into x7; again.
const LOOP: [u32; 4] = [
    0x0012_8293, // addi x5, x5, 1
    0x0053_3023, // sd x5, 0(x6)
    0x0003_3383, // ld x7, 0(x6)
    0xff5f_f06f, // jal x0, -12
];

fn setup() -> (Hart, TestBus) {
    let mut bus = TestBus::new(1 << 20);
    install_trap_handler(&mut bus);
    bus.write_code(CODE, &LOOP);
    let mut hart = new_hart(CODE);
    hart.x[6] = DATA;
    (hart, bus)
}

/// Runs until the hart stops for its hooks (or `steps` steps pass).
fn run_hooked(hart: &mut Hart, bus: &mut TestBus, steps: u64) -> Exit {
    let max = hart.steps() + steps;
    hart.run_bounded(bus, u64::MAX, max)
}

fn hooks(edit: impl FnOnce(&mut DebugHooks)) -> Option<DebugHooks> {
    let mut hooks = DebugHooks::default();
    edit(&mut hooks);
    Some(hooks)
}

#[test]
fn a_breakpoint_stops_before_its_instruction_and_is_passed_on_resume() {
    let (mut hart, mut bus) = setup();
    hart.set_debug(hooks(|h| {
        h.breakpoints.insert(CODE + 4);
    }));
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Debug);
    assert_eq!(
        hart.take_debug_stop(),
        Some(DebugStop::Breakpoint { pc: CODE + 4 })
    );
    assert_eq!((hart.pc, hart.instret), (CODE + 4, 1));
    assert_eq!(bus.read_u64(DATA), 0, "the store has not happened");
    // Resumed where it stopped, it runs the loop once more.
    let pass = hart.steps();
    hart.set_debug(hooks(|h| {
        h.breakpoints.insert(CODE + 4);
        h.pass_at_step = Some(pass);
    }));
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Debug);
    assert_eq!(
        (hart.pc, hart.instret, bus.read_u64(DATA)),
        (CODE + 4, 5, 1)
    );
}

#[test]
fn a_watchpoint_stops_right_after_the_access() {
    let (mut hart, mut bus) = setup();
    let watch = |kind| Watch {
        start: DATA + 4,
        len: 1,
        kind,
        space: Space::Virtual,
    };
    hart.set_debug(hooks(|h| h.watches.push(watch(WatchKind::Write))));
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Debug);
    assert_eq!(
        hart.take_debug_stop(),
        Some(DebugStop::Watch {
            watch: watch(WatchKind::Write),
            addr: DATA + 4,
            write: true
        })
    );
    assert_eq!(
        (hart.pc, hart.instret, bus.read_u64(DATA)),
        (CODE + 8, 2, 1)
    );
    // A read watch on the physical address stops after the load.
    let physical = Watch {
        space: Space::Physical,
        ..watch(WatchKind::Read)
    };
    hart.set_debug(hooks(|h| h.watches.push(physical)));
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Debug);
    assert!(matches!(
        hart.take_debug_stop(),
        Some(DebugStop::Watch { write: false, .. })
    ));
    assert_eq!((hart.pc, hart.instret, hart.x[7]), (CODE + 12, 3, 1));
}

#[test]
fn a_step_limit_stops_the_hart_before_its_next_step() {
    let (mut hart, mut bus) = setup();
    hart.set_debug(hooks(|h| h.stop_at_step = Some(7)));
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Debug);
    assert_eq!(hart.take_debug_stop(), Some(DebugStop::Step));
    assert_eq!(hart.steps(), 7);
}

/// The same run with and without hooks (stopping and going on each time)
/// ends in the same architectural state and TLB.
#[test]
fn hooks_change_nothing_the_hart_does() {
    let (mut plain, mut plain_bus) = setup();
    assert_eq!(run_hooked(&mut plain, &mut plain_bus, 1000), Exit::Retired);
    let (mut hooked, mut bus) = setup();
    let mut stops = 0;
    while hooked.steps() < 1000 {
        let pass = hooked.steps();
        hooked.set_debug(hooks(|h| {
            h.breakpoints.insert(CODE + 8);
            h.watches.push(Watch {
                start: DATA,
                len: 8,
                kind: WatchKind::Access,
                space: Space::Virtual,
            });
            h.pass_at_step = Some(pass);
        }));
        let exit = hooked.run_bounded(&mut bus, u64::MAX, 1000);
        if exit == Exit::Debug {
            stops += 1;
        }
    }
    hooked.set_debug(None);
    assert!(stops > 100, "the hooks stopped the hart {stops} times");
    assert_eq!(hooked.arch_state(), plain.arch_state());
    assert_eq!(hooked.tlb_state(), plain.tlb_state());
    assert_eq!(bus.read_u64(DATA), plain_bus.read_u64(DATA));
}

/// Sv39 with one gigapage: reading through it for a debugger neither sets
/// its A and D bits nor fills the TLB.
#[test]
fn a_debugger_reads_through_the_page_table_without_side_effects() {
    let (mut hart, mut bus) = setup();
    let root = RAM_BASE + 0x10000;
    // VA 0x4000_0000 (gigapage 1) maps RAM_BASE; V R W X, A and D clear.
    let pte = ((RAM_BASE >> 12) << 10) | 0b1111;
    bus.write_u64(root + 8, pte);
    bus.write_u64(DATA, 0x1122_3344_5566_7788);
    hart.prv = 1;
    hart.csr.satp = (8 << 60) | (root >> 12);
    let before = (hart.tlb_state(), hart.arch_state());
    let va = 0x4000_0000 + (DATA - RAM_BASE);
    assert_eq!(hart.peek_translate(&bus.ram, va), Some(DATA));
    let mut out = [0u8; 8];
    assert_eq!(hart.peek_virtual(&bus.ram, va, &mut out), 8);
    assert_eq!(u64::from_le_bytes(out), 0x1122_3344_5566_7788);
    assert_eq!(bus.read_u64(root + 8), pte, "A and D are untouched");
    assert_eq!((hart.tlb_state(), hart.arch_state()), before);
    // Unmapped: nothing read.
    assert_eq!(hart.peek_virtual(&bus.ram, 0x8000_0000_0000, &mut out), 0);
}

/// Translated blocks chain into each other without the hart's loop; with
/// a debugger attached they must not, or a breakpoint at the start of a
/// block reached by a chained jump is never seen.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_breakpoint_in_a_block_translated_code_jumps_to_stops_the_hart() {
    use rewind_hart::Engine;
    let mut bus = TestBus::new(1 << 20);
    install_trap_handler(&mut bus);
    let b = CODE + 0x40;
    // A: x5 += 1, on to B; B: x6 += 1, back to A. Same page: they chain.
    bus.write_code(CODE, &[0x0012_8293, 0x03c0_006f]); // addi x5,x5,1; jal x0,+0x3c
    bus.write_code(b, &[0x0013_0313, 0xfc1f_f06f]); // addi x6,x6,1; jal x0,-0x40
    let mut hart = new_hart(CODE);
    hart.set_engine(Engine::Jit).expect("the translator");
    hart.set_translation_threshold(0);
    // Long enough that both blocks are translated and linked.
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Retired);
    assert!(hart.translated_steps() > 900);
    let before = hart.instret;
    hart.set_debug(hooks(|h| {
        h.breakpoints.insert(b);
    }));
    assert_eq!(run_hooked(&mut hart, &mut bus, 1000), Exit::Debug);
    assert_eq!(
        hart.take_debug_stop(),
        Some(DebugStop::Breakpoint { pc: b })
    );
    assert_eq!(hart.pc, b);
    assert!(hart.instret - before < 4, "it went round the loop");
}

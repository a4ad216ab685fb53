//! The hart: architectural state, the run loop, traps and interrupts.
//!
//! Assumptions, written down once:
//! - One instruction retires per nanosecond of virtual time, and taking a trap
//!   also costs a nanosecond (so a guest trapping in a loop still lets time,
//!   and the machine, advance). `clock()` is the instructions retired plus
//!   `stalled`, the time that passed without retiring: trap entries and idle
//!   time in WFI. Devices see only this clock, never the host's.
//! - Interrupts are sampled at block boundaries only. Every instruction that can
//!   make an interrupt pending or enabled (CSR writes, xRET, WFI, device
//!   accesses, stores that hit code) ends its block, and timer deadlines cap
//!   how far a block may run, so an interrupt is taken after exactly the same
//!   instruction whatever the state of the block cache.
//! - IALIGN is 16 (C is implemented), so instruction-address-misaligned traps
//!   cannot happen.

use crate::block::BlockCache;
use crate::block::NO_BLOCK;
use crate::bus::{irq, Bus};
use crate::csr::{self, Csrs};
use crate::tlb::{Tlb, TlbState};

/// Privilege levels.
pub mod prv {
    pub const U: u8 = 0;
    pub const S: u8 = 1;
    pub const M: u8 = 3;
}

/// Exception causes (mcause values without the interrupt bit).
pub mod cause {
    pub const FETCH_ACCESS: u64 = 1;
    pub const ILLEGAL_INSTRUCTION: u64 = 2;
    pub const BREAKPOINT: u64 = 3;
    pub const LOAD_MISALIGNED: u64 = 4;
    pub const LOAD_ACCESS: u64 = 5;
    pub const STORE_MISALIGNED: u64 = 6;
    pub const STORE_ACCESS: u64 = 7;
    pub const ECALL_FROM_U: u64 = 8;
    pub const FETCH_PAGE_FAULT: u64 = 12;
    pub const LOAD_PAGE_FAULT: u64 = 13;
    pub const STORE_PAGE_FAULT: u64 = 15;
}

/// A synchronous exception: cause and trap value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub cause: u64,
    pub tval: u64,
}

impl Exception {
    pub fn new(cause: u64, tval: u64) -> Self {
        Exception { cause, tval }
    }
    pub fn illegal(raw: u32) -> Self {
        Exception::new(cause::ILLEGAL_INSTRUCTION, raw as u64)
    }
}

/// Everything architectural about a hart but its TLB ([`Hart::tlb_state`]),
/// which a snapshot saves and the machine state hash covers beside it. The
/// decoded-block cache is in neither: it cannot change what the guest sees.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchState {
    pub x: [u64; 32],
    pub f: [u64; 32],
    pub pc: u64,
    pub prv: u8,
    pub csr: Csrs,
    pub instret: u64,
    /// Traps entered since reset (see [`Hart::steps`]).
    pub traps: u64,
    pub stalled: u64,
    pub waiting: bool,
    pub reservation: Option<u64>,
    pub host_firmware: bool,
}

/// Why [`Hart::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The clock reached the requested limit.
    Limit,
    /// The hart is waiting in WFI with nothing that could wake it before the
    /// limit; the clock was advanced to the limit.
    Idle,
    /// A device asked to stop (see [`Bus::stop_requested`]).
    Stop,
    /// With `host_firmware`: the hart executed ECALL in S-mode. The ECALL has
    /// retired and pc points past it; the host performs the SBI call (a0..a7)
    /// and runs the hart again.
    SupervisorCall,
    /// With `host_firmware`: a trap would have entered M-mode, where no guest
    /// firmware exists. `mcause`, `mepc` and `mtval` describe it; the hart
    /// must not be run again.
    MachineTrap,
    /// The hart has taken the steps [`Hart::run_bounded`] allowed it and is
    /// about to take another (retire an instruction or enter a trap):
    /// whatever comes before that step (idle time, a round's end) has
    /// happened. Running the hart again goes on exactly as if it had not
    /// stopped.
    Retired,
    /// A debugger's hook stopped the hart (see [`Hart::take_debug_stop`]):
    /// before an instruction at a breakpoint, or right after one that
    /// accessed watched memory. Running it again goes on exactly as if it
    /// had not stopped.
    Debug,
}

/// `Hart::reserved` when no address is reserved: LR reserves only aligned
/// addresses, and this one is odd.
pub(crate) const NO_RESERVATION: u64 = u64::MAX;

/// One RV64GC hart.
pub struct Hart {
    pub id: usize,
    pub x: [u64; 32],
    pub f: [u64; 32],
    pub pc: u64,
    pub prv: u8,
    pub csr: Csrs,
    /// Instructions retired since reset.
    pub instret: u64,
    /// Traps entered since reset. With `instret`, the hart's steps: the
    /// count positions in time are made of (see [`Hart::steps`]).
    pub traps: u64,
    /// Virtual nanoseconds since reset in which no instruction retired:
    /// one per trap taken, plus time idle in WFI.
    pub stalled: u64,
    /// In WFI, waiting for an interrupt.
    pub waiting: bool,
    /// The block just run ended with PAUSE: `run_bounded` stalls the hart
    /// before it returns, so this is never set between two steps and is
    /// not state.
    pub(crate) paused: bool,
    /// The LR reservation: the virtual address of the reserved doubleword
    /// or word, or [`NO_RESERVATION`] (a plain integer, not an Option, so
    /// that translated code can read and write it).
    pub(crate) reserved: u64,
    /// Set by a page walk that updated a PTE's A/D bits (see
    /// `Hart::fill_for_translated`); not state.
    pub(crate) walk_wrote_pte: bool,
    /// The level of the leaf PTE the last translation used (0: a 4 KiB
    /// page, or no paging), which the TLB entry it fills remembers.
    pub(crate) leaf_level: u8,
    /// The host, not guest code, plays the M-mode firmware: S-mode ECALLs
    /// return [`Exit::SupervisorCall`] and traps into M-mode stop the hart.
    pub host_firmware: bool,
    /// Set by the executor when the current block ended with a host exit.
    pub(crate) host_exit: Option<Exit>,
    /// A debugger's breakpoints and watchpoints: not guest state.
    pub(crate) debug: Option<Box<crate::debug::DebugHooks>>,
    // Derived, not architectural: rebuilt by `refresh_modes` and `refresh_lines`.
    /// The TLB set (by privilege) used by loads and stores, honouring MPRV.
    pub(crate) data_mode: usize,
    /// The interrupt lines from devices plus the Sstc timer, as of `lines_at`.
    pub(crate) lines: u64,
    /// Clock at which `lines` must be sampled again.
    pub(crate) event_at: u64,
    /// Architectural (see tlb.rs): saved with the hart and hashed.
    pub(crate) tlb: Tlb,
    /// PMP decoded from `csr` (derived, rebuilt when the CSRs change).
    pub(crate) pmp: crate::pmp::Pmp,
    pub(crate) blocks: BlockCache,
    /// The translator, when the hart runs the translating engine.
    pub(crate) jit: Option<Box<crate::jit::Jit>>,
    /// What translated code is given (see jit/translate.rs); not state.
    pub(crate) jit_context: crate::jit::JitContext,
    pub(crate) code_epoch: u64,
    /// RAM offset of the page of the block being executed, or NO_BLOCK.
    pub(crate) block_page: usize,
}

impl Hart {
    /// A hart in its reset state: M-mode at `pc`.
    pub fn new(id: usize, pc: u64) -> Self {
        let mut hart = Hart {
            id,
            x: [0; 32],
            f: [0; 32],
            pc,
            prv: prv::M,
            csr: Csrs::new(id as u64),
            instret: 0,
            traps: 0,
            stalled: 0,
            waiting: false,
            paused: false,
            reserved: NO_RESERVATION,
            walk_wrote_pte: false,
            leaf_level: 0,
            host_firmware: false,
            host_exit: None,
            debug: None,
            data_mode: 0,
            lines: 0,
            event_at: 0,
            tlb: Tlb::new(),
            pmp: crate::pmp::Pmp::new(),
            blocks: BlockCache::new(),
            jit: None,
            jit_context: crate::jit::JitContext::new(),
            code_epoch: u64::MAX,
            block_page: NO_BLOCK,
        };
        hart.refresh_modes();
        hart
    }

    /// Virtual time of this hart in nanoseconds.
    #[inline(always)]
    pub fn clock(&self) -> u64 {
        self.instret + self.stalled
    }

    /// Runs the hart's instructions on `engine` from now on. Nothing the
    /// guest can observe changes. Err (one sentence) when the host cannot
    /// run it; the hart then keeps its engine.
    pub fn set_engine(&mut self, engine: crate::Engine) -> Result<(), String> {
        let jit = match engine {
            crate::Engine::Interp => None,
            crate::Engine::Jit => Some(Box::new(crate::jit::Jit::new()?)),
        };
        // Translations belong to the code cache they were made in.
        self.blocks.clear();
        self.jit = jit;
        Ok(())
    }

    /// Translates blocks once the interpreter has run them `runs` times
    /// (0: at their first run). For tests that must reach translated code
    /// with code that runs once; no effect on the interpreting engine.
    pub fn set_translation_threshold(&mut self, runs: u16) {
        if let Some(jit) = self.jit.as_deref_mut() {
            jit.set_hot(runs);
        }
    }

    /// Gives this hart's engine (its translator, if any) to `other`, a
    /// hart replacing it (a guest reset).
    pub fn hand_engine_to(&mut self, other: &mut Hart) {
        other.blocks.clear();
        other.jit = self.jit.take();
        // A reset builds RAM anew, whose code generations start over: a
        // translation (or jump cache entry) of the old RAM could pass for
        // one of the new.
        if let Some(jit) = other.jit.as_deref_mut() {
            jit.clear();
        }
    }

    /// Instructions retired by translated code since the engine was set:
    /// not guest state (for tests and benchmarks).
    pub fn translated_steps(&self) -> u64 {
        self.jit.as_ref().map_or(0, |j| j.retired())
    }

    pub fn engine(&self) -> crate::Engine {
        if self.jit.is_some() {
            crate::Engine::Jit
        } else {
            crate::Engine::Interp
        }
    }

    /// Runs until the clock reaches `until`, the hart idles, or a device asks
    /// to stop.
    pub fn run<B: Bus>(&mut self, bus: &mut B, until: u64) -> Exit {
        self.run_bounded(bus, until, u64::MAX)
    }

    /// As [`Hart::run`], but stops with [`Exit::Retired`] once the hart has
    /// taken `max_steps` [steps](Hart::steps) and is about to take the next:
    /// after any idle time that comes first, before the trap entry or
    /// instruction that would be the next step. Stopping there splits a
    /// block at most, which changes nothing the guest can see (see
    /// block.rs). With a debugger's hooks it may also stop with
    /// [`Exit::Debug`], never before the budget check.
    pub fn run_bounded<B: Bus>(&mut self, bus: &mut B, until: u64, max_steps: u64) -> Exit {
        let epoch = bus.ram().code_epoch();
        if epoch != self.code_epoch {
            // Another hart (or a loader) turned pages into code: send every
            // store through the checked path until its entry is seen clean.
            self.tlb.slow_writes();
            self.code_epoch = epoch;
        }
        self.event_at = 0;
        loop {
            if bus.stop_requested() {
                return Exit::Stop;
            }
            let now = self.clock();
            if now >= self.event_at {
                self.refresh_lines(bus);
            }
            if let Some(interrupt) = self.pending_interrupt() {
                if let Some(exit) = self.stop_before_step(max_steps) {
                    return exit;
                }
                self.waiting = false;
                self.enter_trap(interrupt, 0, true);
                if let Some(exit) = self.host_exit.take() {
                    return exit;
                }
            }
            if self.waiting && self.wfi_should_wake() {
                // WFI resumes on a pending, locally enabled interrupt even
                // when global enables keep it from being taken.
                self.waiting = false;
            }
            if self.waiting {
                let wake = self.event_at.min(until);
                if wake > now {
                    self.stalled += wake - now;
                }
                if self.clock() >= until {
                    return Exit::Idle;
                }
                continue;
            }
            if now >= until {
                return Exit::Limit;
            }
            if let Some(exit) = self.stop_before_step(max_steps) {
                return exit;
            }
            let mut budget = max_steps - self.steps();
            if self.debug.is_some() {
                if self.breakpoint_here() {
                    return Exit::Debug;
                }
                budget = budget.min(self.steps_allowed());
            }
            let limit = until.min(self.event_at);
            self.run_block(bus, (limit - now).min(budget));
            if std::mem::take(&mut self.paused) {
                // PAUSE: the hart stalls to the end of its round. Linux's
                // `cpu_relax()` is PAUSE, in every spin loop that waits
                // for another hart: spinning on would only burn host time
                // until the other hart's turn, since harts take turns. The
                // stall is time only (`time` moves on; an interrupt is at
                // most one round, `QUANTUM` ns, late) and depends on
                // nothing but the round.
                self.skip_idle_to(until);
            }
            if let Some(exit) = self.host_exit.take() {
                return exit;
            }
            if self.debug_hit() {
                return Exit::Debug;
            }
        }
    }

    /// Whether the hart must stop here, about to take a step: its budget
    /// is spent ([`Exit::Retired`]), or a debugger's step limit is reached
    /// ([`Exit::Debug`]). The budget is checked first, so a position is
    /// reached before any hook there.
    #[inline(always)]
    fn stop_before_step(&mut self, max_steps: u64) -> Option<Exit> {
        if self.steps() >= max_steps {
            return Some(Exit::Retired);
        }
        if self.debug.is_some() && self.step_limit_here() {
            return Some(Exit::Debug);
        }
        None
    }

    /// Samples device interrupt lines and the Sstc comparator, and computes
    /// the next clock at which they may change.
    pub(crate) fn refresh_lines<B: Bus>(&mut self, bus: &mut B) {
        let now = self.clock();
        let mut lines =
            bus.interrupt_lines(self.id, now) & (irq::MSIP | irq::MTIP | irq::SEIP | irq::MEIP);
        let mut next = bus.next_event(self.id, now);
        if self.csr.menvcfg & csr::MENVCFG_STCE != 0 {
            if bus.time(now) >= self.csr.stimecmp {
                lines |= irq::STIP;
            } else {
                next = next.min(bus.clock_at_time(self.csr.stimecmp));
            }
        }
        self.lines = lines;
        self.event_at = next.max(now + 1);
    }

    /// Forces the interrupt lines to be sampled before the next block.
    #[inline(always)]
    pub(crate) fn resample_lines(&mut self) {
        self.event_at = 0;
    }

    /// The full mip value: software-writable bits plus device lines.
    pub fn mip(&self) -> u64 {
        let mut sw = self.csr.mip_sw;
        if self.csr.menvcfg & csr::MENVCFG_STCE != 0 {
            // With Sstc enabled, STIP reflects stimecmp only.
            sw &= !irq::STIP;
        }
        sw | self.lines
    }

    /// The highest-priority interrupt that is pending and enabled, if any.
    fn pending_interrupt(&self) -> Option<u64> {
        let pending = self.mip() & self.csr.mie;
        if pending == 0 {
            return None;
        }
        let mstatus = self.csr.mstatus;
        let m_enabled = self.prv < prv::M || mstatus & csr::MSTATUS_MIE != 0;
        let s_enabled =
            self.prv < prv::S || (self.prv == prv::S && mstatus & csr::MSTATUS_SIE != 0);
        let m_level = pending & !self.csr.mideleg;
        let s_level = pending & self.csr.mideleg;
        let candidates = if m_enabled && m_level != 0 {
            m_level
        } else if s_enabled && s_level != 0 {
            s_level
        } else {
            return None;
        };
        // Priority order of the standard interrupts: MEI, MSI, MTI, SEI, SSI, STI.
        [11u64, 3, 7, 9, 1, 5]
            .into_iter()
            .find(|&bit| candidates & (1 << bit) != 0)
    }

    /// True when an interrupt is pending and enabled in mie, whatever the
    /// global enables: the condition that ends WFI.
    pub(crate) fn wfi_should_wake(&self) -> bool {
        self.mip() & self.csr.mie != 0
    }

    /// Takes a trap: an exception (`interrupt` false) or an interrupt whose
    /// number is `cause`.
    pub(crate) fn enter_trap(&mut self, cause: u64, tval: u64, interrupt: bool) {
        if self.host_firmware && !interrupt && cause == cause::ECALL_FROM_U + prv::S as u64 {
            // The host performs the SBI call; the ECALL retires like any instruction.
            self.instret += 1;
            self.pc = self.pc.wrapping_add(4);
            self.host_exit = Some(Exit::SupervisorCall);
            return;
        }
        self.stalled += 1;
        self.traps += 1;
        self.reserved = NO_RESERVATION;
        let delegated_bits = if interrupt {
            self.csr.mideleg
        } else {
            self.csr.medeleg
        };
        let to_s = self.prv <= prv::S && (delegated_bits >> cause) & 1 != 0;
        let mcause = cause | if interrupt { 1 << 63 } else { 0 };
        let status = self.csr.mstatus;
        let (tvec, target) = if to_s {
            self.csr.scause = mcause;
            self.csr.sepc = self.pc;
            self.csr.stval = tval;
            let sie = (status >> 1) & 1;
            let mut s = status & !(csr::MSTATUS_SPIE | csr::MSTATUS_SIE | csr::MSTATUS_SPP);
            s |= sie << 5;
            s |= (self.prv as u64 & 1) << 8;
            self.csr.mstatus = s;
            (self.csr.stvec, prv::S)
        } else {
            self.csr.mcause = mcause;
            self.csr.mepc = self.pc;
            self.csr.mtval = tval;
            let mie = (status >> 3) & 1;
            let mut s = status & !(csr::MSTATUS_MPIE | csr::MSTATUS_MIE | csr::MSTATUS_MPP);
            s |= mie << 7;
            s |= (self.prv as u64) << 11;
            self.csr.mstatus = s;
            (self.csr.mtvec, prv::M)
        };
        if self.host_firmware && target == prv::M {
            self.host_exit = Some(Exit::MachineTrap);
        }
        let base = tvec & !3;
        self.pc = if interrupt && tvec & 3 == 1 {
            base.wrapping_add(4 * cause)
        } else {
            base
        };
        self.prv = target;
        self.refresh_modes();
    }

    /// Recomputes the privilege used for data accesses (MPRV).
    pub(crate) fn refresh_modes(&mut self) {
        let mstatus = self.csr.mstatus;
        let data_prv = if self.prv == prv::M && mstatus & csr::MSTATUS_MPRV != 0 {
            ((mstatus >> 11) & 3) as u8
        } else {
            self.prv
        };
        self.data_mode = Tlb::mode_index(data_prv);
    }

    /// The architectural state, for hashing and snapshots.
    pub fn arch_state(&self) -> ArchState {
        ArchState {
            x: self.x,
            f: self.f,
            pc: self.pc,
            prv: self.prv,
            csr: self.csr.clone(),
            instret: self.instret,
            traps: self.traps,
            stalled: self.stalled,
            waiting: self.waiting,
            reservation: self.reservation(),
            host_firmware: self.host_firmware,
        }
    }

    /// A hart in the architectural state `state` (a restored snapshot); its
    /// TLB and block cache start empty (see [`Hart::set_tlb_state`]).
    pub fn from_arch_state(id: usize, state: &ArchState) -> Self {
        let mut hart = Hart::new(id, state.pc);
        hart.x = state.x;
        hart.f = state.f;
        hart.prv = state.prv;
        hart.csr = state.csr.clone();
        hart.instret = state.instret;
        hart.traps = state.traps;
        hart.stalled = state.stalled;
        hart.waiting = state.waiting;
        hart.reserved = state.reservation.unwrap_or(NO_RESERVATION);
        hart.host_firmware = state.host_firmware;
        hart.refresh_modes();
        hart
    }

    /// The TLB's entries: architectural state beside [`Hart::arch_state`].
    pub fn tlb_state(&self) -> TlbState {
        self.tlb.state()
    }

    /// Replaces the TLB's entries (a restored snapshot), which must have
    /// passed [`TlbState::check`] for this machine's RAM.
    pub fn set_tlb_state(&mut self, state: &TlbState) {
        self.tlb.set_state(state);
    }

    /// The LR reservation's address, if there is one.
    pub fn reservation(&self) -> Option<u64> {
        (self.reserved != NO_RESERVATION).then_some(self.reserved)
    }

    /// Drops the LR reservation (the machine calls this when it switches harts).
    pub fn clear_reservation(&mut self) {
        self.reserved = NO_RESERVATION;
    }

    /// Drops every TLB entry and decoded block, as SFENCE.VMA and FENCE.I
    /// would (for tests and tools that change memory behind the hart).
    pub fn flush_caches(&mut self) {
        self.tlb.flush_all();
        self.blocks.clear();
        self.code_epoch = u64::MAX;
        self.resample_lines();
        self.refresh_modes();
    }
}

impl Hart {
    /// The clock at which this idle hart could next wake (u64::MAX: never by itself).
    pub fn next_wake<B: Bus>(&mut self, bus: &mut B) -> u64 {
        if !self.waiting {
            return self.clock();
        }
        self.refresh_lines(bus);
        if self.wfi_should_wake() || self.pending_interrupt().is_some() {
            return self.clock();
        }
        let next = bus.next_event(self.id, self.clock());
        let sstc = if self.csr.menvcfg & csr::MENVCFG_STCE != 0 {
            bus.clock_at_time(self.csr.stimecmp)
        } else {
            u64::MAX
        };
        next.min(sstc)
    }

    /// Advances an idle hart's clock to `clock` (the machine skipping idle time).
    pub fn skip_idle_to(&mut self, clock: u64) {
        if clock > self.clock() {
            self.stalled += clock - self.clock();
        }
    }
}

/// Operations the host firmware (the built-in SBI) performs on a hart.
impl Hart {
    /// Makes the hart re-read its interrupt state before its next block, after
    /// the host changed mip, mie or stimecmp behind its back.
    pub fn request_interrupt_resample(&mut self) {
        self.resample_lines();
    }

    /// Drops cached translations: a completed SFENCE.VMA.
    pub fn flush_translations(&mut self) {
        self.tlb.flush_all();
    }

    /// Starts the hart in S-mode at `pc` with a0 = `a0`, a1 = `a1` and
    /// translation off, as SBI HSM hart_start specifies.
    pub fn start_in_supervisor(&mut self, pc: u64, a0: u64, a1: u64) {
        self.pc = pc;
        self.x[10] = a0;
        self.x[11] = a1;
        self.prv = prv::S;
        self.csr.satp = 0;
        self.csr.mstatus &= !csr::MSTATUS_SIE;
        self.waiting = false;
        self.flush_translations();
        self.refresh_modes();
        self.resample_lines();
    }

    /// Puts the hart in WFI's waiting state (SBI retentive suspend).
    pub fn wait_for_interrupt(&mut self) {
        if !self.wfi_should_wake() {
            self.waiting = true;
        }
    }
}

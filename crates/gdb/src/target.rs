//! gdbstub's view of a [`Debuggee`]: harts are threads (thread N is hart
//! N-1), all-stop; registers and memory are read from the machine without
//! side effects; breakpoints and watchpoints are kept by the VMM (never
//! written into guest memory); resuming, stepping and their reverse are
//! session motions.

use crate::arch::RewindRiscv64;
use crate::monitor;
use gdbstub::common::{Signal, Tid};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::reverse_exec::{
    ReverseCont, ReverseContOps, ReverseStep, ReverseStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::riscv::reg::id::RiscvRegId;
use gdbstub_arch::riscv::reg::RiscvCoreRegs;
use rewind_hart::{Space, Watch, WatchKind};
use rewind_session::{Debuggee, Hooks, Motion};
use std::collections::BTreeSet;
use std::num::NonZeroUsize;

/// The server's state around a debuggee.
pub struct GdbTarget<'a> {
    pub(crate) debuggee: &'a mut dyn Debuggee,
    /// What the next `wait_for_stop_reason` does.
    pub(crate) pending: Option<Motion>,
    /// Breakpoints gdb set as software and as hardware ones (both are kept
    /// by the VMM; the kinds only decide how a hit is reported).
    pub(crate) sw_breakpoints: BTreeSet<u64>,
    pub(crate) hw_breakpoints: BTreeSet<u64>,
    /// Watchpoints from gdb (virtual) and from `monitor pwatch` (physical).
    pub(crate) watches: Vec<Watch>,
    /// The hart whose registers gdb read last: the thread selected in gdb.
    /// gdb asks for a reverse step of "any thread" (`Hc0`), which gdbstub
    /// hands over as the first thread; this is the one gdb means.
    pub(crate) selected: usize,
}

impl<'a> GdbTarget<'a> {
    pub fn new(debuggee: &'a mut dyn Debuggee) -> Self {
        GdbTarget {
            debuggee,
            pending: None,
            sw_breakpoints: BTreeSet::new(),
            hw_breakpoints: BTreeSet::new(),
            watches: Vec::new(),
            selected: 0,
        }
    }

    pub(crate) fn push_hooks(&mut self) {
        let hooks = Hooks {
            breakpoints: self
                .sw_breakpoints
                .union(&self.hw_breakpoints)
                .copied()
                .collect(),
            watches: self.watches.clone(),
        };
        self.debuggee.set_hooks(hooks);
    }

    fn hart(&self, tid: Tid) -> TargetResult<usize, Self> {
        let hart = tid.get() - 1;
        if hart < self.debuggee.machine().harts.len() {
            Ok(hart)
        } else {
            Err(TargetError::NonFatal)
        }
    }
}

/// Thread id of hart `hart`.
pub(crate) fn tid_of(hart: usize) -> Tid {
    NonZeroUsize::new(hart + 1).expect("hart + 1 is not zero")
}

impl Target for GdbTarget<'_> {
    type Arch = RewindRiscv64;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    // Breakpoints never touch guest memory: gdb must not try to write
    // them there either.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }
}

impl MultiThreadBase for GdbTarget<'_> {
    fn read_registers(
        &mut self,
        regs: &mut RiscvCoreRegs<u64>,
        tid: Tid,
    ) -> TargetResult<(), Self> {
        let id = self.hart(tid)?;
        self.selected = id;
        let hart = &self.debuggee.machine().harts[id];
        regs.x = hart.x;
        regs.pc = hart.pc;
        Ok(())
    }

    fn write_registers(&mut self, regs: &RiscvCoreRegs<u64>, tid: Tid) -> TargetResult<(), Self> {
        let id = self.hart(tid)?;
        let machine = self.debuggee.edit().map_err(TargetError::Fatal)?;
        let hart = &mut machine.harts[id];
        hart.x = regs.x;
        hart.x[0] = 0;
        hart.pc = regs.pc;
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let id = self.hart(tid)?;
        let machine = self.debuggee.machine();
        let read = machine.harts[id].peek_virtual(&machine.board.ram, start, data);
        if read == 0 && !data.is_empty() {
            return Err(TargetError::NonFatal);
        }
        Ok(read)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let id = self.hart(tid)?;
        let Ok(machine) = self.debuggee.edit() else {
            return Err(TargetError::NonFatal);
        };
        let (harts, board) = (&mut machine.harts, &mut machine.board);
        if harts[id].poke_virtual(board, start, data) != data.len() {
            return Err(TargetError::NonFatal);
        }
        Ok(())
    }

    fn list_active_threads(&mut self, thread_is_active: &mut dyn FnMut(Tid)) -> Result<(), String> {
        for hart in 0..self.debuggee.machine().harts.len() {
            thread_is_active(tid_of(hart));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for GdbTarget<'_> {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: RiscvRegId<u64>,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let id = self.hart(tid)?;
        self.selected = id;
        let machine = self.debuggee.inspect();
        let (harts, board) = (&mut machine.harts, &mut machine.board);
        let hart = &mut harts[id];
        let value: u64 = match reg {
            RiscvRegId::Gpr(n) => hart.x[n as usize & 31],
            RiscvRegId::Fpr(n) => hart.f[n as usize & 31],
            RiscvRegId::Pc => hart.pc,
            RiscvRegId::Csr(n) => hart.peek_csr(board, n).ok_or(TargetError::NonFatal)?,
            RiscvRegId::Priv => {
                buf[0] = hart.prv;
                return Ok(1);
            }
            _ => return Err(TargetError::NonFatal),
        };
        let bytes = value.to_le_bytes();
        let n = buf.len().min(8);
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn write_register(
        &mut self,
        tid: Tid,
        reg: RiscvRegId<u64>,
        val: &[u8],
    ) -> TargetResult<(), Self> {
        let id = self.hart(tid)?;
        let mut bytes = [0u8; 8];
        let n = val.len().min(8);
        bytes[..n].copy_from_slice(&val[..n]);
        let value = u64::from_le_bytes(bytes);
        let Ok(machine) = self.debuggee.edit() else {
            return Err(TargetError::NonFatal);
        };
        let (harts, board) = (&mut machine.harts, &mut machine.board);
        let hart = &mut harts[id];
        let ok = match reg {
            RiscvRegId::Gpr(0) => true,
            RiscvRegId::Gpr(n) => {
                hart.x[n as usize & 31] = value;
                true
            }
            RiscvRegId::Fpr(n) => {
                hart.f[n as usize & 31] = value;
                true
            }
            RiscvRegId::Pc => {
                hart.pc = value;
                true
            }
            RiscvRegId::Csr(n) => hart.poke_csr(board, n, value),
            RiscvRegId::Priv => hart.poke_privilege(value as u8),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }
}

impl MultiThreadResume for GdbTarget<'_> {
    fn resume(&mut self) -> Result<(), String> {
        if self.pending.is_none() {
            self.pending = Some(Motion::Continue);
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), String> {
        self.pending = None;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        _tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), String> {
        refuse_signal(signal)?;
        // A step asked for another thread in the same packet wins: the
        // machine runs every hart while that one steps.
        if self.pending.is_none() {
            self.pending = Some(Motion::Continue);
        }
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, Tid, Self>> {
        Some(self)
    }
}

/// Signals cannot be delivered to a machine: a hart has none.
fn refuse_signal(signal: Option<Signal>) -> Result<(), String> {
    match signal {
        None | Some(Signal::SIGTRAP) | Some(Signal::SIGINT) | Some(Signal::SIGSTOP) => Ok(()),
        Some(_) => Err("a machine's harts cannot be sent signals".to_string()),
    }
}

/// gdb locks the scheduler when it steps a replay (its default,
/// `scheduler-locking replay`). A machine's harts cannot be frozen: they
/// run in the order the machine fixes, which is what was recorded. So the
/// lock is accepted and the other harts run on while one steps.
impl MultiThreadSchedulerLocking for GdbTarget<'_> {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl MultiThreadSingleStep for GdbTarget<'_> {
    fn set_resume_action_step(&mut self, tid: Tid, signal: Option<Signal>) -> Result<(), String> {
        refuse_signal(signal)?;
        let hart = tid.get() - 1;
        self.pending = Some(Motion::Step { hart });
        Ok(())
    }
}

impl ReverseStep<Tid> for GdbTarget<'_> {
    fn reverse_step(&mut self, tid: Tid) -> Result<(), String> {
        let hart = match tid.get() - 1 {
            0 => self.selected,
            hart => hart,
        };
        self.pending = Some(Motion::ReverseStep { hart });
        Ok(())
    }
}

impl ReverseCont<Tid> for GdbTarget<'_> {
    fn reverse_cont(&mut self) -> Result<(), String> {
        self.pending = Some(Motion::ReverseContinue);
        Ok(())
    }
}

impl Breakpoints for GdbTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GdbTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.sw_breakpoints.insert(addr);
        self.push_hooks();
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let removed = self.sw_breakpoints.remove(&addr);
        self.push_hooks();
        Ok(removed)
    }
}

impl HwBreakpoint for GdbTarget<'_> {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.hw_breakpoints.insert(addr);
        self.push_hooks();
        Ok(true)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let removed = self.hw_breakpoints.remove(&addr);
        self.push_hooks();
        Ok(removed)
    }
}

fn watch_kind(kind: GdbWatchKind) -> WatchKind {
    match kind {
        GdbWatchKind::Write => WatchKind::Write,
        GdbWatchKind::Read => WatchKind::Read,
        GdbWatchKind::ReadWrite => WatchKind::Access,
    }
}

impl HwWatchpoint for GdbTarget<'_> {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        self.watches.push(Watch {
            start: addr,
            len: len.max(1),
            kind: watch_kind(kind),
            space: Space::Virtual,
        });
        self.push_hooks();
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        let wanted = Watch {
            start: addr,
            len: len.max(1),
            kind: watch_kind(kind),
            space: Space::Virtual,
        };
        let Some(i) = self.watches.iter().position(|w| *w == wanted) else {
            return Ok(false);
        };
        self.watches.remove(i);
        self.push_hooks();
        Ok(true)
    }
}

impl MonitorCmd for GdbTarget<'_> {
    fn handle_monitor_cmd(&mut self, cmd: &[u8], mut out: ConsoleOutput<'_>) -> Result<(), String> {
        let text = String::from_utf8_lossy(cmd);
        let reply = monitor::run(self, text.trim());
        for line in reply.lines() {
            gdbstub::outputln!(out, "{}", line);
        }
        Ok(())
    }
}

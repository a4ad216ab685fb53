//! The built-in SBI (`--firmware builtin`): the host plays the M-mode
//! firmware, and S-mode ECALLs are answered here instead of by guest code.
//!
//! Implemented: Base, TIME, IPI, RFENCE, HSM, SRST, DBCN (SBI 2.0), and the
//! legacy console, timer, IPI, fence and shutdown calls. Every call reads
//! only guest state and configuration, so the answers are deterministic.

use crate::board::Board;
use rewind_hart::bus::irq;
use rewind_hart::{Bus, Hart};

const EXT_BASE: u64 = 0x10;
const EXT_TIME: u64 = 0x5449_4d45;
const EXT_IPI: u64 = 0x73_5049;
const EXT_RFENCE: u64 = 0x5246_4e43;
const EXT_HSM: u64 = 0x48_534d;
const EXT_SRST: u64 = 0x5352_5354;
const EXT_DBCN: u64 = 0x4442_434e;
const LEGACY_SET_TIMER: u64 = 0;
const LEGACY_PUTCHAR: u64 = 1;
const LEGACY_GETCHAR: u64 = 2;
const LEGACY_CLEAR_IPI: u64 = 3;
const LEGACY_SEND_IPI: u64 = 4;
const LEGACY_FENCE_I: u64 = 5;
const LEGACY_SFENCE_VMA: u64 = 6;
const LEGACY_SFENCE_VMA_ASID: u64 = 7;
const LEGACY_SHUTDOWN: u64 = 8;

const SUCCESS: i64 = 0;
const ERR_NOT_SUPPORTED: i64 = -2;
const ERR_INVALID_PARAM: i64 = -3;
const ERR_ALREADY_AVAILABLE: i64 = -6;
const ERR_INVALID_ADDRESS: i64 = -5;

/// HSM hart_suspend types.
const SUSPEND_DEFAULT_RETENTIVE: u32 = 0;
const SUSPEND_DEFAULT_NON_RETENTIVE: u32 = 0x8000_0000;

/// SBI specification version 2.0.
const SPEC_VERSION: u64 = 2 << 24;
/// An implementation ID outside the registered range, spelling "RWND".
const IMPL_ID: u64 = 0x5257_4e44;
const IMPL_VERSION: u64 = 1;

/// The largest DBCN write served in one call (a guest may ask for more;
/// it is told how much was written, as the specification allows).
const DBCN_MAX_WRITE: u64 = 4096;

/// HSM state of a hart. (A retentive suspend is WFI and keeps `Started`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HartState {
    Started,
    Stopped,
}

/// What the machine must do after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbiOutcome {
    Continue,
    /// The calling hart stopped itself (HSM hart_stop).
    HartStopped,
    Shutdown,
    Reboot,
}

/// Handles the SBI call that hart `caller` just made.
pub fn handle_call(
    harts: &mut [Hart],
    states: &mut [HartState],
    caller: usize,
    board: &mut Board,
) -> SbiOutcome {
    let a = harts[caller].x;
    let (ext, fid) = (a[17], a[16]);
    let mut outcome = SbiOutcome::Continue;
    let (error, value): (i64, u64) = match ext {
        EXT_BASE => base(fid, a[10]),
        EXT_TIME if fid == 0 => {
            set_timer(&mut harts[caller], a[10]);
            (SUCCESS, 0)
        }
        EXT_IPI if fid == 0 => send_ipi(harts, a[10], a[11]),
        EXT_RFENCE => remote_fence(harts, fid, a[10], a[11]),
        EXT_HSM => {
            let (e, v, o) = hsm(harts, states, caller, fid, &a, board);
            outcome = o;
            (e, v)
        }
        // system_reset(reset_type, reset_reason)
        EXT_SRST if fid == 0 => match (a[10], a[11]) {
            // Reasons: none, system failure. The rest are reserved, or
            // implementation- and vendor-specific ones this SBI has none of.
            (_, 2..) => (ERR_INVALID_PARAM, 0),
            (0, _) => {
                outcome = SbiOutcome::Shutdown;
                (SUCCESS, 0)
            }
            (1 | 2, _) => {
                outcome = SbiOutcome::Reboot;
                (SUCCESS, 0)
            }
            _ => (ERR_INVALID_PARAM, 0),
        },
        EXT_DBCN => debug_console(board, fid, &a),
        LEGACY_SET_TIMER => {
            set_timer(&mut harts[caller], a[10]);
            return legacy(harts, caller, 0);
        }
        LEGACY_PUTCHAR => {
            board.uart.output.push(a[10] as u8);
            return legacy(harts, caller, 0);
        }
        LEGACY_GETCHAR => {
            board.uart.looked_for_input();
            let c = board.uart.rx.pop_front().map_or(u64::MAX, u64::from);
            return legacy(harts, caller, c);
        }
        LEGACY_CLEAR_IPI => {
            harts[caller].csr.mip_sw &= !irq::SSIP;
            return legacy(harts, caller, 0);
        }
        LEGACY_SEND_IPI | LEGACY_FENCE_I | LEGACY_SFENCE_VMA | LEGACY_SFENCE_VMA_ASID => {
            // The legacy calls pass a pointer to the hart mask.
            let mask = read_u64(board, a[10]).unwrap_or(0);
            if ext == LEGACY_SEND_IPI {
                send_ipi(harts, mask, 0);
            } else {
                remote_fence(harts, 0, mask, 0);
            }
            return legacy(harts, caller, 0);
        }
        LEGACY_SHUTDOWN => {
            legacy(harts, caller, 0);
            return SbiOutcome::Shutdown;
        }
        _ => (ERR_NOT_SUPPORTED, 0),
    };
    let hart = &mut harts[caller];
    hart.x[10] = error as u64;
    hart.x[11] = value;
    outcome
}

/// Legacy calls return their value in a0 only.
fn legacy(harts: &mut [Hart], caller: usize, a0: u64) -> SbiOutcome {
    harts[caller].x[10] = a0;
    SbiOutcome::Continue
}

fn base(fid: u64, arg: u64) -> (i64, u64) {
    match fid {
        0 => (SUCCESS, SPEC_VERSION),
        1 => (SUCCESS, IMPL_ID),
        2 => (SUCCESS, IMPL_VERSION),
        3 => {
            let known = matches!(
                arg,
                EXT_BASE | EXT_TIME | EXT_IPI | EXT_RFENCE | EXT_HSM | EXT_SRST | EXT_DBCN
            ) || arg <= LEGACY_SHUTDOWN;
            (SUCCESS, known as u64)
        }
        // mvendorid, marchid, mimpid: all zero on this hart.
        4..=6 => (SUCCESS, 0),
        _ => (ERR_NOT_SUPPORTED, 0),
    }
}

/// Programs the S-mode timer. The built-in firmware enables Sstc, so the
/// timer is the hart's stimecmp.
fn set_timer(hart: &mut Hart, deadline: u64) {
    hart.csr.stimecmp = deadline;
    hart.request_interrupt_resample();
}

/// The harts selected by an SBI hart mask; `None` for an invalid selection.
fn selected(harts: usize, mask: u64, base: u64) -> Option<Vec<usize>> {
    if base == u64::MAX {
        return Some((0..harts).collect());
    }
    let mut out = Vec::new();
    for bit in 0..64 {
        if mask & (1 << bit) != 0 {
            let id = base.checked_add(bit)?;
            if id >= harts as u64 {
                return None;
            }
            out.push(id as usize);
        }
    }
    Some(out)
}

fn send_ipi(harts: &mut [Hart], mask: u64, base: u64) -> (i64, u64) {
    let Some(targets) = selected(harts.len(), mask, base) else {
        return (ERR_INVALID_PARAM, 0);
    };
    for id in targets {
        harts[id].csr.mip_sw |= irq::SSIP;
        harts[id].request_interrupt_resample();
    }
    (SUCCESS, 0)
}

fn remote_fence(harts: &mut [Hart], fid: u64, mask: u64, base: u64) -> (i64, u64) {
    if fid > 2 {
        // The hypervisor fences need the H extension.
        return (ERR_NOT_SUPPORTED, 0);
    }
    let Some(targets) = selected(harts.len(), mask, base) else {
        return (ERR_INVALID_PARAM, 0);
    };
    // Harts run one at a time, so every target is between instructions:
    // flushing its translation cache now is exactly a completed remote fence.
    // (The decoded-block cache is always coherent, so FENCE.I needs nothing.)
    for id in targets {
        harts[id].flush_translations();
    }
    (SUCCESS, 0)
}

fn hsm(
    harts: &mut [Hart],
    states: &mut [HartState],
    caller: usize,
    fid: u64,
    a: &[u64; 32],
    board: &Board,
) -> (i64, u64, SbiOutcome) {
    match fid {
        // hart_start(hartid, start_addr, opaque)
        0 => {
            let id = a[10];
            if id >= harts.len() as u64 {
                return (ERR_INVALID_PARAM, 0, SbiOutcome::Continue);
            }
            let id = id as usize;
            if states[id] != HartState::Stopped {
                return (ERR_ALREADY_AVAILABLE, 0, SbiOutcome::Continue);
            }
            // RAM is the only memory on this board that holds code.
            if board.ram.offset_of(a[11], 1).is_none() {
                return (ERR_INVALID_ADDRESS, 0, SbiOutcome::Continue);
            }
            harts[id].start_in_supervisor(a[11], id as u64, a[12]);
            states[id] = HartState::Started;
            (SUCCESS, 0, SbiOutcome::Continue)
        }
        // hart_stop()
        1 => {
            states[caller] = HartState::Stopped;
            (SUCCESS, 0, SbiOutcome::HartStopped)
        }
        // hart_get_status(hartid): 0 started, 1 stopped, 4 suspended.
        2 => match states.get(a[10] as usize) {
            Some(HartState::Started) => (SUCCESS, 0, SbiOutcome::Continue),
            Some(HartState::Stopped) => (SUCCESS, 1, SbiOutcome::Continue),
            None => (ERR_INVALID_PARAM, 0, SbiOutcome::Continue),
        },
        // hart_suspend(suspend_type, resume_addr, opaque): the default
        // retentive suspend only. suspend_type is 32 bits wide; the rest of
        // the register is ignored.
        3 => match a[10] as u32 {
            SUSPEND_DEFAULT_RETENTIVE => {
                harts[caller].wait_for_interrupt();
                (SUCCESS, 0, SbiOutcome::Continue)
            }
            // Defined, but resuming at resume_addr is not implemented.
            SUSPEND_DEFAULT_NON_RETENTIVE => (ERR_NOT_SUPPORTED, 0, SbiOutcome::Continue),
            // Reserved, or platform-specific types this platform has none of.
            _ => (ERR_INVALID_PARAM, 0, SbiOutcome::Continue),
        },
        _ => (ERR_NOT_SUPPORTED, 0, SbiOutcome::Continue),
    }
}

fn debug_console(board: &mut Board, fid: u64, a: &[u64; 32]) -> (i64, u64) {
    let (num_bytes, base_lo, base_hi) = (a[10], a[11], a[12]);
    match fid {
        // The whole buffer the guest names must be RAM, even where the call
        // uses only part of it (SBI 2.0, "Shared memory physical address
        // range parameter"). The base address comes in two XLEN-bit halves,
        // and these harts have 56-bit physical addresses: one with its upper
        // half set names no memory (ignoring that half would reach RAM at the
        // lower half).
        0 | 1 if base_hi != 0 || board.ram.offset_of(base_lo, num_bytes).is_none() => {
            (ERR_INVALID_ADDRESS, 0)
        }
        // console_write(num_bytes, base_lo, base_hi)
        0 => {
            let len = num_bytes.min(DBCN_MAX_WRITE) as usize;
            let mut buf = vec![0u8; len];
            board
                .ram
                .read_bytes(base_lo, &mut buf)
                .expect("checked above");
            board.uart.output.extend_from_slice(&buf);
            (SUCCESS, len as u64)
        }
        // console_read(num_bytes, base_lo, base_hi)
        1 => {
            board.uart.looked_for_input();
            let len = (num_bytes as usize).min(board.uart.rx.len());
            if len > 0 {
                // Even an empty write_bytes counts as a store to its page.
                let bytes: Vec<u8> = board.uart.rx.drain(..len).collect();
                board
                    .ram
                    .write_bytes(base_lo, &bytes)
                    .expect("checked above");
            }
            (SUCCESS, len as u64)
        }
        // console_write_byte(byte)
        2 => {
            board.uart.output.push(a[10] as u8);
            (SUCCESS, 0)
        }
        _ => (ERR_NOT_SUPPORTED, 0),
    }
}

fn read_u64(board: &mut Board, paddr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    board.ram().read_bytes(paddr, &mut b)?;
    Some(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::RAM_BASE;
    use rewind_hart::prv;

    const MEM: u64 = 1 << 20;

    /// Harts and a board as the machine sets them up for the built-in SBI:
    /// hart 0 started, the others stopped.
    struct Sbi {
        harts: Vec<Hart>,
        states: Vec<HartState>,
        board: Board,
    }

    impl Sbi {
        fn new(harts: usize) -> Sbi {
            Sbi {
                harts: (0..harts)
                    .map(|id| {
                        let mut hart = Hart::new(id, RAM_BASE);
                        hart.prv = prv::S;
                        hart.host_firmware = true;
                        hart
                    })
                    .collect(),
                states: (0..harts)
                    .map(|id| match id {
                        0 => HartState::Started,
                        _ => HartState::Stopped,
                    })
                    .collect(),
                board: Board::new(MEM, harts, 0),
            }
        }

        /// Makes a call from hart 0: (error, value, outcome).
        fn call(&mut self, ext: u64, fid: u64, args: &[u64]) -> (i64, u64, SbiOutcome) {
            let hart = &mut self.harts[0];
            hart.x[10..10 + args.len()].copy_from_slice(args);
            hart.x[16] = fid;
            hart.x[17] = ext;
            let outcome = handle_call(&mut self.harts, &mut self.states, 0, &mut self.board);
            let hart = &self.harts[0];
            (hart.x[10] as i64, hart.x[11], outcome)
        }
    }

    #[test]
    fn debug_console_refuses_a_base_address_with_its_upper_half_set() {
        let mut sbi = Sbi::new(1);
        sbi.board.ram.write_bytes(RAM_BASE, b"secret").unwrap();
        let (error, value, _) = sbi.call(EXT_DBCN, 0, &[6, RAM_BASE, 1]);
        assert_eq!((error, value), (ERR_INVALID_ADDRESS, 0));
        assert!(sbi.board.uart.output.is_empty());

        sbi.board.uart.push_input(b'x');
        let (error, _, _) = sbi.call(EXT_DBCN, 1, &[1, RAM_BASE, 1]);
        assert_eq!(error, ERR_INVALID_ADDRESS);
        assert_eq!(
            sbi.board.uart.rx.len(),
            1,
            "the byte is still there to read"
        );
        assert_eq!(sbi.board.ram.bytes()[0], b's');

        let (error, value, _) = sbi.call(EXT_DBCN, 0, &[6, RAM_BASE, 0]);
        assert_eq!((error, value), (SUCCESS, 6));
        assert_eq!(sbi.board.uart.output, b"secret");
    }

    #[test]
    fn debug_console_refuses_a_buffer_that_runs_past_the_end_of_ram() {
        let mut sbi = Sbi::new(1);
        let near_end = RAM_BASE + MEM - 100;
        // Only the first 4096 bytes would be written, but the guest named more.
        let (error, _, _) = sbi.call(EXT_DBCN, 0, &[10_000, near_end - 8192, 0]);
        assert_eq!(error, ERR_INVALID_ADDRESS);
        assert!(sbi.board.uart.output.is_empty());
        // One byte waits: a read of it would fit, the buffer named does not.
        sbi.board.uart.push_input(b'x');
        let (error, _, _) = sbi.call(EXT_DBCN, 1, &[101, near_end, 0]);
        assert_eq!(error, ERR_INVALID_ADDRESS);
        assert_eq!(sbi.board.uart.rx.len(), 1);
        let (error, value, _) = sbi.call(EXT_DBCN, 1, &[100, near_end, 0]);
        assert_eq!((error, value), (SUCCESS, 1));
        assert_eq!(sbi.board.ram.bytes()[(MEM - 100) as usize], b'x');
        let (error, value, _) = sbi.call(EXT_DBCN, 0, &[u64::MAX, RAM_BASE, 0]);
        assert_eq!((error, value), (ERR_INVALID_ADDRESS, 0));
        let (error, value, _) = sbi.call(EXT_DBCN, 0, &[10_000, near_end - 9900, 0]);
        assert_eq!((error, value), (SUCCESS, DBCN_MAX_WRITE));
    }

    #[test]
    fn hart_start_refuses_a_start_address_outside_ram() {
        let mut sbi = Sbi::new(2);
        for start in [0, RAM_BASE - 2, RAM_BASE + MEM, 0x1000_0000, u64::MAX] {
            let (error, _, _) = sbi.call(EXT_HSM, 0, &[1, start, 7]);
            assert_eq!(error, ERR_INVALID_ADDRESS, "start at {start:#x}");
            assert_eq!(sbi.states[1], HartState::Stopped);
        }
        let start = RAM_BASE + MEM - 4;
        let (error, _, _) = sbi.call(EXT_HSM, 0, &[1, start, 7]);
        assert_eq!(error, SUCCESS);
        assert_eq!(sbi.states[1], HartState::Started);
        let hart = &sbi.harts[1];
        assert_eq!(
            (hart.pc, hart.prv, hart.x[10], hart.x[11]),
            (start, prv::S, 1, 7)
        );
    }

    #[test]
    fn hart_suspend_tells_reserved_types_from_the_unsupported_non_retentive_one() {
        let mut sbi = Sbi::new(1);
        for (suspend_type, expected) in [
            (0x8000_0000, ERR_NOT_SUPPORTED),
            (1, ERR_INVALID_PARAM),
            (0x1000_0000, ERR_INVALID_PARAM),
            (0x8000_0001, ERR_INVALID_PARAM),
            (0x9000_0000, ERR_INVALID_PARAM),
            (0xffff_ffff, ERR_INVALID_PARAM),
        ] {
            let (error, _, _) = sbi.call(EXT_HSM, 3, &[suspend_type, RAM_BASE, 0]);
            assert_eq!(error, expected, "suspend type {suspend_type:#x}");
            assert!(!sbi.harts[0].waiting);
        }
        // Only the low 32 bits are the type: this is the default retentive suspend.
        let (error, _, _) = sbi.call(EXT_HSM, 3, &[1 << 32, RAM_BASE, 0]);
        assert_eq!(error, SUCCESS);
        assert!(sbi.harts[0].waiting, "waits for an interrupt");
    }

    #[test]
    fn system_reset_refuses_reserved_reasons() {
        let mut sbi = Sbi::new(1);
        for reason in [2, 0xe000_0000, 0xf000_0000, u64::MAX] {
            let (error, _, outcome) = sbi.call(EXT_SRST, 0, &[0, reason]);
            assert_eq!((error, outcome), (ERR_INVALID_PARAM, SbiOutcome::Continue));
        }
        let (error, _, outcome) = sbi.call(EXT_SRST, 0, &[0, 1]);
        assert_eq!((error, outcome), (SUCCESS, SbiOutcome::Shutdown));
        let (error, _, outcome) = sbi.call(EXT_SRST, 0, &[2, 0]);
        assert_eq!((error, outcome), (SUCCESS, SbiOutcome::Reboot));
    }

    #[test]
    fn debug_console_read_of_nothing_leaves_ram_untouched() {
        let mut sbi = Sbi::new(1);
        let mark = sbi.board.ram.mark();
        let (error, value, _) = sbi.call(EXT_DBCN, 1, &[16, RAM_BASE + 4096, 0]);
        assert_eq!((error, value), (SUCCESS, 0));
        assert_eq!(sbi.board.ram.written_since(mark), Vec::<usize>::new());
        sbi.board.uart.push_input(b'x');
        let (error, value, _) = sbi.call(EXT_DBCN, 1, &[16, RAM_BASE + 4096, 0]);
        assert_eq!((error, value), (SUCCESS, 1));
        assert_eq!(sbi.board.ram.written_since(mark), [1]);
    }
}

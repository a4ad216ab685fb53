//! SBI calls from a hostile guest into the built-in SBI (`--firmware builtin`,
//! crates/machine/src/sbi.rs): whatever extension, function and arguments a
//! supervisor passes, the host must not panic, allocate without bound or
//! touch memory outside guest RAM, and each answer must be what the SBI
//! specification (v2.0) asks for.
//!
//! The target builds harts and a board as the machine does for the built-in
//! SBI (1 to 4 harts, hart 0 started, the others stopped; 1, 3 or 16 MiB of
//! RAM with a pattern in it) and makes up to [`MAX_CALLS`] calls, each from a
//! started hart. Extension ids are biased to the implemented ones and
//! arguments to values at the edges: hart ids and masks just in and out of
//! range, addresses at the ends of RAM, huge lengths. After each call it
//! checks what the specification fixes: the error code and value, that every
//! register but a0 and a1 is preserved, HSM states and where hart_start put a
//! hart, that a debug console write outputs exactly the RAM asked for and no
//! more, that only a console read writes RAM and only where it was told to.
//!
//! Input: read with `arbitrary::Unstructured`; any bytes are a valid input.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rewind_hart::bus::irq;
use rewind_hart::{csr, prv, Hart};
use rewind_machine::board::{Board, RAM_BASE};
use rewind_machine::sbi::{self, HartState, SbiOutcome};

/// Most calls per input, so that each run stays short.
const MAX_CALLS: usize = 64;
/// RAM sizes in MiB: the smallest, one not a power of two, and 16 MiB.
/// (Larger RAM costs a run time to allocate, not the SBI anything new.)
const RAM_MIB: [u64; 3] = [1, 3, 16];

const EXT_BASE: u64 = 0x10;
const EXT_TIME: u64 = 0x5449_4d45;
const EXT_IPI: u64 = 0x73_5049;
const EXT_RFENCE: u64 = 0x5246_4e43;
const EXT_HSM: u64 = 0x48_534d;
const EXT_SRST: u64 = 0x5352_5354;
const EXT_DBCN: u64 = 0x4442_434e;
/// Extensions the built-in SBI does not implement (PMU, SUSP, CPPC).
const EXT_UNIMPLEMENTED: [u64; 3] = [0x50_4d55, 0x5355_5350, 0x4350_5043];
const LEGACY_SET_TIMER: u64 = 0;
const LEGACY_PUTCHAR: u64 = 1;
const LEGACY_GETCHAR: u64 = 2;
const LEGACY_CLEAR_IPI: u64 = 3;
const LEGACY_SHUTDOWN: u64 = 8;

const SUCCESS: i64 = 0;
const ERR_NOT_SUPPORTED: i64 = -2;
const ERR_INVALID_PARAM: i64 = -3;
const ERR_INVALID_ADDRESS: i64 = -5;
const ERR_ALREADY_AVAILABLE: i64 = -6;
/// The standard SBI error codes, SBI_SUCCESS to SBI_ERR_BAD_RANGE.
const STANDARD_ERRORS: std::ops::RangeInclusive<i64> = -11..=0;

/// The most bytes one debug console write outputs.
const DBCN_MAX_WRITE: u64 = 4096;
/// The UART's receive FIFO: what a console read can find waiting.
const UART_FIFO: usize = 16;

/// One call as the guest makes it.
#[derive(Debug)]
struct Call {
    caller: usize,
    ext: u64,
    fid: u64,
    /// a0 to a5.
    args: [u64; 6],
}

/// What the target knows before a call, to judge what the call did.
struct Before {
    x: Vec<[u64; 32]>,
    pc: Vec<u64>,
    prv: Vec<u8>,
    mip_sw: Vec<u64>,
    stimecmp: Vec<u64>,
    states: Vec<HartState>,
    output_len: usize,
    rx: Vec<u8>,
}

struct Machine {
    harts: Vec<Hart>,
    states: Vec<HartState>,
    board: Board,
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured) -> Result<()> {
    let harts = u.int_in_range(1..=4)?;
    let mem_mib: u64 = *u.choose(&RAM_MIB)?;
    let mut m = machine(harts, mem_mib << 20);
    for _ in 0..MAX_CALLS {
        if u.is_empty() {
            break;
        }
        if u.ratio(1, 8)? {
            // Console input arrives between calls, as at a round boundary.
            for _ in 0..u.int_in_range(0..=UART_FIFO)? {
                m.board.uart.push_input(u.arbitrary()?);
            }
            continue;
        }
        let started: Vec<usize> = (0..m.harts.len())
            .filter(|&id| m.states[id] == HartState::Started)
            .collect();
        let Ok(&caller) = u.choose(&started) else {
            break; // every hart stopped: nothing can call
        };
        let call = Call {
            caller,
            ext: extension(u)?,
            fid: if u.ratio(7, 8)? {
                u.int_in_range(0..=7)?
            } else {
                u.arbitrary()?
            },
            args: [
                argument(u, &m)?,
                argument(u, &m)?,
                argument(u, &m)?,
                argument(u, &m)?,
                argument(u, &m)?,
                argument(u, &m)?,
            ],
        };
        match m.call(&call) {
            SbiOutcome::Continue | SbiOutcome::HartStopped => {}
            // The machine powers off or starts over: this run is done.
            SbiOutcome::Shutdown | SbiOutcome::Reboot => break,
        }
        // The machine hands console output to the host every round.
        m.board.uart.output.clear();
    }
    Ok(())
}

/// Harts and a board as the machine sets them up for the built-in SBI.
fn machine(harts: usize, mem_size: u64) -> Machine {
    let mut board = Board::new(mem_size, harts, 0);
    // Something to write to the console: a pattern at both ends of RAM.
    let pattern: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    board.ram.write_bytes(RAM_BASE, &pattern).expect("in RAM");
    let end = RAM_BASE + mem_size - pattern.len() as u64;
    board.ram.write_bytes(end, &pattern).expect("in RAM");
    let harts = (0..harts)
        .map(|id| {
            let mut hart = Hart::new(id, RAM_BASE + 0x20_0000);
            hart.prv = prv::S;
            hart.host_firmware = true;
            hart.csr.mideleg = irq::SSIP | irq::STIP | irq::SEIP;
            hart.csr.mie = irq::SSIP | irq::STIP;
            hart
        })
        .collect::<Vec<_>>();
    let states = (0..harts.len())
        .map(|id| {
            if id == 0 {
                HartState::Started
            } else {
                HartState::Stopped
            }
        })
        .collect();
    Machine {
        harts,
        states,
        board,
    }
}

/// An extension id: mostly the implemented ones and the legacy range.
fn extension(u: &mut Unstructured) -> Result<u64> {
    const IMPLEMENTED: [u64; 7] = [
        EXT_BASE, EXT_TIME, EXT_IPI, EXT_RFENCE, EXT_HSM, EXT_SRST, EXT_DBCN,
    ];
    Ok(match u.int_in_range(0..=15)? {
        0..=9 => *u.choose(&IMPLEMENTED)?,
        10..=12 => u.int_in_range(0..=15)?, // legacy, and reserved legacy ids
        13 => *u.choose(&EXT_UNIMPLEMENTED)?,
        _ => u.arbitrary()?,
    })
}

/// An argument, biased toward the edges that matter to some call.
fn argument(u: &mut Unstructured, m: &Machine) -> Result<u64> {
    let harts = m.harts.len() as u64;
    let ram_size = m.board.ram.size();
    let ram_end = RAM_BASE + ram_size;
    Ok(match u.int_in_range(0..=14)? {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u.int_in_range(0..=harts + 1)?, // hart ids, in range and out
        4 => (1 << harts) - 1,               // every hart
        5 => u.int_in_range(0..=(1 << (harts + 1)) - 1)?, // hart masks, one bit beyond
        6 => RAM_BASE + u.int_in_range(0..=ram_size - 1)?, // inside RAM
        7 => ram_end - u.int_in_range(0..=DBCN_MAX_WRITE + 1)?, // the end of RAM
        8 => RAM_BASE.wrapping_sub(u.int_in_range(0..=8)?), // just below RAM
        9 => 1 << u.int_in_range(0..=63)?,   // huge lengths, high bits
        10 => u.int_in_range(0..=DBCN_MAX_WRITE + 64)?, // lengths around the write limit
        11 => 0x8000_0000 | u.int_in_range(0..=1)?, // suspend types
        12 => u64::from(u.arbitrary::<u32>()?),
        13 => extension(u)?, // for the Base extension's probe
        _ => u.arbitrary()?,
    })
}

impl Machine {
    /// Makes `call` from its hart, as an ECALL would, and checks the answer.
    fn call(&mut self, call: &Call) -> SbiOutcome {
        let hart = &mut self.harts[call.caller];
        hart.x[10..16].copy_from_slice(&call.args);
        hart.x[16] = call.fid;
        hart.x[17] = call.ext;
        let before = Before {
            x: self.harts.iter().map(|h| h.x).collect(),
            pc: self.harts.iter().map(|h| h.pc).collect(),
            prv: self.harts.iter().map(|h| h.prv).collect(),
            mip_sw: self.harts.iter().map(|h| h.csr.mip_sw).collect(),
            stimecmp: self.harts.iter().map(|h| h.csr.stimecmp).collect(),
            states: self.states.clone(),
            output_len: self.board.uart.output.len(),
            rx: self.board.uart.rx.iter().copied().collect(),
        };
        let mark = self.board.ram.mark();
        let outcome = sbi::handle_call(
            &mut self.harts,
            &mut self.states,
            call.caller,
            &mut self.board,
        );
        let written = self.board.ram.written_since(mark);
        self.check(call, &before, outcome, &written);
        outcome
    }

    fn check(&self, call: &Call, before: &Before, outcome: SbiOutcome, written: &[usize]) {
        let c = call.caller;
        let a = &call.args;
        let legacy = call.ext <= LEGACY_SHUTDOWN;
        let (error, value) = (self.harts[c].x[10] as i64, self.harts[c].x[11]);
        let output = &self.board.uart.output[before.output_len..];

        // Registers: the caller keeps all but a0 and a1 (legacy calls: a0),
        // and its pc and privilege; hart_start may change its target only.
        let started = self.started_by(call, before);
        for (id, hart) in self.harts.iter().enumerate() {
            if Some(id) == started {
                continue;
            }
            for (r, (&now, &was)) in hart.x.iter().zip(&before.x[id]).enumerate() {
                let result = id == c && (r == 10 || (r == 11 && !legacy));
                assert!(result || now == was, "{call:x?}: x{r} of hart {id} changed");
            }
            assert_eq!(hart.pc, before.pc[id], "{call:x?}: pc of hart {id}");
            assert_eq!(hart.prv, before.prv[id], "{call:x?}: mode of hart {id}");
        }
        if !legacy {
            assert!(STANDARD_ERRORS.contains(&error), "{call:x?}: error {error}");
        }

        // Only a console read writes RAM, only where told, only what it read.
        let read = call.ext == EXT_DBCN && call.fid == 1 && error == SUCCESS;
        if read && value > 0 {
            let first = (a[1] - RAM_BASE) / 4096;
            let last = (a[1] + value - 1 - RAM_BASE) / 4096;
            assert!(
                written
                    .iter()
                    .all(|&p| (first..=last).contains(&(p as u64))),
                "{call:x?}: wrote pages {written:?}"
            );
        } else {
            assert!(written.is_empty(), "{call:x?}: wrote pages {written:?}");
        }

        // Only hart_stop changes HSM states besides hart_start.
        let stopped = outcome == SbiOutcome::HartStopped;
        for (id, (&now, &was)) in self.states.iter().zip(&before.states).enumerate() {
            let expected = if Some(id) == started {
                HartState::Started
            } else if stopped && id == c {
                HartState::Stopped
            } else {
                was
            };
            assert_eq!(now, expected, "{call:x?}: HSM state of hart {id}");
        }
        if stopped {
            assert!(call.ext == EXT_HSM && call.fid == 1, "{call:x?}");
        }

        // Output: only the console calls make any.
        let console_output = matches!(
            (call.ext, call.fid),
            (EXT_DBCN, 0 | 2) | (LEGACY_PUTCHAR, _)
        );
        if !console_output {
            assert!(output.is_empty(), "{call:x?}: output {output:?}");
        }

        match call.ext {
            EXT_BASE => self.check_base(call, error, value),
            EXT_TIME if call.fid == 0 => {
                assert_eq!((error, self.harts[c].csr.stimecmp), (SUCCESS, a[0]));
            }
            EXT_IPI if call.fid == 0 => {
                let targets = hart_mask(self.harts.len(), a[0], a[1]);
                assert_eq!(
                    error,
                    if targets.is_some() {
                        SUCCESS
                    } else {
                        ERR_INVALID_PARAM
                    },
                    "{call:x?}"
                );
                for (id, hart) in self.harts.iter().enumerate() {
                    let hit = targets.as_ref().is_some_and(|t| t.contains(&id));
                    let expected = before.mip_sw[id] | if hit { irq::SSIP } else { 0 };
                    assert_eq!(hart.csr.mip_sw, expected, "{call:x?}: mip of hart {id}");
                }
            }
            EXT_RFENCE if call.fid <= 2 => {
                let valid = hart_mask(self.harts.len(), a[0], a[1]).is_some();
                let expected = if valid { SUCCESS } else { ERR_INVALID_PARAM };
                assert_eq!(error, expected, "{call:x?}");
            }
            EXT_HSM => self.check_hsm(call, before, started, error, value),
            EXT_SRST if call.fid == 0 => {
                let reason_ok = a[1] <= 1;
                let expected = match a[0] {
                    0 if reason_ok => (SUCCESS, SbiOutcome::Shutdown),
                    1 | 2 if reason_ok => (SUCCESS, SbiOutcome::Reboot),
                    _ => (ERR_INVALID_PARAM, SbiOutcome::Continue),
                };
                assert_eq!((error, outcome), expected, "{call:x?}");
            }
            EXT_DBCN => self.check_debug_console(call, before, error, value, output),
            LEGACY_SET_TIMER => {
                assert_eq!(self.harts[c].csr.stimecmp, a[0]);
                assert_eq!(error, 0);
            }
            LEGACY_PUTCHAR => assert_eq!((error, output), (0, &[a[0] as u8][..])),
            LEGACY_GETCHAR => {
                let expected = before.rx.first().map_or(u64::MAX, |&b| u64::from(b));
                assert_eq!(error as u64, expected, "{call:x?}");
            }
            LEGACY_CLEAR_IPI => {
                assert_eq!(self.harts[c].csr.mip_sw & irq::SSIP, 0);
            }
            LEGACY_SHUTDOWN => assert_eq!(outcome, SbiOutcome::Shutdown),
            _ if legacy => {} // IPIs and fences, with the hart mask in memory
            _ => assert_eq!(error, ERR_NOT_SUPPORTED, "{call:x?}"),
        }
        if !matches!(call.ext, EXT_TIME | LEGACY_SET_TIMER) {
            assert_eq!(self.harts[c].csr.stimecmp, before.stimecmp[c], "{call:x?}");
        }
        let ends = matches!(outcome, SbiOutcome::Shutdown | SbiOutcome::Reboot);
        assert!(
            !ends || matches!(call.ext, EXT_SRST | LEGACY_SHUTDOWN),
            "{call:x?}: {outcome:?}"
        );
    }

    /// The hart this call started, if it was a successful HSM hart_start.
    fn started_by(&self, call: &Call, before: &Before) -> Option<usize> {
        let id = usize::try_from(call.args[0]).ok()?;
        let start = call.ext == EXT_HSM && call.fid == 0;
        let was_stopped = before.states.get(id) == Some(&HartState::Stopped);
        (start && was_stopped && self.states[id] == HartState::Started).then_some(id)
    }

    fn check_base(&self, call: &Call, error: i64, value: u64) {
        match call.fid {
            0 => assert_eq!((error, value), (SUCCESS, 2 << 24), "SBI 2.0"),
            1 | 2 | 4..=6 => assert_eq!(error, SUCCESS),
            3 => {
                let implemented = matches!(
                    call.args[0],
                    EXT_BASE | EXT_TIME | EXT_IPI | EXT_RFENCE | EXT_HSM | EXT_SRST | EXT_DBCN
                ) || call.args[0] <= LEGACY_SHUTDOWN;
                assert_eq!((error, value), (SUCCESS, u64::from(implemented)));
            }
            _ => assert_eq!(error, ERR_NOT_SUPPORTED),
        }
    }

    fn check_hsm(
        &self,
        call: &Call,
        before: &Before,
        started: Option<usize>,
        error: i64,
        value: u64,
    ) {
        let a = &call.args;
        let harts = self.harts.len() as u64;
        match call.fid {
            0 => {
                let expected = if a[0] >= harts {
                    ERR_INVALID_PARAM
                } else if before.states[a[0] as usize] == HartState::Started {
                    ERR_ALREADY_AVAILABLE
                } else if !self.in_ram(a[1], 1) {
                    ERR_INVALID_ADDRESS
                } else {
                    SUCCESS
                };
                assert_eq!(error, expected, "{call:x?}");
                assert_eq!(started.is_some(), error == SUCCESS);
                if let Some(id) = started {
                    // satp = 0, sstatus.SIE = 0, a0 = hartid, a1 = opaque, S-mode at start_addr.
                    let hart = &self.harts[id];
                    assert_eq!(hart.pc, a[1]);
                    assert_eq!(hart.prv, prv::S);
                    assert_eq!((hart.x[10], hart.x[11]), (id as u64, a[2]));
                    assert_eq!(hart.csr.satp, 0);
                    assert_eq!(hart.csr.mstatus & csr::MSTATUS_SIE, 0);
                    assert!(!hart.waiting);
                }
            }
            1 => assert_eq!(error, SUCCESS),
            2 => {
                let expected = match before.states.get(a[0] as usize) {
                    _ if a[0] >= harts => (ERR_INVALID_PARAM, 0),
                    Some(HartState::Started) => (SUCCESS, 0),
                    _ => (SUCCESS, 1),
                };
                assert_eq!((error, value), expected, "{call:x?}");
            }
            3 => {
                // suspend_type is 32 bits wide.
                let expected = match a[0] as u32 {
                    0 => SUCCESS,
                    0x8000_0000 => ERR_NOT_SUPPORTED,
                    _ => ERR_INVALID_PARAM,
                };
                assert_eq!(error, expected, "{call:x?}");
            }
            _ => assert_eq!(error, ERR_NOT_SUPPORTED),
        }
    }

    fn check_debug_console(
        &self,
        call: &Call,
        before: &Before,
        error: i64,
        value: u64,
        output: &[u8],
    ) {
        let [num_bytes, base_lo, base_hi, ..] = call.args;
        let accessible = base_hi == 0 && self.in_ram(base_lo, num_bytes);
        let rx_after: Vec<u8> = self.board.uart.rx.iter().copied().collect();
        match call.fid {
            0 | 1 if num_bytes == 0 && base_hi == 0 => {
                // An empty range: refusing it or reading nothing are both fine.
                assert!(error == ERR_INVALID_ADDRESS || (error, value) == (SUCCESS, 0));
                assert!(output.is_empty() && rx_after == before.rx);
            }
            0 | 1 if !accessible => {
                assert_eq!(error, ERR_INVALID_ADDRESS, "{call:x?}");
                assert!(output.is_empty() && rx_after == before.rx, "{call:x?}");
            }
            0 => {
                assert_eq!(error, SUCCESS);
                assert_eq!(value, num_bytes.min(DBCN_MAX_WRITE), "{call:x?}");
                assert_eq!(output.len() as u64, value, "{call:x?}: output length");
                let mut ram = vec![0; output.len()];
                self.board
                    .ram
                    .read_bytes(base_lo, &mut ram)
                    .expect("in RAM");
                assert!(ram == output, "{call:x?}: output is not the RAM asked for");
            }
            1 => {
                assert_eq!(error, SUCCESS);
                let n = value as usize;
                assert_eq!(n, before.rx.len().min(num_bytes as usize), "{call:x?}");
                assert_eq!(rx_after, before.rx[n..], "{call:x?}: what is left to read");
                let mut ram = vec![0; n];
                self.board
                    .ram
                    .read_bytes(base_lo, &mut ram)
                    .expect("in RAM");
                assert_eq!(ram, before.rx[..n], "{call:x?}: what was read");
            }
            2 => assert_eq!((error, output), (SUCCESS, &[num_bytes as u8][..])),
            _ => assert_eq!(error, ERR_NOT_SUPPORTED),
        }
    }

    /// Is all of [addr, addr + len) guest RAM?
    fn in_ram(&self, addr: u64, len: u64) -> bool {
        let size = self.board.ram.size();
        addr.checked_sub(RAM_BASE)
            .is_some_and(|off| off < size && len <= size - off)
    }
}

/// The harts an SBI hart mask selects (`None`: an invalid selection).
fn hart_mask(harts: usize, mask: u64, base: u64) -> Option<Vec<usize>> {
    if base == u64::MAX {
        return Some((0..harts).collect());
    }
    (0..64)
        .filter(|bit| mask >> bit & 1 != 0)
        .map(|bit| {
            base.checked_add(bit)
                .filter(|&id| id < harts as u64)
                .map(|id| id as usize)
        })
        .collect()
}

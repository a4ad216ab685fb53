//! Shared support for the hart's integration tests: a bus with nothing but
//! RAM, a hart set up to trap into a known M-mode handler, and instruction
//! encoders.
//!
//! Each test binary uses a different part of this module.
#![allow(dead_code)]

use rewind_hart::{Bus, Exit, Hart, Ram};

/// Where RAM starts, as on QEMU's `virt` board.
pub const RAM_BASE: u64 = 0x8000_0000;
/// The M-mode trap handler: a `jal x0, 0` that spins until the budget ends.
pub const TRAP_PA: u64 = RAM_BASE;
/// `jal x0, 0`.
pub const SPIN: u32 = 0x0000_006f;

/// mstatus.FS = Initial: FP instructions are enabled.
pub const FS_INITIAL: u64 = 1 << 13;

/// A bus with RAM and no devices.
pub struct TestBus {
    pub ram: Ram,
}

impl TestBus {
    pub fn new(size: u64) -> Self {
        TestBus {
            ram: Ram::new(RAM_BASE, size),
        }
    }

    pub fn write(&mut self, paddr: u64, bytes: &[u8]) {
        self.ram
            .write_bytes(paddr, bytes)
            .unwrap_or_else(|| panic!("{paddr:#x}+{} is outside RAM", bytes.len()));
    }

    pub fn write_u16(&mut self, paddr: u64, v: u16) {
        self.write(paddr, &v.to_le_bytes());
    }

    pub fn write_u32(&mut self, paddr: u64, v: u32) {
        self.write(paddr, &v.to_le_bytes());
    }

    pub fn write_u64(&mut self, paddr: u64, v: u64) {
        self.write(paddr, &v.to_le_bytes());
    }

    /// Writes 32-bit instructions one after another from `paddr`.
    pub fn write_code(&mut self, paddr: u64, code: &[u32]) {
        for (i, inst) in code.iter().enumerate() {
            self.write_u32(paddr + 4 * i as u64, *inst);
        }
    }

    pub fn read_u64(&self, paddr: u64) -> u64 {
        let mut b = [0u8; 8];
        self.ram
            .read_bytes(paddr, &mut b)
            .unwrap_or_else(|| panic!("{paddr:#x} is outside RAM"));
        u64::from_le_bytes(b)
    }

    pub fn read_u32(&self, paddr: u64) -> u32 {
        let mut b = [0u8; 4];
        self.ram
            .read_bytes(paddr, &mut b)
            .unwrap_or_else(|| panic!("{paddr:#x} is outside RAM"));
        u32::from_le_bytes(b)
    }
}

impl Bus for TestBus {
    fn ram(&mut self) -> &mut Ram {
        &mut self.ram
    }
    fn mmio_read(&mut self, _hart: usize, _clock: u64, _paddr: u64, _size: u8) -> Option<u64> {
        None
    }
    fn mmio_write(&mut self, _hart: usize, _clock: u64, _paddr: u64, _size: u8, _v: u64) -> bool {
        false
    }
    fn interrupt_lines(&mut self, _hart: usize, _clock: u64) -> u64 {
        0
    }
    fn next_event(&mut self, _hart: usize, _clock: u64) -> u64 {
        u64::MAX
    }
    fn time(&self, clock: u64) -> u64 {
        clock / 100
    }
    fn clock_at_time(&self, t: u64) -> u64 {
        t.saturating_mul(100)
    }
    fn stop_requested(&self) -> bool {
        false
    }
}

/// A value no trap ever writes to mcause/mtval/mepc, so that a test can tell
/// "written with 0" from "not written".
pub const UNTOUCHED: u64 = 0xdead_beef_dead_beef;

/// A hart in M-mode at `pc` whose traps go to [`TRAP_PA`], with the trap CSRs
/// set to [`UNTOUCHED`]. The bus must hold the handler (see [`install_trap_handler`]).
pub fn new_hart(pc: u64) -> Hart {
    let mut hart = Hart::new(0, pc);
    hart.csr.mtvec = TRAP_PA;
    hart.csr.mcause = UNTOUCHED;
    hart.csr.mtval = UNTOUCHED;
    hart.csr.mepc = UNTOUCHED;
    hart
}

pub fn install_trap_handler(bus: &mut TestBus) {
    bus.write_u32(TRAP_PA, SPIN);
}

/// Runs `hart` for at most `n` more instructions (clock ticks).
pub fn run(hart: &mut Hart, bus: &mut TestBus, n: u64) -> Exit {
    let until = hart.clock() + n;
    hart.run(bus, until)
}

/// What the last trap into M-mode recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trap {
    pub cause: u64,
    pub tval: u64,
    pub epc: u64,
}

pub fn m_trap(hart: &Hart) -> Trap {
    Trap {
        cause: hart.csr.mcause,
        tval: hart.csr.mtval,
        epc: hart.csr.mepc,
    }
}

/// Instruction encoders for hand-written test programs. They are checked
/// against the GNU assembler in `decoder.rs` (`encoders_match_gnu_as`).
pub mod enc {
    fn r(opcode: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
        (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
    }
    fn i(opcode: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
        assert!(
            (-2048..2048).contains(&imm),
            "I immediate {imm} out of range"
        );
        ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
    }
    fn s(opcode: u32, f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
        assert!(
            (-2048..2048).contains(&imm),
            "S immediate {imm} out of range"
        );
        let imm = imm as u32 & 0xfff;
        ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | opcode
    }

    pub fn lui(rd: u32, imm20: u32) -> u32 {
        (imm20 << 12) | (rd << 7) | 0x37
    }
    pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
        i(0x13, 0, rd, rs1, imm)
    }
    pub fn ld(rd: u32, rs1: u32, imm: i32) -> u32 {
        i(0x03, 3, rd, rs1, imm)
    }
    pub fn lw(rd: u32, rs1: u32, imm: i32) -> u32 {
        i(0x03, 2, rd, rs1, imm)
    }
    pub fn lbu(rd: u32, rs1: u32, imm: i32) -> u32 {
        i(0x03, 4, rd, rs1, imm)
    }
    pub fn sd(rs2: u32, rs1: u32, imm: i32) -> u32 {
        s(0x23, 3, rs1, rs2, imm)
    }
    pub fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
        s(0x23, 2, rs1, rs2, imm)
    }
    pub fn sb(rs2: u32, rs1: u32, imm: i32) -> u32 {
        s(0x23, 0, rs1, rs2, imm)
    }
    pub fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
        i(0x67, 0, rd, rs1, imm)
    }
    pub fn amoadd_d(rd: u32, rs2: u32, rs1: u32) -> u32 {
        r(0x2f, 3, 0, rd, rs1, rs2)
    }
    pub fn csrrw(rd: u32, csr: u32, rs1: u32) -> u32 {
        (csr << 20) | (rs1 << 15) | (1 << 12) | (rd << 7) | 0x73
    }
    pub fn csrrs(rd: u32, csr: u32, rs1: u32) -> u32 {
        (csr << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x73
    }
    pub fn csrrc(rd: u32, csr: u32, rs1: u32) -> u32 {
        (csr << 20) | (rs1 << 15) | (3 << 12) | (rd << 7) | 0x73
    }
    pub fn sret() -> u32 {
        0x1020_0073
    }
    pub fn sfence_vma(rs1: u32, rs2: u32) -> u32 {
        r(0x73, 0, 0b000_1001, 0, rs1, rs2)
    }
    pub fn ebreak() -> u32 {
        0x0010_0073
    }
    pub fn nop() -> u32 {
        addi(0, 0, 0)
    }
}

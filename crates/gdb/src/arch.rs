//! The architecture gdb is told about: RV64 with the F and D registers,
//! the CSRs a kernel developer reads, and the privilege level, numbered as
//! gdb numbers RISC-V registers (x0-x31 0-31, pc 32, f0-f31 33-64, CSR n
//! 65+n, priv 4161), so that `info registers`, `p $sstatus` and `p $priv`
//! work.

use gdbstub::arch::Arch;
use gdbstub_arch::riscv::reg::id::RiscvRegId;
use gdbstub_arch::riscv::reg::RiscvCoreRegs;
use rewind_hart::csr::addr;
use std::fmt::Write;
use std::sync::OnceLock;

/// RV64GC as Rewind's harts implement it.
pub enum RewindRiscv64 {}

/// The CSRs gdb is told about, by name.
pub const CSRS: &[(&str, u16)] = &[
    ("fflags", addr::FFLAGS),
    ("frm", addr::FRM),
    ("fcsr", addr::FCSR),
    ("cycle", addr::CYCLE),
    ("time", addr::TIME),
    ("instret", addr::INSTRET),
    ("sstatus", addr::SSTATUS),
    ("sie", addr::SIE),
    ("stvec", addr::STVEC),
    ("scounteren", addr::SCOUNTEREN),
    ("senvcfg", addr::SENVCFG),
    ("sscratch", addr::SSCRATCH),
    ("sepc", addr::SEPC),
    ("scause", addr::SCAUSE),
    ("stval", addr::STVAL),
    ("sip", addr::SIP),
    ("stimecmp", addr::STIMECMP),
    ("satp", addr::SATP),
    ("mhartid", addr::MHARTID),
    ("mstatus", addr::MSTATUS),
    ("misa", addr::MISA),
    ("medeleg", addr::MEDELEG),
    ("mideleg", addr::MIDELEG),
    ("mie", addr::MIE),
    ("mtvec", addr::MTVEC),
    ("mcounteren", addr::MCOUNTEREN),
    ("menvcfg", addr::MENVCFG),
    ("mscratch", addr::MSCRATCH),
    ("mepc", addr::MEPC),
    ("mcause", addr::MCAUSE),
    ("mtval", addr::MTVAL),
    ("mip", addr::MIP),
    ("mcycle", addr::MCYCLE),
    ("minstret", addr::MINSTRET),
];

/// gdb's register number of CSR `n`.
pub const fn csr_regnum(n: u16) -> usize {
    65 + n as usize
}

/// gdb's register number of the privilege level.
pub const PRIV_REGNUM: usize = 4161;

const X_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

const F_NAMES: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// The target description, built once from the tables above.
fn description() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let mut x = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n<feature name=\"org.gnu.gdb.riscv.cpu\">\n",
        );
        for (i, name) in X_NAMES.iter().enumerate() {
            let kind = match i {
                1 => "code_ptr",
                2 | 3 | 4 | 8 => "data_ptr",
                _ => "int",
            };
            let _ = writeln!(x, "<reg name=\"{name}\" bitsize=\"64\" type=\"{kind}\" regnum=\"{i}\"/>");
        }
        x.push_str("<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"32\"/>\n</feature>\n");
        x.push_str("<feature name=\"org.gnu.gdb.riscv.fpu\">\n");
        for (i, name) in F_NAMES.iter().enumerate() {
            let _ = writeln!(x, "<reg name=\"{name}\" bitsize=\"64\" type=\"ieee_double\" regnum=\"{}\"/>", 33 + i);
        }
        // gdbstub_arch sizes every CSR as XLEN, so these are 64 bits wide.
        for (name, n) in &CSRS[..3] {
            let _ = writeln!(x, "<reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>", csr_regnum(*n));
        }
        x.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n");
        for (name, n) in &CSRS[3..] {
            let _ = writeln!(x, "<reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>", csr_regnum(*n));
        }
        x.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n");
        // One byte, as gdbstub_arch sizes it.
        let _ = writeln!(x, "<reg name=\"priv\" bitsize=\"8\" type=\"int\" regnum=\"{PRIV_REGNUM}\"/>");
        x.push_str("</feature>\n</target>\n");
        x
    })
}

impl Arch for RewindRiscv64 {
    type Usize = u64;
    type Registers = RiscvCoreRegs<u64>;
    type BreakpointKind = usize;
    type RegId = RiscvRegId<u64>;

    fn target_description_xml() -> Option<&'static str> {
        Some(description())
    }
}

//! Translation of a decoded block to x86-64.
//!
//! The code does only what it can do exactly like the interpreter without
//! help: integer arithmetic (with Zba, Zbb and Zbs: translate/bitmanip.rs),
//! branches and jumps, and loads, stores, AMOs, LR and SC that hit the
//! TLB's fast path (the compare and add of `read_mem` and `write_mem`),
//! after a TLB fill where that is all the slow path would do first (see
//! below). Anything else (a slow entry, a page crossing, a fault, a device,
//! an instruction it does not translate) leaves the code *before* that
//! instruction, with the count of instructions retired and the pc to go on
//! from, and the interpreter takes over there. So translated code never
//! traps, never reaches a device, never reads the clock, and the hart's
//! state after it is the state the interpreter would have reached after
//! the same instructions.
//!
//! Blocks chain: a block that ends by going to a known pc on its own page
//! jumps straight into that pc's translation, once the hart has linked the
//! two (a "link cell" per such exit, filled by jit/mod.rs), without going
//! back to the hart's loop. That loop's checks between blocks hold without
//! it: interrupts can become pending only through instructions that are
//! never translated or at the next timer event, which the budget stops
//! short of, like the step limit; and a block on the same page shares the
//! page's translation and code generation, which nothing in translated
//! code can change (see jit/mod.rs). Each block's chained entry checks the
//! budget and leaves, before the block, when it does not fit. A block that
//! goes back to its own start does so in place, with the same check,
//! without the link cell (translate/locals.rs says why).
//!
//! Registers inside translated code:
//! - six guest registers of [`PINNED`] live in host registers (rdi, r8,
//!   r10, r11, r14, r15) from the first block's entry to the common exit,
//!   across chained blocks, which all agree on where they are; the exit
//!   writes them back, and so does every helper call, which reloads them
//!   after;
//! - r12: RAM's bytes;
//! - r13: the TLB tables of the data privilege, reads then writes
//!   (a block that never reaches memory borrows r12 and r13 as two more
//!   locals, below, and loads them again before it goes on);
//! - rbp: the [`JitContext`] (the write epoch and budget in, the exit pc
//!   out; RAM's write stamps and the hart, loaded where needed), which
//!   lives in the hart, so the x registers are at a fixed offset from it
//!   ([`X`]);
//! - r9: the budget left for the blocks after this one, whose length the
//!   chained entry took off: so the instructions retired so far are the
//!   budget given less r9, less the part of this block not yet run, which
//!   each exit knows (no counter to keep up);
//! - rbx, rsi (and r12, r13 where the block lends them): up to two (four)
//!   more guest registers, the block's own choice, loaded at its chained
//!   entry and written back where it leaves (translate/locals.rs);
//! - rax, rcx, rdx: scratch.
//!
//! Instructions that only touch the hart's registers but are too long to
//! write out (the FP arithmetic, all of it SoftFloat's) are calls to a
//! helper that runs the interpreter's own code for them (jit/helpers.rs):
//! exact by construction, and still no trip through the hart's loop. A
//! helper that finds the instruction would trap changes nothing and says
//! so, and the code leaves before the instruction for the interpreter to
//! take the trap. The helper sees the registers in the hart: the code
//! writes the pinned ones back before the call and reloads them after.
//!
//! A data access that misses the TLB's fast path calls a helper for the
//! page walk and fill the interpreter's slow path starts with
//! (`Hart::fill_for_translated`), and retries its lookup when that was all
//! the interpreter would have done before the access; otherwise it leaves
//! before the instruction as above. (Leaving on every miss cost a Linux
//! boot 1.4 million trips through the hart's loop.)
//!
//! The stack: the prologue's pushes and 24 bytes keep rsp 16-byte aligned
//! for those calls, with room to keep r9 and a miss's address across
//! them; every block has the same frame, so chained blocks share it.

mod bitmanip;
mod fp;
mod locals;

use super::helpers;
use crate::decode::{Fmt, Inst, Op};
use crate::hart::Hart;
use crate::memory::Ram;
use crate::memory::PAGE_SHIFT;
use crate::tlb::{tlb_slot, TlbEntry, SLOW, TLB_SIZE, WRITE_TABLE_OFFSET};
use dynasmrt::x64::Rq;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi};
use std::mem::offset_of;

/// What translated code is given, and where it leaves the pc. It lives in
/// the hart (`Hart::jit_context`), so that the code reaches the hart's x
/// registers at a fixed offset from it (see [`X`]) and needs no register
/// for their base.
#[repr(C)]
pub(crate) struct JitContext {
    pub(crate) ram: *mut u8,
    pub(crate) written: *mut u32,
    /// The TLB tables of reads and writes of the data privilege (see
    /// [`crate::tlb::Tlb::data_tables`]).
    pub(crate) tlb_data: *const TlbEntry,
    pub(crate) epoch: u32,
    /// Instructions that may retire before the hart must look around
    /// (the block budget of `run_block`).
    pub(crate) budget: u64,
    pub(crate) exit_pc: u64,
    /// Out: instructions retired by the blocks chained through before the
    /// one that left (0: it left from the first).
    pub(crate) exit_before: u64,
    /// Out: the link cell of the exit taken, when it could chain but was
    /// not linked yet (null otherwise).
    pub(crate) exit_cell: *mut u64,
    /// The TLB table of fetches at the hart's privilege.
    pub(crate) tlb_exec: *const TlbEntry,
    /// RAM's code generation per page.
    pub(crate) generations: *const u32,
    /// The jump cache ([`JumpEntry`] x [`JUMP_CACHE`]).
    pub(crate) jumps: *const JumpEntry,
    /// The hart, for helpers. (Translated code reaches the hart's own
    /// fields at fixed offsets from the context, which lives in it.)
    pub(crate) hart: *mut Hart,
    /// RAM as a whole, for the TLB fill helper's page walks.
    pub(crate) ram_state: *mut Ram,
}

// SAFETY: the pointers are set by `run_native` just before translated code
// runs, and only that code and its helpers follow them, on the thread that
// owns the hart; between runs they are stale and nothing reads them.
unsafe impl Send for JitContext {}

impl JitContext {
    /// A context with nothing to point at yet.
    pub(crate) const fn new() -> Self {
        JitContext {
            ram: std::ptr::null_mut(),
            written: std::ptr::null_mut(),
            tlb_data: std::ptr::null(),
            epoch: 0,
            budget: 0,
            exit_pc: 0,
            exit_before: 0,
            exit_cell: std::ptr::null_mut(),
            tlb_exec: std::ptr::null(),
            generations: std::ptr::null(),
            jumps: std::ptr::null(),
            hart: std::ptr::null_mut(),
            ram_state: std::ptr::null_mut(),
        }
    }
}

/// Where the hart's `x[0]` is from the context (rbp): both live in the
/// hart.
const X: i32 = offset_of!(Hart, x) as i32 - offset_of!(Hart, jit_context) as i32;

/// What a translation keeps outside its code, with the code cache's
/// lifetime: link cells, and the decoded instructions helpers are given.
pub(crate) trait Keep {
    /// A fresh link cell, or None when none is left.
    fn cell(&mut self) -> Option<*mut u64>;
    /// A copy of `inst` that lives as long as the code, or None when there
    /// is no room left.
    fn inst(&mut self, inst: &Inst) -> Option<*const Inst>;
}

/// Entries of the jump cache.
pub(crate) const JUMP_CACHE: usize = 1 << 12;

/// A translation as a block that goes to another page (or jumps to a
/// register) finds it: by the RAM offset its pc fetches from, checked
/// against the pc and its page's code generation, all of which must be
/// what they were when the hart ran it (see jit/mod.rs).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct JumpEntry {
    pub(crate) off: u64,
    pub(crate) pc: u64,
    pub(crate) generation: u64,
    pub(crate) chain: u64,
}

/// A translated block: `extern "sysv64" fn(*mut JitContext) -> u64`, which
/// returns the instructions it retired and leaves the next pc in
/// `exit_pc`.
pub(crate) type NativeBlock = unsafe extern "sysv64" fn(*mut JitContext) -> u64;

/// The machine code of a block's first `len` instructions: called at
/// offset 0, chained into at `chain_offset`.
pub(crate) struct Translation {
    pub(crate) code: Vec<u8>,
    pub(crate) len: usize,
    pub(crate) chain_offset: usize,
}

const PAGE_MASK: i32 = 0xfff;
/// log2 of a TLB entry's size, which slot arithmetic shifts by.
const ENTRY_SHIFT: u32 = 4;
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 1 << ENTRY_SHIFT);
const _: () = assert!(TLB_SIZE.is_power_of_two() && TLB_SIZE <= 1 << 20);

/// Whether the translator handles `inst` (and so whether translation goes
/// on past it).
pub(crate) fn translates(inst: &Inst) -> bool {
    use Op::*;
    inst.is_fp_csr()
        || helpers::csr_handles(inst)
        || reaches_memory(inst)
        || matches!(
            inst.op,
            Lui | Auipc
                | Jal
                | Jalr
                | Beq
                | Bne
                | Blt
                | Bge
                | Bltu
                | Bgeu
                | Addi
                | Slti
                | Sltiu
                | Xori
                | Ori
                | Andi
                | Slli
                | Srli
                | Srai
                | Add
                | Sub
                | Sll
                | Slt
                | Sltu
                | Xor
                | Srl
                | Sra
                | Or
                | And
                | Addiw
                | Slliw
                | Srliw
                | Sraiw
                | Addw
                | Subw
                | Sllw
                | Srlw
                | Sraw
                | Fence
                | Mul
                | Mulh
                | Mulhsu
                | Mulhu
                | Div
                | Divu
                | Rem
                | Remu
                | Mulw
                | Divw
                | Divuw
                | Remw
                | Remuw
                | FenceI
                | SfenceVma
                | CboZero
        )
        || helpers::fp_arith_handles(inst.op)
        || bitmanip::handles(inst.op)
}

type Asm = dynasmrt::VecAssembler<dynasmrt::x64::X64Relocation>;

/// Where translated code finds the LR reservation, from the hart pointer
/// ([`crate::hart::NO_RESERVATION`], all ones, when there is none).
const RESERVED: i32 = offset_of!(Hart, reserved) as i32;
const _: () = assert!(crate::hart::NO_RESERVATION == u64::MAX);

/// Guest registers held in host registers (guest, host number), chosen by
/// how often GCC's RISC-V code names them: a5, a4, sp, a0, a3, s0 (in that
/// order, counted in a compiled workload's disassembly). Two more host
/// registers hold each block's own choice (translate/locals.rs): static
/// pins cost nothing between chained blocks, which small branchy blocks
/// need, while loops want their own working set. The memory fast path
/// keeps RAM and the data TLB in registers (loading the TLB's base per
/// access cost the memory benchmark 13%); the write stamps' base is loaded
/// per store, off the address's critical path.
const PINNED: [(u8, u8); 6] = [(15, 14), (14, 8), (2, 11), (10, 7), (13, 15), (8, 10)];

/// Host register numbers of the scratch registers named in dynamic operands.
const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;

/// The host register guest register `r` lives in, if pinned.
fn pinned(r: u8) -> Option<u8> {
    PINNED.iter().find(|&&(g, _)| g == r).map(|&(_, h)| h)
}

/// A set of guest registers, one bit each.
type RegMask = u32;

/// Where translated code leaves for the interpreter: before instruction
/// `retired` of the block, at `pc`; through link cell `cell` when the
/// block has ended and `pc` is on its page.
struct Exit {
    label: dynasmrt::DynamicLabel,
    pc: u64,
    retired: u32,
    cell: Option<*mut u64>,
    /// The block has ended and goes to another page: look in the jump
    /// cache.
    far: bool,
    /// The block-local registers changed before the exit, which it writes
    /// back.
    dirty: RegMask,
}

/// A data access's TLB miss: the code calls the fill helper there, then
/// retries the lookup or leaves through `exit`.
struct Miss {
    label: dynasmrt::DynamicLabel,
    retry: dynasmrt::DynamicLabel,
    exit: dynasmrt::DynamicLabel,
    /// The helper's `kind`: size, and [`helpers::FILL_WRITE`].
    kind: u64,
    /// The block-local registers changed before the access.
    dirty: RegMask,
}

struct Translator<'a> {
    ops: Asm,
    exits: Vec<Exit>,
    misses: Vec<Miss>,
    /// The block's first pc and length.
    pc: u64,
    len: u32,
    /// For a block that is one instruction straddling two pages: the RAM
    /// page and code generation its upper half was fetched from.
    second_page: Option<(usize, u32)>,
    /// Gives link cells and keeps instructions for helpers.
    keep: &'a mut dyn Keep,
    /// False once `keep` had no room: the translation is abandoned.
    kept: bool,
    no_budget: dynasmrt::DynamicLabel,
    /// The block-local registers (guest, host; see translate/locals.rs),
    /// and those changed so far in the code emitted.
    locals: Vec<(u8, u8)>,
    /// The block never reaches memory and holds locals in r12 and r13,
    /// which it loads again before going on to another block.
    borrows_memory_registers: bool,
    /// The locals the block's entry loads.
    read_first: RegMask,
    dirty: RegMask,
    /// Where the block's instructions start, its locals loaded.
    body: dynasmrt::DynamicLabel,
    /// The block ends by going back to its start, which it does in place
    /// (see translate/locals.rs).
    loops: bool,
    /// A guest register held in memory whose value the last instruction
    /// computed in rax and stored, and the code's offset just after: rax
    /// still holds it while nothing has been emitted since (see
    /// [`Translator::put`]).
    rax_holds: Option<(u8, usize)>,
    /// What the FP code so far has made sure of (translate/fp.rs).
    fp: fp::FpKnown,
    /// The FP instructions' slow paths, written after the body.
    fp_slow: Vec<fp::FpSlow>,
}

/// Translates the longest prefix of `insts` (a block starting at `pc`)
/// that the translator handles, keeping what it needs in `keep`; None when
/// that prefix is empty or `keep` ran out of room.
pub(crate) fn translate(
    insts: &[Inst],
    pc: u64,
    second_page: Option<(usize, u32)>,
    keep: &mut dyn Keep,
) -> Option<Translation> {
    let len = insts.iter().take_while(|i| translates(i)).count();
    if len == 0 {
        return None;
    }
    let mut ops = Asm::new(0);
    let no_budget = ops.new_dynamic_label();
    let body = ops.new_dynamic_label();
    let loops = second_page.is_none() && loops_to_start(&insts[..len], pc);
    let borrows_memory_registers = !insts[..len].iter().any(reaches_memory);
    let pool: &[u8] = if borrows_memory_registers {
        &locals::MEMORY_FREE_POOL
    } else {
        &locals::LOCAL_POOL
    };
    let locals::Locals { held, read_first } =
        locals::choose(&insts[..len], loops, |r| pinned(r).is_some(), pool);
    // A block that loops in place comes round to its start with what the
    // last round changed not written back: so every local counts as
    // changed from the start.
    let dirty = if loops { read_first } else { 0 };
    let mut t = Translator {
        ops,
        exits: Vec::new(),
        misses: Vec::new(),
        pc,
        len: len as u32,
        second_page,
        keep,
        kept: true,
        no_budget,
        locals: held,
        borrows_memory_registers,
        read_first,
        dirty,
        body,
        loops,
        rax_holds: None,
        fp: fp::FpKnown::default(),
        fp_slow: Vec::new(),
    };
    t.prologue();
    let chain_offset = t.ops.offset().0;
    t.chain_entry();
    let mut at = pc;
    let mut ended = false;
    for (k, inst) in insts[..len].iter().enumerate() {
        let retired = k as u32;
        ended = t.inst(inst, at, retired);
        at = at.wrapping_add(inst.len as u64);
        if ended {
            break;
        }
    }
    if !ended {
        // The block goes on (an instruction not translated, the page's
        // end, the block's length limit): leave for the next one.
        t.leave(at, len as u32);
    }
    t.epilogue()?;
    let code = t.ops.finalize().ok()?;
    Some(Translation {
        code,
        len,
        chain_offset,
    })
}

/// Whether translated `i` reaches RAM, through r12 and the data TLB in
/// r13 ([`Translator::translate_address`]).
fn reaches_memory(i: &Inst) -> bool {
    use Op::*;
    i.op.is_amo()
        || matches!(
            i.op,
            Lb | Lh
                | Lw
                | Ld
                | Lbu
                | Lhu
                | Lwu
                | Sb
                | Sh
                | Sw
                | Sd
                | Flw
                | Fld
                | Fsw
                | Fsd
                | Lr
                | Sc
        )
}

/// Whether the block `insts` at `pc` ends by branching or jumping back to
/// its own start (where its self-loop exit applies).
fn loops_to_start(insts: &[Inst], pc: u64) -> bool {
    let Some(last) = insts.last() else {
        return false;
    };
    let at = insts[..insts.len() - 1]
        .iter()
        .fold(pc, |at, i| at.wrapping_add(i.len as u64));
    matches!(
        last.op,
        Op::Jal | Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu
    ) && at.wrapping_add(last.imm as u64) == pc
}

impl Translator<'_> {
    fn prologue(&mut self) {
        dynasm!(self.ops
            ; .arch x64
            ; push rbp
            ; push rbx
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; mov rbp, rdi
            ; mov r9, QWORD [rbp + offset_of!(JitContext, budget) as i32]
            ; sub rsp, 24
        );
        self.load_memory_registers();
        self.reload_pinned();
    }

    /// Where chained blocks enter: the block runs only if all of it fits
    /// the budget left (the interpreter then stops exactly).
    fn chain_entry(&mut self) {
        let (len, no_budget) = (self.len as i32, self.no_budget);
        dynasm!(self.ops
            ; .arch x64
            ; cmp r9, len
            ; jb =>no_budget
        );
        if let Some((page, generation)) = self.second_page {
            // A straddling instruction: only if its upper half would be
            // fetched as when it was translated, through a fast fetch TLB
            // entry to the same page, unchanged since. Blocks chain to it,
            // and the jump cache finds it, by its first page alone.
            let (vpn, slot) = tlb_slot(self.pc.wrapping_add(2));
            let entry = (slot << ENTRY_SHIFT) as i32;
            dynasm!(self.ops
                ; .arch x64
                ; mov rax, QWORD [rbp + offset_of!(JitContext, tlb_exec) as i32]
                ; mov rdx, QWORD vpn as i64
                ; cmp rdx, QWORD [rax + entry]
                ; jne =>no_budget
                ; mov rdx, QWORD (page << PAGE_SHIFT) as i64
                ; cmp rdx, QWORD [rax + entry + 8]
                ; jne =>no_budget
                ; mov rax, QWORD [rbp + offset_of!(JitContext, generations) as i32]
                ; mov rdx, QWORD page as i64
                ; cmp DWORD [rax + rdx * 4], generation as i32
                ; jne =>no_budget
            );
        }
        let body = self.body;
        dynasm!(self.ops ; .arch x64 ; sub r9, len);
        self.load_locals(self.read_first);
        dynasm!(self.ops ; .arch x64 ; =>body);
    }

    /// The exit stubs, then the common return (instructions retired in
    /// rax). None when link cells ran out.
    fn epilogue(&mut self) -> Option<()> {
        self.fp_slow_paths();
        for miss in std::mem::take(&mut self.misses) {
            self.fill_and_retry(miss);
        }
        let exits = std::mem::take(&mut self.exits);
        for exit in exits {
            dynasm!(self.ops ; .arch x64 ; =>exit.label);
            self.write_back(exit.dirty);
            if self.borrows_memory_registers && exit.cell.is_some() {
                // The next block may reach memory (dispatch does this for
                // far exits).
                self.load_memory_registers();
            }
            if exit.far {
                dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD exit.pc as i64);
                self.dispatch(exit.retired);
                continue;
            }
            if let Some(cell) = exit.cell {
                debug_assert_eq!(exit.retired, self.len);
                // Linked: on to the next block, this one counted.
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, QWORD cell as i64
                    ; mov rdx, QWORD [rcx]
                    ; test rdx, rdx
                    ; jz >unlinked
                    ; jmp rdx
                    ; unlinked:
                    ; mov QWORD [rbp + offset_of!(JitContext, exit_cell) as i32], rcx
                );
            }
            dynasm!(self.ops
                ; .arch x64
                ; mov rcx, QWORD exit.pc as i64
                ; mov QWORD [rbp + offset_of!(JitContext, exit_pc) as i32], rcx
                ; mov eax, exit.retired as i32
                ; jmp ->done
            );
        }
        let (pc, no_budget, len) = (self.pc, self.no_budget, self.len as i32);
        dynasm!(self.ops
            ; .arch x64
            // Before this block: it did not fit, so r9 still counts it.
            ; =>no_budget
            ; mov rcx, QWORD pc as i64
            ; mov QWORD [rbp + offset_of!(JitContext, exit_pc) as i32], rcx
            ; mov rax, QWORD [rbp + offset_of!(JitContext, budget) as i32]
            ; sub rax, r9
            ; mov QWORD [rbp + offset_of!(JitContext, exit_before) as i32], rax
            ; jmp >out
            // From inside this block, eax of it retired: the blocks before
            // retired the budget less r9 less this block's length.
            ; ->done:
            ; mov rcx, QWORD [rbp + offset_of!(JitContext, budget) as i32]
            ; sub rcx, r9
            ; sub rcx, len
            ; mov QWORD [rbp + offset_of!(JitContext, exit_before) as i32], rcx
            ; add rax, rcx
            ; out:
        );
        self.spill_pinned();
        dynasm!(self.ops
            ; .arch x64
            ; add rsp, 24
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbx
            ; pop rbp
            ; ret
        );
        self.kept.then_some(())
    }

    /// A label that leaves before instruction `retired`, at `pc`.
    fn exit_label(&mut self, pc: u64, retired: u32) -> dynasmrt::DynamicLabel {
        // The block has ended and goes on on its own page: it may chain.
        let ended = retired == self.len;
        // An instruction that may leave at several checks (an atomic's
        // alignment and its TLB lookup, FP's enable bit and its lookup)
        // leaves through one stub.
        if let Some(last) = self.exits.last() {
            if !ended && last.pc == pc && last.retired == retired && last.dirty == self.dirty {
                return last.label;
            }
        }
        let label = self.ops.new_dynamic_label();
        let chains = ended && pc >> 12 == self.pc >> 12;
        let cell = if chains {
            let cell = self.keep.cell();
            self.kept &= cell.is_some();
            cell
        } else {
            None
        };
        self.exits.push(Exit {
            label,
            pc,
            retired,
            cell,
            far: ended && !chains,
            dirty: self.dirty,
        });
        label
    }

    /// Goes on at the pc in rcx, `retired` instructions of this block
    /// retired: into its translation if the jump cache has it and the
    /// hart would run it now (the fetch hits the TLB, at the entry's RAM
    /// offset, and its page's code is unchanged), else back to the hart.
    fn dispatch(&mut self, retired: u32) {
        // Only the block's last instruction goes on to another block: the
        // next one's chained entry then finds r9 as it expects.
        debug_assert_eq!(retired, self.len);
        if self.borrows_memory_registers {
            // The next block may reach memory.
            self.load_memory_registers();
        }
        let mask = (JUMP_CACHE - 1) as i32;
        let entry = std::mem::size_of::<JumpEntry>() as i8;
        debug_assert_eq!(entry, 32);
        self.tlb_slot_offset(Rq::RCX);
        dynasm!(self.ops
            ; .arch x64
            ; mov rax, QWORD [rbp + offset_of!(JitContext, tlb_exec) as i32]
            ; add rax, rdx
            ; mov rdx, rcx
            ; shr rdx, 12
            ; cmp rdx, QWORD [rax]
            ; jne >back
            ; mov rdx, QWORD [rax + 8]
            ; mov eax, ecx
            ; and eax, PAGE_MASK
            ; add rdx, rax
            ; mov rax, rdx
            ; shr rax, 1
            ; and eax, mask
            ; shl rax, 5
            ; add rax, QWORD [rbp + offset_of!(JitContext, jumps) as i32]
            ; cmp rdx, QWORD [rax]
            ; jne >back
            ; cmp rcx, QWORD [rax + 8]
            ; jne >back
            ; shr rdx, 12
            ; shl rdx, 2
            ; add rdx, QWORD [rbp + offset_of!(JitContext, generations) as i32]
            ; mov edx, DWORD [rdx]
            ; cmp rdx, QWORD [rax + 16]
            ; jne >back
            ; jmp QWORD [rax + 24]
            ; back:
            ; mov QWORD [rbp + offset_of!(JitContext, exit_pc) as i32], rcx
            ; mov eax, retired as i32
            ; jmp ->done
        );
    }

    /// After `cmp rs1, rs2`: jumps to `to` when conditional branch `op`
    /// would be taken, or with `taken` false when it would not.
    fn branch_jump(&mut self, op: Op, taken: bool, to: dynasmrt::DynamicLabel) {
        // Not taken is taken for the opposite condition.
        let op = match (op, taken) {
            (op, true) => op,
            (Op::Beq, false) => Op::Bne,
            (Op::Bne, false) => Op::Beq,
            (Op::Blt, false) => Op::Bge,
            (Op::Bge, false) => Op::Blt,
            (Op::Bltu, false) => Op::Bgeu,
            (_, false) => Op::Bltu,
        };
        match op {
            Op::Beq => dynasm!(self.ops ; .arch x64 ; je =>to),
            Op::Bne => dynasm!(self.ops ; .arch x64 ; jne =>to),
            Op::Blt => dynasm!(self.ops ; .arch x64 ; jl =>to),
            Op::Bge => dynasm!(self.ops ; .arch x64 ; jge =>to),
            Op::Bltu => dynasm!(self.ops ; .arch x64 ; jb =>to),
            _ => dynasm!(self.ops ; .arch x64 ; jae =>to),
        }
    }

    /// Whether the block's `retired`th instruction, going to `target`,
    /// is the jump or branch back to its start of a block that loops in
    /// place (see translate/locals.rs).
    fn rounds_again(&self, target: u64, retired: u32) -> bool {
        self.loops && target == self.pc && retired + 1 == self.len
    }

    /// Goes round the loop again, straight to the block's body with its
    /// locals kept, while the budget has room for a whole round (as the
    /// chained entry would check); else leaves for the hart, whose budget
    /// is spent.
    fn round_again(&mut self) {
        let (len, body) = (self.len as i32, self.body);
        dynasm!(self.ops
            ; .arch x64
            ; sub r9, len
            ; jae =>body
            ; add r9, len
        );
        self.leave_unchained(self.pc, self.len);
    }

    /// Leaves now for the hart's loop at `pc`, `retired` instructions
    /// retired, never chaining: for instructions after which the loop
    /// must look around (a flushed TLB, an interrupt just enabled).
    fn leave_unchained(&mut self, pc: u64, retired: u32) {
        let label = self.ops.new_dynamic_label();
        self.exits.push(Exit {
            label,
            pc,
            retired,
            cell: None,
            far: false,
            dirty: self.dirty,
        });
        dynasm!(self.ops ; .arch x64 ; jmp =>label);
    }

    /// CBO.ZERO through its helper, or leave before it.
    fn cbo_zero(&mut self, i: &Inst, pc: u64, retired: u32) {
        let exit = self.exit_label(pc, retired);
        self.load_rax(i.rs1);
        self.call_in_line(helpers::cbo_zero as *const () as usize, |t| {
            dynasm!(t.ops
                ; .arch x64
                ; mov rdx, rax
                ; mov rdi, QWORD [rbp + offset_of!(JitContext, hart) as i32]
                ; mov rsi, QWORD [rbp + offset_of!(JitContext, ram_state) as i32]
            );
        });
        dynasm!(self.ops
            ; .arch x64
            ; test eax, eax
            ; jz =>exit
        );
    }

    /// Leaves now for `pc`, `retired` instructions retired.
    fn leave(&mut self, pc: u64, retired: u32) {
        let label = self.exit_label(pc, retired);
        dynasm!(self.ops ; .arch x64 ; jmp =>label);
    }

    /// Loads RAM's base into r12 and the data TLB's into r13.
    fn load_memory_registers(&mut self) {
        dynasm!(self.ops
            ; .arch x64
            ; mov r12, QWORD [rbp + offset_of!(JitContext, ram) as i32]
            ; mov r13, QWORD [rbp + offset_of!(JitContext, tlb_data) as i32]
        );
    }

    /// Writes the pinned registers back to the hart's array.
    fn spill_pinned(&mut self) {
        for (g, h) in PINNED {
            dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + X + 8 * g as i32], Rq(h));
        }
    }

    /// Loads the pinned registers from the hart's array.
    fn reload_pinned(&mut self) {
        for (g, h) in PINNED {
            dynasm!(self.ops ; .arch x64 ; mov Rq(h), QWORD [rbp + X + 8 * g as i32]);
        }
    }

    /// Loads the block-local registers in `which` from the hart's array.
    fn load_locals(&mut self, which: RegMask) {
        for (g, h) in self.locals.clone() {
            if which & 1 << g != 0 {
                dynasm!(self.ops ; .arch x64 ; mov Rq(h), QWORD [rbp + X + 8 * g as i32]);
            }
        }
    }

    /// Writes the block-local registers in `dirty` back to the hart's array.
    fn write_back(&mut self, dirty: RegMask) {
        for (g, h) in self.locals.clone() {
            if dirty & 1 << g != 0 {
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + X + 8 * g as i32], Rq(h));
            }
        }
    }

    /// The host register guest register `r` is held in, pinned or local.
    fn reg(&self, r: u8) -> Option<u8> {
        if r == 0 {
            return None;
        }
        pinned(r).or_else(|| self.locals.iter().find(|&&(g, _)| g == r).map(|&(_, h)| h))
    }

    /// Notes that `rd`'s host register, if it has one of its own here, now
    /// holds a value the hart's array does not.
    fn changed(&mut self, rd: u8) {
        if self.locals.iter().any(|&(g, _)| g == rd) {
            self.dirty |= 1 << rd;
        }
    }

    /// rax = x[r].
    fn load_rax(&mut self, r: u8) {
        self.load_into(RAX, r);
    }

    /// rcx = x[r].
    fn load_rcx(&mut self, r: u8) {
        self.load_into(RCX, r);
    }

    /// x[rd] = rax (x0 stays zero).
    fn store_rax(&mut self, rd: u8) {
        match (rd, self.reg(rd)) {
            (0, _) => {}
            (_, Some(h)) => {
                dynasm!(self.ops ; .arch x64 ; mov Rq(h), rax);
                self.changed(rd);
            }
            _ => dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + X + 8 * rd as i32], rax),
        }
    }

    /// Sign-extends eax into rax (the W forms).
    fn sext_eax(&mut self) {
        dynasm!(self.ops ; .arch x64 ; movsxd rax, eax);
    }

    /// The host register a result for `rd` is computed in: its own when
    /// pinned (no copy after), else rax (stored by [`Translator::put`]).
    fn dest(&self, rd: u8) -> u8 {
        self.reg(rd).unwrap_or(RAX)
    }

    /// x[rd] = host register `h`, the result computed in [`Translator::dest`].
    /// A result stored from rax to memory stays in rax for the next
    /// instruction to read there, as long as nothing is emitted before it
    /// reads it: a chain of results through memory-held registers then
    /// skips each store's reload. (`put` ends the integer instructions,
    /// and nothing can jump to the code after it.)
    fn put(&mut self, rd: u8, h: u8) {
        if h == RAX {
            self.store_rax(rd);
            if rd != 0 && self.reg(rd).is_none() {
                self.rax_holds = Some((rd, self.ops.offset().0));
            }
        } else {
            self.changed(rd);
        }
    }

    /// Whether rax holds x[r], a register held in memory (see
    /// [`Translator::put`]).
    fn rax_has(&self, r: u8) -> bool {
        self.rax_holds == Some((r, self.ops.offset().0))
    }

    /// Host register `h` = x[r].
    fn load_into(&mut self, h: u8, r: u8) {
        match (r, self.reg(r)) {
            (0, _) => dynasm!(self.ops ; .arch x64 ; xor Rd(h), Rd(h)),
            (_, Some(p)) if p == h => {}
            (_, Some(p)) => dynasm!(self.ops ; .arch x64 ; mov Rq(h), Rq(p)),
            _ if self.rax_has(r) && h == RAX => {}
            _ if self.rax_has(r) => dynasm!(self.ops ; .arch x64 ; mov Rq(h), rax),
            _ => dynasm!(self.ops ; .arch x64 ; mov Rq(h), QWORD [rbp + X + 8 * r as i32]),
        }
    }

    /// A host register holding x[r] for reading: its own when pinned, else
    /// `scratch` loaded with it.
    fn source(&mut self, r: u8, scratch: u8) -> u8 {
        match self.reg(r) {
            Some(p) if r != 0 => p,
            _ => {
                self.load_into(scratch, r);
                scratch
            }
        }
    }

    /// The operands of a two-register ALU instruction: returns (d, s) with
    /// host register d = x[rs1], where the result goes (see
    /// [`Translator::dest`]), and s = x[rs2]: its host register; rax when
    /// rax still holds it (see [`Translator::put`]) and d is another; else
    /// rcx loaded with it (also when its register is d's and loading rs1
    /// would overwrite it). (Not the x86 instruction's memory operand:
    /// this host renames a load from the slot just stored, but only when
    /// both are plain moves.)
    fn two_operands(&mut self, i: &Inst) -> (u8, u8) {
        let d = self.dest(i.rd);
        let s = match self.reg(i.rs2) {
            Some(h) if h == d && i.rs1 != i.rs2 => {
                dynasm!(self.ops ; .arch x64 ; mov rcx, Rq(d));
                RCX
            }
            Some(h) => h,
            None if i.rs2 != 0 && self.rax_has(i.rs2) && d != RAX => RAX,
            None => {
                self.load_into(RCX, i.rs2);
                RCX
            }
        };
        self.load_into(d, i.rs1);
        (d, s)
    }

    /// The register a compare's 0 or 1 is built in, cleared here, before
    /// the compare: `d`, where the result goes, unless an operand is there,
    /// else rdx. setcc writes only the low byte: into a register not
    /// cleared first it would wait on the register's last value and need
    /// zero-extending after, a longer chain than the move (which the host
    /// eliminates at rename) from rdx.
    fn compare_result_register(&mut self, d: u8, operands: &[u8]) -> u8 {
        let r = if operands.contains(&d) { RDX } else { d };
        dynasm!(self.ops ; .arch x64 ; xor Rd(r), Rd(r));
        r
    }

    /// After the compare: rd = 1 if it found less than (signed, else
    /// unsigned), in `r` from [`Translator::compare_result_register`].
    fn set_compare_result(&mut self, i: &Inst, d: u8, r: u8, signed: bool) {
        if signed {
            dynasm!(self.ops ; .arch x64 ; setl Rb(r));
        } else {
            dynasm!(self.ops ; .arch x64 ; setb Rb(r));
        }
        if r != d {
            dynasm!(self.ops ; .arch x64 ; mov Rq(d), Rq(r));
        }
        self.put(i.rd, d);
    }

    /// Translates one instruction at `pc`, the block's `retired`th;
    /// returns true when it ends the block (the code has left).
    fn inst(&mut self, i: &Inst, pc: u64, retired: u32) -> bool {
        let imm = i.imm;
        let imm32 = imm as i32;
        let next = pc.wrapping_add(i.len as u64);
        match i.op {
            // Instructions that only write rd do nothing for x0.
            Op::Lui
            | Op::Auipc
            | Op::Addi
            | Op::Xori
            | Op::Ori
            | Op::Andi
            | Op::Slti
            | Op::Sltiu
            | Op::Addiw
            | Op::Slli
            | Op::Srli
            | Op::Srai
            | Op::Slliw
            | Op::Srliw
            | Op::Sraiw
            | Op::Add
            | Op::Sub
            | Op::Xor
            | Op::Or
            | Op::And
            | Op::Slt
            | Op::Sltu
            | Op::Mul
            | Op::Sll
            | Op::Srl
            | Op::Sra
            | Op::Addw
            | Op::Subw
            | Op::Sllw
            | Op::Srlw
            | Op::Sraw
            | Op::Mulw
                if i.rd == 0 => {}
            Op::Lui | Op::Auipc => {
                let value = match i.op {
                    Op::Lui => imm,
                    _ => pc.wrapping_add(imm as u64) as i64,
                };
                let d = self.dest(i.rd);
                dynasm!(self.ops ; .arch x64 ; mov Rq(d), QWORD value);
                self.put(i.rd, d);
            }
            Op::Fence => {}
            Op::Slti | Op::Sltiu => {
                let d = self.dest(i.rd);
                let a = self.source(i.rs1, RAX);
                let r = self.compare_result_register(d, &[a]);
                dynasm!(self.ops ; .arch x64 ; cmp Rq(a), imm32);
                self.set_compare_result(i, d, r, i.op == Op::Slti);
            }
            Op::Addi | Op::Xori | Op::Ori | Op::Andi | Op::Addiw => {
                let d = self.dest(i.rd);
                self.load_into(d, i.rs1);
                // Every I-type immediate is 12 bits, sign-extended; 0 adds,
                // ors and xors nothing (mv, sext.w).
                match i.op {
                    Op::Addi | Op::Xori | Op::Ori if imm == 0 => {}
                    Op::Addi => dynasm!(self.ops ; .arch x64 ; add Rq(d), imm32),
                    Op::Xori => dynasm!(self.ops ; .arch x64 ; xor Rq(d), imm32),
                    Op::Ori => dynasm!(self.ops ; .arch x64 ; or Rq(d), imm32),
                    Op::Andi => dynasm!(self.ops ; .arch x64 ; and Rq(d), imm32),
                    _ => {
                        if imm != 0 {
                            dynasm!(self.ops ; .arch x64 ; add Rd(d), imm32);
                        }
                        dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), Rd(d));
                    }
                }
                self.put(i.rd, d);
            }
            Op::Slli | Op::Srli | Op::Srai => {
                let d = self.dest(i.rd);
                self.load_into(d, i.rs1);
                let shamt = (imm & 63) as i8;
                match i.op {
                    Op::Slli => dynasm!(self.ops ; .arch x64 ; shl Rq(d), shamt),
                    Op::Srli => dynasm!(self.ops ; .arch x64 ; shr Rq(d), shamt),
                    _ => dynasm!(self.ops ; .arch x64 ; sar Rq(d), shamt),
                }
                self.put(i.rd, d);
            }
            Op::Slliw | Op::Srliw | Op::Sraiw => {
                let d = self.dest(i.rd);
                self.load_into(d, i.rs1);
                let shamt = (imm & 31) as i8;
                match i.op {
                    Op::Slliw => dynasm!(self.ops ; .arch x64 ; shl Rd(d), shamt),
                    Op::Srliw => dynasm!(self.ops ; .arch x64 ; shr Rd(d), shamt),
                    _ => dynasm!(self.ops ; .arch x64 ; sar Rd(d), shamt),
                }
                dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), Rd(d));
                self.put(i.rd, d);
            }
            // c.mv is add rd, x0, rs2: a copy.
            Op::Add | Op::Or | Op::Xor if i.rs1 == 0 => {
                let d = self.dest(i.rd);
                self.load_into(d, i.rs2);
                self.put(i.rd, d);
            }
            // The compare reads both operands where they are.
            Op::Slt | Op::Sltu => {
                let d = self.dest(i.rd);
                let a = self.source(i.rs1, RAX);
                let b = self.source(i.rs2, RCX);
                let r = self.compare_result_register(d, &[a, b]);
                dynasm!(self.ops ; .arch x64 ; cmp Rq(a), Rq(b));
                self.set_compare_result(i, d, r, i.op == Op::Slt);
            }
            Op::Add | Op::Sub | Op::Xor | Op::Or | Op::And | Op::Mul => {
                let (d, s) = self.two_operands(i);
                match i.op {
                    Op::Add => dynasm!(self.ops ; .arch x64 ; add Rq(d), Rq(s)),
                    Op::Sub => dynasm!(self.ops ; .arch x64 ; sub Rq(d), Rq(s)),
                    Op::Xor => dynasm!(self.ops ; .arch x64 ; xor Rq(d), Rq(s)),
                    Op::Or => dynasm!(self.ops ; .arch x64 ; or Rq(d), Rq(s)),
                    Op::And => dynasm!(self.ops ; .arch x64 ; and Rq(d), Rq(s)),
                    _ => dynasm!(self.ops ; .arch x64 ; imul Rq(d), Rq(s)),
                }
                self.put(i.rd, d);
            }
            // x86 masks a shift count in cl as RISC-V does: by 63 for 64-bit
            // operands, by 31 for 32-bit ones.
            Op::Sll | Op::Srl | Op::Sra => {
                let d = self.dest(i.rd);
                self.load_into(RCX, i.rs2);
                self.load_into(d, i.rs1);
                match i.op {
                    Op::Sll => dynasm!(self.ops ; .arch x64 ; shl Rq(d), cl),
                    Op::Srl => dynasm!(self.ops ; .arch x64 ; shr Rq(d), cl),
                    _ => dynasm!(self.ops ; .arch x64 ; sar Rq(d), cl),
                }
                self.put(i.rd, d);
            }
            Op::Sllw | Op::Srlw | Op::Sraw => {
                let d = self.dest(i.rd);
                self.load_into(RCX, i.rs2);
                self.load_into(d, i.rs1);
                match i.op {
                    Op::Sllw => dynasm!(self.ops ; .arch x64 ; shl Rd(d), cl),
                    Op::Srlw => dynasm!(self.ops ; .arch x64 ; shr Rd(d), cl),
                    _ => dynasm!(self.ops ; .arch x64 ; sar Rd(d), cl),
                }
                dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), Rd(d));
                self.put(i.rd, d);
            }
            Op::Addw | Op::Subw | Op::Mulw => {
                let (d, s) = self.two_operands(i);
                match i.op {
                    Op::Addw => dynasm!(self.ops ; .arch x64 ; add Rd(d), Rd(s)),
                    Op::Subw => dynasm!(self.ops ; .arch x64 ; sub Rd(d), Rd(s)),
                    _ => dynasm!(self.ops ; .arch x64 ; imul Rd(d), Rd(s)),
                }
                dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), Rd(d));
                self.put(i.rd, d);
            }
            Op::Mulh | Op::Mulhu | Op::Mulhsu => {
                self.load_rax(i.rs1);
                self.load_rcx(i.rs2);
                match i.op {
                    Op::Mulh => dynasm!(self.ops ; .arch x64 ; imul rcx),
                    Op::Mulhu => dynasm!(self.ops ; .arch x64 ; mul rcx),
                    // Signed by unsigned: the unsigned high half, less rs2
                    // when rs1 is negative.
                    _ => dynasm!(self.ops
                        ; .arch x64
                        ; mov rdx, rax
                        ; sar rdx, 63
                        ; and rdx, rcx
                        ; mov [rsp + 8], rdx
                        ; mul rcx
                        ; sub rdx, [rsp + 8]
                    ),
                }
                let d = self.dest(i.rd);
                dynasm!(self.ops ; .arch x64 ; mov Rq(d), rdx);
                self.put(i.rd, d);
            }
            Op::Div | Op::Rem | Op::Divu | Op::Remu => {
                self.load_rax(i.rs1);
                self.load_rcx(i.rs2);
                self.divide(i.op);
                self.store_rax(i.rd);
            }
            Op::Divw | Op::Remw | Op::Divuw | Op::Remuw => {
                self.load_rax(i.rs1);
                self.load_rcx(i.rs2);
                self.divide_word(i.op);
                self.sext_eax();
                self.store_rax(i.rd);
            }
            Op::Lb | Op::Lh | Op::Lw | Op::Ld | Op::Lbu | Op::Lhu | Op::Lwu => {
                self.load(i, pc, retired);
            }
            Op::Sb | Op::Sh | Op::Sw | Op::Sd => {
                self.store(i, pc, retired);
            }
            op if op.is_amo() => self.amo(i, pc, retired),
            Op::Lr => self.load_reserved(i, pc, retired),
            Op::Sc => self.store_conditional(i, pc, retired),
            Op::Flw | Op::Fld => self.fp_load(i, pc, retired),
            Op::Fsw | Op::Fsd => self.fp_store(i, pc, retired),
            op if helpers::fp_arith_handles(op) => self.fp_arith(i, pc, retired),
            // Written out (translate/fp.rs).
            _ if i.is_fp_csr() => self.fp_csr(i, pc, retired),
            _ if helpers::csr_handles(i) => {
                self.call_helper(helpers::csr, i, pc, retired);
                self.leave_unchained(next, retired + 1);
                return true;
            }
            // The block cache follows stores, so FENCE.I only ends the
            // block; the next one on its page may follow it at once.
            Op::FenceI => {
                self.leave(next, retired + 1);
                return true;
            }
            // Leaves unchained, as after a CSR instruction.
            Op::SfenceVma => {
                self.call_helper(helpers::sfence_vma, i, pc, retired);
                self.leave_unchained(next, retired + 1);
                return true;
            }
            Op::CboZero => self.cbo_zero(i, pc, retired),
            Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => {
                let a = self.source(i.rs1, RAX);
                if i.rs2 == 0 {
                    // The flags of a compare with zero: CF and OF clear.
                    dynasm!(self.ops ; .arch x64 ; test Rq(a), Rq(a));
                } else {
                    let b = self.source(i.rs2, RCX);
                    dynasm!(self.ops ; .arch x64 ; cmp Rq(a), Rq(b));
                }
                let target = pc.wrapping_add(imm as u64);
                if self.rounds_again(target, retired) {
                    // Taken, the loop goes round in place: so the code
                    // jumps out when it is not.
                    let out = self.exit_label(next, retired + 1);
                    self.branch_jump(i.op, false, out);
                    self.round_again();
                    return true;
                }
                let taken = self.exit_label(target, retired + 1);
                self.branch_jump(i.op, true, taken);
                self.leave(next, retired + 1);
                return true;
            }
            Op::Jal => {
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD next as i64);
                self.store_rax(i.rd);
                let target = pc.wrapping_add(imm as u64);
                if self.rounds_again(target, retired) {
                    self.round_again();
                } else {
                    self.leave(target, retired + 1);
                }
                return true;
            }
            Op::Jalr => {
                // The target first: rd may be rs1.
                self.load_rcx(i.rs1);
                dynasm!(self.ops
                    ; .arch x64
                    ; add rcx, imm32
                    ; and rcx, -2
                    ; mov rax, QWORD next as i64
                );
                self.store_rax(i.rd);
                self.write_back(self.dirty);
                self.dispatch(retired + 1);
                return true;
            }
            op if bitmanip::handles(op) => self.bitmanip(i),
            _ => unreachable!("translate() stops before {:?}", i.op),
        }
        false
    }

    /// rax = rs1 / rs2 or rs1 % rs2 (rax, rcx), 64-bit, as RISC-V defines
    /// them: x86 traps on a zero divisor and on the one overflow, which
    /// RISC-V gives results instead.
    fn divide(&mut self, op: Op) {
        match op {
            Op::Div | Op::Rem => {
                let rem = op == Op::Rem;
                dynasm!(self.ops
                    ; .arch x64
                    ; test rcx, rcx
                    ; jz >by_zero
                    ; cmp rcx, -1
                    ; jne >divide
                    // x / -1 = -x (wrapping: the minimum stays), x % -1 = 0.
                    ; neg rax
                    ; xor edx, edx
                    ; jmp >done
                    ; divide:
                    ; cqo
                    ; idiv rcx
                    ; jmp >done
                    ; by_zero:
                    ; mov rdx, rax
                    ; mov rax, -1
                    ; done:
                );
                if rem {
                    dynasm!(self.ops ; .arch x64 ; mov rax, rdx);
                }
            }
            _ => {
                let rem = op == Op::Remu;
                dynasm!(self.ops
                    ; .arch x64
                    ; test rcx, rcx
                    ; jz >by_zero
                    ; xor edx, edx
                    ; div rcx
                    ; jmp >done
                    ; by_zero:
                    ; mov rdx, rax
                    ; mov rax, -1
                    ; done:
                );
                if rem {
                    dynasm!(self.ops ; .arch x64 ; mov rax, rdx);
                }
            }
        }
    }

    /// eax = the 32-bit quotient or remainder of eax by ecx (see
    /// [`Translator::divide`]).
    fn divide_word(&mut self, op: Op) {
        let rem = matches!(op, Op::Remw | Op::Remuw);
        if matches!(op, Op::Divw | Op::Remw) {
            dynasm!(self.ops
                ; .arch x64
                ; test ecx, ecx
                ; jz >by_zero
                ; cmp ecx, -1
                ; jne >divide
                ; neg eax
                ; xor edx, edx
                ; jmp >done
                ; divide:
                ; cdq
                ; idiv ecx
                ; jmp >done
                ; by_zero:
                ; mov edx, eax
                ; mov eax, -1
                ; done:
            );
        } else {
            dynasm!(self.ops
                ; .arch x64
                ; test ecx, ecx
                ; jz >by_zero
                ; xor edx, edx
                ; div ecx
                ; jmp >done
                ; by_zero:
                ; mov edx, eax
                ; mov eax, -1
                ; done:
            );
        }
        if rem {
            dynasm!(self.ops ; .arch x64 ; mov eax, edx);
        }
    }

    /// rcx = the RAM offset of an access of `size` bytes at rax through the
    /// TLB table of reads or writes (`write`), or leave before this
    /// instruction: the fast path of `read_mem`/`write_mem`, exactly (an
    /// entry marked slow never matches, since its tag has [`SLOW`] set).
    fn translate_address(&mut self, write: bool, size: i32, pc: u64, retired: u32) {
        debug_assert_ne!(SLOW, 0);
        debug_assert!(!self.borrows_memory_registers);
        let exit = self.exit_label(pc, retired);
        let (miss, retry) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
        self.misses.push(Miss {
            label: miss,
            retry,
            exit,
            kind: size as u64 | if write { helpers::FILL_WRITE } else { 0 },
            dirty: self.dirty,
        });
        dynasm!(self.ops ; .arch x64 ; =>retry);
        let table = if write { WRITE_TABLE_OFFSET as i32 } else { 0 };
        // The slot of the first byte's page; and the page of the last
        // byte, which matches the slot's tag only if the access stays on
        // the first byte's page (the next page's number belongs to the
        // next slot), so one compare checks both.
        self.tlb_slot_offset(Rq::RAX);
        dynasm!(self.ops
            ; .arch x64
            ; lea rcx, [rax + size - 1]
            ; shr rcx, 12
            ; cmp rcx, QWORD [r13 + rdx + table]
            ; jne =>miss
            ; mov ecx, eax
            ; and ecx, PAGE_MASK
            ; add rcx, QWORD [r13 + rdx + table + 8]
        );
    }

    /// The out-of-line path of a TLB miss at the address in rax: the fill
    /// helper (registers saved as for any helper, and the address in the
    /// frame's third slot), then the lookup again, or the exit.
    fn fill_and_retry(&mut self, miss: Miss) {
        dynasm!(self.ops
            ; .arch x64
            ; =>miss.label
            ; mov [rsp + 16], rax
        );
        let kind = miss.kind as i32;
        self.call_out(
            helpers::fill_data_tlb as *const () as usize,
            miss.dirty,
            |t| {
                dynasm!(t.ops
                    ; .arch x64
                    ; mov rdx, rax
                    ; mov rdi, QWORD [rbp + offset_of!(JitContext, hart) as i32]
                    ; mov rsi, QWORD [rbp + offset_of!(JitContext, ram_state) as i32]
                    ; mov ecx, kind
                );
            },
        );
        dynasm!(self.ops
            ; .arch x64
            ; test eax, eax
            ; mov rax, [rsp + 16]
            ; jz =>miss.exit
            ; jmp =>miss.retry
        );
    }

    /// rdx = the byte offset in a TLB table of the slot of the address in
    /// `address` (the slot times the entry size, as `tlb_slot` picks it).
    fn tlb_slot_offset(&mut self, address: Rq) {
        dynasm!(self.ops
            ; .arch x64
            ; mov edx, Rd(address as u8)
            ; shr edx, (12 - ENTRY_SHIFT) as i8
            ; and edx, ((TLB_SIZE - 1) << ENTRY_SHIFT) as i32
        );
    }

    /// rcx = the RAM offset of the `size`-byte access of load or store `i`
    /// (rs1 + imm), or leave before it (see
    /// [`Translator::translate_address`]).
    fn access_address(&mut self, i: &Inst, write: bool, size: i32, pc: u64, retired: u32) {
        match self.reg(i.rs1) {
            Some(h) if i.rs1 != 0 => {
                dynasm!(self.ops ; .arch x64 ; lea rax, [Rq(h) + i.imm as i32])
            }
            _ => {
                self.load_rax(i.rs1);
                if i.imm != 0 {
                    dynasm!(self.ops ; .arch x64 ; add rax, i.imm as i32);
                }
            }
        }
        self.translate_address(write, size, pc, retired);
    }

    /// Runs `helper` on instruction `i` (at `pc`, the block's `retired`th),
    /// or leaves before it if the helper says it would trap.
    fn call_helper(&mut self, helper: helpers::Helper, i: &Inst, pc: u64, retired: u32) {
        let Some(kept) = self.keep.inst(i) else {
            self.kept = false;
            return;
        };
        let trap = self.exit_label(pc, retired);
        self.call_in_line(helper as usize, |t| {
            dynasm!(t.ops
                ; .arch x64
                ; mov rdi, QWORD [rbp + offset_of!(JitContext, hart) as i32]
                ; mov rsi, QWORD kept as i64
            );
        });
        dynasm!(self.ops
            ; .arch x64
            ; test eax, eax
            ; jz =>trap
        );
    }

    /// Calls the function at `target` (sysv64), keeping what translated
    /// code holds in caller-saved registers: r9 in the frame, the
    /// pinned guest registers in the hart (where a helper sees them), all
    /// reloaded after. `arguments` sets the argument registers (after the
    /// spill, so it may use them; rax still holds what it held).
    fn call_out(&mut self, target: usize, dirty: RegMask, arguments: impl FnOnce(&mut Self)) {
        dynasm!(self.ops
            ; .arch x64
            ; mov [rsp], r9
        );
        self.spill_pinned();
        self.write_back(dirty);
        arguments(self);
        dynasm!(self.ops
            ; .arch x64
            ; mov rax, QWORD target as i64
            ; call rax
            ; mov r9, [rsp]
        );
        self.reload_pinned();
        self.load_locals(RegMask::MAX);
    }

    /// [`Translator::call_out`] in line. The block-local registers agree
    /// with the hart's array after it, but the mask stays: a call may be
    /// on one path of several (FP's slow path), and writing back a
    /// register that agrees costs only the store.
    fn call_in_line(&mut self, target: usize, arguments: impl FnOnce(&mut Self)) {
        self.call_out(target, self.dirty, arguments);
    }

    /// Stamps the page of the RAM offset in rcx as written in this epoch,
    /// as `Ram::store_fast` does (clobbers rcx and rax).
    fn stamp_write(&mut self) {
        dynasm!(self.ops
            ; .arch x64
            ; shr rcx, 12
            ; mov eax, DWORD [rbp + offset_of!(JitContext, epoch) as i32]
            ; mov rdx, QWORD [rbp + offset_of!(JitContext, written) as i32]
            ; mov DWORD [rdx + rcx * 4], eax
        );
    }

    fn load(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = match i.op {
            Op::Lb | Op::Lbu => 1,
            Op::Lh | Op::Lhu => 2,
            Op::Lw | Op::Lwu => 4,
            _ => 8,
        };
        self.access_address(i, false, size, pc, retired);
        // A load into x0 still makes its access (and its TLB fill).
        let d = self.dest(i.rd);
        match i.op {
            Op::Lb => dynasm!(self.ops ; .arch x64 ; movsx Rq(d), BYTE [r12 + rcx]),
            Op::Lbu => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), BYTE [r12 + rcx]),
            Op::Lh => dynasm!(self.ops ; .arch x64 ; movsx Rq(d), WORD [r12 + rcx]),
            Op::Lhu => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), WORD [r12 + rcx]),
            Op::Lw => dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), DWORD [r12 + rcx]),
            Op::Lwu => dynasm!(self.ops ; .arch x64 ; mov Rd(d), DWORD [r12 + rcx]),
            _ => dynasm!(self.ops ; .arch x64 ; mov Rq(d), QWORD [r12 + rcx]),
        }
        self.put(i.rd, d);
    }

    fn store(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = match i.op {
            Op::Sb => 1,
            Op::Sh => 2,
            Op::Sw => 4,
            _ => 8,
        };
        self.access_address(i, true, size, pc, retired);
        // The value (rax is free now), then the page's write stamp, as
        // `Ram::store_fast` does.
        self.load_rax(i.rs2);
        match i.op {
            Op::Sb => dynasm!(self.ops ; .arch x64 ; mov BYTE [r12 + rcx], al),
            Op::Sh => dynasm!(self.ops ; .arch x64 ; mov WORD [r12 + rcx], ax),
            Op::Sw => dynasm!(self.ops ; .arch x64 ; mov DWORD [r12 + rcx], eax),
            _ => dynasm!(self.ops ; .arch x64 ; mov QWORD [r12 + rcx], rax),
        }
        self.stamp_write();
    }

    /// rax = x[rs1], the address of atomic `i`, or leave before it if the
    /// address is misaligned (the interpreter traps); returns the access
    /// size.
    fn atomic_address(&mut self, i: &Inst, pc: u64, retired: u32) -> i32 {
        let size = if i.fmt == Fmt::S { 4 } else { 8 };
        let misaligned = self.exit_label(pc, retired);
        self.load_rax(i.rs1);
        dynasm!(self.ops
            ; .arch x64
            ; test al, size as i8 - 1
            ; jnz =>misaligned
        );
        size
    }

    /// LR, as `exec_lr_sc` does it on a fast TLB hit: the load, then the
    /// reservation of its (virtual) address.
    fn load_reserved(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = self.atomic_address(i, pc, retired);
        // rax, the address, survives the lookup.
        self.translate_address(false, size, pc, retired);
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, QWORD [rbp + offset_of!(JitContext, hart) as i32]
            ; mov QWORD [rdx + RESERVED], rax
        );
        if size == 4 {
            dynasm!(self.ops ; .arch x64 ; movsxd rax, DWORD [r12 + rcx]);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [r12 + rcx]);
        }
        self.store_rax(i.rd);
    }

    /// SC, as `exec_lr_sc` does it: without the reservation of its address
    /// it fails with no access; with it, the store goes through the write
    /// table's fast entry (else the code leaves before the SC, reservation
    /// intact, for the interpreter to do it all). Either way the
    /// reservation is gone after.
    fn store_conditional(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = self.atomic_address(i, pc, retired);
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, QWORD [rbp + offset_of!(JitContext, hart) as i32]
            ; cmp rax, QWORD [rdx + RESERVED]
            ; jne >failed
        );
        self.translate_address(true, size, pc, retired);
        self.load_rax(i.rs2);
        if size == 4 {
            dynasm!(self.ops ; .arch x64 ; mov DWORD [r12 + rcx], eax);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov QWORD [r12 + rcx], rax);
        }
        self.stamp_write();
        dynasm!(self.ops
            ; .arch x64
            ; xor eax, eax
            ; jmp >done
            ; failed:
            ; mov eax, 1
            ; done:
            ; mov rdx, QWORD [rbp + offset_of!(JitContext, hart) as i32]
            ; mov QWORD [rdx + RESERVED], -1
        );
        self.store_rax(i.rd);
    }

    /// An AMO, as `exec_amo` does it when the TLB's write table has a fast
    /// entry for the address: both halves go through that entry (AMOs
    /// fault as stores), the page is stamped as written, rd gets the old
    /// value (sign-extended from a word). Misaligned, or anything but a fast
    /// hit, leaves before it for the interpreter to trap or take the slow
    /// path. All harts run on one host thread (DESIGN.md), so the read and
    /// the write need no host atomicity.
    fn amo(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = self.atomic_address(i, pc, retired);
        let word = size == 4;
        self.translate_address(true, size, pc, retired);
        // rdx = the old value, rax = rs2 and then the new one.
        if word {
            dynasm!(self.ops ; .arch x64 ; movsxd rdx, DWORD [r12 + rcx]);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov rdx, QWORD [r12 + rcx]);
        }
        self.load_rax(i.rs2);
        match (i.op, word) {
            (Op::AmoSwap, _) => {}
            (Op::AmoAdd, _) => dynasm!(self.ops ; .arch x64 ; add rax, rdx),
            (Op::AmoXor, _) => dynasm!(self.ops ; .arch x64 ; xor rax, rdx),
            (Op::AmoAnd, _) => dynasm!(self.ops ; .arch x64 ; and rax, rdx),
            (Op::AmoOr, _) => dynasm!(self.ops ; .arch x64 ; or rax, rdx),
            (Op::AmoMin, true) => dynasm!(self.ops ; .arch x64 ; cmp eax, edx ; cmovg eax, edx),
            (Op::AmoMax, true) => dynasm!(self.ops ; .arch x64 ; cmp eax, edx ; cmovl eax, edx),
            (Op::AmoMinu, true) => dynasm!(self.ops ; .arch x64 ; cmp eax, edx ; cmova eax, edx),
            (Op::AmoMaxu, true) => dynasm!(self.ops ; .arch x64 ; cmp eax, edx ; cmovb eax, edx),
            (Op::AmoMin, false) => dynasm!(self.ops ; .arch x64 ; cmp rax, rdx ; cmovg rax, rdx),
            (Op::AmoMax, false) => dynasm!(self.ops ; .arch x64 ; cmp rax, rdx ; cmovl rax, rdx),
            (Op::AmoMinu, false) => dynasm!(self.ops ; .arch x64 ; cmp rax, rdx ; cmova rax, rdx),
            _ => dynasm!(self.ops ; .arch x64 ; cmp rax, rdx ; cmovb rax, rdx),
        }
        if word {
            dynasm!(self.ops ; .arch x64 ; mov DWORD [r12 + rcx], eax);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov QWORD [r12 + rcx], rax);
        }
        dynasm!(self.ops ; .arch x64 ; mov rax, rdx);
        self.store_rax(i.rd);
        self.stamp_write();
    }
}

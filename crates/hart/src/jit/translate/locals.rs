//! Block-local registers: guest registers a block holds in host registers
//! from its chained entry to its exits, on top of the [`super::PINNED`]
//! ones every block shares.
//!
//! The pinned registers cost nothing between chained blocks, but there are
//! few of them and a loop's working set is rarely just those. So each
//! block also picks the guest registers it names most among the others,
//! one per host register of [`LOCAL_POOL`], loads them where it is entered
//! (after the budget check) and writes back the ones it changed wherever
//! it leaves: at an exit, before a helper call (which then reloads them),
//! and before going on to another block. A block is straight-line code, so
//! which ones it changed by any point is known when it is translated (the
//! translator tracks it as a mask). A block that loops back to its own
//! start jumps past the loads, so a tight loop runs wholly in host
//! registers.
//!
//! A block that never reaches memory has no use for r12 and r13 (RAM's
//! bytes and the data TLB), so it borrows them as two more locals and
//! loads them again wherever it goes on to another block: an integer loop
//! then keeps twice as many of its registers out of the hart's array.

use crate::decode::{Inst, Op};

/// Host registers (numbers) blocks may hold their own guest registers in:
/// rbx, free since the x registers are reached from the context, and rsi,
/// which no scratch use needs.
pub(super) const LOCAL_POOL: [u8; 2] = [3, 6];

/// The pool of a block that does not reach memory: [`LOCAL_POOL`], then
/// r12 and r13.
pub(super) const MEMORY_FREE_POOL: [u8; 4] = [LOCAL_POOL[0], LOCAL_POOL[1], 12, 13];

/// The integer registers `i` reads and writes through host registers in
/// translated code (x0, and registers only a helper touches, are left out:
/// a local buys them nothing). Immediate forms may name a register they do
/// not read; that only costs a load.
fn named(i: &Inst) -> ([u8; 2], u8) {
    use Op::*;
    match i.op {
        Lui | Auipc | Jal => ([0, 0], i.rd),
        Flw | Fld | Fsw | Fsd => ([i.rs1, 0], 0),
        op if super::helpers::fp_arith_handles(op) => ([0, 0], 0),
        // Written out (translate/fp.rs): the register forms read rs1.
        Csrrwi | Csrrsi | Csrrci if i.is_fp_csr() => ([0, 0], i.rd),
        _ if i.is_fp_csr() => ([i.rs1, 0], i.rd),
        _ if super::helpers::csr_handles(i) => ([0, 0], 0),
        Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw | Srliw
        | Sraiw | Jalr | Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu => ([i.rs1, 0], i.rd),
        Beq | Bne | Blt | Bge | Bltu | Bgeu | Sb | Sh | Sw | Sd => ([i.rs1, i.rs2], 0),
        _ => ([i.rs1, i.rs2], i.rd),
    }
}

/// A block's local registers.
pub(super) struct Locals {
    /// (guest, host) pairs.
    pub(super) held: Vec<(u8, u8)>,
    /// The guest registers of `held` the block may read before it writes
    /// them, which its entry loads (the others it writes first, so their
    /// registers need nothing until then; no exit before that writes them
    /// back, as they are not changed yet).
    pub(super) read_first: u32,
}

/// The block-local registers for the block `insts`, which loops back to
/// its own start when `self_loop`, one per host register of `pool`: the
/// guest registers not in `pinned` it names most, at least twice (a
/// register named once costs as much held as not), or once in a loop
/// (where the load is paid once). Ties go to the lower register number, so
/// the choice depends on nothing but the instructions. A loop loads them all at its entry: a later round may
/// read what an earlier one wrote.
pub(super) fn choose(
    insts: &[Inst],
    self_loop: bool,
    pinned: impl Fn(u8) -> bool,
    pool: &[u8],
) -> Locals {
    let mut uses = [0u32; 32];
    let mut written = 0u32;
    let mut read_first = 0u32;
    for i in insts {
        let (reads, write) = named(i);
        for r in reads {
            uses[r as usize] += 1;
            if written & 1 << r == 0 {
                read_first |= 1 << r;
            }
        }
        uses[write as usize] += 1;
        written |= 1 << write;
    }
    let least = if self_loop { 1 } else { 2 };
    let mut ranked: Vec<u8> = (1..32u8)
        .filter(|&r| uses[r as usize] >= least && !pinned(r))
        .collect();
    ranked.sort_by_key(|&r| std::cmp::Reverse(uses[r as usize]));
    let held: Vec<(u8, u8)> = ranked.into_iter().zip(pool.iter().copied()).collect();
    let all = held.iter().fold(0, |mask, &(g, _)| mask | 1 << g);
    Locals {
        read_first: if self_loop { all } else { all & read_first },
        held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    fn block(words: &[u32]) -> Vec<Inst> {
        words.iter().map(|&w| decode(w)).collect()
    }

    #[test]
    fn picks_the_most_named_register_not_pinned() {
        // add s1,s1,s2 ; add s1,s1,s3 ; add s2,s2,s1
        let insts = block(&[0x012484b3, 0x013484b3, 0x00990933]);
        assert_eq!(
            choose(&insts, false, |_| false, &LOCAL_POOL).held[0],
            (9, LOCAL_POOL[0])
        );
        // With s1 pinned, s2 (named three times) is next.
        assert_eq!(
            choose(&insts, false, |r| r == 9, &LOCAL_POOL).held[0],
            (18, LOCAL_POOL[0])
        );
    }

    #[test]
    fn a_register_named_once_is_local_only_in_a_loop() {
        // addi s1,s2,1
        let insts = block(&[0x00190493]);
        assert!(choose(&insts, false, |_| false, &LOCAL_POOL)
            .held
            .is_empty());
        assert_eq!(
            choose(&insts, true, |_| false, &LOCAL_POOL).held.len(),
            LOCAL_POOL.len().min(2)
        );
    }

    #[test]
    fn a_register_written_first_is_not_loaded_unless_the_block_loops() {
        // li s1,1 ; addi s1,s1,1 ; addi s2,s2,1 ; addi s2,s2,1
        let insts = block(&[0x00100493, 0x00148493, 0x00190913, 0x00190913]);
        let straight = choose(&insts, false, |_| false, &LOCAL_POOL);
        assert_eq!(straight.held.len(), 2);
        assert_eq!(straight.read_first, 1 << 18);
        assert_eq!(
            choose(&insts, true, |_| false, &LOCAL_POOL).read_first,
            1 << 9 | 1 << 18
        );
    }
}

//! Physical memory protection, decoded: the byte range and permissions of
//! each active entry, kept beside the CSRs they come from.
//!
//! A page walk checks PMP for every PTE it reads, and a TLB fill for the
//! page it maps; decoding sixteen entries each time (a NAPOT range needs
//! its trailing ones counted) was 7% of a Linux boot. The decoded table is
//! rebuilt whenever pmpcfg or pmpaddr differ from the copy it was built
//! from, compared at every check: those CSRs are public fields, written by
//! instructions, restores, the board and tests alike, so nothing has to
//! remember to invalidate it. It is derived state: not saved, not hashed.

use crate::csr::{Csrs, PMP_ENTRIES};
use crate::hart::prv;
use crate::tlb::Access;

/// PMP entries decoded from a copy of the CSRs.
#[derive(Clone)]
pub(crate) struct Pmp {
    cfg: [u8; PMP_ENTRIES],
    addr: [u64; PMP_ENTRIES],
    /// The active entries in priority order: [lo, hi) and the cfg byte.
    active: [(u64, u64, u8); PMP_ENTRIES],
    len: usize,
}

impl Pmp {
    /// The table of CSRs with every entry off (as at reset).
    pub(crate) fn new() -> Self {
        Pmp {
            cfg: [0; PMP_ENTRIES],
            addr: [0; PMP_ENTRIES],
            active: [(0, 0, 0); PMP_ENTRIES],
            len: 0,
        }
    }

    /// Whether PMP, as `csr` sets it, lets privilege `p` make `access` to
    /// the bytes [paddr, paddr + len).
    #[inline]
    pub(crate) fn allows(
        &mut self,
        csr: &Csrs,
        paddr: u64,
        len: u64,
        access: Access,
        p: u8,
    ) -> bool {
        self.refresh(csr);
        self.check(paddr, len, access, p)
    }

    /// Decodes the CSRs again if they changed since the last decode.
    #[inline]
    pub(crate) fn refresh(&mut self, csr: &Csrs) {
        // Written out rather than `!=`, which calls memcmp: this folds to
        // a few vector compares.
        let addr = (self.addr.iter().zip(&csr.pmpaddr)).fold(0, |acc, (a, b)| acc | (a ^ b));
        if addr != 0 || u128::from_ne_bytes(self.cfg) != u128::from_ne_bytes(csr.pmpcfg) {
            self.decode(csr);
        }
    }

    /// [`Pmp::allows`] as of the last [`Pmp::refresh`] (for a caller that
    /// checks several ranges while the CSRs cannot change).
    pub(crate) fn check(&self, paddr: u64, len: u64, access: Access, p: u8) -> bool {
        let end = paddr.saturating_add(len);
        for &(lo, hi, cfg) in &self.active[..self.len] {
            if paddr >= hi || end <= lo {
                continue;
            }
            if paddr < lo || end > hi {
                // Matches some bytes but not all: the access fails.
                return false;
            }
            let locked = cfg & 0x80 != 0;
            if p == prv::M && !locked {
                return true;
            }
            return cfg & access.pmp_bit() != 0;
        }
        // No entry matched. With entries implemented, S and U fail even when
        // none is active, as the specification says and QEMU does.
        p == prv::M
    }

    #[cold]
    fn decode(&mut self, csr: &Csrs) {
        self.cfg = csr.pmpcfg;
        self.addr = csr.pmpaddr;
        self.len = 0;
        for (i, &cfg) in self.cfg.iter().enumerate() {
            if let Some((lo, hi)) = range(&self.cfg, &self.addr, i) {
                self.active[self.len] = (lo, hi, cfg);
                self.len += 1;
            }
        }
    }
}

/// The byte range [lo, hi) that entry `i` covers, or None when it is off.
fn range(cfg: &[u8; PMP_ENTRIES], addr: &[u64; PMP_ENTRIES], i: usize) -> Option<(u64, u64)> {
    let a = addr[i];
    Some(match (cfg[i] >> 3) & 3 {
        0 => return None,
        // TOR: from the previous entry's address, whatever its mode.
        1 => {
            let lo = if i == 0 { 0 } else { addr[i - 1] << 2 };
            (lo, a << 2)
        }
        2 => (a << 2, (a << 2) + 4),
        _ => {
            let ones = a.trailing_ones();
            let size_log2 = ones + 3;
            if size_log2 >= 56 {
                (0, 1 << 56)
            } else {
                let base = (a & !((1u64 << ones) - 1)) << 2;
                let base = base & !((1u64 << size_log2) - 1);
                (base, base + (1 << size_log2))
            }
        }
    })
}

const _: () = assert!(PMP_ENTRIES == 16, "refresh compares pmpcfg as one u128");

#[cfg(test)]
mod tests {
    use super::*;

    const NAPOT_RWX: u8 = 0x18 | 0x7;

    #[test]
    fn the_decoded_table_follows_every_change_to_the_csrs() {
        let mut csr = Csrs::new(0);
        let mut pmp = Pmp::new();
        assert!(!pmp.allows(&csr, 0x8000_0000, 8, Access::Read, prv::S));
        // All of memory, R W X.
        csr.pmpaddr[0] = u64::MAX >> 10;
        csr.pmpcfg[0] = NAPOT_RWX;
        assert!(pmp.allows(&csr, 0x8000_0000, 8, Access::Read, prv::S));
        // The address alone changes: 4 KiB at 0x8000_0000.
        csr.pmpaddr[0] = (0x8000_0000 >> 2) | 0x1ff;
        assert!(pmp.allows(&csr, 0x8000_0ff8, 8, Access::Write, prv::S));
        assert!(!pmp.allows(&csr, 0x8000_1000, 8, Access::Write, prv::S));
        // A later entry's address alone changes what a TOR entry covers.
        csr.pmpcfg[0] = 0;
        csr.pmpcfg[1] = 0x08 | 0x1;
        csr.pmpaddr[0] = 0x9000_0000 >> 2;
        csr.pmpaddr[1] = 0xa000_0000 >> 2;
        assert!(pmp.allows(&csr, 0x9000_0000, 8, Access::Read, prv::U));
        csr.pmpaddr[0] = 0x9800_0000 >> 2;
        assert!(!pmp.allows(&csr, 0x9000_0000, 8, Access::Read, prv::U));
        // The permission bits alone change.
        csr.pmpcfg[1] = 0x08 | 0x2;
        assert!(!pmp.allows(&csr, 0x9800_0000, 8, Access::Read, prv::U));
        assert!(pmp.allows(&csr, 0x9800_0000, 8, Access::Write, prv::U));
    }
}

//! BLAKE3 digests of RAM pages, for the state hash and a recording's
//! checkpoints, hashed on more than one host thread when there are many.
//!
//! A recording hashes every page the guest wrote at each checkpoint and at
//! its end, which was about 4% of a recorded Linux run; the harts of a
//! recorded run leave the host's other cores idle meanwhile. The digests
//! come back in the order of the pages asked for, whatever the threads'
//! timing, so nothing about the host reaches the result.

use rewind_hart::memory::Ram;

/// A page's digest.
pub type Digest = [u8; 32];

/// Pages below this many are hashed on the calling thread: starting
/// threads costs more than it saves.
const PARALLEL_FROM: usize = 512;
/// Host threads used at most.
const MAX_THREADS: usize = 4;

/// The BLAKE3 digest of a page of zeros (every page of RAM at power-on).
pub fn zero_page() -> Digest {
    *blake3::hash(&[0u8; rewind_hart::PAGE_SIZE as usize]).as_bytes()
}

/// The BLAKE3 digests of RAM pages `pages` (indices), in that order.
pub fn digests(ram: &Ram, pages: &[usize]) -> Vec<Digest> {
    let contents: Vec<&[u8]> = pages.iter().map(|&p| ram.page(p)).collect();
    let hash = |chunk: &[&[u8]]| -> Vec<Digest> {
        chunk.iter().map(|c| *blake3::hash(c).as_bytes()).collect()
    };
    // The host's core count decides only how the work is split; the
    // digests are the same and come back in the same order.
    #[allow(clippy::disallowed_methods)]
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if contents.len() < PARALLEL_FROM || threads < 2 {
        return hash(&contents);
    }
    let per_thread = contents.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = contents
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || hash(chunk)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("hashing a page does not panic"))
            .collect()
    })
}

/// Every page's digest, in page order: fresh ones for `fresh` (ascending
/// page indices, hashed now), `kept(page)` for the others.
pub fn with_fresh<'a>(
    ram: &Ram,
    fresh: &'a [usize],
    kept: impl Fn(usize) -> Digest + 'a,
) -> impl ExactSizeIterator<Item = Digest> + 'a {
    let mut fresh = fresh.iter().copied().zip(digests(ram, fresh)).peekable();
    (0..ram.pages()).map(move |page| {
        fresh
            .next_if(|&(p, _)| p == page)
            .map_or_else(|| kept(page), |(_, digest)| digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_come_in_the_order_asked_whatever_the_threads() {
        const BASE: u64 = 0x8000_0000;
        let mut ram = Ram::new(BASE, 4 << 20);
        let pages: Vec<usize> = (0..ram.pages()).rev().collect();
        for &p in &pages {
            let at = BASE + p as u64 * rewind_hart::PAGE_SIZE;
            ram.write_bytes(at, &(p as u64).to_le_bytes())
                .expect("in RAM");
        }
        assert!(pages.len() >= PARALLEL_FROM, "the test must use threads");
        let got = digests(&ram, &pages);
        for (k, &p) in pages.iter().enumerate() {
            assert_eq!(got[k], *blake3::hash(ram.page(p)).as_bytes(), "page {p}");
        }
        assert_eq!(digests(&ram, &pages[..3]), got[..3]);
    }

    #[test]
    fn fresh_digests_replace_the_kept_ones_of_their_pages_only() {
        const BASE: u64 = 0x8000_0000;
        let mut ram = Ram::new(BASE, 64 << 12);
        ram.write_bytes(BASE + 5 * rewind_hart::PAGE_SIZE, &[1])
            .expect("in RAM");
        let kept = [7u8; 32];
        let all: Vec<Digest> = with_fresh(&ram, &[2, 5], |_| kept).collect();
        assert_eq!(all.len(), 64);
        assert_eq!(all[2], zero_page());
        assert_eq!(all[5], *blake3::hash(ram.page(5)).as_bytes());
        assert!(all
            .iter()
            .enumerate()
            .all(|(p, d)| p == 2 || p == 5 || *d == kept));
    }
}

//! State checkpoints of a recording: taken every N steps (positions) while
//! recording, taken again at the same positions while replaying, and
//! compared, so that a replay that goes astray stops at the first checkpoint
//! where it differs and names what differs.
//!
//! RAM is covered by a hash per page, kept up to date from RAM's write
//! history (only pages stored to since the last checkpoint are hashed again),
//! so a checkpoint costs time in proportion to what the guest wrote, not to
//! the size of RAM.

use rewind_hart::{ArchState, WriteMark};
use rewind_machine::page_digest::{self, Digest};
use rewind_machine::Machine;
use rewind_replay::Checkpoint;

/// Steps (positions) between checkpoints unless told.
pub const DEFAULT_EVERY: u64 = 500_000_000;

/// A 64-bit digest: the first eight bytes of BLAKE3.
fn hash64(bytes: &[u8]) -> u64 {
    first64(blake3::hash(bytes).as_bytes())
}

/// The 64-bit digest within a BLAKE3 digest.
fn first64(digest: &Digest) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("8 of 32 bytes"))
}

/// The 32 bits of a page hash a recording keeps.
fn short(hash: u64) -> u32 {
    hash as u32
}

/// Takes checkpoints of one machine.
pub struct Checkpointer {
    every: u64,
    next_at: u64,
    /// Every page's BLAKE3 digest at the last checkpoint: the checkpoint
    /// keeps part of it, and the state hash at the end of a recording all
    /// of it (see [`Checkpointer::state_hash`]).
    page_digests: Vec<Digest>,
    mark: WriteMark,
}

/// A checkpoint with what replay needs to compare RAM page by page: the
/// hash each page it lists had at the previous checkpoint.
pub struct Taken {
    pub checkpoint: Checkpoint,
    previous: Vec<u32>,
}

impl Checkpointer {
    /// Starts checkpointing `machine`: every page that may be nonzero is
    /// hashed once; the others (most of RAM at power-on) are known to be
    /// zero without being read.
    pub fn new(machine: &mut Machine, every: u64) -> Self {
        let maybe_nonzero = machine.pages_maybe_nonzero();
        let ram = &mut machine.board.ram;
        let zero = page_digest::zero_page();
        let page_digests = page_digest::with_fresh(ram, &maybe_nonzero, move |_| zero).collect();
        let mark = ram.mark();
        let every = every.max(1);
        Checkpointer {
            every,
            next_at: machine.position().saturating_add(every),
            page_digests,
            mark,
        }
    }

    /// True when the machine has run far enough for the next checkpoint.
    pub fn due(&self, machine: &Machine) -> bool {
        machine.position() >= self.next_at
    }

    /// The machine's checkpoint now.
    pub fn take(&mut self, machine: &mut Machine) -> Taken {
        let icount = machine.position();
        self.next_at = (icount / self.every + 1).saturating_mul(self.every);
        let ram = &mut machine.board.ram;
        let written = ram.written_since(self.mark);
        self.mark = ram.mark();
        let mut page_steps = Vec::with_capacity(written.len());
        let mut page_hashes = Vec::with_capacity(written.len());
        let mut previous = Vec::with_capacity(written.len());
        let mut last = 0;
        for (&p, digest) in written.iter().zip(page_digest::digests(ram, &written)) {
            previous.push(short(first64(&self.page_digests[p])));
            self.page_digests[p] = digest;
            page_steps.push((p - last) as u32);
            page_hashes.push(short(first64(&digest)));
            last = p;
        }
        let all: Vec<u8> = self
            .page_digests
            .iter()
            .flat_map(|d| first64(d).to_le_bytes())
            .collect();
        let checkpoint = Checkpoint {
            guest_ns: machine.guest_time_ns(),
            harts: machine.harts.iter().map(|h| h.arch_state()).collect(),
            parts: machine
                .state_parts()
                .into_iter()
                .map(|(name, bytes)| (name, hash64(&bytes)))
                .collect(),
            page_steps,
            page_hashes,
            ram: hash64(&all),
        };
        Taken {
            checkpoint,
            previous,
        }
    }

    /// The (recorded part of the) hash page `index` had at the last
    /// checkpoint.
    fn page_hash(&self, index: usize) -> Option<u32> {
        self.page_digests.get(index).map(|d| short(first64(d)))
    }

    /// The machine's state hash now ([`Machine::state_hash`]), hashing
    /// again only the pages written since the last checkpoint: the others'
    /// digests are the checkpoint's. Takes no checkpoint.
    pub fn state_hash(&self, machine: &Machine) -> [u8; 32] {
        let ram = &machine.board.ram;
        let written = ram.written_since(self.mark);
        let kept = &self.page_digests;
        machine.state_hash_from_pages(page_digest::with_fresh(ram, &written, |page| kept[page]))
    }
}

/// Compares a recorded checkpoint with the replay's at the same position;
/// returns what differs first, as a phrase ("hart 1 register a0 is 0x5 in
/// the recording and 0x7 in the replay"), or None when they agree.
pub fn compare(recorded: &Checkpoint, replayed: &Taken, replay: &Checkpointer) -> Option<String> {
    let now = &replayed.checkpoint;
    if recorded.harts.len() != now.harts.len() {
        return Some(format!(
            "the recording has {} harts and the replay {}",
            recorded.harts.len(),
            now.harts.len()
        ));
    }
    for (id, (r, p)) in recorded.harts.iter().zip(&now.harts).enumerate() {
        if let Some(what) = compare_hart(r, p) {
            return Some(format!("hart {id} {what}"));
        }
    }
    for (r, p) in recorded.parts.iter().zip(&now.parts) {
        if r.0 != p.0 {
            return Some(format!(
                "the recording has device '{}' where the replay has '{}'",
                r.0, p.0
            ));
        }
        if r.1 != p.1 {
            return Some(format!("the state of the {} differs", r.0));
        }
    }
    if recorded.parts.len() != now.parts.len() {
        return Some("the machines have different devices".to_string());
    }
    if recorded.guest_ns != now.guest_ns {
        return Some(format!(
            "guest time is {} ns in the recording and {} ns in the replay",
            recorded.guest_ns, now.guest_ns
        ));
    }
    if recorded.ram != now.ram {
        return Some(match first_different_page(recorded, replayed, replay) {
            Some(page) => format!(
                "RAM page {:#x} differs",
                rewind_machine::board::RAM_BASE + page as u64 * rewind_hart::memory::PAGE_SIZE
            ),
            None => "RAM differs".to_string(),
        });
    }
    None
}

/// The lowest page whose content differs. Both machines agreed at the
/// previous checkpoint, so only pages either wrote since can differ: a page
/// only the recording lists had, in the replay, the hash it has now; a page
/// only the replay lists had, in the recording, its previous hash.
fn first_different_page(
    recorded: &Checkpoint,
    replayed: &Taken,
    replay: &Checkpointer,
) -> Option<u32> {
    use std::collections::BTreeMap;
    let mut recorded_hash: BTreeMap<u32, u32> = recorded.pages()?.into_iter().collect();
    let mut replayed_hash = BTreeMap::new();
    let pages = replayed.checkpoint.pages()?;
    for (&(page, hash), &before) in pages.iter().zip(&replayed.previous) {
        replayed_hash.insert(page, hash);
        recorded_hash.entry(page).or_insert(before);
    }
    recorded_hash.into_iter().find_map(|(page, hash)| {
        let now = match replayed_hash.get(&page) {
            Some(&h) => Some(h),
            None => replay.page_hash(page as usize),
        };
        (now != Some(hash)).then_some(page)
    })
}

/// ABI names of the integer registers.
const X_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// What differs between two harts' states, as a phrase.
fn compare_hart(recorded: &ArchState, replayed: &ArchState) -> Option<String> {
    let both = |what: String, r: String, p: String| {
        Some(format!(
            "{what} is {r} in the recording and {p} in the replay"
        ))
    };
    if recorded.pc != replayed.pc {
        return both(
            "pc".into(),
            format!("{:#x}", recorded.pc),
            format!("{:#x}", replayed.pc),
        );
    }
    for (i, (r, p)) in recorded.x.iter().zip(&replayed.x).enumerate() {
        if r != p {
            return both(
                format!("register {} (x{i})", X_NAMES[i]),
                format!("{r:#x}"),
                format!("{p:#x}"),
            );
        }
    }
    for (i, (r, p)) in recorded.f.iter().zip(&replayed.f).enumerate() {
        if r != p {
            return both(
                format!("register f{i}"),
                format!("{r:#x}"),
                format!("{p:#x}"),
            );
        }
    }
    if recorded.csr != replayed.csr {
        // Name the CSR by its field in the state struct; serde gives the
        // names without a hand-kept list that could fall out of date.
        let r = serde_json::to_value(&recorded.csr).ok()?;
        let p = serde_json::to_value(&replayed.csr).ok()?;
        if let (Some(r), Some(p)) = (r.as_object(), p.as_object()) {
            for (name, value) in r {
                if p.get(name) != Some(value) {
                    let other = p.get(name).map(|v| v.to_string()).unwrap_or_default();
                    return both(format!("CSR state {name}"), value.to_string(), other);
                }
            }
        }
        return Some("CSR state differs".to_string());
    }
    let fields = [
        ("privilege mode", recorded.prv as u64, replayed.prv as u64),
        ("instret", recorded.instret, replayed.instret),
        ("stall count", recorded.stalled, replayed.stalled),
        (
            "WFI state",
            recorded.waiting as u64,
            replayed.waiting as u64,
        ),
    ];
    for (name, r, p) in fields {
        if r != p {
            return both(name.to_string(), r.to_string(), p.to_string());
        }
    }
    if recorded != replayed {
        return both(
            "LR reservation".into(),
            format!("{:?}", recorded.reservation),
            format!("{:?}", replayed.reservation),
        );
    }
    None
}

//! Saving and restoring the machine's state, for snapshots.
//!
//! The state is a list of named components, each the bincode encoding of one
//! part's state struct: the machine's counters and HSM states, every hart's
//! architectural state, each board device, each virtio transport with its
//! device. RAM is not among them (the snapshot file stores it as pages), nor
//! are disk contents (their backends own them).
//!
//! A machine is restored by building a fresh one from the same
//! configuration and then overwriting its state, so everything a
//! configuration decides (RAM size, harts, devices, backends) is already in
//! place and a component only has to fit it. Components come from files
//! that may be damaged or hostile: each is decoded with a size limit and
//! checked against the fresh machine's shape (vector lengths, device kinds,
//! queue counts) before anything is replaced, so a bad one is an error, never
//! a panic or a machine in a half-restored state.
//!
//! Each device says what it stores and what fits it beside its own code, by
//! implementing [`Saved`]; this module holds what they share (the codec and
//! the error) and the machine's side: its own counters, the harts (whose
//! crate knows nothing of snapshots), the list of components and the
//! all-or-nothing replace.

use crate::machine::{Machine, RoundCursor};
use crate::sbi::HartState;
use bincode::Options;
use rewind_hart::{ArchState, Hart, TlbState};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The component that names the machine model the state was saved by.
pub const MODEL_COMPONENT: &str = "model";

/// The machine model a saved state names in its [`MODEL_COMPONENT`]: 1 if
/// it has none (it was saved before models were numbered), None if the
/// component is malformed.
pub fn saved_model(component: Option<&[u8]>) -> Option<u32> {
    match component {
        None => Some(1),
        Some(bytes) => Some(u32::from_le_bytes(bytes.try_into().ok()?)),
    }
}

/// Why saved state does not fit this machine.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the snapshot's machine is {}, not model {} as this machine", .0.map_or("of an unknown model".to_string(), |m| format!("model {m}")), crate::MODEL_VERSION)]
    OtherModel(Option<u32>),
    #[error("the snapshot has no state for {0}")]
    Missing(String),
    #[error("the snapshot's state for {part} does not decode: {reason}")]
    Undecodable { part: String, reason: String },
    #[error("the snapshot's state for {part} does not fit this machine: {reason}")]
    Mismatch { part: String, reason: String },
    #[error("the snapshot has state for {0}, which this machine does not have")]
    Unexpected(String),
}

/// The bincode options of every component: fixed-width integers, and a
/// limit so that a hostile length prefix cannot make the decoder allocate.
fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(64 << 20)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    codec()
        .serialize(value)
        .expect("state structs are plain data under the size limit")
}

fn decode<T: DeserializeOwned>(part: &str, bytes: &[u8]) -> Result<T, StateError> {
    codec()
        .deserialize(bytes)
        .map_err(|e| StateError::Undecodable {
            part: part.to_string(),
            reason: e.to_string(),
        })
}

/// A part of the machine whose state is one snapshot component (or, for a
/// virtio device, the second half of its transport's component).
///
/// A part names the type it stores and how a stored value is checked and
/// put back; the bytes are made and read only by the provided methods here,
/// so every part uses the one size-limited codec. Restoring is split into
/// [`Saved::load`], which may fail and changes nothing, and
/// [`Saved::apply`], which cannot fail, so that the machine can check every
/// component before it replaces any.
pub(crate) trait Saved {
    /// What the part stores. Its bincode encoding is the snapshot format:
    /// changing it makes older snapshots unreadable.
    type State: Serialize + DeserializeOwned;

    /// A copy of the part's state. (A copy rather than a borrow so that
    /// what is written is the very type that is read back; snapshots are
    /// rare and RAM, not devices, dominates their cost.)
    fn saved(&self) -> Self::State;

    /// Refuses a decoded state that does not fit `self`, the part of a
    /// fresh machine built from the snapshot's configuration: one that
    /// contradicts the configuration or that later code could not handle
    /// without panicking. `part` names the component for the error.
    fn check(&self, part: &str, state: &Self::State) -> Result<(), StateError>;

    /// Replaces the part's state with one that [`Saved::check`] accepted.
    fn apply(&mut self, state: Self::State);

    fn save(&self) -> Vec<u8> {
        encode(&self.saved())
    }

    /// Decodes a component and checks it fits, changing nothing.
    fn load(&self, part: &str, bytes: &[u8]) -> Result<Self::State, StateError> {
        let state = decode(part, bytes)?;
        self.check(part, &state)?;
        Ok(state)
    }
}

pub(crate) fn mismatch(part: &str, reason: String) -> StateError {
    StateError::Mismatch {
        part: part.to_string(),
        reason,
    }
}

/// Checks that a restored vector has the length the machine gives it.
pub(crate) fn same_len(
    part: &str,
    what: &str,
    restored: usize,
    fresh: usize,
) -> Result<(), StateError> {
    if restored == fresh {
        Ok(())
    } else {
        Err(mismatch(
            part,
            format!("it has {restored} {what} where this machine has {fresh}"),
        ))
    }
}

/// The machine's own counters.
#[derive(Serialize, Deserialize)]
struct Counters {
    round_start: u64,
    rounds: u64,
    resets: u64,
    steps_before_reset: u64,
    hart_states: Vec<HartState>,
    /// Where a round stopped inside stands (None at a round boundary).
    cursor: Option<RoundCursor>,
}

/// What a snapshot stores of a hart: its architectural state and its TLB,
/// which is architectural too (a hart may go on using a translation that
/// its page table no longer has until SFENCE.VMA).
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedHart {
    arch: ArchState,
    tlb: TlbState,
}

/// Harts live in rewind-hart, which knows nothing of snapshots.
impl Saved for Hart {
    type State = SavedHart;

    fn saved(&self) -> SavedHart {
        SavedHart {
            arch: self.arch_state(),
            tlb: self.tlb_state(),
        }
    }

    /// What the executor assumes of a hart's state. (Its TLB is checked
    /// against the machine's RAM by `restore_state`.)
    fn check(&self, part: &str, saved: &SavedHart) -> Result<(), StateError> {
        let state = &saved.arch;
        if state.x[0] != 0 {
            return Err(mismatch(part, "register x0 is not zero".to_string()));
        }
        if ![0, 1, 3].contains(&state.prv) {
            return Err(mismatch(
                part,
                format!("privilege mode {} does not exist", state.prv),
            ));
        }
        Ok(())
    }

    fn apply(&mut self, saved: SavedHart) {
        // A new hart, so that no decoded code of the old state survives.
        *self = Hart::from_arch_state(self.id, &saved.arch);
        self.set_tlb_state(&saved.tlb);
    }
}

/// The components of a snapshot being restored, and the names of those
/// read so far: any left unread belongs to nothing in this machine.
struct Components<'a> {
    parts: &'a [(String, Vec<u8>)],
    read: Vec<&'a str>,
}

impl<'a> Components<'a> {
    fn bytes(&mut self, name: &str) -> Result<&'a [u8], StateError> {
        let (name, bytes) = self
            .parts
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| StateError::Missing(name.to_string()))?;
        self.read.push(name);
        Ok(bytes)
    }

    fn load<T: Saved>(&mut self, name: &str, fresh: &T) -> Result<T::State, StateError> {
        fresh.load(name, self.bytes(name)?)
    }

    /// The first component not read. Components named `host:...` belong to
    /// the embedding program, which restores them itself.
    fn unexpected(&self) -> Option<&'a str> {
        self.parts
            .iter()
            .map(|(n, _)| n.as_str())
            .find(|n| !self.read.contains(n) && !n.starts_with("host:"))
    }
}

/// The most guest time (ns, so instructions too) a snapshot may hold: 146
/// years, and far from where the clock arithmetic could overflow.
const MAX_CLOCK: u64 = 1 << 62;

/// Checks the machine's counters against its harts' clocks. A snapshot is
/// taken at a round boundary, where every hart's clock has reached the
/// round's start; a hart far behind it would have to run all the way there
/// in one round, which for a hostile file is for ever. Counters near the top
/// of u64 would overflow as the machine runs.
fn check_clocks(counters: &Counters, harts: &[&ArchState]) -> Result<(), StateError> {
    let beyond = |what: &str, value: u64| {
        Err(mismatch(
            "machine",
            format!("its {what} ({value}) is beyond the {MAX_CLOCK} a machine can reach"),
        ))
    };
    for (what, value) in [
        ("round start", counters.round_start),
        ("round count", counters.rounds),
        ("reset count", counters.resets),
        ("steps before the last reset", counters.steps_before_reset),
    ] {
        if value > MAX_CLOCK {
            return beyond(what, value);
        }
    }
    let mut retired = counters.steps_before_reset;
    for (id, hart) in harts.iter().enumerate() {
        let part = format!("hart {id}");
        let clock = hart.instret.checked_add(hart.stalled);
        match clock {
            Some(clock) if clock > MAX_CLOCK => {
                return beyond(&format!("hart {id}'s clock"), clock)
            }
            None => return beyond(&format!("hart {id}'s clock"), u64::MAX),
            Some(clock) if clock < counters.round_start => {
                return Err(mismatch(
                    &part,
                    format!(
                        "its clock ({clock}) is behind the start of the machine's round ({})",
                        counters.round_start
                    ),
                ))
            }
            Some(_) => {}
        }
        if hart.traps > hart.stalled {
            // Every trap entered cost a nanosecond of stalled time.
            return Err(mismatch(
                &part,
                format!(
                    "it has entered {} traps in {} ns without retiring, which a hart cannot",
                    hart.traps, hart.stalled
                ),
            ));
        }
        retired = retired.saturating_add(hart.instret + hart.traps);
    }
    if retired > MAX_CLOCK {
        return beyond("position", retired);
    }
    Ok(())
}

impl Machine {
    /// The machine's state as named components (see the module comment).
    /// Their names and order are part of the snapshot format. The first,
    /// `model`, is [`crate::MODEL_VERSION`] (four bytes, little-endian):
    /// the rest is laid out as that model lays it out.
    pub fn save_state(&self) -> Vec<(String, Vec<u8>)> {
        let b = &self.board;
        let mut parts = vec![
            (
                MODEL_COMPONENT.to_string(),
                crate::MODEL_VERSION.to_le_bytes().to_vec(),
            ),
            (
                "machine".to_string(),
                encode(&Counters {
                    round_start: self.round_start,
                    rounds: self.rounds,
                    resets: self.resets,
                    steps_before_reset: self.steps_before_reset,
                    hart_states: self.states.clone(),
                    cursor: self.cursor,
                }),
            ),
        ];
        for (id, hart) in self.harts.iter().enumerate() {
            parts.push((format!("hart {id}"), hart.save()));
        }
        parts.push(("uart".to_string(), b.uart.save()));
        parts.push(("clint".to_string(), b.clint.save()));
        parts.push(("plic".to_string(), b.plic.save()));
        parts.push(("rtc".to_string(), b.rtc.save()));
        parts.push(("finisher".to_string(), b.finisher.save()));
        for slot in &b.virtio.slots {
            parts.push((format!("virtio {}", slot.slot), slot.save()));
        }
        parts
    }

    /// Replaces this machine's state with `parts` (from
    /// [`Machine::save_state`] of a machine with the same configuration).
    /// Everything is decoded and checked first; on an error the machine is
    /// unchanged. RAM is restored separately.
    pub fn restore_state(&mut self, parts: &[(String, Vec<u8>)]) -> Result<(), StateError> {
        let mut saved = Components {
            parts,
            read: Vec::new(),
        };
        let model = saved_model(saved.bytes(MODEL_COMPONENT).ok());
        if model != Some(crate::MODEL_VERSION) {
            return Err(StateError::OtherModel(model));
        }
        let counters: Counters = decode("machine", saved.bytes("machine")?)?;
        same_len(
            "machine",
            "hart states",
            counters.hart_states.len(),
            self.harts.len(),
        )?;
        let mut harts = Vec::with_capacity(self.harts.len());
        for (id, hart) in self.harts.iter().enumerate() {
            let part = format!("hart {id}");
            let state: SavedHart = saved.load(&part, hart)?;
            state
                .tlb
                .check(self.board.ram.size())
                .map_err(|why| mismatch(&part, why))?;
            harts.push(state);
        }
        let arch: Vec<&ArchState> = harts.iter().map(|h| &h.arch).collect();
        check_clocks(&counters, &arch)?;
        if let Some(cursor) = counters.cursor {
            if cursor.hart >= self.harts.len() || counters.rounds == 0 {
                return Err(mismatch(
                    "machine",
                    format!(
                        "it is stopped inside round {} at the turn of hart {}, which this machine cannot be",
                        counters.rounds, cursor.hart
                    ),
                ));
            }
        }
        let b = &self.board;
        let uart = saved.load("uart", &b.uart)?;
        let clint = saved.load("clint", &b.clint)?;
        let plic = saved.load("plic", &b.plic)?;
        let rtc = saved.load("rtc", &b.rtc)?;
        let finisher = saved.load("finisher", &b.finisher)?;
        let mut virtio = Vec::with_capacity(b.virtio.slots.len());
        for slot in &b.virtio.slots {
            virtio.push(saved.load(&format!("virtio {}", slot.slot), slot)?);
        }
        if let Some(name) = saved.unexpected() {
            return Err(StateError::Unexpected(name.to_string()));
        }
        // Everything fits: replace.
        self.round_start = counters.round_start;
        self.rounds = counters.rounds;
        self.resets = counters.resets;
        self.steps_before_reset = counters.steps_before_reset;
        self.states = counters.hart_states;
        self.cursor = counters.cursor;
        for (hart, state) in self.harts.iter_mut().zip(harts) {
            hart.apply(state);
        }
        let b = &mut self.board;
        b.uart.apply(uart);
        b.clint.apply(clint);
        b.plic.apply(plic);
        b.rtc.apply(rtc);
        b.finisher.apply(finisher);
        for (slot, state) in b.virtio.slots.iter_mut().zip(virtio) {
            slot.apply(state);
        }
        self.after_input();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::blk::MemDisk;
    use crate::virtio::VirtioConfig;
    use crate::{Firmware, MachineConfig, Round};

    /// A machine with every kind of device, two harts, and a program that
    /// counts in a register and stores the count to RAM.
    fn machine() -> Machine {
        let (config, disk) = parts();
        Machine::with_disks(config, vec![Box::new(disk)]).unwrap()
    }

    fn parts() -> (MachineConfig, MemDisk) {
        let program: Vec<u8> = [
            0x0010_0297u32, // auipc t0, 0x100
            0x0013_0313,    // addi t1, t1, 1
            0x0062_b023,    // sd t1, 0(t0)
            0xff9f_f06f,    // j -8
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
        let config = MachineConfig {
            mem_size: 16 << 20,
            harts: 2,
            firmware: Firmware::None,
            kernel: Some(crate::KernelImage::Flat(program.into())),
            initrd: None,
            bootargs: String::new(),
            rtc_epoch_ns: 1_000_000_000,
            seed: 7,
            virtio: VirtioConfig {
                net_macs: vec![[2, 0, 0, 0, 0, 1]],
                hvc: true,
                rng: Some(crate::virtio::rng::Entropy::Seeded),
            },
        };
        let disk = MemDisk {
            bytes: vec![0; 4096],
            read_only: false,
        };
        (config, disk)
    }

    fn advanced() -> Machine {
        let mut m = machine();
        for _ in 0..3 {
            m.run_round();
        }
        m.push_console_input(b"hi");
        m.run_round();
        m
    }

    /// What `rewind restore` does: a machine built without its boot images,
    /// given the saved state, the pages written since power-on and, for
    /// every other page, what the boot images put there, goes on exactly
    /// as the original.
    #[test]
    fn a_machine_built_with_zero_ram_continues_after_state_and_ram_are_restored() {
        let mut original = advanced();
        let written = original.written_since_power_on();
        // The program's counter page; not its code page.
        assert_eq!(written, [0x100]);
        let (config, disk) = parts();
        let mut restored = Machine::with_zero_ram(config, vec![Box::new(disk)]).unwrap();
        assert!(restored.board.ram.ever_written().is_empty());
        assert!(restored.board.ram.bytes().iter().all(|&b| b == 0));
        assert_eq!(restored.plan, original.plan);
        assert_eq!(restored.power_on_id(), original.power_on_id());
        restored.restore_state(&original.save_state()).unwrap();
        let mut ram = vec![0u8; original.board.ram.bytes().len()];
        for &page in &written {
            let range = page * 4096..(page + 1) * 4096;
            ram[range.clone()].copy_from_slice(&original.board.ram.bytes()[range]);
        }
        restored.fill_power_on(&mut ram, &written);
        restored.board.ram.replace(ram, &written);
        assert_eq!(restored.state_hash(), original.state_hash());
        for _ in 0..20 {
            original.run_round();
            restored.run_round();
        }
        assert_eq!(restored.state_hash(), original.state_hash());
        assert_eq!(restored.position(), original.position());
        assert_eq!(restored.written_since_power_on(), written);
        assert_only_listed_pages_are_nonzero(&original);
        assert_only_listed_pages_are_nonzero(&restored);
    }

    /// The state hash reads RAM through page digests and skips the pages
    /// known to be zero: a byte stored anywhere, in a page never touched
    /// before or one of the boot images, still changes it, and storing the
    /// old byte back restores it.
    #[test]
    fn the_state_hash_sees_every_byte_of_ram() {
        let mut m = advanced();
        let before = m.state_hash();
        let size = m.board.ram.size();
        for offset in [0, 0x1234, size / 2 + 7, size - 1] {
            let at = crate::board::RAM_BASE + offset;
            let mut old = [0u8];
            m.board.ram.read_bytes(at, &mut old).unwrap();
            m.board.ram.write_bytes(at, &[old[0] ^ 0x40]).unwrap();
            assert_ne!(m.state_hash(), before, "a byte at RAM offset {offset:#x}");
            m.board.ram.write_bytes(at, &old).unwrap();
            assert_eq!(m.state_hash(), before, "the byte back at {offset:#x}");
        }
    }

    /// Every page outside `pages_maybe_nonzero` is zero.
    fn assert_only_listed_pages_are_nonzero(m: &Machine) {
        let listed = m.pages_maybe_nonzero();
        assert!(
            listed.windows(2).all(|w| w[0] < w[1]),
            "ascending, once each"
        );
        for p in 0..m.board.ram.pages() {
            if listed.binary_search(&p).is_err() {
                assert!(
                    m.board.ram.page(p).iter().all(|&b| b == 0),
                    "page {p:#x} is not zero but not listed"
                );
            }
        }
    }

    /// A guest reset reloads the boot images into a fresh RAM; what was
    /// written before it still counts as written since power-on where it
    /// differs, and what the guest writes after it too, so the pages a
    /// snapshot lists plus the power-on RAM are still all of RAM.
    #[test]
    fn written_since_power_on_plus_the_boot_images_rebuild_ram_after_a_reset() {
        let program: Vec<u8> = [
            0x0010_0297u32, //  0: auipc t0, 0x100 (t0: page 256)
            0x0013_0313,    //  1: addi t1, t1, 1
            0x0062_b023,    //  2: sd t1, 0(t0)
            0x00c0_006f,    //  3: j 6, over two zero words: an Image header
            0x0000_0000,    //  4: has its image size at bytes 16..24,
            0x0000_0000,    //  5: which must not be garbage
            0x0000_0317,    //  6: auipc t1, 0
            0xfe03_2423,    //  7: sw zero, -24(t1): RAM the image loaded
            0x0082_be83,    //  8: ld t4, 8(t0): the host's flag
            0x000e_9c63,    //  9: bnez t4, 15
            0x0010_03b7,    // 10: lui t2, 0x100 (the test finisher)
            0x0000_7e37,    // 11: lui t3, 7
            0x777e_0e13,    // 12: addi t3, t3, 0x777
            0x01c3_a023,    // 13: sw t3, 0(t2): reset
            0x0000_006f,    // 14: j .
            0x0000_1f37,    // 15: lui t5, 1
            0x005f_0f33,    // 16: add t5, t5, t0 (page 257)
            0x006f_3023,    // 17: sd t1, 0(t5)
            0x0000_006f,    // 18: j .
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
        let (mut config, _) = parts();
        config.harts = 1;
        config.kernel = Some(crate::KernelImage::Flat(program.into()));
        let mut m = Machine::new(config).unwrap();
        m.run_round();
        assert_eq!(m.resets, 1, "the program resets the machine");
        // After the reset, the flag makes the program write page 257 and stop.
        m.board
            .ram
            .write_bytes(crate::board::RAM_BASE + 0x10_0008, &1u64.to_le_bytes())
            .unwrap();
        m.run_round();
        assert_eq!(m.resets, 1);
        let written = m.written_since_power_on();
        assert_eq!(written, [0, 256, 257]);
        let mut ram = vec![0u8; m.board.ram.bytes().len()];
        for &page in &written {
            let range = page * 4096..(page + 1) * 4096;
            ram[range.clone()].copy_from_slice(&m.board.ram.bytes()[range]);
        }
        m.fill_power_on(&mut ram, &written);
        assert!(ram == m.board.ram.bytes(), "RAM rebuilt differs");
        assert_only_listed_pages_are_nonzero(&m);
    }

    #[test]
    fn the_power_on_id_names_the_boot_images_and_their_places() {
        let (config, _) = parts();
        let id = Machine::new(config.clone()).unwrap().power_on_id();
        let mut other_kernel = config.clone();
        if let Some(crate::KernelImage::Flat(bytes)) = &config.kernel {
            let mut changed = bytes.to_vec();
            changed[0] ^= 1;
            other_kernel.kernel = Some(crate::KernelImage::Flat(changed.into()));
        }
        assert_ne!(Machine::new(other_kernel).unwrap().power_on_id(), id);
        let mut more_ram = config;
        more_ram.mem_size *= 2;
        assert_ne!(Machine::new(more_ram).unwrap().power_on_id(), id);
    }

    #[test]
    fn save_restore_save_gives_identical_bytes_for_every_component() {
        let m = advanced();
        let saved = m.save_state();
        let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "machine", "hart 0", "hart 1", "uart", "clint", "plic", "rtc", "finisher",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert_eq!(names.iter().filter(|n| n.starts_with("virtio ")).count(), 4);
        let mut restored = machine();
        restored.restore_state(&saved).unwrap();
        let again = restored.save_state();
        for ((name, a), (_, b)) in saved.iter().zip(&again) {
            assert_eq!(
                a, b,
                "component {name} changed in a save-restore-save cycle"
            );
        }
        assert_eq!(saved.len(), again.len());
    }

    #[test]
    fn a_restored_machine_continues_like_the_original() {
        let mut original = advanced();
        let mut restored = machine();
        restored.restore_state(&original.save_state()).unwrap();
        let all: Vec<usize> = (0..original.board.ram.pages()).collect();
        restored
            .board
            .ram
            .overwrite(&all, |ram| ram.copy_from_slice(original.board.ram.bytes()));
        assert_eq!(original.state_hash(), restored.state_hash());
        for _ in 0..5 {
            original.run_round();
            restored.run_round();
        }
        assert_eq!(original.state_hash(), restored.state_hash());
    }

    /// Any change to what this machine does or to how its state is laid
    /// out changes this hash. When that is intended, bump
    /// `crate::MODEL_VERSION` (files of the old model must be refused, not
    /// replayed as divergences) and pin the new hash here.
    #[test]
    fn the_model_version_pins_what_a_machine_does() {
        let mut m = advanced();
        let target = m.position() + 12_345;
        while m.run_round_until(Some(target)) != Round::Paused {}
        let mut hash = blake3::Hasher::new();
        hash.update(&m.state_hash());
        for (name, bytes) in m.save_state() {
            hash.update(name.as_bytes());
            hash.update(&bytes);
        }
        assert_eq!(
            (crate::MODEL_VERSION, hash.finalize().to_hex().to_string()),
            (
                7,
                "054e28ee89237546e65ade4cbd07fabbf8b23010bd79b35ec2769820955e8055".to_string()
            ),
            "the machine's behaviour or state layout changed: bump MODEL_VERSION and pin the new hash"
        );
    }

    /// A state saved by another machine model, or before models were
    /// numbered, is refused before anything of it is decoded.
    #[test]
    fn state_of_another_model_is_refused() {
        let saved = advanced().save_state();
        let mut target = machine();
        let before = target.state_hash();
        let other = saved
            .iter()
            .map(|(n, b)| match n.as_str() {
                MODEL_COMPONENT => (n.clone(), 9u32.to_le_bytes().to_vec()),
                _ => (n.clone(), b.clone()),
            })
            .collect::<Vec<_>>();
        let e = target.restore_state(&other).unwrap_err();
        assert!(e.to_string().contains("model 9"), "{e}");
        let unnumbered: Vec<_> = saved
            .iter()
            .filter(|(n, _)| n != MODEL_COMPONENT)
            .cloned()
            .collect();
        let e = target.restore_state(&unnumbered).unwrap_err();
        assert!(e.to_string().contains("model 1"), "{e}");
        assert_eq!(target.state_hash(), before);
    }

    /// A copy of `original` made the way a restore makes one.
    fn restored_copy(original: &Machine) -> Machine {
        let mut restored = machine();
        restored.restore_state(&original.save_state()).unwrap();
        let all: Vec<usize> = (0..original.board.ram.pages()).collect();
        restored
            .board
            .ram
            .overwrite(&all, |ram| ram.copy_from_slice(original.board.ram.bytes()));
        restored
    }

    /// Runs `m` until it has run `rounds` rounds in all.
    fn run_rounds(m: &mut Machine, rounds: u64) {
        while m.rounds < rounds || m.inside_round() {
            assert_ne!(m.run_round(), Round::Paused);
        }
    }

    /// Stopping at exact instruction counts, in one hart's turn or the
    /// other's, and going on (in the same machine, or in one restored from
    /// a snapshot taken there) ends where an uninterrupted run ends.
    #[test]
    fn pausing_at_any_instruction_count_changes_nothing() {
        let mut straight = advanced();
        let start = straight.position();
        let rounds = straight.rounds + 8;
        run_rounds(&mut straight, rounds);
        let end = straight.state_hash();
        // Targets inside hart 0's turn, in hart 1's, at a turn's very end.
        for offset in [1, 7, 9_999, 10_000, 10_001, 19_999, 33_333, 60_000] {
            let target = start + offset;
            let mut paused = advanced();
            let mut round = paused.run_round_until(Some(target));
            while round != Round::Paused {
                round = paused.run_round_until(Some(target));
            }
            assert_eq!(paused.position(), target, "paused at {offset}");
            assert!(paused.inside_round());
            // Asking again stops at once, and changes nothing.
            let here = paused.state_hash();
            assert_eq!(paused.run_round_until(Some(target)), Round::Paused);
            assert_eq!(paused.state_hash(), here);
            let mut copy = restored_copy(&paused);
            assert_eq!(copy.state_hash(), here, "the copy at {offset}");
            run_rounds(&mut paused, rounds);
            run_rounds(&mut copy, rounds);
            assert_eq!(paused.state_hash(), end, "paused at {offset}");
            assert_eq!(copy.state_hash(), end, "restored at {offset}");
        }
    }

    /// A target the machine has already reached pauses it before its next
    /// step, without taking one, and it goes on from there as if it had
    /// never paused.
    #[test]
    fn a_target_already_reached_pauses_before_the_next_step() {
        let mut m = advanced();
        let mut unpaused = restored_copy(&m);
        let at = m.position();
        assert_eq!(m.run_round_until(Some(at)), Round::Paused);
        assert_eq!(m.run_round_until(Some(0)), Round::Paused);
        assert_eq!(m.position(), at);
        assert!(m.inside_round());
        let rounds = unpaused.rounds + 3;
        run_rounds(&mut unpaused, rounds);
        run_rounds(&mut m, rounds);
        assert_eq!(m.state_hash(), unpaused.state_hash());
    }

    #[test]
    fn a_place_in_a_round_that_cannot_be_is_refused() {
        let mut paused = advanced();
        let target = paused.position() + 15_000;
        while paused.run_round_until(Some(target)) != Round::Paused {}
        let saved = paused.save_state();
        let mut counters: Counters = decode("machine", &saved[1].1).unwrap();
        counters.cursor = Some(RoundCursor {
            hart: 2,
            busy: true,
        });
        let mut parts = saved.clone();
        parts[1].1 = encode(&counters);
        let mut target_machine = machine();
        let e = target_machine.restore_state(&parts).unwrap_err();
        assert!(e.to_string().contains("inside round"), "{e}");
    }

    /// Found by the machine_state fuzz target: a round start far ahead of
    /// a hart's clock made the first round run for ever.
    #[test]
    fn counters_that_contradict_the_harts_clocks_are_refused() {
        let saved = advanced().save_state();
        let counters: Counters = decode("machine", &saved[1].1).unwrap();
        let hart0: SavedHart = decode("hart 0", &saved[2].1).unwrap();
        let arch = hart0.arch.clone();
        assert_eq!(saved[1].0, "machine");
        assert_eq!(saved[2].0, "hart 0");
        let with_counters = |edit: &dyn Fn(&mut Counters)| {
            let mut c: Counters = decode("machine", &saved[1].1).unwrap();
            edit(&mut c);
            let mut parts = saved.clone();
            parts[1].1 = encode(&c);
            parts
        };
        let with_hart0 = |edit: &dyn Fn(&mut ArchState)| {
            let mut a = arch.clone();
            edit(&mut a);
            let mut parts = saved.clone();
            parts[2].1 = encode(&SavedHart {
                arch: a,
                tlb: hart0.tlb.clone(),
            });
            parts
        };
        let cases = [
            (
                with_counters(&|c| c.round_start += 1_000_000),
                "is behind the start of the machine's round",
            ),
            (with_counters(&|c| c.rounds = u64::MAX), "round count"),
            (with_counters(&|c| c.resets = u64::MAX), "reset count"),
            (
                with_counters(&|c| c.steps_before_reset = MAX_CLOCK),
                "position",
            ),
            (with_hart0(&|a| a.traps = a.stalled + 1), "traps"),
            (with_hart0(&|a| a.stalled = u64::MAX), "hart 0's clock"),
            (with_hart0(&|a| a.instret = MAX_CLOCK + 1), "hart 0's clock"),
        ];
        let mut target = machine();
        for (parts, expected) in cases {
            let e = target.restore_state(&parts).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
        // The state as saved still restores, with its clocks just at the
        // round's start.
        assert!(arch.instret + arch.stalled >= counters.round_start);
        target.restore_state(&saved).unwrap();
        assert!(target.save_state() == saved);
    }

    #[test]
    fn damaged_or_foreign_state_is_refused_and_changes_nothing() {
        let saved = advanced().save_state();
        let mut target = machine();
        let before = target.state_hash();
        let with = |name: &str, bytes: Vec<u8>| {
            let mut parts = saved.clone();
            parts.iter_mut().find(|(n, _)| n == name).unwrap().1 = bytes;
            parts
        };
        let uart = &saved.iter().find(|(n, _)| n == "uart").unwrap().1;
        let cases = [
            with("uart", uart[..uart.len() - 1].to_vec()),
            with("hart 1", vec![0xff; 16]),
            // A network device's state where the disk is.
            with(
                "virtio 0",
                saved
                    .iter()
                    .find(|(n, _)| n == "virtio 1")
                    .unwrap()
                    .1
                    .clone(),
            ),
            saved
                .iter()
                .filter(|(n, _)| n != "clint")
                .cloned()
                .collect(),
            {
                let mut parts = saved.clone();
                parts.push(("virtio 7".to_string(), vec![]));
                parts
            },
        ];
        for parts in cases {
            let e = target.restore_state(&parts).unwrap_err().to_string();
            assert!(e.starts_with("the snapshot"), "{e}");
            assert_eq!(
                target.state_hash(),
                before,
                "a refused restore changed the machine"
            );
        }
        let mut x0 = advanced().harts[0].saved();
        x0.arch.x[0] = 1;
        let e = target
            .restore_state(&with("hart 0", encode(&x0)))
            .unwrap_err();
        assert!(e.to_string().contains("x0"), "{e}");
        // A TLB entry pointing past the end of RAM would make the hart read
        // outside it.
        let mut beyond = advanced().harts[0].saved();
        assert!(!beyond.tlb.entries.is_empty(), "the program filled the TLB");
        beyond.tlb.entries[0].ram_off = 16 << 20;
        let e = target
            .restore_state(&with("hart 0", encode(&beyond)))
            .unwrap_err();
        assert!(e.to_string().contains("TLB"), "{e}");
        assert_eq!(target.state_hash(), before);
    }

    /// The names and order of the components are part of the snapshot
    /// format: snapshots written by earlier versions must still restore.
    #[test]
    fn component_names_and_order_are_pinned() {
        let m = advanced();
        let names: Vec<String> = m.save_state().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "model", "machine", "hart 0", "hart 1", "uart", "clint", "plic", "rtc", "finisher",
                "virtio 0", "virtio 1", "virtio 2", "virtio 3",
            ]
        );
        let kinds: Vec<u32> = m.board.virtio.slots.iter().map(|s| s.device.id()).collect();
        assert_eq!(
            kinds,
            [
                crate::virtio::blk::ID,
                crate::virtio::net::ID,
                crate::virtio::console::ID,
                crate::virtio::rng::ID
            ]
        );
    }

    /// Each component is the plain encoding of its part's state struct, and
    /// a virtio slot's is its transport's followed by the index of the
    /// device's kind (0 block, 1 network, 2 console, 3 entropy) and the
    /// device's state: the layout that snapshots on disk have.
    #[test]
    fn component_bytes_are_pinned() {
        use crate::virtio::Device;
        let m = advanced();
        let b = &m.board;
        let saved = m.save_state();
        let bytes = |name: &str| &saved.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(
            bytes("machine"),
            &encode(&(
                m.round_start,
                m.rounds,
                m.resets,
                m.steps_before_reset,
                &m.states,
                m.cursor
            ))
        );
        for (id, hart) in m.harts.iter().enumerate() {
            assert_eq!(
                bytes(&format!("hart {id}")),
                &encode(&(hart.arch_state(), hart.tlb_state()))
            );
        }
        assert_eq!(bytes("uart"), &encode(&b.uart));
        assert_eq!(bytes("clint"), &encode(&b.clint));
        assert_eq!(bytes("plic"), &encode(&b.plic));
        assert_eq!(bytes("rtc"), &encode(&b.rtc));
        assert_eq!(bytes("finisher"), &encode(&b.finisher));
        for slot in &b.virtio.slots {
            let (kind, device) = match &slot.device {
                Device::Blk(d) => (0u32, encode(&d.state)),
                Device::Net(d) => (1, encode(d)),
                Device::Console(d) => (2, encode(d)),
                Device::Rng(d) => (3, encode(d)),
            };
            let mut expected = encode(&slot.state);
            expected.extend_from_slice(&kind.to_le_bytes());
            expected.extend_from_slice(&device);
            assert_eq!(bytes(&format!("virtio {}", slot.slot)), &expected);
        }
    }

    /// States that decode but that the devices' code could not run with
    /// (it would subtract past zero or index past an array).
    #[test]
    fn device_states_the_code_cannot_handle_are_refused() {
        use crate::virtio::Device;
        let source = advanced();
        let saved = source.save_state();
        let mut target = machine();
        let before = target.state_hash();
        let refused = |target: &mut Machine, name: &str, bytes: Vec<u8>, word: &str| {
            let mut parts = saved.clone();
            parts.iter_mut().find(|(n, _)| n == name).unwrap().1 = bytes;
            let e = target.restore_state(&parts).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(word), "{e}");
        };
        let mut uart = source.board.uart.clone();
        uart.rx = vec![b'x'; 17].into();
        refused(&mut target, "uart", encode(&uart), "FIFO");
        let slot = source
            .board
            .virtio
            .slots
            .iter()
            .find(|s| matches!(s.device, Device::Rng(_)))
            .unwrap();
        let mut state = slot.saved();
        if let crate::virtio::SavedDevice::Rng(r) = &mut state.1 {
            r.generator.used = 64;
        }
        let name = format!("virtio {}", slot.slot);
        refused(&mut target, &name, encode(&state), "64-byte block");
        assert_eq!(
            target.state_hash(),
            before,
            "a refused restore changed the machine"
        );
    }
}

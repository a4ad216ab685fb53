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

use crate::machine::Machine;
use crate::sbi::HartState;
use crate::virtio::{blk, console, net, rng, Device};
use bincode::Options;
use rewind_hart::{ArchState, Hart};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Why saved state does not fit this machine.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
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

/// The machine's own counters.
#[derive(Serialize, Deserialize)]
struct Counters {
    round_start: u64,
    rounds: u64,
    resets: u64,
    retired_before_reset: u64,
    hart_states: Vec<HartState>,
}

/// A virtio device's state without its host backend.
#[derive(Serialize, Deserialize)]
enum SavedDevice {
    Blk(blk::BlkState),
    Net(net::Net),
    Console(console::Console),
    Rng(rng::Rng),
}

impl SavedDevice {
    fn kind(&self) -> &'static str {
        match self {
            SavedDevice::Blk(_) => "block",
            SavedDevice::Net(_) => "network",
            SavedDevice::Console(_) => "console",
            SavedDevice::Rng(_) => "entropy",
        }
    }
}

fn device_kind(device: &Device) -> &'static str {
    match device {
        Device::Blk(_) => "block",
        Device::Net(_) => "network",
        Device::Console(_) => "console",
        Device::Rng(_) => "entropy",
    }
}

fn mismatch(part: &str, reason: String) -> StateError {
    StateError::Mismatch {
        part: part.to_string(),
        reason,
    }
}

/// Checks that a restored vector has the length the machine gives it.
fn same_len(part: &str, what: &str, restored: usize, fresh: usize) -> Result<(), StateError> {
    if restored == fresh {
        Ok(())
    } else {
        Err(mismatch(
            part,
            format!("it has {restored} {what} where this machine has {fresh}"),
        ))
    }
}

impl Machine {
    /// The machine's state as named components (see the module comment).
    pub fn save_state(&self) -> Vec<(String, Vec<u8>)> {
        let b = &self.board;
        let mut parts = vec![(
            "machine".to_string(),
            encode(&Counters {
                round_start: self.round_start,
                rounds: self.rounds,
                resets: self.resets,
                retired_before_reset: self.retired_before_reset,
                hart_states: self.states.clone(),
            }),
        )];
        for (id, hart) in self.harts.iter().enumerate() {
            parts.push((format!("hart {id}"), encode(&hart.arch_state())));
        }
        parts.push(("uart".to_string(), encode(&b.uart)));
        parts.push(("clint".to_string(), encode(&b.clint)));
        parts.push(("plic".to_string(), encode(&b.plic)));
        parts.push(("rtc".to_string(), encode(&b.rtc)));
        parts.push(("finisher".to_string(), encode(&b.finisher)));
        for slot in &b.virtio.slots {
            let device = match &slot.device {
                Device::Blk(d) => SavedDevice::Blk(d.state.clone()),
                Device::Net(d) => SavedDevice::Net(d.clone()),
                Device::Console(d) => SavedDevice::Console(d.clone()),
                Device::Rng(d) => SavedDevice::Rng(d.clone()),
            };
            parts.push((
                format!("virtio {}", slot.slot),
                encode(&(&slot.state, &device)),
            ));
        }
        parts
    }

    /// Replaces this machine's state with `parts` (from
    /// [`Machine::save_state`] of a machine with the same configuration).
    /// Everything is decoded and checked first; on an error the machine is
    /// unchanged. RAM is restored separately.
    pub fn restore_state(&mut self, parts: &[(String, Vec<u8>)]) -> Result<(), StateError> {
        let find = |name: &str| -> Result<&[u8], StateError> {
            parts
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, bytes)| bytes.as_slice())
                .ok_or_else(|| StateError::Missing(name.to_string()))
        };
        let harts = self.harts.len();
        let counters: Counters = decode("machine", find("machine")?)?;
        same_len("machine", "hart states", counters.hart_states.len(), harts)?;
        let mut arch = Vec::with_capacity(harts);
        for id in 0..harts {
            let name = format!("hart {id}");
            let state: ArchState = decode(&name, find(&name)?)?;
            check_hart(&name, &state)?;
            arch.push(state);
        }
        let b = &self.board;
        let uart: crate::devices::uart::Uart = decode("uart", find("uart")?)?;
        let clint: crate::devices::clint::Clint = decode("clint", find("clint")?)?;
        same_len(
            "clint",
            "software interrupt bits",
            clint.msip.len(),
            b.clint.msip.len(),
        )?;
        same_len(
            "clint",
            "timer compares",
            clint.mtimecmp.len(),
            b.clint.mtimecmp.len(),
        )?;
        let plic: crate::devices::plic::Plic = decode("plic", find("plic")?)?;
        same_len(
            "plic",
            "priorities",
            plic.priority.len(),
            b.plic.priority.len(),
        )?;
        same_len("plic", "contexts", plic.enable.len(), b.plic.enable.len())?;
        same_len(
            "plic",
            "thresholds",
            plic.threshold.len(),
            b.plic.threshold.len(),
        )?;
        let rtc: crate::devices::rtc::GoldfishRtc = decode("rtc", find("rtc")?)?;
        let finisher: crate::devices::finisher::Finisher = decode("finisher", find("finisher")?)?;
        let mut virtio = Vec::new();
        for slot in &b.virtio.slots {
            let name = format!("virtio {}", slot.slot);
            let (transport, device): (crate::virtio::mmio::TransportState, SavedDevice) =
                decode(&name, find(&name)?)?;
            if device.kind() != device_kind(&slot.device) {
                return Err(mismatch(
                    &name,
                    format!(
                        "it is a {} device where this machine has a {} device",
                        device.kind(),
                        device_kind(&slot.device)
                    ),
                ));
            }
            same_len(
                &name,
                "queues",
                transport.queues.len(),
                slot.state.queues.len(),
            )?;
            for (q, (restored, fresh)) in
                transport.queues.iter().zip(&slot.state.queues).enumerate()
            {
                if restored.max_size != fresh.max_size {
                    return Err(mismatch(
                        &name,
                        format!("queue {q} has another maximum size"),
                    ));
                }
            }
            if let (SavedDevice::Blk(saved), Device::Blk(d)) = (&device, &slot.device) {
                if saved.capacity != d.state.capacity || saved.index != d.state.index {
                    return Err(mismatch(&name, "the disk has another size".to_string()));
                }
            }
            virtio.push((transport, device));
        }
        let known = |name: &str| {
            name == "machine"
                || ["uart", "clint", "plic", "rtc", "finisher"].contains(&name)
                || (0..harts).any(|id| name == format!("hart {id}"))
                || b.virtio
                    .slots
                    .iter()
                    .any(|s| name == format!("virtio {}", s.slot))
        };
        if let Some((name, _)) = parts
            .iter()
            .find(|(n, _)| !known(n) && !n.starts_with("host:"))
        {
            return Err(StateError::Unexpected(name.clone()));
        }
        // Everything fits: replace.
        self.round_start = counters.round_start;
        self.rounds = counters.rounds;
        self.resets = counters.resets;
        self.retired_before_reset = counters.retired_before_reset;
        self.states = counters.hart_states;
        self.harts = arch
            .iter()
            .enumerate()
            .map(|(id, state)| Hart::from_arch_state(id, state))
            .collect();
        let b = &mut self.board;
        b.uart = uart;
        b.clint = clint;
        b.plic = plic;
        b.rtc = rtc;
        b.finisher = finisher;
        for (slot, (transport, device)) in b.virtio.slots.iter_mut().zip(virtio) {
            slot.state = transport;
            match (&mut slot.device, device) {
                (Device::Blk(d), SavedDevice::Blk(s)) => d.state = s,
                (Device::Net(d), SavedDevice::Net(s)) => *d = s,
                (Device::Console(d), SavedDevice::Console(s)) => *d = s,
                (Device::Rng(d), SavedDevice::Rng(s)) => *d = s,
                _ => unreachable!("kinds were checked above"),
            }
        }
        self.after_input();
        Ok(())
    }
}

/// What the executor assumes of a hart's state.
fn check_hart(part: &str, state: &ArchState) -> Result<(), StateError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::blk::MemDisk;
    use crate::virtio::VirtioConfig;
    use crate::{Firmware, MachineConfig};

    /// A machine with every kind of device, two harts, and a program that
    /// counts in a register and stores the count to RAM.
    fn machine() -> Machine {
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
            kernel: Some(crate::KernelImage::Flat(program)),
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
        Machine::with_disks(config, vec![Box::new(disk)]).unwrap()
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
        let mut x0 = advanced().harts[0].arch_state();
        x0.x[0] = 1;
        let e = target
            .restore_state(&with("hart 0", encode(&x0)))
            .unwrap_err();
        assert!(e.to_string().contains("x0"), "{e}");
    }
}

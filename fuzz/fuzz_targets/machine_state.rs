//! A snapshot's component states come from a file, so they are untrusted: a
//! damaged or hostile one must be refused with an error or, if it decodes and
//! fits, give a machine that runs without panicking the host.
//!
//! The target saves the state of a small machine (two harts running a loop
//! that stores to RAM, every kind of virtio device), replaces one component
//! with the fuzzer's bytes (or flips bits of it, which reaches the values
//! inside a well-formed encoding), restores, and runs a few rounds.
//!
//! Input layout: byte 0 picks the component; byte 1 picks the mode (even:
//! replace it with the rest of the input; odd: XOR the rest into it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_machine::virtio::blk::MemDisk;
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::virtio::VirtioConfig;
use rewind_machine::{Firmware, KernelImage, Machine, MachineConfig};

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
        kernel: Some(KernelImage::Flat(program.into())),
        initrd: None,
        bootargs: String::new(),
        rtc_epoch_ns: 0,
        seed: 1,
        virtio: VirtioConfig {
            net_macs: vec![[2, 0, 0, 0, 0, 1]],
            hvc: true,
            rng: Some(Entropy::Seeded),
        },
    };
    let disk = MemDisk {
        bytes: vec![0; 4096],
        read_only: false,
    };
    Machine::with_disks(config, vec![Box::new(disk)]).expect("the machine builds")
}

fuzz_target!(|data: &[u8]| {
    let [which, mode, rest @ ..] = data else {
        return;
    };
    let mut source = machine();
    for _ in 0..2 {
        source.run_round();
    }
    let mut parts = source.save_state();
    let index = *which as usize % parts.len();
    let bytes = &mut parts[index].1;
    if mode % 2 == 0 {
        *bytes = rest.to_vec();
    } else {
        for (b, x) in bytes.iter_mut().zip(rest) {
            *b ^= x;
        }
    }
    let mut target = machine();
    if target.restore_state(&parts).is_ok() {
        for _ in 0..3 {
            target.run_round();
        }
        let _ = target.state_hash();
    }
});

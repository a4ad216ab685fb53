//! In-memory checkpoints: restoring one gives back exactly the state it
//! saved, wherever the machine went since; they share unchanged pages; and
//! their memory stays under the cap.

use rewind_machine::virtio::VirtioConfig;
use rewind_machine::{Firmware, KernelImage, Machine, MachineConfig, Round};
use rewind_session::build::DiskBackend;
use rewind_session::Checkpoints;

/// Two harts, each adding one to a counter and storing it over a 64 KiB
/// window of RAM, a different page every 512 stores, for ever.
fn machine() -> Machine {
    Machine::new(config()).expect("a small machine")
}

fn config() -> MachineConfig {
    // Bytes 16..24 of a flat image are read as a Linux Image's size, so
    // the program jumps over a header of zeros.
    let mut words = vec![0x0200_006fu32]; // j start
    words.extend([0; 7]);
    words.extend([
        0x0001_02b7u32, // start: lui t0, 0x10   (t0 = 64 KiB: the window)
        0x0010_0337,    // lui t1, 0x100         (t1 = 1 MiB: its offset)
        0x0000_0397,    // auipc t2, 0
        0x00c3_d393,    // srli t2, t2, 12
        0x00c3_9393,    // slli t2, t2, 12       (t2 = this page)
        0x0063_83b3,    // add t2, t2, t1        (t2 = the window)
        0x0000_0e13,    // li t3, 0              (t3 = offset in the window)
        0x0010_0e93,    // li t4, 1              (t4 = counter)
        0x01c3_8f33,    // loop: add t5, t2, t3
        0x01df_3023,    // sd t4, 0(t5)
        0x001e_8e93,    // addi t4, t4, 1
        0x008e_0e13,    // addi t3, t3, 8
        0xfe5e_48e3,    // blt t3, t0, loop
        0x0000_0e13,    // li t3, 0
        0xfe9f_f06f,    // j loop
    ]);
    let program: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    MachineConfig {
        mem_size: 4 << 20,
        harts: 2,
        firmware: Firmware::None,
        kernel: Some(KernelImage::Flat(program.into())),
        initrd: None,
        bootargs: String::new(),
        rtc_epoch_ns: 0,
        seed: 1,
        virtio: VirtioConfig::default(),
    }
}

fn run_to(m: &mut Machine, position: u64) {
    while m.run_round_until(Some(position)) != Round::Paused {}
}

#[test]
fn restoring_a_checkpoint_gives_back_its_exact_state() {
    let mut m = machine();
    let mut checkpoints = Checkpoints::new(usize::MAX);
    let mut saved = Vec::new();
    for position in [0u64, 1, 9_999, 25_003, 40_000, 123_457] {
        run_to(&mut m, position);
        checkpoints.take(&mut m, position).expect("take");
        saved.push((position, m.state_hash()));
    }
    run_to(&mut m, 200_000);
    let end = m.state_hash();
    // In any order, from anywhere.
    for &(position, hash) in saved.iter().rev().chain(saved.iter()) {
        checkpoints.restore(&mut m, position).expect("restore");
        assert_eq!(m.position(), position);
        assert_eq!(m.state_hash(), hash, "the checkpoint at {position}");
    }
    // And the machine goes on from one as the original did.
    checkpoints.restore(&mut m, 25_003).expect("restore");
    run_to(&mut m, 200_000);
    assert_eq!(m.state_hash(), end);
}

#[test]
fn checkpoints_share_the_pages_nobody_wrote() {
    let mut m = machine();
    let mut checkpoints = Checkpoints::new(usize::MAX);
    run_to(&mut m, 1_000);
    checkpoints.take(&mut m, 1_000).expect("take");
    let first = checkpoints.used();
    // 20 000 steps store to about 5 pages of the window.
    run_to(&mut m, 21_000);
    checkpoints.take(&mut m, 21_000).expect("take");
    let second = checkpoints.used() - first;
    let page_table = 1024 * std::mem::size_of::<usize>() * 2;
    assert!(
        second < 16 * 4096 + page_table + 64 * 1024,
        "the second checkpoint costs {second} bytes"
    );
}

#[test]
fn past_the_cap_far_checkpoints_go_first_and_the_ends_stay() {
    let mut m = machine();
    let cap = 600 * 1024;
    let mut checkpoints = Checkpoints::new(cap);
    for i in 0..40u64 {
        let position = i * 20_000;
        run_to(&mut m, position);
        checkpoints.take(&mut m, position).expect("take");
        assert!(checkpoints.used() <= cap || checkpoints.len() <= 2);
    }
    let positions: Vec<u64> = checkpoints.positions().collect();
    assert_eq!(positions.first(), Some(&0), "the first stays");
    assert_eq!(positions.last(), Some(&780_000), "the last stays");
    assert!(positions.len() < 40, "some were dropped: {positions:?}");
    // Denser near where the user is (the end) than far from it.
    let near = positions.iter().filter(|&&p| p >= 600_000).count();
    let far = positions.iter().filter(|&&p| p > 0 && p < 180_000).count();
    assert!(near > far, "{positions:?}");
    // Every one left still restores exactly.
    let last = *positions.last().unwrap();
    let hash = m.state_hash();
    checkpoints.restore(&mut m, positions[1]).expect("restore");
    checkpoints.restore(&mut m, last).expect("restore");
    assert_eq!(m.state_hash(), hash);
}

#[test]
fn a_dropped_checkpoint_frees_its_own_pages_and_the_others_still_restore() {
    let mut m = machine();
    let mut checkpoints = Checkpoints::new(usize::MAX);
    let mut hashes = Vec::new();
    for position in [0u64, 30_000, 60_000] {
        run_to(&mut m, position);
        checkpoints.take(&mut m, position).expect("take");
        hashes.push((position, m.state_hash()));
    }
    let before = checkpoints.used();
    checkpoints.drop_at(30_000);
    assert!(checkpoints.used() < before);
    checkpoints.drop_at(0);
    assert_eq!(
        checkpoints.positions().collect::<Vec<_>>(),
        [0, 60_000],
        "the first stays"
    );
    for (position, hash) in [hashes[2], hashes[0]] {
        checkpoints.restore(&mut m, position).expect("restore");
        assert_eq!(m.state_hash(), hash);
    }
}

/// Going back and taking checkpoints on a second path makes checkpoints
/// that are not neighbours share pages; dropping and thinning must still
/// count what stays held.
#[test]
fn the_count_of_memory_held_stays_true_across_restores_and_drops() {
    let mut m = machine();
    let mut checkpoints = Checkpoints::new(usize::MAX);
    for position in [0u64, 20_000, 40_000] {
        run_to(&mut m, position);
        checkpoints.take(&mut m, position).expect("take");
    }
    checkpoints.restore(&mut m, 0).expect("restore");
    for position in [10_000u64, 30_000, 50_000] {
        run_to(&mut m, position);
        checkpoints.take(&mut m, position).expect("take");
    }
    for drop in [20_000u64, 10_000, 40_000] {
        checkpoints.drop_at(drop);
        assert!(
            checkpoints.used() >= checkpoints.pages_held(),
            "after dropping {drop}: counted {} bytes, {} held",
            checkpoints.used(),
            checkpoints.pages_held()
        );
    }
}

/// The machine of the other tests with a 1 MiB disk image (each 4 KiB
/// block starting with its index) behind an overlay in `dir`.
fn machine_with_disk(dir: &std::path::Path) -> Machine {
    let image = dir.join("disk.img");
    let bytes: Vec<u8> = (0..256u32)
        .flat_map(|block| {
            let mut b = vec![0u8; 4096];
            b[..4].copy_from_slice(&block.to_le_bytes());
            b
        })
        .collect();
    std::fs::write(&image, bytes).unwrap();
    let spec = rewind_disk::DiskSpec::parse(image.to_str().unwrap()).unwrap();
    let disk = rewind_disk::Disk::open_in(&spec, dir).expect("opening the image");
    Machine::with_disks(config(), vec![Box::new(DiskBackend::new(disk))]).expect("a machine")
}

/// The guest-visible bytes of disk 0.
fn disk_bytes(m: &mut Machine) -> Vec<u8> {
    let disk = m.disk_mut(0).expect("a disk");
    let mut bytes = vec![0u8; disk.size() as usize];
    disk.read_at(0, &mut bytes).expect("reading the disk");
    bytes
}

/// Writes as virtio-blk does (through the backend): the seeding of a
/// writer, in `len` bytes at `offset`.
fn write_disk(m: &mut Machine, offset: u64, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    m.disk_mut(0)
        .expect("a disk")
        .write_at(offset, &data)
        .expect("writing");
}

/// A disk goes back with the machine: blocks written since, blocks first
/// written since (which read as the image again), blocks written only on
/// another path, in any order of restores, and the machine runs on.
#[test]
fn restoring_a_checkpoint_puts_its_disk_back() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut m = machine_with_disk(dir.path());
    let mut checkpoints = Checkpoints::new(usize::MAX);
    let mut saved = Vec::new();
    // The first checkpoint after some writes already: it holds the
    // overlay as it was then.
    write_disk(&mut m, 4096 * 3, 5000, 1);
    for (i, position) in [0u64, 10_000, 20_000, 30_000].into_iter().enumerate() {
        run_to(&mut m, position);
        checkpoints.take(&mut m, position).expect("take");
        saved.push((position, m.state_hash(), disk_bytes(&mut m)));
        // Parts of blocks, whole blocks, blocks written before and not.
        write_disk(&mut m, 4096 * (3 + 7 * i as u64) + 100, 9000, 2 + i as u8);
        write_disk(&mut m, 4096 * 200, 4096, 40 + i as u8);
    }
    let end = (m.state_hash(), disk_bytes(&mut m));
    for (position, hash, bytes) in saved.iter().rev().chain(saved.iter()) {
        checkpoints.restore(&mut m, *position).expect("restore");
        assert_eq!(m.state_hash(), *hash, "the checkpoint at {position}");
        assert!(disk_bytes(&mut m) == *bytes, "disk at {position}");
    }
    // Another path from 10 000, writing elsewhere, then back to each.
    checkpoints.restore(&mut m, 10_000).expect("restore");
    write_disk(&mut m, 4096 * 100, 8192, 99);
    run_to(&mut m, 15_000);
    checkpoints.take(&mut m, 15_000).expect("take");
    write_disk(&mut m, 4096 * 120, 100, 98);
    for (position, _, bytes) in saved.iter().rev() {
        checkpoints.restore(&mut m, *position).expect("restore");
        assert!(
            disk_bytes(&mut m) == *bytes,
            "disk at {position} after another path"
        );
    }
    // From the last checkpoint, the same writes give the same end.
    checkpoints.restore(&mut m, 30_000).expect("restore");
    write_disk(&mut m, 4096 * (3 + 7 * 3) + 100, 9000, 5);
    write_disk(&mut m, 4096 * 200, 4096, 43);
    assert_eq!((m.state_hash(), disk_bytes(&mut m)), end);
    assert!(checkpoints.used() >= checkpoints.pages_held());
}

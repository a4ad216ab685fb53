//! Round trips, chains, damage detection and determinism of snapshot files.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

use rewind_snapshot::{
    reseal, write_snapshot, ApplyOptions, Pages, Snapshot, SnapshotChain, SnapshotError,
    SnapshotId, SnapshotWriter, FORMAT_VERSION, PAGE_SIZE,
};

const P: usize = PAGE_SIZE;

/// A small deterministic generator (xorshift), so tests need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// RAM of `pages` pages: mostly zero, some random, some text-like, some
/// copies of a few common pages.
fn mixed_ram(pages: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut ram = vec![0u8; pages * P];
    let mut common = vec![0u8; 4 * P];
    rng.fill(&mut common);
    for p in 0..pages {
        let page = &mut ram[p * P..(p + 1) * P];
        match rng.next() % 10 {
            0..=5 => {}
            6 => rng.fill(page),
            7 => {
                for (i, b) in page.iter_mut().enumerate() {
                    *b = b"the quick brown fox jumps over the lazy dog\n"[(i + p) % 44];
                }
                page[..8].copy_from_slice(&(p as u64).to_le_bytes());
            }
            _ => {
                let c = (rng.next() % 4) as usize;
                page.copy_from_slice(&common[c * P..(c + 1) * P]);
            }
        }
    }
    ram
}

fn components() -> Vec<(String, Vec<u8>)> {
    vec![
        ("hart0".to_string(), (0..200u8).collect()),
        ("uart".to_string(), b"uart state".to_vec()),
        ("empty".to_string(), Vec::new()),
    ]
}

fn full(ram: &[u8]) -> (Vec<u8>, SnapshotId) {
    let mut file = Vec::new();
    let id = write_snapshot(&mut file, &components(), ram, Pages::All).unwrap();
    (file, id)
}

fn incremental(ram: &[u8], parent: SnapshotId, dirty: &[usize]) -> (Vec<u8>, SnapshotId) {
    let mut file = Vec::new();
    let id = write_snapshot(
        &mut file,
        &components(),
        ram,
        Pages::Dirty {
            parent,
            pages: dirty,
        },
    )
    .unwrap();
    (file, id)
}

fn read(file: &[u8], name: &str) -> Snapshot {
    Snapshot::from_bytes(file.to_vec(), name).unwrap()
}

fn restore(snapshot: &Snapshot) -> Vec<u8> {
    let mut ram = vec![0u8; snapshot.ram_size() as usize];
    snapshot.apply_pages(&mut ram).unwrap();
    ram
}

#[test]
fn full_snapshot_round_trips_ram_and_components() {
    let ram = mixed_ram(300, 1);
    let (file, id) = full(&ram);
    let snap = read(&file, "full.rws");
    assert_eq!(snap.id(), id);
    assert_eq!(snap.parent(), None);
    assert_eq!(snap.ram_size(), ram.len() as u64);
    assert!(restore(&snap) == ram);
    let got: Vec<(&str, &[u8])> = snap.components().collect();
    let want = components();
    assert_eq!(got.len(), want.len());
    for ((gn, gd), (wn, wd)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert_eq!(gd, wd);
    }
    assert_eq!(snap.component("uart"), Some(&b"uart state"[..]));
    assert_eq!(snap.component("nope"), None);
}

#[test]
fn full_snapshot_lists_only_non_zero_pages_and_zeroes_the_rest() {
    let mut ram = vec![0u8; 64 * P];
    ram[5 * P] = 1;
    ram[63 * P + 100] = 2;
    let (file, _) = full(&ram);
    let snap = read(&file, "full.rws");
    assert_eq!(snap.page_indices().collect::<Vec<_>>(), vec![5, 63]);
    // Restoring over garbage must zero every page the snapshot leaves out.
    let mut target = vec![0xAAu8; ram.len()];
    snap.apply_pages(&mut target).unwrap();
    assert!(target == ram);
}

#[test]
fn ram_known_to_be_zero_is_not_looked_at() {
    let mut ram = vec![0u8; 64 * P];
    ram[5 * P] = 1;
    let (file, _) = full(&ram);
    let snap = read(&file, "full.rws");
    let zeroed = ApplyOptions {
        ram_is_zeroed: true,
        ..ApplyOptions::default()
    };
    let mut target = vec![0u8; ram.len()];
    snap.apply_pages_with(&mut target, zeroed).unwrap();
    assert!(target == ram);
    // The promise is taken at its word: an absent page keeps what it had.
    let mut target = vec![0xAAu8; ram.len()];
    snap.apply_pages_with(&mut target, zeroed).unwrap();
    assert_eq!(target[6 * P], 0xAA);
    assert_eq!(&target[5 * P..6 * P], &ram[5 * P..6 * P]);
}

#[test]
fn all_zero_ram_makes_a_tiny_file() {
    let ram = vec![0u8; 4096 * P];
    let (file, _) = full(&ram);
    assert!(file.len() < 600, "{} bytes for 16 MiB of zeros", file.len());
    let snap = read(&file, "zero.rws");
    assert_eq!(snap.page_indices().len(), 0);
    assert!(restore(&snap) == ram);
}

#[test]
fn incremental_chain_of_three_restores_each_state() {
    let ram0 = mixed_ram(256, 2);
    let (file0, id0) = full(&ram0);

    let mut ram1 = ram0.clone();
    let dirty1 = [3usize, 4, 5, 100, 255];
    for &p in &dirty1 {
        ram1[p * P..(p + 1) * P].fill((p % 200) as u8 + 1);
    }
    let (file1, id1) = incremental(&ram1, id0, &dirty1);

    let mut ram2 = ram1.clone();
    let dirty2 = [0usize, 4, 200];
    for &p in &dirty2 {
        Rng(p as u64 + 9).fill(&mut ram2[p * P..(p + 1) * P]);
    }
    let (file2, id2) = incremental(&ram2, id1, &dirty2);

    let s1 = read(&file1, "one.rws");
    assert_eq!(s1.parent(), Some(id0));
    assert_eq!(
        s1.page_indices().collect::<Vec<_>>(),
        vec![3, 4, 5, 100, 255]
    );
    let s2 = read(&file2, "two.rws");
    assert_eq!((s2.id(), s2.parent()), (id2, Some(id1)));

    let chain = SnapshotChain::new(vec![read(&file0, "zero.rws"), s1, s2]).unwrap();
    let mut ram = vec![0x55u8; ram0.len()];
    chain.apply_pages(&mut ram).unwrap();
    assert!(ram == ram2);
    assert_eq!(chain.head().id(), id2);

    let chain =
        SnapshotChain::new(vec![read(&file0, "zero.rws"), read(&file1, "one.rws")]).unwrap();
    chain.apply_pages(&mut ram).unwrap();
    assert!(ram == ram1);
}

#[test]
fn chain_opens_files_from_disk() {
    let dir = std::env::temp_dir().join(format!("rewind-snapshot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ram0 = mixed_ram(64, 3);
    let (file0, id0) = full(&ram0);
    let mut ram1 = ram0.clone();
    ram1[7 * P] ^= 0xFF;
    let (file1, _) = incremental(&ram1, id0, &[7]);
    let (a, b) = (dir.join("a.rws"), dir.join("b.rws"));
    std::fs::write(&a, file0).unwrap();
    std::fs::write(&b, file1).unwrap();

    let chain = SnapshotChain::open(&[&a, &b]).unwrap();
    let mut ram = vec![0u8; ram0.len()];
    chain.apply_pages(&mut ram).unwrap();
    assert!(ram == ram1);

    let missing = dir.join("missing.rws");
    let err = SnapshotChain::open(&[&a, &missing])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("could not read {}: ", missing.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_chain_on_a_base_applies_over_the_ram_the_caller_rebuilt() {
    let base_ram = mixed_ram(64, 9);
    let base = SnapshotId([5; 32]);
    let mut ram1 = base_ram.clone();
    ram1[3 * P] ^= 0xFF;
    ram1[9 * P..10 * P].fill(0);
    let (file1, id1) = incremental(&ram1, base, &[3, 9]);
    let mut ram2 = ram1.clone();
    ram2[20 * P] ^= 1;
    let (file2, _) = incremental(&ram2, id1, &[20]);
    let open = |bytes: &[u8], name: &str| Snapshot::from_bytes(bytes.to_vec(), name).unwrap();

    let chain =
        SnapshotChain::on_base(vec![open(&file1, "1.rws"), open(&file2, "2.rws")], base).unwrap();
    let mut ram = base_ram.clone();
    chain.apply_pages(&mut ram).unwrap();
    assert!(ram == ram2);

    // Another base, a full snapshot, or no base at all: refused.
    let other = SnapshotId([6; 32]);
    let err = SnapshotChain::on_base(vec![open(&file1, "1.rws")], other).unwrap_err();
    assert!(
        matches!(err, SnapshotError::WrongBase { parent, base: b, .. } if parent == base && b == other)
    );
    let (full_file, _) = full(&base_ram);
    let err = SnapshotChain::on_base(vec![open(&full_file, "f.rws")], base).unwrap_err();
    assert!(
        matches!(err, SnapshotError::FullSnapshotOnBase { .. }),
        "{err}"
    );
    let err = SnapshotChain::new(vec![open(&file1, "1.rws")]).unwrap_err();
    assert!(matches!(err, SnapshotError::MissingParent { .. }), "{err}");
}

#[test]
fn identify_reads_ids_from_the_header_alone() {
    let dir = std::env::temp_dir().join(format!("rewind-identify-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ram0 = mixed_ram(64, 5);
    let (file0, id0) = full(&ram0);
    let (file1, id1) = incremental(&ram0, id0, &[3]);
    let (a, b) = (dir.join("a.rws"), dir.join("b.rws"));
    std::fs::write(&a, &file0).unwrap();
    std::fs::write(&b, &file1).unwrap();
    assert_eq!(Snapshot::identify(&a).unwrap(), (id0, None));
    assert_eq!(Snapshot::identify(&b).unwrap(), (id1, Some(id0)));

    // Only the header is read: a file cut after it still identifies
    // (Snapshot::open then finds what is missing).
    let cut = dir.join("cut.rws");
    std::fs::write(&cut, &file1[..200]).unwrap();
    assert_eq!(Snapshot::identify(&cut).unwrap(), (id1, Some(id0)));
    assert!(Snapshot::open(&cut).is_err());

    // A damaged or short header, another file, or none: an error.
    let mut damaged = file0.clone();
    damaged[100] ^= 1;
    let short = file0[..100].to_vec();
    for (name, bytes) in [
        ("damaged", &damaged),
        ("short", &short),
        ("text", &b"hello".to_vec()),
    ] {
        let path = dir.join(format!("{name}.rws"));
        std::fs::write(&path, bytes).unwrap();
        assert!(Snapshot::identify(&path).is_err(), "{name}");
    }
    assert!(Snapshot::identify(dir.join("absent.rws")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn page_that_became_zero_is_zeroed_by_the_incremental() {
    let mut ram0 = vec![0u8; 32 * P];
    Rng(4).fill(&mut ram0[..8 * P]);
    let (file0, id0) = full(&ram0);
    let mut ram1 = ram0.clone();
    ram1[2 * P..3 * P].fill(0);
    ram1[6 * P..7 * P].fill(0);
    let (file1, _) = incremental(&ram1, id0, &[6, 2]);
    let s1 = read(&file1, "one.rws");
    assert_eq!(s1.page_indices().collect::<Vec<_>>(), vec![2, 6]);
    assert_eq!(s1.unique_page_count(), 0);
    let chain = SnapshotChain::new(vec![read(&file0, "zero.rws"), s1]).unwrap();
    let mut ram = vec![0u8; ram0.len()];
    chain.apply_pages(&mut ram).unwrap();
    assert!(ram == ram1);
}

#[test]
fn duplicate_pages_are_stored_once() {
    // Random pages do not compress, so the file size shows what is stored.
    let pages = 100;
    let mut distinct = vec![0u8; pages * P];
    Rng(5).fill(&mut distinct);
    let mut copies = vec![0u8; pages * P];
    let mut one = vec![0u8; P];
    Rng(6).fill(&mut one);
    for page in copies.chunks_mut(P) {
        page.copy_from_slice(&one);
    }
    let (distinct_file, _) = full(&distinct);
    let (copies_file, _) = full(&copies);
    assert!(distinct_file.len() > pages * P, "{}", distinct_file.len());
    assert!(
        copies_file.len() < 2 * P + 1024,
        "100 copies of one page took {} bytes",
        copies_file.len()
    );
    let snap = read(&copies_file, "copies.rws");
    assert_eq!(snap.unique_page_count(), 1);
    assert_eq!(snap.page_indices().len(), pages);
    assert!(restore(&snap) == copies);
}

/// The shape of RAM that once made the writer list a block many times over
/// (found in a four-hart Linux guest: runs of identical non-zero pages): a
/// page that completes a block of unique pages, followed by copies of it.
fn ram_where_a_block_ends_in_a_run_of_copies() -> Vec<u8> {
    let per_block = 64;
    let mut ram = vec![0u8; 4 * per_block * P];
    let mut rng = Rng(11);
    let mut p = 0;
    for _block in 0..2 {
        // per_block - 1 distinct pages, then one more repeated 40 times:
        // its first copy fills the block, the others refer to it.
        for _ in 0..per_block {
            rng.fill(&mut ram[p * P..(p + 1) * P]);
            p += 1;
        }
        for _ in 0..40 {
            ram.copy_within((p - 1) * P..p * P, p * P);
            p += 1;
        }
    }
    ram
}

#[test]
fn a_page_repeating_the_one_that_completes_a_block_is_stored_once() {
    let ram = ram_where_a_block_ends_in_a_run_of_copies();
    let listed: Vec<usize> = (0..ram.len() / P).collect();
    for threads in [1, 2, 4] {
        for pages in [Pages::All, Pages::AllOf(&listed)] {
            let mut file = Vec::new();
            SnapshotWriter::new()
                .threads(threads)
                .write(&mut file, &components(), &ram, pages)
                .unwrap();
            let snap = Snapshot::from_bytes(file.clone(), "repeats.rws")
                .unwrap_or_else(|e| panic!("{threads} threads, {pages:?}: {e}"));
            assert_eq!(snap.unique_page_count(), 128);
            assert!(restore(&snap) == ram, "{threads} threads, {pages:?}");
            // 128 random pages, stored raw: the file holds them once.
            assert!(file.len() < 129 * P, "{} bytes", file.len());
        }
        let (_, parent) = full(&vec![0u8; ram.len()]);
        let mut file = Vec::new();
        SnapshotWriter::new()
            .threads(threads)
            .write(
                &mut file,
                &components(),
                &ram,
                Pages::Dirty {
                    parent,
                    pages: &listed,
                },
            )
            .unwrap();
        let snap = Snapshot::from_bytes(file, "repeats-incremental.rws").unwrap();
        assert!(restore(&snap) == ram, "incremental, {threads} threads");
    }
}

#[test]
fn duplicates_spread_over_ram_restore_on_any_thread_count() {
    // Big enough for several threads in every phase, with copies whose first
    // use lies in another thread's share of RAM.
    let ram = mixed_ram(16384, 7);
    let writers = [1, 2, 3].map(|t| {
        let mut file = Vec::new();
        SnapshotWriter::new()
            .threads(t)
            .write(&mut file, &components(), &ram, Pages::All)
            .unwrap();
        file
    });
    assert!(
        writers[0] == writers[1] && writers[1] == writers[2],
        "thread count changed the file"
    );
    for threads in [1, 2, 3, 4] {
        let snap =
            Snapshot::from_bytes_with_threads(writers[0].clone(), "big.rws", threads).unwrap();
        let mut target = vec![0x11u8; ram.len()];
        snap.apply_pages_with(
            &mut target,
            ApplyOptions {
                threads,
                ram_is_zeroed: false,
            },
        )
        .unwrap();
        assert!(target == ram, "restored with {threads} threads");
    }

    let mut ram1 = ram.clone();
    let mut rng = Rng(8);
    let dirty: Vec<usize> = (0..3000).map(|_| (rng.next() % 16384) as usize).collect();
    for (i, &p) in dirty.iter().enumerate() {
        match i % 3 {
            0 => ram1[p * P..(p + 1) * P].fill(0),
            1 => ram1[p * P..(p + 1) * P].fill(0x42),
            _ => rng.fill(&mut ram1[p * P..(p + 1) * P]),
        }
    }
    let id0 = read(&writers[0], "big.rws").id();
    let files = [1, 3].map(|t| {
        let mut file = Vec::new();
        let pages = Pages::Dirty {
            parent: id0,
            pages: &dirty,
        };
        SnapshotWriter::new()
            .threads(t)
            .write(&mut file, &components(), &ram1, pages)
            .unwrap();
        file
    });
    assert!(
        files[0] == files[1],
        "thread count changed the incremental file"
    );
    for threads in [1, 3] {
        let chain = SnapshotChain::new(vec![
            read(&writers[0], "big.rws"),
            read(&files[0], "inc.rws"),
        ])
        .unwrap();
        let mut target = vec![0u8; ram.len()];
        chain
            .apply_pages_with(
                &mut target,
                ApplyOptions {
                    threads,
                    ram_is_zeroed: true,
                },
            )
            .unwrap();
        assert!(target == ram1, "chain restored with {threads} threads");
    }
}

#[test]
fn same_input_gives_the_same_bytes() {
    let ram = mixed_ram(500, 9);
    let (a, id_a) = full(&ram);
    let (b, id_b) = full(&ram);
    assert!(a == b);
    assert_eq!(id_a, id_b);
    // And a different machine state gives a different id.
    let mut other = ram.clone();
    other[123] ^= 1;
    assert_ne!(full(&other).1, id_a);
}

#[test]
fn dirty_list_in_any_order_with_repeats_is_the_same_snapshot() {
    let ram = mixed_ram(64, 10);
    let parent = SnapshotId([7; 32]);
    let (a, _) = incremental(&ram, parent, &[1, 2, 3, 40]);
    let (b, _) = incremental(&ram, parent, &[40, 3, 1, 2, 3, 40]);
    assert!(a == b);
}

/// A small incremental snapshot with every section non-empty, for the damage
/// tests: components, zero and data pages, a duplicate, one zstd block.
fn small_snapshot() -> Vec<u8> {
    let mut ram = vec![0u8; 16 * P];
    Rng(11).fill(&mut ram[P..2 * P]); // raw block material
    ram[3 * P..4 * P].fill(b'x'); // compressible
    ram.copy_within(3 * P..4 * P, 9 * P); // duplicate
    let mut file = Vec::new();
    let pages = Pages::Dirty {
        parent: SnapshotId([3; 32]),
        pages: &[1, 2, 3, 9, 10],
    };
    write_snapshot(
        &mut file,
        &[("cpu", &b"registers"[..]), ("rtc", &b"0"[..])],
        &ram,
        pages,
    )
    .unwrap();
    file
}

#[test]
fn truncation_at_every_offset_is_reported_as_truncation() {
    for file in [small_snapshot(), full(&mixed_ram(8, 12)).0] {
        read(&file, "ok.rws");
        for len in 0..file.len() {
            match Snapshot::from_bytes(file[..len].to_vec(), "cut.rws") {
                Err(SnapshotError::Truncated { at, missing, .. }) => {
                    assert_eq!(at, len as u64);
                    assert!(missing > 0);
                }
                other => panic!("cut at {len}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_single_byte_change_is_detected() {
    let file = small_snapshot();
    for i in 0..file.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = file.clone();
            bad[i] ^= flip;
            if let Ok(s) = Snapshot::from_bytes(bad, "flipped.rws") {
                panic!("byte {i} ^ {flip:#x} went unnoticed: {s:?}");
            }
        }
    }
}

#[test]
fn extra_bytes_at_the_end_are_reported() {
    let mut file = small_snapshot();
    let len = file.len();
    file.extend_from_slice(b"junk");
    let err = Snapshot::from_bytes(file, "long.rws")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("long.rws has 4 unexpected bytes after its end at byte {len}")
    );
}

#[test]
fn error_messages_name_the_file_and_the_place() {
    let err = |bytes: Vec<u8>| {
        Snapshot::from_bytes(bytes, "snap.rws")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(b"#!/bin/sh\n".to_vec()),
        "snap.rws is not a Rewind snapshot (bad magic at byte 0)"
    );
    assert_eq!(
        err(b"RWND".to_vec()),
        "snap.rws is cut short at byte 4 (its header needs 172 bytes more)"
    );
    assert_eq!(
        err(Vec::new()),
        "snap.rws is cut short at byte 0 (its header needs 176 bytes more)"
    );

    let file = small_snapshot();
    let mut v9 = file.clone();
    v9[8] = 9;
    assert_eq!(
        err(v9),
        "snap.rws has format version 9, but this Rewind reads versions 1 to 2"
    );

    let mut bad_header = file.clone();
    bad_header[80] ^= 1;
    assert_eq!(
        err(bad_header),
        "snap.rws is damaged: the checksum of bytes 0..176 (its header, whose checksum is its id) does not match"
    );

    let mut bad_components = file.clone();
    bad_components[180] ^= 1;
    let msg = err(bad_components);
    assert!(
        msg.starts_with("snap.rws is damaged: the checksum of bytes 176..")
            && msg.ends_with("(its component table) does not match"),
        "{msg}"
    );

    let mut bad_block = file.clone();
    let last = bad_block.len() - 1;
    bad_block[last] ^= 1;
    let msg = err(bad_block);
    assert!(msg.contains("of its page data) does not match"), "{msg}");

    let cut = file[..file.len() - 10].to_vec();
    assert_eq!(
        err(cut),
        format!(
            "snap.rws is cut short at byte {} (its page data needs 10 bytes more)",
            file.len() - 10
        )
    );
}

/// Resealing recomputes every checksum, so what is left to catch a change is
/// the parser's own rules.
fn resealed(mut file: Vec<u8>, change: impl FnOnce(&mut Vec<u8>)) -> String {
    change(&mut file);
    reseal(&mut file);
    Snapshot::from_bytes(file, "forged.rws")
        .unwrap_err()
        .to_string()
}

#[test]
fn reseal_leaves_a_valid_file_as_it_is() {
    let file = small_snapshot();
    let mut copy = file.clone();
    reseal(&mut copy);
    assert!(copy == file);
}

#[test]
fn well_sealed_files_that_break_the_rules_are_refused() {
    let file = small_snapshot();
    assert_eq!(
        resealed(file.clone(), |f| f[12] |= 2),
        "forged.rws is damaged at byte 12: its flags 0x3 include bits this Rewind does not know"
    );
    assert_eq!(
        resealed(file.clone(), |f| f[89] = 0x20),
        "forged.rws is damaged at byte 88: its page size is 8192 bytes, but Rewind's pages are 4096"
    );
    assert_eq!(
        resealed(file.clone(), |f| f[80] = 1),
        format!(
            "forged.rws is damaged at byte 80: its RAM size of {} bytes is not a non-zero multiple of 4096 up to 1099511627776",
            16 * P + 1
        )
    );
    // An incremental file with its flag cleared is a full one naming a parent.
    assert_eq!(
        resealed(file.clone(), |f| f[12] = 0),
        "forged.rws is damaged at byte 48: it is a full snapshot but names a parent"
    );
    // Trailing bytes inside the component table.
    let msg = resealed(file.clone(), |f| {
        let len = u64::from_le_bytes(f[96..104].try_into().unwrap());
        f[96..104].copy_from_slice(&(len + 1).to_le_bytes());
        f.insert(176 + len as usize, 0);
    });
    assert!(
        msg.contains("its component table has 1 unexpected bytes after its last component"),
        "{msg}"
    );
}

#[test]
fn a_chain_must_start_with_its_full_snapshot() {
    let ram = mixed_ram(16, 13);
    let (file0, id0) = full(&ram);
    let (file1, _) = incremental(&ram, id0, &[1]);
    let err = SnapshotChain::new(vec![read(&file1, "inc.rws")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("inc.rws is an incremental snapshot of {id0}; give its parent too")
    );

    let err = SnapshotChain::new(vec![read(&file0, "a.rws"), read(&file0, "b.rws")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "b.rws is a full snapshot, so it cannot follow a.rws in a chain; give it first"
    );

    assert_eq!(
        SnapshotChain::new(Vec::new()).unwrap_err().to_string(),
        "no snapshot files were given to restore"
    );
}

#[test]
fn wrong_parent_is_refused_with_both_ids() {
    let ram = mixed_ram(16, 14);
    let (file_a, id_a) = full(&ram);
    let mut other = ram.clone();
    other[0] ^= 1;
    let (_, id_b) = full(&other);
    let (inc, _) = incremental(&ram, id_b, &[0]);
    let err = SnapshotChain::new(vec![read(&file_a, "a.rws"), read(&inc, "inc.rws")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("inc.rws is an incremental snapshot of {id_b}, but the snapshot given before it, a.rws, is {id_a}")
    );
}

#[test]
fn ram_size_mismatch_is_refused() {
    let small = mixed_ram(16, 15);
    let (file_small, id_small) = full(&small);
    let big = mixed_ram(32, 15);
    let (inc, _) = incremental(&big, id_small, &[20]);
    let err = SnapshotChain::new(vec![read(&file_small, "small.rws"), read(&inc, "big.rws")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "big.rws holds {} bytes of RAM, but small.rws holds {}",
            32 * P,
            16 * P
        )
    );

    let mut wrong = vec![0u8; 8 * P];
    let err = read(&file_small, "small.rws")
        .apply_pages(&mut wrong)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "small.rws holds {} bytes of RAM, but the RAM to restore it into has {} bytes",
            16 * P,
            8 * P
        )
    );
}

#[test]
fn writer_refuses_what_it_cannot_save() {
    let ram = vec![0u8; 4 * P];
    let write = |components: &[(&str, &[u8])], ram: &[u8], pages: Pages| {
        write_snapshot(Vec::new(), components, ram, pages)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        write(&[], &ram[..100], Pages::All),
        "RAM of 100 bytes cannot be saved: it must be a non-zero multiple of 4096 bytes, at most 1099511627776"
    );
    assert_eq!(
        write(
            &[],
            &ram,
            Pages::Dirty {
                parent: SnapshotId([1; 32]),
                pages: &[4]
            }
        ),
        "page 4 is past the end of RAM, which has 4 pages"
    );
    assert_eq!(
        write(&[("a", b""), ("a", b"")], &ram, Pages::All),
        "the component name \"a\" is given twice"
    );
    assert_eq!(
        write(
            &[],
            &ram,
            Pages::Dirty {
                parent: SnapshotId([0; 32]),
                pages: &[1]
            }
        ),
        "an incremental snapshot needs its parent's id, not zeros"
    );
    let long = "n".repeat(257);
    assert!(write(&[(&long, b"")], &ram, Pages::All)
        .contains("is 257 bytes long, but names have 1 to 256"));
    assert!(write(&[("", b"")], &ram, Pages::All).contains("is 0 bytes long"));
}

#[test]
fn a_sealed_block_that_does_not_decompress_fails_to_apply() {
    let mut file = small_snapshot();
    let snap = read(&file, "ok.rws");
    assert_eq!(snap.unique_page_count(), 2); // one zstd block of two pages
    assert_eq!(block_methods(&file), vec![2]);
    // The block is the last thing in the file; fill its bytes with 0xFF,
    // which is not even a zstd frame's magic number.
    let block_len = u64::from_le_bytes(file[168..176].try_into().unwrap()) as usize;
    let start = file.len() - block_len;
    file[start..].fill(0xFF);
    reseal(&mut file);
    let snap = Snapshot::from_bytes(file, "forged.rws").unwrap();
    let mut ram = vec![0u8; snap.ram_size() as usize];
    let err = snap.apply_pages(&mut ram).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("forged.rws is damaged at byte {start}: block 0 of its page data does not decompress to 8192 bytes")
    );
}

#[test]
fn page_table_rules_are_enforced_behind_the_checksums() {
    let file = small_snapshot();
    // Its page table: 2 unique pages, 2 runs: pages 1..=3 -> [0, zero, 1],
    // pages 9..=10 -> [1, zero].
    let table = 176 + u64::from_le_bytes(file[96..104].try_into().unwrap()) as usize;
    assert_eq!(
        &file[table + 16..table + 28],
        &[1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]
    );

    let msg = resealed(file.clone(), |f| f[table + 28] = 1);
    assert_eq!(
        msg,
        format!("forged.rws is damaged at byte {}: page 1 uses unique page 1 before unique page 0 was used", table + 28)
    );
    let msg = resealed(file.clone(), |f| f[table + 40] = 4);
    assert_eq!(
        msg,
        format!(
            "forged.rws is damaged at byte {}: run 1 of its page table starts at page 4, overlapping or touching the run before it",
            table + 40
        )
    );
    let msg = resealed(file.clone(), |f| f[table + 40] = 15);
    assert!(
        msg.contains(
            "run 1 of its page table (2 pages from page 15) reaches past the last page of RAM, 15"
        ),
        "{msg}"
    );
    // A full snapshot may not list zero pages.
    let msg = resealed(file.clone(), |f| {
        f[12] = 0;
        f[48..80].fill(0);
    });
    assert!(
        msg.contains("page 2 is listed as zero, but a full snapshot lists only non-zero pages"),
        "{msg}"
    );
}

#[test]
fn a_full_snapshot_of_listed_pages_equals_one_of_all_pages() {
    // RAM whose non-zero pages are all among those listed: the file must be
    // the same as when every page is scanned, and zero pages in the list are
    // left out as in any full snapshot.
    let mut ram = vec![0u8; 16 * 4096];
    ram[3 * 4096] = 7;
    ram[9 * 4096 + 100] = 1;
    let components: [(&str, &[u8]); 1] = [("a", b"x")];
    let mut all = Vec::new();
    let mut listed = Vec::new();
    write_snapshot(&mut all, &components, &ram, Pages::All).unwrap();
    write_snapshot(&mut listed, &components, &ram, Pages::AllOf(&[9, 3, 5, 3])).unwrap();
    assert_eq!(all, listed);
}

/// The method of each block in a file, from its block table.
fn block_methods(file: &[u8]) -> Vec<u32> {
    let len = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    let table = 176 + len(96) + len(120);
    file[table..table + len(144)]
        .chunks_exact(24)
        .map(|e| u32::from_le_bytes(e[..4].try_into().unwrap()))
        .collect()
}

#[test]
fn zstd_and_raw_blocks_round_trip() {
    // Blocks of 64 pages: 0 holds 64 adjacent compressible pages (unpacked
    // straight into RAM), 1 holds 64 adjacent random ones (stored raw), and
    // 2 and 3 hold pages spread between zero pages and duplicates (unpacked
    // through a scratch buffer).
    let mut ram = vec![0u8; 1024 * P];
    for (i, page) in ram[..64 * P].chunks_mut(P).enumerate() {
        for (j, b) in page.iter_mut().enumerate() {
            *b = b"registers and page tables "[(i + j) % 26];
        }
        page[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    Rng(21).fill(&mut ram[64 * P..128 * P]);
    let spread = mixed_ram(896, 22);
    ram[128 * P..].copy_from_slice(&spread);
    let (file, id) = full(&ram);
    let snap = read(&file, "zstd.rws");
    assert_eq!((snap.format_version(), snap.id()), (FORMAT_VERSION, id));
    let methods = block_methods(&file);
    assert!(methods.len() >= 4, "{methods:?}");
    assert_eq!(&methods[..2], &[2, 0]);
    assert!(methods[2..].iter().all(|&m| m == 2), "{methods:?}");
    for threads in [1, 3] {
        let mut target = vec![0x77u8; ram.len()];
        let options = ApplyOptions {
            threads,
            ram_is_zeroed: false,
        };
        snap.apply_pages_with(&mut target, options).unwrap();
        assert!(target == ram, "restored with {threads} threads");
    }
    // Compression pays: the compressible half of the pages shrinks a lot.
    let stored = snap.unique_page_count() * P;
    assert!(file.len() < stored * 3 / 5, "{} of {stored}", file.len());
}

/// Reads a version-1 file kept under tests/data. They were written by the
/// LZ4 writer (the `fuzz_seeds` example of that time) from the RAM that
/// `v1_seed_rams` makes again.
fn v1_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/v1-{name}.rws", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The RAM of the version-1 seeds: the full snapshot's, the incremental
/// snapshot's (pages 1, 2 and 11 dirtied) and the two-block one's.
fn v1_seed_rams() -> [Vec<u8>; 3] {
    let mut ram = vec![0u8; 16 * P];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut ram[P..2 * P] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for (i, b) in ram[4 * P..5 * P].iter_mut().enumerate() {
        *b = b"snapshot "[i % 9];
    }
    ram.copy_within(4 * P..5 * P, 11 * P);
    let mut next = ram.clone();
    next[P..2 * P].fill(0);
    next[11 * P..12 * P].fill(7);
    let mut many = vec![0u8; 128 * P];
    for (i, page) in many.chunks_mut(P).take(70).enumerate() {
        page.fill(i as u8 + 1);
    }
    [ram, next, many]
}

#[test]
fn version_1_lz4_files_still_read_and_apply() {
    let [ram, next, many] = v1_seed_rams();
    let base = Snapshot::from_bytes(v1_file("full"), "v1-full.rws").unwrap();
    let inc = Snapshot::from_bytes(v1_file("incremental"), "v1-inc.rws").unwrap();
    let two = Snapshot::from_bytes(v1_file("two-blocks"), "v1-two.rws").unwrap();
    for (snap, file) in [(&base, "full"), (&inc, "incremental"), (&two, "two-blocks")] {
        assert_eq!(snap.format_version(), 1);
        let methods = block_methods(&v1_file(file));
        assert!(
            !methods.is_empty() && methods.iter().all(|&m| m == 1),
            "{methods:?}"
        );
        assert_eq!(snap.component("uart"), Some(&b"\x00\x01"[..]));
    }
    assert_eq!(inc.parent(), Some(base.id()));
    assert!(restore(&base) == ram);
    assert!(restore(&two) == many);
    let chain = SnapshotChain::new(vec![base, inc]).unwrap();
    let mut target = vec![0x5Au8; ram.len()];
    chain.apply_pages(&mut target).unwrap();
    assert!(target == next);

    // Written again, the same RAM makes a version-2 file with zstd blocks.
    let (again, _) = full(&many);
    assert_eq!(block_methods(&again), vec![2, 2]);
    assert!(restore(&read(&again, "v2.rws")) == many);
}

#[test]
fn a_damaged_lz4_block_in_a_version_1_file_fails_to_apply() {
    let mut file = v1_file("incremental");
    let block_len = u64::from_le_bytes(file[168..176].try_into().unwrap()) as usize;
    let start = file.len() - block_len;
    // 0xFF: a literal run longer than the block can hold.
    file[start..].fill(0xFF);
    reseal(&mut file);
    let snap = Snapshot::from_bytes(file, "forged.rws").unwrap();
    assert_eq!(snap.format_version(), 1);
    let mut ram = vec![0u8; snap.ram_size() as usize];
    let err = snap.apply_pages(&mut ram).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("forged.rws is damaged at byte {start}: block 0 of its page data does not decompress to 4096 bytes")
    );
}

#[test]
fn each_version_holds_only_its_own_compression() {
    // The first block entry of small_snapshot is right after its page table.
    let file = small_snapshot();
    let len = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    let entry = 176 + len(96) + len(120);
    assert_eq!(block_methods(&file), vec![2]);
    assert_eq!(
        resealed(file.clone(), |f| f[8] = 1),
        format!("forged.rws is damaged at byte {entry}: block 0 has method 2, which version 1 files do not use")
    );
    assert_eq!(
        resealed(file.clone(), |f| f[entry] = 1),
        format!("forged.rws is damaged at byte {entry}: block 0 has method 1, which version 2 files do not use")
    );
    assert_eq!(
        resealed(file.clone(), |f| f[entry] = 3),
        format!("forged.rws is damaged at byte {entry}: block 0 has an unknown method 3")
    );
    // A zstd block must save at least a byte over raw.
    let msg = resealed(file.clone(), |f| {
        f[entry + 4..entry + 8].copy_from_slice(&(2 * P as u32).to_le_bytes());
    });
    assert!(
        msg.contains("block 0 claims 8192 stored bytes, impossible for 2 pages stored with zstd"),
        "{msg}"
    );
    let mut v1 = v1_file("full");
    let entry = 176 + len_at(&v1, 96) + len_at(&v1, 120);
    v1[entry] = 2;
    reseal(&mut v1);
    let err = Snapshot::from_bytes(v1, "forged.rws")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("forged.rws is damaged at byte {entry}: block 0 has method 2, which version 1 files do not use")
    );
}

fn len_at(file: &[u8], at: usize) -> usize {
    u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize
}

#[test]
fn a_damaged_zstd_block_behind_a_valid_checksum_is_malformed_not_a_panic() {
    // Two zstd blocks, of 64 and 3 text-like pages; the last is damaged.
    let mut ram = vec![0u8; 80 * P];
    for (i, page) in ram[..67 * P].chunks_mut(P).enumerate() {
        for (j, b) in page.iter_mut().enumerate() {
            *b = b"the quick brown fox jumps over the lazy dog\n"[(i + j) % 44];
        }
        page[i * 8..i * 8 + 8].copy_from_slice(&(i as u64 * 0x0101_0101).to_le_bytes());
    }
    let (file, _) = full(&ram);
    let methods = block_methods(&file);
    assert_eq!(methods, vec![2, 2]);
    let entry = 176 + len_at(&file, 96) + len_at(&file, 120) + 24 * (methods.len() - 1);
    let block_len = u32::from_le_bytes(file[entry + 4..entry + 8].try_into().unwrap()) as usize;
    let start = file.len() - block_len;
    let unpacked = {
        let snap = read(&file, "ok.rws");
        (snap.unique_page_count() - 64 * (methods.len() - 1)) * P
    };
    let expected = format!(
        "forged.rws is damaged at byte {start}: block {} of its page data does not decompress to {unpacked} bytes",
        methods.len() - 1
    );
    let apply = |bad: Vec<u8>| {
        let snap = Snapshot::from_bytes(bad, "forged.rws").unwrap();
        let mut target = vec![0u8; snap.ram_size() as usize];
        snap.apply_pages(&mut target).map(|()| target)
    };
    // Garbage after an intact magic number and frame header.
    let mut rng = Rng(24);
    for _ in 0..50 {
        let mut bad = file.clone();
        rng.fill(&mut bad[start + 6..]);
        reseal(&mut bad);
        match apply(bad) {
            Err(e @ SnapshotError::Malformed { .. }) => assert_eq!(e.to_string(), expected),
            other => panic!("random block: {other:?}"),
        }
    }
    // Cut short by a byte (the table says one byte less), and a byte longer.
    for change in [-1i64, 1] {
        let mut bad = file.clone();
        if change < 0 {
            bad.pop();
        } else {
            bad.push(0);
        }
        let new_len = (block_len as i64 + change) as u32;
        bad[entry + 4..entry + 8].copy_from_slice(&new_len.to_le_bytes());
        let data_len = len_at(&bad, 168) as i64 + change;
        bad[168..176].copy_from_slice(&(data_len as u64).to_le_bytes());
        reseal(&mut bad);
        assert_eq!(apply(bad).unwrap_err().to_string(), expected);
    }
    // Every byte of the block changed in turn: either it still unpacks (a
    // change in a literal) to RAM of the right size, or it is Malformed.
    let mut refused = 0;
    for i in start..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x5A;
        reseal(&mut bad);
        match apply(bad) {
            Ok(target) => assert_eq!(target.len(), ram.len()),
            Err(e @ SnapshotError::Malformed { .. }) => {
                assert_eq!(e.to_string(), expected);
                refused += 1;
            }
            Err(other) => panic!("byte {i}: {other:?}"),
        }
    }
    assert!(refused > 0);
}

#[test]
fn the_fuzz_seeds_are_valid_snapshots() {
    // fuzz/corpus/snapshot, written by the fuzz_seeds example: each seed as
    // it is, and behind one mode byte that makes the target reseal it.
    let dir = format!("{}/../../fuzz/corpus/snapshot", env!("CARGO_MANIFEST_DIR"));
    let mut seen = [0; 3]; // version 1, version 2, resealed
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let mut bytes = std::fs::read(&path).unwrap();
        if name.ends_with("-resealed") {
            bytes.remove(0);
            let before = bytes.clone();
            reseal(&mut bytes);
            assert!(bytes == before, "{name} is not sealed already");
            seen[2] += 1;
        }
        let snap = Snapshot::from_bytes(bytes, &name).unwrap();
        let version = if name.starts_with("seed-v1-") { 1 } else { 2 };
        assert_eq!(snap.format_version(), version, "{name}");
        seen[version as usize - 1] += 1;
        if !snap.is_incremental() {
            restore(&snap);
        }
    }
    assert!(seen.iter().all(|&n| n >= 2), "{seen:?}");
}

//! Writes the seed corpus of the `snapshot` fuzz target:
//!
//!     cargo run -p rewind-snapshot --example fuzz_seeds -- fuzz/corpus/snapshot
//!
//! Small valid snapshots (each under 8 KiB) that between them use every part
//! of the format, each once as it is and once behind the mode byte that makes
//! the target reseal its input (see fuzz/fuzz_targets/snapshot.rs). Besides
//! the snapshots this crate writes (zstd and raw blocks), it copies the
//! version-1 files kept for the tests (LZ4 blocks), as `seed-v1-*`: the
//! reader still takes them, so the fuzzer should reach that path too.

use std::path::PathBuf;

use rewind_snapshot::{write_snapshot, Pages, PAGE_SIZE};

const P: usize = PAGE_SIZE;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz_seeds DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let components = [("hart0", &b"pc=0x80000000"[..]), ("uart", &b"\x00\x01"[..])];

    // 16 pages: one incompressible (a raw block), one of text, a duplicate.
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
    let mut full = Vec::new();
    let id = write_snapshot(&mut full, &components, &ram, Pages::All).unwrap();

    // Pages 1 and 11 dirtied: one now zero, one changed; page 2 listed unchanged.
    let mut next = ram.clone();
    next[P..2 * P].fill(0);
    next[11 * P..12 * P].fill(7);
    let mut incremental = Vec::new();
    let pages = Pages::Dirty {
        parent: id,
        pages: &[1, 2, 11],
    };
    write_snapshot(&mut incremental, &components, &next, pages).unwrap();

    // One random page alone: a raw block.
    let mut raw = vec![0u8; 16 * P];
    raw[7 * P..8 * P].copy_from_slice(&ram[P..2 * P]);
    let mut raw_file = Vec::new();
    write_snapshot(&mut raw_file, &components, &raw, Pages::All).unwrap();

    // 70 distinct, compressible pages: more than one block of 64.
    let mut many = vec![0u8; 128 * P];
    for (i, page) in many.chunks_mut(P).take(70).enumerate() {
        page.fill(i as u8 + 1);
    }
    let mut blocks = Vec::new();
    write_snapshot(&mut blocks, &components, &many, Pages::All).unwrap();

    let v1 = |name: &str| {
        let path = format!("{}/tests/data/v1-{name}.rws", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    for (name, bytes) in [
        ("full", full),
        ("incremental", incremental),
        ("raw", raw_file),
        ("two-blocks", blocks),
        ("v1-full", v1("full")),
        ("v1-incremental", v1("incremental")),
        ("v1-two-blocks", v1("two-blocks")),
    ] {
        assert!(bytes.len() < 8192, "{name} is {} bytes", bytes.len());
        std::fs::write(dir.join(format!("seed-{name}")), &bytes).unwrap();
        let mut resealed = vec![0u8];
        resealed.extend_from_slice(&bytes);
        std::fs::write(dir.join(format!("seed-{name}-resealed")), resealed).unwrap();
    }
}

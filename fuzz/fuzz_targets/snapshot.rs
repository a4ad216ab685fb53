//! Any bytes read as a snapshot give a checked snapshot or one error, never a
//! panic; an error names the file and a place inside the bytes given; a
//! snapshot that reads restores RAM of its size, and writing that RAM again
//! gives a snapshot that restores the same RAM and components.
//!
//! Checksums would stop almost every mutation at the header, so an input that
//! does not start with the magic is taken as one mode byte (ignored, so that
//! mutations of it are harmless) and a snapshot whose checksums and id the
//! target recomputes before reading: the parsers behind the checksums then
//! see hostile bytes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_snapshot::{reseal, ApplyOptions, Pages, Snapshot, SnapshotError, SnapshotWriter};

/// Larger RAM sizes are read and checked but not restored, to keep each run
/// fast; the seeds use 64 KiB and 512 KiB.
const MAX_RESTORE: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"RWNDSNAP") {
        check(data.to_vec());
    } else if let Some((_, rest)) = data.split_first() {
        let mut bytes = rest.to_vec();
        reseal(&mut bytes);
        check(bytes);
    }
});

fn check(bytes: Vec<u8>) {
    let len = bytes.len() as u64;
    let snapshot = match Snapshot::from_bytes(bytes, "fuzz.rws") {
        Ok(s) => s,
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("fuzz.rws "), "{message}");
            assert!(!message.contains('\n'), "{message}");
            match e {
                SnapshotError::Truncated { at, missing, .. } => assert!(at == len && missing > 0),
                SnapshotError::TrailingBytes { at, extra, .. } => assert_eq!(at + extra, len),
                SnapshotError::ChecksumMismatch { start, end, .. } => {
                    assert!(start <= end && end <= len)
                }
                SnapshotError::Malformed { at, .. } => assert!(at <= len),
                SnapshotError::NotASnapshot { .. } | SnapshotError::UnsupportedVersion { .. } => {}
                other => panic!("a reader error of the wrong kind: {other}"),
            }
            return;
        }
    };
    assert!(snapshot.ram_size() > 0 && snapshot.ram_size() % 4096 == 0);
    if snapshot.ram_size() > MAX_RESTORE {
        return;
    }
    let one_thread = ApplyOptions {
        threads: 1,
        ram_is_zeroed: false,
    };
    let mut ram = vec![0xA5u8; snapshot.ram_size() as usize];
    if snapshot.apply_pages_with(&mut ram, one_thread).is_err() {
        // Only blocks that pass their checksums yet do not decompress fail here.
        return;
    }

    // Write what was restored and read it back: it must restore the same.
    let components: Vec<(&str, &[u8])> = snapshot.components().collect();
    let listed: Vec<usize> = snapshot.page_indices().map(|p| p as usize).collect();
    let pages = match snapshot.parent() {
        None => Pages::All,
        Some(parent) => Pages::Dirty {
            parent,
            pages: &listed,
        },
    };
    let mut file = Vec::new();
    SnapshotWriter::new()
        .threads(1)
        .write(&mut file, &components, &ram, pages)
        .expect("a restored snapshot writes");
    let again = Snapshot::from_bytes(file, "again.rws").expect("a written snapshot reads");
    assert_eq!(again.parent(), snapshot.parent());
    assert!(again.components().eq(snapshot.components()));
    if snapshot.is_incremental() {
        assert!(again.page_indices().eq(snapshot.page_indices()));
    }
    let mut ram_again = vec![0xA5u8; ram.len()];
    again
        .apply_pages_with(&mut ram_again, one_thread)
        .expect("a written snapshot applies");
    assert!(
        ram_again == ram,
        "the rewritten snapshot restores different RAM"
    );
}

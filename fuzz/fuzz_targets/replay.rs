//! Hostile recordings, replayed: any bytes given to `rewind replay` end in
//! one sentence or a replay that ends (diverged, cut, stopped), never a
//! panic, a hang or an allocation the input asks for.
//!
//! Checksums would stop almost every mutation before the interesting code,
//! so the target reseals the file first (rewind_replay::format::reseal):
//! mutations reach the header's configuration (and so machine building),
//! the packed images, the events and the replayer's checks. The seeds are
//! packed recordings of small bare-metal programs (fuzz/corpus/replay,
//! made by `rewind record --pack`), which replay with no file of the host.
//!
//! The harness keeps each run small: machines of at most 64 MiB and 4 harts
//! (a recording may ask for 64 GiB, which `replay` accepts and a fuzzer's
//! memory limit does not), and at most 2 M instructions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_replay::format::reseal;
use rewind_replay::RecordingReader;

const MAX_MEM: u64 = 64 << 20;
const MAX_HARTS: u32 = 4;
const MAX_INSTRUCTIONS: u64 = 2_000_000;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    reseal(&mut bytes);
    if let Ok((_, header)) = RecordingReader::open(&bytes[..]) {
        let c = &header.config;
        if c.mem_size > MAX_MEM || c.harts > MAX_HARTS {
            return;
        }
    }
    #[allow(clippy::disallowed_methods)] // names a scratch file on the host
    let path = std::env::temp_dir().join(format!("rewind-fuzz-replay-{}.rwd", std::process::id()));
    std::fs::write(&path, &bytes).expect("writing the input to a temporary file");
    match rewind::replay::replay_silently(&path, Some(MAX_INSTRUCTIONS)) {
        Ok(_) => {}
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
    }
});

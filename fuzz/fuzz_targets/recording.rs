//! Any bytes read as a recording yield frames and then the end or one error,
//! never a panic; a truncation is only ever reported inside the bytes given,
//! and whatever reads successfully writes back to the same events. Packed
//! images in a header taken from the input are unpacked and checked.
//!
//! Checksums would stop almost every mutation at the first frame, so inputs
//! that do not start with the recording magic are wrapped first: the target
//! builds the header and frames around them with correct checksums, and
//! (depending on the first byte) compresses the frame contents itself, so
//! that the header decoder, zstd and the event decoder all see hostile bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_replay::format::{read_from, FORMAT_VERSION, MAGIC};
use rewind_replay::{
    FirmwareRef, FormatError, Header, ImageRef, RecordedConfig, RecordingReader, RecordingWriter,
};

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&MAGIC) {
        check(data);
    } else if let Some((&mode, rest)) = data.split_first() {
        check(&wrap(mode, rest));
    }
});

/// The model version the target's recordings claim (any is read back).
const MODEL: u32 = 2;

/// Reads `bytes` (images, then frame by frame) and checks what the reader
/// says about them.
fn check(bytes: &[u8]) {
    let Ok((mut reader, mut header)) = RecordingReader::open(bytes) else {
        return;
    };
    let model = reader.model();
    // Packed images unpack checked, into memory bounded by the input's
    // declared sizes (the target's inputs are small).
    loop {
        let mut content = Vec::new();
        match reader.next_image(&mut content) {
            Ok(Some(image)) => assert_eq!(content.len() as u64, image.size),
            Ok(None) => break,
            Err(e) => {
                assert!(e.offset().is_some_and(|at| at <= bytes.len() as u64));
                return;
            }
        }
    }
    let mut events = Vec::new();
    loop {
        assert!(reader.offset() <= bytes.len() as u64);
        match reader.next_frame() {
            Ok(Some(frame)) => events.extend(frame),
            Ok(None) => break,
            Err(e) => {
                if let FormatError::Truncated { offset, end } = e {
                    assert!(offset < end && end == bytes.len() as u64);
                }
                assert!(e.offset().is_some_and(|at| at <= bytes.len() as u64));
                assert!(!e.to_string().is_empty());
                assert!(matches!(reader.next_frame(), Ok(None)));
                return;
            }
        }
    }
    // A readable recording survives a round trip through the writer (its
    // images left out: they are checked above).
    header.packed.clear();
    let mut writer =
        RecordingWriter::create(Vec::new(), model, &header, &mut []).expect("header writes");
    for event in &events {
        writer.push(event.clone()).expect("event writes");
    }
    let rewritten = writer.finish().expect("frames write");
    let again = read_from(&rewritten[..]).expect("rewritten recording reads");
    assert_eq!(again.header, header);
    assert_eq!(again.events, events);
}

/// A recording around `rest`: bit 0 of `mode` takes the header body from the
/// input (else a valid header is used), bit 1 compresses each frame's bytes
/// here (else they are the compressed bytes). Each part is preceded by its
/// length as one little-endian u16.
fn wrap(mode: u8, mut rest: &[u8]) -> Vec<u8> {
    let mut bytes;
    if mode & 1 != 0 {
        let body = take_part(&mut rest);
        bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&MODEL.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let preamble_crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&preamble_crc.to_le_bytes());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    } else {
        bytes = RecordingWriter::create(Vec::new(), MODEL, &header(), &mut [])
            .and_then(|writer| writer.finish())
            .expect("writing to a Vec");
    }
    while !rest.is_empty() {
        let part = take_part(&mut rest);
        let (compressed, len) = if mode & 2 != 0 {
            (
                zstd::bulk::compress(part, 1).expect("compressing a Vec"),
                part.len() as u32,
            )
        } else {
            // The part's last two bytes, times four, are the declared
            // uncompressed length.
            let (data, len) = part.split_at(part.len().saturating_sub(2));
            let len = len.iter().rev().fold(0u32, |n, &b| n << 8 | u32::from(b));
            (data.to_vec(), len * 4)
        };
        bytes.extend_from_slice(b"RWFR");
        bytes.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
        let prelude_crc = crc32fast::hash(&bytes[bytes.len() - 16..]);
        bytes.extend_from_slice(&prelude_crc.to_le_bytes());
        bytes.extend_from_slice(&compressed);
    }
    bytes
}

/// The next part of `rest`, after its u16 length; a short input gives what
/// there is.
fn take_part<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let len = match rest {
        [a, b, tail @ ..] => {
            *rest = tail;
            usize::from(u16::from_le_bytes([*a, *b]))
        }
        _ => {
            *rest = &[];
            0
        }
    };
    let (part, tail) = rest.split_at(len.min(rest.len()));
    *rest = tail;
    part
}

fn header() -> Header {
    Header {
        writer: "fuzz".into(),
        config: RecordedConfig {
            mem_size: 64 << 20,
            harts: 1,
            firmware: FirmwareRef::None,
            kernel: ImageRef {
                path: "kernel".into(),
                size: 0,
                blake3: [0; 32],
            },
            initrd: None,
            default_guest: false,
            bootargs: String::new(),
            rtc_epoch_ns: 0,
            seed: 0,
            entropy: None,
            hvc: false,
            nets: Vec::new(),
            disks: Vec::new(),
        },
        checkpoint_every: 0,
        packed: Vec::new(),
    }
}

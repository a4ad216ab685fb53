//! The recording file format: round trips, and every kind of damage a file
//! can have giving its own error that names the right byte.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

use std::io::{self, Write};

use bincode::Options;
use rewind_hart::Hart;
use rewind_replay::format::{
    read_from, FRAME_MAGIC, FRAME_PRELUDE_LEN, MAGIC, MAX_FRAME_LEN, PREAMBLE_LEN,
};
use rewind_replay::{
    read_all, Checkpoint, DiskRef, EndPhase, EntropyRef, Event, FirmwareRef, FormatError, Header,
    ImageRef, NetRef, Port, Position, RecordedConfig, Recording, RecordingReader, RecordingWriter,
};

fn header() -> Header {
    Header {
        writer: "0.1.0".into(),
        config: RecordedConfig {
            mem_size: 256 << 20,
            harts: 2,
            firmware: FirmwareRef::Builtin,
            kernel: ImageRef {
                path: "/guests/Image".into(),
                size: 23_000_000,
                blake3: [7; 32],
            },
            initrd: Some(ImageRef {
                path: "/guests/initrd.img".into(),
                size: 5_000_000,
                blake3: [9; 32],
            }),
            default_guest: true,
            bootargs: "console=ttyS0 quiet".into(),
            rtc_epoch_ns: 1_700_000_000_000_000_000,
            seed: 42,
            entropy: Some(EntropyRef::Host),
            hvc: true,
            nets: vec![NetRef {
                mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                backend: "user".into(),
            }],
            disks: vec![DiskRef {
                path: "/disks/root.img".into(),
                read_only: false,
                persist: false,
                size: 1 << 30,
                base_blake3: [3; 32],
                overlay: None,
            }],
        },
        checkpoint_every: 100_000_000,
        packed: Vec::new(),
    }
}

/// The machine model version the tests' recordings claim.
const MODEL: u32 = 7;

fn at(round: u64) -> Position {
    Position {
        round,
        icount: round * 1000 + 17,
    }
}

/// One event of every kind, at rounds from `round` on.
fn every_kind(round: u64) -> Vec<Event> {
    let mut hart = Hart::new(0, 0x8000_0000).arch_state();
    hart.x[10] = round;
    vec![
        Event::Console {
            at: at(round),
            port: Port::Serial,
            bytes: b"ls -l\r".to_vec(),
        },
        Event::Console {
            at: at(round),
            port: Port::Hvc,
            bytes: vec![0x1b, b'[', b'A'],
        },
        Event::Packet {
            at: at(round + 1),
            device: 0,
            frame: (0..=255u8).collect(),
        },
        Event::Entropy {
            at: at(round + 1),
            bytes: vec![0xa5; 64],
        },
        Event::Skip {
            at: at(round + 2),
            to_ns: round * 1_000_000,
        },
        Event::Checkpoint {
            at: at(round + 3),
            state: Checkpoint {
                guest_ns: round * 999,
                harts: vec![hart.clone(), Hart::new(1, 0x8000_0000).arch_state()],
                parts: vec![("uart".into(), 0x1234), ("clint".into(), round)],
                page_steps: vec![0, 17, 4079],
                page_hashes: vec![1, 2, 3],
                ram: 0xdead_beef,
            },
        },
    ]
}

fn end(round: u64) -> Event {
    Event::End {
        at: at(round),
        phase: EndPhase::AfterInput,
        guest_ns: 123_456_789,
        reason: "the user quit".into(),
        state_hash: [0x42; 32],
    }
}

/// A recording of `frames`, one frame each, and where each part ends: the
/// header first, then every frame.
fn write(frames: &[Vec<Event>]) -> (Vec<u8>, Vec<u64>) {
    let mut writer = RecordingWriter::create(Vec::new(), MODEL, &header(), &mut []).unwrap();
    let mut ends = vec![writer.bytes_written()];
    for frame in frames {
        for event in frame {
            writer.push(event.clone()).unwrap();
        }
        writer.flush_frame().unwrap();
        assert_eq!(writer.buffered_events(), 0);
        ends.push(writer.bytes_written());
    }
    let bytes = writer.finish().unwrap();
    assert_eq!(bytes.len() as u64, *ends.last().unwrap());
    (bytes, ends)
}

fn three_frames() -> Vec<Vec<Event>> {
    vec![every_kind(1), every_kind(10), {
        let mut last = every_kind(20);
        last.push(end(30));
        last
    }]
}

/// Every frame of `bytes`, then how reading ended.
fn read_frames(bytes: &[u8]) -> (Vec<Vec<Event>>, Result<(), FormatError>) {
    let (mut reader, _) = RecordingReader::open(bytes).unwrap();
    let mut frames = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, Ok(())),
            Err(e) => {
                // The reader stops at its first error.
                assert!(matches!(reader.next_frame(), Ok(None)));
                return (frames, Err(e));
            }
        }
    }
}

/// A frame holding `compressed` with a correct checksum.
fn frame(compressed: &[u8], len: u32) -> Vec<u8> {
    let mut bytes = FRAME_MAGIC.to_vec();
    bytes.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(compressed).to_le_bytes());
    let prelude_crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&prelude_crc.to_le_bytes());
    bytes.extend_from_slice(compressed);
    bytes
}

/// Makes a frame's prelude checksum fit its (edited) magic and lengths, as
/// a hostile file would.
fn reseal_prelude(frame: &mut [u8]) {
    let crc = crc32fast::hash(&frame[..16]);
    frame[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// A correctly framed encoding of `events`, in any order.
fn frame_of(events: &[Event]) -> Vec<u8> {
    let encoded = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .serialize(events)
        .unwrap();
    frame(
        &zstd::bulk::compress(&encoded, 3).unwrap(),
        encoded.len() as u32,
    )
}

fn header_only() -> Vec<u8> {
    write(&[]).0
}

#[test]
fn round_trip_keeps_header_and_frames() {
    let frames = three_frames();
    let (bytes, ends) = write(&frames);
    assert_eq!(&bytes[..8], b"RWNDREC\0");
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
    assert_eq!(&bytes[12..16], &MODEL.to_le_bytes());
    let (mut reader, read_header) = RecordingReader::open(&bytes[..]).unwrap();
    assert_eq!(read_header, header());
    assert_eq!(reader.offset(), ends[0]);
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(reader.next_frame().unwrap().as_ref(), Some(frame));
        assert_eq!(reader.offset(), ends[i + 1]);
    }
    assert_eq!(reader.next_frame().unwrap(), None);
    assert_eq!(reader.frames(), 3);

    let recording = read_from(&bytes[..]).unwrap();
    assert_eq!(recording.header, header());
    assert_eq!(recording.events, frames.concat());
    assert_eq!(recording.frames, 3);
    assert_eq!(recording.truncated_at, None);
    assert_eq!(recording.file_size, bytes.len() as u64);
    assert_eq!(recording.end(), Some(&end(30)));
}

#[test]
fn a_recording_with_no_frames_is_empty() {
    let bytes = header_only();
    let (frames, end) = read_frames(&bytes);
    assert!(frames.is_empty());
    assert!(end.is_ok());
    let recording = read_from(&bytes[..]).unwrap();
    assert_eq!(recording.events, vec![]);
    assert_eq!(recording.end(), None);
}

#[test]
fn flush_frame_without_events_writes_nothing() {
    let mut writer = RecordingWriter::create(Vec::new(), MODEL, &header(), &mut []).unwrap();
    let before = writer.bytes_written();
    writer.flush_frame().unwrap();
    assert_eq!(writer.bytes_written(), before);
    assert_eq!(writer.finish().unwrap(), header_only());
}

#[test]
fn large_input_is_split_into_frames_of_about_256_kib() {
    let mut writer = RecordingWriter::create(Vec::new(), MODEL, &header(), &mut []).unwrap();
    // Pseudo-random bytes, which zstd cannot shrink, so that frame sizes on
    // disk follow the input.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_byte = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 32) as u8
    };
    let events: Vec<Event> = (0..200u64)
        .map(|round| Event::Packet {
            at: at(round),
            device: 1,
            frame: (0..4096).map(|_| random_byte()).collect(),
        })
        .collect();
    let mut frames_seen = 0;
    let mut last_written = writer.bytes_written();
    for event in &events {
        writer.push(event.clone()).unwrap();
        if writer.bytes_written() != last_written {
            frames_seen += 1;
            // A frame was written: it took everything buffered.
            assert_eq!(writer.buffered_events(), 0);
            let frame_len = writer.bytes_written() - last_written;
            assert!((200 << 10..300 << 10).contains(&frame_len), "{frame_len}");
            last_written = writer.bytes_written();
        }
    }
    // 200 events of 4 KiB make 800 KiB: three full frames and a rest.
    assert_eq!(frames_seen, 3);
    assert!(writer.buffered_events() > 0);
    let bytes = writer.finish().unwrap();
    let recording = read_from(&bytes[..]).unwrap();
    assert_eq!(recording.frames, 4);
    assert_eq!(recording.events, events);
}

#[test]
fn a_cut_anywhere_keeps_the_complete_frames_before_it() {
    let frames = three_frames();
    let (bytes, ends) = write(&frames);
    for cut in 0..=bytes.len() {
        let part = &bytes[..cut];
        let cut = cut as u64;
        if cut < PREAMBLE_LEN as u64 {
            let Err(e) = RecordingReader::open(part) else {
                panic!("a {cut}-byte file opened");
            };
            assert!(
                matches!(e, FormatError::PreambleCut { offset } if offset == cut),
                "{e}"
            );
            assert!(!e.is_truncation());
            continue;
        }
        if cut < ends[0] {
            let Err(e) = RecordingReader::open(part) else {
                panic!("a {cut}-byte file opened");
            };
            assert!(
                matches!(e, FormatError::HeaderCut { offset, header_end } if offset == cut && header_end == ends[0]),
                "{e}"
            );
            assert!(!e.is_truncation());
            continue;
        }
        let complete = ends[1..].iter().filter(|&&end| end <= cut).count();
        let (read, result) = read_frames(part);
        assert_eq!(read, frames[..complete], "cut at {cut}");
        let recording = read_from(part).unwrap();
        assert_eq!(recording.events, frames[..complete].concat());
        assert_eq!(recording.frames, complete as u64);
        assert_eq!(recording.file_size, cut);
        if ends.contains(&cut) {
            // At a frame boundary the file looks complete; only the missing
            // End event tells.
            assert!(result.is_ok(), "cut at {cut}: {result:?}");
            assert_eq!(recording.truncated_at, None);
            assert_eq!(recording.end().is_some(), cut == bytes.len() as u64);
        } else {
            let e = result.unwrap_err();
            let frame_start = ends[complete];
            assert!(
                matches!(e, FormatError::Truncated { offset, end } if offset == frame_start && end == cut),
                "cut at {cut}: {e}"
            );
            assert!(e.is_truncation());
            assert_eq!(e.offset(), Some(frame_start));
            assert_eq!(recording.truncated_at, Some(frame_start));
            assert_eq!(recording.end(), None);
        }
    }
}

#[test]
fn read_all_reads_a_file_and_reports_a_cut() {
    let (bytes, ends) = write(&three_frames());
    let dir = std::env::temp_dir().join(format!("rewind-replay-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cut.rec");
    let cut = ends[2] + 5;
    std::fs::write(&path, &bytes[..cut as usize]).unwrap();
    let recording: Recording = read_all(&path).unwrap();
    assert_eq!(recording.truncated_at, Some(ends[2]));
    assert_eq!(recording.file_size, cut);
    assert_eq!(recording.frames, 2);
    assert_eq!(recording.events, three_frames()[..2].concat());

    let missing = dir.join("missing.rec");
    let e = read_all(&missing).unwrap_err();
    assert!(matches!(e, FormatError::Open { .. }));
    assert!(e.to_string().starts_with("cannot open recording "), "{e}");
    assert_eq!(e.offset(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flipped_byte_in_a_frame_names_that_frame() {
    let frames = three_frames();
    let (bytes, ends) = write(&frames);
    for (i, window) in ends.windows(2).enumerate() {
        let (start, end) = (window[0], window[1]);
        // The checksum and the compressed data: a flip is a checksum error.
        for pos in start + 12..end {
            let mut damaged = bytes.clone();
            damaged[pos as usize] ^= 0x20;
            let (read, result) = read_frames(&damaged);
            assert_eq!(read, frames[..i]);
            let e = result.unwrap_err();
            assert!(
                matches!(e, FormatError::FrameDamaged { offset } if offset == start),
                "byte {pos}: {e}"
            );
            assert_eq!(
                e.to_string(),
                format!("frame at byte {start} is damaged (checksum mismatch)")
            );
        }
        for pos in start..start + 4 {
            let mut damaged = bytes.clone();
            damaged[pos as usize] ^= 0x01;
            let e = read_frames(&damaged).1.unwrap_err();
            assert!(
                matches!(e, FormatError::BadFrameMagic { offset } if offset == start),
                "byte {pos}: {e}"
            );
        }
    }
}

#[test]
fn a_flipped_byte_in_the_header_is_a_checksum_error() {
    let bytes = header_only();
    for pos in PREAMBLE_LEN..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x80;
        let Err(e) = RecordingReader::open(&damaged[..]) else {
            panic!("opened with byte {pos} flipped");
        };
        assert!(
            matches!(e, FormatError::HeaderDamaged { offset: 24 }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "the header at byte 24 is damaged (checksum mismatch)"
        );
    }
}

#[test]
fn an_unknown_version_is_refused_naming_its_writer() {
    let mut bytes = header_only();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    let Err(e) = RecordingReader::open(&bytes[..]) else {
        panic!("opened");
    };
    assert!(matches!(
        &e,
        FormatError::OtherFormat { version: 7, writer: Some(w) } if w == "0.1.0"
    ));
    assert_eq!(
        e.to_string(),
        "the recording is in format 7, written by Rewind 0.1.0, but this Rewind reads format 2 only: replay it with the Rewind that made it"
    );
}

/// A recording in format 1 (from before this format had a machine model
/// version), as Rewind 0.1.0 wrote it.
#[test]
fn a_format_1_recording_is_refused_naming_its_writer() {
    let old = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/recording-format-1.rwd"),
    )
    .unwrap();
    let Err(e) = RecordingReader::open(&old[..]) else {
        panic!("opened");
    };
    assert!(
        matches!(&e, FormatError::OtherFormat { version: 1, writer: Some(w) } if w == "0.1.0"),
        "{e}"
    );
}

#[test]
fn a_damaged_preamble_is_damage() {
    let bytes = header_only();
    for pos in 12..PREAMBLE_LEN {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x01;
        let Err(e) = RecordingReader::open(&damaged[..]) else {
            panic!("opened with byte {pos} flipped");
        };
        assert!(
            matches!(e, FormatError::HeaderDamaged { offset: 0 }),
            "byte {pos}: {e}"
        );
    }
}

#[test]
fn the_model_version_is_read_back() {
    let bytes = header_only();
    let (reader, _) = RecordingReader::open(&bytes[..]).unwrap();
    assert_eq!(reader.model(), MODEL);
}

/// Images packed after the header come back checked, and frames after
/// them are read whether the images were read or not.
#[test]
fn packed_images_come_back_before_the_frames() {
    use rewind_replay::packed;
    let contents: [Vec<u8>; 2] = [
        b"kernel".repeat(5000),
        (0..70_000u32).map(|i| i as u8).collect(),
    ];
    let mut stored = Vec::new();
    let mut images = Vec::new();
    for content in &contents {
        let mut bytes = Vec::new();
        images.push(packed::pack(&mut &content[..], &mut bytes).unwrap());
        stored.push(bytes);
    }
    let mut h = header();
    h.packed = images.clone();
    let mut readers: Vec<&[u8]> = stored.iter().map(|b| &b[..]).collect();
    let mut dyn_readers: Vec<&mut dyn io::Read> =
        readers.iter_mut().map(|r| r as &mut dyn io::Read).collect();
    let mut writer = RecordingWriter::create(Vec::new(), MODEL, &h, &mut dyn_readers).unwrap();
    for event in every_kind(1) {
        writer.push(event).unwrap();
    }
    let bytes = writer.finish().unwrap();

    let (mut reader, header) = RecordingReader::open(&bytes[..]).unwrap();
    assert_eq!(header.packed, images);
    for content in &contents {
        let mut out = Vec::new();
        reader.next_image(&mut out).unwrap().unwrap();
        assert_eq!(&out, content);
    }
    assert!(reader.next_image(&mut Vec::new()).unwrap().is_none());
    assert_eq!(reader.next_frame().unwrap().unwrap(), every_kind(1));
    // Skipped without unpacking.
    let recording = read_from(&bytes[..]).unwrap();
    assert_eq!(recording.events, every_kind(1));
    // A damaged image is named as one, at its first byte.
    let (mut skipping, _) = RecordingReader::open(&bytes[..]).unwrap();
    skipping.skip_images().unwrap();
    let image_at = skipping.offset() as usize - stored[1].len() - stored[0].len();
    let mut damaged = bytes.clone();
    damaged[image_at + stored[0].len() / 2] ^= 0x10;
    let (mut reader, _) = RecordingReader::open(&damaged[..]).unwrap();
    let e = reader.next_image(&mut Vec::new()).unwrap_err();
    assert!(
        matches!(e, FormatError::ImageDamaged { offset, .. } if offset == image_at as u64),
        "{e}"
    );
}

#[test]
fn other_files_are_not_recordings() {
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.resize(64, 0);
    for bytes in [&elf[..], b"hello", b"RWNDREX\0and more bytes", b"\0"] {
        let Err(e) = RecordingReader::open(bytes) else {
            panic!("opened {bytes:?}");
        };
        assert!(matches!(e, FormatError::BadMagic { offset: 0 }), "{e}");
        assert_eq!(
            e.to_string(),
            "this is not a Rewind recording (bad magic at byte 0)"
        );
    }
    // The start of a recording is a cut recording, not another kind of file.
    let Err(e) = RecordingReader::open(&MAGIC[..5]) else {
        panic!("opened");
    };
    assert_eq!(
        e.to_string(),
        "the recording ends at byte 5 inside its header (a recording starts with a 24-byte preamble)"
    );
    let Err(e) = RecordingReader::open(&b""[..]) else {
        panic!("opened");
    };
    assert!(matches!(e, FormatError::PreambleCut { offset: 0 }), "{e}");
}

#[test]
fn absurd_lengths_are_refused_before_reading() {
    let mut bytes = header_only();
    bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    // With the preamble's checksum sealed over it, as a hostile file would.
    let crc = crc32fast::hash(&bytes[..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let Err(e) = RecordingReader::open(&bytes[..]) else {
        panic!("opened");
    };
    assert!(matches!(
        e,
        FormatError::HeaderTooLarge {
            offset: 16,
            len: u32::MAX
        }
    ));
    assert_eq!(
        e.to_string(),
        "the header length at byte 16 is 4294967295 bytes, more than the 1 MiB a header may hold"
    );

    let start = header_only().len() as u64;
    for (field, what) in [(4, "compressed"), (8, "uncompressed")] {
        let mut bytes = header_only();
        let mut frame = frame_of(&every_kind(1));
        frame[field..field + 4].copy_from_slice(&2_000_000_000u32.to_le_bytes());
        reseal_prelude(&mut frame);
        bytes.extend_from_slice(&frame);
        let e = read_frames(&bytes).1.unwrap_err();
        assert!(
            matches!(e, FormatError::FrameTooLarge { offset, declared: 2_000_000_000, what: w } if offset == start && w == what),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("frame at byte {start} declares 2000000000 {what} bytes, more than the 64 MiB a frame may hold")
        );
    }
    // Just over the limit, and the exact limit, which is read (and then
    // found short) rather than refused.
    let mut bytes = header_only();
    let mut over = frame_of(&every_kind(1));
    over[4..8].copy_from_slice(&(MAX_FRAME_LEN + 1).to_le_bytes());
    reseal_prelude(&mut over);
    bytes.extend_from_slice(&over);
    assert!(matches!(
        read_frames(&bytes).1,
        Err(FormatError::FrameTooLarge { .. })
    ));
    let mut bytes = header_only();
    let mut limit = frame_of(&every_kind(1));
    limit[4..8].copy_from_slice(&MAX_FRAME_LEN.to_le_bytes());
    reseal_prelude(&mut limit);
    bytes.extend_from_slice(&limit);
    assert!(read_frames(&bytes).1.unwrap_err().is_truncation());
}

#[test]
fn frames_with_valid_checksums_but_bad_content_do_not_decode() {
    let start = header_only().len() as u64;
    let good = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .serialize(&every_kind(1))
        .unwrap();
    let short = format!(
        "it decompresses to {} bytes, not the {} it declares",
        good.len(),
        good.len() + 1
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Not zstd at all.
        (frame(b"this is not zstd data", 100), "its zstd data is bad"),
        // zstd, but of more bytes than declared.
        (
            frame(
                &zstd::bulk::compress(&good, 3).unwrap(),
                good.len() as u32 - 1,
            ),
            "its zstd data is bad",
        ),
        // zstd, but of fewer bytes than declared.
        (
            frame(
                &zstd::bulk::compress(&good, 3).unwrap(),
                good.len() as u32 + 1,
            ),
            &short,
        ),
        // An event list with bytes after it.
        (
            {
                let mut trailing = good.clone();
                trailing.push(0);
                frame(
                    &zstd::bulk::compress(&trailing, 3).unwrap(),
                    trailing.len() as u32,
                )
            },
            "does not decode",
        ),
        // A list claiming far more events than it holds.
        (
            {
                let mut lying = good.clone();
                lying[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                frame(
                    &zstd::bulk::compress(&lying, 3).unwrap(),
                    lying.len() as u32,
                )
            },
            "does not decode",
        ),
        // An event kind that does not exist.
        (
            {
                let mut unknown = good.clone();
                unknown[8..12].copy_from_slice(&99u32.to_le_bytes());
                frame(
                    &zstd::bulk::compress(&unknown, 3).unwrap(),
                    unknown.len() as u32,
                )
            },
            "does not decode",
        ),
    ];
    for (frame, says) in cases {
        let mut bytes = header_only();
        bytes.extend_from_slice(&frame);
        let e = read_frames(&bytes).1.unwrap_err();
        assert!(
            matches!(e, FormatError::FrameUndecodable { offset, .. } if offset == start),
            "{e}"
        );
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("frame at byte {start} does not decode: ")),
            "{message}"
        );
        assert!(message.contains(says), "{message}");
    }
}

#[test]
fn events_out_of_order_are_refused() {
    let (mut bytes, ends) = write(&[every_kind(10)]);
    // A later frame that goes back in time.
    bytes.extend_from_slice(&frame_of(&every_kind(1)));
    let (read, result) = read_frames(&bytes);
    assert_eq!(read.len(), 1);
    let e = result.unwrap_err();
    assert!(
        matches!(e, FormatError::OutOfOrder { offset, index: 0, at, previous } if offset == ends[1] && at.round == 1 && previous.round == 13),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("frame at byte {} is out of order: its event 0 is at round 1 (instruction 1017), before the round 13 (instruction 13017) of the event preceding it", ends[1])
    );

    // And within one frame.
    let mut bytes = header_only();
    let mut events = every_kind(5);
    events.swap(2, 4);
    bytes.extend_from_slice(&frame_of(&events));
    assert!(matches!(
        read_frames(&bytes).1,
        Err(FormatError::OutOfOrder { index: 3, .. })
    ));

    // The writer does not write such a recording.
    let mut writer = RecordingWriter::create(Vec::new(), MODEL, &header(), &mut []).unwrap();
    writer.push(end(10)).unwrap();
    let e = writer.push(end(9)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(writer.buffered_events(), 1);
    // Equal positions are fine: one boundary takes many inputs.
    writer.push(end(10)).unwrap();
}

#[test]
fn garbage_after_the_last_frame_is_not_a_cut() {
    let (mut bytes, ends) = write(&three_frames());
    bytes.extend_from_slice(&[0; 40]);
    let e = read_frames(&bytes).1.unwrap_err();
    assert!(matches!(e, FormatError::BadFrameMagic { offset } if offset == ends[3]));
    assert!(!e.is_truncation());
    assert!(read_from(&bytes[..]).is_err());
}

/// Accepts `room` bytes, then fails.
struct FailingWriter {
    room: usize,
    written: Vec<u8>,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_stops_the_writer_and_leaves_a_cut_recording() {
    let header_len = header_only().len();
    let out = FailingWriter {
        room: header_len + 30,
        written: Vec::new(),
    };
    let mut writer = RecordingWriter::create(out, MODEL, &header(), &mut []).unwrap();
    for event in every_kind(1) {
        writer.push(event).unwrap();
    }
    assert!(writer.flush_frame().is_err());
    // Nothing may be appended after the partial frame.
    assert!(writer.push(end(9)).is_err());
    assert!(writer.flush_frame().is_err());
    assert!(writer.finish().is_err());
}

#[test]
fn a_partial_frame_left_by_a_failed_write_reads_as_a_cut() {
    let header_len = header_only().len();
    let mut out = FailingWriter {
        room: header_len + 30,
        written: Vec::new(),
    };
    {
        let mut writer = RecordingWriter::create(&mut out, MODEL, &header(), &mut []).unwrap();
        for event in every_kind(1) {
            writer.push(event).unwrap();
        }
        assert!(writer.flush_frame().is_err());
    }
    let recording = read_from(&out.written[..]).unwrap();
    assert_eq!(recording.truncated_at, Some(header_len as u64));
    assert!(recording.events.is_empty());
}

#[test]
fn every_error_names_a_byte() {
    let errors = [
        FormatError::Io {
            offset: 5,
            source: io::Error::other("boom"),
        },
        FormatError::BadMagic { offset: 0 },
        FormatError::PreambleCut { offset: 13 },
        FormatError::ImageCut {
            offset: 100,
            end: 120,
        },
        FormatError::ImageDamaged {
            offset: 100,
            reason: "x".into(),
        },
        FormatError::HeaderTooLarge { offset: 12, len: 9 },
        FormatError::HeaderCut {
            offset: 20,
            header_end: 300,
        },
        FormatError::HeaderDamaged { offset: 16 },
        FormatError::HeaderUndecodable {
            offset: 16,
            reason: "x".into(),
        },
        FormatError::Truncated {
            offset: 4096,
            end: 4100,
        },
        FormatError::BadFrameMagic { offset: 4096 },
        FormatError::FrameTooLarge {
            offset: 4096,
            declared: 1,
            what: "compressed",
        },
        FormatError::FrameDamaged { offset: 4096 },
        FormatError::FrameUndecodable {
            offset: 4096,
            reason: "x".into(),
        },
        FormatError::OutOfOrder {
            offset: 4096,
            index: 0,
            at: at(1),
            previous: at(2),
        },
        FormatError::Overflow { offset: u64::MAX },
    ];
    for e in errors {
        let message = e.to_string();
        let offset = e.offset().unwrap();
        assert!(message.contains(&format!("byte {offset}")), "{message}");
        // One sentence: no line breaks, no full stop inside.
        assert!(
            !message.contains('\n') && !message.contains(". "),
            "{message}"
        );
    }
    assert_eq!(
        FormatError::Truncated {
            offset: 4096,
            end: 4100
        }
        .to_string(),
        "the recording is cut short: the frame at byte 4096 is incomplete (the file ends at byte 4100), so it replays only up to byte 4096"
    );
}

#[test]
fn the_frame_prelude_is_twenty_bytes() {
    // The layout documented in format.rs, checked against what is written.
    let (bytes, ends) = write(&[every_kind(1)]);
    let start = ends[0] as usize;
    let frame = &bytes[start..];
    assert_eq!(&frame[..4], b"RWFR");
    let compressed_len = u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize;
    assert_eq!(frame.len(), FRAME_PRELUDE_LEN + compressed_len);
    let crc = u32::from_le_bytes(frame[12..16].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(&frame[20..]));
    let prelude_crc = u32::from_le_bytes(frame[16..20].try_into().unwrap());
    assert_eq!(prelude_crc, crc32fast::hash(&frame[..16]));
    let len = u32::from_le_bytes(frame[8..12].try_into().unwrap()) as usize;
    assert_eq!(
        zstd::bulk::decompress(&frame[20..], len).unwrap().len(),
        len
    );
    let header_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    assert_eq!(PREAMBLE_LEN + header_len + 4, start);
}

/// Writes the fuzz target's seed recordings; run with `--ignored` after the
/// format changes.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/recording");
    std::fs::create_dir_all(&dir).unwrap();
    let small = |round: u64| {
        vec![
            Event::Console {
                at: at(round),
                port: Port::Serial,
                bytes: b"uname -a\r".to_vec(),
            },
            Event::Skip {
                at: at(round + 1),
                to_ns: 5_000_000,
            },
        ]
    };
    let (complete, _) = write(&[small(1), vec![end(4)]]);
    let (with_checkpoint, ends) = write(&[small(1), every_kind(3)]);
    let cut = &with_checkpoint[..ends[1] as usize + 40];
    // The target wraps inputs without the magic in a header and frames of
    // its own: mode 2 takes a valid header and compresses each part, here
    // the encoded events of two frames.
    let mut wrapped = vec![2u8];
    for events in [every_kind(1), vec![end(9)]] {
        let encoded = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .serialize(&events)
            .unwrap();
        wrapped.extend_from_slice(&(encoded.len() as u16).to_le_bytes());
        wrapped.extend_from_slice(&encoded);
    }
    // With a packed image between the header and the frames.
    let content = b"a kernel".repeat(64);
    let mut stored = Vec::new();
    let image = rewind_replay::packed::pack(&mut &content[..], &mut stored).unwrap();
    let mut h = header();
    h.packed = vec![image];
    let mut writer =
        RecordingWriter::create(Vec::new(), MODEL, &h, &mut [&mut &stored[..]]).unwrap();
    for event in small(1) {
        writer.push(event).unwrap();
    }
    writer.push(end(4)).unwrap();
    let packed = writer.finish().unwrap();
    for (name, bytes) in [
        ("seed-complete", &complete[..]),
        ("seed-every-kind", &with_checkpoint[..]),
        ("seed-cut", cut),
        ("seed-wrapped-events", &wrapped[..]),
        ("seed-packed", &packed[..]),
    ] {
        assert!(bytes.len() < 4096, "{name} has {} bytes", bytes.len());
        if bytes.starts_with(&MAGIC) {
            read_from(bytes).unwrap();
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn a_damaged_frame_length_is_damage_not_a_cut() {
    let mut bytes = header_only();
    let start = bytes.len() as u64;
    let mut frame = frame_of(&every_kind(1));
    // A bit flip that makes the frame look longer than the file.
    frame[6] ^= 1;
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&frame_of(&every_kind(2)));
    let e = read_frames(&bytes).1.unwrap_err();
    assert!(
        matches!(e, FormatError::FrameDamaged { offset } if offset == start),
        "{e}"
    );
}

/// The format's rules beyond order: nothing follows the end of a run, and
/// a round has one checkpoint at most (a replay relies on both).
#[test]
fn events_after_the_end_or_a_second_checkpoint_in_a_round_are_refused() {
    let checkpoint = |round| {
        every_kind(round)
            .into_iter()
            .find(|e| matches!(e, Event::Checkpoint { .. }))
            .unwrap()
    };
    let c = checkpoint(5);
    let cases = [
        (vec![end(3), end(3)], "follows the recording's end"),
        (vec![c.clone(), c.clone()], "second checkpoint at round"),
    ];
    for (events, expected) in cases {
        let mut bytes = header_only();
        bytes.extend_from_slice(&frame_of(&events));
        let (mut reader, _) = RecordingReader::open(&bytes[..]).unwrap();
        let e = reader.next_frame().unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
        assert_eq!(e.offset(), Some(header_only().len() as u64));
    }
}

#[test]
fn reseal_leaves_a_valid_recording_as_it_is_and_seals_changed_bytes() {
    let (bytes, ends) = write(&three_frames());
    let mut copy = bytes.clone();
    rewind_replay::format::reseal(&mut copy);
    assert_eq!(copy, bytes);
    // A byte changed inside the second frame's data: damage, until resealed.
    let at = ends[1] as usize + FRAME_PRELUDE_LEN + 3;
    copy[at] ^= 0x04;
    assert!(read_from(&copy[..]).is_err());
    rewind_replay::format::reseal(&mut copy);
    let e = read_from(&copy[..]).unwrap_err();
    assert!(
        matches!(e, FormatError::FrameUndecodable { offset, .. } if offset == ends[1]),
        "{e}"
    );
    // Any bytes at all: no panic.
    for len in 0..64 {
        let mut junk: Vec<u8> = (0..len).map(|i| i as u8).collect();
        rewind_replay::format::reseal(&mut junk);
    }
}

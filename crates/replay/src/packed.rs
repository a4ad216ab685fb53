//! Files stored inside recordings and snapshots (`rewind pack`): a zstd
//! stream of the file's content, named by the BLAKE3 of that content.
//!
//! Packing and unpacking both stream, so an image of any size costs a
//! buffer, not its size in memory. Unpacking treats the stored bytes as
//! hostile: the decoder's window is bounded (a zstd frame may ask for up to
//! 2 GiB of window), the output may not exceed the declared size, and the
//! content must hash to the declared BLAKE3, so a damaged or forged image
//! is an error, never a different file.

use std::io::{self, Read, Write};

use crate::PackedImage;

/// zstd's default level: packing a Debian kernel and initramfs (about
/// 60 MB) takes well under a second, and higher levels gain little on them.
const LEVEL: i32 = 3;
/// The largest window (log2 bytes) an unpacker accepts. Level 3 writes
/// windows of at most 2 MiB; 64 MiB leaves room for other writers' choices
/// while keeping a hostile frame from reserving gigabytes.
const MAX_WINDOW_LOG: u32 = 26;

/// Compresses all of `content` into `out`; returns how it is described in
/// a header (its hash, size, and stored size).
pub fn pack(content: &mut dyn Read, out: &mut dyn Write) -> io::Result<PackedImage> {
    let mut counted = CountingWriter { inner: out, n: 0 };
    let mut encoder = zstd::stream::write::Encoder::new(&mut counted, LEVEL)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        encoder.write_all(&buf[..n])?;
        size += n as u64;
    }
    encoder.finish()?;
    Ok(PackedImage {
        blake3: *hasher.finalize().as_bytes(),
        size,
        stored: counted.n,
    })
}

/// Why an image could not be unpacked.
#[derive(Debug)]
pub enum UnpackError {
    /// Its stored bytes end before its content does.
    Cut,
    /// Its stored bytes are not the image they claim to be; says why.
    Damaged(String),
    /// Writing the content failed.
    Sink(io::Error),
}

/// Decompresses `stored` (all of the image's stored bytes and nothing
/// more) into `sink`, checking it against `image`.
pub fn unpack(
    stored: &mut dyn Read,
    image: &PackedImage,
    sink: &mut dyn Write,
) -> Result<(), UnpackError> {
    let mut decoder = zstd::stream::read::Decoder::new(stored)
        .map_err(|e| UnpackError::Damaged(format!("its decoder cannot start: {e}")))?;
    decoder
        .window_log_max(MAX_WINDOW_LOG)
        .map_err(|e| UnpackError::Damaged(format!("its decoder cannot start: {e}")))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(UnpackError::Cut),
            Err(e) => return Err(UnpackError::Damaged(format!("its zstd data is bad ({e})"))),
        };
        size += n as u64;
        if size > image.size {
            return Err(UnpackError::Damaged(format!(
                "it holds more than the {} bytes it declares",
                image.size
            )));
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n]).map_err(UnpackError::Sink)?;
    }
    if size != image.size {
        return Err(if size == 0 {
            UnpackError::Cut
        } else {
            UnpackError::Damaged(format!(
                "it holds {size} bytes, not the {} it declares",
                image.size
            ))
        });
    }
    if *hasher.finalize().as_bytes() != image.blake3 {
        return Err(UnpackError::Damaged(
            "its content does not have the BLAKE3 hash it declares".to_string(),
        ));
    }
    Ok(())
}

/// Unpacks an image whose stored bytes are all in memory (a snapshot's
/// component) into memory, checked as [`unpack`] checks.
pub fn unpack_bytes(stored: &[u8], image: &PackedImage) -> Result<Vec<u8>, UnpackError> {
    if stored.len() as u64 != image.stored {
        return Err(UnpackError::Damaged(format!(
            "it stores {} bytes where it declares {}",
            stored.len(),
            image.stored
        )));
    }
    // The declared size is checked against the stored data as it unpacks;
    // reserving it all first would let a forged size reserve memory.
    let mut out = Vec::new();
    unpack(&mut &stored[..], image, &mut out)?;
    Ok(out)
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(content: &[u8]) -> (PackedImage, Vec<u8>) {
        let mut stored = Vec::new();
        let image = pack(&mut &content[..], &mut stored).unwrap();
        (image, stored)
    }

    #[test]
    fn an_image_unpacks_to_its_content() {
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i / 7) as u8).collect();
        let (image, stored) = packed(&content);
        assert_eq!(image.size, content.len() as u64);
        assert_eq!(image.blake3, *blake3::hash(&content).as_bytes());
        assert_eq!(image.stored, stored.len() as u64);
        assert!(stored.len() < content.len() / 10);
        assert_eq!(unpack_bytes(&stored, &image).unwrap(), content);
        let (empty, stored) = packed(&[]);
        assert_eq!(unpack_bytes(&stored, &empty).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_forged_or_damaged_image_is_refused() {
        let content = b"the kernel".repeat(1000);
        let (image, stored) = packed(&content);
        let damaged = |image: PackedImage, stored: &[u8]| {
            matches!(
                unpack_bytes(stored, &image),
                Err(UnpackError::Damaged(_)) | Err(UnpackError::Cut)
            )
        };
        assert!(damaged(
            PackedImage {
                blake3: [0; 32],
                ..image
            },
            &stored
        ));
        assert!(damaged(
            PackedImage {
                size: image.size - 1,
                ..image
            },
            &stored
        ));
        assert!(damaged(
            PackedImage {
                size: image.size + 1,
                ..image
            },
            &stored
        ));
        let mut flipped = stored.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(damaged(image, &flipped));
        let cut = &stored[..stored.len() - 3];
        assert!(damaged(
            PackedImage {
                stored: cut.len() as u64,
                ..image
            },
            cut
        ));
    }
}

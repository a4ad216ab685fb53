//! Compressing and unpacking blocks of pages: zstd, which this crate writes,
//! and LZ4, which it only reads (version-1 files).
//!
//! Assumptions written down here:
//! - A block unpacks to a size known before unpacking (its page count times
//!   4096, at most 4 MiB), so every decoder writes into a buffer of exactly
//!   that size and nothing the file says decides how much memory is taken.
//! - zstd at a fixed level on one thread gives the same bytes for the same
//!   input every time, whatever the context compressed before: `compress2`
//!   starts a new frame from a reset session. The bytes may change with the
//!   zstd version, which Cargo.lock pins; a snapshot's id names its bytes,
//!   not the RAM, so that changes ids, never what a file restores.

use std::io;

use zstd::bulk::{Compressor, Decompressor};
use zstd::zstd_safe::{self, DParameter};

use crate::format::{MAX_PAGES_PER_BLOCK, PAGE_SIZE};

/// zstd's fastest regular level. On the 77 MB of distinct pages of a booted
/// 1 GiB guest (one thread, blocks of 64 pages): 32.5 MB in 98 ms, where LZ4
/// made 41.0 MB in 82-91 ms. Level 2 made 31.7 MB in 120 ms, level 3 31.2 MB
/// in 137 ms; level -1 33.7 MB in 92 ms. Blocks of 256 or 1024 pages came
/// out slightly larger at level 1, not smaller.
const ZSTD_LEVEL: i32 = 1;

/// The magic number that starts a zstd frame (RFC 8878), as stored.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The largest window a block's frame may declare: the largest block the
/// format allows, 1024 pages of 4 KiB = 4 MiB = 2^22 bytes (a frame never
/// needs a window larger than its content; this writer's frames declare
/// their content size and no window at all).
///
/// Memory is bounded without it: the one-shot decoder used here allocates
/// no window, it copies matches from the part of the destination already
/// written, and the destination is the block-sized buffer. zstd consults
/// `WindowLogMax` only when streaming, so the limit is checked here on the
/// frame header (a legal frame may declare up to 2^41 bytes); it is set on
/// the context as well, so that the context would refuse the same frames
/// if it were ever used to stream.
const ZSTD_WINDOW_LOG_MAX: u32 = 22;
const _: () = assert!(1 << ZSTD_WINDOW_LOG_MAX == MAX_PAGES_PER_BLOCK as usize * PAGE_SIZE);

/// How a block's pages are stored; the numbers are the format's methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// Method 0: the pages as they are.
    Raw,
    /// Method 1: the LZ4 block format (version 1 files).
    Lz4,
    /// Method 2: one zstd frame (version 2 files).
    Zstd,
}

impl Method {
    /// How error messages name it: "pages stored raw", "... with zstd".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Method::Raw => "raw",
            Method::Lz4 => "with LZ4",
            Method::Zstd => "with zstd",
        }
    }
}

/// Compresses blocks with zstd; each compressing thread has one, reused for
/// every block it takes, so zstd's tables are allocated once per thread.
pub(crate) struct BlockCompressor {
    zstd: Compressor<'static>,
    out: Vec<u8>,
}

impl BlockCompressor {
    pub(crate) fn new() -> io::Result<Self> {
        // No checksum flag (zstd's default): the block table holds an
        // XXH3-128 of every block's stored bytes. No dictionary.
        Ok(BlockCompressor {
            zstd: Compressor::new(ZSTD_LEVEL)?,
            out: Vec::new(),
        })
    }

    /// Compresses `src` as one zstd frame and returns it, or None if that
    /// would not be smaller than `src` (random data), which is then stored
    /// raw. The frame is valid until the next call.
    pub(crate) fn compress(&mut self, src: &[u8]) -> io::Result<Option<&[u8]>> {
        self.out.clear();
        self.out.reserve(zstd_safe::compress_bound(src.len()));
        let n = self
            .zstd
            .compress_to_buffer(src, &mut self.out)
            .map_err(|e| io::Error::other(format!("zstd compression failed: {e}")))?;
        Ok((n < src.len()).then_some(&self.out[..n]))
    }
}

/// Unpacks blocks; each restoring thread has one. The zstd context is made
/// on the first zstd block only, so raw and LZ4 files never pay for it.
#[derive(Default)]
pub(crate) struct BlockDecompressor {
    zstd: Option<Decompressor<'static>>,
}

impl BlockDecompressor {
    /// Unpacks `stored` (method `method`, not raw) into `dst`, whose length is
    /// the block's known size. Ok(false) if the bytes do not unpack to
    /// exactly `dst.len()` bytes (whatever `dst` then holds); Err only if
    /// zstd cannot make its context (out of memory).
    pub(crate) fn unpack(
        &mut self,
        method: Method,
        stored: &[u8],
        dst: &mut [u8],
    ) -> io::Result<bool> {
        match method {
            Method::Raw => {
                let fits = stored.len() == dst.len();
                if fits {
                    dst.copy_from_slice(stored);
                }
                Ok(fits)
            }
            Method::Lz4 => Ok(matches!(
                lz4_flex::block::decompress_into(stored, dst),
                Ok(n) if n == dst.len()
            )),
            Method::Zstd => {
                // Exactly one standard frame: not a legacy (pre-1.0) frame,
                // which zstd would decode with other code when built with
                // legacy support, nor a skippable frame, nor several frames.
                if !stored.starts_with(&ZSTD_MAGIC)
                    || zstd_safe::find_frame_compressed_size(stored) != Ok(stored.len())
                    || declares_too_large_a_window(stored)
                {
                    return Ok(false);
                }
                let zstd = match &mut self.zstd {
                    Some(zstd) => zstd,
                    None => {
                        let mut zstd = Decompressor::new()?;
                        zstd.set_parameter(DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX))?;
                        self.zstd.insert(zstd)
                    }
                };
                // The destination is a slice: zstd writes at most its length
                // (a frame that would need more is an error).
                Ok(matches!(
                    zstd.decompress_to_buffer(stored, dst),
                    Ok(n) if n == dst.len()
                ))
            }
        }
    }
}

/// Whether a zstd frame's header declares a window over 2^ZSTD_WINDOW_LOG_MAX
/// bytes (RFC 8878, 3.1.1.1). A single-segment frame has no window
/// descriptor: its window is its content, which must fit the block anyway.
fn declares_too_large_a_window(frame: &[u8]) -> bool {
    const SINGLE_SEGMENT: u8 = 1 << 5;
    match (frame.get(4), frame.get(5)) {
        (Some(descriptor), _) if descriptor & SINGLE_SEGMENT != 0 => false,
        (Some(_), Some(&window)) => {
            let log = 10 + u32::from(window >> 3); // at most 41
            let size = (1u64 << log) + (1u64 << log) / 8 * u64::from(window & 7);
            size > 1 << ZSTD_WINDOW_LOG_MAX
        }
        _ => true, // a header cut short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(n: usize) -> Vec<u8> {
        (0..n * PAGE_SIZE).map(|i| (i % 251) as u8 / 8).collect()
    }

    fn zstd_frame(src: &[u8]) -> Vec<u8> {
        BlockCompressor::new()
            .unwrap()
            .compress(src)
            .unwrap()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn compressed_block_unpacks_to_exactly_its_pages() {
        let src = pages(64);
        let frame = zstd_frame(&src);
        assert!(frame.len() < src.len() / 4);
        assert!(!declares_too_large_a_window(&frame));
        let mut dst = vec![0u8; src.len()];
        let mut d = BlockDecompressor::default();
        assert!(d.unpack(Method::Zstd, &frame, &mut dst).unwrap());
        assert!(dst == src);
        // One byte less or more room than the frame holds is refused.
        assert!(!d.unpack(Method::Zstd, &frame, &mut dst[1..]).unwrap());
        let mut bigger = vec![0u8; src.len() + PAGE_SIZE];
        assert!(!d.unpack(Method::Zstd, &frame, &mut bigger).unwrap());
    }

    #[test]
    fn a_compressor_gives_the_same_frame_whatever_it_did_before() {
        let (a, b) = (pages(64), pages(3));
        let fresh = zstd_frame(&a);
        let mut used = BlockCompressor::new().unwrap();
        used.compress(&b).unwrap();
        used.compress(&a).unwrap();
        assert_eq!(used.compress(&a).unwrap().unwrap(), &fresh[..]);
    }

    #[test]
    fn random_pages_are_left_raw() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let src: Vec<u8> = (0..2 * PAGE_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(BlockCompressor::new()
            .unwrap()
            .compress(&src)
            .unwrap()
            .is_none());
    }

    #[test]
    fn frames_other_than_one_standard_frame_are_refused() {
        let src = pages(2);
        let frame = zstd_frame(&src);
        let mut dst = vec![0u8; src.len()];
        let mut d = BlockDecompressor::default();
        // Two frames, each of one page, back to back.
        let half = zstd_frame(&src[..PAGE_SIZE]);
        let two = [half.clone(), half].concat();
        assert!(!d.unpack(Method::Zstd, &two, &mut dst).unwrap());
        // A skippable frame before the frame.
        let mut skip = vec![0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        skip.extend_from_slice(&frame);
        assert!(!d.unpack(Method::Zstd, &skip, &mut dst).unwrap());
        // A legacy (v0.7) magic number.
        let mut legacy = frame.clone();
        legacy[..4].copy_from_slice(&[0x27, 0xB5, 0x2F, 0xFD]);
        assert!(!d.unpack(Method::Zstd, &legacy, &mut dst).unwrap());
        // Cut short, and empty.
        assert!(!d
            .unpack(Method::Zstd, &frame[..frame.len() - 1], &mut dst)
            .unwrap());
        assert!(!d.unpack(Method::Zstd, &[], &mut dst).unwrap());
        // And the context still works after all that.
        assert!(d.unpack(Method::Zstd, &frame, &mut dst).unwrap());
        assert!(dst == src);
    }

    #[test]
    fn a_frame_declaring_a_huge_window_is_refused() {
        // A frame header by hand (RFC 8878 3.1.1.1): no single-segment flag,
        // so a window descriptor follows; exponent 21 means a 2^31-byte
        // window. Then one raw block (last) holding 8 bytes.
        let mut frame = ZSTD_MAGIC.to_vec();
        frame.push(0x00); // descriptor: no content size, no checksum, no dict
        frame.push(21 << 3); // window descriptor: 2^(10+21)
        let header = 1u32 | (8 << 3); // last block, raw, 8 bytes
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(b"abcdefgh");
        let mut dst = [0u8; 8];
        let mut d = BlockDecompressor::default();
        assert!(!d.unpack(Method::Zstd, &frame, &mut dst).unwrap());
        // Just over 4 MiB (2^22 + 2^22/8) is refused too; 4 MiB is fine,
        // and so is 1 KiB.
        frame[5] = (12 << 3) | 1;
        assert!(!d.unpack(Method::Zstd, &frame, &mut dst).unwrap());
        for window in [12 << 3, 0] {
            frame[5] = window;
            dst.fill(0);
            assert!(d.unpack(Method::Zstd, &frame, &mut dst).unwrap());
            assert_eq!(&dst, b"abcdefgh");
        }
    }
}

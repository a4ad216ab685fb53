//! virtio-rng (virtio 1.x §5.4): entropy for the guest.
//!
//! Assumptions, written down:
//! - By default the bytes come from ChaCha20 keyed by the machine's seed, so
//!   the guest's entropy is part of the configuration (the determinism
//!   contract): two runs with one seed see the same bytes.
//! - With host entropy, the device fills nothing by itself; requests wait
//!   until the embedding program offers bytes at a round boundary (an input
//!   like any other), [`Rng::wanted`] telling how many would be taken.
//! - A request gets as many bytes as its writable buffers hold; with host
//!   entropy possibly fewer (the used length says how many).

use super::queue::Writer;
use super::{DeviceError, QueueCtx};
use crate::state::{mismatch, Saved, StateError};

pub const ID: u32 = 4;
pub const QUEUE_SIZE: u16 = 64;
/// The most bytes [`Rng::wanted`] asks the host for at once.
pub const MAX_WANTED: u64 = 64 * 1024;

/// Where the bytes come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Entropy {
    /// ChaCha20 seeded from the configuration.
    #[default]
    Seeded,
    /// Bytes the host offers as inputs.
    Host,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rng {
    pub source: Entropy,
    pub generator: ChaCha20,
}

impl Rng {
    pub fn new(source: Entropy, seed: u64) -> Self {
        Rng {
            source,
            generator: ChaCha20::from_seed(seed),
        }
    }

    pub fn notify(&mut self, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        if self.source == Entropy::Host {
            return Ok(());
        }
        while let Some(chain) = ctx.pop(0)? {
            let mut writer = Writer::new(&chain.writable);
            let mut block = [0u8; 64];
            while writer.remaining() > 0 {
                let n = (writer.remaining() as usize).min(block.len());
                self.generator.fill(&mut block[..n]);
                writer.write(ctx.ram, &block[..n]);
            }
            ctx.complete(0, chain.head, writer.written().min(u32::MAX as u64) as u32)?;
        }
        Ok(())
    }

    /// How many host bytes the waiting requests would take (host entropy).
    pub fn wanted(&self, ctx: &mut QueueCtx) -> u64 {
        if self.source != Entropy::Host {
            return 0;
        }
        let Some(queue) = ctx.queues.first().filter(|q| q.ready) else {
            return 0;
        };
        // Look ahead on a copy: the real queue is untouched.
        let mut look = queue.clone();
        let mut wanted = 0u64;
        while let Ok(Some(chain)) = look.pop(ctx.ram, ctx.indirect) {
            wanted += chain.writable_len();
            if wanted >= MAX_WANTED {
                return MAX_WANTED;
            }
        }
        wanted
    }

    /// Fills waiting requests with host bytes; returns how many were used.
    pub fn receive(&mut self, ctx: &mut QueueCtx, bytes: &[u8]) -> Result<usize, DeviceError> {
        let mut taken = 0;
        while taken < bytes.len() {
            let Some(chain) = ctx.pop(0)? else {
                break;
            };
            let mut writer = Writer::new(&chain.writable);
            taken += writer.write(ctx.ram, &bytes[taken..]);
            ctx.complete(0, chain.head, writer.written() as u32)?;
        }
        Ok(taken)
    }
}

impl Saved for Rng {
    type State = Rng;

    fn saved(&self) -> Rng {
        self.clone()
    }

    /// The generator's position within its block indexes a 64-byte array.
    fn check(&self, part: &str, state: &Rng) -> Result<(), StateError> {
        if state.generator.used >= 64 {
            return Err(mismatch(
                part,
                format!(
                    "its generator has used {} bytes of a 64-byte block",
                    state.generator.used
                ),
            ));
        }
        Ok(())
    }

    fn apply(&mut self, state: Rng) {
        *self = state;
    }
}

/// The ChaCha20 block function (RFC 8439 §2.3) as a stream generator with a
/// 64-bit block counter. The state is the key and a position, so it
/// serializes small and restores exactly.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChaCha20 {
    pub key: [u32; 8],
    pub nonce: [u32; 2],
    /// The block the next byte comes from.
    pub block: u64,
    /// Bytes of that block already used (0..64).
    pub used: u8,
}

const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ChaCha20 {
    /// A generator keyed from `seed` (through splitmix64, with a constant
    /// that keeps it apart from the device tree's rng-seed).
    pub fn from_seed(seed: u64) -> Self {
        let mut state = seed ^ 0x7669_7274_696f_726e; // "virtiorn"
        let mut key = [0u32; 8];
        for pair in key.chunks_mut(2) {
            let v = splitmix64(&mut state);
            pair[0] = v as u32;
            pair[1] = (v >> 32) as u32;
        }
        ChaCha20 {
            key,
            nonce: [0; 2],
            block: 0,
            used: 0,
        }
    }

    /// The 64-byte keystream block number `counter`.
    pub fn keystream(&self, counter: u64) -> [u8; 64] {
        let mut init = [0u32; 16];
        init[..4].copy_from_slice(&SIGMA);
        init[4..12].copy_from_slice(&self.key);
        init[12] = counter as u32;
        init[13] = (counter >> 32) as u32;
        init[14] = self.nonce[0];
        init[15] = self.nonce[1];
        let mut x = init;
        fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(16);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(12);
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(8);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(7);
        }
        for _ in 0..10 {
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 1, 5, 9, 13);
            quarter(&mut x, 2, 6, 10, 14);
            quarter(&mut x, 3, 7, 11, 15);
            quarter(&mut x, 0, 5, 10, 15);
            quarter(&mut x, 1, 6, 11, 12);
            quarter(&mut x, 2, 7, 8, 13);
            quarter(&mut x, 3, 4, 9, 14);
        }
        let mut out = [0u8; 64];
        for (i, chunk) in out.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&x[i].wrapping_add(init[i]).to_le_bytes());
        }
        out
    }

    /// Fills `out` with the next keystream bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let block = self.keystream(self.block);
            let start = self.used as usize;
            let n = (64 - start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&block[start..start + n]);
            done += n;
            if start + n == 64 {
                self.block = self.block.wrapping_add(1);
                self.used = 0;
            } else {
                self.used = (start + n) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha20_block_matches_rfc8439() {
        // RFC 8439 §2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00,
        // block counter 1. Our 64-bit counter is words 12-13 and the nonce
        // words 14-15, so the RFC's 96-bit nonce's first word goes in the
        // counter's high half.
        let mut key = [0u32; 8];
        for (i, k) in key.iter_mut().enumerate() {
            let b = 4 * i as u32;
            *k = u32::from_le_bytes([b as u8, b as u8 + 1, b as u8 + 2, b as u8 + 3]);
        }
        let g = ChaCha20 {
            key,
            nonce: [0x4a00_0000, 0],
            block: 0,
            used: 0,
        };
        let out = g.keystream(1 | (0x0900_0000u64 << 32));
        assert_eq!(
            &out[..16],
            &[
                0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20,
                0x71, 0xc4
            ]
        );
        assert_eq!(&out[60..], &[0xa2, 0x50, 0x3c, 0x4e]);
    }

    #[test]
    fn fill_is_the_keystream_whatever_the_piece_sizes() {
        let mut a = ChaCha20::from_seed(7);
        let mut whole = [0u8; 200];
        a.fill(&mut whole);
        let mut b = ChaCha20::from_seed(7);
        let mut pieces = [0u8; 200];
        for range in [0..1, 1..64, 64..65, 65..130, 130..200] {
            b.fill(&mut pieces[range]);
        }
        assert_eq!(whole, pieces);
        assert_eq!(a, b);
        assert_ne!(ChaCha20::from_seed(8).keystream(0), a.keystream(0));
    }
}

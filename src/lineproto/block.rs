//! Sixteen bytes at a time: byte-class masks for the fast path.
//!
//! Exists because the fast path's work is finding a few bytes (the space
//! after a series key, a value's end, non-digits in a timestamp) in short
//! runs, and one SSE2 compare and `pmovmskb` classifies sixteen bytes where
//! SWAR on `u64` takes about six operations for eight. SSE2 is part of every
//! x86_64 CPU, so there is no runtime detection; the vectors come from the
//! `wide` crate, which keeps this crate free of `unsafe` and falls back to
//! portable code on other targets. Bit `k` of a mask is byte `i + k`.

use wide::u8x16;

/// Sixteen bytes of a body, as a vector and as two little-endian words.
#[derive(Clone, Copy)]
pub(crate) struct Block {
    v: u8x16,
    pub lo: u64,
    pub hi: u64,
}

impl Block {
    /// The sixteen bytes at `i`, if in bounds.
    #[inline(always)]
    pub(crate) fn at(buf: &[u8], i: usize) -> Option<Block> {
        let b: &[u8; 16] = buf.get(i..i.checked_add(16)?)?.try_into().ok()?;
        let (lo, hi) = b.split_at(8);
        Some(Block {
            v: u8x16::from(*b),
            lo: u64::from_le_bytes(lo.try_into().unwrap_or_default()),
            hi: u64::from_le_bytes(hi.try_into().unwrap_or_default()),
        })
    }

    /// Masks of the first `n` bytes (`n <= 16`) for `lo` and `hi`: the
    /// bytes past them cleared, so that a key of `n` bytes is compared or
    /// hashed from two words.
    #[inline(always)]
    pub(crate) fn first(n: usize) -> (u64, u64) {
        let low = |k: usize| match k {
            0 => 0,
            1..=7 => (1u64 << (8 * k)) - 1,
            _ => u64::MAX,
        };
        (low(n), low(n.saturating_sub(8)))
    }

    /// Bytes at most `c`.
    #[inline(always)]
    pub(crate) fn at_most(&self, c: u8) -> u32 {
        let m = u8x16::splat(c);
        self.v.min(m).simd_eq(self.v).to_bitmask()
    }

    /// Bytes that are ASCII digits.
    #[inline(always)]
    pub(crate) fn digits(&self) -> u32 {
        // `c - '0'` (wrapping) is at most 9 exactly for the ten digits.
        let d = self.v - u8x16::splat(b'0');
        d.min(u8x16::splat(9)).simd_eq(d).to_bitmask()
    }

    /// Bytes equal to `c`.
    #[inline(always)]
    pub(crate) fn eq(&self, c: u8) -> u32 {
        self.v.simd_eq(u8x16::splat(c)).to_bitmask()
    }

    /// Bytes that are not ASCII digits.
    #[inline(always)]
    pub(crate) fn non_digits(&self) -> u32 {
        !self.digits() & 0xFFFF
    }
}

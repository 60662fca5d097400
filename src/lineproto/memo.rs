//! Per-body memos for the fast path: series keys already validated, and
//! the field layout last seen per measurement.
//!
//! Exists because a Telegraf batch repeats a few dozen series keys
//! (measurement + tags) and one field layout per measurement line after
//! line, and validating them again costs most of the fast path's time.
//!
//! - [`SeriesMemo`] remembers where in the body a series key passed the fast
//!   path's checks (non-empty plain names, `=` in every tag, no `time` tag,
//!   no duplicate tags, the key-length limit). A later line whose bytes up
//!   to its first space equal such a key *exactly* gets the same verdict,
//!   so the checks are skipped: one word-at-a-time search for the space
//!   that hashes as it goes, a table probe, a byte comparison. The memo is
//!   keyed by bytes, never by hash alone: a hash collision only costs a
//!   failed comparison, and probes stop after a few slots, so crafted
//!   collisions cannot make lookups slow. Memo keys hold no `\`, `"`, space or
//!   control byte (the fast path declines those), so the first space after
//!   a matching prefix is the key's real end, and a longer key of which a
//!   memo key is a prefix never matches (its first space lies further on).
//! - [`Layouts`] keeps, per measurement (by hash), the field keys and types
//!   of a fast-path line, replaced when a line's fields differ from it: a
//!   field whose key bytes (with the `=`) and type equal the
//!   one at the same place there is already in the [`TypeTracker`] with
//!   that type (or the tracker is already suspicious), so it skips hashing
//!   and probing. Two measurements with one hash share a layout, which is
//!   still sound: the tracker keys fields by that same hash.
//!
//! Both store ranges into the body being scanned, which outlives them, and
//! allocate per body (bounded tables), never per line once warm.
//!
//! [`TypeTracker`]: super::storage::TypeTracker

use super::fast::eq_mask;
use super::storage::FieldType;

/// Keys longer than this are not memoized (and the search for the space
/// stops there, so a line without one costs a bounded probe).
const MAX_MEMO_KEY: usize = 512;
/// At most this many series keys per body; later ones are validated in full.
const MAX_SERIES: usize = 4096;
/// A lookup gives up (a miss) after this many slots, and a key that finds
/// no free slot within as many is not remembered: crafted collisions cost
/// a bounded number of comparisons per line.
const MAX_PROBES: usize = 8;
/// At most this many measurements keep a field layout.
const MAX_LAYOUTS: usize = 32;

const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// A short dependency chain per word: the table compares bytes anyway and
/// bounds its probes, so a weak hash can only cost time, never a verdict.
#[inline(always)]
fn mix(h: u64, w: u64) -> u64 {
    h.rotate_left(23) ^ w
}

/// Finds the first space in `buf[start..]` within [`MAX_MEMO_KEY`] bytes and
/// hashes the bytes before it. The hash depends only on those bytes (words
/// are taken from `start`, the last one zero-padded).
#[inline(always)]
pub(crate) fn probe_key(buf: &[u8], start: usize) -> Option<(usize, u64)> {
    let limit = buf.len().min(start + MAX_MEMO_KEY);
    let mut h = 0;
    let mut i = start;
    while let Some(word) = buf.get(i..i + 8).filter(|_| i + 8 <= limit) {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(word).ok()?);
        let m = eq_mask(x, b' ');
        if m != 0 {
            let n = m.trailing_zeros() / 8;
            // `n` bytes before the space; n == 0 keeps nothing.
            let keep = (1u64 << (8 * n)).wrapping_sub(1);
            let sp = i + n as usize;
            return Some((sp, finish(mix(h, x & keep), sp - start)));
        }
        h = mix(h, x);
        i += 8;
    }
    let mut last = [0u8; 8];
    for (k, &c) in buf.get(i..limit)?.iter().enumerate() {
        if c == b' ' {
            let sp = i + k;
            return Some((sp, finish(mix(h, u64::from_le_bytes(last)), sp - start)));
        }
        last[k] = c;
    }
    None
}

#[inline(always)]
fn finish(h: u64, len: usize) -> u64 {
    let h = (h ^ len as u64).wrapping_mul(K2);
    h ^ (h >> 29)
}

/// A series key that passed the fast path: its range in the body, its
/// measurement's hash (as `hash_bytes(name, 0)`) and that measurement's
/// index in [`Layouts`].
#[derive(Clone, Copy)]
struct Series {
    hash: u64,
    start: usize,
    end: usize,
    known: Known,
}

/// What a memoized series key tells the fast path.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    /// The measurement's hash, as `hash_bytes(name, 0)`.
    pub m: u64,
    /// Its layout in [`Layouts`], if it has room for one.
    pub layout: Option<usize>,
}

/// Series keys validated so far in one body (see the module docs).
pub(crate) struct SeriesMemo {
    /// Open addressing: 0 is empty, else an index into `series` plus one.
    slots: Vec<u32>,
    series: Vec<Series>,
}

impl SeriesMemo {
    pub(crate) fn new() -> SeriesMemo {
        SeriesMemo {
            slots: Vec::new(),
            series: Vec::new(),
        }
    }

    /// What is known about the memoized key equal to `buf[start..sp]`
    /// (whose hash from [`probe_key`] is `hash`), if there is one.
    #[inline(always)]
    pub(crate) fn find(&self, buf: &[u8], start: usize, sp: usize, hash: u64) -> Option<Known> {
        let mask = self.slots.len().checked_sub(1)?;
        let first = (hash >> 40) as usize;
        for i in first..first + MAX_PROBES {
            let slot = *self.slots.get(i & mask)?;
            let s = self.series.get(slot.checked_sub(1)? as usize)?;
            if s.hash == hash
                && s.end - s.start == sp - start
                && same(buf, s.start, start, sp - start)
            {
                return Some(s.known);
            }
        }
        None
    }

    /// Remembers that `buf[start..sp]` (hashed to `hash`) passed the fast
    /// path's series-key checks. The caller has checked that
    /// [`SeriesMemo::find`] does not know it.
    pub(crate) fn insert(&mut self, start: usize, sp: usize, hash: u64, known: Known) {
        if self.series.len() >= MAX_SERIES {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![0; 64];
        }
        if (self.series.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let n = self.series.len() as u32 + 1;
        if self.place(hash, n) {
            self.series.push(Series {
                hash,
                start,
                end: sp,
                known,
            });
        }
    }

    /// Puts entry `n` in a free slot near `hash`'s; false if none is.
    fn place(&mut self, hash: u64, n: u32) -> bool {
        let mask = self.slots.len() - 1;
        let first = (hash >> 40) as usize;
        for i in first..first + MAX_PROBES {
            if let Some(slot) = self.slots.get_mut(i & mask).filter(|s| **s == 0) {
                *slot = n;
                return true;
            }
        }
        false
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.series);
        self.slots = vec![0; self.slots.len() * 2];
        for s in old {
            let n = self.series.len() as u32 + 1;
            if self.place(s.hash, n) {
                self.series.push(s);
            }
        }
    }
}

/// Whether `buf[a..a + n]` equals `buf[b..b + n]`, both in bounds; eight
/// bytes at a time (inline: keys are short, a `memcmp` call costs more).
#[inline(always)]
pub(crate) fn same(buf: &[u8], a: usize, b: usize, n: usize) -> bool {
    let word = |i: usize| {
        buf.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    if n < 8 {
        return match (word(a), word(b)) {
            (Some(x), Some(y)) => (x ^ y) & ((1u64 << (8 * n)) - 1) == 0,
            _ => buf
                .get(a..a + n)
                .is_some_and(|x| Some(x) == buf.get(b..b + n)),
        };
    }
    let mut k = 0;
    while k + 8 < n {
        match (word(a + k), word(b + k)) {
            (Some(x), Some(y)) if x == y => k += 8,
            _ => return false,
        }
    }
    // The last word, overlapping the previous one.
    matches!((word(a + n - 8), word(b + n - 8)), (Some(x), Some(y)) if x == y)
}

/// One field of a remembered layout: its key's range in the body, and the
/// type its value had.
#[derive(Clone, Copy)]
pub(crate) struct Field {
    pub key: usize,
    pub key_end: usize,
    pub ty: FieldType,
}

/// A field layout per measurement hash (see the module docs).
pub(crate) struct Layouts {
    by_m: Vec<(u64, Vec<Field>)>,
}

impl Layouts {
    pub(crate) fn new() -> Layouts {
        Layouts { by_m: Vec::new() }
    }

    /// The index of measurement `m`'s layout (created empty if there is
    /// room), or `None`.
    #[inline(always)]
    pub(crate) fn index(&mut self, m: u64) -> Option<usize> {
        if let Some(k) = self.by_m.iter().position(|e| e.0 == m) {
            return Some(k);
        }
        if self.by_m.len() >= MAX_LAYOUTS {
            return None;
        }
        self.by_m.push((m, Vec::new()));
        Some(self.by_m.len() - 1)
    }

    #[inline(always)]
    pub(crate) fn get(&self, k: Option<usize>) -> &[Field] {
        k.and_then(|k| self.by_m.get(k))
            .map_or(&[], |e| e.1.as_slice())
    }

    /// Replaces layout `k` with `fields`.
    pub(crate) fn set(&mut self, k: Option<usize>, fields: &[Field]) {
        if let Some(e) = k.and_then(|k| self.by_m.get_mut(k)) {
            e.1.clear();
            e.1.extend_from_slice(fields);
        }
    }
}

/// Everything the fast path remembers across the lines of one body.
pub(crate) struct Memo {
    pub series: SeriesMemo,
    pub layouts: Layouts,
    /// Scratch: the fields of the line being checked.
    pub cur: Vec<Field>,
}

impl Memo {
    pub(crate) fn new() -> Memo {
        Memo {
            series: SeriesMemo::new(),
            layouts: Layouts::new(),
            cur: Vec::new(),
        }
    }
}

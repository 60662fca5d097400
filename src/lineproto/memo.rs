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
    let region = buf.get(start..buf.len().min(start + MAX_MEMO_KEY))?;
    let mut h = 0;
    let mut words = region.chunks_exact(8);
    for (k, w) in words.by_ref().enumerate() {
        let x = as_word(w);
        let m = eq_mask(x, b' ');
        if m != 0 {
            let n = (m.trailing_zeros() / 8) as usize;
            // `n` bytes before the space; n == 0 keeps nothing.
            let keep = (1u64 << (8 * n)).wrapping_sub(1);
            let len = 8 * k + n;
            return Some((start + len, finish(mix(h, x & keep), len)));
        }
        h = mix(h, x);
    }
    let done = region.len() - words.remainder().len();
    let mut last = [0u8; 8];
    for (k, &c) in words.remainder().iter().enumerate() {
        if c == b' ' {
            let len = done + k;
            return Some((start + len, finish(mix(h, u64::from_le_bytes(last)), len)));
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
    let (Some(x), Some(y)) = (buf.get(a..a + n), buf.get(b..b + n)) else {
        return false;
    };
    if n < 8 {
        // One word each when the buffer extends far enough; the bytes past
        // `n` are masked off.
        return match (word(buf, a), word(buf, b)) {
            (Some(p), Some(q)) => (p ^ q) & ((1u64 << (8 * n)) - 1) == 0,
            _ => x == y,
        };
    }
    let mut xs = x.chunks_exact(8);
    let mut ys = y.chunks_exact(8);
    for (p, q) in xs.by_ref().zip(ys.by_ref()) {
        if as_word(p) != as_word(q) {
            return false;
        }
    }
    // The last word, overlapping the previous one.
    as_word(&x[n - 8..]) == as_word(&y[n - 8..])
}

/// The eight bytes at `i` as a little-endian word, if in bounds.
#[inline(always)]
pub(crate) fn word(buf: &[u8], i: usize) -> Option<u64> {
    buf.get(i..i + 8).map(as_word)
}

/// `w` (eight bytes long in every caller) as a little-endian word.
#[inline(always)]
pub(crate) fn as_word(w: &[u8]) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or_default())
}

/// One field of a remembered layout: its key's range in the body, and the
/// type its value had.
#[derive(Clone, Copy)]
pub(crate) struct Field {
    pub key: usize,
    pub key_end: usize,
    pub ty: FieldType,
    /// The key with its `=` as at most two words (the first eight bytes,
    /// masked, and the last eight), so a later line's key is compared
    /// without loading this one again; `None` when longer than 16 bytes
    /// or too close to the end of the body.
    words: Option<(u64, u64)>,
}

impl Field {
    /// The field whose key is `buf[key..key_end]` (followed by its `=`).
    #[inline(always)]
    pub(crate) fn new(buf: &[u8], key: usize, key_end: usize, ty: FieldType) -> Field {
        let n = key_end - key + 1;
        let words = match (word(buf, key), n) {
            (Some(lo), 1..=8) => Some((lo & low_bytes(n), 0)),
            (Some(lo), 9..=16) => word(buf, key + n - 8).map(|hi| (lo, hi)),
            _ => None,
        };
        Field {
            key,
            key_end,
            ty,
            words,
        }
    }

    /// Whether `buf[at..]` starts with this field's key and `=`.
    #[inline(always)]
    pub(crate) fn matches(&self, buf: &[u8], at: usize) -> bool {
        let n = self.key_end - self.key + 1;
        match (self.words, word(buf, at)) {
            (Some((lo, _)), Some(w)) if n <= 8 => (w ^ lo) & low_bytes(n) == 0,
            (Some((lo, hi)), Some(w)) => w == lo && word(buf, at + n - 8) == Some(hi),
            _ => same(buf, at, self.key, n),
        }
    }
}

/// A mask of the low `n` bytes of a word (`1 <= n <= 8`).
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    u64::MAX >> (64 - 8 * n)
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

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
//!   so the checks are skipped. The first guess is the key that followed
//!   the previous line's the last time (Telegraf repeats its series in the
//!   same order every interval): one byte comparison, then the byte after
//!   it must be the space. Otherwise one search for the space, sixteen
//!   bytes at a time, that hashes as it goes, a table probe, a byte
//!   comparison. The memo is
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

use super::block::Block;
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
/// hashes the bytes before it, sixteen at a time. The hash depends only on
/// those bytes (blocks are taken from `start`, the last one zero-padded),
/// not on whether the body goes on past them.
#[inline(always)]
pub(crate) fn probe_key(buf: &[u8], start: usize) -> Option<(usize, u64)> {
    let limit = buf.len().min(start.checked_add(MAX_MEMO_KEY)?);
    let mut h = 0;
    let mut i = start;
    while i + 16 <= limit {
        let b = Block::at(buf, i)?;
        let m = b.eq(b' ');
        if m != 0 {
            return Some(key_found(h, b.lo, b.hi, m, i - start, start));
        }
        h = mix(mix(h, b.lo), b.hi);
        i += 16;
    }
    // The last few bytes: the same, from a zero-padded copy.
    let rest = buf.get(i..limit)?;
    let mut pad = [0u8; 16];
    pad[..rest.len()].copy_from_slice(rest);
    let b = Block::at(&pad, 0)?;
    let m = b.eq(b' ') & ((1u32 << rest.len()) - 1);
    (m != 0).then(|| key_found(h, b.lo, b.hi, m, i - start, start))
}

/// The end and hash of a key whose space is the first set bit of `m` in the
/// block `lo`/`hi` that starts `done` bytes into the key.
#[inline(always)]
fn key_found(h: u64, lo: u64, hi: u64, m: u32, done: usize, start: usize) -> (usize, u64) {
    let n = m.trailing_zeros() as usize;
    // Keep the `n` bytes before the space (n == 0 keeps nothing).
    let (keep_lo, keep_hi) = Block::first(n);
    let h = mix(mix(h, lo & keep_lo), hi & keep_hi);
    let len = done + n;
    (start + len, finish(h, len))
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
    /// The entry (index plus one; 0 for none) whose line came right after
    /// this one's last time: the guess for the next line.
    next: u32,
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
    /// The entry (index plus one) of the last line found or inserted.
    last: u32,
}

impl SeriesMemo {
    pub(crate) fn new() -> SeriesMemo {
        SeriesMemo {
            slots: Vec::new(),
            series: Vec::new(),
            last: 0,
        }
    }

    /// What is known about the memoized key equal to `buf[start..sp]`
    /// (whose hash from [`probe_key`] is `hash`), if there is one.
    #[inline(always)]
    pub(crate) fn find(
        &self,
        buf: &[u8],
        start: usize,
        sp: usize,
        hash: u64,
    ) -> Option<(Known, u32)> {
        let mask = self.slots.len().checked_sub(1)?;
        let first = (hash >> 40) as usize;
        for i in first..first + MAX_PROBES {
            let slot = *self.slots.get(i & mask)?;
            let s = self.series.get(slot.checked_sub(1)? as usize)?;
            if s.hash == hash
                && s.end - s.start == sp - start
                && same(buf, s.start, start, sp - start)
            {
                return Some((s.known, slot));
            }
        }
        None
    }

    /// The key that followed the last one found, if the line at `start`
    /// has it: the index of its space, what is known, and its entry.
    ///
    /// Telegraf sends its series in the same order at every interval, so
    /// this guess usually holds and costs one comparison, no search for
    /// the space and no hashing. It is checked byte for byte, and a memo
    /// key holds no space, so the byte after a match must be the key's end.
    #[inline(always)]
    pub(crate) fn predict(&self, buf: &[u8], start: usize) -> Option<(usize, Known, u32)> {
        let last = self.series.get(self.last.checked_sub(1)? as usize)?;
        let n = last.next;
        let s = self.series.get(n.checked_sub(1)? as usize)?;
        let len = s.end - s.start;
        (buf.get(start + len) == Some(&b' ') && same(buf, s.start, start, len)).then_some((
            start + len,
            s.known,
            n,
        ))
    }

    /// Records that the current line has entry `n` (from [`find`],
    /// [`predict`] or [`insert`]): the guess after the previous line's.
    ///
    /// [`find`]: SeriesMemo::find
    /// [`predict`]: SeriesMemo::predict
    /// [`insert`]: SeriesMemo::insert
    #[inline(always)]
    pub(crate) fn follow(&mut self, n: u32) {
        if let Some(last) = self
            .last
            .checked_sub(1)
            .and_then(|k| self.series.get_mut(k as usize))
        {
            last.next = n;
        }
        self.last = n;
    }

    /// Remembers that `buf[start..sp]` (hashed to `hash`) passed the fast
    /// path's series-key checks; returns its entry (0 when the memo is
    /// full). The caller has checked that [`SeriesMemo::find`] does not
    /// know it.
    pub(crate) fn insert(&mut self, start: usize, sp: usize, hash: u64, known: Known) -> u32 {
        if self.series.len() >= MAX_SERIES {
            return 0;
        }
        if self.slots.is_empty() {
            self.slots = vec![0; 64];
        }
        if (self.series.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let n = self.series.len() as u32 + 1;
        if !self.place(hash, n) {
            return 0;
        }
        self.series.push(Series {
            hash,
            start,
            end: sp,
            known,
            next: 0,
        });
        n
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

    /// Doubles the table; entries keep their indices (so `next` links stay
    /// true), and one that finds no slot is only left to prediction.
    fn grow(&mut self) {
        self.slots = vec![0; self.slots.len() * 2];
        for k in 0..self.series.len() {
            let hash = self.series[k].hash;
            self.place(hash, k as u32 + 1);
        }
    }
}

/// Whether `buf[a..a + n]` equals `buf[b..b + n]`, both in bounds; sixteen
/// bytes at a time (inline: keys are short, a `memcmp` call costs more).
#[inline(always)]
pub(crate) fn same(buf: &[u8], a: usize, b: usize, n: usize) -> bool {
    let (Some(x), Some(y)) = (buf.get(a..a + n), buf.get(b..b + n)) else {
        return false;
    };
    if n < 16 {
        // One block each when the buffer extends far enough; the bytes past
        // `n` are masked off.
        return match (Block::at(buf, a), Block::at(buf, b)) {
            (Some(p), Some(q)) => {
                let (lo, hi) = Block::first(n);
                ((p.lo ^ q.lo) & lo) | ((p.hi ^ q.hi) & hi) == 0
            }
            _ => x == y,
        };
    }
    let mut xs = x.chunks_exact(16);
    let mut ys = y.chunks_exact(16);
    for (p, q) in xs.by_ref().zip(ys.by_ref()) {
        if p != q {
            return false;
        }
    }
    // The last block, overlapping the previous one.
    x[n - 16..] == y[n - 16..]
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
    /// `key_end - key + 1`, kept rather than derived: the walk reads it for
    /// every field, and deriving it there cost 14 instructions per line.
    klen: usize,
    /// The key with its `=` as two words and a mask for each (the bytes
    /// past its end masked off), so a later line's key is compared with
    /// two loads and no branch on its length; `short` is false when the
    /// key is longer than 16 bytes or too close to the end of the body.
    lo: u64,
    hi: u64,
    lo_mask: u64,
    hi_mask: u64,
    short: bool,
}

impl Field {
    /// The field whose key is `buf[key..key_end]` (followed by its `=`).
    #[inline(always)]
    pub(crate) fn new(buf: &[u8], key: usize, key_end: usize, ty: FieldType) -> Field {
        let n = key_end - key + 1;
        let (lo_mask, hi_mask) = Block::first(n.min(16));
        let block = (n <= 16).then(|| Block::at(buf, key)).flatten();
        let (lo, hi) = block.map_or((0, 0), |b| (b.lo, b.hi));
        Field {
            key,
            key_end,
            ty,
            klen: n,
            lo: lo & lo_mask,
            hi: hi & hi_mask,
            lo_mask,
            hi_mask,
            short: block.is_some(),
        }
    }

    /// The length of the key with its `=`.
    #[inline(always)]
    pub(crate) fn key_len(&self) -> usize {
        self.klen
    }

    /// Whether `buf[at..]` starts with this field's key and `=`.
    #[inline(always)]
    pub(crate) fn matches(&self, buf: &[u8], at: usize) -> bool {
        match Block::at(buf, at) {
            Some(b) if self.short => {
                ((b.lo & self.lo_mask) ^ self.lo) | ((b.hi & self.hi_mask) ^ self.hi) == 0
            }
            _ => same(buf, at, self.key, self.key_len()),
        }
    }
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

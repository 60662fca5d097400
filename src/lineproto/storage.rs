//! What a 1.x shard rejects after the parser accepted a line: `time` as a
//! tag or field key, and field type conflicts within one body.
//!
//! Exists because those lines got a 204 from the gateway and were then
//! refused by every node (and dead-lettered N times). Measured against
//! `influxd` 1.6 (`tsdb/shard.go` `validateSeriesAndFields`):
//! - a tag named `time` drops the point: `invalid tag key: input tag "time"
//!   on measurement "m" is invalid`;
//! - a field named `time` is silently removed from the point; a point left
//!   without fields is dropped: `invalid field name: input field "time" on
//!   measurement "m" is invalid`;
//! - the answer is `partial write: <reason> dropped=N`, the other points
//!   are written, and the reason is the first tag drop if there is one,
//!   else the first field drop (the shard checks all tags first);
//! - one field with two types in one write (`m f=1i,f=2`, or `m f=1i` and
//!   `m f=1.5` in one body) fails the whole write with the bare text
//!   `field type conflict`: nothing is written. The same type twice is fine.
//!
//! Measurements are compared unescaped (`m\=x` and `m=x` are one
//! measurement, as on the node); field keys are compared as sent, as 1.x's
//! field iterator does.

/// A field's storage type, as 1.x's field iterator classifies a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

/// The type of a (valid) field value: `"…"` string; a value starting with
/// one of `0-9 - . n N i I u` is a number, typed by its last byte; anything
/// else is a boolean.
pub(crate) fn value_type(value: &[u8]) -> FieldType {
    match value.first() {
        Some(b'"') => FieldType::String,
        Some(b'0'..=b'9' | b'-' | b'.' | b'n' | b'N' | b'i' | b'I' | b'u') => match value.last() {
            Some(b'i') => FieldType::Integer,
            Some(b'u') => FieldType::Unsigned,
            _ => FieldType::Float,
        },
        _ => FieldType::Boolean,
    }
}

/// Why a shard drops a valid line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drop {
    TimeTag,
    TimeField,
}

impl Drop {
    /// The shard's reason text for measurement `name` (escaped, as sent).
    pub(crate) fn reason(self, name: &[u8]) -> String {
        let mut plain = Vec::with_capacity(name.len());
        unescape_measurement(name, &mut plain);
        let name = String::from_utf8_lossy(&plain);
        match self {
            Drop::TimeTag => {
                format!("invalid tag key: input tag \"time\" on measurement \"{name}\" is invalid")
            }
            Drop::TimeField => format!(
                "invalid field name: input field \"time\" on measurement \"{name}\" is invalid"
            ),
        }
    }
}

/// 1.x's `escape.Unescape` as applied to measurement names: `\,` `\"` `\ `
/// and `\=` lose their backslash; any other backslash stays.
pub(crate) fn unescape_measurement(name: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        if c == b'\\' && matches!(name.get(i + 1), Some(b',' | b'"' | b' ' | b'=')) {
            out.push(name[i + 1]);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// A fast 64-bit hash of `bytes`, chained from `seed`. Word-at-a-time so
/// the per-field cost stays a few cycles.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K1);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(K2).rotate_left(27);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(K2).rotate_left(27);
    }
    h ^ (h >> 31)
}

/// Field types seen so far in one body, per (measurement, field key).
///
/// An open-addressing table of 64-bit hashes: no allocation per line, and
/// one probe per field. Two keys with the same hash and different types set
/// [`TypeTracker::suspect`]; the caller then confirms with the exact check
/// (`has_type_conflict` in `scan.rs`), so a hash collision can never reject
/// a valid body. The fast path skips it for fields its per-measurement
/// layout memo already recorded (`memo.rs`).
pub(crate) struct TypeTracker {
    slots: Vec<(u64, FieldType)>,
    used: usize,
    /// Some (measurement, key) was seen with two types (or a collision).
    pub suspect: bool,
}

impl TypeTracker {
    pub(crate) fn new() -> TypeTracker {
        TypeTracker {
            slots: vec![(0, FieldType::Float); 64],
            used: 0,
            suspect: false,
        }
    }

    /// Records field `key` of type `ty` on the measurement hashed to `m`.
    #[inline]
    pub(crate) fn add(&mut self, m: u64, key: &[u8], ty: FieldType) {
        self.add_hashed(hash_bytes(key, m) | 1, ty);
    }

    /// Records everything `other` saw (a part of the same body scanned on
    /// another core): a field typed differently there makes this suspect.
    pub(crate) fn merge(&mut self, other: &TypeTracker) {
        self.suspect |= other.suspect;
        for &(h, ty) in other.slots.iter().filter(|s| s.0 != 0) {
            self.add_hashed(h, ty);
        }
    }

    #[inline]
    fn add_hashed(&mut self, h: u64, ty: FieldType) {
        let mask = self.slots.len() - 1;
        let mut i = (h.wrapping_mul(K1) >> 40) as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.0 == h {
                if slot.1 != ty {
                    self.suspect = true;
                }
                return;
            }
            if slot.0 == 0 {
                *slot = (h, ty);
                self.used += 1;
                if self.used * 2 > self.slots.len() {
                    self.grow();
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bigger = vec![(0, FieldType::Float); self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        let mask = self.slots.len() - 1;
        for (h, ty) in old.into_iter().filter(|s| s.0 != 0) {
            let mut i = (h.wrapping_mul(K1) >> 40) as usize & mask;
            while self.slots[i].0 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (h, ty);
        }
    }
}

//! A record's bytes, possibly in two parts.
//!
//! Exists so a write body travels from the request to the disk and to every
//! node without being copied: the record's small header (method, path,
//! query, …) is one buffer and the client's body, as read from the socket,
//! is the other. The log writer hands both parts to one vectored write
//! (`pwritev`), the tail cache keeps them as they are, and a replicator
//! sends the body part as it is. On disk a frame's payload is contiguous,
//! so a payload read back from a segment is one part; the two forms compare
//! equal when their bytes do.

use bytes::Bytes;

/// The bytes of one log record: `head` followed by `tail`.
#[derive(Clone, Debug, Default)]
pub struct Payload {
    head: Bytes,
    tail: Bytes,
}

impl Payload {
    /// A payload in two parts (no copy).
    pub fn from_parts(head: Bytes, tail: Bytes) -> Payload {
        Payload { head, tail }
    }

    /// The first part (the whole payload when it is contiguous).
    pub fn head(&self) -> &Bytes {
        &self.head
    }

    /// The second part; empty when the payload is contiguous.
    pub fn tail(&self) -> &Bytes {
        &self.tail
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parts in order, empty ones included.
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.head, &self.tail]
    }

    /// The payload as one buffer: free when it already is one, else a copy.
    pub fn to_bytes(&self) -> Bytes {
        if self.tail.is_empty() {
            self.head.clone()
        } else if self.head.is_empty() {
            self.tail.clone()
        } else {
            let mut v = Vec::with_capacity(self.len());
            v.extend_from_slice(&self.head);
            v.extend_from_slice(&self.tail);
            Bytes::from(v)
        }
    }

    /// Whether the bytes equal `other` (whatever the split).
    fn bytes_eq(&self, other: &[u8]) -> bool {
        self.len() == other.len()
            && other.starts_with(&self.head)
            && other[self.head.len()..] == self.tail[..]
    }
}

impl From<Bytes> for Payload {
    fn from(head: Bytes) -> Payload {
        Payload {
            head,
            tail: Bytes::new(),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        if other.tail.is_empty() {
            self.bytes_eq(&other.head)
        } else if self.tail.is_empty() {
            other.bytes_eq(&self.head)
        } else {
            self.len() == other.len() && self.to_bytes() == other.to_bytes()
        }
    }
}

impl Eq for Payload {}

impl PartialEq<Bytes> for Payload {
    fn eq(&self, other: &Bytes) -> bool {
        self.bytes_eq(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_ignores_the_split() {
        let one = Payload::from(Bytes::from_static(b"header|body"));
        let two = Payload::from_parts(Bytes::from_static(b"header|"), Bytes::from_static(b"body"));
        let other =
            Payload::from_parts(Bytes::from_static(b"header"), Bytes::from_static(b"|bodY"));
        assert_eq!(one, two);
        assert_eq!(two, one);
        assert_eq!(two, Bytes::from_static(b"header|body"));
        assert_ne!(two, other);
        assert_ne!(other, one);
        assert_ne!(two, Bytes::from_static(b"header|bod"));
        assert_eq!(two.len(), 11);
        assert_eq!(two.to_bytes(), Bytes::from_static(b"header|body"));
        assert_eq!(one.to_bytes(), Bytes::from_static(b"header|body"));
        let tail_only = Payload::from_parts(Bytes::new(), Bytes::from_static(b"x"));
        assert_eq!(tail_only, Payload::from(Bytes::from_static(b"x")));
    }
}

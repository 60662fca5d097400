//! What one entry of the durable log means: an HTTP request to replay, in
//! order, on every node.
//!
//! The log itself stores opaque bytes; this module gives them a meaning. A
//! record is the request exactly as each node should receive it, minus the
//! per-node parts that the replicator fills in at send time (the node's own
//! token or credentials, gzip on the wire). Storing the target (`path` and
//! `query`: db/rp or org/bucket, precision) and the client's credentials with
//! the body is what lets a node that was down for a day replay the right
//! write to the right database with the right user.
//!
//! Encoding (all integers little-endian), version 2:
//! `[2u8 version][kind u8][flags u8][points u32][method: u8 len, bytes][path: u16 len, bytes]`
//! `[query: u32 len, bytes][auth: u32 len or u32::MAX for none, bytes]`
//! `[content type: u16 len or u16::MAX for none, bytes][body: the rest]`.
//! Flag bit 0: the body is gzip (one or more complete members whose decoded
//! text ends in `\n`; see [`crate::gzip`]). `points` is how many points a
//! write holds, counted at the door (0: unknown), so nothing downstream has
//! to inflate or scan a body to count them. Version 1 (written by earlier
//! releases) is the same without the flags byte and the count, and still
//! decodes.
//! The body is the last field so decoding can hand it out as a zero-copy
//! slice of the log's buffer.

use bytes::{BufMut, Bytes, BytesMut};

use crate::log::Payload;

/// How a replicator treats a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Line protocol to `/write` or `/api/v2/write`; consecutive writes with
    /// the same target and credentials are coalesced into one request.
    Write = 1,
    /// An InfluxQL query holding a mutation, sent to `/query`; never coalesced,
    /// and its per-node answer is reported back to the waiting client.
    Query = 2,
    /// Any other mutation (e.g. `/api/v2/delete`): replayed verbatim.
    Http = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub method: String,
    pub path: String,
    /// The URL query string to forward, already percent-encoded.
    pub query: String,
    /// The client's `Authorization` header, forwarded unless the node has
    /// credentials of its own configured.
    pub auth: Option<String>,
    pub content_type: Option<String>,
    /// The body is stored gzip-compressed (a write only): a client's own
    /// compressed bytes passed through, or compressed once at the door.
    pub gzip: bool,
    /// Points in a write's body, as the door counted them (0: unknown).
    pub points: u32,
    pub body: Bytes,
}

/// A log entry that does not decode as a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Written by a newer (or unknown) version of Inmate.
    #[error("unknown record version {0}")]
    Version(u8),
    /// The kind byte names no known kind.
    #[error("unknown record kind {0}")]
    Kind(u8),
    /// A length field points past the end of the entry.
    #[error("record truncated")]
    Truncated,
    /// A text field is not UTF-8.
    #[error("record field is not UTF-8")]
    Utf8,
}

const VERSION: u8 = 2;
const FLAG_GZIP: u8 = 1;

impl Record {
    /// A write of validated line protocol.
    pub fn write(path: &str, query: String, auth: Option<String>, body: Bytes) -> Record {
        Record {
            kind: Kind::Write,
            method: "POST".into(),
            path: path.into(),
            query,
            auth,
            content_type: None,
            gzip: false,
            points: 0,
            body,
        }
    }

    /// The same record, counting `points` points.
    pub fn with_points(self, points: usize) -> Record {
        Record {
            points: u32::try_from(points).unwrap_or(u32::MAX),
            ..self
        }
    }

    /// A write whose body is gzip: complete members, decoded text ending
    /// in a newline.
    pub fn gzip_write(path: &str, query: String, auth: Option<String>, body: Bytes) -> Record {
        Record {
            gzip: true,
            ..Record::write(path, query, auth, body)
        }
    }

    /// The record as one buffer (header and body copied together).
    pub fn encode(&self) -> Bytes {
        let mut b = self.encode_header(self.body.len());
        b.put_slice(&self.body);
        b.freeze()
    }

    /// The record as a log payload in two parts: the encoded header, then
    /// the body itself (shared, not copied). On disk and to
    /// [`Record::decode_payload`] it is the same bytes as [`Record::encode`].
    pub fn to_payload(&self) -> Payload {
        Payload::from_parts(self.encode_header(0).freeze(), self.body.clone())
    }

    /// Everything but the body, with room for `extra` more bytes.
    fn encode_header(&self, extra: usize) -> BytesMut {
        let mut b = BytesMut::with_capacity(
            16 + self.method.len() + self.path.len() + self.query.len() + extra + 64,
        );
        b.put_u8(VERSION);
        b.put_u8(self.kind as u8);
        b.put_u8(if self.gzip { FLAG_GZIP } else { 0 });
        b.put_u32_le(self.points);
        let method = &self.method.as_bytes()[..self.method.len().min(255)];
        b.put_u8(method.len() as u8);
        b.put_slice(method);
        let path = &self.path.as_bytes()[..self.path.len().min(u16::MAX as usize - 1)];
        b.put_u16_le(path.len() as u16);
        b.put_slice(path);
        b.put_u32_le(self.query.len() as u32);
        b.put_slice(self.query.as_bytes());
        match &self.auth {
            Some(a) => {
                b.put_u32_le(a.len() as u32);
                b.put_slice(a.as_bytes());
            }
            None => b.put_u32_le(u32::MAX),
        }
        match &self.content_type {
            Some(c) => {
                let c = &c.as_bytes()[..c.len().min(u16::MAX as usize - 1)];
                b.put_u16_le(c.len() as u16);
                b.put_slice(c);
            }
            None => b.put_u16_le(u16::MAX),
        }
        b
    }

    /// Decodes a log payload, in whichever parts it comes: a header part
    /// followed by the body (as [`Record::to_payload`] made it), or one
    /// buffer (as read back from disk). The body is shared, never copied.
    pub fn decode_payload(p: &Payload) -> Result<Record, RecordError> {
        if p.tail().is_empty() {
            return Record::decode(p.head());
        }
        let (mut rec, end) = Record::decode_header(p.head())?;
        if end != p.head().len() {
            // A head that runs into the body: join them (not made here).
            return Record::decode(&p.to_bytes());
        }
        rec.body = p.tail().clone();
        Ok(rec)
    }

    pub fn decode(buf: &Bytes) -> Result<Record, RecordError> {
        let (mut rec, end) = Record::decode_header(buf)?;
        rec.body = buf.slice(end..);
        Ok(rec)
    }

    /// Decodes everything but the body; returns where the body starts.
    fn decode_header(buf: &Bytes) -> Result<(Record, usize), RecordError> {
        let mut r = Reader { buf, pos: 0 };
        let version = r.u8()?;
        if version != 1 && version != VERSION {
            return Err(RecordError::Version(version));
        }
        let kind = match r.u8()? {
            1 => Kind::Write,
            2 => Kind::Query,
            3 => Kind::Http,
            k => return Err(RecordError::Kind(k)),
        };
        let (flags, points) = if version >= 2 {
            (r.u8()?, r.u32()?)
        } else {
            (0, 0)
        };
        let n = r.u8()? as usize;
        let method = r.text(n)?;
        let n = r.u16()? as usize;
        let path = r.text(n)?;
        let n = r.u32()? as usize;
        let query = r.text(n)?;
        let auth = match r.u32()? {
            u32::MAX => None,
            n => Some(r.text(n as usize)?),
        };
        let content_type = match r.u16()? {
            u16::MAX => None,
            n => Some(r.text(n as usize)?),
        };
        let body_start = r.pos;
        let rec = Record {
            kind,
            method,
            path,
            query,
            auth,
            content_type,
            gzip: flags & FLAG_GZIP != 0,
            points,
            body: Bytes::new(),
        };
        Ok((rec, body_start))
    }

    /// Whether `other` can ride in the same node request as `self`.
    pub fn coalesces_with(&self, other: &Record) -> bool {
        self.kind == Kind::Write
            && other.kind == Kind::Write
            && self.path == other.path
            && self.query == other.query
            && self.auth == other.auth
    }
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        let end = self.pos.checked_add(n).ok_or(RecordError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(RecordError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn text(&mut self, n: usize) -> Result<String, RecordError> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| RecordError::Utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            kind: Kind::Query,
            method: "POST".into(),
            path: "/query".into(),
            query: "db=x&q=CREATE+DATABASE+x".into(),
            auth: Some("Basic dTpw".into()),
            content_type: Some("application/x-www-form-urlencoded".into()),
            gzip: false,
            points: 0,
            body: Bytes::from_static(b"q=DROP"),
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        let w = Record::write(
            "/write",
            "db=d&precision=s".into(),
            None,
            Bytes::from_static(b"m f=1 1\n"),
        );
        assert_eq!(Record::decode(&w.encode()).unwrap(), w);
        let z = Record::gzip_write(
            "/write",
            "db=d".into(),
            None,
            crate::gzip::encode(b"m f=1 1\n"),
        );
        assert_eq!(Record::decode(&z.encode()).unwrap(), z);
        // The two-part payload: same bytes, same record, body not copied.
        for rec in [r, w, z] {
            let p = rec.to_payload();
            assert_eq!(p, rec.encode());
            let back = Record::decode_payload(&p).unwrap();
            assert_eq!(back, rec);
            assert_eq!(back.body.as_ptr(), rec.body.as_ptr());
            let joined = Record::decode_payload(&Payload::from(rec.encode())).unwrap();
            assert_eq!(joined, rec);
        }
    }

    #[test]
    fn version_1_records_still_decode() {
        // A version-1 write as earlier releases stored it: no flags byte.
        let mut v1 = vec![1u8, 1, 4];
        v1.extend_from_slice(b"POST");
        v1.extend_from_slice(&6u16.to_le_bytes());
        v1.extend_from_slice(b"/write");
        v1.extend_from_slice(&4u32.to_le_bytes());
        v1.extend_from_slice(b"db=d");
        v1.extend_from_slice(&u32::MAX.to_le_bytes());
        v1.extend_from_slice(&u16::MAX.to_le_bytes());
        v1.extend_from_slice(b"m f=1 1\n");
        let want = Record::write(
            "/write",
            "db=d".into(),
            None,
            Bytes::from_static(b"m f=1 1\n"),
        );
        assert_eq!(Record::decode(&Bytes::from(v1)).unwrap(), want);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let enc = sample().encode();
        let body_start = enc.len() - 6;
        for cut in 0..body_start {
            assert!(Record::decode(&enc.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_unknown_version_and_kind() {
        let mut enc = sample().encode().to_vec();
        enc[0] = 9;
        assert_eq!(
            Record::decode(&Bytes::from(enc.clone())),
            Err(RecordError::Version(9))
        );
        enc[0] = 2;
        enc[1] = 7;
        assert_eq!(Record::decode(&Bytes::from(enc)), Err(RecordError::Kind(7)));
    }

    #[test]
    fn coalescing_needs_same_target_and_credentials() {
        let a = Record::write("/write", "db=a".into(), None, Bytes::new());
        let b = Record::write("/write", "db=a".into(), None, Bytes::new());
        let c = Record::write("/write", "db=b".into(), None, Bytes::new());
        let d = Record::write(
            "/write",
            "db=a".into(),
            Some("Token x".into()),
            Bytes::new(),
        );
        assert!(a.coalesces_with(&b));
        assert!(!a.coalesces_with(&c));
        assert!(!a.coalesces_with(&d));
        assert!(!sample().coalesces_with(&sample()));
    }
}

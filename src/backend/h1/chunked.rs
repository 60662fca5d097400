//! A strict decoder for `Transfer-Encoding: chunked` bodies (RFC 9112
//! §7.1), for [`super::LeanBody`].
//!
//! It works on the connection's read buffer in place: chunk data is split
//! off that buffer (`split_to` + `freeze`, no copy) and handed out as is.
//! Chunk extensions are ignored, trailer fields are read and dropped. Anything
//! malformed (a size that is not hex, too long, or a chunk not followed by
//! CRLF) is an error, never a guess: the connection is then closed.

use bytes::{Buf, Bytes, BytesMut};

/// Longest size or trailer line accepted (extensions included).
const MAX_LINE: usize = 4096;

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes left.
    Data(u64),
    /// After a chunk's data: expecting CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Some chunk data.
    Data(Bytes),
    /// The buffer holds no complete next element: read more.
    NeedMore,
    /// The body is complete (the terminating empty line was consumed).
    End,
}

impl Chunked {
    /// Decodes from the front of `buf`, consuming what it used.
    pub(super) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, &'static str> {
        loop {
            match *self {
                Chunked::Done => return Ok(Step::End),
                Chunked::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::NeedMore);
                    };
                    let size = parse_size(&line)?;
                    *self = if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    *self = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok(Step::Data(data));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF");
                    }
                    buf.advance(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::NeedMore);
                    };
                    if line.is_empty() {
                        *self = Chunked::Done;
                    }
                }
            }
        }
    }
}

/// The next CRLF-terminated line (without the CRLF), if the buffer holds one.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, &'static str> {
    let Some(lf) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE {
            Err("chunk line too long")
        } else {
            Ok(None)
        };
    };
    if lf > MAX_LINE {
        return Err("chunk line too long");
    }
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err("chunk line not terminated by CRLF");
    }
    let mut line = buf.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// `1a3f` or `1a3f ; ext=v`: the size in hex, extensions ignored.
fn parse_size(line: &[u8]) -> Result<u64, &'static str> {
    let hex = match memchr::memchr(b';', line) {
        Some(i) => &line[..i],
        None => line,
    };
    let hex = hex
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(&hex[..0], |end| &hex[..=end]);
    if hex.is_empty() || hex.len() > 15 {
        return Err("bad chunk size");
    }
    let mut size = 0u64;
    for b in hex {
        let d = (*b as char).to_digit(16).ok_or("bad chunk size")?;
        size = size * 16 + u64::from(d);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes; returns the data and whether it ended.
    fn decode(wire: &[u8], step: usize) -> Result<(Vec<u8>, bool, BytesMut), &'static str> {
        let mut dec = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match dec.step(&mut buf)? {
                    Step::Data(d) => out.extend_from_slice(&d),
                    Step::NeedMore => break,
                    Step::End => return Ok((out, true, buf)),
                }
            }
        }
        Ok((out, false, buf))
    }

    const WIRE: &[u8] = b"5;name=v\r\nhello\r\n7 \r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

    #[test]
    fn decodes_in_any_split() {
        for step in 1..WIRE.len() {
            let (data, ended, rest) = decode(WIRE, step).unwrap();
            assert_eq!(data, b"hello, world", "step {step}");
            assert!(ended, "step {step}");
            // Bytes after the body stay in the buffer, untouched.
            assert!(b"NEXT".starts_with(&rest), "step {step}");
        }
    }

    #[test]
    fn incomplete_body_does_not_end() {
        let (data, ended, _) = decode(&WIRE[..25], 64).unwrap();
        assert_eq!(data, b"hello, wo");
        assert!(!ended);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXY0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"1000000000000000\r\n",
        ] {
            assert!(
                decode(wire, 64).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(decode(&long, 64).is_err());
    }
}

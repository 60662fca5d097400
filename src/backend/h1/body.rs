//! [`LeanBody`]: a response body read straight from the node's socket by
//! whoever polls it, handing the connection back to the pool the moment the
//! body is complete.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Idles;
use super::chunked::{Chunked, Step};

/// Bytes asked of the socket per read.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// How the body's end is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length` (or no body at all: 0): this many bytes left.
    Length(u64),
    Chunked(Chunked),
    /// Until the node closes the connection (never reused).
    Eof,
}

/// An open connection to a node and the bytes read from it not yet used.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) buf: BytesMut,
    /// Neither side said `Connection: close` and the framing allows reuse.
    pub(super) reuse: bool,
}

/// Why a body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed before message completed")]
    Cut,
    #[error("invalid chunked body: {0}")]
    Chunked(&'static str),
}

/// A node's response body. Polling it reads from the socket; once the body
/// ends cleanly on a reusable connection, the connection goes back to its
/// pool. Dropped before its end, it closes the connection.
pub struct LeanBody {
    /// `None` once the body is complete (or broke).
    conn: Option<Conn>,
    framing: Framing,
    pool: Arc<Idles>,
}

impl LeanBody {
    pub(super) fn new(conn: Conn, framing: Framing, pool: Arc<Idles>) -> LeanBody {
        let mut body = LeanBody {
            conn: Some(conn),
            framing,
            pool,
        };
        if framing == Framing::Length(0) {
            body.finish();
        }
        body
    }

    /// The body is complete: pool the connection if it may be reused (and
    /// the node sent nothing after the body).
    fn finish(&mut self) {
        self.framing = Framing::Length(0);
        if let Some(conn) = self.conn.take()
            && conn.reuse
            && conn.buf.is_empty()
        {
            self.pool.put(conn.stream);
        }
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.conn = None;
        self.framing = Framing::Length(0);
        Poll::Ready(Some(Err(e)))
    }
}

/// Reads what the socket has into `buf` (waiting for at least one byte or
/// EOF): the one read of this client, for response heads and bodies alike.
///
/// A read that returns less than it asked for found the socket empty, and
/// tokio is told so (its readiness is cleared, as after `EAGAIN`). Without
/// that, the next read of this socket, and the idle check before a pooled
/// connection is reused ([`super::still_open`]), each cost a `recvfrom`
/// that answers `EAGAIN`: two of the seven system calls of a small read.
/// It is safe because tokio clears only if no newer readiness event came in
/// since the read began; data that arrives later raises a new one.
pub(super) fn poll_fill(
    stream: &TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    let asked = buf.capacity() - buf.len();
    loop {
        ready!(stream.poll_read_ready(cx))?;
        let mut short = None;
        let read = stream.try_io(Interest::READABLE, || {
            let n = stream.try_read_buf(buf)?;
            if n > 0 && n < asked {
                // Drained: `WouldBlock` makes `try_io` clear the readiness.
                short = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match (read, short) {
            (_, Some(n)) => return Poll::Ready(Ok(n)),
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (r, None) => return Poll::Ready(r),
        }
    }
}

impl hyper::body::Body for LeanBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // Use what is buffered first; read only when it is not enough.
            match &mut this.framing {
                Framing::Length(0) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Framing::Length(left) if !conn.buf.is_empty() => {
                    let n =
                        usize::try_from(*left).map_or(conn.buf.len(), |l| l.min(conn.buf.len()));
                    let data = conn.buf.split_to(n).freeze();
                    *left -= n as u64;
                    if *left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(dec) => match dec.step(&mut conn.buf) {
                    Err(e) => return this.fail(BodyError::Chunked(e)),
                    Ok(Step::End) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::NeedMore) => {}
                },
                Framing::Eof if !conn.buf.is_empty() => {
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Length(_) | Framing::Eof => {}
            }
            match ready!(poll_fill(&conn.stream, &mut conn.buf, cx)) {
                Err(e) => return this.fail(BodyError::Io(e)),
                Ok(0) if this.framing == Framing::Eof => {
                    this.conn = None;
                    this.framing = Framing::Length(0);
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(BodyError::Cut),
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (self.conn.as_ref(), self.framing) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Framing::Length(n)) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

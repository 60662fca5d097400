//! A lean HTTP/1.1 client for reads to plain-http nodes: the whole exchange
//! runs in the calling task.
//!
//! Why: under an idle-read load (many small `GET /query` answers) the
//! gateway shares its CPU with the nodes and the load generator, so every
//! cycle spent per read costs throughput. A profile of that load showed
//! ~22% of the gateway's CPU in scheduler switches and wakeups and ~8% in
//! hyper_util's pooled client, which runs each connection in its own task:
//! the request goes to it over a channel, the response comes back over a
//! oneshot, body frames over another channel, plus an idle-watch task per
//! request. Here nothing is spawned and nothing is handed over: the task
//! serving the client writes the request and reads the answer itself.
//!
//! What it does: a [`Pool`] per node of idle keep-alive `TcpStream`s
//! (`TCP_NODELAY`, at most [`MAX_IDLE`], none reused after
//! [`MAX_IDLE_AGE`]); [`Pool::send`] writes the head and body in one
//! vectored write, parses the response head with `httparse` (at most
//! [`MAX_HEAD`] bytes), and frames the body per RFC 9112 (no body for HEAD,
//! 1xx, 204, 304; chunked; `Content-Length`; else until EOF, never reused).
//! The bytes read past the head are the body's start ([`LeanBody`] splits
//! them off the read buffer, no copy). A pooled connection the node closed
//! while idle (the write fails, or EOF/reset before any response byte) is
//! retried once on a fresh connection. Errors are [`SendError`]s, worded
//! like the hyper client's (the innermost cause, e.g. "Connection refused").
//!
//! What it deliberately does not do: TLS (https nodes keep the hyper
//! client, [`super::client`]), HTTP/2, pipelining, `Expect: 100-continue`
//! handshakes, upgrades (a 101 is an error), or a timeout of its own (the
//! caller puts its deadline around [`Pool::send`] and the body).

mod body;
mod chunked;
#[cfg(test)]
mod tests;

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub use body::{BodyError, LeanBody};
use body::{Conn, Framing, READ_CHUNK, poll_fill};
use chunked::Chunked;

use super::client::{Chunks, SendError};

/// Most idle connections kept per node.
pub const MAX_IDLE: usize = 128;
/// An idle connection older than this is closed instead of reused.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(30);
/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most response header fields accepted.
const MAX_HEADERS: usize = 128;
/// Same as the hyper client's connector.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most buffers per vectored write (well under any `IOV_MAX`).
const MAX_IOV: usize = 64;

/// One node's idle keep-alive connections, most recently pooled last (and
/// taken first, the least likely to have been closed by the node).
#[derive(Default)]
pub struct Idles {
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl Idles {
    /// The most recently pooled connection still young and open, if any.
    fn take(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE_AGE && still_open(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps `stream` for reuse, closing the ones too old to reuse (and the
    /// oldest one when full). Oldest first: the list is in pooling order.
    fn put(&self, stream: TcpStream) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        let expired = idle.partition_point(|(_, since)| now - *since >= MAX_IDLE_AGE);
        idle.drain(..expired);
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((stream, now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// An idle connection with nothing to read: not closed by the node, and
/// no stray bytes (which would be mistaken for the next answer). Asks the
/// kernel only when tokio has seen the socket readable since its last
/// read drained it (see [`body::poll_fill`]); otherwise it is a flag test.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Reads to one plain-http node (see the module doc).
#[derive(Default)]
pub struct Pool {
    idles: Arc<Idles>,
}

/// Why one exchange failed, and whether a fresh connection may retry it.
enum Failure {
    /// The connection was already closed by the node (nothing was answered).
    Stale(String),
    Other(String),
}

impl Pool {
    /// Sends `req` (from [`super::client::build`]) and reads the response
    /// head; the body streams from the socket as it is polled.
    pub async fn send(&self, req: Request<Chunks>) -> Result<Response<LeanBody>, SendError> {
        let (parts, body) = req.into_parts();
        let host = parts
            .uri
            .host()
            .ok_or_else(|| SendError::Build("URI without a host".into()))?;
        let port = parts.uri.port_u16().unwrap_or(80);
        let head = request_head(&parts, body.len());
        let no_body = parts.method == Method::HEAD;
        let mut stream = self.idles.take();
        loop {
            let pooled = stream.is_some();
            let s = match stream.take() {
                Some(s) => s,
                None => connect(host, port).await?,
            };
            match exchange(s, &head, &body, no_body).await {
                Ok((parts, conn, framing)) => {
                    let body = LeanBody::new(conn, framing, self.idles.clone());
                    return Ok(Response::from_parts(parts, body));
                }
                // The next turn connects afresh: retried once.
                Err(Failure::Stale(_)) if pooled => {}
                Err(Failure::Stale(e) | Failure::Other(e)) => return Err(SendError::Connect(e)),
            }
        }
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, SendError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| SendError::Connect("tcp connect timed out".into()))?
        .map_err(|e| SendError::Connect(e.to_string()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| SendError::Connect(e.to_string()))?;
    Ok(stream)
}

/// The request line and headers, with `Host` and (for a body, or a method
/// that expects one) `Content-Length`.
fn request_head(parts: &http::request::Parts, body_len: u64) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let host = parts.uri.host().unwrap_or_default();
    let mut head = Vec::with_capacity(256 + target.len() + 64 * parts.headers.len());
    let push = |head: &mut Vec<u8>, parts: &[&[u8]]| parts.iter().for_each(|p| head.extend(*p));
    push(
        &mut head,
        &[parts.method.as_str().as_bytes(), b" ", target.as_bytes()],
    );
    push(&mut head, &[b" HTTP/1.1\r\nhost: ", host.as_bytes()]);
    if let Some(port) = parts.uri.port() {
        push(&mut head, &[b":", port.as_str().as_bytes()]);
    }
    head.extend(b"\r\n");
    for (k, v) in &parts.headers {
        if k == CONTENT_LENGTH || k == TRANSFER_ENCODING || k == http::header::HOST {
            continue;
        }
        push(
            &mut head,
            &[k.as_str().as_bytes(), b": ", v.as_bytes(), b"\r\n"],
        );
    }
    let expects_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    if body_len > 0 || expects_body {
        let n = body_len.to_string();
        push(&mut head, &[b"content-length: ", n.as_bytes(), b"\r\n"]);
    }
    head.extend(b"\r\n");
    head
}

/// Writes `head` then `body`, vectored, until all is written.
async fn write_request(stream: &mut TcpStream, head: &[u8], body: &Chunks) -> io::Result<()> {
    if body.is_empty() {
        return stream.write_all(head).await;
    }
    let mut bufs: Vec<&[u8]> = std::iter::once(head)
        .chain(body.iter().map(|b| &b[..]))
        .collect();
    let mut first = 0;
    while first < bufs.len() {
        let slices: Vec<IoSlice<'_>> = bufs[first..]
            .iter()
            .take(MAX_IOV)
            .map(|b| IoSlice::new(b))
            .collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && first < bufs.len() {
            let len = bufs[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                bufs[first] = &bufs[first][n..];
                n = 0;
            }
        }
    }
    Ok(())
}

/// A closed or reset connection: what an idle connection the node dropped
/// looks like.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// One request/response on `stream`, up to the end of the response head.
async fn exchange(
    mut stream: TcpStream,
    head: &[u8],
    body: &Chunks,
    no_body: bool,
) -> Result<(http::response::Parts, Conn, Framing), Failure> {
    if let Err(e) = write_request(&mut stream, head, body).await {
        // Nothing was answered: the node never saw a whole request.
        return Err(Failure::Stale(e.to_string()));
    }
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut answered = false;
    loop {
        // Informational answers (100 Continue, 103) precede the real one.
        while let Some((parts, len, reuse)) = parse_head(&buf).map_err(Failure::Other)? {
            let _ = buf.split_to(len);
            answered = true;
            if parts.status.is_informational() {
                if parts.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(Failure::Other("unexpected 101 Switching Protocols".into()));
                }
                continue;
            }
            let framing = framing(&parts, no_body).map_err(Failure::Other)?;
            let reuse = reuse && framing != Framing::Eof && !conflicting(&parts.headers);
            let conn = Conn { stream, buf, reuse };
            return Ok((parts, conn, framing));
        }
        if buf.len() > MAX_HEAD {
            return Err(Failure::Other("response head too large".into()));
        }
        match std::future::poll_fn(|cx| poll_fill(&stream, &mut buf, cx)).await {
            Ok(0) if !answered && buf.is_empty() => {
                return Err(Failure::Stale(
                    "connection closed before message completed".into(),
                ));
            }
            Ok(0) => {
                return Err(Failure::Other(
                    "connection closed before message completed".into(),
                ));
            }
            Err(e) if !answered && buf.is_empty() && is_closed(&e) => {
                return Err(Failure::Stale(e.to_string()));
            }
            Err(e) => return Err(Failure::Other(e.to_string())),
            Ok(_) => {}
        }
    }
}

/// Both `Transfer-Encoding` and `Content-Length`: framed by the former,
/// but the connection is not trusted again (RFC 9112 §6.3).
fn conflicting(h: &HeaderMap) -> bool {
    h.contains_key(TRANSFER_ENCODING) && h.contains_key(CONTENT_LENGTH)
}

/// A complete response head at the front of `buf`: its parts, its length,
/// and whether its `Connection` and version allow reuse.
fn parse_head(buf: &[u8]) -> Result<Option<(http::response::Parts, usize, bool)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("invalid response head: {e}")),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or("invalid response status")?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let (mut close, mut keep_alive) = (false, false);
    for f in resp.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes())
            .map_err(|_| format!("invalid header name {:?}", f.name))?;
        let value = HeaderValue::from_bytes(f.value)
            .map_err(|_| format!("invalid value of header {}", f.name))?;
        if name == CONNECTION {
            for token in f.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        headers.append(name, value);
    }
    let reuse = !close && (version == Version::HTTP_11 || keep_alive);
    let mut parts = Response::new(()).into_parts().0;
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some((parts, len, reuse)))
}

/// How the body after `parts` ends (RFC 9112 §6.3).
fn framing(parts: &http::response::Parts, no_body: bool) -> Result<Framing, String> {
    let s = parts.status;
    if no_body || s == StatusCode::NO_CONTENT || s == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Length(0));
    }
    if let Some(last) = parts.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let chunked = last
            .as_bytes()
            .rsplit(|b| *b == b',')
            .next()
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked {
            Framing::Chunked(Chunked::Size)
        } else {
            Framing::Eof
        });
    }
    let mut length = None;
    for v in parts.headers.get_all(CONTENT_LENGTH) {
        for n in v.as_bytes().split(|b| *b == b',') {
            let n = n.trim_ascii();
            let parsed = (!n.is_empty() && n.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(n).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or("invalid Content-Length")?;
            if length.is_some_and(|l| l != parsed) {
                return Err("conflicting Content-Length values".into());
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(Framing::Eof, Framing::Length))
}

//! What every handler receives: the client's request, not yet read.
//!
//! This is the bottom of the server's import graph: `routes.rs` builds a
//! [`ClientRequest`] and hands it to a handler; handlers read the body (once,
//! bounded by size, time and the gateway-wide [`BodyBudget`]) and their
//! parameters from here. Nothing in this
//! file imports a handler or the router, so the arrows run one way:
//! routes → handlers → request.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, header};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Gateway;

/// Which API a request came in on, so errors use that API's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    V1,
    V2,
}

/// The flavour of a path: everything under `/api/v2` is v2.
pub fn flavor_of(path: &str) -> Flavor {
    if path.starts_with("/api/v2") {
        Flavor::V2
    } else {
        Flavor::V1
    }
}

/// What a handler needs from the request, with the body not yet read.
pub struct ClientRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    /// The client's `Authorization`, when it is theirs to forward (not the
    /// gateway's own token).
    pub client_auth: Option<String>,
    /// Who is calling, when the gateway checks credentials.
    pub principal: Option<std::sync::Arc<super::auth::Principal>>,
    pub body: Option<Incoming>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// Over `max_body_size`.
    #[error("Request Entity Too Large")]
    TooLarge,
    /// Not complete within `request_timeout`.
    #[error("timed out reading the request body")]
    Timeout,
    /// `max_inflight_bytes` is spent: other requests hold it (503).
    #[error("gateway is busy: too many request bytes in flight, retry later")]
    Busy,
    /// The connection failed mid-body (or the body was already taken).
    #[error("unable to read request body: {0}")]
    Io(String),
}

/// Parses query or form parameters into `T`. As Go's `Values.Get`, the first
/// value of a repeated parameter wins; unknown parameters are ignored.
pub fn params<T: DeserializeOwned>(encoded: &[u8]) -> Result<T, serde_urlencoded::de::Error> {
    let mut seen = std::collections::HashSet::new();
    let deduped = rewrite_params(encoded, |k, v| seen.insert(k.to_string()).then_some(v));
    serde_urlencoded::from_str(&deduped)
}

/// Re-encodes query or form parameters in order, each value replaced by
/// what `f` returns for it, or dropped when `f` returns `None`. This is how
/// the gateway builds what it forwards: everything else stays as the client
/// sent it.
pub fn rewrite_params<'a>(
    encoded: &'a [u8],
    mut f: impl FnMut(&str, Cow<'a, str>) -> Option<Cow<'a, str>>,
) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(encoded) {
        if let Some(v) = f(&k, v) {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

// --- `/query`'s own parameters, shared by `query.rs` and `mutate.rs` ---

/// The first value of `key` in a query string or form body (Go's
/// `Values.Get`), decoded as [`url::form_urlencoded::parse`] decodes it.
/// One pass that decodes only the pair it returns (and keys written with
/// `%` or `+`): this runs on every `/query`, where [`params`] would build,
/// re-encode and re-parse the whole string.
pub fn first_param(encoded: &[u8], key: &str) -> Option<String> {
    encoded
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let raw_key = pair.split(|b| *b == b'=').next().unwrap_or(pair);
            let plain = !raw_key.iter().any(|b| matches!(b, b'%' | b'+'));
            if plain && raw_key != key.as_bytes() {
                return None;
            }
            let (k, v) = url::form_urlencoded::parse(pair).next()?;
            (k == key).then(|| v.into_owned())
        })
}

/// The first `q` of a query string or form body.
pub fn q_of(encoded: &[u8]) -> Option<String> {
    first_param(encoded, "q")
}

/// The first non-empty `db` of a form body, else of the query string (as
/// Go's `FormValue`).
pub fn db_of(form: Option<&[u8]>, query: &str) -> Option<String> {
    let db = |e: &[u8]| first_param(e, "db").filter(|d| !d.is_empty());
    form.and_then(db).or_else(|| db(query.as_bytes()))
}

/// Replaces every `q` in a form-encoded string, keeping the other
/// parameters in order.
pub fn with_q(form: &str, q: &str) -> String {
    rewrite_params(form.as_bytes(), |k, v| {
        Some(if k == "q" { q.into() } else { v })
    })
}

impl ClientRequest {
    /// The flavour of the path the client called.
    pub fn flavor(&self) -> Flavor {
        flavor_of(&self.path)
    }

    /// The request's `Content-Type`, if it is text.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// Whether the body is an HTML form (`q=…&db=…`).
    pub fn is_form(&self) -> bool {
        self.content_type()
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    }

    /// Reads the whole body once (so fallback and fan-out can resend it),
    /// within `max_body_size` (0 = unlimited), the request timeout and the
    /// gateway's [`BodyBudget`], as one buffer (see [`ClientRequest::read_chunks`]).
    pub async fn read_body(&mut self, gw: &Gateway) -> Result<Bytes, BodyReadError> {
        Ok(self.read_chunks(gw).await?.join())
    }

    /// Reads the whole body as the chunks it arrived in, under the same
    /// limits as [`ClientRequest::read_body`].
    ///
    /// Memory follows the bytes that arrive, never the `Content-Length` the
    /// client declares: chunks are kept as they come. A declared length over
    /// the limit is refused up front. Past the limit (or the budget) the rest
    /// of the body is still read and discarded (up to a bound), so the client
    /// receives the 413 (or 503) instead of a broken pipe.
    pub async fn read_chunks(&mut self, gw: &Gateway) -> Result<BodyChunks, BodyReadError> {
        let max = gw.config.max_body_size;
        let limit = if max == 0 { usize::MAX } else { max };
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = self
            .body
            .take()
            .ok_or_else(|| BodyReadError::Io("body already read".into()))?;
        if body.is_end_stream() {
            // No body (a GET): no timer, no buffer.
            return Ok(BodyChunks::default());
        }
        let drain_cap = limit.saturating_mul(4).max(64 << 20);
        let read = async {
            let mut chunks: Vec<Bytes> = Vec::new();
            let mut len = 0usize;
            let mut held: Option<OwnedSemaphorePermit> = None;
            let mut refused = declared
                .is_some_and(|n| n > limit as u64)
                .then_some(BodyReadError::TooLarge);
            let mut seen = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| BodyReadError::Io(e.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                seen = seen.saturating_add(data.len());
                if refused.is_some() {
                    if seen > drain_cap {
                        break;
                    }
                    continue;
                }
                let taken = if len + data.len() > limit {
                    Err(BodyReadError::TooLarge)
                } else {
                    gw.body_budget.take(data.len())
                };
                match taken {
                    Err(e) => {
                        refused = Some(e);
                        chunks = Vec::new();
                        held = None;
                    }
                    Ok(permit) => {
                        held = merge(held, permit);
                        len += data.len();
                        chunks.push(data);
                    }
                }
            }
            if let Some(e) = refused {
                return Err(e);
            }
            Ok(BodyChunks {
                chunks,
                len,
                permit: held,
            })
        };
        match tokio::time::timeout(gw.config.request_timeout, read).await {
            Err(_) => Err(BodyReadError::Timeout),
            Ok(r) => r,
        }
    }
}

/// What is left of `max_inflight_bytes`: a body takes from it as its bytes
/// arrive and gives back when the last copy of the body is dropped (the
/// permit travels inside the [`Bytes`]). Exhausted, requests get a 503 with
/// `Retry-After` instead of growing the process without bound.
pub struct BodyBudget(Option<Arc<Semaphore>>);

impl BodyBudget {
    /// A budget of `bytes` (0 = unlimited).
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget((bytes > 0).then(|| Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS)))))
    }

    /// Bytes left, or `None` when unlimited.
    pub fn available(&self) -> Option<usize> {
        self.0.as_ref().map(|s| s.available_permits())
    }

    /// Takes `n` bytes from the budget, without waiting.
    fn take(&self, n: usize) -> Result<Option<OwnedSemaphorePermit>, BodyReadError> {
        let Some(sem) = &self.0 else { return Ok(None) };
        if n == 0 {
            return Ok(None);
        }
        let n = u32::try_from(n).map_err(|_| BodyReadError::Busy)?;
        sem.clone()
            .try_acquire_many_owned(n)
            .map(Some)
            .map_err(|_| BodyReadError::Busy)
    }
}

fn merge(
    held: Option<OwnedSemaphorePermit>,
    more: Option<OwnedSemaphorePermit>,
) -> Option<OwnedSemaphorePermit> {
    match (held, more) {
        (Some(mut a), Some(b)) => {
            a.merge(b);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

/// A request body as it arrived: its chunks, and the share of the
/// [`BodyBudget`] they hold until every copy of their bytes is dropped.
#[derive(Default)]
pub struct BodyChunks {
    pub chunks: Vec<Bytes>,
    pub len: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl BodyChunks {
    /// The body in one buffer (the chunks copied once into an exact-size
    /// one), holding the budget.
    pub fn join(self) -> Bytes {
        let mut buf = Vec::with_capacity(self.len);
        for c in &self.chunks {
            buf.extend_from_slice(c);
        }
        budgeted(buf, self.permit)
    }

    /// Hands each of `pieces` (the body's bytes, stored without joining)
    /// its share of the budget, so the budget is given back as they go.
    pub fn budget_pieces(mut self, pieces: Vec<Bytes>) -> Vec<Bytes> {
        pieces
            .into_iter()
            .map(|buf| {
                let n = buf.len();
                let share = self
                    .permit
                    .as_mut()
                    .and_then(|h| h.split(n.min(h.num_permits())));
                budgeted(buf, share)
            })
            .collect()
    }
}

/// `buf` as `Bytes` that give `permit` back when the last copy is dropped.
fn budgeted<B>(buf: B, permit: Option<OwnedSemaphorePermit>) -> Bytes
where
    B: AsRef<[u8]> + Into<Bytes> + Send + 'static,
{
    match permit {
        None => buf.into(),
        Some(permit) => Bytes::from_owner(Budgeted {
            buf,
            _permit: permit,
        }),
    }
}

/// A body's bytes with their share of the budget.
struct Budgeted<B> {
    buf: B,
    _permit: OwnedSemaphorePermit,
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Budgeted<B> {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    struct P {
        db: Option<String>,
        q: Option<String>,
    }

    #[test]
    fn params_take_the_first_value_and_ignore_unknowns() {
        let p: P = params(b"q=SHOW+DATABASES&junk=1&q=DROP+DATABASE+x&db=a").unwrap();
        assert_eq!(p.q.as_deref(), Some("SHOW DATABASES"));
        assert_eq!(p.db.as_deref(), Some("a"));
        assert_eq!(params::<P>(b"").unwrap(), P::default());
    }

    #[test]
    fn first_param_reads_as_the_full_parse_does() {
        let cases: [&[u8]; 12] = [
            b"q=SELECT+1&db=a",
            b"db=a&q=SELECT%20*%20FROM%20m&q=DROP+DATABASE+a",
            b"%71=SHOW+USERS&q=later",
            b"q%3D=x&q=y",
            b"q+=x&q=y",
            b"&&q&db=",
            b"qq=x&dbq=y&q=%ZZ%E9",
            b"db=%C3%A9&db=b",
            b"x=1",
            b"",
            b"q=a=b&db=c=d",
            b"Q=upper&DB=upper",
        ];
        for c in cases {
            let full: P = params(c).unwrap();
            assert_eq!(
                first_param(c, "q"),
                full.q,
                "{:?}",
                String::from_utf8_lossy(c)
            );
            assert_eq!(
                first_param(c, "db"),
                full.db,
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn rewriting_keeps_order_and_repeats() {
        let out = rewrite_params(b"a=1&b=x+y&a=2&c=3", |k, v| (k != "c").then_some(v));
        assert_eq!(out, "a=1&b=x+y&a=2");
    }

    #[test]
    fn flavours_and_body_errors_read_as_influxdb_does() {
        assert_eq!(flavor_of("/api/v2/write"), Flavor::V2);
        assert_eq!(flavor_of("/write"), Flavor::V1);
        assert_eq!(
            BodyReadError::TooLarge.to_string(),
            "Request Entity Too Large"
        );
        assert_eq!(
            BodyReadError::Io("reset".into()).to_string(),
            "unable to read request body: reset"
        );
    }
}

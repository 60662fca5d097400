//! What every handler receives: the client's request, not yet read.
//!
//! This is the bottom of the server's import graph: `routes.rs` builds a
//! [`ClientRequest`] and hands it to a handler; handlers read the body (once,
//! bounded by size and time) and their parameters from here. Nothing in this
//! file imports a handler or the router, so the arrows run one way:
//! routes → handlers → request.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http::{Method, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

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
    /// within `max_body_size` (0 = unlimited) and the request timeout.
    ///
    /// Past the limit the rest of the body is still read and discarded (up to
    /// a bound), so the client receives the 413 instead of a broken pipe.
    pub async fn read_body(&mut self, gw: &Gateway) -> Result<Bytes, BodyReadError> {
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
        let drain_cap = limit.saturating_mul(4).max(64 << 20);
        let read = async {
            // No up-front buffer for bodiless requests (most reads).
            let cap = declared.map_or(0, |n| (n as usize).min(limit));
            let mut buf = BytesMut::with_capacity(cap);
            let mut seen = 0usize;
            let mut too_large = declared.is_some_and(|n| n > limit as u64);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| BodyReadError::Io(e.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if too_large {
                    seen = seen.saturating_add(data.len());
                    if seen > drain_cap {
                        break;
                    }
                    continue;
                }
                if buf.len() + data.len() > limit {
                    too_large = true;
                    seen = buf.len() + data.len();
                    buf = BytesMut::new();
                    continue;
                }
                buf.extend_from_slice(&data);
            }
            if too_large {
                Err(BodyReadError::TooLarge)
            } else {
                Ok(buf.freeze())
            }
        };
        match tokio::time::timeout(gw.config.request_timeout, read).await {
            Err(_) => Err(BodyReadError::Timeout),
            Ok(r) => r,
        }
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

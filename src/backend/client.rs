//! Building and sending requests to one node.
//!
//! One pooled HTTP client is shared by every node (connections are pooled per
//! host, so nodes do not interfere) for writes, mutations, health checks and
//! reads to https nodes; reads to plain-http nodes go through each node's
//! lean in-task client ([`super::h1`]) with a request built here. Here the
//! per-node rewrite happens: the
//! node's configured credentials replace the client's, and nothing the
//! gateway consumed itself (its own token) ever leaves.
//!
//! TLS: https nodes go through rustls ([`NodeConnector`]). Each node may
//! trust its own CA and present its own client certificate, while the
//! client stays one pool: the connector picks the node's TLS settings by
//! the request's host and port, so every caller keeps using one
//! [`HttpClient`].
//!
//! Request bodies are [`Chunks`]: a list of buffers sent back to back, so a
//! replicator's coalesced batch goes out as the log's own record slices
//! (vectored writes) instead of one joined copy per node.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Uri;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::config::NodeConfig;
use crate::config::tls::{NodeTls, TlsError};

pub type HttpClient = Client<NodeConnector, Chunks>;

type Https = HttpsConnector<HttpConnector>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Plain TCP for http nodes, rustls for https ones, with each https node's
/// own `tls` settings (found by host and port; anything else uses the
/// built-in roots and no client certificate).
#[derive(Clone)]
pub struct NodeConnector {
    default: Https,
    by_authority: Arc<HashMap<String, Https>>,
}

/// `host:port` with the scheme's default port filled in.
fn authority(host: &str, port: Option<u16>, https: bool) -> String {
    let port = port.unwrap_or(if https { 443 } else { 80 });
    format!("{}:{port}", host.to_ascii_lowercase())
}

fn https_connector(tls: &NodeTls) -> Result<Https, TlsError> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(3)));
    http.set_keepalive(Some(Duration::from_secs(30)));
    // hyper-rustls does the TLS; the TCP connector must accept https URIs.
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.client_config()?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

impl NodeConnector {
    /// One TLS configuration per https node whose `tls` differs from the default.
    pub fn new(nodes: &[NodeConfig]) -> Result<NodeConnector, TlsError> {
        let mut by_authority = HashMap::new();
        for n in nodes.iter().filter(|n| n.url.scheme() == "https") {
            if n.tls.insecure_skip_verify {
                tracing::warn!(
                    node = %n.name,
                    url = %n.url,
                    "TLS CERTIFICATE VERIFICATION IS DISABLED for this node \
                     (insecure_skip_verify: true): anyone on the path can read \
                     and change its traffic, credentials included"
                );
            }
            if n.tls.is_default() {
                continue;
            }
            let host = n.url.host_str().unwrap_or_default();
            by_authority.insert(
                authority(host, n.url.port(), true),
                https_connector(&n.tls)?,
            );
        }
        Ok(NodeConnector {
            default: https_connector(&NodeTls::default())?,
            by_authority: Arc::new(by_authority),
        })
    }
}

impl tower_service::Service<Uri> for NodeConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Every inner connector is an `HttpConnector`, which is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let key = authority(uri.host().unwrap_or_default(), uri.port_u16(), https);
        let mut inner = match self.by_authority.get(&key) {
            Some(c) if https => c.clone(),
            _ => self.default.clone(),
        };
        inner.call(uri)
    }
}

/// A request body of several buffers, sent in order with an exact
/// `Content-Length`. Cloning it clones `Bytes` handles, not data, so a
/// retry costs nothing.
#[derive(Clone, Debug, Default)]
pub struct Chunks {
    bufs: VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.remaining += b.len() as u64;
            self.bufs.push_back(b);
        }
    }

    /// The buffers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.bufs.iter()
    }
}

impl From<Bytes> for Chunks {
    fn from(b: Bytes) -> Chunks {
        let mut c = Chunks::default();
        c.push(b);
        c
    }
}

impl FromIterator<Bytes> for Chunks {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Chunks {
        let mut c = Chunks::default();
        for b in iter {
            c.push(b);
        }
        c
    }
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this.bufs.pop_front() {
            Some(b) => {
                this.remaining -= b.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.bufs.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Why a request to a node produced no HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connection refused or reset, DNS failure, or a broken response.
    #[error("connection error: {0}")]
    Connect(String),
    /// No response headers within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request could not even be built (a bad path or header from the log).
    #[error("bad request: {0}")]
    Build(String),
}

/// The shared client for `nodes` (their `tls` settings; see [`NodeConnector`]).
pub fn new_client(nodes: &[NodeConfig]) -> Result<HttpClient, TlsError> {
    let connector = NodeConnector::new(nodes)?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        // Reads keep up to this many idle connections per node, so 64+
        // concurrent reads per node reuse connections instead of churning.
        .pool_max_idle_per_host(256)
        .build(connector))
}

/// A request in node-independent form; [`build`] turns it into one node's request.
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Percent-encoded query string (may be empty).
    pub query: &'a str,
    /// The client's `Authorization`, if it should be forwarded.
    pub auth: Option<&'a str>,
    /// Extra headers to pass through (Accept, Content-Type, ...).
    pub headers: &'a HeaderMap,
    pub body: Chunks,
    /// Set when `body` is already gzip-compressed.
    pub gzipped: bool,
}

/// Query parameters that carry v1 credentials.
fn is_cred_param(k: &str) -> bool {
    k == "u" || k == "p"
}

/// Builds the request for `node`, applying its credentials.
///
/// Precedence: a node `token` replaces any client credentials (header and
/// `u`/`p`); else node `username`/`password` replace them (as `u`/`p` on v1
/// paths, as `Token user:pass` on `/api/v2` paths, which InfluxDB 1.8+
/// accepts); else the client's own `Authorization` and `u`/`p` pass through.
pub fn build(node: &NodeConfig, out: &Outgoing<'_>) -> Result<Request<Chunks>, SendError> {
    let node_creds = node.token.is_some() || node.username.is_some();
    // Borrowed unless credentials are rewritten: a read's query is copied
    // once, into the URI below.
    let mut query: Cow<'_, str> = if node_creds && out.query.contains(['u', 'p']) {
        let pairs =
            url::form_urlencoded::parse(out.query.as_bytes()).filter(|(k, _)| !is_cred_param(k));
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into()
    } else {
        out.query.into()
    };
    let v2 = out.path.starts_with("/api/v2");
    let mut auth: Option<String> = None;
    if let Some(t) = &node.token {
        auth = Some(format!("Token {t}"));
    } else if let Some(u) = &node.username {
        let p = node.password.as_deref().unwrap_or("");
        if v2 {
            auth = Some(format!("Token {u}:{p}"));
        } else {
            let mut s = url::form_urlencoded::Serializer::new(query.into_owned());
            s.append_pair("u", u).append_pair("p", p);
            query = s.finish().into();
        }
    } else if let Some(a) = out.auth {
        auth = Some(a.to_string());
    }

    let base = node.url.as_str().trim_end_matches('/');
    let mut uri = String::with_capacity(base.len() + out.path.len() + query.len() + 1);
    uri.push_str(base);
    uri.push_str(out.path);
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&query);
    }
    let method =
        Method::from_bytes(out.method.as_bytes()).map_err(|e| SendError::Build(e.to_string()))?;
    let uri = Uri::try_from(uri).map_err(|e| SendError::Build(format!("invalid URI: {e}")))?;
    let mut req = Request::builder().method(method).uri(uri);
    let headers = req
        .headers_mut()
        .ok_or_else(|| SendError::Build("invalid request".into()))?;
    for (k, v) in out.headers {
        if k != HOST
            && k != AUTHORIZATION
            && k != CONTENT_ENCODING
            && k != http::header::CONTENT_LENGTH
        {
            headers.append(k, v.clone());
        }
    }
    if let Some(a) = auth {
        let v = HeaderValue::from_str(&a)
            .map_err(|_| SendError::Build("invalid Authorization value".into()))?;
        headers.insert(AUTHORIZATION, v);
    }
    if out.gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if !out.body.is_empty() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    req.body(out.body.clone())
        .map_err(|e| SendError::Build(e.to_string()))
}

/// Sends with a deadline on the response headers (the body streams after).
pub async fn send(
    client: &HttpClient,
    req: Request<Chunks>,
    timeout: Duration,
) -> Result<Response<Incoming>, SendError> {
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(SendError::Timeout(timeout)),
        Ok(Err(e)) => {
            // The innermost cause says what actually went wrong ("Connection refused").
            let mut msg = e.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            Err(SendError::Connect(msg))
        }
        Ok(Ok(resp)) => Ok(resp),
    }
}

/// Reads a response body up to `cap` bytes (the rest is discarded).
pub async fn read_capped(body: hyper::body::Incoming, cap: usize, timeout: Duration) -> Bytes {
    let fut = async {
        let mut out = BytesMut::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                let room = cap.saturating_sub(out.len());
                out.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        out.freeze()
    };
    tokio::time::timeout(timeout, fut).await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(token: Option<&str>, user: Option<(&str, &str)>) -> NodeConfig {
        NodeConfig {
            name: "n".into(),
            url: url::Url::parse("http://127.0.0.1:8086").unwrap(),
            token: token.map(Into::into),
            username: user.map(|u| u.0.into()),
            password: user.map(|u| u.1.into()),
            gzip: crate::config::WireGzip::Auto,
            tls: Default::default(),
        }
    }

    fn out<'a>(
        path: &'a str,
        query: &'a str,
        auth: Option<&'a str>,
        h: &'a HeaderMap,
    ) -> Outgoing<'a> {
        Outgoing {
            method: "POST",
            path,
            query,
            auth,
            headers: h,
            body: Chunks::default(),
            gzipped: false,
        }
    }

    #[test]
    fn client_credentials_pass_through_without_node_creds() {
        let h = HeaderMap::new();
        let r = build(
            &node(None, None),
            &out("/write", "db=a&u=x&p=y", Some("Basic abc"), &h),
        )
        .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "http://127.0.0.1:8086/write?db=a&u=x&p=y"
        );
        assert_eq!(r.headers()[AUTHORIZATION], "Basic abc");
    }

    #[test]
    fn node_token_replaces_client_credentials() {
        let h = HeaderMap::new();
        let r = build(
            &node(Some("T"), None),
            &out(
                "/api/v2/write",
                "bucket=b&u=x&p=y",
                Some("Token client"),
                &h,
            ),
        )
        .unwrap();
        assert_eq!(r.uri().query(), Some("bucket=b"));
        assert_eq!(r.headers()[AUTHORIZATION], "Token T");
    }

    #[test]
    fn node_user_password_on_v1_and_v2_paths() {
        let h = HeaderMap::new();
        let n = node(None, Some(("admin", "pw")));
        let r = build(
            &n,
            &out("/query", "q=SHOW+DATABASES&p=leak", Some("Basic abc"), &h),
        )
        .unwrap();
        assert_eq!(r.uri().query(), Some("q=SHOW+DATABASES&u=admin&p=pw"));
        assert!(r.headers().get(AUTHORIZATION).is_none());
        let r = build(&n, &out("/api/v2/write", "bucket=db", None, &h)).unwrap();
        assert_eq!(r.headers()[AUTHORIZATION], "Token admin:pw");
    }
}

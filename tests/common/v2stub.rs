//! An in-process stand-in for an InfluxDB 2.7 server.
//!
//! Why: no InfluxDB 2.x server can be installed on the test machines, yet the
//! gateway must talk to 2.x nodes (per-node tokens, per-instance org and
//! bucket IDs, the `{"code","message"}` error shape). This stub implements
//! the slice of the 2.7 HTTP API the gateway uses, with the status codes and
//! messages of 2.7 (see the reference notes on the 2.x API), and records
//! every request so tests can assert what a node received.
//!
//! Design notes:
//! - It runs on its own thread with its own single-threaded runtime, so it
//!   keeps answering while a test blocks its own thread (e.g. waiting on a
//!   Python client subprocess) and whatever runtime flavour the test uses.
//! - Org and bucket IDs are random 16-hex-digit strings, different for every
//!   instance, as on real 2.x; the org also gets the `_tasks` and
//!   `_monitoring` system buckets.
//! - Line protocol is checked only roughly (measurement, a space, `k=v`
//!   fields, an optional integer timestamp); any bad line rejects the whole
//!   batch with 400 and stores nothing, like 2.7. Good lines are stored as
//!   received; deletes are recorded, not applied.
//! - `set_down(true)` answers 503 to everything; `set_unreachable(true)`
//!   drops every connection without an answer.
//! - Tests can script answers per path ([`V2Stub::script`],
//!   [`V2Stub::script_when`], see `script.rs`): scripted answers come after
//!   the two switches above and before the normal 2.7 behaviour.
//! - Each record keeps the raw body and the decoded one (gzip, including
//!   multi-member gzip, which 2.x's Go reader accepts too), the arrival time
//!   and the status the stub answered.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

mod api;
mod lp;
mod script;

#[allow(unused_imports)]
pub use script::{Canned, Condition};

/// What the stub is set up with (the result of 2.x onboarding).
#[derive(Clone, Debug)]
pub struct V2Options {
    /// The operator token clients must send.
    pub token: String,
    /// The organisation name.
    pub org: String,
    /// The initial bucket's name.
    pub bucket: String,
}

impl Default for V2Options {
    fn default() -> Self {
        V2Options {
            token: "stub-operator-token".into(),
            org: "inmate".into(),
            bucket: "telegraf".into(),
        }
    }
}

/// One request as the stub received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The body as sent, before gzip decoding.
    pub body: Vec<u8>,
    /// The body after gzip decoding (every member of a multi-member
    /// stream) when `Content-Encoding` says gzip and it decodes; otherwise
    /// the raw body.
    pub decoded: Vec<u8>,
    /// When the request's head arrived.
    pub at: Instant,
    /// The status the stub answered (0 when it dropped the connection).
    pub status: u16,
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first URL query parameter with this name, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        param(&self.query, name)
    }

    /// The decoded body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.decoded).into_owned()
    }

    /// The non-empty lines of the decoded body.
    pub fn lines(&self) -> Vec<String> {
        self.text()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A `POST /api/v2/delete` the stub accepted.
#[derive(Clone, Debug)]
pub struct DeleteRequest {
    pub bucket_id: String,
    pub start: String,
    pub stop: String,
    pub predicate: String,
}

struct Bucket {
    id: String,
    name: String,
    org_id: String,
    system: bool,
    retention_seconds: i64,
    lines: Vec<String>,
}

struct State {
    token: String,
    org_id: String,
    org_name: String,
    buckets: Vec<Bucket>,
    requests: Vec<RecordedRequest>,
    deletes: Vec<DeleteRequest>,
    down: bool,
    unreachable: bool,
    rules: Vec<script::Rule>,
}

type Shared = Arc<Mutex<State>>;

/// A running stub; stops when dropped.
pub struct V2Stub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    pub token: String,
    pub org: String,
    pub org_id: String,
    /// The initial bucket's name and ID.
    pub bucket: String,
    pub bucket_id: String,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a stub on a free loopback port.
pub async fn start(opts: V2Options) -> V2Stub {
    V2Stub::start(opts).await
}

impl V2Stub {
    /// Starts a stub on a free loopback port.
    pub async fn start(opts: V2Options) -> V2Stub {
        let org_id = new_id();
        let bucket_id = new_id();
        let mut buckets = vec![bucket(&bucket_id, &opts.bucket, &org_id, false, 0)];
        buckets.push(bucket(&new_id(), "_tasks", &org_id, true, 259_200));
        buckets.push(bucket(&new_id(), "_monitoring", &org_id, true, 604_800));
        let state = Arc::new(Mutex::new(State {
            token: opts.token.clone(),
            org_id: org_id.clone(),
            org_name: opts.org.clone(),
            buckets,
            requests: Vec::new(),
            deletes: Vec::new(),
            down: false,
            unreachable: false,
            rules: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind v2 stub");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("stub addr").port();
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("stub runtime");
            rt.block_on(serve(listener, shared, stop_rx));
        });
        V2Stub {
            url: format!("http://127.0.0.1:{port}"),
            port,
            token: opts.token,
            org: opts.org,
            org_id,
            bucket: opts.bucket,
            bucket_id,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Lines stored in the bucket with this name or ID (empty if none).
    pub fn lines(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .buckets
            .iter()
            .find(|b| b.name == bucket || b.id == bucket)
            .map(|b| b.lines.clone())
            .unwrap_or_default()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Every accepted delete, in arrival order.
    pub fn deletes(&self) -> Vec<DeleteRequest> {
        self.lock().deletes.clone()
    }

    /// All buckets as `(id, name, org_id)`, system buckets included.
    pub fn buckets(&self) -> Vec<(String, String, String)> {
        self.lock()
            .buckets
            .iter()
            .map(|b| (b.id.clone(), b.name.clone(), b.org_id.clone()))
            .collect()
    }

    /// While true, every request gets 503 `unavailable`.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// While true, every request's connection is closed without a response.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// Queues `reply` as the answer to the next request to `path` that no
    /// earlier rule answers; several calls form a FIFO queue.
    pub fn script(&self, path: &str, reply: Canned) {
        self.add_rule(path, None, Some(1), reply);
    }

    /// [`V2Stub::script`] for each answer in order.
    pub fn script_all(&self, path: &str, replies: impl IntoIterator<Item = Canned>) {
        for r in replies {
            self.script(path, r);
        }
    }

    /// Answers `reply` to requests to `path` for which `when` holds (it sees
    /// the decoded body), `uses` times or, with `None`, until
    /// [`V2Stub::clear_script`].
    pub fn script_when(
        &self,
        path: &str,
        uses: Option<usize>,
        when: impl Fn(&RecordedRequest) -> bool + Send + 'static,
        reply: Canned,
    ) {
        self.add_rule(path, Some(Box::new(when)), uses, reply);
    }

    /// Drops every scripted answer not yet served.
    pub fn clear_script(&self) {
        self.lock().rules.clear();
    }

    /// How many scripted rules for `path` are still waiting to be served.
    pub fn scripted_left(&self, path: &str) -> usize {
        let path = script::norm(path);
        self.lock().rules.iter().filter(|r| r.path == path).count()
    }

    /// The requests to `path` (trailing `/` ignored), in arrival order.
    pub fn received(&self, path: &str) -> Vec<RecordedRequest> {
        let path = script::norm(path);
        self.lock()
            .requests
            .iter()
            .filter(|r| script::norm(&r.path) == path)
            .cloned()
            .collect()
    }

    /// How many requests to `path` arrived so far.
    pub fn count(&self, path: &str) -> usize {
        let path = script::norm(path);
        self.lock()
            .requests
            .iter()
            .filter(|r| script::norm(&r.path) == path)
            .count()
    }

    fn add_rule(&self, path: &str, when: Option<Condition>, uses: Option<usize>, reply: Canned) {
        if uses == Some(0) {
            return;
        }
        self.lock().rules.push(script::Rule {
            path: script::norm(path).to_owned(),
            when,
            uses,
            reply,
        });
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for V2Stub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bucket(id: &str, name: &str, org_id: &str, system: bool, retention: i64) -> Bucket {
    Bucket {
        id: id.into(),
        name: name.into(),
        org_id: org_id.into(),
        system,
        retention_seconds: retention,
        lines: Vec::new(),
    }
}

/// A random non-zero 64-bit ID as 16 lowercase hex digits, like 2.x IDs.
fn new_id() -> String {
    loop {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let v = h.finish();
        // 2.x IDs never start with a zero nibble in practice; keep 16 digits.
        if v >> 60 != 0 {
            return format!("{v:016x}");
        }
    }
}

fn is_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn serve(listener: std::net::TcpListener, state: Shared, mut stop: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let st = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

async fn handle(state: Shared, req: Request<Incoming>) -> Result<Resp, std::io::Error> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let gzipped = parts
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| {
            let e = e.trim();
            e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip")
        });
    let decoded = if gzipped {
        gunzip(&body).unwrap_or_else(|_| body.clone())
    } else {
        body.clone()
    };
    let mut rec = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body,
        decoded,
        at,
        status: 0,
    };
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if st.unreachable {
        st.requests.push(rec);
        return Err(std::io::Error::other("stub is unreachable"));
    }
    let resp = if st.down {
        api::error(503, "unavailable", "service unavailable")
    } else if let Some(r) = script::answer(&mut st.rules, &rec) {
        r
    } else {
        api::route(&mut st, &parts.method, &rec)
    };
    rec.status = resp.status().as_u16();
    st.requests.push(rec);
    Ok(resp)
}

/// Gunzips every member of a (possibly multi-member) gzip stream, as Go's
/// `gzip.Reader` does by default.
fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// The first `name` parameter of a raw query string, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

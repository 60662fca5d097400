//! One v1 node's HTTP API, as the consistency tools use it.
//!
//! Requests are built by [`crate::backend::client::build`], so the node's
//! configured credentials apply exactly as they do for the gateway's own
//! traffic. Reads ask for `epoch=ns` (exact timestamps); raw reads ask for
//! `chunked=true` and are consumed one chunk at a time (JSON: one object
//! per line; MessagePack, for backfill: one map after another), so a large
//! window never sits in memory as one response. Writes are paced by a
//! [`Pacer`] shared by every task writing to that node.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use super::RepairError;
use super::points::msgpack::object_len;
use crate::backend::client::{self, Chunks, HttpClient, Outgoing};
use crate::config::NodeConfig;

/// How long a node may take to start answering one request.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Write attempts before a batch is given up (transport errors and 5xx).
const WRITE_ATTEMPTS: u32 = 5;

/// One `/query` response (or one chunk of a chunked response).
#[derive(Debug, Deserialize, Default)]
pub struct Response {
    #[serde(default)]
    pub results: Vec<StmtResult>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct StmtResult {
    #[serde(default)]
    pub series: Vec<Series>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct Series {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub values: Vec<Vec<serde_json::Value>>,
}

/// Spaces out work at a fixed rate (units per second, 0 = unlimited).
pub struct Pacer {
    per_unit: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer {
            per_unit: (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `units` more may go.
    pub async fn take(&self, units: u64) {
        let Some(per) = self.per_unit else { return };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + per.mul_f64(units as f64);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// A node the tools talk to.
pub struct Node {
    pub name: String,
    cfg: NodeConfig,
    http: HttpClient,
    /// Paces this node's writes.
    pub writes: Pacer,
}

/// The error text of a statement that found nothing to read: an absent
/// database or retention policy reads as empty, not as a failure.
pub fn is_not_found(msg: &str) -> bool {
    msg.contains("not found")
}

impl Node {
    /// A v1 node; nodes with a token (InfluxDB 2.x) are refused.
    pub fn new(cfg: &NodeConfig, http: HttpClient, write_rate: u64) -> Result<Node, RepairError> {
        if cfg.token.is_some() {
            return Err(RepairError::Usage(format!(
                "node {}: InfluxDB 2.x nodes (with a token) are not supported by verify/repair/backfill yet",
                cfg.name
            )));
        }
        Ok(Node {
            name: cfg.name.clone(),
            cfg: cfg.clone(),
            http,
            writes: Pacer::new(write_rate),
        })
    }

    /// All configured nodes, sharing one HTTP client.
    pub fn all(nodes: &[NodeConfig], write_rate: u64) -> Result<Vec<Node>, RepairError> {
        let http = client::new_client(nodes)
            .map_err(|e| RepairError::Usage(format!("node TLS settings: {e}")))?;
        nodes
            .iter()
            .map(|n| Node::new(n, http.clone(), write_rate))
            .collect()
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: Chunks,
        accept: Option<&'static str>,
    ) -> Result<http::Response<Incoming>, RepairError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(http::header::ACCEPT, http::HeaderValue::from_static(a));
        }
        let out = Outgoing {
            method,
            path,
            query: &query,
            auth: None,
            headers: &headers,
            body,
            gzipped: false,
        };
        let req = client::build(&self.cfg, &out)
            .map_err(|e| RepairError::node(&self.name, e.to_string()))?;
        client::send(&self.http, req, TIMEOUT)
            .await
            .map_err(|e| RepairError::node(&self.name, e.to_string()))
    }

    async fn body_text(&self, body: Incoming) -> Result<Bytes, RepairError> {
        body.collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| RepairError::node(&self.name, format!("reading response: {e}")))
    }

    /// Runs one statement (GET for reads, POST when `mutate`) and returns
    /// its result; a statement error becomes `Err` unless it is "not found",
    /// which reads as no series.
    pub async fn query(&self, db: &str, q: &str, mutate: bool) -> Result<StmtResult, RepairError> {
        let method = if mutate { "POST" } else { "GET" };
        let resp = self
            .request(
                method,
                "/query",
                &[("db", db), ("q", q), ("epoch", "ns")],
                Chunks::default(),
                None,
            )
            .await?;
        let status = resp.status().as_u16();
        let bytes = self.body_text(resp.into_body()).await?;
        let resp: Response = serde_json::from_slice(&bytes).map_err(|_| {
            RepairError::node(
                &self.name,
                format!(
                    "HTTP {status} to {q:?}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            )
        })?;
        if let Some(e) = resp.error {
            return Err(RepairError::node(&self.name, format!("{q:?}: {e}")));
        }
        let mut r = resp.results.into_iter().next().unwrap_or_default();
        if let Some(e) = r.error.take() {
            if is_not_found(&e) {
                return Ok(StmtResult::default());
            }
            return Err(RepairError::node(&self.name, format!("{q:?}: {e}")));
        }
        Ok(r)
    }

    /// Starts a chunked raw read; see [`ChunkReader::next`].
    pub async fn query_chunked(
        &self,
        db: &str,
        q: &str,
        chunk_size: usize,
    ) -> Result<ChunkReader<'_>, RepairError> {
        let body = self
            .start_chunked(db, q, chunk_size, None)
            .await?
            .into_body();
        Ok(ChunkReader {
            node: self,
            body,
            buf: BytesMut::new(),
            done: false,
        })
    }

    /// Starts a chunked raw read asking for MessagePack (less work for the
    /// node than JSON); a node that answers JSON anyway is read as JSON.
    pub async fn query_raw(
        &self,
        db: &str,
        q: &str,
        chunk_size: usize,
    ) -> Result<RawReader<'_>, RepairError> {
        let resp = self.start_chunked(db, q, chunk_size, Some(MSGPACK)).await?;
        let msgpack = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(MSGPACK.as_bytes()));
        let body = resp.into_body();
        Ok(if msgpack {
            RawReader::Msgpack(MsgpackReader {
                node: self,
                body,
                buf: BytesMut::new(),
                done: false,
                retry_at: 0,
            })
        } else {
            RawReader::Json(ChunkReader {
                node: self,
                body,
                buf: BytesMut::new(),
                done: false,
            })
        })
    }

    async fn start_chunked(
        &self,
        db: &str,
        q: &str,
        chunk_size: usize,
        accept: Option<&'static str>,
    ) -> Result<http::Response<Incoming>, RepairError> {
        let size = chunk_size.to_string();
        let resp = self
            .request(
                "GET",
                "/query",
                &[
                    ("db", db),
                    ("q", q),
                    ("epoch", "ns"),
                    ("chunked", "true"),
                    ("chunk_size", &size),
                ],
                Chunks::default(),
                accept,
            )
            .await?;
        let status = resp.status().as_u16();
        if status != 200 {
            let bytes = self.body_text(resp.into_body()).await?;
            return Err(RepairError::node(
                &self.name,
                format!(
                    "HTTP {status} to {q:?}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            ));
        }
        Ok(resp)
    }

    /// Writes line protocol to `db`/`rp` with nanosecond timestamps,
    /// retrying transport errors and 5xx. Returns how many points the node
    /// dropped (a `partial write`, e.g. beyond the retention policy).
    pub async fn write(
        &self,
        db: &str,
        rp: &str,
        body: Bytes,
        points: u64,
    ) -> Result<u64, RepairError> {
        self.writes.take(points).await;
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..WRITE_ATTEMPTS {
            let params = [("db", db), ("rp", rp), ("precision", "ns")];
            match self
                .request("POST", "/write", &params, Chunks::from(body.clone()), None)
                .await
            {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = self.body_text(resp.into_body()).await?;
                    let text = String::from_utf8_lossy(&text).to_string();
                    if (200..300).contains(&status) {
                        return Ok(0);
                    }
                    if status == 400 && text.contains("partial write") {
                        return Ok(dropped_count(&text));
                    }
                    if status < 500 {
                        return Err(RepairError::node(
                            &self.name,
                            format!("write HTTP {status}: {text}"),
                        ));
                    }
                    last = format!("write HTTP {status}: {text}");
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(RepairError::node(&self.name, last))
    }
}

/// `dropped=N` from a partial-write error (1 when absent).
fn dropped_count(text: &str) -> u64 {
    text.split("dropped=")
        .nth(1)
        .and_then(|r| {
            let n: String = r.chars().take_while(char::is_ascii_digit).collect();
            n.parse().ok()
        })
        .unwrap_or(1)
}

/// Reads the next frame of `body` into `buf`; `false` at the end.
async fn fill(node: &Node, body: &mut Incoming, buf: &mut BytesMut) -> Result<bool, RepairError> {
    match body.frame().await {
        None => Ok(false),
        Some(Err(e)) => Err(RepairError::node(
            &node.name,
            format!("reading response: {e}"),
        )),
        Some(Ok(f)) => {
            if let Ok(data) = f.into_data() {
                buf.extend_from_slice(&data);
            }
            Ok(true)
        }
    }
}

/// The media type of MessagePack answers.
const MSGPACK: &str = "application/x-msgpack";

/// A raw read in whichever format the node answered with.
pub enum RawReader<'a> {
    Msgpack(MsgpackReader<'a>),
    Json(ChunkReader<'a>),
}

/// A chunked MessagePack `/query` response: one MessagePack map per chunk,
/// back to back.
pub struct MsgpackReader<'a> {
    node: &'a Node,
    body: Incoming,
    buf: BytesMut,
    done: bool,
    /// Buffer length at which to look for a whole chunk again (so a large
    /// chunk arriving in many frames is scanned a few times, not per frame).
    retry_at: usize,
}

impl MsgpackReader<'_> {
    /// The next chunk's bytes (one whole MessagePack map); `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, RepairError> {
        loop {
            if !self.buf.is_empty() && (self.done || self.buf.len() >= self.retry_at) {
                let len = object_len(&self.buf)
                    .map_err(|e| RepairError::node(&self.node.name, e.to_string()))?;
                if let Some(n) = len {
                    self.retry_at = 0;
                    return Ok(Some(self.buf.split_to(n).freeze()));
                }
                if self.done {
                    return Err(RepairError::node(
                        &self.node.name,
                        "answer ends inside a MessagePack chunk",
                    ));
                }
                self.retry_at = self.buf.len() + (self.buf.len() / 2).max(64 << 10);
            }
            if self.done {
                return Ok(None);
            }
            self.done = !fill(self.node, &mut self.body, &mut self.buf).await?;
        }
    }

    pub fn node(&self) -> &Node {
        self.node
    }
}

/// A chunked `/query` response being read one chunk at a time.
pub struct ChunkReader<'a> {
    node: &'a Node,
    body: Incoming,
    buf: BytesMut,
    done: bool,
}

impl ChunkReader<'_> {
    /// The next chunk's series (each chunk is one JSON object on its own
    /// line); `None` at the end. A statement error other than "not found"
    /// is an error.
    pub async fn next(&mut self) -> Result<Option<Vec<Series>>, RepairError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(&line).map(Some);
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let line = self.buf.split();
                return self.parse(&line).map(Some);
            }
            self.done = !fill(self.node, &mut self.body, &mut self.buf).await?;
        }
    }

    fn parse(&self, line: &[u8]) -> Result<Vec<Series>, RepairError> {
        let resp: Response = serde_json::from_slice(line).map_err(|e| {
            RepairError::node(
                &self.node.name,
                format!("bad chunk ({e}): {}", String::from_utf8_lossy(line)),
            )
        })?;
        if let Some(e) = resp.error {
            return Err(RepairError::node(&self.node.name, e));
        }
        let mut out = Vec::new();
        for r in resp.results {
            if let Some(e) = r.error {
                if is_not_found(&e) {
                    continue;
                }
                return Err(RepairError::node(&self.node.name, e));
            }
            out.extend(r.series);
        }
        Ok(out)
    }
}

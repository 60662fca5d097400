//! Mutations: through the ordered log to every node, with one merged answer.
//!
//! A mutation (InfluxQL DDL/DELETE/`SELECT … INTO`, `/api/v2/delete`, bucket,
//! task and org changes) is appended to the same durable log as the writes.
//! Every node therefore applies it exactly where it belongs: after the writes
//! acknowledged before it, before the writes after it, including a node that
//! is down now and replays tomorrow ("CREATE DATABASE x" then writes to x
//! works on a node that missed both).
//!
//! Right after the append, the mutation's read-your-writes watermark is
//! recorded (its databases for data-only changes, the global one for changes
//! to what exists; see [`crate::backend::cluster::Scope`]). The handler then
//! waits (up to `query_timeout`, at least `write_timeout`)
//! for the nodes that are up and near the log's end to apply it, and answers:
//! - all answering nodes agree: their answer, plus `X-Inmate-Queued` naming
//!   nodes that will apply it later;
//! - they disagree: 500 with every node's status and body;
//! - none answered in time: 500 saying the mutation is stored and queued
//!   (the same contract as InfluxDB Enterprise's hinted handoff).
//!
//! Before an InfluxQL mutation is logged, [`probe`] asks one node whether it
//! parses: a syntax error is the client's mistake and gets the node's 400
//! at once, instead of a dead letter and an ERROR line on every node. Once
//! logged, its `CREATE`/`DROP DATABASE`/`RETENTION POLICY` changes go to the
//! [`crate::backend::catalog`], so writes to a database just created are
//! accepted before any node has applied it.
//!
//! An InfluxQL mutation arrives here from `query.rs` with `now()` already
//! pinned to the gateway's clock, so a node that replays a
//! `DELETE … WHERE time < now() - 7d` later deletes the same range as the
//! others; v2 mutations are replayed verbatim.

mod probe;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, header};

use super::Gateway;
use super::request::{ClientRequest, q_of};
use super::respond::{self, ApiError, Body};
use crate::backend::cluster::{Collected, Scope};
use crate::query::influxql::{self, CatalogChange};
use crate::record::{Kind, Record};

/// An InfluxQL mutation (its `now()` already pinned by `query.rs`), with the
/// final query string and body to replay, and what it touches.
pub async fn influxql(
    gw: &Arc<Gateway>,
    mut req: ClientRequest,
    query: String,
    body: Bytes,
    scope: Scope,
) -> Result<Response<Body>, ApiError> {
    // Like Go's FormValue: a form body's q wins over the URL's.
    let form_q = if req.is_form() { q_of(&body) } else { None };
    let in_form = form_q.is_some();
    let q = form_q
        .or_else(|| q_of(query.as_bytes()))
        .unwrap_or_default();
    let at = probe::Placed {
        query: &query,
        body: &body,
        in_form,
    };
    if let Some(reply) = probe::syntax_error(gw, &req, &q, at).await {
        return Ok(answer(
            reply.status,
            reply.content_type.as_deref(),
            reply.body,
        ));
    }
    let changes = influxql::catalog_changes(&q);
    // Mutations are always POSTed: 1.x warns about them over GET.
    let record = to_record(&mut req, Kind::Query, "POST", "/query", query, body);
    replicate(gw, record, scope, &changes).await
}

/// A node's answer, passed on as the client's.
fn answer(status: http::StatusCode, content_type: Option<&str>, body: Bytes) -> Response<Body> {
    let mut r = Response::new(respond::full(body));
    *r.status_mut() = status;
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

/// A v2 mutation (delete, bucket, task, org change), replayed verbatim.
pub async fn http(
    gw: &Arc<Gateway>,
    mut req: ClientRequest,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let body = req.read_body(gw).await?;
    let (method, query) = (req.method.as_str().to_string(), req.query.clone());
    let scope = Scope::of_v2_mutation(path, &query);
    let record = to_record(&mut req, Kind::Http, &method, path, query, body);
    replicate(gw, record, scope, &[]).await
}

/// The log record for a mutation, keeping the client's credentials and
/// content type for replay.
fn to_record(
    req: &mut ClientRequest,
    kind: Kind,
    method: &str,
    path: &str,
    query: String,
    body: Bytes,
) -> Record {
    Record {
        gzip: false,
        points: 0,
        kind,
        method: method.to_string(),
        path: path.to_string(),
        query,
        auth: req.client_auth.take(),
        content_type: req.content_type().map(str::to_string),
        body,
    }
}

async fn replicate(
    gw: &Arc<Gateway>,
    record: Record,
    scope: Scope,
    changes: &[CatalogChange],
) -> Result<Response<Body>, ApiError> {
    let record_kind = record.kind;
    let seq = gw
        .log
        .append(record.encode())
        .await
        .map_err(|source| ApiError::NotStored {
            what: "mutation",
            source,
        })?;
    gw.cluster.marks().touch(&scope, seq);
    gw.catalog.observe(changes);
    // Wait for nodes that can apply it soon: up, and not far behind.
    let window = gw.config.max_batch_records as u64;
    let timeout = gw.config.query_timeout.max(gw.config.write_timeout);
    let Collected { answers, queued } = gw.cluster.collect_answers(seq, window, timeout).await;
    if !queued.is_empty() {
        tracing::info!(seq, queued = ?queued, "mutation queued for nodes that will apply it later");
    }
    let Some((_, first)) = answers.first() else {
        return Err(ApiError::MutationQueued {
            timeout,
            queued: queued.join(", "),
        });
    };
    // Objects a v2 call creates get per-node IDs, so there only the status
    // must agree; InfluxQL answers must agree exactly.
    let exact = record_kind == Kind::Query;
    let agree = answers
        .iter()
        .all(|(_, a)| a.status == first.status && (!exact || a.body == first.body));
    let mut resp = if agree {
        answer(
            first.status,
            first.content_type.as_deref(),
            first.body.clone(),
        )
    } else {
        let nodes: Vec<_> = answers
            .iter()
            .map(|(n, a)| {
                serde_json::json!({"node": n, "status": a.status.as_u16(), "body": String::from_utf8_lossy(&a.body)})
            })
            .collect();
        tracing::error!(seq, answers = %serde_json::Value::Array(nodes.clone()), "nodes disagree on a mutation");
        respond::json(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": "nodes disagree on the mutation's result", "nodes": nodes}),
        )
    };
    if !queued.is_empty()
        && let Ok(v) = HeaderValue::from_str(&queued.join(","))
    {
        resp.headers_mut().insert("x-inmate-queued", v);
    }
    Ok(resp)
}

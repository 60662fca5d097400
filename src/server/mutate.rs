//! Mutations: through the ordered log to every node, with one merged answer.
//!
//! A mutation (InfluxQL DDL/DELETE/`SELECT … INTO`, `/api/v2/delete`, bucket,
//! task and org changes) is appended to the same durable log as the writes.
//! Every node therefore applies it exactly where it belongs: after the writes
//! acknowledged before it, before the writes after it, including a node that
//! is down now and replays tomorrow ("CREATE DATABASE x" then writes to x
//! works on a node that missed both).
//!
//! The handler then waits (up to `query_timeout`, at least `write_timeout`)
//! for the nodes that are up and near the log's end to apply it, and answers:
//! - all answering nodes agree: their answer, plus `X-Inmate-Queued` naming
//!   nodes that will apply it later;
//! - they disagree: 500 with every node's status and body;
//! - none answered in time: 500 saying the mutation is stored and queued
//!   (the same contract as InfluxDB Enterprise's hinted handoff).
//!
//! `now()` in mutations is rewritten to the gateway's clock first, so a node
//! that replays a `DELETE … WHERE time < now() - 7d` later deletes the same
//! range as the others.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::Gateway;
use super::read::forward_read;
use super::respond::{self, Body, Flavor};
use super::routes::{ClientRequest, flavor_of};
use super::write::now_nanos;
use crate::query::influxql::{self, QueryClass};
use crate::record::{Kind, Record};

fn is_form(req: &ClientRequest) -> bool {
    req.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Replaces (or drops) `q` in a form-encoded string.
fn with_q(form: &str, q: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(form.as_bytes()) {
        if k == "q" {
            out.append_pair("q", q);
        } else {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

fn find_q(form: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
}

/// `/query`: a read goes to one node, a mutation through the log.
pub async fn influxql(gw: &Arc<Gateway>, mut req: ClientRequest) -> Response<Body> {
    let body = match req.read_body(gw).await {
        Ok(b) => b,
        Err(e) => return e.response(Flavor::V1),
    };
    // Like Go's FormValue: a form body's q wins over the URL's.
    let form_q = if is_form(&req) { find_q(&body) } else { None };
    let url_q = find_q(req.query.as_bytes());
    let Some(q) = form_q.clone().or(url_q) else {
        // Let the node say `missing required parameter "q"`.
        let query = req.query.clone();
        return forward_read(gw, &req, "/query", &query, body).await;
    };
    let classified = influxql::classify(&q);
    if classified.class != QueryClass::Mutation {
        let query = req.query.clone();
        return forward_read(gw, &req, "/query", &query, body).await;
    }
    let q = influxql::rewrite_now(&q, now_nanos()).unwrap_or(q);
    let (query, body) = if form_q.is_some() {
        (
            req.query.clone(),
            Bytes::from(with_q(&String::from_utf8_lossy(&body), &q)),
        )
    } else {
        (with_q(&req.query, &q), body)
    };
    // Mutations are always POSTed: 1.x warns about them over GET.
    let record = to_record(&mut req, Kind::Query, "POST", "/query", query, body);
    replicate(gw, record, Flavor::V1).await
}

/// A v2 mutation (delete, bucket, task, org change), replayed verbatim.
pub async fn http(gw: &Arc<Gateway>, mut req: ClientRequest, path: &str) -> Response<Body> {
    let flavor = flavor_of(path);
    let body = match req.read_body(gw).await {
        Ok(b) => b,
        Err(e) => return e.response(flavor),
    };
    let (method, query) = (req.method.as_str().to_string(), req.query.clone());
    let record = to_record(&mut req, Kind::Http, &method, path, query, body);
    replicate(gw, record, flavor).await
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
        kind,
        method: method.to_string(),
        path: path.to_string(),
        query,
        auth: req.client_auth.take(),
        content_type: req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    }
}

async fn replicate(gw: &Arc<Gateway>, record: Record, flavor: Flavor) -> Response<Body> {
    let record_kind = record.kind;
    let seq = match gw.log.append(record.encode()).await {
        Ok(s) => s,
        Err(e) => {
            return respond::error(
                flavor,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("gateway cannot store the mutation durably: {e}"),
            );
        }
    };
    // Wait for nodes that can apply it soon: up, and not far behind.
    let window = gw.config.channel_size as u64;
    let timeout = gw.config.query_timeout.max(gw.config.write_timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    let waited: Vec<_> = gw
        .nodes
        .iter()
        .filter(|n| n.health.is_up() && n.acked() + window >= seq)
        .cloned()
        .collect();
    let results =
        futures_util::future::join_all(waited.iter().map(|n| n.wait_applied(seq, deadline))).await;

    let mut answers = Vec::new();
    for (node, applied) in waited.iter().zip(results) {
        if applied && let Some(a) = node.take_answer(seq) {
            answers.push((node.name().to_string(), a));
        }
    }
    let queued: Vec<&str> = gw
        .nodes
        .iter()
        .map(|n| n.name())
        .filter(|n| !answers.iter().any(|(a, _)| a == n))
        .collect();
    if !queued.is_empty() {
        tracing::info!(seq, queued = ?queued, "mutation queued for nodes that will apply it later");
    }
    let Some((_, first)) = answers.first() else {
        return respond::error(
            flavor,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "mutation stored durably but no node applied it within {timeout:?}; \
                 it stays queued for {} and will be applied in order",
                queued.join(", ")
            ),
        );
    };
    // Objects a v2 call creates get per-node IDs, so there only the status
    // must agree; InfluxQL answers must agree exactly.
    let exact = record_kind == Kind::Query;
    let agree = answers
        .iter()
        .all(|(_, a)| a.status == first.status && (!exact || a.body == first.body));
    let mut resp = if agree {
        let mut r = Response::new(respond::full(first.body.clone()));
        *r.status_mut() = first.status;
        if let Some(ct) = first
            .content_type
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r
    } else {
        let nodes: Vec<_> = answers
            .iter()
            .map(|(n, a)| {
                serde_json::json!({"node": n, "status": a.status.as_u16(), "body": String::from_utf8_lossy(&a.body)})
            })
            .collect();
        tracing::error!(seq, answers = %serde_json::Value::Array(nodes.clone()), "nodes disagree on a mutation");
        respond::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": "nodes disagree on the mutation's result", "nodes": nodes}),
        )
    };
    if !queued.is_empty()
        && let Ok(v) = HeaderValue::from_str(&queued.join(","))
    {
        resp.headers_mut().insert("x-inmate-queued", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_replacement_keeps_other_params() {
        assert_eq!(
            with_q("db=x&q=DROP+X&epoch=ms", "DROP Y"),
            "db=x&q=DROP+Y&epoch=ms"
        );
        assert_eq!(
            find_q(b"db=x&q=CREATE+DATABASE+a").as_deref(),
            Some("CREATE DATABASE a")
        );
        assert_eq!(find_q(b"db=x"), None);
    }
}

//! Endpoints the gateway answers itself: `/ping`, `/health`, `/ready`, `/`.
//!
//! `/health` is the operator's view: every node with its state (up, down, or
//! catching up on a backlog), its backlog in records and bytes, the age of its
//! oldest unsent record, its last error, and whether the log's limits made it
//! skip data (it then needs a repair) with the receive-time range of what it
//! skipped; the automatic repair's progress (`repair`); and every UDP listener with what it
//! received and dropped (bad lines, log refusals, oversized datagrams). It answers 200 while at least one node
//! is usable and 503 otherwise. v1 nodes have no `/health`, so it is never
//! proxied.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};

use super::Gateway;
use super::request::{ClientRequest, params};
use super::respond::{self, Body};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `/ping`'s parameters.
#[derive(Debug, Default, serde::Deserialize)]
struct PingParams {
    verbose: Option<String>,
}

pub fn ping(gw: &Arc<Gateway>, req: &ClientRequest) -> Response<Body> {
    // Prefer a healthy node's version: clients print it and some gate
    // features on it.
    let version = gw
        .cluster
        .iter()
        .filter(|n| n.health.is_up())
        .chain(gw.cluster.iter())
        .find_map(|n| n.health.version());
    let (version, build) = version.unwrap_or_else(|| (format!("inmate-{VERSION}"), None));
    let verbose = params::<PingParams>(req.query.as_bytes())
        .unwrap_or_default()
        .verbose
        .is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    let mut r = if verbose {
        respond::json(StatusCode::OK, &serde_json::json!({ "version": version }))
    } else {
        let mut r = respond::empty(StatusCode::NO_CONTENT);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&version) {
        h.insert("x-influxdb-version", v);
    }
    let build = build.unwrap_or_else(|| "OSS".into());
    if let Ok(v) = HeaderValue::from_str(&build) {
        h.insert("x-influxdb-build", v);
    }
    r
}

pub fn health(gw: &Arc<Gateway>) -> Response<Body> {
    let end = gw.log.next_seq();
    let mut usable = 0;
    let nodes: Vec<serde_json::Value> = gw
        .cluster
        .iter()
        .map(|n| {
            let up = n.health.is_up();
            let stats = gw.log.stats(n.name());
            let next = n.next_unapplied();
            let state = if !up {
                "down"
            } else if end
                .checked_sub(1)
                .is_some_and(|last| !n.applied_through(last))
            {
                "catching_up"
            } else {
                "up"
            };
            if up {
                usable += 1;
            }
            let (records, bytes, age, skipped, repair, range) = match &stats {
                Some(s) => (
                    s.backlog_records,
                    s.backlog_bytes,
                    s.oldest_age.map(|d| d.as_secs_f64()),
                    s.skipped_records,
                    s.needs_repair,
                    s.skipped_range,
                ),
                None => (end.saturating_sub(next), 0, None, 0, false, None),
            };
            let range = range.map(|(from, until)| {
                let t = |ms| {
                    humantime::format_rfc3339_millis(
                        std::time::UNIX_EPOCH + Duration::from_millis(ms),
                    )
                    .to_string()
                };
                serde_json::json!({ "from": t(from), "until": t(until) })
            });
            serde_json::json!({
                "name": n.name(),
                "url": n.config.url.as_str(),
                "state": state,
                "backlog_records": records,
                "backlog_bytes": bytes,
                "oldest_unsent_age_seconds": age,
                "skipped_records": skipped,
                "needs_repair": repair,
                "skipped_range": range,
                "mode": n.admin().as_str(),
                "reads_in_flight": n.load.in_flight(),
                "last_error": n.health.last_error(),
                "version": n.health.version().map(|v| v.0),
            })
        })
        .collect();
    let ok = usable > 0;
    let body = serde_json::json!({
        "name": "inmate",
        "version": VERSION,
        "status": if ok { "pass" } else { "fail" },
        "message": if ok {
            format!("{usable} of {} nodes usable", gw.cluster.len())
        } else {
            "no node is usable; writes are still accepted into the durable log".to_string()
        },
        "checks": [],
        "commit": "",
        "log_next_seq": end,
        "nodes": nodes,
        "udp": gw.udp.iter().map(|u| u.to_json()).collect::<Vec<_>>(),
        "repair": gw.repair.to_json(),
    });
    respond::json(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

pub fn ready(gw: &Arc<Gateway>) -> Response<Body> {
    let up = gw.cluster.iter().any(|n| n.health.is_up());
    respond::json(
        if up {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &serde_json::json!({
            "status": if up { "ready" } else { "not ready" },
            "started": gw.started,
            "up": humantime::format_duration(Duration::from_secs(gw.started_at.elapsed().as_secs())).to_string(),
        }),
    )
}

pub fn root() -> Response<Body> {
    let mut r = Response::new(respond::full("ok"));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

//! The admin API's routes, under `/inmate/v1/`:
//!
//! | method | path                                        | action |
//! |--------|---------------------------------------------|--------|
//! | GET    | `nodes`, `nodes/{name}`                     | status ([`NodeView`]) |
//! | POST   | `nodes/{name}/pause`, `resume`, `drain`     | operator mode, persisted |
//! | GET    | `nodes/{name}/deadletters`                  | list |
//! | POST   | `nodes/{name}/deadletters/replay`, `discard`| `?seq=N` (repeatable) selects, default all |
//! | POST   | `nodes/{name}/repair/clear`                 | clears `needs_repair` |
//!
//! Node names are percent-encoded in the path. Every route needs the
//! `admin` scope; when the gateway has no credentials configured at all it
//! is as open as the rest of the gateway (anyone may already `DROP`), and
//! actions are logged as done by `anonymous`. Every action is logged (target
//! `admin`) with the principal's name, never a credential.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde::Serialize;

use super::Gateway;
use super::auth::Access;
use super::request::ClientRequest;
use super::respond::{self, ApiError, Body};
use crate::admin::{Done, NodeView, PREFIX, Status, deadletters, state};
use crate::backend::Node;
use crate::backend::cluster::Admin;

/// Why an admin request failed: refused (rendered by the router), or the
/// gateway could not do it (500, rendered here).
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("admin action failed: {0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> AdminError {
    AdminError::Internal(e.to_string())
}

/// Handles a request under [`PREFIX`].
pub async fn handle(gw: &Arc<Gateway>, req: ClientRequest) -> Result<Response<Body>, ApiError> {
    match dispatch(gw, req).await {
        Ok(r) => Ok(r),
        Err(AdminError::Api(e)) => Err(e),
        Err(e) => {
            tracing::error!(target: "admin", error = %e, "admin action failed");
            Ok(respond::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({ "error": e.to_string() }),
            ))
        }
    }
}

async fn dispatch(gw: &Arc<Gateway>, req: ClientRequest) -> Result<Response<Body>, AdminError> {
    let who = match &req.principal {
        Some(p) => {
            p.allows(Access::Admin, None).map_err(ApiError::Forbidden)?;
            p.name.clone()
        }
        None => "anonymous".to_string(),
    };
    let rest = req.path.strip_prefix(PREFIX).unwrap_or("");
    let parts: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_decode(s).ok_or_else(|| ApiError::BadRequest(format!("bad path segment {s:?}")))
        })
        .collect::<Result<_, _>>()?;
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    let seqs = seq_params(&req.query)?;
    match parts.as_slice() {
        ["nodes"] | ["nodes", ""] if get => Ok(ok(&status(gw))),
        ["nodes", name] if get => match find(gw, name) {
            Some(n) => Ok(ok(&view(gw, n))),
            None => Ok(unknown(name)),
        },
        ["nodes", name, action @ ("pause" | "resume" | "drain")] if post => {
            let mode = match *action {
                "pause" => Admin::Paused,
                "drain" => Admin::Draining,
                _ => Admin::Enabled,
            };
            set_mode(gw, name, mode, &who)
        }
        ["nodes", name, "deadletters"] if get => {
            if find(gw, name).is_none() {
                return Ok(unknown(name));
            }
            let entries = deadletters::list(&gw.config.data_dir, name).map_err(internal)?;
            Ok(ok(&entries))
        }
        ["nodes", name, "deadletters", "replay"] if post => {
            let Some(node) = find(gw, name) else {
                return Ok(unknown(name));
            };
            let timeout = gw.config.write_timeout;
            let r = deadletters::replay(&gw.config.data_dir, &gw.http, node, &seqs, timeout)
                .await
                .map_err(internal)?;
            tracing::info!(target: "admin", by = %who, node = %name, action = "deadletter-replay",
                replayed = r.replayed, failed = r.failed.len(), skipped = r.skipped,
                remaining = r.remaining, "dead letters replayed");
            Ok(ok(&r))
        }
        ["nodes", name, "deadletters", "discard"] if post => {
            if find(gw, name).is_none() {
                return Ok(unknown(name));
            }
            let (gone, remaining) =
                deadletters::discard(&gw.config.data_dir, name, &seqs).map_err(internal)?;
            tracing::info!(target: "admin", by = %who, node = %name, action = "deadletter-discard",
                discarded = gone, remaining, "dead letters discarded");
            Ok(ok(&done(
                name,
                "deadletter-discard",
                &who,
                format!("discarded {gone} dead letters, {remaining} left"),
            )))
        }
        ["nodes", name, "repair", "clear"] if post => {
            if !gw.log.clear_needs_repair(name) {
                return Ok(unknown(name));
            }
            // Durable now, not at the next periodic flush.
            gw.log.flush_cursors().await.map_err(internal)?;
            tracing::info!(target: "admin", by = %who, node = %name, action = "repair-flag-clear",
                "needs_repair cleared by operator");
            Ok(ok(&done(
                name,
                "repair-flag-clear",
                &who,
                "needs_repair cleared".into(),
            )))
        }
        _ => Ok(respond::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("no admin route {} {}", req.method, req.path) }),
        )),
    }
}

fn set_mode(
    gw: &Arc<Gateway>,
    name: &str,
    mode: Admin,
    who: &str,
) -> Result<Response<Body>, AdminError> {
    if find(gw, name).is_none() {
        return Ok(unknown(name));
    }
    // Persist first: a mode the gateway would forget on restart is not set.
    state::record(&gw.config.data_dir, name, mode, who).map_err(internal)?;
    gw.cluster.set_admin(name, mode);
    let action = match mode {
        Admin::Paused => "pause",
        Admin::Draining => "drain",
        Admin::Enabled => "resume",
    };
    tracing::info!(target: "admin", by = %who, node = %name, action, mode = mode.as_str(),
        "node mode set by operator");
    let message = match mode {
        Admin::Paused => "paused: no reads, no deliveries; its backlog grows until resumed",
        Admin::Draining => "draining: no new reads; writes keep flowing to it",
        Admin::Enabled => "enabled: takes reads; deliveries resume",
    };
    Ok(ok(&done(name, action, who, message.into())))
}

fn done(node: &str, action: &str, by: &str, message: String) -> Done {
    Done {
        node: node.to_string(),
        action: action.to_string(),
        by: by.to_string(),
        message,
    }
}

fn find<'a>(gw: &'a Gateway, name: &str) -> Option<&'a Arc<Node>> {
    gw.cluster.iter().find(|n| n.name() == name)
}

fn unknown(name: &str) -> Response<Body> {
    respond::json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({ "error": format!("no node named {name:?}") }),
    )
}

fn ok<T: Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_value(v) {
        Ok(v) => respond::json(StatusCode::OK, &v),
        Err(e) => respond::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": e.to_string() }),
        ),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let decoded: Vec<u8> =
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(decoded).ok()
}

/// The `seq` parameters (repeatable) selecting dead letters.
fn seq_params(query: &str) -> Result<Vec<u64>, ApiError> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "seq")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| ApiError::BadRequest(format!("seq {v:?} is not a number")))
        })
        .collect()
}

/// Every node's view.
pub fn status(gw: &Gateway) -> Status {
    Status {
        log_next_seq: gw.log.next_seq(),
        nodes: gw.cluster.iter().map(|n| view(gw, n)).collect(),
    }
}

fn view(gw: &Gateway, n: &Node) -> NodeView {
    let end = gw.log.next_seq();
    let stats = gw.log.stats(n.name());
    let lag = end.saturating_sub(n.next_unapplied());
    let state = if !n.health.is_up() {
        "down"
    } else if lag > 0 {
        "catching_up"
    } else {
        "up"
    };
    let persisted = state::load(&gw.config.data_dir)
        .ok()
        .and_then(|s| s.nodes.get(n.name()).cloned());
    let mode = n.admin();
    let by = persisted.filter(|_| mode != Admin::Enabled);
    NodeView {
        name: n.name().to_string(),
        url: n.config.url.to_string(),
        mode: mode.as_str().to_string(),
        mode_by: by.as_ref().map(|m| m.by.clone()),
        mode_since: by.map(|m| m.at),
        state: state.to_string(),
        backlog_records: stats.as_ref().map_or(lag, |s| s.backlog_records),
        backlog_bytes: stats.as_ref().map_or(0, |s| s.backlog_bytes),
        lag_records: lag,
        oldest_unsent_seconds: stats
            .as_ref()
            .and_then(|s| s.oldest_age)
            .map(|d| d.as_secs_f64()),
        dead_letters: deadletters::count(&gw.config.data_dir, n.name()),
        needs_repair: stats.is_some_and(|s| s.needs_repair),
        last_error: n.health.last_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_and_seqs_decode() {
        assert_eq!(percent_decode("a%2Fb%3A1").as_deref(), Some("a/b:1"));
        assert_eq!(percent_decode("h+1").as_deref(), Some("h+1"));
        assert_eq!(seq_params("seq=3&x=1&seq=9").unwrap(), [3, 9]);
        assert!(seq_params("seq=x").is_err());
    }
}

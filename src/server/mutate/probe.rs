//! A parse-only probe for InfluxQL mutations: a syntax error is the
//! client's own mistake, so it gets InfluxDB's 400 at the door and never
//! enters the log (where every node would reject it and dead-letter it).
//!
//! InfluxDB parses a whole query before it runs any of it, so a query whose
//! last statement cannot parse runs nothing. The probe sends the mutation to
//! one up 1.x node with `\n;INMATE_SYNTAX_PROBE` appended: that extra
//! statement never parses, so nothing executes. If the node's parse error
//! names the sentinel, the client's text parsed and the mutation goes on to
//! the log. If the error is elsewhere, the client's text is broken; it is
//! then sent alone to the same node (still nothing executes, as it does not
//! parse) to get InfluxDB's exact 400, which is the client's answer.
//!
//! No up node, a timeout, or any other answer (401, 403, 5xx): the probe
//! says nothing and the mutation is logged as before.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::super::Gateway;
use super::super::request::ClientRequest;
use super::super::request::with_q;
use crate::backend::catalog::nodes::{self, Reply};

/// A statement InfluxQL never parses, and that no client writes.
const SENTINEL: &str = "INMATE_SYNTAX_PROBE";

/// Where the client put `q`: the URL query, or the form body.
pub struct Placed<'a> {
    pub query: &'a str,
    pub body: &'a Bytes,
    pub in_form: bool,
}

impl Placed<'_> {
    /// The request parts with `q` replaced.
    fn with(&self, q: &str) -> (String, Bytes) {
        if self.in_form {
            let form = with_q(&String::from_utf8_lossy(self.body), q);
            (self.query.to_string(), Bytes::from(form))
        } else {
            (with_q(self.query, q), self.body.clone())
        }
    }
}

/// InfluxDB's own parse error for `q`, when it has one (see the module doc).
pub async fn syntax_error(
    gw: &Gateway,
    req: &ClientRequest,
    q: &str,
    at: Placed<'_>,
) -> Option<Reply> {
    let node = gw.cluster.iter().find(|n| nodes::askable(n))?;
    let mut headers = HeaderMap::new();
    if let Some(ct) = req
        .content_type()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    let auth = req.client_auth.as_deref();
    let (query, body) = at.with(&format!("{q}\n;{SENTINEL}"));
    let probe = nodes::ask(&gw.http, node, &query, auth, &headers, body).await?;
    if probe.status != StatusCode::BAD_REQUEST
        || String::from_utf8_lossy(&probe.body).contains(SENTINEL)
    {
        return None;
    }
    let (query, body) = at.with(q);
    let exact = nodes::ask(&gw.http, node, &query, auth, &headers, body).await?;
    if exact.status == StatusCode::BAD_REQUEST {
        return Some(exact);
    }
    // Not expected (the text did not parse a moment ago); if the node ran
    // it, logging it still brings every other node to the same state.
    tracing::warn!(node = %node.name(), status = %exact.status,
        "a mutation that failed the parse probe was accepted by the node; logging it");
    None
}

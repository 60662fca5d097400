//! Asking the nodes themselves: `SHOW DATABASES`/`SHOW RETENTION POLICIES`
//! for the catalog, and a parse-only probe for InfluxQL mutations.
//!
//! Only 1.x nodes are asked (a `/ping` version starting with `1.`, or not
//! known yet): their `/query` is the API the answers are modelled on. Every
//! call has a short deadline, because a client is waiting behind it; a node
//! that does not answer in time simply does not count.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::backend::Node;
use crate::backend::client::read_capped;
use crate::backend::client::{self, Chunks, HttpClient, Outgoing};

/// Deadline for one question to one node.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest answer read from a node.
const MAX_ANSWER: usize = 8 << 20;

/// Whether `node` is up and speaks 1.x InfluxQL.
pub fn askable(node: &Node) -> bool {
    node.health.is_up()
        && node
            .health
            .version()
            .is_none_or(|(v, _)| v.trim_start_matches('v').starts_with("1."))
}

/// A node's answer to a request.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// One request to `node`, with the node's credentials (else `auth`).
pub async fn ask(
    http: &HttpClient,
    node: &Node,
    query: &str,
    auth: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Option<Reply> {
    let mut chunks = Chunks::default();
    if !body.is_empty() {
        chunks.push(body);
    }
    let out = Outgoing {
        method: "POST",
        path: "/query",
        query,
        auth,
        headers,
        body: chunks,
        gzipped: false,
    };
    let req = client::build(&node.config, &out).ok()?;
    let resp = client::send(http, req, ASK_TIMEOUT).await.ok()?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_capped(resp.into_body(), MAX_ANSWER, ASK_TIMEOUT).await;
    Some(Reply {
        status,
        content_type,
        body,
    })
}

#[derive(serde::Deserialize)]
struct Results {
    #[serde(default)]
    results: Vec<StatementResult>,
}

#[derive(serde::Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct Series {
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

/// What one node reported.
pub struct Listing {
    pub databases: Vec<String>,
    /// The retention policies of the database asked about (`None` when the
    /// node did not list them, e.g. because the database does not exist).
    pub policies: Option<Vec<String>>,
}

/// Quotes an identifier for InfluxQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `SHOW DATABASES` (and `SHOW RETENTION POLICIES ON db`) on one node.
pub async fn list(http: &HttpClient, node: &Node, policies_of: Option<&str>) -> Option<Listing> {
    let mut q = String::from("SHOW DATABASES");
    if let Some(db) = policies_of {
        q.push_str("; SHOW RETENTION POLICIES ON ");
        q.push_str(&quote(db));
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &q)
        .finish();
    let reply = ask(http, node, &query, None, &HeaderMap::new(), Bytes::new()).await?;
    if reply.status != StatusCode::OK {
        return None;
    }
    parse_listing(&reply.body, policies_of.is_some())
}

fn first_column(r: &StatementResult) -> Vec<String> {
    r.series
        .iter()
        .flat_map(|s| &s.values)
        .filter_map(|row| row.first()?.as_str().map(str::to_string))
        .collect()
}

fn parse_listing(body: &[u8], with_policies: bool) -> Option<Listing> {
    let parsed: Results = serde_json::from_slice(body).ok()?;
    let dbs = parsed.results.first().filter(|r| r.error.is_none())?;
    let policies = parsed
        .results
        .get(1)
        .filter(|r| with_policies && r.error.is_none())
        .map(first_column);
    Some(Listing {
        databases: first_column(dbs),
        policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_from_a_1x_answer() {
        let body = br#"{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["_internal"],["db"]]}]},{"statement_id":1,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true]]}]}]}"#;
        let l = parse_listing(body, true).unwrap();
        assert_eq!(l.databases, ["_internal", "db"]);
        assert_eq!(l.policies.unwrap(), ["autogen"]);
        let missing = br#"{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"]}]},{"statement_id":1,"error":"database not found: x"}]}"#;
        let l = parse_listing(missing, true).unwrap();
        assert!(l.databases.is_empty() && l.policies.is_none());
        assert!(parse_listing(br#"{"results":[{"error":"boom"}]}"#, false).is_none());
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}

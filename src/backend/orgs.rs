//! Organization ID translation for InfluxDB 2 nodes.
//!
//! Every InfluxDB 2 node generates its own org IDs, so an `orgID` a client
//! learnt from one node means nothing to the others. Names are the shared
//! currency: the gateway resolves a client's `orgID` to an org *name* on the
//! node that issued it (any node that knows the ID), then
//! - for query parameters (`/api/v2/write`, `/query`, `/delete`, bucket
//!   listing) it replaces `orgID=<id>` with `org=<name>`, which every node
//!   accepts, at the door;
//! - for bodies that must carry an ID (`POST /api/v2/buckets`), the
//!   replicator swaps in each node's own ID for that name just before
//!   sending (looked up with `GET /api/v2/orgs?org=<name>` on that node).
//!
//! Both mappings are cached; a miss refreshes them from the nodes. Org IDs
//! never change, so the cache needs no expiry; an unknown ID is left as the
//! client sent it (the node then answers with its own "not found").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use super::client::read_capped;
use super::client::{self, HttpClient, Outgoing};
use crate::config::NodeConfig;

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Orgs {
    nodes: Vec<NodeConfig>,
    http: HttpClient,
    /// org ID (any node's) -> org name
    names: Mutex<HashMap<String, String>>,
    /// (node name, org name) -> that node's org ID
    ids: Mutex<HashMap<(String, String), String>>,
}

#[derive(serde::Deserialize)]
struct OrgList {
    #[serde(default)]
    orgs: Vec<Org>,
}

#[derive(serde::Deserialize)]
struct Org {
    id: String,
    name: String,
}

impl Orgs {
    pub fn new(nodes: Vec<NodeConfig>, http: HttpClient) -> Orgs {
        Orgs {
            nodes,
            http,
            names: Mutex::default(),
            ids: Mutex::default(),
        }
    }

    /// Lists a node's orgs (`GET /api/v2/orgs[?org=name]`) with its credentials.
    async fn list(&self, node: &NodeConfig, query: &str) -> Vec<Org> {
        let headers = HeaderMap::new();
        let out = Outgoing {
            method: "GET",
            path: "/api/v2/orgs",
            query,
            auth: None,
            headers: &headers,
            body: client::Chunks::default(),
            gzipped: false,
        };
        let Ok(req) = client::build(node, &out) else {
            return Vec::new();
        };
        match client::send(&self.http, req, LOOKUP_TIMEOUT).await {
            Ok(resp) if resp.status().is_success() => {
                let body = read_capped(resp.into_body(), 4 << 20, LOOKUP_TIMEOUT).await;
                serde_json::from_slice::<OrgList>(&body)
                    .map(|l| l.orgs)
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// The org name behind `id`, asking every node until one knows it.
    pub async fn name_of(&self, id: &str) -> Option<String> {
        if let Some(n) = self.names.lock().ok()?.get(id) {
            return Some(n.clone());
        }
        for node in &self.nodes {
            let orgs = self.list(node, "").await;
            let mut names = self.names.lock().ok()?;
            let mut ids = self.ids.lock().ok()?;
            for o in orgs {
                ids.insert((node.name.clone(), o.name.clone()), o.id.clone());
                names.insert(o.id, o.name);
            }
            if let Some(n) = names.get(id) {
                return Some(n.clone());
            }
        }
        None
    }

    /// `node`'s own ID for the org called `name`.
    pub async fn id_on(&self, node: &NodeConfig, name: &str) -> Option<String> {
        let key = (node.name.clone(), name.to_string());
        if let Some(id) = self.ids.lock().ok()?.get(&key) {
            return Some(id.clone());
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("org", name)
            .finish();
        let found = self
            .list(node, &query)
            .await
            .into_iter()
            .find(|o| o.name == name)?;
        self.ids.lock().ok()?.insert(key, found.id.clone());
        self.names.lock().ok()?.insert(found.id.clone(), found.name);
        Some(found.id)
    }

    /// Rewrites `orgID=<id>` to `org=<name>` in a query string when the
    /// name is known (and the client did not also give `org`).
    pub async fn names_in_query(&self, query: &str) -> String {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let has_org = pairs.iter().any(|(k, v)| k == "org" && !v.is_empty());
        let Some(id) = pairs
            .iter()
            .find(|(k, _)| k == "orgID")
            .map(|(_, v)| v.clone())
        else {
            return query.to_string();
        };
        let name = if has_org {
            None
        } else {
            self.name_of(&id).await
        };
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            match (k.as_str(), &name) {
                ("orgID", Some(n)) => out.append_pair("org", n),
                // `org` takes precedence in 2.x; a stray orgID would only confuse other nodes.
                ("orgID", None) if has_org => continue,
                _ => out.append_pair(k, v),
            };
        }
        out.finish()
    }

    /// For a bucket-creation body: replaces `orgID` with `node`'s own ID for
    /// the same org. Returns the body unchanged when it cannot translate.
    pub async fn localize_body(&self, node: &NodeConfig, body: &Bytes) -> Bytes {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return body.clone();
        };
        let Some(id) = v.get("orgID").and_then(|x| x.as_str()).map(str::to_string) else {
            return body.clone();
        };
        let Some(name) = self.name_of(&id).await else {
            return body.clone();
        };
        match self.id_on(node, &name).await {
            Some(local) if local != id => {
                v["orgID"] = serde_json::Value::String(local);
                Bytes::from(v.to_string())
            }
            _ => body.clone(),
        }
    }
}

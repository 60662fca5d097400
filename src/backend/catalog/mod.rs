//! The catalog: which databases and retention policies exist on the nodes,
//! so a v1 write to a database that does not exist gets InfluxDB's 404
//! instead of a 204 and a dead letter on every node.
//!
//! # Why
//! Telegraf (and other 1.x clients) create the database when a write
//! answers 404 `database not found`. A gateway that accepts the write and
//! dead-letters it later hides that answer, so a typo in a database name
//! silently discards everything.
//!
//! # What it knows
//! - what the nodes report: `SHOW DATABASES` (and `SHOW RETENTION POLICIES
//!   ON db` when a write names an `rp`) on every up 1.x node that has
//!   applied the log's last change to what exists (the global read mark,
//!   which after a restart covers the whole earlier log), merged (a name any
//!   node reports exists);
//! - the InfluxQL mutations logged through the gateway
//!   ([`crate::query::influxql::catalog_changes`]): a `CREATE DATABASE` is
//!   known as soon as it is in the log, before any node applied it.
//!
//! # When it answers "not found"
//! Only when confirmed: a name the catalog does not know triggers a refresh
//! from the nodes ([`nodes::ASK_TIMEOUT`] per node, at most one refresh per
//! [`MIN_REFRESH`] per question; concurrent misses wait for one another), and only if at least one
//! node answered that refresh and none reported the name is the write
//! refused. When no node can be asked, the write is accepted (durability
//! first) and, as before, a node that rejects it dead-letters it.
//!
//! # Limits
//! Names are only added by refreshes, never removed, except by a `DROP`
//! logged through the gateway: a database dropped directly on the nodes is
//! still accepted (and dead-lettered) until the gateway restarts. The
//! catalog holds names only (a few bytes per database and policy).

pub mod nodes;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

use super::client::HttpClient;
use super::cluster::{Cluster, Scope};
use crate::query::influxql::CatalogChange;

/// Least time between two refreshes from the nodes.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);

/// Most remembered refresh times (one per database asked about, plus one).
const MAX_QUESTIONS: usize = 4096;

/// What the catalog says about a write's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Known,
    /// Confirmed missing: no node that answered has the database.
    NoDatabase,
    /// The database exists, the retention policy does not.
    NoPolicy,
    /// Could not be confirmed either way: accept.
    Unconfirmed,
}

#[derive(Default)]
pub struct Catalog {
    /// database → its retention policies (`None`: not listed yet).
    dbs: Mutex<HashMap<String, Option<HashSet<String>>>>,
    /// The last refresh per question (`None`: databases only; `Some(db)`:
    /// also db's policies): when, and whether any node answered it.
    refreshed: tokio::sync::Mutex<HashMap<Option<String>, (Instant, bool)>>,
}

impl Catalog {
    /// Records what a mutation logged through the gateway changes.
    pub fn observe(&self, changes: &[CatalogChange]) {
        let Ok(mut dbs) = self.dbs.lock() else {
            return;
        };
        for c in changes {
            match c {
                CatalogChange::CreateDatabase(db) => {
                    // A new database gets `autogen` unless WITH NAME says
                    // otherwise (then listed next): ask the nodes for rps.
                    dbs.entry(db.clone()).or_insert(None);
                }
                CatalogChange::DropDatabase(db) => {
                    dbs.remove(db);
                }
                CatalogChange::CreateRetentionPolicy { db, rp } => {
                    if let Some(Some(rps)) = dbs.get_mut(db) {
                        rps.insert(rp.clone());
                    }
                }
                CatalogChange::DropRetentionPolicy { db, rp } => {
                    if let Some(Some(rps)) = dbs.get_mut(db) {
                        rps.remove(rp);
                    }
                }
            }
        }
    }

    /// What the catalog knows now, without asking anyone.
    fn local(&self, db: &str, rp: Option<&str>) -> Lookup {
        let Ok(dbs) = self.dbs.lock() else {
            return Lookup::Unconfirmed;
        };
        match (dbs.get(db), rp) {
            (None, _) => Lookup::NoDatabase,
            (Some(_), None) => Lookup::Known,
            (Some(None), Some(_)) => Lookup::Unconfirmed,
            (Some(Some(rps)), Some(rp)) if rps.contains(rp) => Lookup::Known,
            (Some(Some(_)), Some(_)) => Lookup::NoPolicy,
        }
    }

    /// Merges one node's listing.
    fn merge(&self, listing: nodes::Listing, policies_of: Option<&str>) {
        let Ok(mut dbs) = self.dbs.lock() else {
            return;
        };
        for db in listing.databases {
            dbs.entry(db).or_insert(None);
        }
        if let (Some(db), Some(rps)) = (policies_of, listing.policies) {
            let entry = dbs.entry(db.to_string()).or_insert(None);
            entry.get_or_insert_with(HashSet::new).extend(rps);
        }
    }

    /// Asks every up 1.x node; true if any answered.
    async fn refresh(
        &self,
        cluster: &Cluster,
        http: &HttpClient,
        policies_of: Option<&str>,
    ) -> bool {
        // A node that has not applied the last logged change to what exists
        // (after a restart: the whole earlier log) may not have a database
        // the log creates; its listing proves nothing.
        let global = cluster.marks().needed(&Scope::Global, None);
        let asks = cluster
            .iter()
            .filter(|n| nodes::askable(n) && global.is_none_or(|g| n.applied_through(g)))
            .map(|n| nodes::list(http, n, policies_of));
        let listings = futures_util::future::join_all(asks).await;
        let mut any = false;
        for l in listings.into_iter().flatten() {
            any = true;
            self.merge(l, policies_of);
        }
        any
    }

    /// Whether `db` (and `rp`, when given) exists, refreshing from the
    /// nodes on a miss (rate-limited).
    pub async fn lookup(
        &self,
        cluster: &Cluster,
        http: &HttpClient,
        db: &str,
        rp: Option<&str>,
    ) -> Lookup {
        let rp = rp.filter(|r| !r.is_empty());
        if self.local(db, rp) == Lookup::Known {
            return Lookup::Known;
        }
        let mut refreshed = self.refreshed.lock().await;
        let mut found = self.local(db, rp);
        if found == Lookup::Known {
            // Someone else's refresh found it while this one waited.
            return found;
        }
        let key = rp.map(|_| db.to_string());
        let last = match refreshed.get(&key) {
            Some(&(at, answered)) if at.elapsed() < MIN_REFRESH => answered,
            _ => {
                let answered = self.refresh(cluster, http, key.as_deref()).await;
                // Bounded: old questions are forgotten wholesale.
                if refreshed.len() >= MAX_QUESTIONS {
                    refreshed.retain(|_, (at, _)| at.elapsed() < MIN_REFRESH);
                }
                refreshed.insert(key, (Instant::now(), answered));
                found = self.local(db, rp);
                answered
            }
        };
        if last || found == Lookup::Known {
            found
        } else {
            Lookup::Unconfirmed
        }
    }

    /// The door for a v1 write (`query` is its URL query string): `None` to
    /// accept it, else InfluxDB 1.x's status and error text for a database
    /// or retention policy that does not exist.
    pub async fn refuse_v1_write(
        &self,
        cluster: &Cluster,
        http: &HttpClient,
        query: &str,
    ) -> Option<(StatusCode, String)> {
        // Go's Values.Get: the first value wins.
        let first = |key: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        let db = first("db").filter(|d| !d.is_empty())?;
        let rp = first("rp");
        match self.lookup(cluster, http, &db, rp.as_deref()).await {
            Lookup::Known | Lookup::Unconfirmed => None,
            Lookup::NoDatabase => {
                tracing::info!(db = %db, "write to a database no node has; answered 404");
                Some((
                    StatusCode::NOT_FOUND,
                    format!("database not found: {}", go_quote(&db)),
                ))
            }
            Lookup::NoPolicy => {
                let rp = rp.unwrap_or_default();
                tracing::info!(db = %db, rp = %rp, "write to a retention policy no node has; answered 500");
                Some((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("retention policy not found: {rp}"),
                ))
            }
        }
    }
}

/// Go's `%q` for the names InfluxDB quotes: `"` and `\\` escaped, control
/// characters as escapes, printable Unicode kept as is.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    /// A node that answers every request with `SHOW DATABASES` listing
    /// only `_internal`.
    async fn fake_node() -> crate::config::NodeConfig {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let body = r#"{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["_internal"]]}]}]}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        crate::config::NodeConfig {
            name: "n".into(),
            url: url::Url::parse(&format!("http://{addr}")).unwrap(),
            token: None,
            username: None,
            password: None,
            gzip: crate::config::WireGzip::Auto,
            tls: Default::default(),
        }
    }

    #[tokio::test]
    async fn only_nodes_past_the_global_mark_can_confirm_a_miss() {
        let http = crate::backend::client::new_client(&[]).unwrap();
        let node = |next| {
            let cfg = fake_node();
            async move {
                std::sync::Arc::new(crate::backend::Node::new(
                    cfg.await,
                    crate::backend::health::Health::new(1, 1),
                    next,
                ))
            }
        };
        // The log holds 5 entries from before a restart; the node applied 3.
        let behind = Cluster::new(vec![node(3).await], 5);
        let c = Catalog::default();
        assert_eq!(
            c.lookup(&behind, &http, "x", None).await,
            Lookup::Unconfirmed
        );
        // One that applied them all may say the database does not exist.
        let current = Cluster::new(vec![node(5).await], 5);
        let c = Catalog::default();
        assert_eq!(
            c.lookup(&current, &http, "x", None).await,
            Lookup::NoDatabase
        );
        assert_eq!(
            c.lookup(&current, &http, "_internal", None).await,
            Lookup::Known
        );
    }

    #[test]
    fn quotes_names_as_go_does() {
        assert_eq!(go_quote("a"), r#""a""#);
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }

    #[test]
    fn mutations_change_what_is_known() {
        let c = Catalog::default();
        assert_eq!(c.local("a", None), Lookup::NoDatabase);
        c.observe(&[CatalogChange::CreateDatabase(s("a"))]);
        assert_eq!(c.local("a", None), Lookup::Known);
        // Policies not listed yet: cannot be confirmed.
        assert_eq!(c.local("a", Some("r")), Lookup::Unconfirmed);
        c.merge(
            nodes::Listing {
                databases: vec![s("a")],
                policies: Some(vec![s("autogen")]),
            },
            Some("a"),
        );
        assert_eq!(c.local("a", Some("autogen")), Lookup::Known);
        assert_eq!(c.local("a", Some("r")), Lookup::NoPolicy);
        c.observe(&[CatalogChange::CreateRetentionPolicy {
            db: s("a"),
            rp: s("r"),
        }]);
        assert_eq!(c.local("a", Some("r")), Lookup::Known);
        c.observe(&[CatalogChange::DropRetentionPolicy {
            db: s("a"),
            rp: s("r"),
        }]);
        assert_eq!(c.local("a", Some("r")), Lookup::NoPolicy);
        c.observe(&[CatalogChange::DropDatabase(s("a"))]);
        assert_eq!(c.local("a", None), Lookup::NoDatabase);
    }
}

//! What part of the cluster's data a request touches or reads: the databases
//! (v1 `db`, v2 bucket's database part, named in InfluxQL or Flux), the set
//! of what exists (databases, retention policies, users: "global"), or
//! everything (a request we cannot attribute).
//!
//! Buckets are keyed by their database part (`db/rp` → `db`) and org names
//! are not part of the key: a 1.x node ignores the org, and a name shared
//! by two orgs' buckets only makes a read wait for a little more than it
//! must, never less.

use crate::query::influxql::{self, QueryClass};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Cannot be attributed: everything in the log.
    All,
    /// Only what exists (databases, retention policies, users).
    Global,
    /// These databases (and what exists).
    Databases(Vec<String>),
}

/// The database a bucket name lives in (`db/rp` → `db`).
fn db_of_bucket(bucket: &str) -> &str {
    bucket.split('/').next().unwrap_or(bucket)
}

/// The first non-empty value of `key` in a form-encoded string.
fn param(encoded: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(encoded.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

fn databases(names: Vec<String>) -> Scope {
    if names.is_empty() {
        Scope::Global
    } else {
        Scope::Databases(names)
    }
}

impl Scope {
    /// A write's target: v1 `db`, or v2 `bucket`.
    pub fn of_write(query: &str) -> Scope {
        let db = param(query, "db")
            .or_else(|| param(query, "bucket").map(|b| db_of_bucket(&b).to_string()));
        db.map_or(Scope::All, |d| Scope::Databases(vec![d]))
    }

    /// An InfluxQL read: the `db` parameter plus the databases it names;
    /// none at all (`SHOW DATABASES`) is global; untokenizable is all.
    pub fn of_influxql_read(q: &str, db: Option<&str>) -> Scope {
        Scope::of_named_read(influxql::named_databases(q).ok(), db)
    }

    /// [`Scope::of_influxql_read`] from the names the query was already
    /// found to name (`None`: it does not tokenize).
    pub fn of_named_read(names: Option<Vec<String>>, db: Option<&str>) -> Scope {
        let Some(mut names) = names else {
            return Scope::All;
        };
        if let Some(db) = db.filter(|d| !d.is_empty())
            && !names.iter().any(|n| n == db)
        {
            names.push(db.to_string());
        }
        databases(names)
    }

    /// An InfluxQL mutation: data-only statements (DELETE, DROP SERIES,
    /// DROP MEASUREMENT, SELECT INTO) touch their databases; anything else
    /// changes what exists.
    pub fn of_influxql_mutation(q: &str, db: Option<&str>) -> Scope {
        let c = influxql::classify(q);
        let data_only = c.class == QueryClass::Mutation
            && c.statements.iter().all(|s| {
                matches!(
                    s.keyword.as_str(),
                    "DELETE" | "DROP SERIES" | "DROP MEASUREMENT" | "SELECT INTO" | "SELECT"
                )
            });
        match Scope::of_influxql_read(q, db) {
            Scope::Databases(d) if data_only => Scope::Databases(d),
            _ => Scope::Global,
        }
    }

    /// A v2 mutation: `/api/v2/delete` touches its bucket; bucket, org and
    /// task changes change what exists.
    pub fn of_v2_mutation(path: &str, query: &str) -> Scope {
        match param(query, "bucket") {
            Some(b) if path == "/api/v2/delete" => Scope::Databases(vec![db_of_bucket(&b).into()]),
            _ => Scope::Global,
        }
    }

    /// A Flux query's buckets (`bucket: "name"`); a `from(` we cannot
    /// attribute (a `bucketID`, a variable) is all, no `from(` is global.
    pub fn of_flux(flux: &str) -> Scope {
        let mut names = Vec::new();
        let mut rest = flux;
        while let Some(i) = rest.find("bucket") {
            let after = &rest[i + "bucket".len()..];
            rest = after;
            let Some(v) = after.trim_start().strip_prefix(':') else {
                continue;
            };
            let Some(v) = v.trim_start().strip_prefix('"') else {
                continue;
            };
            if let Some(end) = v.find('"') {
                let db = db_of_bucket(&v[..end]).to_string();
                if !names.contains(&db) {
                    names.push(db);
                }
            }
        }
        let froms = flux.matches("from(").count() + flux.matches("from (").count();
        if froms > names.len() || flux.contains("bucketID") {
            return Scope::All;
        }
        databases(names)
    }

    /// A `/api/v2/query` body: JSON `{"query": …}` or raw Flux.
    pub fn of_v2_query(body: &[u8], json: bool) -> Scope {
        if json {
            #[derive(serde::Deserialize)]
            struct Q {
                query: String,
            }
            return serde_json::from_slice::<Q>(body)
                .map_or(Scope::All, |q| Scope::of_flux(&q.query));
        }
        std::str::from_utf8(body).map_or(Scope::All, Scope::of_flux)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbs(d: &[&str]) -> Scope {
        Scope::Databases(d.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn writes_reads_and_mutations() {
        assert_eq!(Scope::of_write("db=a&rp=x"), dbs(&["a"]));
        assert_eq!(Scope::of_write("org=o&bucket=b%2Fr"), dbs(&["b"]));
        assert_eq!(
            Scope::of_influxql_read("SELECT * FROM m", Some("a")),
            dbs(&["a"])
        );
        assert_eq!(
            Scope::of_influxql_read(r#"SELECT * FROM "b"."autogen"."m""#, Some("a")),
            dbs(&["b", "a"])
        );
        assert_eq!(
            Scope::of_influxql_read("SHOW DATABASES", None),
            Scope::Global
        );
        assert_eq!(Scope::of_influxql_read("SELECT 'x", Some("a")), Scope::All);
        assert_eq!(
            Scope::of_influxql_mutation("DELETE FROM m", Some("a")),
            dbs(&["a"])
        );
        assert_eq!(
            Scope::of_influxql_mutation("DROP DATABASE a", Some("a")),
            Scope::Global
        );
        assert_eq!(
            Scope::of_influxql_mutation("CREATE USER u WITH PASSWORD 'p'", None),
            Scope::Global
        );
        assert_eq!(
            Scope::of_v2_mutation("/api/v2/delete", "org=o&bucket=b"),
            dbs(&["b"])
        );
        assert_eq!(Scope::of_v2_mutation("/api/v2/buckets", ""), Scope::Global);
    }

    #[test]
    fn flux_buckets() {
        assert_eq!(
            Scope::of_flux(r#"from(bucket: "a/autogen") |> range(start: -1h)"#),
            dbs(&["a"])
        );
        assert_eq!(Scope::of_flux("buckets()"), Scope::Global);
        assert_eq!(Scope::of_flux("from(bucket: b)"), Scope::All);
        assert_eq!(Scope::of_flux(r#"from(bucketID: "0a")"#), Scope::All);
        assert_eq!(
            Scope::of_v2_query(br#"{"query":"from(bucket:\"x\")"}"#, true),
            dbs(&["x"])
        );
    }
}

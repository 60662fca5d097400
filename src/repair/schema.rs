//! What a node holds besides points: databases, retention policies (with
//! their durations), continuous queries, measurements and field keys with
//! their types; and users, which can be listed but not copied (InfluxDB
//! never reveals a password hash).
//!
//! [`diff`] lists every difference between two nodes in words; [`apply`]
//! creates on a node what another has (databases, retention policies with
//! the same duration, replication, shard duration and default flag, and
//! continuous queries), so that copied points have somewhere to land.
//! `_internal` is InfluxDB's own monitoring database and is never compared.

use std::collections::BTreeMap;
use std::time::Duration;

use super::lp::FieldType;
use super::node::{Node, Series};
use super::time::{influxql_duration, parse_go_duration};
use super::{Common, RepairError, ident};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub duration: Duration,
    pub shard_duration: Duration,
    pub replication: u64,
    pub default: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Database {
    pub rps: BTreeMap<String, RetentionPolicy>,
    /// Continuous query name -> its `CREATE CONTINUOUS QUERY` text.
    pub cqs: BTreeMap<String, String>,
    /// Measurement -> field key -> type.
    pub fields: BTreeMap<String, BTreeMap<String, FieldType>>,
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub dbs: BTreeMap<String, Database>,
    pub users: Vec<String>,
}

fn rows(series: &[Series]) -> impl Iterator<Item = (&Series, BTreeMap<&str, &serde_json::Value>)> {
    series.iter().flat_map(|s| {
        s.values.iter().map(move |row| {
            let map = s
                .columns
                .iter()
                .map(String::as_str)
                .zip(row.iter())
                .collect();
            (s, map)
        })
    })
}

fn text<'a>(row: &BTreeMap<&str, &'a serde_json::Value>, col: &str) -> &'a str {
    row.get(col).and_then(|v| v.as_str()).unwrap_or("")
}

/// The field types of every measurement in `db` on `node`.
pub async fn field_types(
    node: &Node,
    db: &str,
) -> Result<BTreeMap<String, BTreeMap<String, FieldType>>, RepairError> {
    let r = node
        .query(db, &format!("SHOW FIELD KEYS ON {}", ident(db)), false)
        .await?;
    let mut out: BTreeMap<String, BTreeMap<String, FieldType>> = BTreeMap::new();
    for (s, row) in rows(&r.series) {
        if let Some(t) = FieldType::parse(text(&row, "fieldType")) {
            // A field with two types (in different shards) keeps the first.
            out.entry(s.name.clone())
                .or_default()
                .entry(text(&row, "fieldKey").to_string())
                .or_insert(t);
        }
    }
    Ok(out)
}

/// Reads a node's schema (databases limited by `--db`).
pub async fn load(node: &Node, common: &Common) -> Result<Schema, RepairError> {
    let mut schema = Schema::default();
    let dbs = node.query("", "SHOW DATABASES", false).await?;
    let names: Vec<String> = rows(&dbs.series)
        .map(|(_, r)| text(&r, "name").to_string())
        .filter(|n| n != "_internal" && common.wants_db(n))
        .collect();
    let cqs = node.query("", "SHOW CONTINUOUS QUERIES", false).await?;
    for name in names {
        let mut db = Database::default();
        let r = node
            .query(
                &name,
                &format!("SHOW RETENTION POLICIES ON {}", ident(&name)),
                false,
            )
            .await?;
        for (_, row) in rows(&r.series) {
            let dur = |c: &str| parse_go_duration(text(&row, c)).unwrap_or_default();
            db.rps.insert(
                text(&row, "name").to_string(),
                RetentionPolicy {
                    duration: dur("duration"),
                    shard_duration: dur("shardGroupDuration"),
                    replication: row.get("replicaN").and_then(|v| v.as_u64()).unwrap_or(1),
                    default: row
                        .get("default")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false),
                },
            );
        }
        for (s, row) in rows(&cqs.series) {
            if s.name == name {
                db.cqs.insert(
                    text(&row, "name").to_string(),
                    text(&row, "query").to_string(),
                );
            }
        }
        db.fields = field_types(node, &name).await?;
        schema.dbs.insert(name, db);
    }
    // Listing users needs admin rights when auth is on; without them the
    // list is simply empty.
    if let Ok(users) = node.query("", "SHOW USERS", false).await {
        schema.users = rows(&users.series)
            .map(|(_, r)| text(&r, "user").to_string())
            .collect();
    }
    Ok(schema)
}

/// Every schema difference between nodes `a` and `b`, one line each.
pub fn diff(an: &str, a: &Schema, bn: &str, b: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let only = |out: &mut Vec<String>, what: String, has: &str, lacks: &str| {
        out.push(format!("{what}: on {has}, missing on {lacks}"));
    };
    for (name, da) in &a.dbs {
        let Some(db) = b.dbs.get(name) else {
            only(&mut out, format!("database {name}"), an, bn);
            continue;
        };
        for (rp, ra) in &da.rps {
            match db.rps.get(rp) {
                None => only(&mut out, format!("retention policy {name}.{rp}"), an, bn),
                Some(rb) if rb != ra => out.push(format!(
                    "retention policy {name}.{rp}: {an} has {}, {bn} has {}",
                    describe_rp(ra),
                    describe_rp(rb)
                )),
                Some(_) => {}
            }
        }
        for (cq, qa) in &da.cqs {
            match db.cqs.get(cq) {
                None => only(&mut out, format!("continuous query {name}.{cq}"), an, bn),
                Some(qb) if qb != qa => {
                    out.push(format!("continuous query {name}.{cq}: text differs"))
                }
                Some(_) => {}
            }
        }
        for (m, fa) in &da.fields {
            let Some(fb) = db.fields.get(m) else {
                only(&mut out, format!("measurement {name}.{m}"), an, bn);
                continue;
            };
            for (f, ta) in fa {
                match fb.get(f) {
                    None => only(&mut out, format!("field {name}.{m}.{f}"), an, bn),
                    Some(tb) if tb != ta => out.push(format!(
                        "field {name}.{m}.{f}: {} on {an}, {} on {bn}",
                        ta.name(),
                        tb.name()
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    for u in &a.users {
        if !b.users.contains(u) {
            only(&mut out, format!("user {u}"), an, bn);
        }
    }
    out
}

/// Differences in both directions, without repeating a changed value.
pub fn diff_both(an: &str, a: &Schema, bn: &str, b: &Schema) -> Vec<String> {
    let mut out = diff(an, a, bn, b);
    for line in diff(bn, b, an, a) {
        if line.contains("missing on") {
            out.push(line);
        }
    }
    out
}

fn describe_rp(r: &RetentionPolicy) -> String {
    format!(
        "duration {}, shard duration {}, replication {}{}",
        influxql_duration(r.duration, true),
        influxql_duration(r.shard_duration, false),
        r.replication,
        if r.default { ", default" } else { "" }
    )
}

fn rp_clause(r: &RetentionPolicy) -> String {
    format!(
        "DURATION {} REPLICATION {} SHARD DURATION {}{}",
        influxql_duration(r.duration, true),
        r.replication.max(1),
        influxql_duration(r.shard_duration, false),
        if r.default { " DEFAULT" } else { "" }
    )
}

/// Creates on `to` what `from` has and `to` lacks: databases, retention
/// policies (altered to match when they differ and `alter` is set),
/// continuous queries. Returns one line per action, and per thing that
/// cannot be copied.
pub async fn apply(
    from: &Schema,
    to: &Node,
    have: &Schema,
    alter: bool,
) -> Result<Vec<String>, RepairError> {
    let mut done = Vec::new();
    for (name, db) in &from.dbs {
        let existing = have.dbs.get(name);
        if existing.is_none() {
            to.query("", &format!("CREATE DATABASE {}", ident(name)), true)
                .await?;
            done.push(format!("created database {name}"));
        }
        // Non-default policies first, so the default flag lands last.
        let mut rps: Vec<_> = db.rps.iter().collect();
        rps.sort_by_key(|(_, r)| r.default);
        for (rp, r) in rps {
            let current = existing.and_then(|d| d.rps.get(rp));
            // A new database has the `autogen` policy InfluxDB created.
            let exists = current.is_some() || (existing.is_none() && rp == "autogen");
            if current == Some(r) || (current.is_some() && !alter) {
                continue;
            }
            let verb = if exists { "ALTER" } else { "CREATE" };
            let q = format!(
                "{verb} RETENTION POLICY {} ON {} {}",
                ident(rp),
                ident(name),
                rp_clause(r)
            );
            to.query(name, &q, true).await?;
            done.push(format!(
                "{} retention policy {name}.{rp}",
                verb.to_lowercase()
            ));
        }
        for (cq, text) in &db.cqs {
            if existing.is_some_and(|d| d.cqs.contains_key(cq)) {
                continue;
            }
            to.query(name, text, true).await?;
            done.push(format!("created continuous query {name}.{cq}"));
        }
    }
    for u in &from.users {
        if !have.users.contains(u) {
            done.push(format!(
                "cannot copy user {u}: InfluxDB does not reveal passwords; create it on {} by hand",
                to.name
            ));
        }
    }
    Ok(done)
}

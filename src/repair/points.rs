//! Raw points read back from a node, typed by the schema.
//!
//! A raw read is `SELECT * FROM … WHERE time >= a AND time < b GROUP BY *`
//! with `epoch=ns`, chunked: every series arrives with its tags, every row
//! is one point (its fields, null where the point has none). A point's
//! identity is measurement, tag set and timestamp; writing the same
//! identity again merges fields, so copying is idempotent.
//!
//! JSON answers are decoded here into typed points (repair compares them);
//! [`msgpack`] decodes MessagePack answers straight into line protocol
//! (backfill only copies). A read over several measurements returns one
//! column per field key, so [`raw_sources`] splits it where a key has two
//! types.

use std::collections::BTreeMap;

use super::lp::{FieldType, FieldValue, encode_point};
use super::node::{Node, Series};
use super::{RepairError, source};

pub mod msgpack;

/// Field types per measurement (from `SHOW FIELD KEYS`).
pub type Types = BTreeMap<String, BTreeMap<String, FieldType>>;
/// A point's identity: measurement, tags (no empty values), time.
pub type Key = (String, BTreeMap<String, String>, i64);
pub type Fields = BTreeMap<String, FieldValue>;
/// Points of one window.
pub type Points = BTreeMap<Key, Fields>;

/// Rows per chunk asked of a node.
pub const CHUNK: usize = 10_000;

/// The raw query of `[a, b)` in one measurement (all when `None`).
pub fn raw_query(db: &str, rp: &str, measurement: Option<&str>, a: i64, b: i64) -> String {
    raw_query_from(&source(db, rp, measurement), a, b)
}

/// The raw query of `[a, b)` from a `FROM` clause.
pub fn raw_query_from(from: &str, a: i64, b: i64) -> String {
    format!("SELECT * FROM {from} WHERE time >= {a} AND time < {b} GROUP BY *")
}

/// `FROM` clauses that together read every measurement of `db`/`rp` in
/// `types` exactly once, without InfluxDB casting values. A query over
/// several measurements has one column per field key, and when a key is an
/// integer in one measurement and a float in another, the integers come
/// back as floats (2^53 + 1 as 2^53). So: `/.*/` when no field key has two
/// types; otherwise each measurement holding such a key alone, and the
/// others listed together.
pub fn raw_sources(db: &str, rp: &str, types: &Types) -> Vec<String> {
    let mut seen: BTreeMap<&str, FieldType> = BTreeMap::new();
    let mut mixed: std::collections::BTreeSet<&str> = Default::default();
    for fields in types.values() {
        for (k, t) in fields {
            if *seen.entry(k).or_insert(*t) != *t {
                mixed.insert(k);
            }
        }
    }
    if mixed.is_empty() {
        return vec![source(db, rp, None)];
    }
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for (m, fields) in types {
        if fields.keys().any(|k| mixed.contains(k.as_str())) {
            out.push(source(db, rp, Some(m)));
        } else {
            rest.push(source(db, rp, Some(m)));
        }
    }
    if !rest.is_empty() {
        out.push(rest.join(", "));
    }
    out
}

/// Calls `each` for every point of `series`. A non-null value of a field
/// the types do not know is `Err(field)`, so the caller can reload them.
pub fn decode(
    series: &Series,
    types: &Types,
    mut each: impl FnMut(&str, &BTreeMap<String, String>, i64, Fields),
) -> Result<(), String> {
    let tags: BTreeMap<String, String> = series
        .tags
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let known = types.get(&series.name);
    let Some(time_col) = series.columns.iter().position(|c| c == "time") else {
        return Ok(());
    };
    for row in &series.values {
        let Some(time) = row.get(time_col).and_then(|v| v.as_i64()) else {
            continue;
        };
        let mut fields = Fields::new();
        for (i, col) in series.columns.iter().enumerate() {
            let Some(v) = row.get(i).filter(|v| !v.is_null()) else {
                continue;
            };
            if i == time_col {
                continue;
            }
            let Some(t) = known.and_then(|k| k.get(col)) else {
                return Err(col.clone());
            };
            if let Some(fv) = FieldValue::from_json(v, *t) {
                fields.insert(col.clone(), fv);
            }
        }
        if !fields.is_empty() {
            each(&series.name, &tags, time, fields);
        }
    }
    Ok(())
}

/// Reads every point of `[a, b)` in `db`/`rp` (one measurement or all)
/// from `node`, reloading `types` once if a field is unknown.
pub async fn read_window(
    node: &Node,
    db: &str,
    rp: &str,
    measurement: Option<&str>,
    (a, b): (i64, i64),
    types: &mut Types,
) -> Result<Points, RepairError> {
    let mut points = Points::new();
    let mut reader = node
        .query_chunked(db, &raw_query(db, rp, measurement, a, b), CHUNK)
        .await?;
    while let Some(chunk) = reader.next().await? {
        for s in &chunk {
            let mut insert = |m: &str, tags: &BTreeMap<String, String>, t: i64, f: Fields| {
                points
                    .entry((m.to_string(), tags.clone(), t))
                    .or_default()
                    .extend(f);
            };
            if decode(s, types, &mut insert).is_err() {
                *types = super::schema::field_types(node, db).await?;
                decode(s, types, &mut insert).map_err(|f| {
                    RepairError::node(&node.name, format!("field {f} has no known type"))
                })?;
            }
        }
    }
    Ok(points)
}

/// Line protocol for `points`, split into bodies of at most `batch` points;
/// each body comes with its point count.
pub fn batches<'a>(
    points: impl Iterator<Item = (&'a Key, &'a Fields)>,
    batch: usize,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut n = 0u64;
    for ((m, tags, t), fields) in points {
        encode_point(&mut body, m, tags, fields, *t);
        n += 1;
        if n as usize >= batch.max(1) {
            out.push((std::mem::take(&mut body), n));
            n = 0;
        }
    }
    if n > 0 {
        out.push((body, n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_with_a_mixed_field_type_are_read_alone() {
        let t = |pairs: &[(&str, &str, FieldType)]| {
            let mut out = Types::new();
            for (m, f, ty) in pairs {
                out.entry(m.to_string())
                    .or_default()
                    .insert(f.to_string(), *ty);
            }
            out
        };
        let plain = t(&[("a", "v", FieldType::Float), ("b", "v", FieldType::Float)]);
        assert_eq!(raw_sources("d", "r", &plain), vec!["\"d\".\"r\"./.*/"]);
        let mixed = t(&[
            ("a", "v", FieldType::Float),
            ("b", "v", FieldType::Integer),
            ("c", "w", FieldType::String),
            ("e", "x", FieldType::Boolean),
        ]);
        assert_eq!(
            raw_sources("d", "r", &mixed),
            vec![
                "\"d\".\"r\".\"a\"",
                "\"d\".\"r\".\"b\"",
                "\"d\".\"r\".\"c\", \"d\".\"r\".\"e\""
            ]
        );
    }
}

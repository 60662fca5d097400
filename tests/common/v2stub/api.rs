//! The 2.7 endpoints of the stub: routing, auth, org/bucket resolution and
//! the handlers, each answering with 2.7's status codes and messages.
//!
//! Why separate from the server loop: this is the part that must track 2.7's
//! behaviour (reference notes §3), so it reads as one list of rules.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::lp::{annotated_csv, flux_bucket, parse_line};
use super::{Bucket, DeleteRequest, RecordedRequest, Resp, State, bucket, is_id, new_id};

/// An error response on its way out of a helper (boxed: responses are large).
type Rejection = Box<Resp>;

fn reject(status: u16, code: &'static str, message: &str) -> Rejection {
    Box::new(error(status, code, message))
}

pub(super) fn route(st: &mut State, method: &Method, rec: &RecordedRequest) -> Resp {
    let path = rec.path.trim_end_matches('/');
    match (method, path) {
        (&Method::GET | &Method::HEAD, "/ping") => {
            let mut r = empty(204);
            let h = r.headers_mut();
            h.insert("X-Influxdb-Version", HeaderValue::from_static("v2.7.11"));
            h.insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
            return r;
        }
        (&Method::GET, "/health") => {
            return json_resp(
                200,
                json!({"name":"influxdb","message":"ready for queries and writes",
                       "status":"pass","checks":[],"version":"v2.7.11","commit":"stub"}),
            );
        }
        (&Method::GET, "/ready") => {
            return json_resp(
                200,
                json!({"status":"ready","started":"2024-01-01T00:00:00Z","up":"1s"}),
            );
        }
        _ => {}
    }
    if !authorized(st, rec.header("authorization")) {
        return error(401, "unauthorized", "unauthorized access");
    }
    match (method, path) {
        (&Method::POST, "/api/v2/write") => write(st, rec),
        (&Method::POST, "/api/v2/query") => query(st, rec),
        (&Method::POST, "/api/v2/delete") => delete(st, rec),
        (&Method::GET, "/api/v2/orgs") => orgs(st, rec),
        (&Method::GET, "/api/v2/buckets") => list_buckets(st, rec),
        (&Method::POST, "/api/v2/buckets") => create_bucket(st, rec),
        _ => error(404, "not found", "path not found"),
    }
}

/// `Token <t>` or `Bearer <t>`, scheme case-insensitive.
fn authorized(st: &State, header: Option<&str>) -> bool {
    let Some((scheme, cred)) = header.and_then(|h| h.trim().split_once(' ')) else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        && cred.trim() == st.token
}

/// Resolves `org`/`orgID` like 2.7's `queryOrganization` (orgID wins).
fn resolve_org(st: &State, rec: &RecordedRequest) -> Result<(), Rejection> {
    let org = rec.param("org").filter(|s| !s.is_empty());
    let org_id = rec.param("orgID").filter(|s| !s.is_empty());
    if let Some(id) = org_id {
        if !is_id(&id) {
            return Err(reject(400, "invalid", "id must have a length of 16 bytes"));
        }
        return if id == st.org_id {
            Ok(())
        } else {
            Err(reject(404, "not found", "organization not found"))
        };
    }
    match org {
        Some(o) if is_id(&o) && o == st.org_id => Ok(()),
        Some(o) if is_id(&o) => Err(reject(404, "not found", "organization not found")),
        Some(o) if o == st.org_name => Ok(()),
        Some(o) => Err(reject(
            404,
            "not found",
            &format!("organization name \"{o}\" not found"),
        )),
        None => Err(reject(400, "invalid", "Please provide either orgID or org")),
    }
}

/// Finds a bucket of the org by ID first, then by name (2.7 `findBucket`).
fn find_bucket(st: &State, key: &str) -> Option<usize> {
    let user = |b: &Bucket| b.org_id == st.org_id;
    st.buckets
        .iter()
        .position(|b| user(b) && is_id(key) && b.id == key)
        .or_else(|| st.buckets.iter().position(|b| user(b) && b.name == key))
}

fn write(st: &mut State, rec: &RecordedRequest) -> Resp {
    let precision = rec.param("precision").unwrap_or_default();
    if !["", "ns", "us", "ms", "s"].contains(&precision.as_str()) {
        return error(
            400,
            "invalid",
            "invalid precision; valid precision units are ns, us, ms, and s",
        );
    }
    let Some(bucket_key) = rec.param("bucket").filter(|b| !b.is_empty()) else {
        return error(404, "not found", "bucket not found");
    };
    let body = match decode_body(rec) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Err(r) = resolve_org(st, rec) {
        return *r;
    }
    let Some(idx) = find_bucket(st, &bucket_key) else {
        return error(
            404,
            "not found",
            &format!("bucket \"{bucket_key}\" not found"),
        );
    };
    let mut good = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Err(why) = parse_line(line) {
            return error(400, "invalid", &format!("unable to parse '{line}': {why}"));
        }
        good.push(line.to_owned());
    }
    st.buckets[idx].lines.extend(good);
    empty(204)
}

/// The request body, gunzipped (all members) when `Content-Encoding` says gzip.
fn decode_body(rec: &RecordedRequest) -> Result<String, Rejection> {
    let enc = rec.header("content-encoding").unwrap_or("").trim();
    if enc.eq_ignore_ascii_case("gzip") || enc.eq_ignore_ascii_case("x-gzip") {
        let out = super::gunzip(&rec.body).map_err(|_| {
            reject(
                400,
                "invalid",
                "gzipped HTTP body contains an invalid header",
            )
        })?;
        return Ok(String::from_utf8_lossy(&out).into_owned());
    }
    Ok(String::from_utf8_lossy(&rec.body).into_owned())
}

fn query(st: &State, rec: &RecordedRequest) -> Resp {
    if let Err(r) = resolve_org(st, rec) {
        return *r;
    }
    let ctype = rec.header("content-type").unwrap_or("");
    let flux = if ctype.contains("application/vnd.flux") {
        String::from_utf8_lossy(&rec.body).into_owned()
    } else {
        match serde_json::from_slice::<Value>(&rec.body) {
            Ok(v) => v["query"].as_str().unwrap_or_default().to_owned(),
            Err(e) => {
                let msg = format!("failed to decode request body: {e}");
                return error(400, "invalid", &msg);
            }
        }
    };
    if flux.trim().is_empty() {
        return error(400, "invalid", "failed to decode request body: empty query");
    }
    let mut csv = String::new();
    if let Some(name) = flux_bucket(&flux) {
        let Some(idx) = find_bucket(st, &name) else {
            let msg =
                format!("failed to initialize execute state: could not find bucket \"{name}\"");
            return error(404, "not found", &msg);
        };
        csv = annotated_csv(&st.buckets[idx].lines);
    }
    csv.push_str("\r\n");
    let mut r = Response::new(Full::new(Bytes::from(csv)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    r
}

fn delete(st: &mut State, rec: &RecordedRequest) -> Resp {
    if let Err(r) = resolve_org(st, rec) {
        return *r;
    }
    let key = rec
        .param("bucketID")
        .or_else(|| rec.param("bucket"))
        .unwrap_or_default();
    let Some(idx) = find_bucket(st, &key) else {
        return error(404, "not found", &format!("bucket \"{key}\" not found"));
    };
    let v: Value = match serde_json::from_slice(&rec.body) {
        Ok(v) => v,
        Err(e) => return error(400, "invalid", &format!("error decoding json body: {e}")),
    };
    let (Some(start), Some(stop)) = (v["start"].as_str(), v["stop"].as_str()) else {
        return error(
            400,
            "invalid",
            "invalid request; error parsing request json: invalid RFC3339Nano for field start",
        );
    };
    let predicate = v["predicate"].as_str().unwrap_or_default().to_owned();
    let bucket_id = st.buckets[idx].id.clone();
    st.deletes.push(DeleteRequest {
        bucket_id,
        start: start.into(),
        stop: stop.into(),
        predicate,
    });
    empty(204)
}

fn org_json(st: &State) -> Value {
    json!({"id": st.org_id, "name": st.org_name, "description": "",
           "links": {"self": format!("/api/v2/orgs/{}", st.org_id)}})
}

fn orgs(st: &State, rec: &RecordedRequest) -> Resp {
    if let Some(name) = rec
        .param("org")
        .filter(|o| !o.is_empty() && *o != st.org_name)
    {
        let msg = format!("organization name \"{name}\" not found");
        return error(404, "not found", &msg);
    }
    if rec
        .param("orgID")
        .is_some_and(|o| !o.is_empty() && o != st.org_id)
    {
        return error(404, "not found", "organization not found");
    }
    json_resp(
        200,
        json!({"links": {"self": "/api/v2/orgs"}, "orgs": [org_json(st)]}),
    )
}

fn bucket_json(b: &Bucket) -> Value {
    let rules: Vec<Value> = if b.retention_seconds > 0 {
        vec![json!({"type": "expire", "everySeconds": b.retention_seconds})]
    } else {
        Vec::new()
    };
    json!({"id": b.id, "orgID": b.org_id, "type": if b.system { "system" } else { "user" },
           "name": b.name, "retentionRules": rules, "labels": [],
           "links": {"self": format!("/api/v2/buckets/{}", b.id),
                     "org": format!("/api/v2/orgs/{}", b.org_id),
                     "write": format!("/api/v2/write?org={}&bucket={}", b.org_id, b.id)}})
}

fn list_buckets(st: &State, rec: &RecordedRequest) -> Resp {
    let name = rec.param("name").filter(|s| !s.is_empty());
    let org_id = rec.param("orgID").filter(|s| !s.is_empty());
    let org = rec.param("org").filter(|s| !s.is_empty());
    let id = rec.param("id").filter(|s| !s.is_empty());
    if let Some(o) = org
        .as_ref()
        .filter(|o| org_id.is_none() && **o != st.org_name)
    {
        return error(
            404,
            "not found",
            &format!("organization name \"{o}\" not found"),
        );
    }
    let matches: Vec<&Bucket> = st
        .buckets
        .iter()
        .filter(|b| name.as_ref().is_none_or(|n| *n == b.name))
        .filter(|b| org_id.as_ref().is_none_or(|o| *o == b.org_id))
        .filter(|b| id.as_ref().is_none_or(|i| *i == b.id))
        .collect();
    // 2.7 looks a bucket up directly (404 when missing) for an ID filter or
    // for name + orgID; other filters list (possibly nothing).
    if matches.is_empty() && id.is_some() {
        return error(404, "not found", "bucket not found");
    }
    if let (true, Some(n), Some(_)) = (matches.is_empty(), &name, &org_id) {
        return error(404, "not found", &format!("bucket \"{n}\" not found"));
    }
    let list: Vec<Value> = matches.into_iter().map(bucket_json).collect();
    json_resp(
        200,
        json!({"links": {"self": "/api/v2/buckets"}, "buckets": list}),
    )
}

fn create_bucket(st: &mut State, rec: &RecordedRequest) -> Resp {
    let v: Value = match serde_json::from_slice(&rec.body) {
        Ok(v) => v,
        Err(e) => return error(400, "invalid", &format!("malformed JSON: {e}")),
    };
    let org_id = v["orgID"].as_str().unwrap_or_default();
    if !is_id(org_id) {
        return error(400, "invalid", "organization id must be provided");
    }
    let name = v["name"].as_str().unwrap_or_default().to_owned();
    if name.starts_with('_') {
        let msg = format!("bucket name {name} is invalid. Buckets may not start with underscore");
        return error(422, "unprocessable entity", &msg);
    }
    if name.is_empty() {
        return error(400, "invalid", "bucket name is empty");
    }
    let retention = v["retentionRules"][0]["everySeconds"].as_i64().unwrap_or(0);
    if org_id != st.org_id {
        return error(404, "not found", "organization not found");
    }
    if st
        .buckets
        .iter()
        .any(|b| b.org_id == org_id && b.name == name)
    {
        let msg = format!("bucket with name {name} already exists");
        return error(422, "conflict", &msg);
    }
    let b = bucket(&new_id(), &name, org_id, false, retention);
    let body = bucket_json(&b);
    st.buckets.push(b);
    json_resp(201, body)
}

fn empty(status: u16) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn json_resp(status: u16, v: Value) -> Resp {
    let mut r = empty(status);
    *r.body_mut() = Full::new(Bytes::from(v.to_string()));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A 2.x error: `{"code","message"}` plus `X-Platform-Error-Code`.
pub(super) fn error(status: u16, code: &'static str, message: &str) -> Resp {
    let mut r = json_resp(status, json!({"code": code, "message": message}));
    r.headers_mut()
        .insert("X-Platform-Error-Code", HeaderValue::from_static(code));
    r
}

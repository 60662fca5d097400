//! `/write` and `/api/v2/write`: the door of the durable write path.
//!
//! Order matters here, because a 2xx is a promise:
//! 1. check the parameters (db/bucket, precision, consistency) as InfluxDB does;
//! 2. read the body within `max_body_size`, gunzip it within the same limit
//!    on the *decoded* size (no gzip bombs);
//! 3. scan the line protocol, dropping bad lines (v1) or rejecting the batch
//!    (v2), and stamp untimed points with the receive time taken once per
//!    request, so every node stores the same point; choose the stored form
//!    ([`crate::gzip::for_log`]: the client's own gzip when nothing changed,
//!    else deflated once if a node wants gzip, else plain), off the async
//!    workers when the body is large;
//! 4. append the batch once to the log, answering 503 if the log cannot take it;
//! 5. for `consistency` above `any`, wait (up to `write_timeout`) for enough
//!    nodes to apply it.
//!
//! Only then does the client get its 204 (or v1's 400 "partial write" when some
//! lines were dropped: the valid ones are durable and will reach every node).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Response, StatusCode, header};

use super::Gateway;
use super::respond::{self, Body, Flavor};
use super::routes::ClientRequest;
use crate::config::Consistency;
use crate::lineproto::{self, BodyError, Precision, ScanOptions};
use crate::record::Record;

/// Unix time in nanoseconds, clamped into i64.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// Validated write parameters and the query string to forward.
struct Target {
    precision: Precision,
    consistency: Consistency,
    forward_query: String,
}

fn bad(flavor: Flavor, msg: &str) -> Response<Body> {
    respond::error(flavor, StatusCode::BAD_REQUEST, msg)
}

fn bad_boxed(flavor: Flavor, msg: &str) -> Box<Response<Body>> {
    Box::new(bad(flavor, msg))
}

fn v1_target(query: &str, default: Consistency) -> Result<Target, Box<Response<Body>>> {
    let mut db = None;
    let mut precision = Precision::Nanosecond;
    let mut consistency = default;
    let mut fwd = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "db" => {
                db = Some(v.to_string());
                fwd.append_pair("db", &v);
            }
            "precision" => {
                precision = Precision::parse_v1(&v).ok_or_else(|| {
                    bad_boxed(
                        Flavor::V1,
                        &format!("invalid precision {v:?} (use n, u, ms, s, m or h)"),
                    )
                })?;
                fwd.append_pair("precision", &v);
            }
            "consistency" if !v.is_empty() => {
                consistency = Consistency::parse(&v)
                    .ok_or_else(|| bad_boxed(Flavor::V1, "invalid consistency level"))?;
            }
            // rp and the client's u/p go to the nodes as given.
            "rp" | "u" | "p" => {
                fwd.append_pair(&k, &v);
            }
            _ => {}
        }
    }
    if db.as_deref().is_none_or(str::is_empty) {
        return Err(bad_boxed(Flavor::V1, "database is required"));
    }
    Ok(Target {
        precision,
        consistency,
        forward_query: fwd.finish(),
    })
}

fn v2_target(query: &str, default: Consistency) -> Result<Target, Box<Response<Body>>> {
    let (mut org, mut bucket) = (false, false);
    let mut precision = Precision::Nanosecond;
    let mut fwd = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "org" | "orgID" => {
                org |= !v.is_empty();
                fwd.append_pair(&k, &v);
            }
            "bucket" => {
                bucket |= !v.is_empty();
                fwd.append_pair("bucket", &v);
            }
            "precision" => {
                precision = Precision::parse_v2(&v).ok_or_else(|| {
                    bad_boxed(
                        Flavor::V2,
                        "invalid precision; valid precision units are ns, us, ms, and s",
                    )
                })?;
                fwd.append_pair("precision", &v);
            }
            _ => {}
        }
    }
    if !bucket {
        // 2.7 answers a missing bucket as not found.
        return Err(Box::new(respond::error(
            Flavor::V2,
            StatusCode::NOT_FOUND,
            "bucket not found",
        )));
    }
    // A 1.x node ignores org, so only insist when the client gave none at all
    // and InfluxDB 2.x would refuse too.
    if !org {
        return Err(bad_boxed(Flavor::V2, "Please provide either orgID or org"));
    }
    Ok(Target {
        precision,
        consistency: default,
        forward_query: fwd.finish(),
    })
}

pub async fn handle(gw: &Arc<Gateway>, mut req: ClientRequest, flavor: Flavor) -> Response<Body> {
    let target = match flavor {
        Flavor::V1 => v1_target(&req.query, gw.config.write_consistency),
        Flavor::V2 => v2_target(&req.query, gw.config.write_consistency),
    };
    let target = match target {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let raw = match req.read_body(gw).await {
        Ok(b) => b,
        Err(e) => return e.response(flavor),
    };
    // The receive time, once per request, in the request's precision.
    let now = target.precision.from_unix_nanos(now_nanos());
    let encoding = req
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let client_gzip = encoding.is_some_and(|e| {
        let e = e.trim();
        e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip")
    });
    let raw_gzip = client_gzip.then(|| raw.clone());
    let body = match lineproto::decode_body(raw, encoding, gw.config.max_body_size) {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return respond::error(
                flavor,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Entity Too Large",
            );
        }
        Err(e) => return bad(flavor, &e.to_string()),
    };
    // Scanning a large body is CPU work; keep it off the reactor's toes.
    let opts = match flavor {
        Flavor::V1 => ScanOptions::v1(target.precision),
        Flavor::V2 => ScanOptions::v2(target.precision),
    };
    let compress = gw
        .config
        .nodes
        .iter()
        .any(|n| n.gzip == crate::config::WireGzip::Always);
    let offload = body.len() > 256 * 1024 || (compress && body.len() > 16 * 1024);
    let scan_and_store = move || {
        let scanned = lineproto::scan_with(body.clone(), now, &opts);
        let stored = crate::gzip::for_log(raw_gzip.as_ref(), &body, scanned.body.clone(), compress);
        (scanned, stored)
    };
    let (scanned, (stored, stored_gzip)) = if offload {
        match tokio::task::spawn_blocking(scan_and_store).await {
            Ok(s) => s,
            Err(_) => {
                return respond::error(
                    flavor,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "line protocol scan failed",
                );
            }
        }
    } else {
        scan_and_store()
    };
    let parse_error = match flavor {
        Flavor::V1 => scanned.v1_error(),
        Flavor::V2 => scanned.v2_error(),
    };
    if flavor == Flavor::V2 && parse_error.is_some() || scanned.points == 0 {
        // Nothing to store: v2 rejects the whole batch on any bad line, and
        // a v1 body with no valid line is a plain parse error.
        return match parse_error {
            Some(msg) => bad(flavor, &msg),
            None => respond::empty(StatusCode::NO_CONTENT),
        };
    }

    let record = if stored_gzip {
        Record::gzip_write(
            &req.path,
            target.forward_query,
            req.client_auth.take(),
            stored,
        )
    } else {
        Record::write(
            &req.path,
            target.forward_query,
            req.client_auth.take(),
            stored,
        )
    };
    let seq = match gw.log.append(record.encode()).await {
        Ok(seq) => seq,
        Err(e) => {
            tracing::error!(error = %e, "log append failed; write refused");
            return respond::error(
                flavor,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("gateway cannot store the write durably: {e}"),
            );
        }
    };

    let needed = target.consistency.required(gw.nodes.len());
    if needed > 0 {
        let confirmed = wait_for_nodes(gw, seq, needed, gw.config.write_timeout).await;
        if confirmed < needed {
            // As InfluxDB Enterprise: 500, but the data is not lost.
            return respond::error(
                flavor,
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "write consistency not met: {confirmed} of {needed} required nodes confirmed within {:?}; \
                     the data is stored durably and stays queued for the other nodes",
                    gw.config.write_timeout
                ),
            );
        }
    }
    match parse_error {
        Some(msg) => bad(flavor, &msg),
        None => respond::empty(StatusCode::NO_CONTENT),
    }
}

/// Waits until `needed` nodes have applied `seq`; returns how many did.
pub async fn wait_for_nodes(gw: &Gateway, seq: u64, needed: usize, timeout: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut waits: futures_util::stream::FuturesUnordered<_> = gw
        .nodes
        .iter()
        .map(|n| n.wait_applied(seq, deadline))
        .collect();
    let mut confirmed = 0;
    use futures_util::StreamExt;
    while let Some(ok) = waits.next().await {
        if ok {
            confirmed += 1;
            if confirmed >= needed {
                break;
            }
        }
    }
    confirmed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_params() {
        assert!(v1_target("", Consistency::Any).is_err());
        assert!(v1_target("db=", Consistency::Any).is_err());
        assert!(v1_target("db=x&precision=q", Consistency::Any).is_err());
        assert!(v1_target("db=x&consistency=most", Consistency::Any).is_err());
        let t = v1_target(
            "db=x&rp=r&precision=s&consistency=all&u=a&p=b&junk=1",
            Consistency::Any,
        )
        .unwrap();
        assert_eq!(t.forward_query, "db=x&rp=r&precision=s&u=a&p=b");
        assert_eq!(t.consistency, Consistency::All);
        assert_eq!(t.precision, Precision::Second);
    }

    #[test]
    fn v2_params() {
        assert!(v2_target("org=o", Consistency::Any).is_err());
        assert!(v2_target("bucket=b", Consistency::Any).is_err());
        assert!(v2_target("org=o&bucket=b&precision=m", Consistency::Any).is_err());
        let t = v2_target("org=o&bucket=b&precision=ms", Consistency::Any).unwrap();
        assert_eq!(t.forward_query, "org=o&bucket=b&precision=ms");
    }
}

//! `/write` and `/api/v2/write`: the door of the durable write path.
//!
//! Order matters here, because a 2xx is a promise:
//! 1. check the parameters (db/bucket, precision, consistency) as InfluxDB does
//!    (typed, first value wins), and keep the ones nodes need, in the
//!    client's order, as the query to forward;
//!    a v1 write to a database (or `rp`) that the nodes confirm does not
//!    exist gets InfluxDB's 404 (or 500) here ([`crate::backend::catalog`]);
//! 2. when every up node lags by half the in-memory tail, wait (up to 1 s)
//!    for delivery to catch up before reading the body
//!    ([`crate::backend::cluster::Cluster::pace`]);
//! 3. read the body within `max_body_size`, gunzip it within the same limit
//!    on the *decoded* size (no gzip bombs); a plain body under 1 MiB that
//!    needs no change (every line valid and timestamped: the usual batch) is
//!    stored as the chunks it arrived in, without joining them
//!    ([`lineproto::scan_chunks`]; one record per piece, appended together);
//! 4. scan the line protocol, dropping bad lines (v1) or rejecting the batch
//!    (v2), and stamp untimed points with the receive time taken once per
//!    request from the gateway's clock, so every node stores the same point;
//!    choose the stored form ([`crate::gzip::for_log`]: the client's own gzip
//!    when nothing changed, else deflated once if a node wants gzip, else
//!    plain), off the async workers when the body is over 1 MiB or deflated,
//!    or is gzip and the runtime has a single worker (then it is inflated
//!    there too);
//!    a body of at least two [`lineproto::PART_MIN`] parts is cut at
//!    newlines and scanned on several cores ([`lineproto::scan_split`]);
//! 5. append the batch once to the log, answering 503 if the log cannot take it;
//! 6. for `consistency` above `any`, wait (up to `write_timeout`) for enough
//!    nodes to apply it.
//!
//! Only then does the client get its 204 (or v1's 400 "partial write" when some
//! lines were dropped: the valid ones are durable and will reach every node).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};

use super::Gateway;
use super::request::{BodyChunks, ClientRequest, Flavor, params, rewrite_params};
use super::respond::{self, ApiError, Body};
use crate::backend::cluster::Scope;
use crate::config::Consistency;
use crate::lineproto::{self, Precision, ScanOptions};
use crate::record::Record;

/// The longest a write waits for delivery to catch up before it is taken
/// into the log anyway.
const PACE_MAX_WAIT: Duration = Duration::from_secs(1);

/// The largest plain body scanned on the async worker itself (see `store`).
const SCAN_INLINE_MAX: usize = 1024 * 1024;

/// Validated write parameters and the query string to forward.
struct Target {
    precision: Precision,
    consistency: Consistency,
    forward_query: String,
}

fn bad(flavor: Flavor, msg: &str) -> Response<Body> {
    respond::error(flavor, StatusCode::BAD_REQUEST, msg)
}

/// The parameters `/write` reads itself.
#[derive(Debug, Default, serde::Deserialize)]
struct V1Params {
    db: Option<String>,
    precision: Option<String>,
    consistency: Option<String>,
}

/// The parameters `/api/v2/write` reads itself.
#[derive(Debug, Default, serde::Deserialize)]
struct V2Params {
    org: Option<String>,
    #[serde(rename = "orgID")]
    org_id: Option<String>,
    bucket: Option<String>,
    precision: Option<String>,
}

/// `/write` forwards the target, the precision, and the client's u/p as given.
const V1_FORWARD: &[&str] = &["db", "rp", "precision", "u", "p"];
/// `/api/v2/write` forwards the target and the precision.
const V2_FORWARD: &[&str] = &["org", "orgID", "bucket", "precision"];

/// The `keep` parameters of `query`, in the client's order, repeats included.
fn forward_query(query: &str, keep: &[&str]) -> String {
    rewrite_params(query.as_bytes(), |k, v| keep.contains(&k).then_some(v))
}

fn typed<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    params(query.as_bytes()).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn v1_target(query: &str, default: Consistency) -> Result<Target, ApiError> {
    let p: V1Params = typed(query)?;
    let precision = match p.precision.as_deref() {
        None => Precision::Nanosecond,
        Some(v) => Precision::parse_v1(v).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid precision {v:?} (use n, u, ms, s, m or h)"))
        })?,
    };
    let consistency = match p.consistency.as_deref() {
        None | Some("") => default,
        Some(v) => Consistency::parse(v)
            .ok_or_else(|| ApiError::BadRequest("invalid consistency level".into()))?,
    };
    if p.db.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest("database is required".into()));
    }
    Ok(Target {
        precision,
        consistency,
        forward_query: forward_query(query, V1_FORWARD),
    })
}

fn v2_target(query: &str, default: Consistency) -> Result<Target, ApiError> {
    let p: V2Params = typed(query)?;
    let precision = match p.precision.as_deref() {
        None => Precision::Nanosecond,
        Some(v) => Precision::parse_v2(v).ok_or_else(|| {
            ApiError::BadRequest(
                "invalid precision; valid precision units are ns, us, ms, and s".into(),
            )
        })?,
    };
    let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    if !given(&p.bucket) {
        // 2.7 answers a missing bucket as not found.
        return Err(ApiError::BucketNotFound);
    }
    // A 1.x node ignores org, so only insist when the client gave none at all
    // and InfluxDB 2.x would refuse too.
    if !given(&p.org) && !given(&p.org_id) {
        return Err(ApiError::BadRequest(
            "Please provide either orgID or org".into(),
        ));
    }
    Ok(Target {
        precision,
        consistency: default,
        forward_query: forward_query(query, V2_FORWARD),
    })
}

pub async fn handle(
    gw: &Arc<Gateway>,
    mut req: ClientRequest,
    flavor: Flavor,
) -> Result<Response<Body>, ApiError> {
    let target = match flavor {
        Flavor::V1 => v1_target(&req.query, gw.config.write_consistency)?,
        Flavor::V2 => v2_target(&req.query, gw.config.write_consistency)?,
    };
    if flavor == Flavor::V1
        && let Some((status, msg)) = (gw.catalog)
            .refuse_v1_write(&gw.cluster, &gw.http, &req.query)
            .await
    {
        return Ok(respond::error(flavor, status, &msg));
    }
    // Acknowledge no faster than the fastest node takes deliveries (see
    // `Cluster::pace`); the body waits in the socket, not in memory.
    gw.cluster.pace(&gw.log, PACE_MAX_WAIT).await;
    let read = req.read_chunks(gw).await?;
    crate::metrics::write_wire_bytes(read.len);
    // The receive time, once per request, in the request's precision.
    let now = target.precision.from_unix_nanos(gw.clock.now_nanos());
    let plain = !req.headers.contains_key(header::CONTENT_ENCODING);
    if plain && read.chunks.len() > 1 && read.len <= SCAN_INLINE_MAX && !compresses(gw) {
        // The common batch (all valid, all timestamped) is stored as the
        // chunks it arrived in: no joined copy.
        let opts = scan_options(flavor, target.precision);
        if let Some(pieces) = lineproto::scan_chunks(&read.chunks, now, &opts) {
            crate::metrics::write_decoded_bytes(read.len);
            return Ok(store_pieces(gw, req, flavor, target, read, pieces).await);
        }
    }
    let raw = read.join();
    let encoding = req
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let max = gw.config.max_body_size;
    let input = if encoding.is_some_and(lineproto::is_gzip) && lone_worker() {
        // Inflated where it is scanned, off the only worker (see `store`).
        Input::Gzip { raw, max }
    } else {
        let (body, raw_gzip) = decode(raw, encoding, max)?;
        Input::Decoded { body, raw_gzip }
    };
    Ok(store(gw, req, flavor, target, input, now).await)
}

/// The body as lines (within `max` decoded bytes) and, when the client
/// sent gzip, its compressed bytes as they came.
fn decode(
    raw: Bytes,
    encoding: Option<&str>,
    max: usize,
) -> Result<(Bytes, Option<Bytes>), lineproto::BodyError> {
    let raw_gzip = encoding
        .is_some_and(lineproto::is_gzip)
        .then(|| raw.clone());
    let body = lineproto::decode_body(raw, encoding, max)?;
    crate::metrics::write_decoded_bytes(body.len());
    Ok((body, raw_gzip))
}

/// What [`store`] scans.
enum Input {
    /// The body as lines, and the client's gzip body when it sent one.
    Decoded {
        body: Bytes,
        raw_gzip: Option<Bytes>,
    },
    /// A client's gzip body still to inflate, within `max` decoded bytes.
    Gzip { raw: Bytes, max: usize },
}

impl Input {
    /// The lines and the client's gzip body, inflating if needed.
    fn decode(self) -> Result<(Bytes, Option<Bytes>), lineproto::BodyError> {
        match self {
            Input::Decoded { body, raw_gzip } => Ok((body, raw_gzip)),
            Input::Gzip { raw, max } => decode(raw, Some("gzip"), max),
        }
    }
}

/// The async runtime has a single worker (`worker_threads: 1`, or `auto` on
/// one core): then it also serves every read and delivery, so inflating and
/// scanning a client's gzip body, the costliest work per wire byte, is
/// handed to the blocking pool, where the other cores take it. With several
/// workers it stays where the body was read (no hand-off).
fn lone_worker() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|h| h.metrics().num_workers() == 1)
}

/// Scans, appends once to the log, and waits for `consistency`.
/// `raw_gzip` is the client's compressed body, when it sent gzip.
async fn store(
    gw: &Arc<Gateway>,
    mut req: ClientRequest,
    flavor: Flavor,
    target: Target,
    input: Input,
    now: i64,
) -> Response<Body> {
    let opts = scan_options(flavor, target.precision);
    let compress = compresses(gw);
    // Scanning runs ~1.5 GiB/s, so a body up to `SCAN_INLINE_MAX` holds a
    // worker for under a millisecond: scanned in place, where the body was
    // just read (warm in this core's cache, no thread hand-off); measured
    // ~10 % less gateway CPU per GB than handing Telegraf-sized batches to
    // the blocking pool. Larger bodies, deflate, and a gzip body still to
    // inflate (see `lone_worker`) go to the pool.
    let offload = match &input {
        Input::Gzip { .. } => true,
        Input::Decoded { body, .. } => {
            body.len() > SCAN_INLINE_MAX || (compress && body.len() > 16 * 1024)
        }
    };
    // On the pool, a body of several MiB is cut at newlines and its parts
    // are scanned on all cores (the same result as one scan).
    let cores = if offload { lineproto::scan_cores() } else { 1 };
    let scan_and_store = move || {
        let (body, raw_gzip) = input.decode()?;
        let scanned = lineproto::scan_split(body.clone(), now, &opts, cores);
        let stored = crate::gzip::for_log(raw_gzip.as_ref(), &body, scanned.body.clone(), compress);
        Ok::<_, lineproto::BodyError>((scanned, stored))
    };
    let done = if offload {
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
    let (scanned, (stored, stored_gzip)) = match done {
        Ok(d) => d,
        Err(e) => return ApiError::from(e).render(flavor),
    };
    let parse_error = match flavor {
        Flavor::V1 => scanned.v1_error(),
        Flavor::V2 => scanned.v2_error(),
    };
    crate::metrics::points(&scanned, flavor == Flavor::V2 && parse_error.is_some());
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
        .with_points(scanned.points)
    } else {
        Record::write(
            &req.path,
            target.forward_query,
            req.client_auth.take(),
            stored,
        )
        .with_points(scanned.points)
    };
    let appended = append_writes(gw, std::slice::from_ref(&record), &req.query).await;
    acknowledge(gw, flavor, target.consistency, appended, parse_error).await
}

/// Stores a body that needs no change as the pieces [`lineproto::scan_chunks`]
/// cut it into: one record each, appended together (consecutive seqs, all
/// or nothing), so nodes receive the same bytes in the same order.
async fn store_pieces(
    gw: &Arc<Gateway>,
    mut req: ClientRequest,
    flavor: Flavor,
    target: Target,
    read: BodyChunks,
    pieces: lineproto::Pieces,
) -> Response<Body> {
    crate::metrics::points(&pieces.out, false);
    let (bodies, points): (Vec<Bytes>, Vec<usize>) = pieces.pieces.into_iter().unzip();
    let auth = req.client_auth.take();
    let records: Vec<Record> = read
        .budget_pieces(bodies)
        .into_iter()
        .zip(points)
        .map(|(body, n)| {
            Record::write(&req.path, target.forward_query.clone(), auth.clone(), body)
                .with_points(n)
        })
        .collect();
    let appended = append_writes(gw, &records, &req.query).await;
    acknowledge(gw, flavor, target.consistency, appended, None).await
}

/// The client's answer once the write is appended (or could not be): 503
/// when the log refused it, 500 when `consistency` was not met in time
/// (the data is not lost), else 204 (or v1's partial write).
async fn acknowledge(
    gw: &Gateway,
    flavor: Flavor,
    consistency: Consistency,
    appended: Result<u64, crate::log::LogError>,
    parse_error: Option<String>,
) -> Response<Body> {
    let seq = match appended {
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
    let needed = consistency.required(gw.cluster.len());
    if needed > 0 {
        let confirmed = wait_for_nodes(gw, seq, needed, gw.config.write_timeout).await;
        if confirmed < needed {
            // As InfluxDB Enterprise: 500, but the data is not lost.
            let timeout = gw.config.write_timeout;
            return ApiError::ConsistencyNotMet {
                confirmed,
                needed,
                timeout,
            }
            .render(flavor);
        }
    }
    match parse_error {
        Some(msg) => bad(flavor, &msg),
        None => respond::empty(StatusCode::NO_CONTENT),
    }
}

fn scan_options(flavor: Flavor, precision: Precision) -> ScanOptions {
    match flavor {
        Flavor::V1 => ScanOptions::v1(precision),
        Flavor::V2 => ScanOptions::v2(precision),
    }
}

/// Some node takes every batch gzip-compressed (`gzip: true`).
fn compresses(gw: &Gateway) -> bool {
    gw.config
        .nodes
        .iter()
        .any(|n| n.gzip == crate::config::WireGzip::Always)
}

/// Appends a write record once to the log, then records the read
/// watermark of the scope `query` (the client's `db=`/`rp=` or bucket)
/// names, so reads of it wait for this entry. Every door that stores
/// writes (`/write`, `/api/v2/write`, UDP) goes through here.
pub async fn append_write(
    gw: &Gateway,
    record: &Record,
    query: &str,
) -> Result<u64, crate::log::LogError> {
    append_writes(gw, std::slice::from_ref(record), query).await
}

/// [`append_write`] for records appended together (consecutive seqs, all
/// or nothing); returns the last seq. `records` must not be empty.
async fn append_writes(
    gw: &Gateway,
    records: &[Record],
    query: &str,
) -> Result<u64, crate::log::LogError> {
    let payloads: Vec<_> = records.iter().map(Record::to_payload).collect();
    let first = gw.log.append_batch(payloads).await?;
    let last = first + records.len() as u64 - 1;
    gw.cluster.marks().touch(&Scope::of_write(query), last);
    Ok(last)
}

/// Waits until `needed` nodes have applied `seq`; returns how many did.
pub async fn wait_for_nodes(gw: &Gateway, seq: u64, needed: usize, timeout: Duration) -> usize {
    gw.cluster.wait_applied_by(seq, needed, timeout).await
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
        let t = v2_target("bucket=b&x=1&orgID=&org=o", Consistency::Any).unwrap();
        assert_eq!(t.forward_query, "bucket=b&orgID=&org=o");
        assert!(matches!(
            v2_target("org=o", Consistency::Any),
            Err(ApiError::BucketNotFound)
        ));
    }

    #[test]
    fn forwarding_keeps_the_clients_order_and_repeats() {
        let t = v1_target("p=b&db=x&consistency=one&db=y&u=a", Consistency::Any).unwrap();
        assert_eq!(t.forward_query, "p=b&db=x&db=y&u=a");
        assert_eq!(t.consistency, Consistency::One);
        // As Go's Values.Get: the first precision is the one stamped with.
        let t = v1_target("db=x&precision=s&precision=ms", Consistency::Any).unwrap();
        assert_eq!(t.precision, Precision::Second);
    }
}

//! The replicator: one task per node that drains the shared log to that node.
//!
//! Loop: read a window of entries from the node's cursor (served from the
//! log's in-memory tail when the node is keeping up), cut it into groups of
//! consecutive records that can share one request (same path, target and
//! credentials, up to `queue.max_batch_bytes` of stored bytes; for a
//! `gzip: auto` node also the same body encoding), deliver each group, and
//! only then advance the cursor.
//!
//! A group's request body is the stored record bodies back to back
//! ([`Chunks`], no joined copy): concatenated gzip members are one gzip
//! stream (see [`crate::gzip`]), so stored compressed bodies are sent as they
//! are. Only a node whose setting differs from how a record was stored pays
//! for conversion (deflate for `gzip: true`, inflate for `gzip: false`), off
//! the async workers when the group is large. Delivery of a group ends in exactly one of:
//! - success (2xx; for a mutation, any definite answer),
//! - dead-letter (a permanent rejection, see [`classify`]),
//! - shutdown (the cursor stays, the group is re-sent after restart).
//!
//! Everything else is retried with capped exponential backoff and jitter:
//! `retry_delay` is the first step (floored at 50 ms, so 0 cannot spin),
//! `queue.retry_max_delay` the cap, and a node's `Retry-After` is honoured.
//! `retry_count` no longer drops anything: after that many consecutive
//! failures the replicator logs that the node is failing; data stays in the log
//! within its size and age limits.
//!
//! A node the operator paused ([`Admin::Paused`]) gets nothing: before each
//! attempt the replicator waits while the node is paused (polling its mode),
//! so the node's backlog grows in the log and it catches up on resume. A
//! draining node is delivered to as usual.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::sync::watch;

use super::client::{self, Chunks, HttpClient, Outgoing, read_capped};
use super::cluster::Admin;
use super::deadletter::DeadLetters;
use super::{Answer, Node};
use crate::config::WireGzip;
use crate::log::{Log, LogReader};
use crate::record::{Kind, Record};

pub struct Replicator {
    pub node: Arc<Node>,
    pub log: Log,
    pub http: HttpClient,
    pub dead: DeadLetters,
    pub max_batch_bytes: usize,
    pub max_records: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
    /// Consecutive failures after which the node is reported as failing
    /// (`retry_count` in the config); never a reason to drop data.
    pub failure_warn_after: u32,
    pub orgs: Arc<super::orgs::Orgs>,
}

/// What to do with a node's answer to a write.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Retry,
    /// Too large: split the group and try the halves.
    Split,
    DeadLetter,
}

/// Classifies a node's HTTP status for a write (reference §5).
///
/// Only 204 counts as stored: InfluxDB (1.x and 2.x) answers every
/// successful write with 204, so a 200 or any other 2xx comes from
/// something that is not InfluxDB (a misrouted proxy, a captive page) and
/// is retried, never counted.
pub fn classify(status: StatusCode, body: &str) -> Verdict {
    match status.as_u16() {
        204 => Verdict::Done,
        200..=299 => Verdict::Retry,
        408 | 429 => Verdict::Retry,
        413 => Verdict::Split,
        // A missing retention policy will not appear by retrying.
        500 if body.contains("retention policy not found") => Verdict::DeadLetter,
        500..=599 => Verdict::Retry,
        _ => Verdict::DeadLetter,
    }
}

enum Outcome {
    Delivered,
    Stopped,
}

const MAX_ANSWER_BYTES: usize = 16 << 20;

impl Replicator {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.node.name().to_string();
        let mut reader: LogReader = match self.log.reader(&name) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(node = %name, error = %e, "cannot open log reader; node will not be replicated");
                return;
            }
        };
        loop {
            let batch = tokio::select! {
                r = reader.next(self.max_batch_bytes, self.max_records) => r,
                _ = stop.changed() => return,
            };
            let entries = match batch {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(node = %name, error = %e, "log read failed; retrying");
                    if self.sleep(Duration::from_secs(1), &mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(first) = entries.first() else {
                continue;
            };
            // Records skipped by the log's limits count as passed for ordering.
            self.node.advance_next_unapplied(first.seq);
            let mut recs = Vec::with_capacity(entries.len());
            for e in &entries {
                match Record::decode_payload(&e.payload) {
                    Ok(r) => recs.push((e.seq, r)),
                    Err(err) => {
                        tracing::error!(node = %name, seq = e.seq, error = %err, "undecodable log record skipped")
                    }
                }
            }
            let mut i = 0;
            while i < recs.len() {
                let mut j = i + 1;
                let mut bytes = recs[i].1.body.len();
                let mode = self.node.config.gzip;
                while j < recs.len()
                    && recs[i].1.coalesces_with(&recs[j].1)
                    && (mode != WireGzip::Auto || recs[i].1.gzip == recs[j].1.gzip)
                    && bytes + recs[j].1.body.len() <= self.max_batch_bytes
                {
                    bytes += recs[j].1.body.len();
                    j += 1;
                }
                match self.deliver(&recs[i..j], &mut stop).await {
                    Outcome::Stopped => return,
                    Outcome::Delivered => {}
                }
                let next = recs[j - 1].0 + 1;
                self.log.advance(&name, next);
                self.node.advance_next_unapplied(next);
                i = j;
            }
            // Also passes trailing entries that did not decode.
            let end = entries[entries.len() - 1].seq + 1;
            self.log.advance(&name, end);
            self.node.advance_next_unapplied(end);
        }
    }

    /// Delivers one group, splitting on 413, until delivered or dead-lettered.
    async fn deliver(&self, group: &[(u64, Record)], stop: &mut watch::Receiver<bool>) -> Outcome {
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            match self.deliver_one(g, stop).await {
                None => return Outcome::Stopped,
                Some(Verdict::Split) if g.len() > 1 => {
                    let (a, b) = g.split_at(g.len() / 2);
                    stack.push(b);
                    stack.push(a);
                }
                Some(_) => {}
            }
        }
        Outcome::Delivered
    }

    /// Sends `group` until it is done, dead-lettered, or needs a split.
    /// `None` means shutdown was requested.
    async fn deliver_one(
        &self,
        group: &[(u64, Record)],
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Verdict> {
        let node = &self.node;
        let first = &group[0].1;
        let (body, gzipped) = if first.kind == Kind::Write {
            match wire_body(node.config.gzip, group).await {
                Ok(b) => b,
                Err(e) => {
                    // Stored bodies were validated at the door and sit under a
                    // CRC, so this is damage; keep the evidence, move on.
                    let why = format!("stored body unreadable: {e}");
                    if !self.dead_letter(group, 0, &why, stop).await {
                        return None;
                    }
                    return Some(Verdict::DeadLetter);
                }
            }
        } else if first.method == "POST" && first.path == "/api/v2/buckets" {
            // The client's orgID belongs to one node; each node gets its own.
            let body = self.orgs.localize_body(&node.config, &first.body).await;
            (Chunks::from(body), false)
        } else {
            (Chunks::from(first.body.clone()), false)
        };
        let mut headers = HeaderMap::new();
        if let Some(ct) = first.content_type.as_deref().and_then(|c| c.parse().ok()) {
            headers.insert(http::header::CONTENT_TYPE, ct);
        }
        let mut failures: u32 = 0;
        let mut delay = self.first_delay.max(Duration::from_millis(50));
        loop {
            if *stop.borrow() || self.wait_while_paused(stop).await {
                return None;
            }
            let out = Outgoing {
                method: &first.method,
                path: &first.path,
                query: &first.query,
                auth: first.auth.as_deref(),
                headers: &headers,
                body: body.clone(),
                gzipped,
            };
            let mut retry_after = None;
            let sent = crate::metrics::send_started();
            let verdict = match client::build(&node.config, &out) {
                Err(e) => {
                    if !self.dead_letter(group, 0, &e.to_string(), stop).await {
                        return None;
                    }
                    return Some(Verdict::DeadLetter);
                }
                Ok(req) => match tokio::select! {
                    r = client::send(&self.http, req, self.timeout) => r,
                    // Shutdown does not wait for a slow node: the cursor
                    // stays, and the group is re-sent after restart.
                    _ = stop.changed() => return None,
                } {
                    Err(e) => {
                        crate::metrics::delivery_error(node.name(), &e, sent);
                        let msg = e.to_string();
                        if node.health.failure(&msg) {
                            tracing::warn!(node = %node.name(), error = %msg, "node is down");
                        }
                        Verdict::Retry
                    }
                    Ok(resp) => {
                        let status = resp.status();
                        crate::metrics::delivery_answer(node.name(), status, sent, group);
                        retry_after = resp
                            .headers()
                            .get(http::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        let ct = resp
                            .headers()
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let body =
                            read_capped(resp.into_body(), MAX_ANSWER_BYTES, self.timeout).await;
                        let text = String::from_utf8_lossy(&body).into_owned();
                        let verdict = if first.kind == Kind::Write {
                            classify(status, &text)
                        } else if status.is_server_error() {
                            Verdict::Retry
                        } else {
                            // A mutation's definite answer is the client's answer.
                            node.put_answer(
                                group[0].0,
                                Answer {
                                    status,
                                    content_type: ct,
                                    body: body.clone(),
                                },
                            );
                            if status.is_client_error()
                                && !self.dead_letter(group, status.as_u16(), &text, stop).await
                            {
                                return None;
                            }
                            Verdict::Done
                        };
                        match verdict {
                            Verdict::Retry => {
                                node.health.failure(&format!("{status}: {}", text.trim()));
                            }
                            Verdict::DeadLetter
                                if !self.dead_letter(group, status.as_u16(), &text, stop).await =>
                            {
                                return None;
                            }
                            Verdict::Split if group.len() == 1 => {
                                if !self.dead_letter(group, status.as_u16(), &text, stop).await {
                                    return None;
                                }
                                return Some(Verdict::DeadLetter);
                            }
                            _ => {}
                        }
                        verdict
                    }
                },
            };
            if verdict != Verdict::Retry {
                return Some(verdict);
            }
            failures += 1;
            crate::metrics::retry(node.name());
            if failures == self.failure_warn_after.max(1) {
                tracing::warn!(node = %node.name(), failures, seq = group[0].0,
                    "delivery keeps failing; the data stays queued in the log");
            }
            let jittered = delay.mul_f64(0.5 + rand::random::<f64>() * 0.5);
            let wait = retry_after.map_or(jittered, |ra| {
                ra.max(jittered).min(Duration::from_secs(3600))
            });
            if self.sleep(wait, stop).await {
                return None;
            }
            delay = (delay * 2).min(self.max_delay);
        }
    }

    /// Parks `group` in the node's dead-letter file. A failed write (disk
    /// full, I/O error) is retried with backoff until it succeeds: the
    /// cursor only moves past records that are safely parked. Returns false
    /// when shutdown interrupts (the cursor stays; the group is re-sent and
    /// re-judged after restart).
    async fn dead_letter(
        &self,
        group: &[(u64, Record)],
        status: u16,
        error: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let name = self.node.name();
        crate::metrics::dead_lettered(name, group.len());
        tracing::error!(node = %name, status, error = %crate::redact::influxql(error.trim()), records = group.len(),
            first_seq = group[0].0, file = %self.dead.path().display(), "node rejected records; dead-lettered");
        let error = crate::redact::influxql(error.trim());
        let mut delay = Duration::from_millis(200);
        let mut written = 0;
        while written < group.len() {
            match self.park(&group[written..], status, &error) {
                Ok(n) => written += n,
                Err((n, e)) => {
                    written += n;
                    tracing::error!(node = %name, seq = group[written].0, error = %e,
                        "cannot write the dead-letter file; the record stays queued and is retried");
                    if self.sleep(delay, stop).await {
                        return false;
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        true
    }

    /// Appends records to the dead-letter file; how many were written, and
    /// the error that stopped it early.
    fn park(
        &self,
        group: &[(u64, Record)],
        status: u16,
        error: &str,
    ) -> Result<usize, (usize, std::io::Error)> {
        for (i, (seq, rec)) in group.iter().enumerate() {
            // The file is for people: store the text, not the stored gzip.
            let plain;
            let rec = if rec.gzip {
                let body = crate::gzip::decode(&rec.body, 0).unwrap_or_else(|_| rec.body.clone());
                plain = Record {
                    gzip: false,
                    body,
                    ..rec.clone()
                };
                &plain
            } else {
                rec
            };
            self.dead
                .append(*seq, status, error, rec)
                .map_err(|e| (i, e))?;
        }
        Ok(group.len())
    }

    /// Waits while the operator has the node paused; true on shutdown.
    async fn wait_while_paused(&self, stop: &mut watch::Receiver<bool>) -> bool {
        while self.node.admin() == Admin::Paused {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => return true,
            }
        }
        false
    }

    /// Sleeps up to `d`, waking early when the node's health flips up (so a
    /// returning node catches up at once) or on shutdown (returns true).
    async fn sleep(&self, d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
        let was_up = self.node.health.is_up();
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let slice = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(Duration::from_millis(200));
            if slice.is_zero() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(slice) => {}
                _ = stop.changed() => return true,
            }
            if !was_up && self.node.health.is_up() {
                return false;
            }
        }
    }
}

/// Groups larger than this convert (deflate/inflate) on the blocking pool.
const INLINE_CONVERT_BYTES: usize = 64 * 1024;

/// The request body for a group of writes as this node takes it, and
/// whether it is gzip. Stored bodies that already match go out as they are.
async fn wire_body(
    mode: WireGzip,
    group: &[(u64, Record)],
) -> Result<(Chunks, bool), crate::gzip::GzipError> {
    let gzip = match mode {
        WireGzip::Always => true,
        WireGzip::Never => false,
        // Groups of an auto node share one encoding (see `run`).
        WireGzip::Auto => group[0].1.gzip,
    };
    if group.iter().all(|(_, r)| r.gzip == gzip) {
        return Ok((plain_or_stored(group), gzip));
    }
    let parts: Vec<(bool, Bytes)> = group
        .iter()
        .map(|(_, r)| (r.gzip, r.body.clone()))
        .collect();
    let total: usize = parts.iter().map(|(_, b)| b.len()).sum();
    let convert = move || -> Result<Chunks, crate::gzip::GzipError> {
        parts
            .into_iter()
            .map(|(stored_gzip, b)| match (stored_gzip, gzip) {
                (false, true) => Ok(crate::gzip::encode(&with_newline(b))),
                (true, false) => crate::gzip::decode(&b, 0),
                _ => Ok(b),
            })
            .collect()
    };
    let body = if total > INLINE_CONVERT_BYTES {
        tokio::task::spawn_blocking(convert)
            .await
            .map_err(|e| crate::gzip::GzipError::Corrupt(e.to_string()))??
    } else {
        convert()?
    };
    Ok((body, gzip))
}

/// The stored bodies back to back. Plain bodies from the door end in a
/// newline; one that does not (an older log) gets one, so lines never join.
fn plain_or_stored(group: &[(u64, Record)]) -> Chunks {
    let mut c = Chunks::default();
    for (_, r) in group {
        c.push(r.body.clone());
        if !r.gzip && !r.body.is_empty() && !r.body.ends_with(b"\n") {
            c.push(Bytes::from_static(b"\n"));
        }
    }
    c
}

fn with_newline(b: Bytes) -> Bytes {
    if b.ends_with(b"\n") || b.is_empty() {
        return b;
    }
    let mut v = BytesMut::with_capacity(b.len() + 1);
    v.extend_from_slice(&b);
    v.extend_from_slice(b"\n");
    v.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_outcomes_follow_the_reference_table() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(classify(s(204), ""), Verdict::Done);
        assert_eq!(classify(s(200), "<html>"), Verdict::Retry);
        assert_eq!(classify(s(202), ""), Verdict::Retry);
        assert_eq!(classify(s(500), "timeout"), Verdict::Retry);
        assert_eq!(classify(s(503), ""), Verdict::Retry);
        assert_eq!(classify(s(429), ""), Verdict::Retry);
        assert_eq!(classify(s(408), ""), Verdict::Retry);
        assert_eq!(classify(s(413), ""), Verdict::Split);
        assert_eq!(classify(s(400), "unable to parse"), Verdict::DeadLetter);
        assert_eq!(classify(s(401), ""), Verdict::DeadLetter);
        assert_eq!(classify(s(403), ""), Verdict::DeadLetter);
        assert_eq!(
            classify(s(404), "database not found: \"x\""),
            Verdict::DeadLetter
        );
        assert_eq!(
            classify(s(500), "retention policy not found: rp"),
            Verdict::DeadLetter
        );
    }

    fn plain(b: &'static [u8]) -> (u64, Record) {
        (
            1,
            Record::write("/write", String::new(), None, Bytes::from_static(b)),
        )
    }

    fn zipped(b: &'static [u8]) -> (u64, Record) {
        let z = crate::gzip::encode(b);
        (1, Record::gzip_write("/write", String::new(), None, z))
    }

    fn joined(c: &Chunks) -> Vec<u8> {
        c.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn joined_bodies_are_newline_separated() {
        let c = plain_or_stored(&[plain(b"a f=1 1"), plain(b"b f=2 2\n")]);
        assert_eq!(joined(&c), b"a f=1 1\nb f=2 2\n");
    }

    #[tokio::test]
    async fn each_mode_gets_one_valid_body_for_mixed_groups() {
        let group = [
            zipped(b"a f=1 1\n"),
            plain(b"b f=2 2\n"),
            zipped(b"c f=3 3\n"),
        ];
        let want = b"a f=1 1\nb f=2 2\nc f=3 3\n";
        let (c, gz) = wire_body(WireGzip::Always, &group).await.unwrap();
        assert!(gz);
        assert_eq!(&crate::gzip::decode(&joined(&c), 0).unwrap()[..], want);
        let (c, gz) = wire_body(WireGzip::Never, &group).await.unwrap();
        assert!(!gz);
        assert_eq!(joined(&c), want);
        // Stored gzip goes out untouched: the same buffers, no copy.
        let (c, gz) = wire_body(WireGzip::Auto, &group[..1]).await.unwrap();
        assert!(gz);
        assert_eq!(c.iter().next().unwrap().as_ptr(), group[0].1.body.as_ptr());
    }
}

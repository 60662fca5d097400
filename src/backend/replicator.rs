//! The replicator: one task per node that drains the shared log to that node.
//!
//! Loop: read a window of entries from the node's cursor (served from the
//! log's in-memory tail when the node is keeping up), cut it into groups of
//! consecutive records that can share one request (same path, target and
//! credentials, up to `queue.max_batch_bytes`), deliver each group, and only
//! then advance the cursor. Delivery of a group ends in exactly one of:
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

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::watch;

use super::client::{self, HttpClient, Outgoing};
use super::deadletter::DeadLetters;
use super::{Answer, Node};
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
    pub retry_count: u32,
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
pub fn classify(status: StatusCode, body: &str) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Done,
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
            self.node.set_acked(first.seq);
            let mut recs = Vec::with_capacity(entries.len());
            for e in &entries {
                match Record::decode(&e.payload) {
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
                while j < recs.len()
                    && recs[i].1.coalesces_with(&recs[j].1)
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
                self.node.set_acked(next);
                i = j;
            }
            // Also passes trailing entries that did not decode.
            let end = entries[entries.len() - 1].seq + 1;
            self.log.advance(&name, end);
            self.node.set_acked(end);
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
        let mut body = join_bodies(group);
        if first.kind == Kind::Http && first.method == "POST" && first.path == "/api/v2/buckets" {
            // The client's orgID belongs to one node; each node gets its own.
            body = self.orgs.localize_body(&node.config, &body).await;
        }
        let gzipped = node.config.gzip && first.kind == Kind::Write && body.len() > 512;
        let body = if gzipped {
            Bytes::from(crate::lineproto::gzip(&body))
        } else {
            body
        };
        let mut headers = HeaderMap::new();
        if let Some(ct) = first.content_type.as_deref().and_then(|c| c.parse().ok()) {
            headers.insert(http::header::CONTENT_TYPE, ct);
        }
        let mut failures: u32 = 0;
        let mut delay = self.first_delay.max(Duration::from_millis(50));
        loop {
            if *stop.borrow() {
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
            let verdict = match client::build(&node.config, &out) {
                Err(e) => {
                    self.dead_letter(group, 0, &e.to_string());
                    return Some(Verdict::DeadLetter);
                }
                Ok(req) => match client::send(&self.http, req, self.timeout).await {
                    Err(e) => {
                        let msg = e.to_string();
                        if node.health.failure(&msg) {
                            tracing::warn!(node = %node.name(), error = %msg, "node is down");
                        }
                        Verdict::Retry
                    }
                    Ok(resp) => {
                        let status = resp.status();
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
                            if status.is_client_error() {
                                self.dead_letter(group, status.as_u16(), &text);
                            }
                            Verdict::Done
                        };
                        match verdict {
                            Verdict::Retry => {
                                node.health.failure(&format!("{status}: {}", text.trim()));
                            }
                            Verdict::DeadLetter => self.dead_letter(group, status.as_u16(), &text),
                            Verdict::Split if group.len() == 1 => {
                                self.dead_letter(group, status.as_u16(), &text);
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
            if failures == self.retry_count.max(1) {
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

    fn dead_letter(&self, group: &[(u64, Record)], status: u16, error: &str) {
        let name = self.node.name();
        tracing::error!(node = %name, status, error = %error.trim(), records = group.len(),
            first_seq = group[0].0, file = %self.dead.path().display(), "node rejected records; dead-lettered");
        for (seq, rec) in group {
            if let Err(e) = self.dead.append(*seq, status, error.trim(), rec) {
                tracing::error!(node = %name, seq, error = %e, "cannot write dead-letter file");
            }
        }
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

/// Concatenates the bodies of a group, making sure each ends in a newline.
fn join_bodies(group: &[(u64, Record)]) -> Bytes {
    if group.len() == 1 {
        return group[0].1.body.clone();
    }
    let total: usize = group.iter().map(|(_, r)| r.body.len() + 1).sum();
    let mut b = BytesMut::with_capacity(total);
    for (_, r) in group {
        b.extend_from_slice(&r.body);
        if !r.body.ends_with(b"\n") {
            b.extend_from_slice(b"\n");
        }
    }
    b.freeze()
}

/// Reads a response body up to `cap` bytes (the rest is discarded).
pub async fn read_capped(body: hyper::body::Incoming, cap: usize, timeout: Duration) -> Bytes {
    let fut = async {
        let mut out = BytesMut::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                let room = cap.saturating_sub(out.len());
                out.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        out.freeze()
    };
    tokio::time::timeout(timeout, fut).await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_outcomes_follow_the_reference_table() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(classify(s(204), ""), Verdict::Done);
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

    #[test]
    fn joined_bodies_are_newline_separated() {
        let r = |b: &'static [u8]| {
            (
                1,
                Record::write("/write", String::new(), None, Bytes::from_static(b)),
            )
        };
        assert_eq!(
            &join_bodies(&[r(b"a f=1 1"), r(b"b f=2 2\n")])[..],
            b"a f=1 1\nb f=2 2\n"
        );
        assert_eq!(&join_bodies(&[r(b"a f=1 1")])[..], b"a f=1 1");
    }
}

//! Scripted answers for the v2 stand-in.
//!
//! Why: the replicator's failure paths (413 → split, 429 + `Retry-After`,
//! 500 `retention policy not found` → dead-letter, 408/503 → retry) need a
//! node that answers exactly so, on cue, and then behaves normally again. A
//! test scripts answers per path; the stub serves the first matching rule
//! instead of its normal handler and records what it answered.
//!
//! Rules are tried in the order they were added; the first one whose path
//! matches (exactly, ignoring a trailing `/`), whose condition holds and that
//! has uses left answers. A rule added with [`super::V2Stub::script`] answers
//! once, so several of them form a FIFO queue; [`super::V2Stub::script_when`]
//! adds a conditional rule, for a number of uses or until cleared.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{HeaderName, HeaderValue};

use super::{RecordedRequest, Resp};

/// One canned HTTP answer: status, headers and body, served verbatim.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    /// An answer with this status, no headers and an empty body.
    pub fn status(status: u16) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A 2.x error as 2.7 sends it: `{"code","message"}` as JSON plus
    /// `X-Platform-Error-Code`.
    pub fn v2_error(status: u16, code: &str, message: &str) -> Canned {
        Canned::status(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-Platform-Error-Code", code)
            .body(serde_json::json!({"code": code, "message": message}).to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Canned {
        self.body = body.into();
        self
    }

    pub(super) fn response(&self) -> Resp {
        let mut r = Response::new(Full::new(Bytes::from(self.body.clone())));
        *r.status_mut() = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                r.headers_mut().append(k, v);
            }
        }
        r
    }
}

/// Which requests a rule answers, given the request as recorded (with its
/// decoded body).
pub type Condition = Box<dyn Fn(&RecordedRequest) -> bool + Send>;

pub(super) struct Rule {
    pub path: String,
    pub when: Option<Condition>,
    /// Uses left; `None` = until the script is cleared.
    pub uses: Option<usize>,
    pub reply: Canned,
}

/// The path as rules compare it.
pub(super) fn norm(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}

/// The answer of the first applicable rule, consuming one of its uses.
pub(super) fn answer(rules: &mut Vec<Rule>, rec: &RecordedRequest) -> Option<Resp> {
    let path = norm(&rec.path);
    let idx = rules.iter().position(|r| {
        r.path == path && r.uses != Some(0) && r.when.as_ref().is_none_or(|w| w(rec))
    })?;
    let resp = rules[idx].reply.response();
    if let Some(n) = rules[idx].uses.as_mut() {
        *n -= 1;
        if *n == 0 {
            rules.remove(idx);
        }
    }
    Some(resp)
}

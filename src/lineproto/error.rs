//! Error types and the client-facing error texts.
//!
//! Exists so the gateway answers a bad write with the very words InfluxDB
//! would use: clients (Telegraf above all) decide between retry and drop by
//! matching substrings such as `unable to parse` and `partial write`.

use super::scan::ScanOutput;

/// One rejected line, as InfluxDB reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The raw line as InfluxDB quotes it: leading whitespace and the line
    /// terminator removed, invalid UTF-8 replaced by U+FFFD (what Go's JSON
    /// encoder does to the same bytes).
    pub line: String,
    /// InfluxDB's reason text, e.g. `missing fields`, `bad timestamp`.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unable to parse '{}': {}", self.line, self.reason)
    }
}

/// Why a request body could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The decoded body is larger than the configured maximum (HTTP 413).
    #[error("Request Entity Too Large")]
    TooLarge,
    /// The gzip stream is malformed or truncated (HTTP 400). Carries the
    /// decoder's description.
    #[error("{0}")]
    Corrupt(String),
    /// A `Content-Encoding` the gateway does not decode (HTTP 415). Carries
    /// the header value as received.
    #[error("unsupported content encoding: {0}")]
    UnsupportedEncoding(String),
}

impl ScanOutput {
    /// The 1.x `/write` error message, or `None` when every line parsed.
    ///
    /// 1.x joins every failure with `\n`; when some lines were good it wraps
    /// the list as `partial write: … dropped=0` (the good points are written;
    /// `dropped` counts storage drops, which a parse error is not). Only the
    /// first [`MAX_STORED_ERRORS`](super::MAX_STORED_ERRORS) failures are
    /// listed, a deliberate cap so a garbage upload cannot produce a
    /// megabyte-long header.
    ///
    /// Storage rejections come first, as on a 1.x node (whose storage error
    /// replaces the parse errors in the answer): a type conflict is the bare
    /// `field type conflict` (nothing written), dropped `time` lines are
    /// `partial write: <first reason> dropped=N`.
    pub fn v1_error(&self) -> Option<String> {
        if let Some(storage) = self.storage_error() {
            return Some(storage);
        }
        let joined = self.joined_errors()?;
        if self.points == 0 {
            Some(joined)
        } else {
            Some(format!("partial write: {joined} dropped=0"))
        }
    }

    /// The message for a 2.x `{"code":"invalid","message":…}` answer, or
    /// `None` when every line parsed.
    ///
    /// 2.x (`http/points/points_parser.go`) wraps the parser error with an
    /// empty `Msg`, so the message is the bare joined list, and the whole
    /// batch is rejected: callers must not write any point when this is
    /// `Some`.
    ///
    /// Storage rejections use the 1.x texts (not checked against a 2.x
    /// node); with them, too, the whole batch is rejected.
    pub fn v2_error(&self) -> Option<String> {
        self.storage_error().or_else(|| self.joined_errors())
    }

    fn storage_error(&self) -> Option<String> {
        if self.type_conflict {
            return Some("field type conflict".into());
        }
        let reason = self.drop_reason.as_deref()?;
        Some(format!("partial write: {reason} dropped={}", self.dropped))
    }

    fn joined_errors(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("unable to parse '");
            out.push_str(&e.line);
            out.push_str("': ");
            out.push_str(&e.reason);
        }
        Some(out)
    }
}

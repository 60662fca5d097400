//! The JSON log line, written directly: the same shape as
//! `tracing_subscriber`'s `json()` format, at a fraction of its cost.
//!
//! Why: at the default `info` level every request writes an access-log
//! line. Under callgrind (`scripts/bench-instructions.sh`) formatting that
//! line with `tracing_subscriber`'s JSON formatter took ~19 k instructions,
//! a quarter of everything the gateway runs per read: each field goes
//! through `serde_json`'s map serializer, `Display` values through `Debug`
//! through a fresh `String`. Here each field is written once, into the line,
//! with JSON escaping only where a byte needs it.
//!
//! Shape (unchanged for anyone parsing the logs):
//! `{"timestamp":"<RFC 3339, µs, Z>","level":"INFO","fields":{…},"target":"…"}`
//! with strings, `Display`/`Debug` values as JSON strings, integers and
//! booleans as JSON values, floats as numbers (non-finite ones as `null`),
//! and the event's message as the `message` field. The crate opens no
//! spans, so there is no span list; a test holds the output to
//! `tracing_subscriber`'s own for the same events.

use std::fmt::{self, Write};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter (see the module docs).
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            w,
            "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"fields\":{{",
            humantime::format_rfc3339_micros(SystemTime::now()),
            meta.level()
        )?;
        let mut fields = Fields {
            w: &mut w,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str("},\"target\":")?;
        string(&mut w, meta.target())?;
        w.write_str("}\n")
    }
}

/// Writes each field as `"name":value`, comma-separated.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// The key of the next field; false once a write has failed.
    fn key(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        let sep = if self.first { "" } else { "," };
        self.first = false;
        self.result = self
            .w
            .write_str(sep)
            .and_then(|()| string(self.w, name))
            .and_then(|()| self.w.write_char(':'));
        self.result.is_ok()
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.key(field) {
            self.result = self.w.write_fmt(value);
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            self.result = string(self.w, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.result = self
                .w
                .write_char('"')
                .and_then(|()| write!(Escaped(self.w), "{value:?}"))
                .and_then(|()| self.w.write_char('"'));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, format_args!("{value:?}"));
        } else {
            self.raw(field, format_args!("null"));
        }
    }
}

/// `s` as a JSON string.
fn string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what JSON requires (`"`, `\` and controls) as it passes through.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest
            .bytes()
            .position(|b| b < 0x20 || b == b'"' || b == b'\\')
        {
            self.0.write_str(&rest[..i])?;
            match rest.as_bytes()[i] {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                0x08 => self.0.write_str("\\b")?,
                0x0c => self.0.write_str("\\f")?,
                c => write!(self.0, "\\u{c:04x}")?,
            }
            rest = &rest[i + 1..];
        }
        self.0.write_str(rest)
    }
}

/// Test support: everything a subscriber writes, kept in memory (give it
/// `move || captured.clone()` as the writer).
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() {
        let peer: std::net::SocketAddr = "127.0.0.1:4242".parse().unwrap();
        tracing::info!(
            target: "access",
            method = %http::Method::POST,
            path = "/write",
            query = %"db=x&q=SELECT \"a\\b\"\n\t\u{1}é",
            status = 204u16,
            ms = 12.5f64,
            peer = %peer,
        );
        tracing::warn!(node = "n1", error = ?std::io::Error::other("boom \"x\""), "delivery failed: {}", 3);
        tracing::error!(
            r#type = "t",
            n = -7i64,
            ok = true,
            big = u64::MAX,
            tiny = 1e-7f64,
            inf = f64::INFINITY
        );
        tracing::info!("just a message with \\ and \u{7f}");
    }

    fn lines(json_line: bool) -> Vec<serde_json::Value> {
        let buf = Captured::default();
        let sink = buf.clone();
        let builder = tracing_subscriber::fmt().with_writer(move || sink.clone());
        if json_line {
            let sub = builder.event_format(JsonLine).finish();
            tracing::subscriber::with_default(sub, events);
        } else {
            let sub = builder.json().with_current_span(false).finish();
            tracing::subscriber::with_default(sub, events);
        }
        buf.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn lines_equal_tracing_subscribers_json_apart_from_the_clock() {
        let ours = lines(true);
        let theirs = lines(false);
        assert_eq!(ours.len(), 4);
        assert_eq!(ours.len(), theirs.len());
        for (mut a, mut b) in ours.into_iter().zip(theirs) {
            let ta = a.as_object_mut().unwrap().remove("timestamp").unwrap();
            let tb = b.as_object_mut().unwrap().remove("timestamp").unwrap();
            assert_eq!(a, b);
            // Same clock format: RFC 3339 in UTC with microseconds.
            for t in [&ta, &tb] {
                let t = t.as_str().unwrap();
                assert!(humantime::parse_rfc3339(t).is_ok(), "{t}");
                assert_eq!(t.len(), "2026-11-28T12:29:23.391638Z".len(), "{t}");
            }
        }
    }
}

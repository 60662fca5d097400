//! Line protocol at the door: validation, gateway timestamps, body decoding.
//!
//! # Why
//! Every write is appended once to the shared log and then replayed to every
//! node. A line a node would reject must therefore be rejected *before* it is
//! logged (otherwise it is dead-lettered N times, long after the client got a
//! 204), and a line without a timestamp must be stamped *once* here
//! (otherwise every node assigns its own receive time and the replicas
//! diverge; retries would also duplicate points). So the gateway runs
//! InfluxDB's own parser rules on each body, answers bad lines with
//! InfluxDB's exact texts, and logs a body in which every line is valid and
//! timestamped.
//!
//! # How
//! - [`decode_body`] inflates gzip with a cap on the *decoded* size (closing
//!   the gzip-bomb hole 1.x leaves open) and [`gzip`] re-compresses for the
//!   wire.
//! - [`scan`]/[`scan_with`] split lines like InfluxDB's `scanLine` (newline
//!   search with `memchr`, falling back to a quote-aware replay only for
//!   lines containing `"` or `\`), validate each with the rules of 1.8's
//!   `models/points.go` (`line.rs` for key/tags/time, `fields.rs` for the
//!   field set), and return a [`ScanOutput`].
//! - Before that, each line is offered to a fast path (`fast.rs`) that
//!   accepts only the common shape (plain names, numeric/boolean fields, an
//!   explicit timestamp or none, no quotes or escapes) in one forward pass
//!   and otherwise defers to the general validator; differential tests keep
//!   the two in agreement. Within a body it remembers (`memo.rs`) series
//!   keys and field layouts that already passed, so a repeated series key
//!   costs a guess or a hashed lookup and a byte comparison instead of a
//!   validation, and a line whose numbers follow its measurement's layout
//!   is walked from 64-byte byte-class masks (`window.rs`, SSE2 through
//!   the `wide` crate, `block.rs`).
//! - A body of several MiB is cut at newlines and its parts are scanned on
//!   several cores ([`scan_split`], `split.rs`), merged into exactly the
//!   output of one scan (differential tests in `tests_split.rs`); a body
//!   that needs no change can be stored as the chunks it arrived in
//!   ([`scan_chunks`]) instead of being joined first.
//! - The output body is the input `Bytes` itself when nothing must change
//!   (the usual Telegraf batch: all valid, all timestamped, `\n`-terminated).
//!   Otherwise the good lines are copied once into a new buffer, with
//!   ` <now>` appended where a timestamp is missing. Nothing on the per-line
//!   path allocates except the text of a rejected line.
//! - [`ScanOutput::v1_error`]/[`ScanOutput::v2_error`] format the answer:
//!   1.x writes the good lines and says `partial write: … dropped=0`; 2.x
//!   rejects the whole batch with the bare list.
//!
//! # Fidelity to InfluxDB, and deliberate differences
//! Mirrored: escapes (`\,` `\ ` `\=` in names, `\"` `\\` in strings, and 1.x's
//! rule that any byte after a backslash is escaped), empty or missing
//! measurement/tag key/tag value/field key/field value, `invalid tag format`,
//! `duplicate tags` (in any order), `unbalanced quotes`, `invalid field
//! format`, numbers (`invalid number`, `invalid float`, int64/uint64 range
//! errors with Go's `strconv` text), booleans, timestamps (`bad timestamp`,
//! int64 overflow text, `time outside range …` after applying the request
//! precision, `point is invalid` for trailing junk), the 65535-byte key
//! limit, leading whitespace/NUL, `#` comments, blank lines, and newlines
//! inside quoted strings. Non-ASCII (even non-UTF-8) names are accepted.
//!
//! Also mirrored, from 1.x's *storage* layer (`storage.rs`, texts confirmed
//! against `influxd` 1.6): a `time` tag, or a line whose only fields are
//! named `time`, is dropped (`partial write: invalid tag key: …`/`invalid
//! field name: … dropped=N`, other lines kept; a `time` field next to
//! others is left for the node to strip); a field given two types within
//! one body (`m f=1i,f=2`, or `m f=1i` and `m f=1.5`) rejects the whole
//! body with `field type conflict`. A duplicate field of the same type is
//! accepted, as in 1.x. The gateway is stricter than a node here: 1.x keeps
//! field types per shard, so two lines far apart in time (different shard
//! groups) do not conflict on the node, but do at the gateway. Conflicts
//! with data already stored cannot be seen at the door.
//!
//! Different on purpose:
//! - `\r` ending a line is dropped instead of failing the line (1.x/2.x say
//!   `bad timestamp`/`invalid number`): Windows senders then just work, and
//!   nodes never see the `\r`.
//! - Unsigned `u` integers are accepted by default (2.x behaviour);
//!   [`ScanOptions::v1`] rejects them with `invalid number` as 1.x does.
//! - An untimestamped line ending in an unpaired backslash is rejected
//!   (`invalid field format`): appending ` <now>` would escape the space and
//!   lose the timestamp. Only possible at the very end of a body.
//! - An untimestamped line whose block goes on past a newline that
//!   `scanLine` took as quoted (InfluxDB ignores the rest) is rejected as
//!   `point is invalid`: a stamp appended to it would be ignored as well.
//! - Error lists stop at [`MAX_STORED_ERRORS`] entries (counted in full in
//!   [`ScanOutput::bad_lines`]).
//! - An empty body is not an error here; 2.x answers it with `writing
//!   requires points`, which is the HTTP layer's call.

mod block;
mod body;
mod error;
mod fast;
mod fields;
mod line;
mod memo;
mod precision;
mod scan;
mod split;
mod storage;
mod window;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fast;
#[cfg(test)]
mod tests_split;
#[cfg(test)]
mod tests_storage;
#[cfg(test)]
mod tests_vectors;
#[cfg(test)]
mod tests_window;

pub use body::{decode_body, gzip, is_gzip};
pub use error::{BodyError, LineError};
pub use precision::Precision;
pub use scan::{ScanOutput, scan, scan_with};
pub use split::{
    KEEP_MIN, MAX_PARTS, PART_MIN, Pieces, READ_BUF_MAX, scan_chunks, scan_cores, scan_split,
};

/// How many rejected lines a [`ScanOutput`] keeps for the error message.
pub const MAX_STORED_ERRORS: usize = 100;

/// Parser settings that depend on the request or the target version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// Unit of explicit timestamps, used for the range check.
    pub precision: Precision,
    /// Accept `123u` fields (2.x) or reject them as `invalid number` (1.x).
    pub allow_unsigned: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            precision: Precision::Nanosecond,
            allow_unsigned: true,
        }
    }
}

impl ScanOptions {
    /// 1.x rules: unsigned integers are rejected.
    pub fn v1(precision: Precision) -> Self {
        ScanOptions {
            precision,
            allow_unsigned: false,
        }
    }

    /// 2.x rules: unsigned integers are accepted.
    pub fn v2(precision: Precision) -> Self {
        ScanOptions {
            precision,
            allow_unsigned: true,
        }
    }
}

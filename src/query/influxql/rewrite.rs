//! Query rewrites: pinning `now()` in mutations, and masking passwords.
//!
//! Why pin `now()`: a mutation goes through the ordered log and is applied
//! by every replica at its own moment; `DELETE … WHERE time < now() - 7d`
//! would delete a different range on each. The gateway rewrites `now()` to
//! the instant it accepted the query, so every replica applies the same
//! range and a replay is idempotent.
//!
//! The literal is a duration in nanoseconds (`1700000000000000000ns`), not
//! a date string: InfluxQL treats a duration as an epoch time in time
//! comparisons, and `<duration> - 1h` reduces to a duration in every 1.x
//! version, while `'<date>' - 1h` only reduces in newer influxql releases.
//!
//! Why token-based: `now()` inside a string, quoted identifier, comment or
//! regex is data, and only the lexer knows where those are.

use super::classify::classify_statement;
use super::keywords::Kw;
use super::lexer::{Token, TokenKind, tokenize};
use super::statement_tokens;

/// Statements whose `now()` is pinned. CREATE CONTINUOUS QUERY is not one:
/// its `now()` must stay relative to each run.
fn pins_now(keyword: &str) -> bool {
    matches!(keyword, "DELETE" | "DROP SERIES" | "SELECT INTO")
}

/// Whitespace that may sit inside `now( )` (comments may not: InfluxDB
/// rejects them there, and we must not turn a rejected query into a valid one).
fn is_call_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether the token is the function name `now` (InfluxDB lower-cases call
/// names, so `NOW` and `"now"` count too).
fn is_now_name(src: &str, tok: &Token) -> bool {
    let text = src.get(tok.start..tok.end).unwrap_or("");
    match tok.kind {
        TokenKind::Ident => text.eq_ignore_ascii_case("now"),
        TokenKind::QuotedIdent => text.len() == 5 && text[1..4].eq_ignore_ascii_case("now"),
        _ => false,
    }
}

/// Byte spans of every `now()` call in a statement's tokens.
fn now_calls(src: &str, toks: &[Token]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for win in toks.windows(3) {
        let [name, open, close] = win else { continue };
        if is_now_name(src, name)
            && open.kind == TokenKind::LParen
            && open.start == name.end
            && close.kind == TokenKind::RParen
            && src
                .as_bytes()
                .get(open.end..close.start)
                .is_some_and(|gap| gap.iter().copied().all(is_call_space))
        {
            spans.push((name.start, close.end));
        }
    }
    spans
}

/// The replacement for `now()`: a nanosecond duration literal. Negative
/// instants (before 1970) are parenthesised so a preceding `-` stays binary.
fn now_literal(now_unix_nanos: i64) -> String {
    if now_unix_nanos >= 0 {
        format!("{now_unix_nanos}ns")
    } else {
        format!("(-{}ns)", now_unix_nanos.unsigned_abs())
    }
}

pub(crate) fn rewrite_now(q: &str, now_unix_nanos: i64) -> Option<String> {
    let toks = tokenize(q).ok()?;
    let mut spans = Vec::new();
    for stmt in statement_tokens(&toks) {
        if pins_now(&classify_statement(q, stmt).keyword) {
            spans.extend(now_calls(q, stmt));
        }
    }
    if spans.is_empty() {
        return None;
    }
    let literal = now_literal(now_unix_nanos);
    let bytes = q.as_bytes();
    let mut out = String::with_capacity(q.len() + spans.len() * literal.len());
    let mut last = 0;
    for (start, end) in spans {
        out.push_str(q.get(last..start)?);
        // Keep token boundaries: `.now()` must not become a decimal and
        // `now()1h` must not glue into one duration token.
        if start > 0 && bytes.get(start - 1) == Some(&b'.') {
            out.push(' ');
        }
        out.push_str(&literal);
        if bytes
            .get(end)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b >= 0x80)
        {
            out.push(' ');
        }
        last = end;
    }
    out.push_str(q.get(last..)?);
    Some(out)
}

/// What replaces a password literal in logs.
const MASK: &str = "'***'";

pub(crate) fn redact(q: &str) -> String {
    // Only a PASSWORD keyword starts a mask, and keywords match ASCII
    // letters case-insensitively: without the word there is nothing to
    // mask (the access log runs this for every read, so skip the lexer).
    if find_password_word(q).is_none() {
        return q.to_owned();
    }
    redact_lexed(q)
}

/// Where `password` first occurs in `q`, in any ASCII case.
fn find_password_word(q: &str) -> Option<usize> {
    q.as_bytes()
        .windows(PASSWORD.len())
        .position(|w| w.eq_ignore_ascii_case(PASSWORD.as_bytes()))
}

const PASSWORD: &str = "password";

/// [`redact`] without the shortcut: lexes `q` and masks what follows
/// PASSWORD.
pub(crate) fn redact_lexed(q: &str) -> String {
    let Ok(toks) = tokenize(q) else {
        return redact_unlexable(q);
    };
    let mut out = String::with_capacity(q.len());
    let mut last = 0;
    for stmt in statement_tokens(&toks) {
        let mut after_password = false;
        let mut prev: Option<TokenKind> = None;
        for tok in stmt {
            // Mask every string after PASSWORD, and identifiers too (a
            // password typed unquoted or in double quotes is invalid but
            // still secret), except the user name in `SET PASSWORD FOR u`.
            let secret = after_password
                && (tok.kind == TokenKind::String
                    || (matches!(
                        tok.kind,
                        TokenKind::QuotedIdent | TokenKind::Ident | TokenKind::Number
                    ) && prev != Some(TokenKind::Keyword(Kw::For))));
            if secret {
                out.push_str(q.get(last..tok.start).unwrap_or(""));
                out.push_str(MASK);
                last = tok.end;
            }
            if tok.kind == TokenKind::Keyword(Kw::Password) {
                after_password = true;
            }
            prev = Some(tok.kind);
        }
    }
    out.push_str(q.get(last..).unwrap_or(""));
    out
}

/// A query we cannot tokenize may hold a password with a bad escape
/// (`'p\w'`): cut everything after the first `password` word.
fn redact_unlexable(q: &str) -> String {
    match find_password_word(q) {
        Some(at) => {
            let cut = at + PASSWORD.len();
            format!("{} {MASK}", q.get(..cut).unwrap_or(""))
        }
        None => q.to_owned(),
    }
}

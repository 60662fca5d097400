//! Unit tests for the scanner internals: token kinds, regex contexts, and
//! robustness on arbitrary input. Routing behaviour is tested through the
//! public API in `tests/influxql_table.rs`.

use super::keywords::Kw;
use super::lexer::{LexError, TokenKind, tokenize};
use super::{classify, redact, rewrite_now, split};
use proptest::prelude::*;

use TokenKind::{Comma, Dot, Ident, Keyword, LParen, Number, Operator, QuotedIdent, RParen, Regex};

fn kinds(q: &str) -> Vec<TokenKind> {
    tokenize(q)
        .unwrap_or_else(|e| panic!("{q:?}: {e}"))
        .iter()
        .map(|t| t.kind)
        .collect()
}

#[test]
fn into_is_a_keyword_only_when_bare() {
    assert_eq!(kinds("into"), [Keyword(Kw::Into)]);
    assert_eq!(kinds("InTo"), [Keyword(Kw::Into)]);
    assert_eq!(kinds("\"into\""), [QuotedIdent]);
    assert_eq!(kinds("into\"x\""), [Ident]);
    assert_eq!(kinds("$into"), [TokenKind::BoundParam]);
    assert_eq!(kinds("1into"), [Number]);
    assert_eq!(kinds("_into into2"), [Ident, Ident]);
}

#[test]
fn numbers_follow_go_scan_number() {
    assert_eq!(kinds("1h30m"), [Number]);
    assert_eq!(kinds("5µs"), [Number]);
    assert_eq!(kinds(".5"), [Number]);
    // A decimal never takes a unit: the word after it is its own token.
    assert_eq!(kinds("1.5into"), [Number, Keyword(Kw::Into)]);
    assert_eq!(kinds("1.into"), [Number, Keyword(Kw::Into)]);
}

#[test]
fn slash_is_division_outside_regex_positions() {
    use Kw::{From, Select};
    assert_eq!(
        kinds("SELECT a/b/c FROM m"),
        [
            Keyword(Select),
            Ident,
            Operator,
            Ident,
            Operator,
            Ident,
            Keyword(From),
            Ident
        ]
    );
    assert_eq!(kinds("SELECT /a/ FROM m")[1], Regex);
    assert_eq!(kinds("SELECT a, /b/ FROM m")[3], Regex);
    // `count (` is not a call (the space), so no regex argument there.
    assert_eq!(kinds("SELECT count (/x/)")[3], Operator);
    assert_eq!(kinds("SELECT count(/x/)")[3], Regex);
    assert_eq!(kinds("SELECT \"count\"(/x/)")[3], Regex);
    assert_eq!(kinds("SELECT distinct(/x/)")[3], Regex);
}

#[test]
fn from_sources_scan_regexes_where_influxdb_does() {
    assert_eq!(kinds("SELECT * FROM /a/")[3], Regex);
    assert_eq!(kinds("SELECT * FROM a,/b/")[5], Regex);
    assert_eq!(kinds("SELECT * FROM rp./b/")[5], Regex);
    assert_eq!(kinds("SELECT * FROM db.rp./b/")[7], Regex);
    // A full db.rp.m source takes no regex; `/*` after it is a comment.
    assert_eq!(kinds("SELECT * FROM a.b.c./x/")[9], Operator);
    assert_eq!(kinds("SELECT * FROM m/* a/b */").len(), 4);
    assert_eq!(
        kinds("SELECT * FROM (SELECT /a/ FROM /b/), /c/")[4..],
        [
            Keyword(Kw::Select),
            Regex,
            Keyword(Kw::From),
            Regex,
            RParen,
            Comma,
            Regex
        ]
    );
    assert_eq!(kinds("SELECT * FROM m WHERE a/2 > 1")[6], Operator);
}

#[test]
fn group_by_takes_regexes_order_by_does_not() {
    assert_eq!(kinds("SELECT * FROM m GROUP BY /t/")[6], Regex);
    assert_eq!(kinds("SELECT * FROM m GROUP BY a, /t/")[8], Regex);
    assert_eq!(kinds("SELECT * FROM m ORDER BY /* c */ time").len(), 7);
}

#[test]
fn regex_position_survives_one_space_but_not_a_comment() {
    assert_eq!(kinds("SELECT * FROM m WHERE a =~ \n /x/")[7], Regex);
    // At a regex position InfluxDB scans `/*` as a regex too.
    assert_eq!(kinds("SELECT * FROM m WHERE a =~ /* x */")[7], Regex);
    assert_eq!(kinds("SELECT * FROM m WHERE a =~ -- c\n b / c"), {
        let mut v = kinds("SELECT * FROM m WHERE a =~");
        v.extend([Ident, Operator, Ident]);
        v
    });
    assert_eq!(
        kinds("SELECT * FROM rp. /x/")[4..],
        [Dot, Operator, Ident, Operator]
    );
}

#[test]
fn misc_tokens() {
    assert_eq!(kinds("a π b"), [Ident, Operator, Ident]);
    assert_eq!(kinds("a\0b"), [Ident, Ident]);
    assert_eq!(
        kinds("a::field <> b"),
        [Ident, Operator, Keyword(Kw::Field), Operator, Ident]
    );
    assert_eq!(kinds("f(x)"), [Ident, LParen, Ident, RParen]);
}

#[test]
fn lex_errors_carry_positions() {
    assert_eq!(tokenize("SELECT 'ab"), Err(LexError::UnterminatedString(7)));
    assert_eq!(tokenize("SELECT \"ab"), Err(LexError::UnterminatedIdent(7)));
    assert_eq!(tokenize("SELECT 'a\\x'"), Err(LexError::BadEscape(9)));
    assert_eq!(
        tokenize("SELECT a /* x"),
        Err(LexError::UnterminatedComment(9))
    );
    // At a regex position the same text is an unterminated regex, as in Go.
    assert_eq!(tokenize("SELECT /* x"), Err(LexError::UnterminatedRegex(7)));
    assert_eq!(tokenize("SELECT /x"), Err(LexError::UnterminatedRegex(7)));
    assert_eq!(tokenize("SELECT é"), Err(LexError::IllegalChar(7, 'é')));
    assert_eq!(tokenize("SELECT a !b"), Err(LexError::IllegalChar(9, '!')));
    // Escapes that are valid in strings; regexes pass other escapes through.
    assert!(tokenize(r#"SELECT 'a\n\\\'\"b'"#).is_ok());
    assert!(tokenize(r"SELECT * FROM m WHERE a =~ /\d+\/x/").is_ok());
}

/// Characters that drive the scanner's decisions, to make random queries
/// hit the interesting paths far more often than uniform bytes would.
const ALPHABET: &[&str] = &[
    " ",
    "\n",
    "\r",
    "\0",
    "'",
    "\"",
    "\\",
    "/",
    "*",
    "-",
    ";",
    "=~",
    "!~",
    "(",
    ")",
    ",",
    ".",
    "SELECT ",
    "FROM ",
    "INTO ",
    "GROUP BY ",
    "WHERE ",
    "DELETE ",
    "DROP ",
    "now()",
    "a",
    "1",
    "µ",
    "π",
    "é",
    "$",
    "PASSWORD ",
    "=",
];

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn never_panics_and_statements_are_ordered_substrings(q in query()) {
        let classified = classify(&q);
        let _ = redact(&q);
        let _ = rewrite_now(&q, 1_700_000_000_000_000_000);
        if let Ok(stmts) = split(&q) {
            let mut from = 0;
            for s in stmts {
                prop_assert!(!s.is_empty());
                let at = q[from..].find(s).map(|i| i + from);
                prop_assert!(at.is_some(), "{s:?} not found in order in {q:?}");
                from = at.unwrap_or(from) + s.len();
            }
        } else {
            prop_assert_eq!(classified.class, super::QueryClass::Unparseable);
        }
    }

    #[test]
    fn rewrite_keeps_everything_but_now(q in query()) {
        if let Some(out) = rewrite_now(&q, 42) {
            prop_assert_eq!(out.replace("42ns", "now()").replace(' ', ""), q.replace(' ', ""));
        }
    }
}

proptest! {
    /// The one-scan `/query` path agrees with its two separate scans.
    #[test]
    fn classify_and_name_is_classify_plus_named_databases(q in query()) {
        let (c, names) = super::classify_and_name(&q);
        prop_assert_eq!(c, classify(&q));
        prop_assert_eq!(names, super::named_databases(&q).ok());
    }
}

/// Queries around the PASSWORD keyword: every case of the word, its
/// halves, and statements that take a password.
fn redact_query() -> impl Strategy<Value = String> {
    let extra: &[&str] = &[
        "password ",
        "PassWord ",
        "pass",
        "word ",
        "'s3cret' ",
        "CREATE USER u WITH ",
        "SET ",
        "FOR u = ",
    ];
    let all: Vec<&str> = ALPHABET.iter().chain(extra).copied().collect();
    prop::collection::vec(prop::sample::select(all), 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    /// Skipping the lexer when `password` is absent changes no answer.
    #[test]
    fn redact_shortcut_agrees_with_lexing(q in redact_query()) {
        prop_assert_eq!(redact(&q), super::rewrite::redact_lexed(&q));
    }
}

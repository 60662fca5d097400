//! InfluxQL tokenizer and classifier: decides where a `/query` goes.
//!
//! # Why
//! A read may be answered by any one caught-up node, but a mutation
//! (`CREATE`, `DROP`, `DELETE`, `SELECT … INTO`, …) must reach every node
//! through the ordered log, or the replicas diverge. The gateway therefore
//! needs to know, for an arbitrary query string, whether *any* statement in
//! it mutates, without running InfluxDB's parser. Getting it wrong in the
//! read direction silently loses a write on all but one replica, so this
//! module follows InfluxDB's own lexical rules (influxql `scanner.go`,
//! `parser.go`, `parse_tree.go`) rather than splitting on `;`.
//!
//! # How
//! - [`lexer`] scans the query once into significant tokens, with the exact
//!   InfluxQL rules: `'strings'` and `"identifiers"` (escapes `\n \\ \" \'`
//!   only; a raw newline or EOF inside is an error), `-- line` and
//!   `/* block */` comments (no nesting), and `/regex/` literals, which are
//!   only scanned where InfluxDB's parser asks for a regex (after `=~`/`!~`,
//!   at the start of a SELECT field, FROM source, GROUP BY dimension or call
//!   argument). Elsewhere `/` is division. `;` separates statements.
//! - [`classify`] walks each statement's leading keywords (case-insensitive)
//!   to a [`StatementKind`]; the query's [`QueryClass`] is the most
//!   demanding one: Unparseable > Mutation > NodeLocal > Read.
//! - [`rewrite`] pins `now()` in mutations and masks passwords for logs.
//!
//! # Decisions
//! - A query InfluxDB cannot parse is rejected *as a whole* before anything
//!   runs (`ParseQuery` parses every statement first). So a lexer error or
//!   an unknown statement makes the query [`QueryClass::Unparseable`]: one
//!   node answers with its own parse error, nothing diverges.
//! - Mutation verbs fail safe: `CREATE`/`DROP`/`ALTER`/`GRANT`/`REVOKE`/
//!   `DELETE`/`SET` are mutations even when the rest is unknown to us.
//! - `EXPLAIN [ANALYZE] [VERBOSE] SELECT …` is a read even with INTO:
//!   plain EXPLAIN only plans, and EXPLAIN ANALYZE runs the iterators but
//!   never writes the INTO target (coordinator `executeExplainAnalyzeStatement`).
//! - Any INTO keyword token in a SELECT (even in a subquery) makes it a
//!   mutation; `"into"` (quoted) is an identifier.
//! - `DROP SHARD` and `KILL QUERY` carry instance-specific ids: DROP SHARD
//!   is still a mutation (it is a DROP); KILL QUERY is node-local.
//! - NUL bytes: Go's scanner reads NUL as EOF, but in most positions it
//!   swallows it as a token terminator and keeps scanning. We treat NUL as
//!   whitespace (and as a line-comment end), so we see every statement
//!   InfluxDB might run, at worst a few more.
//! - `now()` is only a call when `(` follows the name immediately (InfluxDB
//!   scans the `(` without skipping whitespace): `now ()` is a parse error
//!   there, so it is not rewritten; `now( )` and `"now"()` are.

mod classify;
mod ddl;
mod keywords;
mod lexer;
mod rewrite;
mod scope;
#[cfg(test)]
mod tests;

pub use ddl::{CatalogChange, catalog_changes};
pub use lexer::LexError;
use lexer::{Token, TokenKind};
pub use scope::named_databases;

/// What one statement does to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// Cluster-wide data or metadata read: any caught-up node may answer.
    Read,
    /// Reads the answering node's own state (queries, stats, shards): send
    /// to one node, and expect answers to differ between nodes.
    NodeLocal,
    /// Changes data or metadata: must go to every node through the log.
    Mutation,
}

/// One recognised statement of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement text, without the `;`, leading/trailing whitespace
    /// and leading/trailing comments (inner comments are kept).
    pub text: &'a str,
    pub kind: StatementKind,
    /// Upper-case statement name for logs, e.g. `SELECT`, `SELECT INTO`,
    /// `CREATE DATABASE`, `SHOW QUERIES`, `EXPLAIN ANALYZE`.
    pub keyword: String,
}

/// Where the whole query must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryClass {
    /// Every statement is a read (an empty query too: the node answers).
    Read,
    /// Node-local statements, possibly with reads: send to one node.
    NodeLocal,
    /// At least one mutation: the whole query is a mutation.
    Mutation,
    /// InfluxDB will reject the query at parse time (lexer error, unknown
    /// statement): pass it to one node so it returns its own parse error.
    Unparseable,
}

/// The result of [`classify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified<'a> {
    pub class: QueryClass,
    /// The recognised statements in order. Statements InfluxDB cannot parse
    /// are left out, and a query that fails to tokenize has none (use
    /// [`split`] to get the [`LexError`] for logging).
    pub statements: Vec<Statement<'a>>,
}

/// Splits a query's tokens into per-statement runs, skipping empty
/// statements (`;;`, comment-only).
fn statement_tokens(toks: &[Token]) -> impl Iterator<Item = &[Token]> {
    toks.split(|t| t.kind == TokenKind::Semicolon)
        .filter(|run| !run.is_empty())
}

/// The trimmed source text of a non-empty token run.
fn statement_text<'a>(q: &'a str, run: &[Token]) -> &'a str {
    match (run.first(), run.last()) {
        (Some(first), Some(last)) => q.get(first.start..last.end).unwrap_or(""),
        _ => "",
    }
}

/// Splits a query into its statements (trimmed, without `;`), following
/// InfluxQL's lexical rules. Empty statements are skipped.
pub fn split(q: &str) -> Result<Vec<&str>, LexError> {
    let toks = lexer::tokenize(q)?;
    Ok(statement_tokens(&toks)
        .map(|run| statement_text(q, run))
        .collect())
}

/// Classifies a query for routing; never fails (see [`QueryClass`]).
pub fn classify(q: &str) -> Classified<'_> {
    match lexer::tokenize(q) {
        Ok(toks) => classify_tokens(q, &toks),
        Err(_) => unparseable(),
    }
}

/// [`classify`] and [`named_databases`] from one scan of the query (the
/// `/query` hot path needs both); the names are `None` when it does not
/// tokenize.
pub fn classify_and_name(q: &str) -> (Classified<'_>, Option<Vec<String>>) {
    match lexer::tokenize(q) {
        Ok(toks) => (
            classify_tokens(q, &toks),
            Some(scope::databases_in(q, &toks)),
        ),
        Err(_) => (unparseable(), None),
    }
}

fn unparseable() -> Classified<'static> {
    Classified {
        class: QueryClass::Unparseable,
        statements: Vec::new(),
    }
}

fn classify_tokens<'a>(q: &'a str, toks: &[Token]) -> Classified<'a> {
    let mut class = QueryClass::Read;
    let mut statements = Vec::new();
    for run in statement_tokens(toks) {
        let verdict = classify::classify_statement(q, run);
        let Some(kind) = verdict.kind else {
            class = QueryClass::Unparseable;
            continue;
        };
        class = match (class, kind) {
            (QueryClass::Unparseable, _) => QueryClass::Unparseable,
            (_, StatementKind::Mutation) | (QueryClass::Mutation, _) => QueryClass::Mutation,
            (_, StatementKind::NodeLocal) | (QueryClass::NodeLocal, _) => QueryClass::NodeLocal,
            (QueryClass::Read, StatementKind::Read) => QueryClass::Read,
        };
        statements.push(Statement {
            text: statement_text(q, run),
            kind,
            keyword: verdict.keyword,
        });
    }
    Classified { class, statements }
}

/// Rewrites `now()` (any case, `now( )` with inner whitespace, `"now"()`)
/// inside mutation statements that evaluate it once (DELETE, DROP SERIES,
/// SELECT … INTO) to the absolute instant `now_unix_nanos`, written as a
/// nanosecond duration literal (`1700000000000000000ns`), which InfluxQL
/// reads as an epoch time: `time > now() - 1h` becomes
/// `time > 1700000000000000000ns - 1h`. `now()` inside strings,
/// identifiers, comments or regexes, and in reads or CREATE CONTINUOUS
/// QUERY, is left alone. Returns `None` when there is nothing to rewrite
/// (including when the query does not tokenize).
pub fn rewrite_now(q: &str, now_unix_nanos: i64) -> Option<String> {
    rewrite::rewrite_now(q, now_unix_nanos)
}

/// For logs: a copy of `q` with password literals masked
/// (`CREATE USER x WITH PASSWORD '***'`, `SET PASSWORD FOR x = '***'`; an
/// unquoted or double-quoted password is masked the same way).
/// A query that does not tokenize is cut after its first `password` word.
pub fn redact(q: &str) -> String {
    rewrite::redact(q)
}

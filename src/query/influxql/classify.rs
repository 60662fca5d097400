//! Statement classification: which InfluxQL statement a token run is, and
//! whether it reads, reads node-local state, or mutates.
//!
//! Why a keyword walk and not a full parser: the class is decided by the
//! statement's leading keywords (influxql `parse_tree.go`) plus, for SELECT,
//! whether an INTO keyword appears. Anything more (argument validation) is
//! InfluxDB's job; a statement it rejects rejects the whole query, so no
//! node executes anything and any routing is harmless.
//!
//! Failure direction: the dangerous mistake is calling a mutation a read
//! (only one replica would apply it). So every statement whose first keyword
//! is a mutation verb (CREATE, DROP, ALTER, GRANT, REVOKE, DELETE, SET) is a
//! mutation even if the rest of the path is unknown, e.g. a statement added
//! by a newer InfluxDB. Only unknown first keywords, unknown SHOW paths and
//! malformed EXPLAIN/KILL count as unparseable.

use super::StatementKind;
use super::keywords::Kw;
use super::lexer::{Token, TokenKind};

/// The verdict for one statement: its kind (`None` = InfluxDB cannot parse
/// it) and a short upper-case name for logs.
pub(crate) struct Verdict {
    pub kind: Option<StatementKind>,
    pub keyword: String,
}

/// Longest keyword text we copy from an unknown statement, for logs.
const MAX_UNKNOWN_KEYWORD: usize = 32;

pub(crate) fn classify_statement(src: &str, toks: &[Token]) -> Verdict {
    let kw = |i: usize| match toks.get(i).map(|t| t.kind) {
        Some(TokenKind::Keyword(k)) => Some(k),
        _ => None,
    };
    let verdict = |kind: Option<StatementKind>, keyword: &str| Verdict {
        kind,
        keyword: keyword.to_owned(),
    };
    use StatementKind::{Mutation, NodeLocal, Read};
    match kw(0) {
        Some(Kw::Select) => {
            // Any INTO keyword token, even in a subquery, is treated as a
            // write: InfluxDB rejects a misplaced INTO anyway.
            if toks.iter().any(|t| t.kind == TokenKind::Keyword(Kw::Into)) {
                verdict(Some(Mutation), "SELECT INTO")
            } else {
                verdict(Some(Read), "SELECT")
            }
        }
        Some(Kw::Explain) => {
            // EXPLAIN ANALYZE does execute the query, but the executor only
            // drains the iterators; it never calls writeInto, so even
            // `EXPLAIN ANALYZE SELECT … INTO` writes nothing: a read.
            let mut i = 1;
            let mut name = String::from("EXPLAIN");
            if kw(i) == Some(Kw::Analyze) {
                name.push_str(" ANALYZE");
                i += 1;
            }
            if kw(i) == Some(Kw::Verbose) {
                name.push_str(" VERBOSE");
                i += 1;
            }
            let kind = (kw(i) == Some(Kw::Select)).then_some(Read);
            Verdict {
                kind,
                keyword: name,
            }
        }
        Some(Kw::Show) => show(&kw),
        Some(Kw::Kill) if kw(1) == Some(Kw::Query) => verdict(Some(NodeLocal), "KILL QUERY"),
        Some(Kw::Delete) => verdict(Some(Mutation), "DELETE"),
        Some(Kw::Create) => {
            let name = match (kw(1), kw(2)) {
                (Some(Kw::Continuous), Some(Kw::Query)) => "CREATE CONTINUOUS QUERY",
                (Some(Kw::Database), _) => "CREATE DATABASE",
                (Some(Kw::User), _) => "CREATE USER",
                (Some(Kw::Retention), Some(Kw::Policy)) => "CREATE RETENTION POLICY",
                (Some(Kw::Subscription), _) => "CREATE SUBSCRIPTION",
                _ => "CREATE",
            };
            verdict(Some(Mutation), name)
        }
        Some(Kw::Drop) => {
            let name = match (kw(1), kw(2)) {
                (Some(Kw::Continuous), Some(Kw::Query)) => "DROP CONTINUOUS QUERY",
                (Some(Kw::Database), _) => "DROP DATABASE",
                (Some(Kw::Measurement), _) => "DROP MEASUREMENT",
                (Some(Kw::Retention), Some(Kw::Policy)) => "DROP RETENTION POLICY",
                (Some(Kw::Series), _) => "DROP SERIES",
                (Some(Kw::Shard), _) => "DROP SHARD",
                (Some(Kw::Subscription), _) => "DROP SUBSCRIPTION",
                (Some(Kw::User), _) => "DROP USER",
                _ => "DROP",
            };
            verdict(Some(Mutation), name)
        }
        Some(Kw::Alter) => verdict(Some(Mutation), "ALTER RETENTION POLICY"),
        Some(Kw::Grant) => verdict(Some(Mutation), "GRANT"),
        Some(Kw::Revoke) => verdict(Some(Mutation), "REVOKE"),
        Some(Kw::Set) => verdict(Some(Mutation), "SET PASSWORD"),
        _ => {
            // Unknown first word (INSERT, garbage, a bare string…).
            let first = toks
                .first()
                .and_then(|t| src.get(t.start..t.end))
                .unwrap_or("");
            let mut end = first.len().min(MAX_UNKNOWN_KEYWORD);
            while !first.is_char_boundary(end) {
                end -= 1;
            }
            Verdict {
                kind: None,
                keyword: first[..end].to_ascii_uppercase(),
            }
        }
    }
}

/// The SHOW sub-tree of parse_tree.go.
fn show(kw: &dyn Fn(usize) -> Option<Kw>) -> Verdict {
    use StatementKind::{NodeLocal, Read};
    let (kind, name) = match (kw(1), kw(2)) {
        (Some(Kw::Continuous), Some(Kw::Queries)) => (Some(Read), "SHOW CONTINUOUS QUERIES"),
        (Some(Kw::Databases), _) => (Some(Read), "SHOW DATABASES"),
        (Some(Kw::Diagnostics), _) => (Some(NodeLocal), "SHOW DIAGNOSTICS"),
        (Some(Kw::Field), Some(Kw::Key)) => (Some(Read), "SHOW FIELD KEY CARDINALITY"),
        (Some(Kw::Field), Some(Kw::Keys)) => (Some(Read), "SHOW FIELD KEYS"),
        (Some(Kw::Grants), Some(Kw::For)) => (Some(Read), "SHOW GRANTS"),
        (Some(Kw::Measurement), Some(Kw::Exact | Kw::Cardinality)) => {
            (Some(Read), "SHOW MEASUREMENT CARDINALITY")
        }
        (Some(Kw::Measurements), _) => (Some(Read), "SHOW MEASUREMENTS"),
        (Some(Kw::Queries), _) => (Some(NodeLocal), "SHOW QUERIES"),
        (Some(Kw::Retention), Some(Kw::Policies)) => (Some(Read), "SHOW RETENTION POLICIES"),
        (Some(Kw::Series), Some(Kw::Exact | Kw::Cardinality)) => {
            (Some(Read), "SHOW SERIES CARDINALITY")
        }
        (Some(Kw::Series), _) => (Some(Read), "SHOW SERIES"),
        (Some(Kw::Shard), Some(Kw::Groups)) => (Some(NodeLocal), "SHOW SHARD GROUPS"),
        (Some(Kw::Shards), _) => (Some(NodeLocal), "SHOW SHARDS"),
        (Some(Kw::Stats), _) => (Some(NodeLocal), "SHOW STATS"),
        (Some(Kw::Subscriptions), _) => (Some(NodeLocal), "SHOW SUBSCRIPTIONS"),
        (Some(Kw::Tag), Some(Kw::Key)) => (Some(Read), "SHOW TAG KEY CARDINALITY"),
        (Some(Kw::Tag), Some(Kw::Keys)) => (Some(Read), "SHOW TAG KEYS"),
        (Some(Kw::Tag), Some(Kw::Values)) => {
            if matches!(kw(3), Some(Kw::Exact | Kw::Cardinality)) {
                (Some(Read), "SHOW TAG VALUES CARDINALITY")
            } else {
                (Some(Read), "SHOW TAG VALUES")
            }
        }
        (Some(Kw::Users), _) => (Some(Read), "SHOW USERS"),
        _ => (None, "SHOW"),
    };
    Verdict {
        kind,
        keyword: name.to_owned(),
    }
}

//! What a mutation does to the set of databases and retention policies.
//!
//! The gateway answers a write to an unknown database with InfluxDB's 404
//! (see [`crate::backend::catalog`]), so it must know the databases a
//! `CREATE`/`DROP DATABASE` or `… RETENTION POLICY` it just logged adds or
//! removes, before any node has applied it. Reading the statement's tokens
//! (not its text) keeps a name inside a string or comment from counting.
//! Only the names matter here; whether InfluxDB accepts the rest of the
//! statement is the nodes' business (a statement they reject changes
//! nothing, and the catalog's next refresh from the nodes corrects it).

use super::keywords::Kw;
use super::lexer::{self, Token, TokenKind};
use super::scope::name_of;

/// One change to what exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogChange {
    CreateDatabase(String),
    DropDatabase(String),
    CreateRetentionPolicy { db: String, rp: String },
    DropRetentionPolicy { db: String, rp: String },
}

fn word_is(q: &str, t: Option<&Token>, w: &str) -> bool {
    t.is_some_and(|t| {
        matches!(t.kind, TokenKind::Ident | TokenKind::Keyword(_))
            && q.get(t.start..t.end)
                .is_some_and(|s| s.eq_ignore_ascii_case(w))
    })
}

fn name_at(q: &str, t: Option<&Token>) -> Option<String> {
    t.filter(|t| matches!(t.kind, TokenKind::Ident | TokenKind::QuotedIdent))
        .map(|t| name_of(q, t))
        .filter(|n| !n.is_empty())
}

/// The catalog changes of every statement of `q`, in order. A query that
/// does not tokenize changes nothing (InfluxDB rejects it whole).
pub fn catalog_changes(q: &str) -> Vec<CatalogChange> {
    let Ok(toks) = lexer::tokenize(q) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for run in super::statement_tokens(&toks) {
        let kw = |i: usize| match run.get(i).map(|t| t.kind) {
            Some(TokenKind::Keyword(k)) => Some(k),
            _ => None,
        };
        match (kw(0), kw(1), kw(2)) {
            (Some(Kw::Create), Some(Kw::Database), _) => {
                let Some(db) = name_at(q, run.get(2)) else {
                    continue;
                };
                // CREATE DATABASE db WITH … NAME rp creates that policy too.
                let rp = run
                    .iter()
                    .position(|t| t.kind == TokenKind::Keyword(Kw::With))
                    .and_then(|w| {
                        (w..run.len())
                            .find(|&i| word_is(q, run.get(i), "name"))
                            .and_then(|i| name_at(q, run.get(i + 1)))
                    });
                out.push(CatalogChange::CreateDatabase(db.clone()));
                if let Some(rp) = rp {
                    out.push(CatalogChange::CreateRetentionPolicy { db, rp });
                }
            }
            (Some(Kw::Drop), Some(Kw::Database), _) => {
                if let Some(db) = name_at(q, run.get(2)) {
                    out.push(CatalogChange::DropDatabase(db));
                }
            }
            (Some(verb @ (Kw::Create | Kw::Drop)), Some(Kw::Retention), Some(Kw::Policy)) => {
                let rp = name_at(q, run.get(3));
                let on = word_is(q, run.get(4), "on");
                let db = name_at(q, run.get(5));
                if let (Some(rp), true, Some(db)) = (rp, on, db) {
                    out.push(if verb == Kw::Create {
                        CatalogChange::CreateRetentionPolicy { db, rp }
                    } else {
                        CatalogChange::DropRetentionPolicy { db, rp }
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::CatalogChange::*;
    use super::catalog_changes as changes;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn databases_and_policies() {
        assert_eq!(
            changes("create database telegraf"),
            vec![CreateDatabase(s("telegraf"))]
        );
        assert_eq!(
            changes(
                "SHOW DATABASES; CREATE DATABASE \"a b\" WITH DURATION 1d NAME \"week\"; DROP DATABASE old"
            ),
            vec![
                CreateDatabase(s("a b")),
                CreateRetentionPolicy {
                    db: s("a b"),
                    rp: s("week")
                },
                DropDatabase(s("old"))
            ]
        );
        assert_eq!(
            changes(
                "CREATE RETENTION POLICY r1 ON db DURATION 1h REPLICATION 1; drop retention policy \"r2\" on \"d\""
            ),
            vec![
                CreateRetentionPolicy {
                    db: s("db"),
                    rp: s("r1")
                },
                DropRetentionPolicy {
                    db: s("d"),
                    rp: s("r2")
                }
            ]
        );
    }

    #[test]
    fn names_in_strings_comments_or_broken_statements_do_not_count() {
        assert!(changes("-- CREATE DATABASE x\nSHOW DATABASES").is_empty());
        assert!(changes("SELECT * FROM m WHERE t = 'CREATE DATABASE x'").is_empty());
        assert!(changes("CREATE DATABASE").is_empty());
        assert!(changes("CREATE RETENTION POLICY r").is_empty());
        assert!(changes("CREATE DATABASE 'x").is_empty());
        assert!(changes("DROP SERIES FROM m; DROP MEASUREMENT db").is_empty());
    }
}

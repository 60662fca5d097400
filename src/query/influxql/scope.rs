//! The databases a query names itself, for read-your-writes scoping.
//!
//! A read only has to wait for the writes it can see: those to the `db`
//! parameter's database and to the databases it names in fully qualified
//! sources (`"db"."rp"."m"`, `db..m`, `db.rp./re/`) or `ON db` clauses
//! (`SHOW MEASUREMENTS ON db`). Scanning the tokens, not the text, keeps a
//! `.` inside a string, regex or comment from being taken for a name.

use super::lexer::{self, LexError, Token, TokenKind};

fn is_name(t: &Token) -> bool {
    matches!(t.kind, TokenKind::Ident | TokenKind::QuotedIdent)
}

/// The identifier's value: quotes removed, `\"` and `\\` unescaped.
pub(super) fn name_of(q: &str, t: &Token) -> String {
    let text = q.get(t.start..t.end).unwrap_or("");
    if t.kind != TokenKind::QuotedIdent {
        return text.to_string();
    }
    let inner = text
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(text);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(e) => out.push(e),
                None => {}
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// The databases `q` names itself, in order of appearance, without repeats.
pub fn named_databases(q: &str) -> Result<Vec<String>, LexError> {
    Ok(databases_in(q, &lexer::tokenize(q)?))
}

/// [`named_databases`] of an already tokenized query.
pub(super) fn databases_in(q: &str, toks: &[Token]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    };
    for (i, t) in toks.iter().enumerate() {
        let prev_dot = i > 0 && toks[i - 1].kind == TokenKind::Dot;
        let kind_at = |j: usize| toks.get(j).map(|t| t.kind);
        if is_name(t) && !prev_dot && kind_at(i + 1) == Some(TokenKind::Dot) {
            // db.rp.x or db..x: three segments, the first is the database.
            let three = match kind_at(i + 2) {
                Some(TokenKind::Dot) => true,
                Some(TokenKind::Ident | TokenKind::QuotedIdent) => {
                    kind_at(i + 3) == Some(TokenKind::Dot)
                }
                _ => false,
            };
            if three {
                push(name_of(q, t));
            }
        }
        let is_on = t.kind != TokenKind::QuotedIdent
            && q.get(t.start..t.end)
                .is_some_and(|w| w.eq_ignore_ascii_case("on"));
        if is_on && let Some(next) = toks.get(i + 1).filter(|n| is_name(n)) {
            push(name_of(q, next));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::named_databases as dbs;

    #[test]
    fn names_from_qualified_sources_and_on_clauses() {
        assert_eq!(dbs(r#"SELECT * FROM "a"."autogen"."m""#).unwrap(), ["a"]);
        assert_eq!(
            dbs("SELECT * FROM a..m; SELECT * FROM b.rp./x/").unwrap(),
            ["a", "b"]
        );
        assert_eq!(dbs("SHOW MEASUREMENTS ON x").unwrap(), ["x"]);
        assert_eq!(dbs(r#"SHOW TAG KEYS ON "we\"ird""#).unwrap(), [r#"we"ird"#]);
        assert!(dbs("SELECT * FROM rp.m").unwrap().is_empty());
        assert!(dbs("SHOW DATABASES").unwrap().is_empty());
        assert!(dbs("SELECT * FROM m WHERE t = 'a.b.c'").unwrap().is_empty());
        assert!(dbs("SELECT * FROM m WHERE t = 'x").is_err());
    }
}

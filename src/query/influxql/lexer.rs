//! The InfluxQL scanner: turns a query into significant tokens.
//!
//! Why hand-written and stateful: InfluxQL's `/` is either division, the
//! start of a `/* comment */`, or the start of a `/regex/` literal, and which
//! one depends on where the *parser* is (influxql `parser.go` calls
//! `ScanRegex` only from `parseRegex`). A regex may contain `;` or quotes, so
//! guessing wrong either hides a statement or invents an unterminated string.
//! [`Context`] tracks just enough parser state to know the positions where
//! InfluxDB scans a regex:
//! - right after `=~` / `!~`;
//! - at the start of a SELECT field (after `SELECT` or a field-list `,`);
//! - at the start of a FROM source (after `FROM`, a source-list `,`, or
//!   `WITH MEASUREMENT =`/`=~`), and right after a `.` inside a source with
//!   fewer than three segments (`rp./re/`);
//! - at the start of a GROUP BY dimension (after `GROUP BY` or a `,`);
//! - at the start of a function-call argument (after `ident(` or a `,`).
//!
//! At those positions InfluxDB skips one run of whitespace and scans any `/`
//! as a regex (even `/*`). Everywhere else `/*` is a comment and `/` is DIV.
//! Whitespace and comments are dropped; `;` is kept as a token.

use super::keywords::{self, Kw};
use thiserror::Error;

/// Why a query could not be tokenized. InfluxDB rejects such a query as a
/// whole at parse time, so nothing in it is ever executed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LexError {
    /// A `'…'` string ran into a newline or the end of the query.
    #[error("unterminated string literal starting at byte {0}")]
    UnterminatedString(usize),
    /// A `"…"` identifier ran into a newline or the end of the query.
    #[error("unterminated quoted identifier starting at byte {0}")]
    UnterminatedIdent(usize),
    /// A backslash in a string/identifier not followed by `n \ " '`.
    #[error("bad escape at byte {0}")]
    BadEscape(usize),
    /// A `/*` comment without its `*/`.
    #[error("unterminated block comment starting at byte {0}")]
    UnterminatedComment(usize),
    /// A `/regex/` that ran into a newline or the end of the query.
    #[error("unterminated regex starting at byte {0}")]
    UnterminatedRegex(usize),
    /// A character InfluxQL has no token for (InfluxDB's ILLEGAL token).
    #[error("illegal character {1:?} at byte {0}")]
    IllegalChar(usize, char),
}

/// What a significant token is. Literal values are not decoded: callers
/// slice the source with the token's span when they need the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Bare identifier that is not a keyword (also `word"quoted"`).
    Ident,
    /// `"quoted"` identifier.
    QuotedIdent,
    Keyword(Kw),
    /// `'string'`.
    String,
    /// Integer, decimal or duration literal.
    Number,
    Regex,
    /// `$name` bound parameter.
    BoundParam,
    Dot,
    Comma,
    LParen,
    RParen,
    Eq,
    /// `=~` or `!~`.
    RegexOp,
    /// Any other operator or punctuation (`+ - * / < >= :: π` …).
    Operator,
    Semicolon,
}

/// One significant token: its kind and byte span in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

/// Which clause the innermost bracket level is in, for regex positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clause {
    None,
    Fields,
    Sources,
    Dimensions,
    CallArgs,
    Other,
}

/// One bracket level (the statement itself is level 0).
#[derive(Clone, Copy, Debug)]
struct Level {
    clause: Clause,
    /// Dots seen in the current FROM source (`db.rp.m` has two).
    source_dots: u8,
}

impl Level {
    fn new(clause: Clause) -> Self {
        Level {
            clause,
            source_dots: 0,
        }
    }
}

/// Whether the next `/` starts a regex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RegexPos {
    No,
    /// Yes, even after one run of whitespace.
    AfterSpace,
    /// Yes, but only if `/` comes immediately (the `rp./re/` case).
    Immediate,
}

/// The slice of parser state the scanner needs (see the module doc).
struct Context {
    levels: Vec<Level>,
    regex: RegexPos,
    prev: Option<Token>,
}

impl Context {
    fn new() -> Self {
        Context {
            levels: vec![Level::new(Clause::None)],
            regex: RegexPos::No,
            prev: None,
        }
    }

    fn top(&mut self) -> &mut Level {
        if self.levels.is_empty() {
            self.levels.push(Level::new(Clause::None));
        }
        let last = self.levels.len() - 1;
        &mut self.levels[last]
    }

    /// Updates the context after a significant token and decides whether
    /// the following `/` would be scanned as a regex by InfluxDB.
    fn observe(&mut self, tok: Token) {
        let prev = self.prev.map(|t| t.kind);
        let mut regex = RegexPos::No;
        match tok.kind {
            TokenKind::Semicolon => {
                // A new statement: forget everything.
                self.levels.clear();
                self.levels.push(Level::new(Clause::None));
            }
            TokenKind::RegexOp => {
                if prev == Some(TokenKind::Keyword(Kw::Measurement)) {
                    *self.top() = Level::new(Clause::Sources);
                }
                regex = RegexPos::AfterSpace;
            }
            TokenKind::Eq if prev == Some(TokenKind::Keyword(Kw::Measurement)) => {
                // SHOW MEASUREMENTS WITH MEASUREMENT = <source>
                *self.top() = Level::new(Clause::Sources);
                regex = RegexPos::AfterSpace;
            }
            TokenKind::Keyword(kw) => regex = self.keyword(kw, prev),
            TokenKind::LParen => {
                // Only `ident(` with nothing in between is a call
                // (parseUnaryExpr uses Scan, not ScanIgnoreWhitespace).
                let adjacent = self.prev.is_some_and(|p| p.end == tok.start);
                let callee = matches!(
                    prev,
                    Some(
                        TokenKind::Ident
                            | TokenKind::QuotedIdent
                            | TokenKind::Keyword(Kw::Distinct)
                    )
                );
                if adjacent && callee {
                    self.levels.push(Level::new(Clause::CallArgs));
                    regex = RegexPos::AfterSpace;
                } else if self.top().clause == Clause::Sources {
                    // FROM (SELECT …): the SELECT will set the clause.
                    self.levels.push(Level::new(Clause::None));
                } else {
                    self.levels.push(Level::new(Clause::Other));
                }
            }
            TokenKind::RParen if self.levels.len() > 1 => {
                self.levels.pop();
            }
            TokenKind::Comma => {
                let top = self.top();
                match top.clause {
                    Clause::Fields | Clause::Dimensions | Clause::CallArgs => {
                        regex = RegexPos::AfterSpace;
                    }
                    Clause::Sources => {
                        top.source_dots = 0;
                        regex = RegexPos::AfterSpace;
                    }
                    Clause::None | Clause::Other => {}
                }
            }
            TokenKind::Dot => {
                let top = self.top();
                if top.clause == Clause::Sources {
                    top.source_dots = top.source_dots.saturating_add(1);
                    // parseSegmentedIdents stops at `./`; parseSource then
                    // looks for a regex only if it has < 3 segments.
                    if top.source_dots <= 2 {
                        regex = RegexPos::Immediate;
                    }
                }
            }
            _ => {}
        }
        self.regex = regex;
        self.prev = Some(tok);
    }

    /// Clause changes driven by keywords; returns the regex position.
    fn keyword(&mut self, kw: Kw, prev: Option<TokenKind>) -> RegexPos {
        let top = self.top();
        match kw {
            Kw::Select => {
                top.clause = Clause::Fields;
                RegexPos::AfterSpace
            }
            Kw::From => {
                *top = Level::new(Clause::Sources);
                RegexPos::AfterSpace
            }
            Kw::By if prev == Some(TokenKind::Keyword(Kw::Group)) => {
                top.clause = Clause::Dimensions;
                RegexPos::AfterSpace
            }
            Kw::Where
            | Kw::Group
            | Kw::Order
            | Kw::Limit
            | Kw::Offset
            | Kw::Slimit
            | Kw::Soffset
            | Kw::Into
            | Kw::With
            | Kw::By => {
                top.clause = Clause::Other;
                RegexPos::No
            }
            _ => RegexPos::No,
        }
    }
}

/// Tokenizes a whole query. Statements are separated by
/// [`TokenKind::Semicolon`] tokens; whitespace and comments are dropped.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        ctx: Context::new(),
    };
    let mut out = Vec::with_capacity(src.len() / 4 + 4);
    while let Some(tok) = lexer.next_token()? {
        out.push(tok);
    }
    Ok(out)
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    ctx: Context,
}

/// InfluxQL whitespace. `\r` counts because the Go reader turns it into
/// `\n`; NUL counts because the Go scanner swallows it as a terminator in
/// most positions (see the design doc in mod.rs).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0)
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.bytes.get(self.pos + off).copied()
    }

    fn next_token(&mut self) -> Result<Option<Token>, LexError> {
        loop {
            let Some(b) = self.peek(0) else {
                return Ok(None);
            };
            let start = self.pos;
            if is_space(b) {
                while self.peek(0).is_some_and(is_space) {
                    self.pos += 1;
                }
                if self.ctx.regex == RegexPos::Immediate {
                    self.ctx.regex = RegexPos::No;
                }
                continue;
            }
            if b == b'/' && self.ctx.regex != RegexPos::No {
                self.scan_regex(start)?;
                return Ok(Some(self.emit(TokenKind::Regex, start)));
            }
            if b == b'-' && self.peek(1) == Some(b'-') {
                self.skip_line_comment();
                self.ctx.regex = RegexPos::No;
                continue;
            }
            if b == b'/' && self.peek(1) == Some(b'*') {
                self.skip_block_comment(start)?;
                self.ctx.regex = RegexPos::No;
                continue;
            }
            let kind = self.scan_token(b, start)?;
            return Ok(Some(self.emit(kind, start)));
        }
    }

    fn emit(&mut self, kind: TokenKind, start: usize) -> Token {
        let tok = Token {
            kind,
            start,
            end: self.pos,
        };
        self.ctx.observe(tok);
        tok
    }

    /// Consumes `next` if it is the next byte.
    fn eat(&mut self, next: u8) -> bool {
        if self.peek(0) == Some(next) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Scans one non-comment, non-regex token starting at `b`.
    fn scan_token(&mut self, b: u8, start: usize) -> Result<TokenKind, LexError> {
        if b.is_ascii_alphabetic() || b == b'_' {
            return self.scan_bare_ident(start);
        }
        if b.is_ascii_digit() || (b == b'.' && self.peek(1).is_some_and(|c| c.is_ascii_digit())) {
            self.scan_number();
            return Ok(TokenKind::Number);
        }
        self.pos += 1;
        let kind = match b {
            b'"' => {
                self.scan_quoted(start, b'"')?;
                TokenKind::QuotedIdent
            }
            b'\'' => {
                self.scan_quoted(start, b'\'')?;
                TokenKind::String
            }
            b'$' => {
                // scanIdent(false): same shape as an identifier, no keywords.
                self.scan_word_tail()?;
                TokenKind::BoundParam
            }
            b'.' => TokenKind::Dot,
            b',' => TokenKind::Comma,
            b'(' => TokenKind::LParen,
            b')' => TokenKind::RParen,
            b';' => TokenKind::Semicolon,
            b'=' if self.eat(b'~') => TokenKind::RegexOp,
            b'=' => TokenKind::Eq,
            b'!' if self.eat(b'~') => TokenKind::RegexOp,
            b'!' if self.eat(b'=') => TokenKind::Operator,
            b'<' => {
                let _ = self.eat(b'=') || self.eat(b'>');
                TokenKind::Operator
            }
            b'>' => {
                self.eat(b'=');
                TokenKind::Operator
            }
            b':' => {
                self.eat(b':');
                TokenKind::Operator
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' => TokenKind::Operator,
            _ => {
                // Non-ASCII, a lone `!`, or an ASCII character with no token.
                let ch = self
                    .src
                    .get(start..)
                    .and_then(|s| s.chars().next())
                    .unwrap_or('\u{fffd}');
                if ch != 'π' {
                    return Err(LexError::IllegalChar(start, ch));
                }
                self.pos = start + ch.len_utf8();
                TokenKind::Operator
            }
        };
        Ok(kind)
    }

    /// A bare word, keyword-mapped. Mirrors Go's scanIdent quirk: a bare
    /// word immediately followed by `"…"` is one identifier token (so
    /// `into"x"` is not the INTO keyword).
    fn scan_bare_ident(&mut self, start: usize) -> Result<TokenKind, LexError> {
        if self.scan_word_tail()? {
            return Ok(TokenKind::Ident);
        }
        let word = self.src.get(start..self.pos).unwrap_or("");
        Ok(match keywords::lookup(word) {
            Some(kw) => TokenKind::Keyword(kw),
            None => TokenKind::Ident,
        })
    }

    /// Identifier characters, then an optional glued `"…"`; returns whether
    /// the quoted part was present.
    fn scan_word_tail(&mut self) -> Result<bool, LexError> {
        while self.peek(0).is_some_and(is_ident_char) {
            self.pos += 1;
        }
        let quote = self.pos;
        if !self.eat(b'"') {
            return Ok(false);
        }
        self.scan_quoted(quote, b'"')?;
        Ok(true)
    }

    /// Integer, decimal (`1.5`, `.5`, `1.`) or duration (`1h30m`, `5µs`).
    fn scan_number(&mut self) {
        self.skip_digits();
        if self.eat(b'.') {
            // Go consumes the dot even when no digit follows.
            self.skip_digits();
            return;
        }
        if self.duration_letter() {
            while self.duration_letter() {}
            loop {
                if self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                } else if !self.duration_letter() {
                    break;
                }
            }
        }
    }

    fn skip_digits(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Consumes one ASCII letter or `µ` (U+00B5) if present.
    fn duration_letter(&mut self) -> bool {
        match self.peek(0) {
            Some(c) if c.is_ascii_alphabetic() => {
                self.pos += 1;
                true
            }
            Some(0xC2) if self.peek(1) == Some(0xB5) => {
                self.pos += 2;
                true
            }
            _ => false,
        }
    }

    /// Body of a `'…'` string or `"…"` identifier; `self.pos` is just past
    /// the opening quote at `start`. Only `\n \\ \" \'` are valid escapes;
    /// a raw newline (or `\r`, or NUL, which Go reads as EOF) ends it badly.
    fn scan_quoted(&mut self, start: usize, quote: u8) -> Result<(), LexError> {
        let unterminated = if quote == b'"' {
            LexError::UnterminatedIdent(start)
        } else {
            LexError::UnterminatedString(start)
        };
        loop {
            let Some(c) = self.peek(0) else {
                return Err(unterminated);
            };
            self.pos += 1;
            match c {
                _ if c == quote => return Ok(()),
                b'\n' | b'\r' | 0 => return Err(unterminated),
                b'\\' => match self.peek(0) {
                    Some(b'n' | b'\\' | b'"' | b'\'') => self.pos += 1,
                    _ => return Err(LexError::BadEscape(self.pos - 1)),
                },
                _ => {}
            }
        }
    }

    /// `/…/` with `\/` as the only escape (others pass through); no
    /// newline allowed. `self.pos` is at the opening slash.
    fn scan_regex(&mut self, start: usize) -> Result<(), LexError> {
        self.pos += 1;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(LexError::UnterminatedRegex(start));
            };
            self.pos += 1;
            match c {
                b'/' => return Ok(()),
                b'\n' | b'\r' | 0 => return Err(LexError::UnterminatedRegex(start)),
                b'\\' => {
                    self.eat(b'/');
                }
                _ => {}
            }
        }
    }

    /// `-- …` up to and including the line end (`\n`, `\r`, or NUL).
    fn skip_line_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            if matches!(c, b'\n' | b'\r' | 0) {
                return;
            }
        }
    }

    /// `/* … */`, no nesting; NUL counts as end of input, as in Go.
    fn skip_block_comment(&mut self, start: usize) -> Result<(), LexError> {
        self.pos += 2;
        loop {
            match self.peek(0) {
                None | Some(0) => return Err(LexError::UnterminatedComment(start)),
                Some(b'*') if self.peek(1) == Some(b'/') => {
                    self.pos += 2;
                    return Ok(());
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

//! Raw reads as MessagePack (`Accept: application/x-msgpack`), decoded
//! straight into line protocol.
//!
//! Why: a backfill is limited by the *source* influxd's CPU as much as by
//! the destination's ingest, and InfluxDB (1.4+) encodes a raw read as
//! MessagePack with about a quarter less CPU than as JSON. Decoding here
//! goes from the answer's bytes to line-protocol bytes with no per-point
//! maps or JSON values in between.
//!
//! The answer of a chunked query is a sequence of MessagePack maps with
//! nothing between them, each shaped like one JSON chunk (`results` ->
//! `series` -> `name`, `tags`, `columns`, `values`); [`object_len`] finds
//! where one ends, [`Lines::chunk`] turns one into lines. Only the subset
//! InfluxDB writes is decoded (nil, booleans, integers, floats, strings,
//! binary, arrays, maps; extensions are skipped). Field types come from the
//! schema, as with JSON: the encoding does not tell the float 1.0 from the
//! integer 1 reliably across versions.

use super::super::lp::{
    FieldType, KEY, MEASUREMENT, escape, push_float, push_integer, push_string, push_unsigned,
};
use super::Types;
use crate::repair::node::is_not_found;

/// Why a MessagePack answer could not be turned into lines.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MsgpackError {
    /// The bytes end in the middle of a value.
    #[error("truncated MessagePack")]
    Incomplete,
    /// Not the shape InfluxDB answers with.
    #[error("bad MessagePack answer: {0}")]
    Bad(String),
    /// The node answered with an error.
    #[error("{0}")]
    Node(String),
    /// A value for a field the types do not know (reload them and retry).
    #[error("field {0} has no known type")]
    UnknownField(String),
}

use MsgpackError::{Bad, Incomplete};

/// One decoded item; arrays and maps give their length, their items follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext,
}

/// Reads items off a byte slice.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        let end = self.pos.checked_add(n).ok_or(Incomplete)?;
        let s = self.buf.get(self.pos..end).ok_or(Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn str(&mut self, n: usize) -> Result<Val<'a>, MsgpackError> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(Val::Str)
            .map_err(|_| Bad("string is not UTF-8".into()))
    }

    /// The next item.
    pub fn item(&mut self) -> Result<Val<'a>, MsgpackError> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Val::Int(i64::from(m)),
            0x80..=0x8f => Val::Map(usize::from(m & 0x0f)),
            0x90..=0x9f => Val::Array(usize::from(m & 0x0f)),
            0xa0..=0xbf => return self.str(usize::from(m & 0x1f)),
            0xc0 => Val::Nil,
            0xc2 => Val::Bool(false),
            0xc3 => Val::Bool(true),
            0xc4..=0xc6 => {
                let n = self.be(1 << (m - 0xc4))? as usize;
                Val::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.be(1 << (m - 0xc7))? as usize;
                self.take(n + 1)?;
                Val::Ext
            }
            0xca => Val::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Val::Float(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => Val::Uint(self.be(1 << (m - 0xcc))?),
            0xd0 => Val::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Val::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Val::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Val::Int(self.be(8)? as i64),
            0xd4..=0xd8 => {
                self.take(1 + (1 << (m - 0xd4)))?;
                Val::Ext
            }
            0xd9..=0xdb => {
                let n = self.be(1 << (m - 0xd9))? as usize;
                return self.str(n);
            }
            0xdc | 0xdd => Val::Array(self.be(2 << (m - 0xdc))? as usize),
            0xde | 0xdf => Val::Map(self.be(2 << (m - 0xde))? as usize),
            0xe0..=0xff => Val::Int(i64::from(m as i8)),
            0xc1 => return Err(Bad("reserved byte 0xc1".into())),
        })
    }

    /// Skips one whole item, with everything nested in it.
    pub fn skip(&mut self) -> Result<(), MsgpackError> {
        let mut pending = 1usize;
        while pending > 0 {
            pending -= 1;
            match self.item()? {
                Val::Array(n) => pending = pending.saturating_add(n),
                Val::Map(n) => pending = pending.saturating_add(n.saturating_mul(2)),
                _ => {}
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<&'a str, MsgpackError> {
        match self.item()? {
            Val::Str(s) => Ok(s),
            Val::Bin(b) => std::str::from_utf8(b).map_err(|_| Bad("name is not UTF-8".into())),
            other => Err(Bad(format!("expected a string, got {other:?}"))),
        }
    }

    fn array(&mut self) -> Result<usize, MsgpackError> {
        match self.item()? {
            Val::Array(n) => Ok(n),
            Val::Nil => Ok(0),
            other => Err(Bad(format!("expected an array, got {other:?}"))),
        }
    }

    fn map(&mut self) -> Result<usize, MsgpackError> {
        match self.item()? {
            Val::Map(n) => Ok(n),
            Val::Nil => Ok(0),
            other => Err(Bad(format!("expected a map, got {other:?}"))),
        }
    }
}

/// The length of the first whole item in `buf`, or `None` if `buf` ends
/// inside it.
pub fn object_len(buf: &[u8]) -> Result<Option<usize>, MsgpackError> {
    let mut c = Cursor::new(buf);
    match c.skip() {
        Ok(()) => Ok(Some(c.pos())),
        Err(Incomplete) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One column of a series: its escaped key with `=`, its type.
struct Column {
    key_eq: String,
    name: String,
    ty: Option<FieldType>,
}

/// Line protocol built from answers, cut into bodies of `batch` points.
#[derive(Debug, Default)]
pub struct Lines {
    batch: u64,
    /// The body being filled and its points.
    pub body: String,
    pub n: u64,
    /// Full bodies (exactly `batch` points each), not yet taken.
    pub full: Vec<(String, u64)>,
}

impl Lines {
    pub fn new(batch: usize) -> Lines {
        Lines {
            batch: batch.max(1) as u64,
            ..Default::default()
        }
    }

    /// Appends every point of one answer object. On error nothing of it
    /// stays (so the caller may reload the types and call again).
    pub fn chunk(&mut self, obj: &[u8], types: &Types) -> Result<(), MsgpackError> {
        let (len, n) = (self.body.len(), self.n);
        let full = self.full.len();
        let r = self.chunk_inner(obj, types);
        if r.is_err() {
            if self.full.len() > full {
                // The first body completed in this call began with the
                // partial body from before it.
                self.body = self.full.swap_remove(full).0;
                self.full.truncate(full);
            }
            self.body.truncate(len);
            self.n = n;
        }
        r
    }

    fn chunk_inner(&mut self, obj: &[u8], types: &Types) -> Result<(), MsgpackError> {
        let mut c = Cursor::new(obj);
        for _ in 0..c.map()? {
            match c.string()? {
                "results" => {
                    for _ in 0..c.array()? {
                        self.result(&mut c, types)?;
                    }
                }
                "error" => match c.item()? {
                    Val::Str(e) => return Err(MsgpackError::Node(e.to_string())),
                    _ => continue,
                },
                _ => c.skip()?,
            }
        }
        Ok(())
    }

    fn result(&mut self, c: &mut Cursor<'_>, types: &Types) -> Result<(), MsgpackError> {
        for _ in 0..c.map()? {
            match c.string()? {
                "series" => {
                    for _ in 0..c.array()? {
                        self.series(c, types)?;
                    }
                }
                "error" => match c.item()? {
                    Val::Str(e) if is_not_found(e) => {}
                    Val::Str(e) => return Err(MsgpackError::Node(e.to_string())),
                    _ => {}
                },
                _ => c.skip()?,
            }
        }
        Ok(())
    }

    fn series(&mut self, c: &mut Cursor<'_>, types: &Types) -> Result<(), MsgpackError> {
        let mut name = "";
        let mut tags: Vec<(&str, &str)> = Vec::new();
        let mut columns: Option<Vec<Column>> = None;
        for _ in 0..c.map()? {
            match c.string()? {
                "name" => name = c.string()?,
                "tags" => {
                    for _ in 0..c.map()? {
                        let k = c.string()?;
                        let v = c.string()?;
                        if !v.is_empty() {
                            tags.push((k, v));
                        }
                    }
                }
                "columns" => {
                    let known = types.get(name);
                    let n = c.array()?;
                    let mut cols = Vec::with_capacity(n);
                    for _ in 0..n {
                        let col = c.string()?;
                        let mut key_eq = String::with_capacity(col.len() + 1);
                        escape(&mut key_eq, col, KEY);
                        key_eq.push('=');
                        cols.push(Column {
                            key_eq,
                            name: col.to_string(),
                            ty: known.and_then(|k| k.get(col)).copied(),
                        });
                    }
                    if cols.first().is_some_and(|c| c.name != "time") {
                        return Err(Bad("the first column is not time".into()));
                    }
                    columns = Some(cols);
                }
                "values" => {
                    let Some(cols) = &columns else {
                        return Err(Bad("values before columns".into()));
                    };
                    tags.sort_unstable();
                    let mut prefix = String::new();
                    escape(&mut prefix, name, MEASUREMENT);
                    for (k, v) in &tags {
                        prefix.push(',');
                        escape(&mut prefix, k, KEY);
                        prefix.push('=');
                        escape(&mut prefix, v, KEY);
                    }
                    for _ in 0..c.array()? {
                        self.row(c, &prefix, cols)?;
                    }
                }
                _ => c.skip()?,
            }
        }
        Ok(())
    }

    fn row(
        &mut self,
        c: &mut Cursor<'_>,
        prefix: &str,
        cols: &[Column],
    ) -> Result<(), MsgpackError> {
        let n = c.array()?;
        if n != cols.len() {
            return Err(Bad(format!("row of {n} cells for {} columns", cols.len())));
        }
        let start = self.body.len();
        let time = match c.item()? {
            Val::Int(t) => Some(t),
            Val::Uint(t) => i64::try_from(t).ok(),
            _ => None,
        };
        self.body.push_str(prefix);
        let mut sep = ' ';
        let mut any = false;
        for col in &cols[1..] {
            let v = c.item()?;
            if v == Val::Nil {
                continue;
            }
            let Some(ty) = col.ty else {
                return Err(MsgpackError::UnknownField(col.name.clone()));
            };
            let mark = self.body.len();
            self.body.push(sep);
            self.body.push_str(&col.key_eq);
            match (ty, v) {
                (FieldType::Float, Val::Float(f)) => push_float(&mut self.body, f),
                (FieldType::Float, Val::Int(i)) => push_float(&mut self.body, i as f64),
                (FieldType::Float, Val::Uint(u)) => push_float(&mut self.body, u as f64),
                (FieldType::Integer, Val::Int(i)) => push_integer(&mut self.body, i),
                (FieldType::Integer, Val::Uint(u)) if i64::try_from(u).is_ok() => {
                    push_integer(&mut self.body, u as i64)
                }
                (FieldType::Unsigned, Val::Uint(u)) => push_unsigned(&mut self.body, u),
                (FieldType::Unsigned, Val::Int(i)) if i >= 0 => {
                    push_unsigned(&mut self.body, i as u64)
                }
                (FieldType::String, Val::Str(s)) => push_string(&mut self.body, s),
                (FieldType::Boolean, Val::Bool(b)) => {
                    self.body.push_str(if b { "true" } else { "false" })
                }
                _ => {
                    // A cell that does not fit the type is left out, as
                    // with JSON; a nested one is skipped whole.
                    self.body.truncate(mark);
                    if matches!(v, Val::Array(_) | Val::Map(_)) {
                        return Err(Bad(format!("nested value in column {}", col.name)));
                    }
                    continue;
                }
            }
            sep = ',';
            any = true;
        }
        let Some(time) = time.filter(|_| any) else {
            self.body.truncate(start);
            return Ok(());
        };
        self.body.push(' ');
        {
            use std::fmt::Write;
            let _ = writeln!(self.body, "{time}");
        }
        self.encoded();
        Ok(())
    }

    /// Counts one point just appended to `body`, cutting it when full.
    pub fn encoded(&mut self) {
        self.n += 1;
        if self.n >= self.batch {
            let body = std::mem::take(&mut self.body);
            self.full.push((body, std::mem::take(&mut self.n)));
        }
    }
}

#[cfg(test)]
#[path = "msgpack_tests.rs"]
mod tests;

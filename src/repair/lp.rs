//! Line-protocol encoding of points read back from a node.
//!
//! Why its own encoder: points copied between nodes must land exactly as
//! they were. JSON loses field types (`1` may be the float 1.0 or the
//! integer 1), so the type comes from `SHOW FIELD KEYS` and each value is
//! written with its suffix (`i`, `u`, quoted string, `true`/`false`).
//! Names and tag values may hold spaces, commas, `=` and quotes; they are
//! escaped by the rules of InfluxDB 1.x's parser:
//! - measurement: `,` and space;
//! - tag keys, tag values, field keys: `,`, `=` and space;
//! - string field values: `"` and `\`.
//!
//! What cannot round-trip (the parser has no escape for it): a newline in a
//! name or tag value, and a name or tag value ending in a backslash. Tags
//! with an empty value do not exist in InfluxDB and are left out.

use std::collections::BTreeMap;

/// A field's type as `SHOW FIELD KEYS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl FieldType {
    pub fn parse(s: &str) -> Option<FieldType> {
        Some(match s {
            "float" => FieldType::Float,
            "integer" => FieldType::Integer,
            "unsigned" => FieldType::Unsigned,
            "string" => FieldType::String,
            "boolean" => FieldType::Boolean,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        }
    }

    /// Numeric fields get a `sum()` in the digest.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Float | FieldType::Integer | FieldType::Unsigned
        )
    }
}

/// One field value with its type.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(String),
    Boolean(bool),
}

impl FieldValue {
    /// The value of a JSON cell for a field of type `t`; `None` for null or
    /// a cell that does not fit the type.
    pub fn from_json(v: &serde_json::Value, t: FieldType) -> Option<FieldValue> {
        Some(match t {
            FieldType::Float => FieldValue::Float(v.as_f64()?),
            FieldType::Integer => FieldValue::Integer(v.as_i64()?),
            FieldType::Unsigned => FieldValue::Unsigned(v.as_u64()?),
            FieldType::String => FieldValue::String(v.as_str()?.to_string()),
            FieldType::Boolean => FieldValue::Boolean(v.as_bool()?),
        })
    }

    /// The same value, as an exact comparison (floats by bits).
    pub fn same(&self, other: &FieldValue) -> bool {
        match (self, other) {
            (FieldValue::Float(a), FieldValue::Float(b)) => a.to_bits() == b.to_bits(),
            _ => self == other,
        }
    }

    fn encode(&self, out: &mut String) {
        match self {
            FieldValue::Float(f) => push_float(out, *f),
            FieldValue::Integer(i) => push_integer(out, *i),
            FieldValue::Unsigned(u) => push_unsigned(out, *u),
            FieldValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::String(s) => push_string(out, s),
        }
    }
}

/// A float field value (shortest text that reads back as the same bits).
pub fn push_float(out: &mut String, f: f64) {
    use std::fmt::Write;
    let _ = write!(out, "{f}");
}

/// An integer field value, with its `i` suffix.
pub fn push_integer(out: &mut String, i: i64) {
    use std::fmt::Write;
    let _ = write!(out, "{i}i");
}

/// An unsigned field value, with its `u` suffix.
pub fn push_unsigned(out: &mut String, u: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{u}u");
}

/// A string field value, quoted, with `"` and `\` escaped.
pub fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Escapes for a measurement name.
pub const MEASUREMENT: &[char] = &[',', ' '];
/// Escapes for tag keys, tag values and field keys.
pub const KEY: &[char] = &[',', '=', ' '];

/// Appends `s` with a backslash before each of `specials`.
pub fn escape(out: &mut String, s: &str, specials: &[char]) {
    if !s.contains(specials) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends one point as a line (with its trailing newline). Nothing is
/// written when there are no fields.
pub fn encode_point(
    out: &mut String,
    measurement: &str,
    tags: &BTreeMap<String, String>,
    fields: &BTreeMap<String, FieldValue>,
    time_ns: i64,
) {
    if fields.is_empty() {
        return;
    }
    escape(out, measurement, MEASUREMENT);
    for (k, v) in tags {
        if v.is_empty() {
            continue;
        }
        out.push(',');
        escape(out, k, KEY);
        out.push('=');
        escape(out, v, KEY);
    }
    let mut sep = ' ';
    for (k, v) in fields {
        out.push(sep);
        sep = ',';
        escape(out, k, KEY);
        out.push('=');
        v.encode(out);
    }
    out.push(' ');
    out.push_str(&time_ns.to_string());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_types() {
        let tags: BTreeMap<String, String> = [
            ("host name".to_string(), "a,b=c \"q\"".to_string()),
            ("empty".to_string(), String::new()),
        ]
        .into();
        let fields: BTreeMap<String, FieldValue> = [
            ("f".to_string(), FieldValue::Float(1.0)),
            ("i".to_string(), FieldValue::Integer(-3)),
            (
                "s x".to_string(),
                FieldValue::String("say \"hi\" \\o/".into()),
            ),
            ("b".to_string(), FieldValue::Boolean(true)),
            ("u".to_string(), FieldValue::Unsigned(7)),
        ]
        .into();
        let mut out = String::new();
        encode_point(&mut out, "cpu load,x", &tags, &fields, 42);
        assert_eq!(
            out,
            "cpu\\ load\\,x,host\\ name=a\\,b\\=c\\ \"q\" b=true,f=1,i=-3i,s\\ x=\"say \\\"hi\\\" \\\\o/\",u=7u 42\n"
        );
    }

    #[test]
    fn json_cells_take_the_schema_type() {
        let one = serde_json::json!(1);
        assert_eq!(
            FieldValue::from_json(&one, FieldType::Float),
            Some(FieldValue::Float(1.0))
        );
        assert_eq!(
            FieldValue::from_json(&one, FieldType::Integer),
            Some(FieldValue::Integer(1))
        );
        assert_eq!(
            FieldValue::from_json(&serde_json::Value::Null, FieldType::Integer),
            None
        );
        let mut out = String::new();
        encode_point(
            &mut out,
            "m",
            &BTreeMap::new(),
            &[("v".to_string(), FieldValue::Float(0.1 + 0.2))].into(),
            1,
        );
        assert_eq!(out, "m v=0.30000000000000004 1\n");
    }

    proptest::proptest! {
        /// What the encoder writes, an independent parser reads back as
        /// the same names, tags and values.
        #[test]
        fn round_trips_through_a_parser(
            m in "[a-z][a-z ,=\"]{0,8}",
            tk in "[a-z][a-z ,=\"]{0,6}",
            tv in "[a-z][a-z ,=\"]{0,6}",
            fk in "[a-z][a-z ,=\"]{0,6}",
            sv in "[a-z ,=\"\\\\]{0,8}",
            iv in proptest::num::i64::ANY,
            fv in -1e300f64..1e300,
        ) {
            use influxdb_line_protocol::FieldValue as P;
            let tags: BTreeMap<String, String> = [(tk.clone(), tv.clone())].into();
            let fields: BTreeMap<String, FieldValue> = [
                (format!("{fk}_s"), FieldValue::String(sv.clone())),
                (format!("{fk}_i"), FieldValue::Integer(iv)),
                (format!("{fk}_f"), FieldValue::Float(fv)),
            ]
            .into();
            let mut out = String::new();
            encode_point(&mut out, &m, &tags, &fields, -5);
            let line = influxdb_line_protocol::parse_lines(&out).next().unwrap().unwrap();
            proptest::prop_assert_eq!(line.series.measurement.to_string(), m);
            let ts = line.series.tag_set.unwrap();
            proptest::prop_assert_eq!(ts[0].0.to_string(), tk);
            proptest::prop_assert_eq!(ts[0].1.to_string(), tv);
            proptest::prop_assert_eq!(line.timestamp, Some(-5));
            for (k, v) in &line.field_set {
                let k = k.to_string();
                match v {
                    P::String(s) => proptest::prop_assert_eq!((k, s.to_string()), (format!("{fk}_s"), sv.clone())),
                    P::I64(i) => proptest::prop_assert_eq!((k, *i), (format!("{fk}_i"), iv)),
                    P::F64(f) => proptest::prop_assert_eq!((k, f.to_bits()), (format!("{fk}_f"), fv.to_bits())),
                    other => proptest::prop_assert!(false, "unexpected {other:?}"),
                }
            }
        }
    }
}

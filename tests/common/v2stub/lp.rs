//! The stub's rough line-protocol reader and its annotated-CSV writer.
//!
//! Why rough: the stub must reject what is clearly not line protocol (so the
//! gateway's validation and error paths can be tested) and show stored
//! points back, not re-implement InfluxDB's parser.

/// The bucket named in `from(bucket: "x")` or `from(bucketID: "x")`.
pub(super) fn flux_bucket(flux: &str) -> Option<String> {
    let rest = &flux[flux.find("from(")? + 5..];
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("bucketID")
        .or_else(|| rest.strip_prefix("bucket"))?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// One table per (measurement, field), one row per stored value; all
/// columns are strings except `table` (a stub simplification of Flux CSV).
pub(super) fn annotated_csv(lines: &[String]) -> String {
    let mut out = String::from(
        "#datatype,string,long,string,string,string,string\r\n\
         #group,false,false,true,true,false,false\r\n\
         #default,_result,,,,,\r\n\
         ,result,table,_measurement,_field,_value,_time\r\n",
    );
    let mut tables: Vec<(String, String)> = Vec::new();
    for line in lines {
        let Ok(p) = parse_line(line) else { continue };
        for (field, value) in p.fields {
            let key = (p.measurement.clone(), field.clone());
            let table = tables.iter().position(|t| *t == key).unwrap_or_else(|| {
                tables.push(key);
                tables.len() - 1
            });
            let cells = [&p.measurement, &field, &value, &p.timestamp];
            let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&format!(",,{table},{}\r\n", cells.join(",")));
        }
    }
    out
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A line split into what the CSV output needs.
pub(super) struct ParsedLine {
    measurement: String,
    fields: Vec<(String, String)>,
    timestamp: String,
}

/// Splits `s` on `sep` where it is neither backslash-escaped nor (when
/// `quotes`) inside a double-quoted string.
fn split_unescaped(s: &str, sep: char, quotes: bool) -> Vec<&str> {
    let (mut parts, mut start, mut esc, mut in_q) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' => esc = true,
            '"' if quotes => in_q = !in_q,
            _ if c == sep && !in_q => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A rough line-protocol check: `measurement[,tags] k=v[,k=v] [int-ts]`.
pub(super) fn parse_line(line: &str) -> Result<ParsedLine, &'static str> {
    // The key section has no quoting; the field section does.
    let key_end = split_unescaped(line, ' ', false)[0].len();
    let key = &line[..key_end];
    let rest: Vec<&str> = split_unescaped(line.get(key_end + 1..).unwrap_or(""), ' ', true);
    let mut key_parts = split_unescaped(key, ',', false).into_iter();
    let measurement = key_parts.next().unwrap_or_default();
    if measurement.is_empty() {
        return Err("missing measurement");
    }
    if key_parts.any(|t| !t.contains('=') || t.starts_with('=') || t.ends_with('=')) {
        return Err("missing tag value");
    }
    let (fields, ts) = match rest.as_slice() {
        [f] => (*f, ""),
        [f, t] => (*f, *t),
        _ => return Err("missing fields"),
    };
    if !ts.is_empty() && ts.parse::<i64>().is_err() {
        return Err("bad timestamp");
    }
    let mut out = Vec::new();
    for kv in split_unescaped(fields, ',', true) {
        let parts = split_unescaped(kv, '=', true);
        let (k, v) = match parts.as_slice() {
            [k, v] if !k.is_empty() && !v.is_empty() => (*k, *v),
            _ => return Err("missing fields"),
        };
        let value = if let Some(s) = v.strip_prefix('"') {
            s.strip_suffix('"').ok_or("unbalanced quotes")?.to_owned()
        } else {
            v.trim_end_matches(['i', 'u']).to_owned()
        };
        out.push((k.to_owned(), value));
    }
    Ok(ParsedLine {
        measurement: measurement.to_owned(),
        fields: out,
        timestamp: ts.to_owned(),
    })
}

//! `${VAR}` interpolation in string values, so tokens need not sit in the file.
//!
//! Interpolation runs on the parsed YAML tree, not on the raw text: a variable
//! holding `: ` or a newline can then never change the file's structure.
//! Forms: `${VAR}` (must be set), `${VAR:-default}` (default when unset or
//! empty) and `$$` for a literal `$`.

use serde_norway::Value;

/// Replaces variables in every string scalar of `value`. `lookup` is the
/// environment (injected so tests need not mutate the process env).
pub fn interpolate(
    value: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        Value::String(s) if s.contains('$') => {
            *s = expand(s, lookup).map_err(|e| (path.join("."), e))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                // Paths read like `addresses[1].url`, so the index joins its key.
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                let res = interpolate(item, path, lookup);
                path.pop();
                path.push(last);
                res?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(k.as_str().unwrap_or("?").to_string());
                let res = interpolate(v, path, lookup);
                path.pop();
                res?;
            }
        }
        Value::Tagged(t) => interpolate(&mut t.value, path, lookup)?,
        _ => {}
    }
    Ok(())
}

fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated \"${{\" in {s:?}"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name {name:?}"));
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set"));
                }
            }
            rest = &body[end + 1..];
        } else {
            // A lone `$` (e.g. inside a password) stays as written.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_forms() {
        assert_eq!(expand("${TOKEN}", &env).unwrap(), "s3cret");
        assert_eq!(expand("a-${TOKEN}-b", &env).unwrap(), "a-s3cret-b");
        assert_eq!(expand("${NOPE:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("cost $$5", &env).unwrap(), "cost $5");
        assert_eq!(expand("pa$s", &env).unwrap(), "pa$s");
    }

    #[test]
    fn reports_missing_and_malformed() {
        assert_eq!(
            expand("${NOPE}", &env).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(
            expand("${TOKEN", &env)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            expand("${A B}", &env)
                .unwrap_err()
                .contains("invalid variable")
        );
    }

    #[test]
    fn error_carries_yaml_path() {
        let mut v: Value =
            serde_norway::from_str("addresses:\n  - url: http://a\n  - url: ${NOPE}\n").unwrap();
        let err = interpolate(&mut v, &mut Vec::new(), &env).unwrap_err();
        assert_eq!(err.0, "addresses[1].url");
    }
}

//! The one rule for keeping secrets out of everything the gateway writes down.
//!
//! Requests carry credentials in several places: `p`/`password` and tokens in
//! any parameter (`token`, `auth_token`, `access_token`, …), the
//! `Authorization` header, and passwords inside InfluxQL (`CREATE USER x WITH
//! PASSWORD 'secret'`, `SET PASSWORD FOR x = 'secret'`, even unquoted). The
//! access log, the error log and the dead-letter file all show parts of
//! requests, so all of them go through this module; a new kind of secret is
//! then masked everywhere by changing one function. InfluxQL itself is masked
//! by the query module's tokenizer ([`crate::query::influxql::redact`]), not
//! by a second, weaker pattern here.

use std::borrow::Cow;

/// What replaces a secret value.
pub const MASK: &str = "***";

/// Longest `q` kept in the access log, in bytes (the rest becomes `…`).
pub const LOG_Q_BYTES: usize = 300;

/// Whether a query or form parameter carries a secret: `p`, any name with
/// `password`, `token` or `secret` in it (`auth_token`, `access_token`, …).
pub fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "p"
        || ["password", "token", "secret"]
            .iter()
            .any(|s| k.contains(s))
}

/// InfluxQL with its password literals masked.
pub fn influxql(q: &str) -> String {
    crate::query::influxql::redact(q)
}

/// A URL query string or form body with secret parameters masked and any
/// InfluxQL `q` redacted. Parameter order and encoding are kept, so the result
/// can still be replayed by hand once the credentials are filled back in.
pub fn params(query: &str) -> String {
    params_cut(query, None)
}

/// [`params`] for the access log: `q` is also cut to [`LOG_Q_BYTES`].
pub fn params_for_log(query: &str) -> String {
    params_cut(query, Some(LOG_Q_BYTES))
}

fn params_cut(query: &str, max_q: Option<usize>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v: Cow<'_, str> = if is_secret_param(&k) {
            MASK.into()
        } else if k == "q" {
            let mut q = influxql(&v);
            if let Some(max) = max_q
                && truncate_at_char_boundary(&mut q, max)
            {
                q.push('…');
            }
            q.into()
        } else {
            v
        };
        out.append_pair(&k, &v);
    }
    out.finish()
}

/// A request body as text: a form body (`q=…&p=…`) is masked like a query
/// string; anything else (line protocol, JSON) is shown as is.
pub fn body(content_type: Option<&str>, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        params(&text)
    } else {
        text.into_owned()
    }
}

/// An `Authorization` value: the scheme is kept, the credential masked
/// (`Token ***`, `Basic ***`).
pub fn authorization(value: &str) -> String {
    match value.trim().split_once(' ') {
        Some((scheme, _)) => format!("{scheme} {MASK}"),
        None => MASK.to_string(),
    }
}

/// Cuts `s` to at most `max` bytes without splitting a character; returns
/// whether anything was cut.
pub fn truncate_at_char_boundary(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(s: &str) -> String {
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn secret_params_are_masked_in_order() {
        let m = params("db=x&u=bob&p=s1&password=s2&token=s3&auth_token=s4&Access_Token=s5&rp=r");
        assert_eq!(
            m,
            "db=x&u=bob&p=***&password=***&token=***&auth_token=***&Access_Token=***&rp=r"
        );
    }

    #[test]
    fn influxql_passwords_are_masked_quoted_or_not() {
        for q in [
            "CREATE USER x WITH PASSWORD 'secret'",
            "SET PASSWORD FOR x = 'secret'",
            "CREATE USER x WITH PASSWORD secret",
            "SET PASSWORD FOR x = secret",
            "CREATE USER x WITH PASSWORD \"secret\" WITH ALL PRIVILEGES",
        ] {
            let enc = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("db", "d")
                .append_pair("q", q)
                .finish();
            let m = decoded(&params(&enc));
            assert!(!m.contains("secret"), "{q:?} -> {m}");
            assert!(m.contains("PASSWORD"), "{m}");
        }
        // The user name after FOR stays readable.
        assert_eq!(
            influxql("SET PASSWORD FOR bob = secret"),
            "SET PASSWORD FOR bob = '***'"
        );
    }

    #[test]
    fn log_variant_cuts_long_queries() {
        let long = format!("q=SELECT+{}", "a".repeat(1000));
        let m = decoded(&params_for_log(&long));
        assert!(m.len() < 400 && m.ends_with('…'), "{m}");
        assert!(decoded(&params(&long)).len() > 1000);
    }

    #[test]
    fn form_bodies_are_masked_other_bodies_kept() {
        let form = b"q=CREATE+USER+a+WITH+PASSWORD+%27secret%27&p=pw&u=a";
        let m = body(Some("application/x-www-form-urlencoded"), form);
        assert!(!m.contains("secret") && !m.contains("=pw"), "{m}");
        assert!(m.contains("u=a"));
        let lp = b"m,password=secret f=1";
        assert_eq!(body(None, lp), "m,password=secret f=1");
    }

    #[test]
    fn authorization_keeps_only_the_scheme() {
        assert_eq!(authorization("Token abc"), "Token ***");
        assert_eq!(authorization("Basic Ym9iOnB3"), "Basic ***");
        assert_eq!(authorization("abc"), "***");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "héllo".to_string();
        assert!(truncate_at_char_boundary(&mut s, 2));
        assert_eq!(s, "h");
        assert!(!truncate_at_char_boundary(&mut s, 5));
    }
}

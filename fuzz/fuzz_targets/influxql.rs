//! Fuzz target for the InfluxQL tokenizer/classifier.
//!
//! Why: the classifier sees every `/query` string a client sends, so it must
//! never panic, and its statement split must stay faithful to the input.
//! Invariants checked on arbitrary bytes (decoded lossily as UTF-8):
//! - `classify`, `rewrite_now` and `redact` never panic;
//! - `split`'s statements are non-empty substrings of the query, in order;
//! - a query that does not split is `Unparseable`;
//! - rewriting `now()` never changes the query's class.
#![no_main]

use inmate::query::influxql::{QueryClass, classify, redact, rewrite_now, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let q = String::from_utf8_lossy(data);
    let class = classify(&q).class;
    let _ = redact(&q);
    match split(&q) {
        Ok(statements) => {
            let mut from = 0;
            for s in statements {
                assert!(!s.is_empty());
                let at = q[from..]
                    .find(s)
                    .unwrap_or_else(|| panic!("{s:?} not in order in {q:?}"));
                from += at + s.len();
            }
        }
        Err(_) => assert_eq!(class, QueryClass::Unparseable),
    }
    if let Some(rewritten) = rewrite_now(&q, 1_700_000_000_000_000_000) {
        assert_eq!(classify(&rewritten).class, class, "{q:?} -> {rewritten:?}");
    }
});

//! Differential tests: the fast path (`fast.rs`) against the general path.
//!
//! The fast path may only ever say "valid, timestamped, ends here" when the
//! general path says the same; everything else must fall through. These
//! tests compare whole scans with and without the fast path on generated
//! bodies built from the bytes that matter to the grammar, and on the
//! committed fuzz corpus.

use bytes::Bytes;
use proptest::prelude::*;

use super::fast::{Taken, fast_line, number};
use super::fields::scan_simple_number;
use super::memo::Memo;
use super::scan::{ScanOutput, scan_general_only};
use super::storage::TypeTracker;
use super::{Precision, ScanOptions, scan_with};

pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn options() -> [ScanOptions; 3] {
    [
        ScanOptions::default(),
        ScanOptions::v1(Precision::Second),
        ScanOptions::v2(Precision::Hour),
    ]
}

fn assert_same(input: &[u8], opts: &ScanOptions) {
    let fast: ScanOutput = scan_with(Bytes::copy_from_slice(input), NOW, opts);
    let slow = scan_general_only(Bytes::copy_from_slice(input), NOW, opts);
    assert_same_output(&fast, &slow, input);
}

/// Every field of two scans of `input` agrees.
pub(super) fn assert_same_output(fast: &ScanOutput, slow: &ScanOutput, input: &[u8]) {
    let shown = String::from_utf8_lossy(input);
    assert_eq!(fast.body, slow.body, "body of {shown:?}");
    assert_eq!(fast.points, slow.points, "points of {shown:?}");
    assert_eq!(fast.bad_lines, slow.bad_lines, "bad lines of {shown:?}");
    assert_eq!(fast.errors, slow.errors, "errors of {shown:?}");
    assert_eq!(
        fast.type_conflict, slow.type_conflict,
        "conflict in {shown:?}"
    );
    assert_eq!(fast.dropped, slow.dropped, "drops in {shown:?}");
    assert_eq!(
        fast.drop_reason, slow.drop_reason,
        "drop reason of {shown:?}"
    );
}

/// Grammar-relevant pieces; random concatenations hit the fast path's
/// edges (escapes, quotes, CR, whitespace, long numbers, duplicate tags).
const PIECES: &[&str] = &[
    "cpu",
    "m",
    "host",
    "a",
    "b",
    "time",
    "t",
    "T",
    "true",
    "False",
    "fa",
    ",",
    ",",
    " ",
    " ",
    "=",
    "=",
    "1",
    "0",
    "-",
    ".",
    "5i",
    "1u",
    "i",
    "e3",
    "\"",
    "\\",
    "\n",
    "\n",
    "\r",
    "\t",
    "\0",
    "#",
    "é",
    "us-west",
    "a/b",
    "1.5",
    "-2",
    "1700000000",
    "1700000000000000000",
    "-1700000000000000000",
    "9223372036854775807",
    "9223372036854775806",
    "-9223372036854775806",
    "-9223372036854775807",
    "8999999999999999999",
    "9000000000000000000",
    "99999999999999999999",
    "12345678",
    "0000000000000000001",
    "1234567890123456789012",
    "h=x",
    " v=1 ",
    ",t=1",
    " f=t ",
];

pub(super) fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(PIECES), 0..40)
        .prop_map(|p| p.concat().into_bytes())
}

/// A well-formed fast-path line with optional twists, so the fast path is
/// taken often (random concatenations mostly miss it).
pub(super) fn line() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,6}",
        proptest::collection::vec(("[a-z]{1,4}", "[a-z0-9.-]{1,6}"), 0..4),
        proptest::collection::vec(
            (
                "[a-z_]{1,5}",
                prop_oneof![
                    "-?[0-9]{1,20}(\\.[0-9]{1,6})?",
                    "-?[0-9]{1,20}i",
                    "(t|T|true|TRUE|True|f|F|false|FALSE|False|tRue)"
                ],
            ),
            1..4,
        ),
        prop_oneof![
            Just(String::new()),
            "-?[0-9]{1,21}",
            " [0-9]{1,3}",
            "[0-9]{1,3} ",
            "[0-9]{1,3}\r"
        ],
    )
        .prop_map(|(m, tags, fields, ts)| {
            let mut s = m;
            for (k, v) in tags {
                s.push_str(&format!(",{k}={v}"));
            }
            let f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push(' ');
            s.push_str(&f.join(","));
            if !ts.is_empty() {
                s.push(' ');
                s.push_str(&ts);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bodies_scan_the_same_with_and_without_the_fast_path(input in body()) {
        for opts in options() {
            assert_same(&input, &opts);
        }
    }

    #[test]
    fn telegraf_like_bodies_scan_the_same(
        lines in proptest::collection::vec(line(), 1..6),
        terminated in any::<bool>(),
    ) {
        let mut input = lines.join("\n");
        if terminated {
            input.push('\n');
        }
        for opts in options() {
            assert_same(input.as_bytes(), &opts);
        }
    }

    /// The word-at-a-time number scan accepts a subset of the byte-wise
    /// one, with the same end.
    #[test]
    fn word_number_scan_agrees_with_the_bytewise_one(
        text in "[-0-9.i, a\n]{0,24}",
    ) {
        let buf = text.as_bytes();
        // The byte-wise scan sees the line, cut at its newline.
        let line = &buf[..text.find('\n').unwrap_or(buf.len())];
        if let Some((end, _)) = number(buf, 0) {
            prop_assert_eq!(Some(end), scan_simple_number(line, 0), "{:?}", text);
        }
    }

    /// A few lines repeated (so the memos hit), some with one byte changed.
    #[test]
    fn bodies_repeating_a_few_lines_scan_the_same(
        pool in proptest::collection::vec(line(), 1..4),
        picks in proptest::collection::vec((0usize..4, any::<Option<(usize, usize)>>()), 1..12),
    ) {
        let mut input = Vec::new();
        for (k, twist) in picks {
            let mut l = pool[k % pool.len()].clone().into_bytes();
            if let Some((at, b)) = twist {
                let at = at % l.len();
                l[at] = TWISTS[b % TWISTS.len()];
            }
            input.extend_from_slice(&l);
            input.push(b'\n');
        }
        for opts in options() {
            assert_same(&input, &opts);
        }
    }
}

/// Bytes that matter to the grammar or to the memos, for one-byte changes.
const TWISTS: &[u8] = b" ,=\\\"\n\r\t#x0i-.";

#[test]
fn fast_path_takes_the_common_line() {
    let line = b"cpu,host=server01,region=us-west usage=0.5,n=42i,ok=true 1700000000000000000\n";
    let mut tags = Vec::new();
    let end = fast_line(
        line,
        0,
        &ScanOptions::default(),
        &mut tags,
        &mut TypeTracker::new(),
        &mut Memo::new(),
    );
    let timed = |end| Some(Taken { end, stamp: false });
    assert_eq!(end, timed(line.len() - 1));
    // Unterminated at the end of a body.
    let end = fast_line(
        &line[..line.len() - 1],
        0,
        &ScanOptions::default(),
        &mut tags,
        &mut TypeTracker::new(),
        &mut Memo::new(),
    );
    assert_eq!(end, timed(line.len() - 1));
    // Without a timestamp, ended by the newline or by the body.
    for untimed in ["cpu v=1,ok=true\n", "cpu v=1,ok=true"] {
        let end = fast_line(
            untimed.as_bytes(),
            0,
            &ScanOptions::default(),
            &mut tags,
            &mut TypeTracker::new(),
            &mut Memo::new(),
        );
        let stamp = true;
        assert_eq!(end, Some(Taken { end: 15, stamp }), "{untimed:?}");
    }
}

#[test]
fn fast_path_declines_what_it_does_not_handle() {
    let opts = ScanOptions::default();
    let mut tags = Vec::new();
    for line in [
        "cpu v=1 ",                       // a space, no timestamp
        "cpu v=1\r",                      // CR, no timestamp
        "cpu v=1 5\r\n",                  // CR
        "cpu,a=1,a=2 v=1 5\n",            // duplicate tags
        "cpu s=\"x\" 5\n",                // string
        "c\\ pu v=1 5\n",                 // escape
        " cpu v=1 5\n",                   // leading whitespace
        "cpu v=1e3 5\n",                  // exponent
        "cpu v=1 12345678901234567890\n", // 20 digits
        "cpu v=1 99999999999\n",          // fine in ns …
    ] {
        let got = fast_line(
            line.as_bytes(),
            0,
            &opts,
            &mut tags,
            &mut TypeTracker::new(),
            &mut Memo::new(),
        );
        if line.starts_with("cpu v=1 9999") {
            assert!(got.is_some(), "{line:?}");
            // … but out of range in hours.
            let hours = ScanOptions::v2(Precision::Hour);
            assert_eq!(
                fast_line(
                    line.as_bytes(),
                    0,
                    &hours,
                    &mut tags,
                    &mut TypeTracker::new(),
                    &mut Memo::new()
                ),
                None
            );
        } else {
            assert_eq!(got, None, "{line:?}");
        }
    }
}

/// Timestamps at the edges of InfluxDB's range, where the fast path stops
/// skipping the parse (19 digits from 9 on) or the range check bites.
#[test]
fn timestamps_at_the_range_edges_scan_the_same() {
    let edges = [
        "8999999999999999999",
        "9000000000000000000",
        "9223372036854775806",
        "9223372036854775807",
        "9999999999999999999",
        "-8999999999999999999",
        "-9223372036854775806",
        "-9223372036854775807",
        "-9223372036854775808",
        "1",
        "-1",
    ];
    for ts in edges {
        let line = format!("cpu,host=a v=1 {ts}\n");
        for opts in options() {
            assert_same(line.as_bytes(), &opts);
        }
    }
    // And the fast path does decide them: the answers are the range's.
    let points = |ts: &str| {
        scan_with(
            Bytes::from(format!("m v=1 {ts}\n")),
            NOW,
            &ScanOptions::default(),
        )
        .points
    };
    assert_eq!(points("9223372036854775806"), 1);
    assert_eq!(points("9223372036854775807"), 0);
    assert_eq!(points("-9223372036854775806"), 1);
    assert_eq!(points("-9223372036854775807"), 0);
}

#[test]
fn fuzz_corpus_scans_the_same_with_and_without_the_fast_path() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/lineproto");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for opts in options() {
            assert_same(&data, &opts);
        }
        n += 1;
    }
    assert!(n >= 5);
}

/// Lines the memos learn from; each adversarial body below starts with
/// them so the line under test meets a warm memo.
const WARM: &str = "cpu,host=a,region=us v=1,n=2i,ok=true 1700000000000000000\n\
                    cpu v=1.5 1700000000000000001\n\
                    mem,host=a used=3i,free=4i 1700000000000000002\n";

#[test]
fn memo_adversarial_bodies_scan_the_same() {
    for tail in [
        // Escaped space/comma right where a memo key ends.
        "cpu,host=a,region=us\\ x v=1,n=2i,ok=true 5\n",
        "cpu,host=a,region=us\\,x v=1,n=2i,ok=true 5\n",
        "cpu\\ x v=1.5 5\n",
        "cpu\\,x v=1.5 5\n",
        // A memo key that is a prefix of this line's key, and the reverse.
        "cpu,host=a,region=usa v=1,n=2i,ok=true 5\n",
        "cpu,host=a v=1 5\n",
        "cpux v=1.5 5\n",
        "cp v=1.5 5\n",
        // Field type conflicts across lines, same series and another one.
        "cpu,host=a,region=us v=1i,n=2i,ok=true 5\n",
        "cpu,host=a,region=us v=1,n=2,ok=true 5\n",
        "cpu v=true 5\n",
        "mem,host=a used=3,free=4i 5\n",
        "cpu,host=b v=1,n=2i,ok=1 5\n",
        // Duplicate tags and `time` keys after a memoized series.
        "cpu,host=a,region=us,host=b v=1 5\n",
        "cpu,host=a,region=us,time=x v=1 5\n",
        "cpu,host=a,region=us time=1 5\n",
        "cpu,host=a,region=us v=1,time=1 5\n",
        "cpu,host=a,region=us v=1,n=2i,time=1 5\n",
        // Same fields, different order or count, or a key extending one.
        "cpu,host=a,region=us n=2i,v=1,ok=true 5\n",
        "cpu,host=a,region=us v=1,n=2i 5\n",
        "cpu,host=a,region=us v=1,n=2i,ok=true,x=1 5\n",
        "cpu,host=a,region=us vv=1,n=2i,ok=true 5\n",
        "cpu,host=a,region=us v=1,nn=2i,ok=true 5\n",
        "cpu,host=a,region=us v=1,n=2i,ok=true\n",
        "cpu,host=a,region=us v=1,n=2i,ok=true 5",
        "cpu,host=a,region=us v=1,n=\"2\",ok=true 5\n",
        "cpu,host=a,region=us v=1,n=2i,ok=true 99999999999999999999\n",
        "cpu,host=a,region=us v=1,n=2i,ok=true 5\r\n",
        "cpu,host=a,region=us  v=1,n=2i,ok=true 5\n",
        " cpu,host=a,region=us v=1,n=2i,ok=true 5\n",
    ] {
        let input = format!("{WARM}{tail}{WARM}");
        for opts in options() {
            assert_same(input.as_bytes(), &opts);
        }
    }
}

/// Every line of `WARM`, memoized, then the same line with one byte
/// replaced by each grammar-relevant byte, at every position.
#[test]
fn lines_one_byte_off_a_memoized_one_scan_the_same() {
    let opts = ScanOptions::default();
    one_byte_off(WARM, TWISTS, |input| assert_same(input, &opts));
}

/// Calls `check` on bodies made of `warm`, then one of its lines with one
/// byte replaced by one of `bytes` (every line, position and byte), then
/// `warm` again: the changed line meets memos that know the original.
pub(super) fn one_byte_off(warm: &str, bytes: &[u8], mut check: impl FnMut(&[u8])) {
    for line in warm.lines() {
        for pos in 0..line.len() {
            for &b in bytes {
                let mut off = line.as_bytes().to_vec();
                off[pos] = b;
                let mut input = warm.as_bytes().to_vec();
                input.extend_from_slice(&off);
                input.push(b'\n');
                input.extend_from_slice(warm.as_bytes());
                check(&input);
            }
        }
    }
}

//! Differential tests: a body scanned in parts on several threads
//! (`split.rs`) against one scan of the whole body.
//!
//! The merge must give the very same [`ScanOutput`], wherever the cuts fall:
//! inside quoted strings, between a change and a later comment, between two
//! lines whose field types conflict, among more errors than are stored.

use bytes::Bytes;
use proptest::prelude::*;

use super::scan::scan_part;
use super::split::scan_in_parts;
use super::tests_fast::{NOW, assert_same_output, body, line, options};
use super::{MAX_STORED_ERRORS, ScanOptions, scan_split, scan_with};

fn assert_parts_same(input: &[u8], parts: usize, opts: &ScanOptions) {
    let whole = scan_with(Bytes::copy_from_slice(input), NOW, opts);
    let split = scan_in_parts(Bytes::copy_from_slice(input), NOW, opts, parts);
    assert_same_output(&split, &whole, input);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    /// Grammar pieces joined at random: quotes, backslashes, CR, comments
    /// and bad lines land on every side of the cuts.
    #[test]
    fn random_bodies_scan_the_same_in_parts(
        pieces in proptest::collection::vec(body(), 1..6),
        parts in 2usize..6,
    ) {
        let input = pieces.join(&b"\n"[..]);
        for opts in options() {
            assert_parts_same(&input, parts, &opts);
        }
    }

    /// Mostly valid lines, some untimed or twisted, with comments and
    /// blank lines between them.
    #[test]
    fn telegraf_like_bodies_scan_the_same_in_parts(
        lines in proptest::collection::vec(
            prop_oneof![
                6 => line(),
                1 => Just("# a comment".to_string()),
                1 => Just(String::new()),
                1 => Just("m f=\"two\nlines\" 1".to_string()),
            ],
            1..24,
        ),
        terminated in any::<bool>(),
        parts in 2usize..8,
    ) {
        let mut input = lines.join("\n");
        if terminated {
            input.push('\n');
        }
        for opts in options() {
            assert_parts_same(input.as_bytes(), parts, &opts);
        }
    }
}

/// `n` valid timestamped lines of measurement `m` with field `f` = `v`.
fn lines(m: &str, v: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{m},host=h{i} f={v} {}\n", 1000 + i))
        .collect()
}

#[test]
fn an_unchanged_body_comes_back_as_it_is() {
    let input = Bytes::from(lines("cpu", "1.5", 400));
    let out = scan_in_parts(input.clone(), NOW, &ScanOptions::default(), 4);
    assert_eq!(out.points, 400);
    assert_eq!(
        out.body.as_ptr(),
        input.as_ptr(),
        "no copy of an unchanged body"
    );
    assert_eq!(out.body.len(), input.len());
}

#[test]
fn a_cut_inside_a_quoted_newline_is_caught() {
    // The quoted string holds newlines, so a cut between them would split
    // one line in two; the part before such a cut does not end cleanly.
    let quoted = format!("m s=\"{}\" 1\n", "x\n".repeat(200));
    let part = scan_part(
        Bytes::from(quoted[..quoted.len() / 2 + 1].to_string()),
        NOW,
        &ScanOptions::default(),
        true,
        false,
    );
    assert!(!part.clean_end);
    let input = format!("{}{quoted}{}", lines("a", "1", 50), lines("b", "2", 50));
    for parts in 2..6 {
        assert_parts_same(input.as_bytes(), parts, &ScanOptions::default());
    }
    let out = scan_in_parts(Bytes::from(input), NOW, &ScanOptions::default(), 3);
    assert_eq!(out.points, 101);
}

#[test]
fn comments_after_a_change_are_left_out_as_one_scan_does() {
    // An untimed line early on forces a rebuilt body; the comments in later
    // parts must then be left out, as one scan leaves them out.
    let mut input = String::from("cpu f=1\n");
    input.push_str(&lines("cpu", "1", 100));
    for _ in 0..50 {
        input.push_str("# comment\n\n");
        input.push_str(&lines("cpu", "2", 2));
    }
    let out = scan_in_parts(Bytes::from(input.clone()), NOW, &ScanOptions::default(), 4);
    assert!(!String::from_utf8_lossy(&out.body).contains('#'));
    for parts in 2..8 {
        assert_parts_same(input.as_bytes(), parts, &ScanOptions::default());
    }
}

#[test]
fn field_types_conflicting_across_parts_reject_the_body() {
    let input = format!("{}{}", lines("cpu", "1i", 200), lines("cpu", "1.5", 200));
    let out = scan_in_parts(
        Bytes::from(input.clone()),
        NOW,
        &ScanOptions::v1(super::Precision::Nanosecond),
        2,
    );
    assert!(out.type_conflict);
    assert_eq!(out.points, 0);
    assert!(out.body.is_empty());
    for parts in 2..6 {
        for opts in options() {
            assert_parts_same(input.as_bytes(), parts, &opts);
        }
    }
    // Different measurements do not conflict.
    let input = format!("{}{}", lines("cpu", "1i", 200), lines("mem", "1.5", 200));
    let out = scan_in_parts(Bytes::from(input), NOW, &ScanOptions::default(), 2);
    assert!(!out.type_conflict);
    assert_eq!(out.points, 400);
}

#[test]
fn errors_and_drop_reasons_come_in_input_order() {
    let mut input = String::new();
    for i in 0..3 * MAX_STORED_ERRORS {
        input.push_str(&format!("bad{i}\n"));
        input.push_str(&lines("cpu", "1", 1));
    }
    // A field drop first, a tag drop later: the tag drop is the reason.
    input.push_str("cpu time=1 5\n");
    input.push_str(&lines("cpu", "1", 300));
    input.push_str("cpu,time=x f=1 5\n");
    let out = scan_in_parts(Bytes::from(input.clone()), NOW, &ScanOptions::default(), 5);
    assert_eq!(out.bad_lines, 3 * MAX_STORED_ERRORS);
    assert_eq!(out.errors.len(), MAX_STORED_ERRORS);
    assert_eq!(out.errors[0].line, "bad0");
    assert_eq!(out.dropped, 2);
    for parts in 2..8 {
        assert_parts_same(input.as_bytes(), parts, &ScanOptions::default());
    }
    // Two drops of one kind in different parts: the first names the reason.
    let input = format!("early time=1 5\n{}late time=1 5\n", lines("cpu", "1", 300));
    let out = scan_in_parts(Bytes::from(input.clone()), NOW, &ScanOptions::default(), 3);
    assert!(
        out.drop_reason
            .as_deref()
            .is_some_and(|r| r.contains("early")),
        "{:?}",
        out.drop_reason
    );
    assert_parts_same(input.as_bytes(), 3, &ScanOptions::default());
}

#[test]
fn large_bodies_split_by_size() {
    let input = Bytes::from(lines("cpu", "0.5", 40_000));
    assert!(input.len() > 2 * super::PART_MIN);
    let whole = scan_with(input.clone(), NOW, &ScanOptions::default());
    let split = scan_split(input.clone(), NOW, &ScanOptions::default(), 4);
    assert_same_output(&split, &whole, b"40k lines");
    assert_eq!(split.body.as_ptr(), input.as_ptr());
    // A body too small for two parts is scanned in one piece.
    let small = Bytes::from(lines("cpu", "0.5", 10));
    assert_eq!(
        scan_split(small, NOW, &ScanOptions::default(), 4).points,
        10
    );
}

//! Differential tests: a body scanned in parts on several threads
//! (`split.rs`) against one scan of the whole body.
//!
//! The merge must give the very same [`ScanOutput`], wherever the cuts fall:
//! inside quoted strings, between a change and a later comment, between two
//! lines whose field types conflict, among more errors than are stored.

use bytes::Bytes;
use proptest::prelude::*;

use super::scan::{PartMode, scan_part};
use super::split::{scan_chunks_keeping, scan_in_parts};
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
        PartMode::Keep,
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

/// `input` cut at `cuts` (positions, any order) into chunks.
fn chunked(input: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    at.push(0);
    at.push(input.len());
    at.sort_unstable();
    at.windows(2)
        .map(|w| Bytes::copy_from_slice(&input[w[0]..w[1]]))
        .collect()
}

/// A body stored as chunk pieces must be exactly what one scan would
/// store: the input unchanged, the same points; and pieces are only
/// offered when one scan changes nothing.
fn assert_chunks_agree(input: &[u8], cuts: &[usize], keep_min: usize, opts: &ScanOptions) {
    let chunks = chunked(input, cuts);
    let whole = scan_with(Bytes::copy_from_slice(input), NOW, opts);
    let shown = String::from_utf8_lossy(input);
    match scan_chunks_keeping(&chunks, NOW, opts, keep_min) {
        Some(p) => {
            let joined: Vec<u8> = p.pieces.iter().flat_map(|(b, _)| b.to_vec()).collect();
            assert_eq!(joined, input, "pieces of {shown:?}");
            assert_eq!(&whole.body[..], input, "one scan changes {shown:?}");
            assert_eq!(p.out.points, whole.points, "points of {shown:?}");
            let per_piece: usize = p.pieces.iter().map(|(_, n)| n).sum();
            assert_eq!(per_piece, whole.points, "piece points of {shown:?}");
            for (b, n) in &p.pieces {
                assert!(b.ends_with(b"\n"), "piece of {shown:?} ends mid-line");
                assert_eq!(scan_with(b.clone(), NOW, opts).points, *n);
            }
        }
        None => {
            // Only where one scan changes the body (or a quoted newline, a
            // possible type conflict, no final newline or no point at all
            // asks for one scan).
            let plain = !input.contains(&b'"') && !input.contains(&b'\\');
            let complete = input.ends_with(b"\n");
            if plain && complete && whole.points > 0 && !whole.type_conflict {
                assert_ne!(&whole.body[..], input, "pieces refused for {shown:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn chunked_bodies_store_as_one_scan_would(
        lines in proptest::collection::vec(
            prop_oneof![
                8 => line(),
                1 => Just("# a comment".to_string()),
                1 => Just("m s=\"a\nb\" 1".to_string()),
            ],
            1..16,
        ),
        terminated in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        keep_min in prop_oneof![Just(0usize), Just(8), Just(1 << 20)],
    ) {
        let mut input = lines.join("\n");
        if terminated {
            input.push('\n');
        }
        for opts in options() {
            assert_chunks_agree(input.as_bytes(), &cuts, keep_min, &opts);
        }
    }

    #[test]
    fn random_chunked_bodies_store_as_one_scan_would(
        input in body(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        for opts in options() {
            assert_chunks_agree(&input, &cuts, 0, &opts);
        }
    }
}

#[test]
fn big_chunks_are_kept_and_small_ones_copied() {
    let input = Bytes::from(lines("cpu", "0.5", 3000));
    let cut = input.len() / 3;
    let chunks = vec![
        input.slice(..cut),
        input.slice(cut..cut + 10),
        input.slice(cut + 10..),
    ];
    let p = scan_chunks_keeping(&chunks, NOW, &ScanOptions::default(), 1000).unwrap();
    assert_eq!(p.out.points, 3000);
    let inside = |b: &Bytes| {
        let (start, end) = (
            input.as_ptr() as usize,
            input.as_ptr() as usize + input.len(),
        );
        (start..end).contains(&(b.as_ptr() as usize))
    };
    // The first chunk up to its last newline is stored without a copy;
    // the 10-byte chunk and the lines around it are copied.
    assert!(inside(&p.pieces[0].0));
    assert_eq!(p.pieces[0].0.as_ptr(), input.as_ptr());
    assert!(p.pieces.iter().any(|(b, _)| !inside(b)));
    let joined: Vec<u8> = p.pieces.iter().flat_map(|(b, _)| b.to_vec()).collect();
    assert_eq!(joined, input);
    // Untimed lines, a bad line, a type conflict, no final newline: one scan.
    for bad in ["cpu f=1\n", "cpu f=\n", "cpu,host=h0 f=1i 5\n", "cpu f=1 5"] {
        let mut body = lines("cpu", "0.5", 50).into_bytes();
        body.extend_from_slice(bad.as_bytes());
        let chunks = chunked(&body, &[body.len() / 2]);
        assert!(
            scan_chunks_keeping(&chunks, NOW, &ScanOptions::default(), 0).is_none(),
            "{bad:?}"
        );
    }
}

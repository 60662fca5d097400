//! Batch-level behaviour: output body, zero copy, stamping, error messages,
//! body decoding.

use bytes::Bytes;

use super::*;

const NOW: i64 = 1_700_000_000_000_000_000;

fn run(input: &str) -> ScanOutput {
    scan(Bytes::from(input.to_string()), NOW)
}

fn body(out: &ScanOutput) -> &str {
    std::str::from_utf8(&out.body).unwrap()
}

#[test]
fn valid_timestamped_body_is_returned_without_copy() {
    let input = Bytes::from_static(
        b"cpu,host=a usage=0.5 1700000000000000000\n# note\n\nmem free=1i 1700000000000000001\n",
    );
    let out = scan(input.clone(), NOW);
    assert_eq!(out.points, 2);
    assert_eq!(out.bad_lines, 0);
    assert!(out.errors.is_empty());
    assert_eq!(out.body, input);
    assert_eq!(out.body.as_ptr(), input.as_ptr(), "expected zero copy");
    assert_eq!(out.v1_error(), None);
    assert_eq!(out.v2_error(), None);
}

#[test]
fn missing_timestamps_get_the_receive_time() {
    let out = run("cpu value=1\ncpu value=2 5\ncpu value=3 \n");
    assert_eq!(out.points, 3);
    assert_eq!(
        body(&out),
        format!("cpu value=1 {NOW}\ncpu value=2 5\ncpu value=3  {NOW}\n")
    );
}

#[test]
fn last_line_gets_a_newline() {
    let out = run("cpu value=1 5");
    assert_eq!(body(&out), "cpu value=1 5\n");
}

#[test]
fn crlf_is_accepted_and_stripped() {
    let out = run("cpu value=1 5\r\ncpu value=2\r\n\r\n# c\r\n");
    assert_eq!(out.bad_lines, 0, "{:?}", out.errors);
    assert_eq!(body(&out), format!("cpu value=1 5\ncpu value=2 {NOW}\n"));
}

#[test]
fn bad_lines_are_dropped_and_reported_in_order() {
    let out = run("cpu value=1 1\nbad\ncpu value=2 2\ncpu,host value=1\n");
    assert_eq!(out.points, 2);
    assert_eq!(out.bad_lines, 2);
    assert_eq!(body(&out), "cpu value=1 1\ncpu value=2 2\n");
    assert_eq!(
        out.errors,
        vec![
            LineError {
                line: "bad".into(),
                reason: "missing fields".into()
            },
            LineError {
                line: "cpu,host value=1".into(),
                reason: "missing tag value".into()
            },
        ]
    );
    assert_eq!(
        out.v1_error().unwrap(),
        "partial write: unable to parse 'bad': missing fields\n\
         unable to parse 'cpu,host value=1': missing tag value dropped=0"
    );
    assert_eq!(
        out.v2_error().unwrap(),
        "unable to parse 'bad': missing fields\n\
         unable to parse 'cpu,host value=1': missing tag value"
    );
}

#[test]
fn all_bad_is_not_a_partial_write() {
    let out = run("  cpu\nmem value=\n");
    assert_eq!(out.points, 0);
    assert!(out.body.is_empty());
    // Leading whitespace is not part of the quoted line, as in InfluxDB.
    assert_eq!(
        out.v1_error().unwrap(),
        "unable to parse 'cpu': missing fields\nunable to parse 'mem value=': missing field value"
    );
}

#[test]
fn stored_errors_are_capped_but_counted() {
    let input = "x\n".repeat(MAX_STORED_ERRORS + 20);
    let out = run(&input);
    assert_eq!(out.bad_lines, MAX_STORED_ERRORS + 20);
    assert_eq!(out.errors.len(), MAX_STORED_ERRORS);
}

#[test]
fn empty_comment_and_blank_bodies_have_no_points_and_no_error() {
    for input in ["", "\n\n", "# only a comment\n", "   \n\t\n"] {
        let out = run(input);
        assert_eq!((out.points, out.bad_lines), (0, 0), "{input:?}");
        assert!(out.body.is_empty());
        assert_eq!(out.v1_error(), None);
    }
}

#[test]
fn quoted_newline_keeps_the_line_together() {
    let out = run("cpu s=\"a\nb\" 1\ncpu s=\"c\"\n");
    assert_eq!(out.points, 2, "{:?}", out.errors);
    assert_eq!(body(&out), format!("cpu s=\"a\nb\" 1\ncpu s=\"c\" {NOW}\n"));
}

#[test]
fn error_text_quotes_multi_line_blocks_whole() {
    let out = run("cpu s=\"a\nb\" x\n");
    assert_eq!(out.errors[0].line, "cpu s=\"a\nb\" x");
    assert_eq!(out.errors[0].reason, "bad timestamp");
}

#[test]
fn dangling_backslash_without_timestamp_is_rejected() {
    let out = run("cpu s=\"a\"\\");
    assert_eq!(out.bad_lines, 1);
    assert_eq!(out.errors[0].reason, "invalid field format");
    // With a trailing pair it is fine, and the stamp survives a re-scan.
    let out = run("cpu s=\"a\"\\\\");
    assert_eq!(out.points, 1);
    let again = scan(out.body.clone(), 7);
    assert_eq!(again.points, 1);
    assert_eq!(again.body, out.body);
}

#[test]
fn rebuilt_bodies_rescan_identically() {
    let input = "a v=1\n b,t=x v=\"q\\\"\" 3\nbad line here\n#c\nc v=t\r\nd v=1 2";
    let out = run(input);
    let again = scan(out.body.clone(), 9);
    assert_eq!(again.points, out.points);
    assert_eq!(again.bad_lines, 0);
    assert_eq!(again.body, out.body);
}

#[test]
fn invalid_utf8_is_reported_lossily() {
    let out = scan(Bytes::from_static(b"cp\xffu\n"), NOW);
    assert_eq!(out.errors[0].line, "cp\u{fffd}u");
}

#[test]
fn precision_parsing_and_truncation() {
    assert_eq!(Precision::parse_v1(""), Some(Precision::Nanosecond));
    assert_eq!(Precision::parse_v1("n"), Some(Precision::Nanosecond));
    assert_eq!(Precision::parse_v1("ns"), Some(Precision::Nanosecond));
    assert_eq!(Precision::parse_v1("u"), Some(Precision::Microsecond));
    assert_eq!(Precision::parse_v1("us"), None);
    assert_eq!(Precision::parse_v1("m"), Some(Precision::Minute));
    assert_eq!(Precision::parse_v1("h"), Some(Precision::Hour));
    assert_eq!(Precision::parse_v1("x"), None);
    assert_eq!(Precision::parse_v2("us"), Some(Precision::Microsecond));
    assert_eq!(Precision::parse_v2("u"), None);
    assert_eq!(Precision::parse_v2("m"), None);
    assert_eq!(Precision::parse_v2(""), Some(Precision::Nanosecond));
    for p in [
        Precision::Nanosecond,
        Precision::Microsecond,
        Precision::Millisecond,
        Precision::Second,
        Precision::Minute,
        Precision::Hour,
    ] {
        assert_eq!(Precision::parse_v1(p.as_v1_param()), Some(p));
    }
    assert_eq!(Precision::Microsecond.as_v2_param(), "us");
    let t = 1_700_000_123_456_789_012;
    assert_eq!(Precision::Nanosecond.from_unix_nanos(t), t);
    assert_eq!(
        Precision::Microsecond.from_unix_nanos(t),
        1_700_000_123_456_789
    );
    assert_eq!(Precision::Second.from_unix_nanos(t), 1_700_000_123);
    assert_eq!(Precision::Minute.from_unix_nanos(t), 28_333_335);
    assert_eq!(Precision::Hour.from_unix_nanos(t), 472_222);
    assert_eq!(Precision::Second.from_unix_nanos(-1), -1);
    assert!(Precision::Second.now() > 1_600_000_000);
}

#[test]
fn stamp_uses_the_given_precision_value() {
    let opts = ScanOptions::v1(Precision::Second);
    let out = scan_with(Bytes::from_static(b"cpu v=1\n"), 1_700_000_000, &opts);
    assert_eq!(&out.body[..], b"cpu v=1 1700000000\n");
}

#[test]
fn decode_identity_and_limits() {
    let b = Bytes::from_static(b"cpu v=1\n");
    assert_eq!(decode_body(b.clone(), None, 0).unwrap(), b);
    assert_eq!(decode_body(b.clone(), Some("identity"), 8).unwrap(), b);
    assert_eq!(
        decode_body(b.clone(), Some(""), 7),
        Err(BodyError::TooLarge)
    );
    assert!(matches!(
        decode_body(b, Some("br"), 0),
        Err(BodyError::UnsupportedEncoding(e)) if e == "br"
    ));
}

#[test]
fn decode_gzip_round_trip_and_cap() {
    let plain = "cpu,host=a v=1 1\n".repeat(1000);
    let z = Bytes::from(gzip(plain.as_bytes()));
    assert!(z.len() < plain.len() / 5);
    for enc in ["gzip", "x-gzip", "GZIP"] {
        assert_eq!(
            &decode_body(z.clone(), Some(enc), 0).unwrap()[..],
            plain.as_bytes()
        );
    }
    let exact = decode_body(z.clone(), Some("gzip"), plain.len()).unwrap();
    assert_eq!(exact.len(), plain.len());
    assert_eq!(
        decode_body(z, Some("gzip"), plain.len() - 1),
        Err(BodyError::TooLarge)
    );
}

#[test]
fn gzip_bomb_is_refused_without_inflating_it() {
    let zeros = vec![0u8; 64 << 20];
    let bomb = Bytes::from(gzip(&zeros));
    assert!(bomb.len() < 1 << 20);
    assert_eq!(
        decode_body(bomb, Some("gzip"), 1 << 20),
        Err(BodyError::TooLarge)
    );
}

#[test]
fn corrupt_and_truncated_gzip() {
    let z = gzip(b"cpu v=1\n");
    let truncated = Bytes::copy_from_slice(&z[..z.len() - 6]);
    assert!(matches!(
        decode_body(truncated, Some("gzip"), 0),
        Err(BodyError::Corrupt(_))
    ));
    let garbage = Bytes::from_static(b"definitely not gzip");
    assert!(matches!(
        decode_body(garbage, Some("gzip"), 0),
        Err(BodyError::Corrupt(_))
    ));
    assert!(matches!(
        decode_body(Bytes::new(), Some("gzip"), 0),
        Err(BodyError::Corrupt(_))
    ));
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let mut z = gzip(b"a v=1 1\n");
    z.extend(gzip(b"b v=2 2\n"));
    let out = decode_body(Bytes::from(z), Some("gzip"), 0).unwrap();
    assert_eq!(&out[..], b"a v=1 1\nb v=2 2\n");
}

#[test]
fn untimestamped_block_continuing_past_a_quoted_newline_is_rejected() {
    // The leading space makes `scanLine` track quotes from the start, so the
    // newline is inside the block; the parser stops the timestamp at it.
    let out = run(" a=\"b c=1 \nz");
    assert_eq!((out.points, out.bad_lines), (0, 1));
    assert_eq!(out.errors[0].reason, "point is invalid");
    let out = run(" a=\"b c=1 5\nz");
    assert_eq!(out.errors[0].reason, "point is invalid");
}

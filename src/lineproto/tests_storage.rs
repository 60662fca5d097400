//! Storage-level rejections (`storage.rs`), with the texts and partial-write
//! behaviour confirmed against a real `influxd` 1.6 (`/write`, one fresh
//! database per case).

use bytes::Bytes;

use super::*;

const NOW: i64 = 1_700_000_000_000_000_000;

fn run(input: &str) -> ScanOutput {
    scan_with(
        Bytes::from(input.to_string()),
        NOW,
        &ScanOptions::v1(Precision::Nanosecond),
    )
}

#[test]
fn influxd_1_6_answers() {
    // (body, 1.x error or None for 204, body the gateway logs)
    let table: &[(&str, Option<&str>, &str)] = &[
        (
            "m time=1 1\n",
            Some(
                r#"partial write: invalid field name: input field "time" on measurement "m" is invalid dropped=1"#,
            ),
            "",
        ),
        (
            "m,time=a f=1 1\n",
            Some(
                r#"partial write: invalid tag key: input tag "time" on measurement "m" is invalid dropped=1"#,
            ),
            "",
        ),
        ("m f=1i,f=2 1\n", Some("field type conflict"), ""),
        ("m f=1i,f=1i 1\n", None, "m f=1i,f=1i 1\n"),
        ("m f=1,f=2 1\n", None, "m f=1,f=2 1\n"),
        ("m f=1i 1\nm f=1.5 2\n", Some("field type conflict"), ""),
        (
            "m f=1i 1\nm g=2 2\nm f=\"s\" 4\n",
            Some("field type conflict"),
            "",
        ),
        ("m f=1i,f=2 1\nm g=1 2\n", Some("field type conflict"), ""),
        (
            "bad\nm f=1i 1\nm f=1.5 2\n",
            Some("field type conflict"),
            "",
        ),
        (
            "m time=1 1\nm f=1i 2\nm f=1.5 3\n",
            Some("field type conflict"),
            "",
        ),
        ("m f=1i 1\nm f=1i 2\n", None, "m f=1i 1\nm f=1i 2\n"),
        ("m f=1i 1\nm2 f=1.5 2\n", None, "m f=1i 1\nm2 f=1.5 2\n"),
        (
            "m\\=x f=1i 1\nm=x f=1.5 2\n",
            Some("field type conflict"),
            "",
        ),
        ("m f=t 1\nm f=true 2\n", None, "m f=t 1\nm f=true 2\n"),
        // The node strips a `time` field next to others and keeps the point.
        ("m time=1,f=2 1\n", None, "m time=1,f=2 1\n"),
        (
            "m time=1i,f=1 1\nm time=1.5,f=2 2\n",
            None,
            "m time=1i,f=1 1\nm time=1.5,f=2 2\n",
        ),
        (
            "m f=1 1\nm time=1 2\n",
            Some(
                r#"partial write: invalid field name: input field "time" on measurement "m" is invalid dropped=1"#,
            ),
            "m f=1 1\n",
        ),
        // A tag drop's reason wins; every drop is counted.
        (
            "a time=1 1\nb,time=y f=1 1\nc f=1 1\n",
            Some(
                r#"partial write: invalid tag key: input tag "time" on measurement "b" is invalid dropped=2"#,
            ),
            "c f=1 1\n",
        ),
        (
            "a time=1 1\nb time=1 1\n",
            Some(
                r#"partial write: invalid field name: input field "time" on measurement "a" is invalid dropped=2"#,
            ),
            "",
        ),
        // The storage error replaces the parse errors in 1.x's answer.
        (
            "bad\nm time=1 1\nm f=1 2\n",
            Some(
                r#"partial write: invalid field name: input field "time" on measurement "m" is invalid dropped=1"#,
            ),
            "m f=1 2\n",
        ),
        (
            "m\\ x,time=y f=1 1\n",
            Some(
                r#"partial write: invalid tag key: input tag "time" on measurement "m x" is invalid dropped=1"#,
            ),
            "",
        ),
        (
            "m\\=x\\\"y\\\\z\\a time=1 1\n",
            Some(
                r#"partial write: invalid field name: input field "time" on measurement "m=x"y\\z\a" is invalid dropped=1"#,
            ),
            "",
        ),
        // Near misses are ordinary keys.
        (
            "m Time=1 1\nm,ti\\me=a f=1 1\n",
            None,
            "m Time=1 1\nm,ti\\me=a f=1 1\n",
        ),
        // A conflict with a string field goes through the general path.
        ("m s=\"a\" 1\nm s=1 2\n", Some("field type conflict"), ""),
    ];
    for (input, want, kept) in table {
        let out = run(input);
        assert_eq!(out.v1_error().as_deref(), *want, "{input:?}");
        assert_eq!(std::str::from_utf8(&out.body).unwrap(), *kept, "{input:?}");
        assert_eq!(out.points, kept.lines().count(), "{input:?}");
        // v2 rejects the whole batch on any of these.
        assert_eq!(out.v2_error().is_some(), want.is_some(), "{input:?}");
    }
}

#[test]
fn partial_write_keeps_parse_errors_counted() {
    let out = run("bad\nm,time=a f=1 1\nm f=2 2\n");
    assert_eq!((out.points, out.bad_lines, out.dropped), (1, 1, 1));
    assert_eq!(out.errors[0].reason, "missing fields");
}

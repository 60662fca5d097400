//! Tests of the mask walk (`window.rs`): what it takes by itself, and that
//! whole scans agree with the general path on lines it sees.

use super::memo::Field;
use super::scan::scan_general_only;
use super::storage::FieldType;
use super::tests_fast::{NOW, assert_same_output, one_byte_off, options};
use super::window::{Walk, walk};
use super::{ScanOptions, scan_with};
use bytes::Bytes;

/// Numeric-only lines long enough that the walk needs a second window, with
/// values at the edges of what it takes (24-byte floats, 18-digit integers,
/// 19-digit timestamps starting with 8 or 9).
const NUMERIC: &str = "cpu,host=server01,region=us-west,cpu=cpu1 usage_user=0.5,usage_system=12.25,\
usage_idle=99.1,usage_iowait=0i,long_float=12345678901.12345678901,long_int=123456789012345678i \
1700000000000000000\n\
disk,path=/ free=123456789i,used_percent=12.5 899999999999999999\n\
cpu,host=server01,region=us-west,cpu=cpu1 usage_user=1,usage_system=2,usage_idle=3,usage_iowait=4i,\
long_float=5,long_int=6i 8999999999999999999\n";

/// The layout of the line at `line_start` in `buf`: its fields, typed as
/// the walk expects them.
fn layout_of(buf: &[u8], fields: &[(&str, FieldType)]) -> Vec<Field> {
    let text = std::str::from_utf8(buf).unwrap();
    fields
        .iter()
        .map(|&(key, ty)| {
            let at = text.find(&format!("{key}=")).unwrap();
            Field::new(buf, at, at + key.len(), ty)
        })
        .collect()
}

#[test]
fn the_walk_takes_a_line_that_follows_its_layout() {
    let first = "m a=1.5,bb=2i,c=3 1\n";
    let second = "m a=10.25,bb=-0i,c=4 1700000000000000000\n";
    let third = "m a=7,bb=123i,c=0.5 1700000000000000001\n";
    let fourth = "m a=7,bb=123i,c=0.5\n";
    let pad = "x".repeat(80);
    let body = format!("{first}{second}{third}{fourth}{pad}");
    let buf = body.as_bytes();
    let layout = layout_of(
        buf,
        &[
            ("a", FieldType::Float),
            ("bb", FieldType::Integer),
            ("c", FieldType::Float),
        ],
    );
    let opts = ScanOptions::default();
    let at = |line: &str| body.find(line).unwrap() + 2;
    // `-0i` is for the long way (a sign): the walk stops at `bb`.
    assert_eq!(
        walk(buf, at(second), &layout, &opts),
        Walk::Partial {
            matched: 1,
            at: at(second) + "a=10.25,".len()
        }
    );
    let third_at = at(third);
    let end = third_at - 2 + third.len() - 1;
    let space = end - "1700000000000000001".len() - 1;
    assert_eq!(
        walk(buf, third_at, &layout, &opts),
        Walk::Line { space, end }
    );
    // No timestamp: the last field is for the long way.
    assert_eq!(
        walk(buf, at(fourth), &layout, &opts),
        Walk::Partial {
            matched: 2,
            at: at(fourth) + "a=7,bb=123i,".len()
        }
    );
    // Too near the end of the body for a window: nothing matched.
    assert_eq!(
        walk(&buf[..end + 1], third_at, &layout, &opts),
        Walk::Partial {
            matched: 0,
            at: third_at
        }
    );
}

#[test]
fn the_walk_declines_what_it_does_not_check() {
    let pad = "x".repeat(80);
    let walk_of = |line: &str, ty: FieldType, opts: &ScanOptions| {
        let body = format!("m v=1 1\n{line}\n{pad}");
        let buf = body.as_bytes();
        let layout = vec![Field::new(buf, 2, 3, ty)];
        walk(buf, 8 + 2, &layout, opts)
    };
    let ns = ScanOptions::default();
    // The space after the field, and the end of the line.
    let space = |line: &str| 8 + 2 + line[2..].find(' ').unwrap();
    let line = |line: &str| Walk::Line {
        space: space(line),
        end: 8 + line.len(),
    };
    let fields = |line: &str| Walk::Fields { space: space(line) };
    let none = Walk::Partial { matched: 0, at: 10 };
    for (text, ty, expected) in [
        ("m v=1 5", FieldType::Float, line("m v=1 5")),
        ("m v=1.25 5", FieldType::Float, line("m v=1.25 5")),
        ("m v=12i 5", FieldType::Integer, line("m v=12i 5")),
        ("m v=12i 5", FieldType::Float, none),
        ("m v=12 5", FieldType::Integer, none),
        ("m v=1. 5", FieldType::Float, none),
        ("m v=.5 5", FieldType::Float, none),
        ("m v=1.2.3 5", FieldType::Float, none),
        ("m v=1e5 5", FieldType::Float, none),
        ("m v=-1 5", FieldType::Float, none),
        ("m v=i 5", FieldType::Integer, none),
        ("m v=1u 5", FieldType::Integer, none),
        ("m v= 5", FieldType::Float, none),
        ("m v=true 5", FieldType::Boolean, none),
        ("m v=1,w=2 5", FieldType::Float, none),
        ("m w=1 5", FieldType::Float, none),
        ("m v=1 -5", FieldType::Float, fields("m v=1 -5")),
        ("m v=1 5 ", FieldType::Float, fields("m v=1 5 ")),
        ("m v=1 5\r", FieldType::Float, fields("m v=1 5\r")),
        ("m v=1", FieldType::Float, none),
        (
            "m v=1 9000000000000000000",
            FieldType::Float,
            fields("m v=1 9000000000000000000"),
        ),
        (
            "m v=1 8999999999999999999",
            FieldType::Float,
            line("m v=1 8999999999999999999"),
        ),
        (
            "m v=1 10000000000000000000",
            FieldType::Float,
            fields("m v=1 10000000000000000000"),
        ),
        // 25 characters, and an integer of 19 digits: the long way.
        ("m v=1234567890123.12345678901 5", FieldType::Float, none),
        ("m v=1234567890123456789i 5", FieldType::Integer, none),
    ] {
        assert_eq!(walk_of(text, ty, &ns), expected, "{text:?} as {ty:?}");
    }
    // Other precisions get the exact range check.
    let s = ScanOptions::v1(super::Precision::Second);
    assert_eq!(walk_of("m v=1 5", FieldType::Float, &s), fields("m v=1 5"));
}

/// Every line of `NUMERIC`, memoized, then that line with one byte
/// replaced by each grammar-relevant byte or a digit, at every position;
/// the body goes on, so the walk has its windows.
#[test]
fn numeric_lines_one_byte_off_scan_the_same() {
    one_byte_off(NUMERIC, b" ,=\\\"\n\r\t#x0i-.9e", |input| {
        for opts in options() {
            let fast = scan_with(Bytes::copy_from_slice(input), NOW, &opts);
            let slow = scan_general_only(Bytes::copy_from_slice(input), NOW, &opts);
            assert_same_output(&fast, &slow, input);
        }
    });
}

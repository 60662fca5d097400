//! Accept/reject vectors modelled on InfluxDB 1.x's `models/points_test.go`
//! cases (restated here, not copied), each with the reason text a 1.x node
//! gives.

use bytes::Bytes;

use super::{Precision, ScanOptions, scan_with};

const NOW: i64 = 1_700_000_000_000_000_000;

/// The reason for a one-line body, or None if it is accepted.
fn reason_with(line: &str, opts: &ScanOptions) -> Option<String> {
    let out = scan_with(Bytes::from(line.to_string()), NOW, opts);
    match out.errors.first() {
        Some(e) => {
            assert_eq!(out.points, 0, "{line:?}");
            Some(e.reason.clone())
        }
        None => {
            assert_eq!(out.points, 1, "{line:?} parsed to no point");
            None
        }
    }
}

fn reason(line: &str) -> Option<String> {
    reason_with(line, &ScanOptions::default())
}

fn assert_ok(lines: &[&str]) {
    for l in lines {
        assert_eq!(reason(l), None, "expected {l:?} to be accepted");
    }
}

fn assert_reason(expected: &str, lines: &[&str]) {
    for l in lines {
        assert_eq!(reason(l).as_deref(), Some(expected), "line {l:?}");
    }
}

#[test]
fn missing_fields() {
    assert_reason(
        "missing fields",
        &[
            "cpu_load_short,host=server01,region=us-west",
            "cpu",
            "cpu,host==",
            "=",
        ],
    );
    // The field scan runs first and finds no '=' at all.
    assert_reason("invalid field format", &["cpu ", "cpu,host=a "]);
}

#[test]
fn missing_measurement() {
    assert_reason("missing measurement", &[",host=a value=1", ", value=1"]);
}

#[test]
fn missing_tag_key() {
    assert_reason(
        "missing tag key",
        &[
            "cpu, value=1",
            "cpu,",
            "cpu,,,",
            "cpu,host=serverA,=us-east value=1i",
            r"cpu,host=serverAa\,,=us-east value=1i",
            r"cpu,host=serverA\,,=us-east value=1i",
            "cpu, =serverA value=1i",
        ],
    );
    assert_ok(&[r"cpu,host=serverA,\ =us-east value=1i"]);
}

#[test]
fn missing_tag_value() {
    assert_reason(
        "missing tag value",
        &[
            "cpu,host",
            "cpu,host,",
            "cpu,host=",
            "cpu,host value=1i",
            "cpu,host=serverA,region value=1i",
            "cpu,host=serverA,region= value=1i",
            "cpu,host=serverA,region=,zone=us-west value=1i",
        ],
    );
}

#[test]
fn invalid_tag_format() {
    assert_reason("invalid tag format", &["cpu,host=f=o,", r"cpu,host=f\==o,"]);
}

#[test]
fn duplicate_tags() {
    assert_reason(
        "duplicate tags",
        &[
            "cpu,host=a,host=b value=1",
            "cpu,b=1,a=2,b=3 value=1",
            "cpu,z=1,a=1,m=1,a=2 value=1",
        ],
    );
    assert_ok(&["cpu,b=1,a=2,c=3 value=1", "cpu,host=a,Host=b value=1"]);
}

#[test]
fn field_keys_and_values() {
    assert_reason(
        "missing field key",
        &[
            "cpu,host=serverA,region=us-west =123i",
            "cpu,host=serverA,region=us-west value=123i,=456i",
        ],
    );
    assert_reason(
        "missing field value",
        &[
            "cpu,host=serverA,region=us-west value=",
            "cpu,host=serverA,region=us-west value= 1000000000i",
            "cpu,host=serverA,region=us-west value=,value2=1i",
        ],
    );
    assert_reason(
        "invalid field format",
        &[
            "cpu,host=server01,region=us-west 1434055562000000000i",
            "cpu,host=server01,region=us-west value=1i,b",
        ],
    );
    // 1.8 re-walks the field set and finds a key without a value.
    assert_eq!(
        reason(r#"m f="blah"=123,r 1531703600000000000"#).as_deref(),
        Some("invalid value: field-key=r")
    );
    assert_eq!(
        reason(r"m v\\=1i 5").as_deref(),
        Some(r"invalid value: field-key=v\\=1i")
    );
    assert_eq!(
        reason(r"m v=1i,w\\=1i").as_deref(),
        Some(r"invalid value: field-key=w\\=1i")
    );
    assert_reason("missing tag value", &[r"m,t\\=1 v=1i"]);
    assert_reason("invalid tag format", &[r"m,t=\\ v=1i", r"m,t=a\\ v=1i 5"]);
    assert_reason(
        "invalid field format",
        &[r"m v\\ =1i 5", r"m v\\", r"m v=1i,w\\ x=1i"],
    );
    assert_ok(&[r"cpu,host=serverA,region=us-west a\ =123i"]);
}

#[test]
fn bad_numbers() {
    assert_reason(
        "invalid number",
        &[
            "cpu v=- ",
            "cpu v=-i ",
            "cpu v=-. ",
            "cpu v=. ",
            "cpu v=1.0i ",
            "cpu v=1ii ",
            "cpu v=1a ",
            "cpu v=42+3 ",
            "cpu v=-123u",
            "cpu value=.1a",
            "cpu value=0.-1",
            "cpu value=-",
            "cpu value=1.1.1",
            "cpu value=9ie10",
            "cpu value=9e10i",
            "cpu value=NaN",
            "cpu value=nan",
            "cpu value=9i10",
        ],
    );
    assert_reason(
        "invalid float",
        &["cpu v=-e-e-e ", "cpu v=1e", "cpu v=1e400"],
    );
    assert_reason("missing field value", &["cpu v= "]);
}

#[test]
fn numbers_accepted() {
    assert_ok(&[
        "cpu value=1i",
        "cpu value=-1i",
        "cpu value=-1.0",
        "cpu value=.1",
        "cpu value=1.",
        "cpu value=1.0e4",
        "cpu value=1e4",
        "cpu value=1.0E4",
        "cpu value=1E+4",
        "cpu value=1.0e-4",
        "cpu value=-1.0e-4",
        "cpu value=1e-400",
        "cpu value=9223372036854775807i",
        "cpu value=0009223372036854775807i",
        "cpu value=-9223372036854775808i",
        "cpu value=-0009223372036854775808i",
        "cpu value=18446744073709551615u",
        "cpu value=00018446744073709551615u",
        "cpu value=0u",
        "cpu value=0000u",
    ]);
    let max = format!("cpu value={:.1}", f64::MAX);
    let min = format!("cpu value={:.1}", f64::MIN);
    let padded = format!("cpu value=0000{:.1}", f64::MAX);
    assert_eq!(reason(&max), None);
    assert_eq!(reason(&min), None);
    assert_eq!(reason(&padded), None);
    let over = format!("cpu value=1{:.1}", f64::MAX);
    assert_eq!(reason(&over).as_deref(), Some("invalid float"));
}

#[test]
fn integer_range_errors_use_go_text() {
    assert_eq!(
        reason("cpu,host=serverA,region=us-west value=9223372036854775808i").as_deref(),
        Some(
            "unable to parse integer 9223372036854775808: strconv.ParseInt: parsing \
             \"9223372036854775808\": value out of range"
        )
    );
    assert!(reason("cpu value=-9223372036854775809i").is_some());
    assert_eq!(
        reason("cpu,host=serverA,region=us-west value=18446744073709551616u").as_deref(),
        Some(
            "unable to parse unsigned 18446744073709551616: strconv.ParseUint: parsing \
             \"18446744073709551616\": value out of range"
        )
    );
    assert_eq!(reason("cpu value=--1u").as_deref(), Some("invalid number"));
}

#[test]
fn unsigned_rejected_under_v1_rules() {
    let v1 = ScanOptions::v1(Precision::Nanosecond);
    assert_eq!(
        reason_with("cpu value=1u", &v1).as_deref(),
        Some("invalid number")
    );
    assert_eq!(reason_with("cpu value=1i", &v1), None);
}

#[test]
fn booleans() {
    assert_ok(&[
        "cpu v=t",
        "cpu v=T",
        "cpu v=true",
        "cpu v=True",
        "cpu v=TRUE",
        "cpu v=f",
        "cpu v=F",
        "cpu v=false",
        "cpu v=False",
        "cpu v=FALSE",
        "cpu a=t,b=f 1",
    ]);
    assert_reason(
        "invalid boolean",
        &[
            "cpu v=a",
            "cpu v=tru",
            "cpu v=TrUe",
            "cpu v=falsey",
            "cpu v=+1",
            "cpu v=trUE",
        ],
    );
}

#[test]
fn strings_and_quotes() {
    assert_ok(&[
        r#"cpu value="test""#,
        r#"cpu value="a \"quoted\" word""#,
        r#"cpu value="back\\slash""#,
        r#"cpu value="with, comma and space=equals""#,
        r#"cpu value="""#,
        r#"cpu,host=a\"b value="x" 1"#,
        r#"cpu value="multi
line" 1"#,
    ]);
    assert_reason(
        "unbalanced quotes",
        &[
            r#"cpu,host=serverA value="test"#,
            r#"cpu,host=serverA value="test"""#,
        ],
    );
}

#[test]
fn escapes_in_names() {
    assert_ok(&[
        r"foo\,bar value=1i",
        r"cpu\,main,regions=east value=1.0",
        r"cpu\ load,region=east value=1.0",
        r"cpu\=load,region=east value=1.0",
        r"cpu,region\,zone=east value=1.0",
        r"cpu,region\ zone=east value=1.0",
        r"cpu,region\=zone=east value=1.0",
        r"cpu,region=east\,west value=1.0",
        r"cpu,region=east\ west value=1.0",
        r"cpu,region=east\=west value=1.0",
        r"cpu,regions=east value\ x=1.0",
        r"cpu,regions=east value\,x=1.0",
        r"cpu,regions=east value\=x=1.0",
    ]);
    // 1.x treats any byte after a backslash as escaped, even after "\\".
    assert_reason("missing fields", &[r"cpu\\ value=1"]);
}

#[test]
fn timestamps() {
    assert_ok(&[
        "cpu value=1 1257894000000000000",
        "cpu value=1 -1",
        "cpu value=1 0",
        "cpu    value=1.0 1257894000000000000",
        "cpu value=1.0     1257894000000000000",
        "cpu value=1.0 1257894000000000000   ",
        "cpu value=1 9223372036854775806",
        "cpu value=1 -9223372036854775806",
    ]);
    assert_reason(
        "bad timestamp",
        &["cpu value=1 12a", "cpu value=1 1-2", "cpu value=1 1.5"],
    );
    assert_reason(
        "point is invalid",
        &["cpu value=1 123 456", "cpu value=1 1 x"],
    );
    assert_eq!(
        reason("cpu value=1 99999999999999999999").as_deref(),
        Some("strconv.ParseInt: parsing \"99999999999999999999\": value out of range")
    );
    assert_eq!(
        reason("cpu value=1 -").as_deref(),
        Some("strconv.ParseInt: parsing \"-\": invalid syntax")
    );
    let range = "time outside range -9223372036854775806 - 9223372036854775806";
    assert_reason(
        range,
        &[
            "cpu value=1 9223372036854775807",
            "cpu value=1 -9223372036854775807",
        ],
    );
    // The precision multiplies before the range check.
    let s = ScanOptions::v1(Precision::Second);
    assert_eq!(reason_with("cpu value=1 1700000000", &s), None);
    assert_eq!(
        reason_with("cpu value=1 10000000000", &s).as_deref(),
        Some(range)
    );
    let h = ScanOptions::v1(Precision::Hour);
    assert_eq!(
        reason_with("cpu value=1 3000000", &h).as_deref(),
        Some(range)
    );
}

#[test]
fn max_key_length() {
    let long = "a".repeat(65536);
    assert_eq!(
        reason(&format!("{long} value=1")).as_deref(),
        Some("max key length exceeded: 65536 > 65535")
    );
    let m = "m".repeat(65530);
    assert_eq!(
        reason(&format!("{m} abcd=1")).as_deref(),
        Some("max key length exceeded: 65538 > 65535")
    );
    assert_eq!(reason(&format!("{m} a=1")), None);
}

#[test]
fn accepted_like_influxdb_1x() {
    // The 1.x parser accepts these (`time` keys are a storage matter, see
    // `tests_storage.rs`).
    assert_ok(&[
        "cpu value=1,value=2",
        "température,hôte=serveur01 valeur=1 1",
        "cpu value=1 ",
        "cpu value=\"x\"\t",
        " cpu value=1",
        "\tcpu value=1",
    ]);
    assert_reason("invalid number", &["cpu value=1\t2", "cpu value=1\t"]);
}

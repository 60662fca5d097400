//! The catalog follows Prometheus naming, and events show up in the text.

use super::*;

#[test]
fn names_follow_prometheus_conventions() {
    let mut seen = std::collections::HashSet::new();
    for (name, kind, help) in CATALOG {
        assert!(seen.insert(*name), "{name} listed twice");
        assert!(name.starts_with("inmate_"), "{name}: no inmate_ prefix");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}: not snake_case"
        );
        assert_eq!(
            *kind == Kind::Counter,
            name.ends_with("_total"),
            "{name}: _total is for counters, and counters need it"
        );
        if *kind == Kind::Histogram {
            assert!(
                name.ends_with("_seconds"),
                "{name}: histograms here are latencies"
            );
        }
        for unit in ["_ms", "_milliseconds", "_kb", "_mb"] {
            assert!(!name.contains(unit), "{name}: not a base unit");
        }
        assert!(!help.is_empty(), "{name}: no help");
    }
}

#[test]
fn routes_and_methods_are_bounded() {
    assert_eq!(route_of("/write"), "/write");
    assert_eq!(route_of("/api/v2/ping"), "/ping");
    assert_eq!(route_of("/api/v2/tasks/0123/runs"), "/api/v2/tasks");
    assert_eq!(route_of("/api/v2/bucket"), "/api/v2/buckets");
    // Anything a client makes up collapses into one value.
    assert_eq!(route_of("/mydb/secret"), "other");
    assert_eq!(route_of("/write/x"), "other");
}

#[test]
fn events_appear_in_the_exposition() {
    use bytes::Bytes;
    let node = "unit-node:1";
    let since = send_started();
    let group = vec![(
        1,
        Record::write(
            "/write",
            "db=x".into(),
            None,
            Bytes::from_static(b"m f=1 1\nm f=2 2\n"),
        ),
    )];
    delivery_answer(node, http::StatusCode::NO_CONTENT, since, &group);
    delivery_answer(node, http::StatusCode::SERVICE_UNAVAILABLE, since, &group);
    delivery_error(
        node,
        &crate::backend::client::SendError::Timeout(Duration::from_secs(1)),
        since,
    );
    retry(node);
    dead_lettered(node, 3);
    let text = registry().render();
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(r#"inmate_node_delivered_records_total{node="unit-node:1"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_delivered_points_total{node="unit-node:1"} 2"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_delivered_bytes_total{node="unit-node:1"} 16"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_failures_total{node="unit-node:1",class="5xx"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_failures_total{node="unit-node:1",class="timeout"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_retries_total{node="unit-node:1"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_dead_lettered_records_total{node="unit-node:1"} 3"#),
        "{text}"
    );
    assert!(
        has(r#"inmate_node_request_duration_seconds_count{node="unit-node:1"} 3"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE inmate_node_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("# HELP inmate_node_retries_total "), "{text}");
    assert!(text.contains("inmate_build_info{version="), "{text}");
}

use crate::record::Record;

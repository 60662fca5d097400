//! Config tests: the seed's own file must load unchanged, and every bad
//! config must fail with its exact one-line message.

use std::path::Path;
use std::time::Duration;

use super::*;

const SEED: &str = r#"
# Please generate your own tokens in each instance separately
addresses:
  - url: http://influxdb1:8086
    token: bGFgMnt42CrFEKO2mNHIAX55Qp8ENrLI643QHGZ-Uwo7pgSdYKt1_S7aqcpMYS7qySsOXSP-z6Ip3rGjVeLVvA==
  - url: http://influxdb2:8086
    token: KXlUtzPwoWvhDA-d-BqGHMp4O-stQrdLn6AyftmzOo_WZ_IOIUkMs2TB8sBHz7t28_oKQlFo1prlyRI2OMrV1w==
bind_address: 0.0.0.0
port: 8080
retry_count: 120
retry_delay: 1
query_timeout: 5
channel_size: 1000
auth_token: 123456
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(text, Path::new("config.yaml"), &no_env)
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn seed_config_loads_unchanged() {
    let c = load(SEED).unwrap();
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(c.nodes[0].name, "influxdb1:8086");
    assert_eq!(c.nodes[1].url.as_str(), "http://influxdb2:8086/");
    assert!(c.nodes[0].token.as_deref().unwrap().starts_with("bGFg"));
    assert_eq!(c.port, 8080);
    assert_eq!(c.failure_warn_after, 120);
    assert_eq!(c.retry_delay, Duration::from_secs(1));
    assert_eq!(c.query_timeout, Duration::from_secs(5));
    assert_eq!(c.max_batch_records, 1000);
    assert_eq!(c.auth_token.as_deref(), Some("123456"));
    assert_eq!(c.data_dir, Path::new("./data"));
    assert_eq!(c.queue.fsync, FsyncMode::Always);
    assert!(c.queue.direct_io);
    assert_eq!(c.write_consistency, Consistency::Any);
}

#[test]
fn redacted_yaml_hides_every_secret() {
    let c = load(SEED).unwrap();
    let y = c.redacted_yaml();
    assert!(!y.contains("123456"), "{y}");
    assert!(!y.contains("bGFg"), "{y}");
    assert!(y.contains("<redacted>"));
    assert!(y.contains("influxdb2:8086"));
}

#[test]
fn auth_token_from_environment_when_empty() {
    let env = |k: &str| (k == "AUTH_TOKEN").then(|| "from-env".to_string());
    let c = Config::from_yaml(
        "addresses: [{url: 'http://a:1'}]\nauth_token: ''\n",
        Path::new("c.yaml"),
        &env,
    )
    .unwrap();
    assert_eq!(c.auth_token.as_deref(), Some("from-env"));
    let c = Config::from_yaml(
        "addresses: [{url: 'http://a:1'}]\nauth_token: file\n",
        Path::new("c.yaml"),
        &env,
    )
    .unwrap();
    assert_eq!(c.auth_token.as_deref(), Some("file"));
}

#[test]
fn env_interpolation_in_strings() {
    let env = |k: &str| (k == "NODE_TOKEN").then(|| "t0k".to_string());
    let c = Config::from_yaml(
        "addresses: [{url: 'http://a:1', token: '${NODE_TOKEN}'}]\nauth_token: x\n",
        Path::new("c.yaml"),
        &env,
    )
    .unwrap();
    assert_eq!(c.nodes[0].token.as_deref(), Some("t0k"));
}

#[test]
fn exact_error_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "addresses:\n  - url: http://a:1\n    tls: {insecure_skip_verify: true}\n",
            "config.yaml: addresses[0].tls: is set but the node URL is http",
        ),
        (
            "addresses:\n  - url: https://a:1\n    tls: {cert_file: c.pem}\n",
            "config.yaml: addresses[0].tls: cert_file and key_file must be set together",
        ),
        (
            "addresses:\n  - url: https://a:1\n    tls: {ca_file: no-such-ca.pem}\n",
            "config.yaml: addresses[0].tls: no-such-ca.pem: I/O error: No such file or directory (os error 2)",
        ),
        (
            "addresses:\n  - url: https://a:1\n    tls: {ca_fle: x}\n",
            "config.yaml: addresses[0].tls.ca_fle: unknown field `ca_fle`, expected one of `ca_file`, `cert_file`, `key_file`, `insecure_skip_verify`",
        ),
        (
            "addresses:\n  - url: http://a:1\ntls: {cert_file: c.pem}\n",
            "config.yaml: tls: cert_file and key_file are both required",
        ),
        (
            "addresses:\n  - url: http://a:1\n  - url: 'htp:/x'\n",
            "config.yaml: addresses[1].url: invalid URL \"htp:/x\": scheme must be http or https",
        ),
        (
            "addresses:\n  - url: 'not a url'\n",
            "config.yaml: addresses[0].url: invalid URL \"not a url\"",
        ),
        (
            "port: 8080\n",
            "config.yaml: addresses: at least one address is required",
        ),
        (
            "addresses: []\n",
            "config.yaml: addresses: at least one address is required",
        ),
        (
            "addresses:\n  - url: http://a:1\n  - url: http://a:1/\n",
            "config.yaml: addresses[1].url: duplicate address \"http://a:1/\"",
        ),
        (
            "addresses:\n  - {url: 'http://a:1', name: n}\n  - {url: 'http://b:1', name: n}\n",
            "config.yaml: addresses[1].name: duplicate node name \"n\"",
        ),
        (
            "addresses: [{url: 'http://a:1'}]\nport: 70000\n",
            "config.yaml: port: 70000 is out of range (0..=65535)",
        ),
        (
            "addresses: [{url: 'http://a:1'}]\nchannel_size: 0\n",
            "config.yaml: channel_size: 0 is out of range (1..=10000000)",
        ),
        (
            "addresses: [{url: 'http://a:1'}]\nretry_delay: -1\n",
            "config.yaml: retry_delay: must be a non-negative number of seconds, got -1",
        ),
        (
            "addresses: [{url: 'http://a:1'}]\nqueue:\n  fsync: sometimes\n",
            "config.yaml: queue.fsync: invalid value \"sometimes\" (always, interval or never)",
        ),
        (
            "addresses: [{url: 'http://a:1'}]\nwrite_consistency: most\n",
            "config.yaml: write_consistency: invalid value \"most\" (any, one, quorum or all)",
        ),
        (
            "addresses: [{url: 'http://a:1', token: t}]\n",
            "config.yaml: auth_token: node credentials are configured but the gateway has no auth_token (or AUTH_TOKEN): anyone reaching the gateway would borrow them; set auth_token, or allow_anonymous: true",
        ),
        (
            "addresses: [{url: 'http://a:1', token: '${MISSING}'}]\n",
            "config.yaml: addresses[0].token: environment variable MISSING is not set",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(&err(yaml), want, "for {yaml:?}");
    }
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let e = err("addresses: [{url: 'http://a:1'}]\nprot: 1\n");
    assert!(
        e.starts_with("config.yaml: prot: unknown field `prot`"),
        "{e}"
    );
    let e = err("addresses:\n  - url: http://a:1\n    tokn: x\n");
    assert!(
        e.starts_with("config.yaml: addresses[0].tokn: unknown field `tokn`"),
        "{e}"
    );
    let e = err("addresses: [{url: 'http://a:1'}]\nqueue:\n  fsycn: always\n");
    assert!(
        e.starts_with("config.yaml: queue.fsycn: unknown field `fsycn`"),
        "{e}"
    );
}

#[test]
fn wrong_types_and_bad_yaml_are_one_line() {
    let e = err("addresses: [{url: 'http://a:1'}]\nport: eighty\n");
    assert!(e.starts_with("config.yaml: port: invalid type"), "{e}");
    let e = err("addresses: [\n");
    assert!(e.starts_with("config.yaml: "), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn anonymous_opt_in_and_units() {
    let c = load(
        "addresses: [{url: 'http://a:1', token: t, gzip: false}]\nallow_anonymous: true\n\
         queue:\n  max_bytes: 2GiB\n  max_age: 36h\n  fsync: interval\n  fsync_interval: 50ms\n  direct_io: false\n\
         retry_delay: 0\n",
    )
    .unwrap();
    assert!(c.auth_token.is_none());
    assert_eq!(c.nodes[0].gzip, crate::config::WireGzip::Never);
    assert_eq!(c.queue.max_bytes, 2 << 30);
    assert_eq!(c.queue.max_age, Duration::from_secs(36 * 3600));
    assert_eq!(c.queue.fsync, FsyncMode::Interval);
    assert_eq!(c.queue.fsync_interval, Duration::from_millis(50));
    assert!(!c.queue.direct_io);
    // Zero is accepted for seed compatibility; the replicator floors it.
    assert_eq!(c.retry_delay, Duration::ZERO);
}

#[test]
fn consistency_counts() {
    assert_eq!(Consistency::Any.required(3), 0);
    assert_eq!(Consistency::One.required(3), 1);
    assert_eq!(Consistency::Quorum.required(3), 2);
    assert_eq!(Consistency::Quorum.required(2), 2);
    assert_eq!(Consistency::All.required(3), 3);
}

#[test]
fn listen_addr_formats() {
    let mut c = load("addresses: [{url: 'http://a:1'}]\nbind_address: '::1'\nport: 0\n").unwrap();
    assert_eq!(c.listen_addr(), "[::1]:0");
    c.bind_address = "127.0.0.1".into();
    assert_eq!(c.listen_addr(), "127.0.0.1:0");
}

#[test]
fn new_keys_have_defaults() {
    let c = load("addresses: [{url: 'http://a:1'}]\n").unwrap();
    assert_eq!(c.read_wait, Duration::from_secs(1));
    assert_eq!(c.read_consistency, ReadConsistency::Scoped);
    assert_eq!(c.max_connections, 10_000);
    assert_eq!(c.max_inflight_bytes, 512 << 20);
    assert_eq!(c.health_threshold, 2);
    assert_eq!(c.health_threshold_up, 2);
    assert_eq!(c.health_threshold_down, 2);
    assert_eq!(c.log_format, LogFormat::Auto);
    assert_eq!(c.metrics_bind, None);
    assert!(c.metrics_enabled);
    assert_eq!(c.worker_threads, None);
    let off = load("addresses: [{url: 'http://a:1'}]\nmetrics_enabled: false\n").unwrap();
    assert!(!off.metrics_enabled);
}

#[test]
fn new_keys_read_their_values() {
    let c = load(
        "addresses: [{url: 'http://a:1'}]\nread_wait: 250ms\nread_consistency: fresh\n\
         max_connections: 0\nmax_inflight_bytes: 0\nhealth_threshold: 5\n\
         health_threshold_down: 1\nlog_format: json\nmetrics_bind: '[::1]:9100'\n\
         worker_threads: 3\n",
    )
    .unwrap();
    assert_eq!(c.worker_threads, Some(3));
    assert_eq!(c.async_workers(), 3);
    assert_eq!(c.read_wait, Duration::from_millis(250));
    assert_eq!(c.read_consistency, ReadConsistency::Fresh);
    assert_eq!(c.max_connections, 0);
    assert_eq!(c.max_inflight_bytes, 0);
    // Each direction falls back to `health_threshold` on its own.
    assert_eq!(c.health_threshold_up, 5);
    assert_eq!(c.health_threshold_down, 1);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.metrics_bind.as_deref(), Some("[::1]:9100"));
    for (value, want) in [
        ("any", ReadConsistency::Any),
        ("scoped", ReadConsistency::Scoped),
    ] {
        let c = load(&format!(
            "addresses: [{{url: 'http://a:1'}}]\nread_consistency: {value}\n"
        ))
        .unwrap();
        assert_eq!(c.read_consistency, want);
    }
    for addr in ["127.0.0.1:9100", "metrics.local:9100", "0.0.0.0:0"] {
        let c = load(&format!(
            "addresses: [{{url: 'http://a:1'}}]\nmetrics_bind: '{addr}'\n"
        ))
        .unwrap();
        assert_eq!(c.metrics_bind.as_deref(), Some(addr));
    }
}

#[test]
fn new_keys_bad_values() {
    let bad_addr = |a: &str| {
        format!(
            "config.yaml: metrics_bind: invalid address \"{a}\" (use host:port, e.g. \"127.0.0.1:9100\" or \"[::1]:9100\")"
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "read_wait: soon",
            "config.yaml: read_wait: invalid duration \"soon\": expected number at 0 (use e.g. 1.5, \"100ms\", \"30s\", \"7d\")".into(),
        ),
        (
            "read_wait: 2h",
            "config.yaml: read_wait: 2h is out of range (0s..=1h)".into(),
        ),
        (
            "read_consistency: strong",
            "config.yaml: read_consistency: invalid value \"strong\" (fresh, scoped or any)".into(),
        ),
        (
            "max_connections: -1",
            "config.yaml: max_connections: -1 is out of range (0..=10000000)".into(),
        ),
        (
            "max_inflight_bytes: lots",
            "config.yaml: max_inflight_bytes: invalid size \"lots\" (use e.g. 1048576, \"1MiB\", \"10GiB\")".into(),
        ),
        (
            "health_threshold_up: 0",
            "config.yaml: health_threshold_up: 0 is out of range (1..=100)".into(),
        ),
        (
            "health_threshold_down: 101",
            "config.yaml: health_threshold_down: 101 is out of range (1..=100)".into(),
        ),
        (
            "log_format: xml",
            "config.yaml: log_format: invalid value \"xml\" (json, text or auto)".into(),
        ),
        (
            "worker_threads: 0",
            "config.yaml: worker_threads: 0 is out of range (1..=1024, or auto)".into(),
        ),
        (
            "worker_threads: many",
            "config.yaml: worker_threads: invalid value \"many\" (a number of threads, or auto)".into(),
        ),
        ("metrics_bind: '9100'", bad_addr("9100")),
        ("metrics_bind: localhost", bad_addr("localhost")),
        ("metrics_bind: ':9100'", bad_addr(":9100")),
        ("metrics_bind: '::1:9100'", bad_addr("::1:9100")),
        ("metrics_bind: '[::1]:99999'", bad_addr("[::1]:99999")),
        ("metrics_bind: 'a b:1'", bad_addr("a b:1")),
    ];
    for (kv, want) in cases {
        let yaml = format!("addresses: [{{url: 'http://a:1'}}]\n{kv}\n");
        assert_eq!(err(&yaml), want, "for {kv:?}");
    }
}

#[test]
fn worker_threads_auto_is_one_per_core() {
    let c = load("addresses: [{url: 'http://a:1'}]\nworker_threads: auto\n").unwrap();
    assert_eq!(c.worker_threads, None);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.async_workers(), cores);
}

#[test]
fn worker_threads_from_environment_unless_the_file_gives_a_number() {
    let with =
        |v: &'static str| move |k: &str| (k == "TOKIO_WORKER_THREADS").then(|| v.to_string());
    let load_env = |yaml: &str, v: &'static str| {
        Config::from_yaml(
            &format!("addresses: [{{url: 'http://a:1'}}]\n{yaml}"),
            Path::new("c.yaml"),
            &with(v),
        )
    };
    assert_eq!(load_env("", "3").unwrap().worker_threads, Some(3));
    assert_eq!(
        load_env("worker_threads: auto\n", "3")
            .unwrap()
            .worker_threads,
        Some(3)
    );
    assert_eq!(
        load_env("worker_threads: 2\n", "3").unwrap().worker_threads,
        Some(2)
    );
    for bad in ["0", "x", "2000"] {
        assert_eq!(
            load_env("", bad).unwrap_err().to_string(),
            format!(
                "c.yaml: TOKIO_WORKER_THREADS: invalid value \"{bad}\" in the environment (1..=1024)"
            )
        );
    }
}

#[test]
fn huge_durations_are_errors_not_panics() {
    assert_eq!(
        err("addresses: [{url: 'http://a:1'}]\nshutdown_timeout: 1e30\n"),
        "config.yaml: shutdown_timeout: 1000000000000000000000000000000 seconds is too long"
    );
}

#[test]
fn udp_listeners_take_influxdbs_keys_and_defaults() {
    let base = "addresses:\n  - url: http://a:8086\n";
    assert!(load(base).unwrap().udp.is_empty());
    let c = load(&format!(
        "{base}udp:\n  - database: telegraf\n  - bind_address: 127.0.0.1:8090\n    database: collectd\n    \
         retention_policy: week\n    precision: s\n    batch_size: 10\n    batch_timeout: 50ms\n    \
         batch_pending: 3\n    read_buffer: 8MiB\n    max_datagram_size: 1024\n"
    ))
    .unwrap();
    let (d, u) = (&c.udp[0], &c.udp[1]);
    assert_eq!(d.bind_address, "0.0.0.0:8089");
    assert_eq!(
        (d.batch_size, d.batch_pending, d.read_buffer),
        (5000, 10, 0)
    );
    assert_eq!(d.batch_timeout, Duration::from_secs(1));
    assert_eq!((d.precision.as_str(), d.max_datagram_size), ("", 65_535));
    assert_eq!(u.bind_address, "127.0.0.1:8090");
    assert_eq!(
        (u.database.as_str(), u.retention_policy.as_str()),
        ("collectd", "week")
    );
    assert_eq!(
        (u.batch_size, u.batch_pending, u.read_buffer),
        (10, 3, 8 << 20)
    );
    assert_eq!(u.batch_timeout, Duration::from_millis(50));
    assert_eq!(u.max_datagram_size, 1024);
}

#[test]
fn udp_errors_name_the_key() {
    let base = "addresses:\n  - url: http://a:8086\nudp:\n";
    assert_eq!(
        err(&format!("{base}  - bind_address: \":8089\"\n")),
        "config.yaml: udp[0].database: is required"
    );
    assert_eq!(
        err(&format!("{base}  - database: d\n    precision: us\n")),
        "config.yaml: udp[0].precision: invalid precision \"us\" (use n, u, ms, s, m or h)"
    );
    assert_eq!(
        err(&format!(
            "{base}  - database: d\n  - database: e\n    bind_address: 0.0.0.0:8089\n"
        )),
        "config.yaml: udp[1].bind_address: duplicate UDP address \"0.0.0.0:8089\""
    );
    assert!(
        err(&format!(
            "{base}  - database: d\n    bind_address: nowhere\n"
        ))
        .contains("udp[0].bind_address: invalid address")
    );
    assert!(
        err(&format!("{base}  - database: d\n    batch_size: 0\n"))
            .contains("udp[0].batch_size: 0 is out of range")
    );
    assert!(err(&format!("{base}  - database: d\n    batch_pendng: 1\n")).contains("udp[0]"));
}

#[test]
fn repair_section_defaults_values_and_bounds() {
    let c = load("addresses: [{url: 'http://a:1'}]\n").unwrap();
    assert!(!c.repair.auto, "automatic repair must be opt-in");
    assert_eq!(c.repair.interval, Duration::from_secs(600));
    assert_eq!(c.repair.lookback, Duration::from_secs(3600));
    let c = load(
        "addresses: [{url: 'http://a:1'}]\nrepair: {auto: true, interval: 1s, lookback: 5m}\n",
    )
    .unwrap();
    assert!(c.repair.auto);
    assert_eq!(c.repair.interval, Duration::from_secs(1));
    assert_eq!(c.repair.lookback, Duration::from_secs(300));
    let cases = [
        (
            "repair: {interval: 0s}",
            "config.yaml: repair.interval: 0s is out of range (1s..=1day)",
        ),
        (
            "repair: {interval: 2d, lookback: 3d}",
            "config.yaml: repair.interval: 2days is out of range (1s..=1day)",
        ),
        (
            "repair: {lookback: 40d}",
            "config.yaml: repair.lookback: 1month 9days 13h 26m 24s is out of range (1s..=30days)",
        ),
        (
            "repair: {interval: 1h, lookback: 10m}",
            "config.yaml: repair.lookback: 10m is shorter than repair.interval (1h): \
             data between two runs would never be verified",
        ),
        (
            "repair: {interval: soon}",
            "config.yaml: repair.interval: invalid duration \"soon\": expected number at 0 \
             (use e.g. 1.5, \"100ms\", \"30s\", \"7d\")",
        ),
        (
            "repair: {auto: yes please}",
            "config.yaml: repair.auto: invalid type: string \"yes please\", expected a boolean",
        ),
        (
            "repair: {autom: true}",
            "config.yaml: repair.autom: unknown field `autom`, expected one of `auto`, `interval`, `lookback`",
        ),
    ];
    for (kv, want) in cases {
        let yaml = format!("addresses: [{{url: 'http://a:1'}}]\n{kv}\n");
        assert_eq!(err(&yaml), want, "for {kv:?}");
    }
}

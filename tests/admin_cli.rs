//! The operator's tool end to end: the `inmate` CLI binary against the
//! gateway binary in front of real `influxd` nodes.
//!
//! Why through the CLI: the admin API's promises (a paused node gets nothing
//! and keeps its backlog, across a restart; a drained node takes writes but
//! no reads; dead letters can be replayed to the one node that refused them;
//! the repair flag can be cleared; only the admin scope may do any of it)
//! are what an operator relies on, and the CLI is how they reach them.

mod common;

use std::time::Duration;

use common::api::{first_count, influxql, lines, two_nodes, write_lp};
use common::{Gateway, Influxd, config_yaml};
use serde_json::Value;

const FAST: &str = "health_check_interval: 0.2\nhealth_threshold: 1\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.3\n";

/// Runs `inmate ARGS --url GW [--token T]`: (exit code, stdout, stderr).
async fn cli(gw: &Gateway, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_inmate"));
    cmd.args(args).args(["--url", &gw.url]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    cmd.env_remove("INMATE_TOKEN").env_remove("INMATE_URL");
    let out = cmd.output().await.expect("run inmate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `inmate ARGS --json`, which must succeed, parsed.
async fn cli_json(gw: &Gateway, token: Option<&str>, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = cli(gw, token, &all).await;
    assert_eq!(code, 0, "inmate {args:?}: {err}\n{}", gw.logs());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `inmate status --json`'s entry for `name`.
async fn node_status(gw: &Gateway, token: Option<&str>, name: &str) -> Value {
    let s = cli_json(gw, token, &["status"]).await;
    s["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} not in {s}"))
}

/// Runs `args`, which must exit 0; returns stdout.
async fn ok(gw: &Gateway, token: Option<&str>, args: &[&str]) -> String {
    let (code, out, err) = cli(gw, token, args).await;
    assert_eq!(code, 0, "inmate {args:?}: {err}\n{}", gw.logs());
    out
}

fn name(n: &Influxd) -> String {
    format!("127.0.0.1:{}", n.port)
}

async fn wait_count(n: &Influxd, db: &str, want: u64) {
    let ok = common::api::eventually(Duration::from_secs(20), || async {
        n.count(db, "m", "v").await == want
    })
    .await;
    assert!(
        ok,
        "{} has {} points, want {want}",
        n.url,
        n.count(db, "m", "v").await
    );
}

async fn gateway_count(gw: &Gateway, db: &str, token: Option<&str>) -> (u16, u64) {
    let (status, v) = influxql(&gw.url, db, "SELECT count(v) FROM m", token).await;
    (status, first_count(&v))
}

#[tokio::test]
async fn pause_holds_deliveries_across_a_restart_and_resume_catches_up() {
    let (a, mut b) = two_nodes("db").await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&[&a.url, &b.url], &format!("auth_token: adm\n{FAST}"));
    let mut gw = Gateway::start(&yaml, dir.path()).await;
    let (na, nb) = (name(&a), name(&b));
    let t = Some("adm");

    let out = ok(&gw, t, &["node", "pause", &na]).await;
    assert!(out.contains("paused"), "{out}");
    let (code, _) = write_lp(&gw.url, "db=db", lines("m", 0, 10, 1), t).await;
    assert_eq!(code, 204, "a paused node does not hold up acknowledgements");
    wait_count(&b, "db", 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.count("db", "m", "v").await,
        0,
        "a paused node gets nothing"
    );
    let sa = node_status(&gw, t, &na).await;
    assert_eq!(sa["mode"], "paused");
    let backlog = sa["backlog_records"].as_u64().unwrap();
    assert!(backlog >= 1, "{sa}");
    assert_eq!(node_status(&gw, t, &nb).await["backlog_records"], 0);

    // The pause is persisted: a restart does not start delivering.
    gw.restart().await;
    let sa = node_status(&gw, t, &na).await;
    assert_eq!(sa["mode"], "paused", "{sa}");
    assert_eq!(sa["mode_by"], "admin");
    let (code, _) = write_lp(&gw.url, "db=db", lines("m", 10, 10, 1), t).await;
    assert_eq!(code, 204);
    wait_count(&b, "db", 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.count("db", "m", "v").await, 0);
    let grown = node_status(&gw, t, &na).await["backlog_records"]
        .as_u64()
        .unwrap();
    assert!(
        grown > backlog,
        "backlog grows while paused: {grown} vs {backlog}"
    );

    // Reads skip the paused node: with the other one gone, none can answer.
    b.stop().await;
    let (status, _) = gateway_count(&gw, "db", t).await;
    assert_ne!(status, 200, "a read must not go to a paused node");

    ok(&gw, t, &["node", "resume", &na]).await;
    wait_count(&a, "db", 20).await;
    let caught_up = common::api::eventually(Duration::from_secs(10), || async {
        gateway_count(&gw, "db", t).await == (200, 20)
    })
    .await;
    assert!(caught_up, "{:?}", gateway_count(&gw, "db", t).await);
    assert_eq!(node_status(&gw, t, &na).await["mode"], "enabled");
    let logs = gw.logs_with("node mode set by operator").await;
    assert!(logs.contains("node mode set by operator"), "{logs}");
}

#[tokio::test]
async fn drain_skips_reads_while_writes_keep_flowing() {
    let (a, mut b) = two_nodes("db").await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&[&a.url, &b.url], FAST);
    let gw = Gateway::start(&yaml, dir.path()).await;
    let na = name(&a);

    // No gateway credentials configured: the API is as open as the rest.
    let out = ok(&gw, None, &["node", "drain", &na]).await;
    assert!(
        out.contains("draining") && out.contains("anonymous"),
        "{out}"
    );
    let (code, _) = write_lp(&gw.url, "db=db", lines("m", 0, 10, 1), None).await;
    assert_eq!(code, 204);
    wait_count(&a, "db", 10).await;
    wait_count(&b, "db", 10).await;
    assert_eq!(node_status(&gw, None, &na).await["mode"], "draining");

    b.stop().await;
    let (status, _) = gateway_count(&gw, "db", None).await;
    assert_ne!(status, 200, "a read must not go to a draining node");
    ok(&gw, None, &["node", "resume", &na]).await;
    assert_eq!(gateway_count(&gw, "db", None).await, (200, 10));
}

#[tokio::test]
async fn dead_letters_replay_to_one_node_and_discard() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    b.create_db("dl").await;
    b.create_db("dl2").await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&[&a.url, &b.url], FAST);
    let gw = Gateway::start(&yaml, dir.path()).await;
    let na = name(&a);

    // `dl` is missing on a: a answers 404, the write is dead-lettered there.
    let (code, _) = write_lp(&gw.url, "db=dl", lines("m", 0, 5, 1), None).await;
    assert_eq!(code, 204);
    wait_count(&b, "dl", 5).await;
    let parked = common::api::eventually(Duration::from_secs(10), || async {
        node_status(&gw, None, &na).await["dead_letters"] == 1
    })
    .await;
    assert!(parked, "{}", gw.logs());
    let list = cli_json(&gw, None, &["deadletter", "list", &na]).await;
    assert_eq!(list[0]["status"], 404, "{list}");
    assert_eq!(list[0]["path"], "/write");
    let table = ok(&gw, None, &["deadletter", "list", &na]).await;
    assert!(table.contains("database not found"), "{table}");

    // Not fixed yet: the replay fails, exit 1, the entry stays.
    let (code, out, _) = cli(&gw, None, &["deadletter", "replay", &na]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed 1"), "{out}");
    assert_eq!(
        cli_json(&gw, None, &["deadletter", "list", &na])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    a.create_db("dl").await;
    let out = ok(&gw, None, &["deadletter", "replay", &na]).await;
    assert!(out.contains("replayed 1"), "{out}");
    wait_count(&a, "dl", 5).await;
    assert_eq!(
        b.count("dl", "m", "v").await,
        5,
        "replay reaches that node only"
    );
    assert_eq!(node_status(&gw, None, &na).await["dead_letters"], 0);

    // Discard: the entry is gone, nothing is sent.
    let (code, _) = write_lp(&gw.url, "db=dl2", lines("m", 0, 3, 1), None).await;
    assert_eq!(code, 204);
    let parked = common::api::eventually(Duration::from_secs(10), || async {
        node_status(&gw, None, &na).await["dead_letters"] == 1
    })
    .await;
    assert!(parked);
    let seq = cli_json(&gw, None, &["deadletter", "list", &na]).await[0]["seq"]
        .as_u64()
        .unwrap();
    let out = ok(
        &gw,
        None,
        &["deadletter", "discard", &na, "--seq", &seq.to_string()],
    )
    .await;
    assert!(out.contains("discarded 1"), "{out}");
    assert_eq!(node_status(&gw, None, &na).await["dead_letters"], 0);
    a.create_db("dl2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.count("dl2", "m", "v").await, 0);
}

#[tokio::test]
async fn repair_flag_clear_is_durable() {
    let a = Influxd::start().await;
    a.create_db("db").await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(
        &[&a.url],
        "auth_token: adm\nhealth_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  max_age: 1s\n",
    );
    let mut gw = Gateway::start(&yaml, dir.path()).await;
    let (na, t) = (name(&a), Some("adm"));

    // Paused past `queue.max_age`: its records are skipped, it needs a repair.
    ok(&gw, t, &["node", "pause", &na]).await;
    let (code, _) = write_lp(&gw.url, "db=db", lines("m", 0, 5, 1), t).await;
    assert_eq!(code, 204);
    let flagged = common::api::eventually(Duration::from_secs(15), || async {
        node_status(&gw, t, &na).await["needs_repair"] == true
    })
    .await;
    assert!(flagged, "{}", gw.logs());
    let table = ok(&gw, t, &["status"]).await;
    assert!(table.contains("needed"), "{table}");

    let out = ok(&gw, t, &["repair-flag", "clear", &na]).await;
    assert!(out.contains("needs_repair cleared"), "{out}");
    assert_eq!(node_status(&gw, t, &na).await["needs_repair"], false);
    gw.restart().await;
    assert_eq!(node_status(&gw, t, &na).await["needs_repair"], false);
}

#[tokio::test]
async fn admin_api_needs_the_admin_scope() {
    let a = Influxd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = "clients:\n  - name: app\n    token: app-secret-tok\n    scopes: [read, write]\n  - name: ops\n    token: ops-secret-tok\n    scopes: [admin]\n";
    let yaml = config_yaml(&[&a.url], &format!("auth_token: adm\n{clients}"));
    let gw = Gateway::start(&yaml, dir.path()).await;
    let na = name(&a);

    let (code, _, err) = cli(&gw, None, &["status"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = cli(&gw, Some("app-secret-tok"), &["node", "pause", &na]).await;
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
    let (code, _, err) = cli(&gw, Some("app-secret-tok"), &["status"]).await;
    assert_eq!((code, err.contains("403")), (1, true), "{err}");
    assert_eq!(
        node_status(&gw, Some("ops-secret-tok"), &na).await["mode"],
        "enabled"
    );

    // An admin-only client may; the log names it and never its token.
    ok(&gw, Some("ops-secret-tok"), &["node", "pause", &na]).await;
    assert_eq!(node_status(&gw, Some("adm"), &na).await["mode"], "paused");
    let logs = gw.logs_with("\"by\":\"ops\"").await;
    assert!(logs.contains("\"by\":\"ops\""), "{logs}");
    assert!(!logs.contains("ops-secret-tok"), "{logs}");
    let persisted = std::fs::read_to_string(dir.path().join("admin.json")).unwrap();
    assert!(persisted.contains("\"ops\"") && !persisted.contains("secret"));

    // Usage errors exit 2; an unknown node is a failure (1).
    let (code, _, _) = cli(&gw, Some("adm"), &["node", "frobnicate", &na]).await;
    assert_eq!(code, 2);
    let (code, _, err) = cli(&gw, Some("adm"), &["node", "pause", "nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

//! Self-tests of the test fixtures (tests/common), needing no gateway.
//!
//! Why: every integration test trusts these fixtures; if `Influxd` restarted
//! on a different port or the 2.x stand-in accepted what 2.7 rejects, the
//! gateway tests would pass or fail for the wrong reasons.

mod common;

use std::io::Write;
use std::time::Duration;

use common::v2stub::Canned;
use common::{Influxd, V2Options, V2Stub, client, config_yaml, config_yaml_with_tokens};
use serde_json::{Value, json};

#[tokio::test]
async fn two_influxd_start_in_parallel_on_distinct_ports() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    assert_ne!(a.port, b.port);
    assert_ne!(a.rpc_port, b.rpc_port);
    assert_ne!(a.port, a.rpc_port);

    a.create_db("selftest").await;
    let (status, body) = a
        .write(
            "selftest",
            "cpu,host=a value=1 1\ncpu,host=a value=2 2\ncpu,host=b value=3 3",
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(a.count("selftest", "cpu", "value").await, 3);
    assert_eq!(a.databases().await, vec!["selftest".to_string()]);
    // The other server is independent.
    assert!(b.databases().await.is_empty());
    assert_eq!(b.count("selftest", "cpu", "value").await, 0);
}

#[tokio::test]
async fn count_is_zero_for_missing_db_measurement_or_field() {
    let n = Influxd::start().await;
    assert_eq!(n.count("nope", "cpu", "value").await, 0);
    n.create_db("d").await;
    assert_eq!(n.count("d", "cpu", "value").await, 0);
    assert_eq!(n.write("d", "cpu value=1 5").await.0, 204);
    assert_eq!(n.count("d", "cpu", "other").await, 0);
    assert_eq!(n.count("d", "cpu", "value").await, 1);
    let v = n.query("d", "SELECT value FROM cpu").await;
    // epoch=ns: the raw integer timestamp comes back.
    assert_eq!(v["results"][0]["series"][0]["values"][0][0], json!(5));
}

#[tokio::test]
async fn stop_and_restart_keep_port_and_data() {
    let mut n = Influxd::start().await;
    let port = n.port;
    n.create_db("keep").await;
    assert_eq!(n.write("keep", "m f=1 10\nm f=2 20").await.0, 204);
    n.stop().await;
    assert!(n.pid().is_none());
    assert!(
        !n.ping(Duration::from_millis(300)).await,
        "stopped server answered"
    );
    n.restart().await;
    assert_eq!(n.port, port);
    assert!(n.ping(Duration::from_secs(2)).await);
    assert_eq!(n.count("keep", "m", "f").await, 2);
    assert_eq!(n.databases().await, vec!["keep".to_string()]);
}

#[tokio::test]
async fn paused_influxd_times_out_and_resume_recovers() {
    let n = Influxd::start().await;
    n.create_db("p").await;
    n.pause();
    assert!(
        !n.ping(Duration::from_millis(500)).await,
        "paused server answered"
    );
    let write = common::client_with_timeout(Duration::from_millis(500))
        .post(format!("{}/write?db=p", n.url))
        .body("m f=1 1")
        .send()
        .await;
    assert!(write.is_err(), "write to a paused server should time out");
    n.resume();
    assert!(
        n.ping(Duration::from_secs(5)).await,
        "resumed server is silent"
    );
    assert_eq!(n.write("p", "m f=2 2").await.0, 204);
    assert!(n.count("p", "m", "f").await >= 1);
}

#[test]
fn config_yaml_is_seed_shaped() {
    let y = config_yaml(
        &["http://127.0.0.1:1", "http://127.0.0.1:2"],
        "retry_count: 3",
    );
    assert_eq!(
        y,
        "addresses:\n  - url: http://127.0.0.1:1\n  - url: http://127.0.0.1:2\n\
         bind_address: 127.0.0.1\nport: 0\nretry_count: 3\n"
    );
    let y = config_yaml_with_tokens(&[("http://h:1", "tok")], "");
    assert!(y.contains("  - url: http://h:1\n    token: tok\n"), "{y}");
}

// ---- the InfluxDB 2.x stand-in ----

fn authed(req: reqwest::RequestBuilder, stub: &V2Stub) -> reqwest::RequestBuilder {
    req.header("Authorization", format!("Token {}", stub.token))
}

async fn json_of(resp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let code = resp
        .headers()
        .get("X-Platform-Error-Code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.unwrap();
    (
        status,
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn v2_ping_is_open_and_api_needs_the_token() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let ping = c.get(format!("{}/ping", stub.url)).send().await.unwrap();
    assert_eq!(ping.status().as_u16(), 204);
    let version = ping.headers()["X-Influxdb-Version"].to_str().unwrap();
    assert!(version.starts_with("v2.7"), "{version}");
    assert_eq!(ping.headers()["X-Influxdb-Build"], "OSS");

    let orgs = format!("{}/api/v2/orgs", stub.url);
    let (s, code, body) = json_of(c.get(&orgs).send().await.unwrap()).await;
    assert_eq!((s, code.as_deref()), (401, Some("unauthorized")));
    assert_eq!(
        body,
        json!({"code":"unauthorized","message":"unauthorized access"})
    );
    let wrong = c.get(&orgs).header("Authorization", "Token nope");
    assert_eq!(wrong.send().await.unwrap().status().as_u16(), 401);
    let bearer = c
        .get(&orgs)
        .header("Authorization", format!("bEaReR {}", stub.token));
    let (s, _, body) = json_of(bearer.send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(body["orgs"][0]["id"], json!(stub.org_id));
    assert_eq!(body["orgs"][0]["name"], json!(stub.org));

    let (s, _, body) = json_of(
        authed(c.get(format!("{}/nope", stub.url)), &stub)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body, json!({"code":"not found","message":"path not found"}));
}

#[tokio::test]
async fn v2_write_errors_match_2_7_and_store_nothing() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let write = |query: String, body: &'static str| {
        authed(c.post(format!("{}/api/v2/write?{query}", stub.url)), &stub).body(body)
    };
    let org = stub.org.clone();
    let (s, _, b) = json_of(
        write(format!("org={org}&bucket=missing"), "m f=1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (404, Some("bucket \"missing\" not found"))
    );
    let (s, _, b) = json_of(
        write("org=acme&bucket=telegraf".into(), "m f=1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (404, Some("organization name \"acme\" not found"))
    );
    let q = format!("org={org}&bucket=telegraf&precision=h");
    let (s, code, b) = json_of(write(q, "m f=1").send().await.unwrap()).await;
    assert_eq!((s, code.as_deref()), (400, Some("invalid")));
    assert_eq!(
        b["message"],
        json!("invalid precision; valid precision units are ns, us, ms, and s")
    );
    let q = format!("org={org}&bucket=telegraf");
    let (s, code, _) = json_of(
        write(q, "m f=1 1\nnot line protocol\n")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_deref()), (400, Some("invalid")));
    assert!(
        stub.lines("telegraf").is_empty(),
        "a rejected batch must store nothing"
    );
}

#[tokio::test]
async fn v2_write_stores_lines_by_name_or_id_and_gzip() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let url = format!("{}/api/v2/write", stub.url);
    let by_name = authed(c.post(&url), &stub)
        .query(&[
            ("org", stub.org.as_str()),
            ("bucket", "telegraf"),
            ("precision", "s"),
        ])
        .body("cpu,host=a usage=1.5 1700000000\n");
    assert_eq!(by_name.send().await.unwrap().status().as_u16(), 204);
    let by_id = authed(c.post(&url), &stub)
        .query(&[
            ("orgID", stub.org_id.as_str()),
            ("bucket", stub.bucket_id.as_str()),
        ])
        .body("mem used=2i 1700000000000000000");
    assert_eq!(by_id.send().await.unwrap().status().as_u16(), 204);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"disk,path=/ free=\"a b,c\" 3\n").unwrap();
    let gzipped = authed(c.post(&url), &stub)
        .query(&[("org", stub.org_id.as_str()), ("bucket", "telegraf")])
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap());
    assert_eq!(gzipped.send().await.unwrap().status().as_u16(), 204);

    assert_eq!(
        stub.lines("telegraf"),
        vec![
            "cpu,host=a usage=1.5 1700000000",
            "mem used=2i 1700000000000000000",
            "disk,path=/ free=\"a b,c\" 3",
        ]
    );
    assert_eq!(stub.lines(&stub.bucket_id).len(), 3);
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].param("precision").as_deref(), Some("s"));
    assert_eq!(reqs[2].header("content-encoding"), Some("gzip"));
}

#[tokio::test]
async fn v2_query_returns_annotated_csv() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let w = authed(c.post(format!("{}/api/v2/write", stub.url)), &stub)
        .query(&[("org", stub.org.as_str()), ("bucket", "telegraf")])
        .body("cpu,host=a usage=1.5,idle=7i 100\n");
    assert_eq!(w.send().await.unwrap().status().as_u16(), 204);

    let url = format!("{}/api/v2/query?org={}", stub.url, stub.org);
    let flux = r#"from(bucket: "telegraf") |> range(start: 0)"#;
    let resp = authed(c.post(&url), &stub)
        .json(&json!({"query": flux, "type": "flux"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("#datatype,"), "{csv}");
    assert!(rows[1].starts_with("#group,"), "{csv}");
    assert!(rows[2].starts_with("#default,_result"), "{csv}");
    assert_eq!(rows[3], ",result,table,_measurement,_field,_value,_time");
    assert_eq!(rows[4], ",,0,cpu,usage,1.5,100");
    assert_eq!(rows[5], ",,1,cpu,idle,7,100");

    let raw = authed(c.post(&url), &stub)
        .header("Content-Type", "application/vnd.flux")
        .body(r#"from(bucket:"other") |> range(start: 0)"#);
    let (s, _, b) = json_of(raw.send().await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("could not find bucket \"other\"")
    );
}

#[tokio::test]
async fn v2_buckets_have_per_instance_ids() {
    let (a, b) = tokio::join!(
        V2Stub::start(V2Options::default()),
        V2Stub::start(V2Options::default())
    );
    assert_ne!(a.org_id, b.org_id);
    assert_ne!(a.bucket_id, b.bucket_id);
    assert_eq!(a.org_id.len(), 16);
    let c = client();
    let url = format!("{}/api/v2/buckets", a.url);
    let create = |org_id: &str| {
        authed(c.post(&url), &a).json(&json!({
            "orgID": org_id, "name": "metrics",
            "retentionRules": [{"type": "expire", "everySeconds": 3600}]
        }))
    };
    let (s, _, made) = json_of(create(&a.org_id).send().await.unwrap()).await;
    assert_eq!(s, 201);
    assert_eq!(made["orgID"], json!(a.org_id));
    assert_eq!(made["name"], json!("metrics"));
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    let (s, code, b2) = json_of(create(&a.org_id).send().await.unwrap()).await;
    assert_eq!((s, code.as_deref()), (422, Some("conflict")));
    assert_eq!(
        b2["message"],
        json!("bucket with name metrics already exists")
    );
    // Another instance's org ID means nothing here.
    let (s, _, _) = json_of(create(&b.org_id).send().await.unwrap()).await;
    assert_eq!(s, 404);

    let list = authed(c.get(&url), &a).query(&[("name", "metrics"), ("orgID", a.org_id.as_str())]);
    let (s, _, listed) = json_of(list.send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(listed["buckets"][0]["id"], json!(id));
    let missing = authed(c.get(&url), &a).query(&[("name", "zzz"), ("orgID", a.org_id.as_str())]);
    assert_eq!(missing.send().await.unwrap().status().as_u16(), 404);
    assert!(
        a.buckets()
            .contains(&(id, "metrics".into(), a.org_id.clone()))
    );
    assert!(!b.buckets().iter().any(|(_, name, _)| name == "metrics"));
}

#[tokio::test]
async fn v2_delete_is_recorded_and_down_modes_work() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let del = authed(c.post(format!("{}/api/v2/delete", stub.url)), &stub)
        .query(&[("org", stub.org.as_str()), ("bucket", "telegraf")])
        .json(
            &json!({"start": "1970-01-01T00:00:00Z", "stop": "2100-01-01T00:00:00Z",
                      "predicate": "_measurement=\"cpu\""}),
        );
    assert_eq!(del.send().await.unwrap().status().as_u16(), 204);
    let d = stub.deletes();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].bucket_id, stub.bucket_id);
    assert_eq!(d[0].predicate, "_measurement=\"cpu\"");

    stub.set_down(true);
    let (s, code, _) = json_of(c.get(format!("{}/ping", stub.url)).send().await.unwrap()).await;
    assert_eq!((s, code.as_deref()), (503, Some("unavailable")));
    stub.set_down(false);
    stub.set_unreachable(true);
    assert!(c.get(format!("{}/ping", stub.url)).send().await.is_err());
    stub.set_unreachable(false);
    let ok = c.get(format!("{}/ping", stub.url)).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn v2_scripted_answers_are_served_in_order_then_normal_behaviour() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let write_url = format!("{}/api/v2/write?org={}&bucket=telegraf", stub.url, stub.org);
    stub.script_all(
        "/api/v2/write",
        [
            Canned::status(429).header("Retry-After", "2"),
            Canned::v2_error(500, "internal error", "retention policy not found: x"),
        ],
    );
    assert_eq!(stub.scripted_left("/api/v2/write"), 2);
    // Another path is not affected by the write script.
    let ping = c.get(format!("{}/ping", stub.url)).send().await.unwrap();
    assert_eq!(ping.status().as_u16(), 204);

    let first = authed(c.post(&write_url), &stub).body("m v=1 1\n");
    let first = first.send().await.unwrap();
    assert_eq!(first.status().as_u16(), 429);
    assert_eq!(first.headers()["retry-after"], "2");
    let (s, code, v) = json_of(
        authed(c.post(&write_url), &stub)
            .body("m v=2 2\n")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_deref()), (500, Some("internal error")));
    assert_eq!(v["message"], "retention policy not found: x");
    assert!(
        stub.lines("telegraf").is_empty(),
        "scripted answers store nothing"
    );
    assert_eq!(stub.scripted_left("/api/v2/write"), 0);

    // The queue is empty: normal behaviour again, with a two-member gzip body.
    let mut body = gz("m v=3 3\n");
    body.extend(gz("m v=4 4\n"));
    let r = authed(c.post(&write_url), &stub)
        .header("Content-Encoding", "gzip")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(stub.lines("telegraf"), vec!["m v=3 3", "m v=4 4"]);

    let got = stub.received("/api/v2/write");
    assert_eq!(stub.count("/api/v2/write"), 3);
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 500, 204]);
    assert_eq!(got[0].text(), "m v=1 1\n");
    assert_eq!(got[2].body, body, "raw body kept as sent");
    assert_eq!(got[2].lines(), vec!["m v=3 3", "m v=4 4"]);
    assert!(got[0].at <= got[1].at && got[1].at <= got[2].at);
    assert_eq!(
        got[0].header("authorization"),
        Some("Token stub-operator-token")
    );
}

#[tokio::test]
async fn v2_conditional_script_sees_the_decoded_body() {
    let stub = V2Stub::start(V2Options::default()).await;
    let c = client();
    let write_url = format!("{}/api/v2/write?org={}&bucket=telegraf", stub.url, stub.org);
    stub.script_when(
        "/api/v2/write",
        None,
        |r| r.lines().len() > 2,
        Canned::v2_error(
            413,
            "request too large",
            "unable to read data: points batch is too large",
        ),
    );
    let big = "m v=1 1\nm v=2 2\nm v=3 3\n";
    for _ in 0..2 {
        let r = authed(c.post(&write_url), &stub)
            .header("Content-Encoding", "gzip")
            .body(gz(big))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 413, "rule lasts until cleared");
    }
    let small = authed(c.post(&write_url), &stub).body("m v=1 1\nm v=2 2\n");
    assert_eq!(small.send().await.unwrap().status().as_u16(), 204);
    stub.clear_script();
    let r = authed(c.post(&write_url), &stub).body(big);
    assert_eq!(r.send().await.unwrap().status().as_u16(), 204);
    assert_eq!(stub.lines("telegraf").len(), 5);
    // Scripted answers count as requests; down mode still wins over them.
    stub.script("/api/v2/write", Canned::status(204));
    stub.set_down(true);
    let r = authed(c.post(&write_url), &stub).body("m v=9 9\n");
    assert_eq!(r.send().await.unwrap().status().as_u16(), 503);
    assert_eq!(stub.scripted_left("/api/v2/write"), 1);
    assert_eq!(stub.count("/api/v2/write/"), 5);
}

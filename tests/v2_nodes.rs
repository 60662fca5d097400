//! InfluxDB 2 nodes, against the v2 stand-in (no InfluxDB 2 server can be
//! installed here): per-node tokens, v2 error shapes, Flux fallback that
//! resends the body, bucket creation with each node's own orgID, deletes.

mod common;

use std::time::Duration;

use common::api::{eventually, v2_cluster};

const GW_TOKEN: &str = "gateway-secret";

fn post(url: String) -> reqwest::RequestBuilder {
    common::api::http()
        .post(url)
        .header("Authorization", format!("Token {GW_TOKEN}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_each_node_with_its_own_token() {
    let (a, b, gw, _d) = v2_cluster("token-a", "token-b", GW_TOKEN).await;
    let r = post(format!(
        "{}/api/v2/write?org=inmate&bucket=telegraf&precision=s",
        gw.url
    ))
    .body("cpu,host=a v=1 1700000000\n")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    // orgID of node a: translated to the org's name for every node.
    let r = post(format!(
        "{}/api/v2/write?orgID={}&bucket=telegraf&precision=s",
        gw.url, a.org_id
    ))
    .body("cpu,host=b v=2 1700000001\n")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    for (n, tok) in [(&a, "token-a"), (&b, "token-b")] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.lines("telegraf").len() == 2
            })
            .await,
            "{}",
            n.url
        );
        for req in n.requests().iter().filter(|r| r.path == "/api/v2/write") {
            assert_eq!(
                req.header("authorization"),
                Some(format!("Token {tok}").as_str())
            );
        }
        assert!(
            !n.requests()
                .iter()
                .any(|r| format!("{:?}", r.headers).contains(GW_TOKEN))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_reject_the_whole_v2_batch() {
    let (a, b, gw, _d) = v2_cluster("token-a", "token-b", GW_TOKEN).await;
    let r = post(format!(
        "{}/api/v2/write?org=inmate&bucket=telegraf",
        gw.url
    ))
    .body("good v=1 1\nbad line here\n")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-platform-error-code"], "invalid");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "invalid", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unable to parse 'bad line here'"),
        "{v}"
    );
    let r = post(format!("{}/api/v2/write?org=inmate", gw.url))
        .body("m v=1 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.lines("telegraf").is_empty() && b.lines("telegraf").is_empty());
    let r = common::api::http()
        .post(format!(
            "{}/api/v2/write?org=inmate&bucket=telegraf",
            gw.url
        ))
        .header("Authorization", "Token wrong")
        .body("m v=1 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_query_falls_back_with_the_same_body() {
    let (a, b, gw, _d) = v2_cluster("token-a", "token-b", GW_TOKEN).await;
    let r = post(format!(
        "{}/api/v2/write?org=inmate&bucket=telegraf",
        gw.url
    ))
    .body("temp,room=k v=21.5 1700000000000000000\n")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.lines("telegraf").len() == 1
            })
            .await
        );
    }
    a.set_down(true);
    let flux = r#"from(bucket: "telegraf") |> range(start: 0)"#;
    for _ in 0..4 {
        let r = post(format!("{}/api/v2/query?org=inmate", gw.url))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"query": flux, "type": "flux"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = r.text().await.unwrap();
        assert!(csv.contains("21.5"), "{csv}");
    }
    // Every query that reached b carried the full body.
    let bodies: Vec<_> = b
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/query")
        .collect();
    assert!(!bodies.is_empty());
    assert!(
        bodies
            .iter()
            .all(|r| String::from_utf8_lossy(&r.body).contains("telegraf"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_creation_uses_each_nodes_org_id_and_deletes_fan_out() {
    let (a, b, gw, _d) = v2_cluster("token-a", "token-b", GW_TOKEN).await;
    let r = post(format!("{}/api/v2/buckets", gw.url))
        .header("Content-Type", "application/json")
        .body(
            serde_json::json!({"orgID": a.org_id, "name": "fresh", "retentionRules": []})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    for n in [&a, &b] {
        let buckets = n.buckets();
        let fresh = buckets.iter().find(|(_, name, _)| name == "fresh");
        assert!(
            fresh.is_some_and(|(_, _, org)| org == &n.org_id),
            "{}: {buckets:?}",
            n.url
        );
    }
    let r = post(format!("{}/api/v2/delete?org=inmate&bucket=telegraf", gw.url))
        .header("Content-Type", "application/json")
        .body(r#"{"start":"1970-01-01T00:00:00Z","stop":"2030-01-01T00:00:00Z","predicate":"host=\"a\""}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for n in [&a, &b] {
        let d = n.deletes();
        assert_eq!(d.len(), 1, "{}", n.url);
        assert_eq!(d[0].predicate, "host=\"a\"");
    }
}

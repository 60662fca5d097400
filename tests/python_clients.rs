//! The official Python client `influxdb-client` as a real client of the
//! gateway, with two v2 stand-in nodes (each with its own token and IDs).
//! `scripts/test.sh` creates the venv and sets `INMATE_PYTHON`.

mod common;

use std::time::Duration;

use common::api::{eventually, v2_cluster};

const GW_TOKEN: &str = "py-gateway-token";

async fn run(phase: &str, url: &str, org_id: &str) -> serde_json::Value {
    common::run_py_script("v2_client.py", &[phase, url, GW_TOKEN, org_id]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_through_the_gateway() {
    let (a, b, gw, _dir) = v2_cluster("py-a", "py-b", GW_TOKEN).await;

    let first = run("first", &gw.url, &a.org_id).await;
    assert_eq!(first["ping"], true, "{first}");
    // Node b goes away mid-stream; the client must not notice.
    b.set_unreachable(true);
    let second = run("second", &gw.url, &a.org_id).await;
    assert!(second["csv_rows"].as_u64().unwrap() > 10, "{second}");
    assert_eq!(second["bad_status"], 400, "{second}");
    assert_eq!(second["bad_body"]["code"], "invalid", "{second}");
    assert_eq!(second["wrong_token_status"], 401, "{second}");
    assert_eq!(second["bucket_name"], "pybucket", "{second}");

    b.set_unreachable(false);
    for (n, tok) in [(&a, "py-a"), (&b, "py-b")] {
        let ok = eventually(Duration::from_secs(30), || async {
            n.lines("telegraf").len() == 10_000
        })
        .await;
        assert!(
            ok,
            "{} has {} of 10000 lines",
            n.url,
            n.lines("telegraf").len()
        );
        let writes: Vec<_> = n
            .requests()
            .into_iter()
            .filter(|r| r.path == "/api/v2/write")
            .collect();
        assert!(
            writes
                .iter()
                .all(|r| r.header("authorization") == Some(&format!("Token {tok}")))
        );
        let ok = eventually(Duration::from_secs(10), || async {
            n.buckets()
                .iter()
                .any(|(_, name, org)| name == "pybucket" && org == &n.org_id)
        })
        .await;
        assert!(
            ok,
            "{}: pybucket must exist with the node's own orgID: {:?}",
            n.url,
            n.buckets()
        );
    }
}

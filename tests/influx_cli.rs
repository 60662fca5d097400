//! The `influx` CLI (InfluxDB 1.x) as a real client: the demo promise that
//! `influx -port 8080` gives a working shell through the gateway.

mod common;

use std::time::Duration;

use common::api::eventually;
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;

use common::influx_cli as influx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_cli_create_insert_select_through_the_gateway() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    let (ok, text) = influx(gw.port, &["-execute", "CREATE DATABASE cli"]).await;
    assert!(ok, "{text}");
    let (ok, text) = influx(
        gw.port,
        &[
            "-database",
            "cli",
            "-execute",
            "INSERT weather,city=London temp=12.5",
        ],
    )
    .await;
    assert!(ok, "{text}");
    let (ok, text) = influx(
        gw.port,
        &[
            "-database",
            "cli",
            "-format",
            "json",
            "-execute",
            "SELECT temp FROM weather",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert!(
        text.contains("12.5"),
        "the CLI must read its own insert: {text}"
    );
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("cli", "weather", "temp").await == 1
            })
            .await
        );
    }
    // Both nodes hold the identical point (the gateway stamped the time).
    assert_eq!(
        a.query("cli", "SELECT * FROM weather").await,
        b.query("cli", "SELECT * FROM weather").await
    );
}

//! The gateway's credentials as real clients send them, against real
//! `influxd`: the `influx` CLI with `-username/-password` and influxdb-python
//! with username/password (both HTTP Basic), `u`/`p` in the URL, and named
//! clients with scopes and a database allow-list. `/ping` needs none.

mod common;

use std::time::Duration;

use common::api::{eventually, two_nodes};
use common::gateway::{Gateway, config_yaml};

const ADMIN: &str = "adm-token";

/// Two nodes with database `d`, behind a gateway with `auth_token` and three
/// named clients: `tel` (write, only `d`, a token), `graf` (read, a
/// password), `ops` (admin, a password).
async fn setup() -> (common::Influxd, common::Influxd, Gateway, tempfile::TempDir) {
    let (a, b) = two_nodes("d").await;
    let hash = |pw: &str| inmate::server::auth::hash_password(pw).expect("hash");
    let extra = format!(
        "auth_token: {ADMIN}\nclients:\n\
         - {{name: tel, token: tel-token, scopes: [write], databases: [d]}}\n\
         - {{name: graf, password_hash: '{}', scopes: [read]}}\n\
         - {{name: ops, password_hash: '{}', scopes: [read, write, admin]}}\n",
        hash("graf-pw"),
        hash("ops-pw")
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], &extra), dir.path()).await;
    (a, b, gw, dir)
}

use common::influx_cli as influx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_cli_with_username_and_password() {
    let (a, b, gw, _dir) = setup().await;
    let user = |u: &'static str, p: &'static str| ["-username", u, "-password", p];
    // A named admin client, and the admin token as a password (any user).
    for (u, p) in [("ops", "ops-pw"), ("whoever", ADMIN)] {
        let (ok, text) = influx(
            gw.port,
            &[&user(u, p)[..], &["-execute", "CREATE DATABASE cli"]].concat(),
        )
        .await;
        assert!(ok, "{u}: {text}");
    }
    let (ok, text) = influx(
        gw.port,
        &[
            &user("ops", "ops-pw")[..],
            &["-database", "cli", "-execute", "INSERT m,t=a v=1i 1000"],
        ]
        .concat(),
    )
    .await;
    assert!(ok, "{text}");
    let (ok, text) = influx(
        gw.port,
        &[
            &user("graf", "graf-pw")[..],
            &[
                "-database",
                "cli",
                "-format",
                "json",
                "-execute",
                "SELECT v FROM m",
            ],
        ]
        .concat(),
    )
    .await;
    assert!(
        ok && text.contains("\"v\""),
        "read-only client reads: {text}"
    );
    // Wrong password, and a read-only client trying an admin statement.
    let (ok, text) = influx(
        gw.port,
        &[&user("graf", "nope")[..], &["-execute", "SHOW DATABASES"]].concat(),
    )
    .await;
    assert!(!ok && text.contains("authorization failed"), "{text}");
    let (ok, text) = influx(
        gw.port,
        &[
            &user("graf", "graf-pw")[..],
            &["-execute", "DROP DATABASE cli"],
        ]
        .concat(),
    )
    .await;
    assert!(!ok && text.contains("not authorized"), "{text}");
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("cli", "m", "v").await == 1
            })
            .await,
            "the CLI's insert reached every node"
        );
    }
}

async fn py(gw: &Gateway, user: &str, password: &str, db: &str) -> serde_json::Value {
    let port = gw.port.to_string();
    common::run_py_script("v1_auth.py", &["127.0.0.1", &port, user, password, db]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_python_with_username_and_password_and_scopes() {
    let (a, b, gw, _dir) = setup().await;
    // Admin client: writes and reads.
    let r = py(&gw, "ops", "ops-pw", "d").await;
    assert_eq!(r["write"], "ok", "{r}");
    // Write-only client (its token as the password): writes, cannot read.
    let r = py(&gw, "tel", "tel-token", "d").await;
    assert_eq!(r["write"], "ok", "{r}");
    assert_eq!(r["query"], 403, "{r}");
    // Read-only client: cannot write, reads what the others wrote.
    let r = py(&gw, "graf", "graf-pw", "d").await;
    assert_eq!(r["write"], 403, "{r}");
    assert_eq!(r["count"], serde_json::json!([1]), "{r}");
    // Wrong password: 401 for both.
    let r = py(&gw, "graf", "wrong", "d").await;
    assert_eq!(
        (r["write"].clone(), r["query"].clone()),
        (401.into(), 401.into()),
        "{r}"
    );
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("d", "py", "v").await == 1
            })
            .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_credentials_allow_lists_and_an_open_ping() {
    let (_a, _b, gw, _dir) = setup().await;
    let http = common::api::http();
    let status = |r: reqwest::Response| r.status().as_u16();
    // /ping answers without credentials, as InfluxDB does; /health does not.
    assert_eq!(
        status(http.get(format!("{}/ping", gw.url)).send().await.unwrap()),
        204
    );
    assert_eq!(
        status(http.get(format!("{}/health", gw.url)).send().await.unwrap()),
        401
    );
    // u/p in the URL.
    let write = |q: &str| {
        http.post(format!("{}/write?{q}", gw.url))
            .body("m v=1i 1\n")
            .send()
    };
    assert_eq!(status(write("db=d&u=tel&p=tel-token").await.unwrap()), 204);
    assert_eq!(status(write("db=d&u=tel&p=bad").await.unwrap()), 401);
    // The write-only client is limited to database d.
    let r = write("db=other&u=tel&p=tel-token").await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("not authorized for database \\\"other\\\""),
        "{text}"
    );
    // Bearer with a client token; a read names a database outside the list.
    let q = |db: &str, q: &str| {
        http.get(format!("{}/query", gw.url))
            .query(&[("db", db), ("q", q)])
            .header("Authorization", "Bearer tel-token")
            .send()
    };
    assert_eq!(
        status(q("d", "SELECT * FROM m").await.unwrap()),
        403,
        "tel has no read scope"
    );
    let graf = |db: &str, query: &str| {
        http.get(format!("{}/query", gw.url))
            .query(&[("db", db), ("q", query)])
            .basic_auth("graf", Some("graf-pw"))
            .send()
    };
    assert_eq!(status(graf("d", "SELECT * FROM m").await.unwrap()), 200);
    assert_eq!(status(graf("d", "CREATE DATABASE x").await.unwrap()), 403);
}

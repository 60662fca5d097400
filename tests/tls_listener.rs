//! TLS in: the gateway's listener serves HTTPS (top-level `tls`), the
//! `influx` CLI and influxdb-python talk to it, and SIGHUP swaps the
//! certificate for new connections while open ones keep working.

mod common;

use std::path::Path;
use std::time::Duration;

use common::api::eventually;
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;
use common::tls::{self, TestCa};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

async fn tls_gateway(node: &Influxd, crt: &Path, key: &Path, data: &Path) -> Gateway {
    let extra = format!(
        "tls:\n  cert_file: {}\n  key_file: {}\n",
        crt.display(),
        key.display()
    );
    Gateway::start(&config_yaml(&[&node.url], &extra), data).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_and_open_connections_keep_working() {
    let node = Influxd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    let old_ca_file = old_ca.write_ca(dir.path(), "old-ca.pem");
    let new_ca_file = new_ca.write_ca(dir.path(), "new-ca.pem");
    let (crt, key) = old_ca.write_leaf(dir.path(), "gw");
    let data = tempfile::tempdir().unwrap();
    let gw = tls_gateway(&node, &crt, &key, data.path()).await;

    let mut open = tls::connect(gw.port, &old_ca_file).await.unwrap();
    assert_eq!(tls::get(&mut open, "/ping").await.unwrap(), 204);
    let old_der = tls::peer_cert(&open);
    // Plain HTTP gets no answer from a TLS listener.
    assert!(!common::influxd::ping(&gw.url, Duration::from_secs(2)).await);

    // Rotate the files (a new CA, as a renewal to another issuer would), then SIGHUP.
    let staged = tempfile::tempdir().unwrap();
    let (new_crt, new_key) = new_ca.write_leaf(staged.path(), "gw");
    std::fs::copy(&new_crt, &crt).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    kill(Pid::from_raw(gw.pid().unwrap() as i32), Signal::SIGHUP).unwrap();

    let swapped = eventually(Duration::from_secs(10), || async {
        match tls::connect(gw.port, &new_ca_file).await {
            Ok(mut c) => tls::get(&mut c, "/ping").await.ok() == Some(204),
            Err(_) => false,
        }
    })
    .await;
    assert!(
        swapped,
        "no handshake with the new certificate:\n{}",
        gw.logs()
    );
    let fresh = tls::connect(gw.port, &new_ca_file).await.unwrap();
    assert_eq!(tls::peer_cert(&fresh), tls::cert_der(&crt));
    assert!(
        tls::connect(gw.port, &old_ca_file).await.is_err(),
        "the old certificate is still served"
    );
    // The connection opened before the reload still serves requests, on its
    // original certificate.
    assert_eq!(tls::get(&mut open, "/ping").await.unwrap(), 204);
    assert_eq!(tls::peer_cert(&open), old_der);
    assert!(
        gw.logs_with("TLS certificate reloaded")
            .await
            .contains("TLS certificate reloaded")
    );

    // A broken file on the next SIGHUP keeps the current certificate.
    std::fs::write(&key, "not a key").unwrap();
    kill(Pid::from_raw(gw.pid().unwrap() as i32), Signal::SIGHUP).unwrap();
    let failed = eventually(Duration::from_secs(10), || async {
        gw.logs().contains("TLS certificate reload failed")
    })
    .await;
    assert!(failed, "{}", gw.logs());
    let mut c = tls::connect(gw.port, &new_ca_file).await.unwrap();
    assert_eq!(tls::get(&mut c, "/ping").await.unwrap(), 204);
}

async fn influx_cli(port: u16, ca: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("influx");
    cmd.args(["-ssl", "-host", "127.0.0.1", "-port", &port.to_string()]);
    match ca {
        // Go reads extra trust from SSL_CERT_FILE.
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.arg("-unsafeSsl"),
    };
    common::run_influx_cli(cmd.args(args)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_cli_and_python_over_tls() {
    let node = Influxd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("gateway CA");
    let ca_file = ca.write_ca(dir.path(), "ca.pem");
    let (crt, key) = ca.write_leaf(dir.path(), "gw");
    let data = tempfile::tempdir().unwrap();
    let gw = tls_gateway(&node, &crt, &key, data.path()).await;

    let (ok, text) = influx_cli(gw.port, None, &["-execute", "CREATE DATABASE tlscli"]).await;
    assert!(ok, "{text}");
    let insert = ["-database", "tlscli", "-execute", "INSERT w,c=a t=12.5"];
    let (ok, text) = influx_cli(gw.port, Some(&ca_file), &insert).await;
    assert!(ok, "{text}");
    let select = [
        "-database",
        "tlscli",
        "-format",
        "json",
        "-execute",
        "SELECT t FROM w",
    ];
    let (ok, text) = influx_cli(gw.port, Some(&ca_file), &select).await;
    assert!(ok && text.contains("12.5"), "{text}");
    // Verification is real: without the CA trusted, the CLI refuses.
    let other = TestCa::new("other").write_ca(dir.path(), "other.pem");
    let (ok, text) = influx_cli(gw.port, Some(&other), &select).await;
    assert!(!ok || !text.contains("12.5"), "{text}");

    let Some(python) = common::python() else {
        eprintln!("INMATE_PYTHON not set: skipping the influxdb-python part");
        return;
    };
    let script = format!(
        r#"
from influxdb import InfluxDBClient
c = InfluxDBClient(host="127.0.0.1", port={port}, database="tlspy", ssl=True, verify_ssl={ca:?})
c.create_database("tlspy")
c.write_points([{{"measurement": "m", "fields": {{"v": 7.0}}, "time": 1}}])
print(list(c.query("SELECT v FROM m").get_points()))
"#,
        port = gw.port,
        ca = ca_file.display().to_string(),
    );
    let out = tokio::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("7.0"), "{text}");
}

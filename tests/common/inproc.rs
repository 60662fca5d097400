//! A gateway served inside the test's own runtime (no child process), for
//! tests that need no `influxd` or must inspect this process: front-door
//! behaviour, lying nodes, hostile clients.
//!
//! Why here: three suites started it the same way (config from YAML, a
//! free loopback port, `app::start` then `serve` until dropped).

use std::path::Path;

use inmate::config::Config;
use tokio::sync::oneshot;

/// A running in-process gateway; stops when dropped.
pub struct InProc {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`, for raw TCP clients.
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the gateway `yaml` describes (named `file` in config errors; its
/// `data_dir` inside `dir`, which lives as long as the gateway) on a free
/// loopback port. Panics if the config is bad or the gateway cannot start.
pub async fn serve(yaml: &str, file: &str, dir: tempfile::TempDir) -> InProc {
    let config = Config::from_yaml(yaml, Path::new(file), &|_| None)
        .unwrap_or_else(|e| panic!("config: {e}\n{yaml}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let running = inmate::app::start(config).await.expect("start");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        running.serve(listener, shutdown).await.expect("serve");
    });
    InProc {
        url: format!("http://{addr}"),
        addr,
        stop: Some(tx),
        _dir: dir,
    }
}

/// [`serve`] in front of the nodes at `urls` (each with the YAML keys
/// `node_keys`, e.g. `"    gzip: false\n"`), on loopback with a fresh data
/// dir; `rest` is the remaining YAML (top-level keys, newline-terminated).
pub async fn serve_nodes(urls: &[&str], node_keys: &str, rest: &str, file: &str) -> InProc {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut yaml = String::from("addresses:\n");
    for u in urls {
        yaml.push_str(&format!("  - url: {u}\n{node_keys}"));
    }
    yaml.push_str(&format!(
        "bind_address: 127.0.0.1\nport: 0\ndata_dir: {}\n{rest}",
        serde_json::to_string(&dir.path().to_string_lossy()).expect("quote")
    ));
    serve(&yaml, file, dir).await
}

//! A full or failing disk at the door, in-process with the log on the
//! fault-injecting filesystem (`inmate::log::fs::FaultyFs`): the client gets
//! 503 and nothing is acknowledged or logged; once the disk recovers the
//! next write succeeds. Also: a second gateway on the same `data_dir` is
//! refused with a clear message.

mod common;

use std::path::Path;

use inmate::clock::Clock;
use inmate::config::Config;
use inmate::log::fs::FaultyFs;

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

fn config(dir: &Path) -> Config {
    let yaml = format!(
        "addresses:\n  - url: http://127.0.0.1:{}\nbind_address: 127.0.0.1\nport: 0\n\
         data_dir: {}\nshutdown_timeout: 0.2\nhealth_check_interval: 0.05\n",
        common::free_port(),
        serde_json::to_string(&dir.to_string_lossy()).expect("quote"),
    );
    Config::from_yaml(&yaml, Path::new("faults.yaml"), &|_| None).expect("config")
}

async fn write(url: &str, body: &str) -> (u16, String) {
    let r = common::api::http()
        .post(format!("{url}/write?db=d"))
        .body(body.to_string())
        .send()
        .await
        .expect("write");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_next_write_after_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(".seg");
    let running = inmate::app::start_with(config(dir.path()), Clock::system(), fs.clone())
        .await
        .expect("start");
    let gw = running.gateway().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(running.serve(listener, async {
        let _ = stopped.await;
    }));

    assert_eq!(write(&url, "m v=1i 1\n").await.0, 204);
    let before = gw.log.next_seq();
    for (errno, what) in [
        (ENOSPC, "No space left on device"),
        (EIO, "Input/output error"),
    ] {
        fs.fail_writes(0, errno);
        let (s, text) = write(&url, "m v=2i 2\n").await;
        assert_eq!(s, 503, "{what}: {text}");
        assert!(text.contains("cannot store the write durably"), "{text}");
        assert!(text.contains(what), "{text}");
        assert_eq!(gw.log.next_seq(), before, "nothing was logged");
        fs.clear();
    }
    fs.fail_syncs(0, EIO);
    let (s, text) = write(&url, "m v=3i 3\n").await;
    fs.clear();
    // fsync policy `always` (the default): a failed fsync is a failed write.
    assert_eq!(s, 503, "{text}");
    assert_eq!(gw.log.next_seq(), before, "nothing was logged");
    assert_eq!(write(&url, "m v=4i 4\n").await.0, 204, "the disk is back");
    assert_eq!(gw.log.next_seq(), before + 1);
    let _ = stop.send(());
    server.await.unwrap().expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = inmate::app::start(config(dir.path())).await.expect("first");
    let second = inmate::app::start(config(dir.path())).await;
    let err = second.err().expect("the second must not start").to_string();
    assert!(err.contains("another inmate process"), "{err}");
    let _ = first.shutdown().await;
}

//! Line protocol at the door, against two real `influxd`: partial writes,
//! gateway timestamps, precision, gzip, body limits, and escaped lines.

mod common;

use std::io::Write;
use std::time::Duration;

use common::api::{eventually, http, two_nodes, write_lp};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;

/// All rows of `q` on a node, as JSON.
async fn rows(node: &Influxd, db: &str, q: &str) -> serde_json::Value {
    node.query(db, q).await["results"][0]["series"].clone()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partly_bad_body_keeps_good_lines_on_both_nodes() {
    let (a, b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    let body = "m v=1i 1000\nm v= 2000\nm v=3i 3000\n";
    let (s, text) = write_lp(&gw.url, "db=d", body, None).await;
    assert_eq!(s, 400, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.starts_with("partial write: unable to parse 'm v= 2000': "),
        "{msg}"
    );
    assert!(msg.ends_with(" dropped=0"), "{msg}");
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("d", "m", "v").await == 2
            })
            .await
        );
    }
    // Every line bad: a plain parse error, nothing stored.
    let (s, text) = write_lp(&gw.url, "db=d", "bad\n", None).await;
    assert_eq!(s, 400);
    assert!(text.contains("\"unable to parse 'bad': "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untimed_points_are_identical_and_precisions_agree() {
    let (a, b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    // No timestamp: the gateway stamps once; both nodes store the same time.
    let (s, t) = write_lp(
        &gw.url,
        "db=d",
        "untimed,k=1 v=1i\nuntimed,k=2 v=2i\n",
        None,
    )
    .await;
    assert_eq!(s, 204, "{t}");
    // The same instant in s and ms precision.
    let (s, t) = write_lp(
        &gw.url,
        "db=d&precision=s",
        "prec,p=s v=1i 1700000000\n",
        None,
    )
    .await;
    assert_eq!(s, 204, "{t}");
    let (s, t) = write_lp(
        &gw.url,
        "db=d&precision=ms",
        "prec,p=ms v=1i 1700000000000\n",
        None,
    )
    .await;
    assert_eq!(s, 204, "{t}");
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("d", "prec", "v").await == 2
            })
            .await
        );
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("d", "untimed", "v").await == 2
            })
            .await
        );
    }
    let ua = rows(&a, "d", "SELECT v FROM untimed").await;
    let ub = rows(&b, "d", "SELECT v FROM untimed").await;
    assert_eq!(ua, ub, "replicas must store identical untimed points");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let t = ua[0]["values"][0][0].as_i64().unwrap();
    assert!(
        (now_ns - t).abs() < 60_000_000_000,
        "stamped time {t} is not near now {now_ns}"
    );
    for n in [&a, &b] {
        let v = rows(n, "d", "SELECT v FROM prec").await;
        let times: Vec<i64> = v[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect();
        // Two series (p=s and p=ms), one instant.
        assert_eq!(
            times,
            vec![1_700_000_000_000_000_000; 2],
            "both precisions land on one instant: {v}"
        );
    }
}

/// Both places a gzip body is inflated: on the worker that read it (two
/// workers), and on the blocking pool (`worker_threads: 1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_bombs_and_size_limits() {
    let (a, b) = two_nodes("d").await;
    let mut answers = Vec::new();
    for workers in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let gw = Gateway::start(
            &config_yaml(
                &[&a.url, &b.url],
                &format!("max_body_size: 1MB\nworker_threads: {workers}\n"),
            ),
            dir.path(),
        )
        .await;
        let m = format!("gz{workers}");
        let resp = http()
            .post(format!("{}/write?db=d", gw.url))
            .header("Content-Encoding", "gzip")
            .body(gzip(format!("{m} v=1i 1\n{m} v=2i 2\n").as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{workers} workers");
        for n in [&a, &b] {
            assert!(
                eventually(Duration::from_secs(10), || async {
                    n.count("d", &m, "v").await == 2
                })
                .await,
                "{workers} workers"
            );
        }
        // A small gzip that inflates past the limit.
        let bomb = gzip(&vec![b'#'; 50 << 20]);
        assert!(bomb.len() < 1 << 20);
        let resp = http()
            .post(format!("{}/write?db=d", gw.url))
            .header("Content-Encoding", "gzip")
            .body(bomb)
            .send()
            .await
            .unwrap();
        let bomb = (resp.status(), resp.text().await.unwrap());
        assert_eq!(bomb.0, 413, "{workers} workers");
        // Corrupt gzip.
        let resp = http()
            .post(format!("{}/write?db=d", gw.url))
            .header("Content-Encoding", "gzip")
            .body(b"\x1f\x8b\x08\x00garbage".to_vec())
            .send()
            .await
            .unwrap();
        let corrupt = (resp.status(), resp.text().await.unwrap());
        assert_eq!(corrupt.0, 400, "{workers} workers");
        answers.push((bomb, corrupt));
    }
    // The same answers, word for word, wherever the body was inflated.
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_megabytes_get_413_and_no_db_gets_400() {
    let a = Influxd::start().await;
    a.create_db("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url], ""), dir.path()).await;
    let big = "big v=1i 1\n".repeat(40_000_000 / 11 + 1);
    let (s, _) = write_lp(&gw.url, "db=d", big, None).await;
    assert_eq!(s, 413);
    let (s, text) = write_lp(&gw.url, "", "m v=1i 1\n", None).await;
    assert_eq!(s, 400);
    assert_eq!(text, r#"{"error":"database is required"}"#);
    let (s, text) = write_lp(&gw.url, "db=d&precision=x", "m v=1i 1\n", None).await;
    assert_eq!(s, 400);
    assert!(text.contains("invalid precision"), "{text}");
    assert_eq!(a.count("d", "big", "v").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_escaped_lines_round_trip_identically() {
    let (a, b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;
    let body = concat!(
        "esc\\ aped\\,m,t\\ k=t\\,v\\=1 f\\ k=\"quote \\\" and \\\\ back\",n=1i 1000\n",
        "esc\\ aped\\,m,t\\ k=x f\\ k=\"ünïcödé\",n=-9223372036854775808i 2000\n",
        "esc\\ aped\\,m,t\\ k=y f\\ k=\"\",n=2i,u=true,fl=1.5e3 3000\n",
    );
    let (s, t) = write_lp(&gw.url, "db=d", body, None).await;
    assert_eq!(s, 204, "{t}");
    let q = r#"SELECT * FROM "esc aped,m""#;
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.query("d", q).await["results"][0]["series"][0]["values"]
                    .as_array()
                    .map(Vec::len)
                    == Some(3)
            })
            .await
        );
    }
    let va = rows(&a, "d", q).await;
    assert_eq!(va, rows(&b, "d", q).await);
    let text = va.to_string();
    assert!(text.contains(r#"quote \" and \\ back"#), "{text}");
    assert!(text.contains("ünïcödé"), "{text}");
    assert!(text.contains("t,v=1"), "{text}");
}

/// A body of several MiB is cut at newlines and scanned on several cores
/// (`lineproto::scan_split`); the answer and what the nodes store are those
/// of one scan: a bad line near the end is named, an untimed one in the
/// middle is stamped, every other line arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_megabyte_bodies_scan_in_parts_as_one() {
    let (a, b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    let n: u64 = 40_000;
    let mut body = String::new();
    for i in 0..n {
        if i == n * 6 / 10 {
            body.push_str("big,host=untimed v=1i,w=0.5\n");
        }
        if i == n * 9 / 10 {
            body.push_str("big,host=bad v=\n");
        }
        let ts = 1_700_000_000_000_000_000u64 + i;
        body.push_str(&format!(
            "big,host=server{},region=us-west v={i}i,w=0.5 {ts}\n",
            i % 10
        ));
    }
    assert!(body.len() > 2 << 20, "{} bytes", body.len());
    let (s, text) = write_lp(&gw.url, "db=d", body, None).await;
    assert_eq!(s, 400, "{text}");
    assert!(
        text.contains("partial write: unable to parse 'big,host=bad v=': "),
        "{text}"
    );
    for node in [&a, &b] {
        assert_points(node, "big", n + 1).await;
    }
}

/// Waits (up to 30 s) until `node` holds `n` points of `measurement`
/// (field `v`, database `d`).
async fn assert_points(node: &Influxd, measurement: &str, n: u64) {
    let ok = eventually(Duration::from_secs(30), || async {
        node.count("d", measurement, "v").await == n
    })
    .await;
    assert!(ok, "{} of {n}", node.count("d", measurement, "v").await);
}

/// A body under 1 MiB that arrives in pieces (here: two parts with a pause
/// between, so the gateway reads it in chunks of 8 KiB to 256 KiB) is
/// stored as the chunks it came in (`lineproto::scan_chunks`: the large
/// chunk kept as it is, the small ones copied); both nodes still get every
/// point exactly once, and the answer is 204.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_read_in_chunks_arrives_whole_on_both_nodes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    let n: u64 = 14_000;
    let body: String = (0..n)
        .map(|i| {
            let ts = 1_700_000_000_000_000_000u64 + i;
            format!(
                "chunked,host=server{},region=us-west v={i}i,w=0.5 {ts}\n",
                i % 10
            )
        })
        .collect();
    assert!(
        body.len() > 600_000 && body.len() < 1 << 20,
        "{}",
        body.len()
    );
    let addr = gw.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /write?db=d HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (first, second) = body.as_bytes().split_at(body.len() * 2 / 5 + 7);
    s.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(second).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    for node in [&a, &b] {
        assert_points(node, "chunked", n).await;
    }
}

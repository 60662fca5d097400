//! Scoped read-your-writes and load-aware reads, against real `influxd`.
//!
//! A node is made to lag on writes by putting an in-test HTTP proxy in front
//! of it that holds `/write` for a configurable time and passes everything
//! else through at once; load-aware choice uses two in-test stubs with a
//! fixed service time.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::api::{first_count, http, write_lp};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

const T0: i64 = 1_700_000_000_000_000_000;

/// Serves `handler` on a free loopback port; returns its URL.
async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let h = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let h = h.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}

/// A proxy to `target` that holds each `/write` for `delay` ms.
async fn delay_proxy(target: String, delay: Arc<AtomicU64>) -> String {
    serve(move |req: Request<Incoming>| {
        let (target, delay) = (target.clone(), delay.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if parts.uri.path() == "/write" {
                tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Acquire))).await;
            }
            let url = format!(
                "{target}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let mut r = http().request(parts.method, url).body(body);
            for (k, v) in &parts.headers {
                if k != "host" {
                    r = r.header(k, v);
                }
            }
            let resp = r.send().await.unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    out = out.header(k, v);
                }
            }
            out.body(Full::new(resp.bytes().await.unwrap_or_default()))
                .unwrap()
        }
    })
    .await
}

/// One influxd behind a write-delaying proxy, and a gateway in front.
async fn lagging_node(extra: &str) -> (Influxd, Arc<AtomicU64>, Gateway, tempfile::TempDir) {
    let node = Influxd::start().await;
    let delay = Arc::new(AtomicU64::new(0));
    let proxy = delay_proxy(node.url.clone(), delay.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "health_check_interval: 0.2\nhealth_check_timeout: 1\nretry_delay: 0.1\nquery_timeout: 10\nwrite_timeout: 10\n{extra}"
    );
    let gw = Gateway::start(&config_yaml(&[&proxy], &yaml), dir.path()).await;
    for db in ["a", "b"] {
        let (s, v) = query(&gw.url, "", &format!("CREATE DATABASE {db}"), &[]).await;
        assert_eq!(s, 200, "{v}");
    }
    (node, delay, gw, dir)
}

/// POST /query; returns status, the stale header, the JSON body and the time taken.
async fn query(url: &str, db: &str, q: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let (s, _, v, _) = timed_query(url, db, q, headers).await;
    (s, v)
}

async fn timed_query(
    url: &str,
    db: &str,
    q: &str,
    headers: &[(&str, &str)],
) -> (u16, bool, serde_json::Value, Duration) {
    let started = Instant::now();
    let mut r = http()
        .post(format!("{url}/query"))
        .query(&[("db", db), ("q", q)]);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.expect("query");
    let status = resp.status().as_u16();
    let stale = resp.headers().get("x-inmate-stale").is_some();
    let v = resp.json().await.unwrap_or_default();
    (status, stale, v, started.elapsed())
}

fn point(m: &str, i: i64) -> String {
    format!("{m} v={i}i {}\n", T0 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_another_database_does_not_wait_for_lagging_writes() {
    let (_node, delay, gw, _dir) = lagging_node("read_wait: 3\n").await;
    let (s, t) = write_lp(&gw.url, "db=b", point("m", 1), None).await;
    assert_eq!(s, 204, "{t}");
    // The node applies b's write, then starts lagging on a burst to a.
    let (s, _, v, _) = timed_query(&gw.url, "b", "SELECT count(v) FROM m", &[]).await;
    assert_eq!((s, first_count(&v)), (200, 1), "{v}");
    delay.store(1_000, Ordering::Release);
    for i in 0..5 {
        let (s, t) = write_lp(&gw.url, "db=a", point("m", i), None).await;
        assert_eq!(s, 204, "{t}");
    }
    let (s, stale, v, took) = timed_query(&gw.url, "b", "SELECT count(v) FROM m", &[]).await;
    assert_eq!((s, first_count(&v)), (200, 1), "{v}");
    assert!(!stale, "b's writes are all applied: not stale");
    assert!(
        took < Duration::from_millis(800),
        "read of b waited {took:?}"
    );
    // Fully qualified names scope the read the same way.
    let (_, stale, _, took) = timed_query(
        &gw.url,
        "",
        r#"SELECT count(v) FROM "b"."autogen"."m""#,
        &[],
    )
    .await;
    assert!(
        !stale && took < Duration::from_millis(800),
        "qualified read waited {took:?}"
    );
    // SHOW DATABASES only needs what exists.
    let (_, stale, _, took) = timed_query(&gw.url, "", "SHOW DATABASES", &[]).await;
    assert!(
        !stale && took < Duration::from_millis(800),
        "SHOW DATABASES waited {took:?}"
    );
    // A read of a waits for the burst (it lands within read_wait) and sees it.
    let (s, stale, v, took) = timed_query(&gw.url, "a", "SELECT count(v) FROM m", &[]).await;
    assert_eq!((s, first_count(&v)), (200, 5), "{v}");
    assert!(!stale);
    assert!(
        took > Duration::from_millis(300),
        "read of a did not wait: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_sees_the_write_before_it() {
    let (_node, delay, gw, _dir) = lagging_node("read_wait: 3\n").await;
    delay.store(150, Ordering::Release);
    for i in 1..=20 {
        let (s, t) = write_lp(&gw.url, "db=a", point("rw", i), None).await;
        assert_eq!(s, 204, "{t}");
        let (s, stale, v, _) = timed_query(&gw.url, "a", "SELECT count(v) FROM rw", &[]).await;
        assert_eq!(s, 200, "{v}");
        assert!(!stale, "read {i} was stale");
        assert_eq!(first_count(&v), i as u64, "read {i} missed its write: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_no_node_can_answer_fresh_is_stale_after_read_wait() {
    let (_node, delay, gw, _dir) = lagging_node("read_wait: 0.5\n").await;
    delay.store(3_000, Ordering::Release);
    let (s, t) = write_lp(&gw.url, "db=a", point("st", 1), None).await;
    assert_eq!(s, 204, "{t}");
    let (s, stale, v, took) = timed_query(&gw.url, "a", "SELECT count(v) FROM st", &[]).await;
    assert_eq!(s, 200, "{v}");
    assert!(stale, "the answer must be marked stale");
    assert!(
        took >= Duration::from_millis(450),
        "answered before read_wait: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2_000),
        "waited past read_wait: {took:?}"
    );
    // Opting out: `any` answers at once.
    let hdr = [("X-Inmate-Read-Consistency", "any")];
    let (s, stale, _, took) = timed_query(&gw.url, "a", "SELECT count(v) FROM st", &hdr).await;
    assert_eq!(s, 200);
    assert!(
        stale && took < Duration::from_millis(300),
        "any waited {took:?}"
    );
    let bad = [("X-Inmate-Read-Consistency", "sometimes")];
    let (s, _) = query(&gw.url, "a", "SELECT count(v) FROM st", &bad).await;
    assert_eq!(s, 400);
    // `fresh` waits for everything, even for a read of b.
    let (s, t) = write_lp(&gw.url, "db=a", point("st", 2), None).await;
    assert_eq!(s, 204, "{t}");
    let fresh = [("X-Inmate-Read-Consistency", "fresh")];
    let (_, stale, _, took) = timed_query(&gw.url, "b", "SHOW MEASUREMENTS", &fresh).await;
    assert!(
        stale && took >= Duration::from_millis(450),
        "fresh did not wait: {took:?}"
    );
}

/// A node stand-in: `/query` answers a fixed result after `service`, at
/// most `cap` at a time; everything else 204. Counts queries.
async fn stub(service: Duration, cap: usize, count: Arc<AtomicUsize>) -> String {
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    serve(move |req: Request<Incoming>| {
        let (slots, count) = (slots.clone(), count.clone());
        async move {
            if req.uri().path() != "/query" {
                return Response::builder()
                    .status(204)
                    .body(Full::default())
                    .unwrap();
            }
            let _slot = slots.acquire().await.unwrap();
            tokio::time::sleep(service).await;
            count.fetch_add(1, Ordering::AcqRel);
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"results":[{"statement_id":0}]}"#,
                )))
                .unwrap()
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_gets_fewer_reads() {
    let (fast_n, slow_n) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let fast = stub(Duration::from_millis(5), 4, fast_n.clone()).await;
    let slow = stub(Duration::from_millis(40), 4, slow_n.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&fast, &slow], ""), dir.path()).await;
    let url = Arc::new(gw.url.clone());
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    let (s, _) = query(&url, "x", "SELECT * FROM m", &[]).await;
                    assert_eq!(s, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (f, s) = (
        fast_n.load(Ordering::Acquire),
        slow_n.load(Ordering::Acquire),
    );
    assert_eq!(f + s, 240);
    assert!(s * 3 < f, "slow node got {s} reads, fast {f}");
}

//! [`Pool`] against tiny fake nodes: each test scripts the raw bytes a
//! node writes on each connection and checks what the client made of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What the fake node does with one request on a connection.
#[derive(Clone)]
enum Act {
    /// Writes these pieces (pausing between them so they arrive apart).
    Answer(Vec<&'static str>),
    /// Writes the pieces, then closes the connection.
    AnswerClose(Vec<&'static str>),
    /// Reads the request and closes without answering.
    Close,
    /// Answers, then (20 ms later) sends these bytes unasked.
    AnswerStray(Vec<&'static str>, &'static str),
}

struct Fake {
    port: u16,
    /// Connections accepted.
    conns: Arc<AtomicUsize>,
}

/// A node that runs `script[i]` on its i-th connection, one act per
/// request; requests are read up to the end of their head.
async fn fake(script: Vec<Vec<Act>>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = conns.clone();
    tokio::spawn(async move {
        for acts in script {
            let (mut s, _) = listener.accept().await.unwrap();
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                for act in acts {
                    if !read_head(&mut s).await {
                        return;
                    }
                    let (pieces, close, stray) = match act {
                        Act::Answer(p) => (p, false, None),
                        Act::AnswerClose(p) => (p, true, None),
                        Act::AnswerStray(p, junk) => (p, false, Some(junk)),
                        Act::Close => return,
                    };
                    for p in pieces.into_iter().chain(stray) {
                        s.write_all(p.as_bytes()).await.unwrap();
                        s.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if close {
                        return;
                    }
                }
                // Keep the connection open until the client closes it.
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    Fake { port, conns }
}

/// Reads one request head (bodies are not used by these tests).
async fn read_head(s: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) => got.push(b[0]),
            _ => return false,
        }
    }
    true
}

fn get(port: u16, method: &str) -> Request<Chunks> {
    Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}/query?q=x"))
        .body(Chunks::default())
        .unwrap()
}

async fn read_all(pool: &Pool, port: u16, method: &str) -> Result<(u16, Bytes), String> {
    let resp = pool
        .send(get(port, method))
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

const OK_5: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[tokio::test]
async fn content_length_body_and_connection_reuse() {
    let node = fake(vec![vec![
        Act::Answer(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello",
            " world",
        ]),
        Act::Answer(vec![OK_5]),
    ]])
    .await;
    let pool = Pool::default();
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got, (200, Bytes::from("hello world")));
    assert_eq!(pool.idles.len(), 1, "pooled after a complete body");
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got, (200, Bytes::from("hello")));
    assert_eq!(
        node.conns.load(Ordering::SeqCst),
        1,
        "one connection for both"
    );
}

#[tokio::test]
async fn chunked_body_split_across_writes() {
    let node = fake(vec![vec![
        Act::Answer(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r",
            "\nhel",
            "lo\r\n1",
            "0;ext=1\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n",
            "\r\n",
        ]),
        Act::Answer(vec![OK_5]),
    ]])
    .await;
    let pool = Pool::default();
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got, (200, Bytes::from("hello0123456789abcdef")));
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got.1, "hello");
    assert_eq!(node.conns.load(Ordering::SeqCst), 1, "reused after chunked");
}

#[tokio::test]
async fn body_read_to_eof_is_not_reused() {
    let node = fake(vec![
        vec![Act::AnswerClose(vec![
            "HTTP/1.1 200 OK\r\n\r\nuntil",
            " the end",
        ])],
        vec![Act::Answer(vec![OK_5])],
    ])
    .await;
    let pool = Pool::default();
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got.1, "until the end");
    assert_eq!(pool.idles.len(), 0);
    read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(node.conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stale_pooled_connection_is_retried_on_a_fresh_one() {
    // The first connection answers once, then closes when asked again
    // (reading the request, answering nothing): an idle close racing the reuse.
    let node = fake(vec![
        vec![Act::Answer(vec![OK_5]), Act::Close],
        vec![Act::Answer(vec![OK_5])],
    ])
    .await;
    let pool = Pool::default();
    read_all(&pool, node.port, "GET").await.unwrap();
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got, (200, Bytes::from("hello")));
    assert_eq!(node.conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idle_connection_closed_by_the_node_is_not_reused() {
    let node = fake(vec![
        vec![Act::AnswerClose(vec![OK_5])],
        vec![Act::Answer(vec![OK_5])],
    ])
    .await;
    let pool = Pool::default();
    read_all(&pool, node.port, "GET").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got.1, "hello");
    assert_eq!(node.conns.load(Ordering::SeqCst), 2);
}

/// The answer's last read drained the socket, so tokio's readiness was
/// cleared (sparing a `recvfrom` at reuse, see `poll_fill`); bytes that
/// arrive later must still keep the connection from being reused, or they
/// would be read as the next answer.
#[tokio::test]
async fn bytes_sent_after_the_answer_keep_a_connection_out_of_reuse() {
    let node = fake(vec![
        vec![Act::AnswerStray(vec![OK_5], "junk")],
        vec![Act::Answer(vec![OK_5])],
    ])
    .await;
    let pool = Pool::default();
    read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(pool.idles.len(), 1, "pooled after a complete body");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got, (200, Bytes::from("hello")));
    assert_eq!(node.conns.load(Ordering::SeqCst), 2, "a fresh connection");
}

#[tokio::test]
async fn a_fresh_connection_closed_without_answer_is_an_error() {
    let node = fake(vec![vec![Act::Close], vec![Act::Answer(vec![OK_5])]]).await;
    let pool = Pool::default();
    let err = read_all(&pool, node.port, "GET").await.unwrap_err();
    assert!(err.contains("closed before message completed"), "{err}");
    assert_eq!(node.conns.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn malformed_answers_are_errors_and_not_pooled() {
    for answer in [
        "HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
    ] {
        let node = fake(vec![vec![Act::Answer(vec![answer])]]).await;
        let pool = Pool::default();
        let err = read_all(&pool, node.port, "GET").await.unwrap_err();
        assert!(err.contains("invalid"), "{answer:?}: {err}");
        assert_eq!(pool.idles.len(), 0, "{answer:?}");
    }
}

#[tokio::test]
async fn body_cut_short_is_an_error() {
    let node = fake(vec![vec![Act::AnswerClose(vec![
        "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello",
    ])]])
    .await;
    let pool = Pool::default();
    let err = read_all(&pool, node.port, "GET").await.unwrap_err();
    assert!(err.contains("closed before message completed"), "{err}");
    assert_eq!(pool.idles.len(), 0);
}

#[tokio::test]
async fn head_has_no_body_even_with_content_length() {
    let node = fake(vec![vec![
        Act::Answer(vec!["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"]),
        Act::Answer(vec!["HTTP/1.1 100 Continue\r\n\r\n", OK_5]),
    ]])
    .await;
    let pool = Pool::default();
    let got = read_all(&pool, node.port, "HEAD").await.unwrap();
    assert_eq!(got, (200, Bytes::new()));
    let got = read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(got, (200, Bytes::from("hello")), "1xx skipped");
    assert_eq!(node.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropped_body_closes_the_connection() {
    let node = fake(vec![
        vec![Act::Answer(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        ])],
        vec![Act::Answer(vec![OK_5])],
    ])
    .await;
    let pool = Pool::default();
    let resp = pool.send(get(node.port, "GET")).await.unwrap();
    drop(resp);
    assert_eq!(pool.idles.len(), 0);
    read_all(&pool, node.port, "GET").await.unwrap();
    assert_eq!(node.conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_reads_like_hyper() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = read_all(&Pool::default(), port, "GET").await.unwrap_err();
    assert!(
        err.starts_with("connection error: Connection refused"),
        "{err}"
    );
}

#[tokio::test]
async fn request_head_and_body_go_out_as_written() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 256];
        while !got.ends_with(b"body!") {
            let n = s.read(&mut b).await.unwrap();
            got.extend_from_slice(&b[..n]);
        }
        s.write_all(OK_5.as_bytes()).await.unwrap();
        String::from_utf8(got).unwrap()
    });
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}/api/v2/query?org=o"))
        .header("accept", "application/csv")
        .body(
            [Bytes::from("bo"), Bytes::from("dy!")]
                .into_iter()
                .collect(),
        )
        .unwrap();
    let resp = Pool::default().send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        server.await.unwrap(),
        format!(
            "POST /api/v2/query?org=o HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
             accept: application/csv\r\ncontent-length: 5\r\n\r\nbody!"
        )
    );
}

#[tokio::test]
async fn the_pool_keeps_at_most_max_idle() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let idles = Idles::default();
    let mut accepted = Vec::new();
    for _ in 0..MAX_IDLE + 3 {
        idles.put(TcpStream::connect(addr).await.unwrap());
        accepted.push(listener.accept().await.unwrap().0);
    }
    assert_eq!(idles.len(), MAX_IDLE);
    assert!(idles.take().is_some());
    assert_eq!(idles.len(), MAX_IDLE - 1);
}

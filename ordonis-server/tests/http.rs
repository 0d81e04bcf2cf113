//! Slow and idle clients, on raw sockets: the header-read (and keep-alive idle) timeout, the
//! request timeout that cuts off a trickled body, and the cap on connections served at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(tweak: impl FnOnce(&mut ordonis_server::Config)) -> ordonis_server::Server {
    let mut config =
        ordonis_server::Config::for_tests(common::sqlite_path().to_string_lossy().into_owned());
    config.workers = 0;
    tweak(&mut config);
    common::start_with(config).await
}

/// Reads until the peer closes (or resets) the connection; what was read, and when it
/// closed. Panics if it is still open after `limit`.
async fn read_until_closed(s: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {limit:?}; read {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n")
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let server = start(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    // A connection that never sends anything.
    let t = Instant::now();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let got = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    let waited = t.elapsed();
    assert!(got.is_empty(), "{got}");
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // A keep-alive connection after its first response.
    let mut ka = TcpStream::connect(server.addr).await.unwrap();
    ka.write_all(get("/healthz").as_bytes()).await.unwrap();
    let t = Instant::now();
    let got = read_until_closed(&mut ka, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    // Headers trickled slower than the timeout allows.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let t = Instant::now();
    for chunk in ["GET /healthz HTTP/1.1\r\n", "host: localhost\r\n"] {
        if slow.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let got = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(!got.contains("200 OK"), "{got}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    server.shutdown().await;
}

#[tokio::test]
async fn a_trickled_body_is_cut_off() {
    let server = start(|c| c.request_timeout = Duration::from_secs(1)).await;
    let s = TcpStream::connect(server.addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let head = format!(
        "POST /api/integrations HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100000\r\n\r\n",
        common::TOKEN
    );
    w.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        // One byte every 200 ms: 100 KB would take over five hours.
        for _ in 0..100 {
            if w.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let got = read_until_closed(&mut r, Duration::from_secs(5)).await;
    let waited = t.elapsed();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    writer.abort();
    // A prompt request is unaffected.
    let mut ok = TcpStream::connect(server.addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut ok, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_connection_cap_holds() {
    let server = start(|c| {
        c.max_connections = 2;
        c.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _second = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The third waits in the backlog: its request gets no answer while two are served.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(1000), third.read(&mut buf)).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");
    // One closes: the third is served.
    drop(first);
    let got = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    server.shutdown().await;
}

/// Issue #31, point 6: one client cannot hold the server. With the defaults (1,024
/// connections, 128 per client) a client at 127.0.0.2 opens 1,100 connections that each
/// send a request head and one byte of a long body; `/healthz` from another address still
/// answers at once, and the slow client holds no more than its share.
#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let server = start(|_| {}).await;
    let head = "POST /integrations/jira/00000000-0000-0000-0000-000000000000/webhook HTTP/1.1\r\n\
                host: localhost\r\ncontent-length: 100000\r\n\r\n ";
    let mut held = Vec::new();
    for _ in 0..1100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut s) = socket.connect(server.addr).await else {
            continue;
        };
        // A connection over the share may already be closed: that is the point.
        let _ = s.write_all(head.as_bytes()).await;
        held.push(s);
    }
    let t = Instant::now();
    let mut ok = TcpStream::connect(server.addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut ok, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Of the slow client's connections, at most its share is still open.
    let mut open = 0;
    for s in &mut held {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(2), s.read(&mut buf)).await {
            Err(_) => open += 1,     // nothing to read yet: served, waiting for the body
            Ok(Ok(0) | Err(_)) => {} // closed by the server
            Ok(Ok(_)) => open += 1,
        }
    }
    assert!((1..=128).contains(&open), "{open} connections held");
    drop(held);
    server.shutdown().await;
}

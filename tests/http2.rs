//! HTTP/2 against a real nginx (h2c with prior knowledge and h2 over TLS with ALPN) and against
//! a small `h2` server that resets streams: exact counts, shared connections, the server's
//! stream limit, GOAWAY, RST_STREAM.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stampede::Summary;
use stampede::config::{Dur, Overrides};

use crate::support::nginx::Nginx;

/// An in-process HTTP/2 run: `vus` VUs share `iterations`, on one worker.
fn run(url: String, vus: u64, iterations: u64, streams: u32) -> Summary {
    let ov = Overrides {
        urls: vec![url],
        vus: Some(vus),
        iterations: Some(iterations),
        workers: Some(1),
        http2: true,
        h2_streams: Some(streams),
        insecure: true,
        ..Default::default()
    };
    let cfg = stampede::config::load(None, &ov).expect("ad-hoc config");
    stampede::run_config(cfg, None, stampede::Presentation::default()).expect("run")
}

/// The log lines' connections: requests by nginx connection number.
fn by_connection(lines: &[String]) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        let conn: u64 = l
            .split(' ')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("log line {l:?}"));
        *m.entry(conn).or_insert(0) += 1;
    }
    m
}

#[test]
fn h2c_and_h2_over_tls_counts_equal_nginx_access_log_with_1_and_10_streams() {
    let n = Nginx::start_h2("");
    let mut seen = 0;
    for (tls, streams, conns) in [(false, 1, 20), (false, 10, 2), (true, 1, 20), (true, 10, 2)] {
        let url = if tls {
            format!("https://127.0.0.1:{}/", n.tls_port)
        } else {
            format!("http://127.0.0.1:{}/", n.port)
        };
        let s = run(url, 20, 2000, streams);
        let what = format!("tls={tls} streams={streams}: {:?}", s.errors);
        assert_eq!(
            (s.requests, s.failures, s.reconnects),
            (2000, 0, 0),
            "{what}"
        );
        let lines = n.log_lines();
        let mine = &lines[seen..];
        seen = lines.len();
        assert_eq!(mine.len(), 2000, "{what}");
        let scheme = if tls { "https" } else { "http" };
        for l in mine {
            assert!(
                l.contains(&format!(" HTTP/2.0 {scheme} ")),
                "{what}: not HTTP/2 over {scheme}: {l}"
            );
        }
        // One connection per VU, or 20 VUs over connections of 10 streams.
        assert_eq!(by_connection(mine).len(), conns, "{what}");
    }
}

#[test]
fn indexed_request_heads_reach_nginx_intact_through_its_dynamic_table() {
    // Each connection indexes request fields in nginx's HPACK table: fixed heads become a few
    // octets of indexes, a templated head adds only `:authority` and `user-agent`, a
    // credential never enters, and two 2,500-octet headers cannot both fit in 4,096 octets, so
    // they evict each other request after request. nginx echoes the headers it decoded: one
    // wrong index and a check fails (or nginx ends the connection with COMPRESSION_ERROR).
    let n = Nginx::start_h2("");
    let pad_a = "a".repeat(2500);
    let pad_b = "b".repeat(2500);
    let mut seen = 0;
    for tls in [false, true] {
        let base = if tls {
            format!("https://127.0.0.1:{}", n.tls_port)
        } else {
            format!("http://127.0.0.1:{}", n.port)
        };
        let toml = format!(
            r#"
            [defaults]
            base_url = "{base}"
            http2 = true
            h2_max_streams = 10
            insecure = true

            [[scenarios]]
            executor = "shared-iterations"
            vus = 20
            iterations = 300

            [[scenarios.requests]]
            url = "/echo/fixed"
            headers = {{ x-fixed = "one" }}
            checks = {{ status = 200, body_contains = "GET /echo/fixed ua=stampede/" }}

            [[scenarios.requests]]
            method = "POST"
            url = "/echo/login"
            headers = {{ authorization = "Bearer s3cret", x-fixed = "two" }}
            json = {{ user = "admin" }}
            checks = {{ status = 200, body_contains = "POST /echo/login ua=stampede/" }}

            [[scenarios.requests]]
            name = "/echo/items/{{vu}}"
            url = "/echo/items/${{vu}}"
            headers = {{ x-fixed = "three" }}
            checks = {{ status = 200, body_contains = "fixed=three pad= auth=" }}

            [[scenarios.requests]]
            url = "/echo/pad"
            headers = {{ x-pad = "{pad_a}" }}
            checks = {{ status = 200, body_contains = "pad={pad_a} " }}

            [[scenarios.requests]]
            url = "/echo/pad"
            headers = {{ x-pad = "{pad_b}" }}
            checks = {{ status = 200, body_contains = "pad={pad_b} " }}
            "#
        );
        let s = crate::support::run_toml(&toml, &Overrides::default());
        let what = format!("tls={tls}: {:?}", s.errors);
        assert_eq!(
            (s.requests, s.failures, s.reconnects),
            (1500, 0, 0),
            "{what}"
        );
        // A status and a body check per request.
        assert_eq!(s.checks.len(), 10, "{what}");
        for c in &s.checks {
            assert_eq!((c.passes, c.fails), (300, 0), "{what}: {c:?}");
        }
        let lines = n.logged_connections();
        let mine = &lines[seen..];
        seen = lines.len();
        assert_eq!(mine.len(), 1500, "{what}");
        let items = mine
            .iter()
            .filter(|(_, u)| u.starts_with("/echo/items/"))
            .count();
        assert_eq!(items, 300, "{what}");
        // 20 VUs over connections of 10 streams.
        let conns: std::collections::BTreeSet<u64> = mine.iter().map(|(c, _)| *c).collect();
        assert_eq!(conns.len(), 2, "{what}");
    }
}

#[test]
fn a_server_stream_limit_below_h2_streams_is_honoured() {
    // nginx allows 2 streams per connection; stampede is asked for 10: 20 VUs need 10
    // connections, and nginx never has to refuse a stream (a refused one would be retried and
    // show as a reconnect).
    let n = Nginx::start_h2("http2_max_concurrent_streams 2;");
    let s = run(format!("http://127.0.0.1:{}/", n.port), 20, 2000, 10);
    assert_eq!(
        (s.requests, s.failures, s.reconnects),
        (2000, 0, 0),
        "{:?}",
        s.errors
    );
    let lines = n.log_lines();
    assert_eq!(lines.len(), 2000);
    assert_eq!(by_connection(&lines).len(), 10);
}

#[test]
fn goaway_after_keepalive_requests_loses_no_request_and_invents_no_failure() {
    // After 50 requests on a connection nginx sends GOAWAY and finishes the streams it took.
    let n = Nginx::start_h2("keepalive_requests 50;");
    let mut seen = 0;
    for streams in [1, 10] {
        let s = run(format!("http://127.0.0.1:{}/", n.port), 20, 3000, streams);
        assert_eq!(
            (s.requests, s.failures),
            (3000, 0),
            "streams={streams}: {:?}",
            s.errors
        );
        let lines = n.log_lines();
        let mine = &lines[seen..];
        seen = lines.len();
        assert_eq!(mine.len(), 3000, "streams={streams}");
        let conns = by_connection(mine);
        assert!(conns.values().all(|&r| r <= 50), "{conns:?}");
        assert!(conns.len() >= 60, "{}", conns.len());
    }
}

#[test]
fn a_graceful_nginx_reload_mid_run_loses_no_request() {
    let n = Nginx::start_h2("");
    let url = format!("http://127.0.0.1:{}/", n.port);
    let ov = Overrides {
        urls: vec![url],
        vus: Some(20),
        duration: Some(Dur::millis(2500)),
        workers: Some(1),
        http2: true,
        h2_streams: Some(10),
        ..Default::default()
    };
    let cfg = stampede::config::load(None, &ov).expect("ad-hoc config");
    let runner = std::thread::spawn(move || {
        stampede::run_config(cfg, None, stampede::Presentation::default()).expect("run")
    });
    std::thread::sleep(Duration::from_millis(1000));
    n.reload();
    let s = runner.join().expect("run thread");
    assert_eq!(s.failures, 0, "{:?}", s.errors);
    assert!(s.requests > 100, "{}", s.requests);
    assert_eq!(n.log_lines().len() as u64, s.requests);
}

/// What the test server does with the stream it receives as its `n`-th (from 0).
type Policy = fn(u64) -> Option<h2::Reason>;

/// A small HTTP/2 server (h2c) that answers `200 ok`, or resets the stream when `policy` says
/// so. Counts the streams it answered.
fn reset_server(policy: Policy) -> (u16, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let answered = Arc::new(AtomicU64::new(0));
    let done = answered.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let seen = Arc::new(AtomicU64::new(0));
            while let Ok((tcp, _)) = l.accept().await {
                let (seen, done) = (seen.clone(), done.clone());
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((_req, mut respond))) = conn.accept().await {
                        let i = seen.fetch_add(1, Ordering::SeqCst);
                        if let Some(reason) = policy(i) {
                            respond.send_reset(reason);
                            continue;
                        }
                        let resp = http::Response::builder()
                            .status(200)
                            .body(())
                            .expect("response");
                        if let Ok(mut body) = respond.send_response(resp, false) {
                            let _ = body.send_data(bytes::Bytes::from_static(b"ok"), true);
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
    });
    (port, answered)
}

#[test]
fn refused_streams_go_again_once_and_other_resets_fail() {
    // Every other stream refused: each refused request goes once more and succeeds.
    let (port, answered) = reset_server(|i| (i % 2 == 0).then_some(h2::Reason::REFUSED_STREAM));
    let s = run(format!("http://127.0.0.1:{port}/"), 1, 100, 1);
    assert_eq!((s.requests, s.failures), (100, 0), "{:?}", s.errors);
    assert_eq!(s.reconnects, 100);
    assert_eq!(answered.load(Ordering::SeqCst), 100);

    // Always refused: one retry, then a failure.
    let (port, answered) = reset_server(|_| Some(h2::Reason::REFUSED_STREAM));
    let s = run(format!("http://127.0.0.1:{port}/"), 1, 10, 1);
    assert_eq!((s.requests, s.failures), (10, 10));
    assert_eq!(
        s.errors.get("connection_reset"),
        Some(&10),
        "{:?}",
        s.errors
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0);

    // Any other reset is a failure, never sent again (the server may have acted on it).
    let (port, answered) = reset_server(|i| (i % 4 == 0).then_some(h2::Reason::INTERNAL_ERROR));
    let s = run(format!("http://127.0.0.1:{port}/"), 1, 100, 1);
    assert_eq!((s.requests, s.failures, s.reconnects), (100, 25, 0));
    assert_eq!(
        s.errors.get("connection_reset"),
        Some(&25),
        "{:?}",
        s.errors
    );
    assert_eq!(answered.load(Ordering::SeqCst), 75);
}

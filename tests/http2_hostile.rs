//! HTTP/2 against hostile servers (issue 21): a raw frame writer plays a server that floods
//! PINGs or SETTINGS and never reads, bombs HPACK, answers with endless 1xx or an endless body,
//! allows no streams, lies in `content-length`, sends GOAWAY on every request; nginx plays one
//! that does not speak h2 over TLS; and nobody listens on a shared pool's port. Each run goes
//! through the binary with its peak RSS read from /proc, its wall time bounded, its exit code
//! checked and its counts compared with what the peer saw.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stampede::config::Overrides;

/// Frame types and flags (RFC 9113 §6).
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
const MAX_CONCURRENT_STREAMS: u16 = 3;

/// Most memory any of these runs may take (stampede with one worker needs some 20 MB).
const RSS_BOUND_KB: u64 = 200 * 1024;

/// What the hostile server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    /// HEADERS frames from the client: the requests that reached the server.
    requests: AtomicU64,
    /// Connections still open.
    open: AtomicU64,
}

/// One accepted connection, past the client's preface.
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// The next frame from the client: (type, flags, stream, payload); None when it closed.
    fn frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let (k, f) = (self.buf[3], self.buf[4]);
                    let s =
                        u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]])
                            & 0x7fff_ffff;
                    let p = self.buf[9..9 + len].to_vec();
                    self.buf.drain(..9 + len);
                    return Some((k, f, s, p));
                }
            }
            let mut chunk = [0u8; 16384];
            match self.tcp.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next request's stream id (HEADERS from the client), counted; None when it closed.
    fn request(&mut self, seen: &Seen) -> Option<u32> {
        loop {
            let (k, _, s, _) = self.frame()?;
            if k == HEADERS {
                seen.requests.fetch_add(1, Ordering::SeqCst);
                return Some(s);
            }
        }
    }

    fn send(&mut self, b: &[u8]) -> bool {
        self.tcp.write_all(b).is_ok()
    }
}

type Behaviour = fn(Conn, &Seen);

/// A server on a free loopback port: each connection's preface is read (unless `read` is
/// false: the server never reads), its SETTINGS sent, then `behaviour` runs in a thread.
fn hostile(settings: &[(u16, u32)], read: bool, behaviour: Behaviour) -> (u16, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let hello = settings_frame(settings);
    std::thread::spawn(move || {
        for tcp in l.incoming() {
            let Ok(mut tcp) = tcp else { return };
            s.connections.fetch_add(1, Ordering::SeqCst);
            s.open.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            let hello = hello.clone();
            std::thread::spawn(move || {
                let mut preface = [0u8; 24];
                if (!read || tcp.read_exact(&mut preface).is_ok()) && tcp.write_all(&hello).is_ok()
                {
                    behaviour(
                        Conn {
                            tcp,
                            buf: Vec::new(),
                        },
                        &s,
                    );
                }
                s.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, seen)
}

/// Waits (up to 5 s) until every connection the server accepted has ended, so its counts
/// are final.
fn settled(seen: &Seen) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen.open.load(Ordering::SeqCst), 0, "connections left open");
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = (payload.len() as u32).to_be_bytes();
    let mut out = vec![l[1], l[2], l[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings_frame(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

/// A header block as HEADERS and as many CONTINUATION frames as 16 KiB frames need.
fn header_frames(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = if block.is_empty() {
        vec![&[]]
    } else {
        block.chunks(16_384).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        let mut flags = if i + 1 == chunks.len() {
            END_HEADERS
        } else {
            0
        };
        let kind = if i == 0 {
            if end_stream {
                flags |= END_STREAM;
            }
            HEADERS
        } else {
            CONTINUATION
        };
        out.extend(frame(kind, flags, stream, c));
    }
    out
}

/// An HPACK integer with an `n`-bit prefix.
fn hpack_int(out: &mut Vec<u8>, flags: u8, n: u8, v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = v - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// An HPACK literal field with a literal name; `index`: with incremental indexing.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8], index: bool) {
    out.push(if index { 0x40 } else { 0x00 });
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name);
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

/// `:status 200` (static index 8) and the given fields, without indexing.
fn ok_block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = vec![0x88];
    for (n, v) in fields {
        literal(&mut b, n, v, false);
    }
    b
}

/// A finished run of the binary.
struct Ran {
    code: Option<i32>,
    wall: Duration,
    /// Peak resident set (VmHWM), KiB, last read before the process exited.
    peak_kb: u64,
    stderr: String,
    summary: serde_json::Value,
}

impl Ran {
    fn num(&self, key: &str) -> u64 {
        self.summary[key].as_u64().unwrap_or_else(|| {
            panic!(
                "summary has no {key}: {}\nstderr: {}",
                self.summary, self.stderr
            )
        })
    }

    /// The summary's `errors`, by class.
    fn errors(&self) -> Vec<(String, u64)> {
        self.summary["errors"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Exit 0 with a summary, within `wall` and the RSS bound.
    fn assert_bounded(&self, wall: Duration) {
        eprintln!("peak RSS {} KiB, wall {:?}", self.peak_kb, self.wall);
        let what = format!(
            "exit {:?}, {:?}, {} KiB peak\nsummary: {}\nstderr: {}",
            self.code, self.wall, self.peak_kb, self.summary, self.stderr
        );
        assert_eq!(self.code, Some(0), "{what}");
        assert!(self.wall < wall, "{what}");
        assert!(self.peak_kb > 0 && self.peak_kb < RSS_BOUND_KB, "{what}");
    }
}

/// Runs `stampede run ARGS --quiet --summary-json …`, reading its VmHWM every 10 ms; killed
/// (and the test failed) after `limit`.
fn run_measured(args: &[&str], limit: Duration) -> Ran {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .args(args)
        .args(["--quiet", "--summary-json"])
        .arg(&json)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .env("STAMPEDE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stampede binary");
    let status = format!("/proc/{}/status", child.id());
    let start = Instant::now();
    let mut peak_kb = 0;
    let code = loop {
        if let Some(kb) = std::fs::read_to_string(&status).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        }) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stampede {args:?} still running after {limit:?} (peak {peak_kb} KiB)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let summary = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Ran {
        code,
        wall,
        peak_kb,
        stderr,
        summary,
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// Floods `what` (one frame, repeated) and never reads, until the client closes.
fn flood(mut c: Conn, what: &[u8]) {
    let batch: Vec<u8> = what
        .iter()
        .copied()
        .cycle()
        .take(what.len() * 4096)
        .collect();
    while c.send(&batch) {}
}

#[test]
fn ping_and_settings_floods_from_a_server_that_never_reads_stay_bounded() {
    let floods: [(&str, Behaviour); 2] = [
        ("PING", |c, _| flood(c, &frame(PING, 0, 0, b"flooding"))),
        ("SETTINGS", |c, _| flood(c, &frame(SETTINGS, 0, 0, &[]))),
    ];
    for (name, behaviour) in floods {
        let (port, seen) = hostile(&[], false, behaviour);
        let r = run_measured(
            &[
                "--url",
                &url(port),
                "--http2",
                "-c",
                "1",
                "-d",
                "2s",
                "--timeout",
                "5s",
                "--workers",
                "1",
            ],
            Duration::from_secs(20),
        );
        r.assert_bounded(Duration::from_secs(10));
        settled(&seen);
        // Each connection carried one request, which failed when the client ended it.
        let conns = seen.connections.load(Ordering::SeqCst);
        let what = format!("{name}: {} connections; {}", conns, r.summary);
        assert!(conns >= 1, "{what}");
        assert_eq!(r.num("requests"), conns, "{what}");
        assert_eq!(r.num("failures"), conns, "{what}");
        assert_eq!(r.errors(), [("protocol".to_string(), conns)], "{what}");
        assert!(
            r.stderr.contains("ENHANCE_YOUR_CALM"),
            "{name}: {}",
            r.stderr
        );
    }
}

/// Answers each request with a header block: `:status 200`, `x-tok` (4,000 octets, entered
/// in the dynamic table), then `refs` one-octet references to it.
fn bomb(mut c: Conn, seen: &Seen, refs: usize) {
    while let Some(s) = c.request(seen) {
        let mut b = vec![0x88];
        literal(&mut b, b"x-tok", &[b't'; 4000], true);
        b.extend(std::iter::repeat_n(0xbe, refs));
        if !c.send(&header_frames(s, &b, true)) {
            return;
        }
    }
}

#[test]
fn an_hpack_bomb_with_a_header_extracted_is_refused_not_materialized() {
    // 200,000 references (800 MB decoded) fit the block bound and fail the stream; 1 MiB of
    // them (4 GB) overflows the block bound and ends the connection.
    let bombs: [(&str, Behaviour, u64); 2] = [
        ("list", |c, s| bomb(c, s, 200_000), 1),
        ("block", |c, s| bomb(c, s, 1 << 20), 20),
    ];
    for (name, behaviour, conns) in bombs {
        let (port, seen) = hostile(&[], true, behaviour);
        let toml = format!(
            r#"
            [defaults]
            base_url = "http://127.0.0.1:{port}"
            http2 = true
            timeout = "5s"

            [[scenarios]]
            executor = "shared-iterations"
            vus = 1
            iterations = 20

            [[scenarios.requests]]
            url = "/"
            extract = {{ tok = {{ header = "x-tok" }} }}
            "#
        );
        let (_dir, path) = crate::support::write_config("bomb.toml", &toml);
        let path = path.to_str().expect("utf-8 path");
        let r = run_measured(&[path, "--workers", "1"], Duration::from_secs(30));
        r.assert_bounded(Duration::from_secs(20));
        settled(&seen);
        let what = format!("{name}: {}", r.summary);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 20, "{what}");
        assert_eq!(seen.connections.load(Ordering::SeqCst), conns, "{what}");
        assert_eq!((r.num("requests"), r.num("failures")), (20, 20), "{what}");
        assert_eq!(r.errors(), [("protocol".to_string(), 20)], "{what}");
    }
}

/// Answers the newest request with `first(stream)` and then `more(stream)` again and again,
/// `pause` apart, for as long as the client lets it (a reader thread counts the requests).
fn follow(c: Conn, seen: &Seen, first: fn(u32) -> Vec<u8>, more: fn(u32) -> Vec<u8>, pause: u64) {
    let latest = Arc::new(AtomicU64::new(0));
    let Ok(mut w) = c.tcp.try_clone() else { return };
    let l = latest.clone();
    let writer = std::thread::spawn(move || {
        let mut current = 0;
        loop {
            let s = l.load(Ordering::SeqCst);
            if s == u64::MAX {
                return;
            }
            if s > 0 {
                let s = s as u32;
                let out = if s == current { more(s) } else { first(s) };
                current = s;
                if w.write_all(&out).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_micros(pause));
        }
    });
    let mut c = c;
    while let Some(s) = c.request(seen) {
        latest.store(u64::from(s), Ordering::SeqCst);
    }
    latest.store(u64::MAX, Ordering::SeqCst);
    let _ = writer.join();
}

/// A 103 (Early Hints) response head.
fn early_hints(s: u32) -> Vec<u8> {
    let mut b = Vec::new();
    literal(&mut b, b":status", b"103", false);
    header_frames(s, &b, false)
}

/// Endless 103 responses, one a millisecond.
fn endless_1xx(c: Conn, seen: &Seen) {
    follow(c, seen, early_hints, early_hints, 1000);
}

#[test]
fn endless_informational_responses_fail_the_request_and_the_run_ends_on_time() {
    let (port, seen) = hostile(&[], true, endless_1xx);
    let r = run_measured(
        &[
            "--url",
            &url(port),
            "--http2",
            "-c",
            "1",
            "-d",
            "3s",
            "--timeout",
            "2s",
            "--graceful-stop",
            "1s",
            "--workers",
            "1",
        ],
        Duration::from_secs(30),
    );
    r.assert_bounded(Duration::from_secs(6));
    settled(&seen);
    let sent = seen.requests.load(Ordering::SeqCst);
    let what = format!("server saw {sent}: {}", r.summary);
    // Six 103s a request, a millisecond apart: hundreds in 3 s, each a protocol failure.
    assert!(sent > 50, "{what}");
    assert_eq!(
        (r.num("requests"), r.num("failures")),
        (sent, sent),
        "{what}"
    );
    assert_eq!(r.errors(), [("protocol".to_string(), sent)], "{what}");
}

/// A 200 and then DATA as fast as the socket takes it, never ending the stream: one-octet
/// frames, so the client always has more to read than it can take.
fn endless_body(c: Conn, seen: &Seen) {
    fn data(s: u32) -> Vec<u8> {
        frame(DATA, 0, s, b"x").repeat(16_384)
    }
    fn head(s: u32) -> Vec<u8> {
        let mut out = header_frames(s, &ok_block(&[]), false);
        out.extend(data(s));
        out
    }
    follow(c, seen, head, data, 0);
}

#[test]
fn a_flood_of_data_does_not_outlive_the_request_timeout() {
    let (port, seen) = hostile(&[], true, endless_body);
    let r = run_measured(
        &[
            "--url",
            &url(port),
            "--http2",
            "-c",
            "1",
            "-d",
            "2s",
            "--timeout",
            "1s",
            "--graceful-stop",
            "1s",
            "--workers",
            "1",
        ],
        Duration::from_secs(30),
    );
    r.assert_bounded(Duration::from_secs(5));
    settled(&seen);
    let sent = seen.requests.load(Ordering::SeqCst);
    let what = format!("server saw {sent}: {}", r.summary);
    // One second each: two requests, or three if the last started just before the end.
    assert!((2..=3).contains(&sent), "{what}");
    assert_eq!(
        (r.num("requests"), r.num("failures")),
        (sent, sent),
        "{what}"
    );
    assert!(
        r.errors()
            .iter()
            .all(|(k, _)| k == "timeout" || k == "cancelled"),
        "{what}"
    );
}

/// Reads everything, answers nothing.
fn silent(mut c: Conn, seen: &Seen) {
    while c.request(seen).is_some() {}
}

#[test]
fn a_server_that_allows_no_streams_gets_no_request_and_no_hot_loop() {
    for streams in ["1", "10"] {
        let (port, seen) = hostile(&[(MAX_CONCURRENT_STREAMS, 0)], true, silent);
        let r = run_measured(
            &[
                "--url",
                &url(port),
                "--http2",
                "--h2-streams",
                streams,
                "-c",
                "2",
                "-d",
                "2s",
                "--timeout",
                "500ms",
                "--graceful-stop",
                "1s",
                "--workers",
                "1",
            ],
            Duration::from_secs(20),
        );
        r.assert_bounded(Duration::from_secs(6));
        settled(&seen);
        let what = format!("--h2-streams {streams}: {}\n{}", r.summary, r.stderr);
        // Own connections: each VU's first request went out with the preface, before the
        // server's SETTINGS came, and timed out unanswered; a shared connection takes VUs only
        // once the SETTINGS are in. Nobody opened more connections.
        let (sent, conns) = if streams == "1" { (2, 2) } else { (0, 1) };
        assert_eq!(seen.requests.load(Ordering::SeqCst), sent, "{what}");
        assert_eq!(seen.connections.load(Ordering::SeqCst), conns, "{what}");
        // Each VU waits its timeout, request after request: 2 × 4 in 2 s, and the cut ones.
        let n = r.num("requests");
        assert!((6..=10).contains(&n), "{what}");
        assert_eq!((r.num("failures"), r.num("reconnects")), (n, 0), "{what}");
        let errors = r.errors();
        let count = |k: &str| errors.iter().find(|(e, _)| e == k).map_or(0, |(_, c)| *c);
        assert_eq!(count("timeout"), sent, "{what}");
        assert_eq!(count("no_stream") + count("cancelled"), n - sent, "{what}");
        assert!(count("no_stream") >= 4, "{what}");
        assert_eq!(r.stderr.matches("allows no streams").count(), 1, "{what}");
    }
}

/// Request by request: `content-length: 100` and 2 octets; `content-length: 1` and 5,000;
/// two `:status` fields; a correct response.
fn liar(mut c: Conn, seen: &Seen) {
    let mut i = 0;
    while let Some(s) = c.request(seen) {
        let out = match i % 4 {
            0 => {
                let mut o = header_frames(s, &ok_block(&[(b"content-length", b"100")]), false);
                o.extend(frame(DATA, END_STREAM, s, b"ok"));
                o
            }
            1 => {
                let mut o = header_frames(s, &ok_block(&[(b"content-length", b"1")]), false);
                o.extend(frame(DATA, END_STREAM, s, &[b'x'; 5000]));
                o
            }
            2 => {
                // :status 200, then :status 404 (static index 13).
                let mut o = header_frames(s, &[0x88, 0x8d], false);
                o.extend(frame(DATA, END_STREAM, s, b"ok"));
                o
            }
            _ => {
                let mut o = header_frames(s, &ok_block(&[(b"content-length", b"2")]), false);
                o.extend(frame(DATA, END_STREAM, s, b"ok"));
                o
            }
        };
        i += 1;
        if !c.send(&out) {
            return;
        }
    }
}

#[test]
fn a_content_length_that_disagrees_with_data_and_two_statuses_are_protocol_failures() {
    let (port, seen) = hostile(&[], true, liar);
    let r = run_measured(
        &[
            "--url",
            &url(port),
            "--http2",
            "-c",
            "1",
            "-n",
            "40",
            "--workers",
            "1",
        ],
        Duration::from_secs(20),
    );
    r.assert_bounded(Duration::from_secs(10));
    settled(&seen);
    let what = r.summary.to_string();
    assert_eq!(seen.requests.load(Ordering::SeqCst), 40, "{what}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "{what}");
    assert_eq!((r.num("requests"), r.num("failures")), (40, 30), "{what}");
    assert_eq!(r.errors(), [("protocol".to_string(), 30)], "{what}");
}

/// GOAWAY(last stream 0) in answer to every request.
fn goaway_always(mut c: Conn, seen: &Seen) {
    let mut goaway = 0u32.to_be_bytes().to_vec();
    goaway.extend_from_slice(&0u32.to_be_bytes());
    while c.request(seen).is_some() {
        if !c.send(&frame(GOAWAY, 0, 0, &goaway)) {
            return;
        }
    }
}

#[test]
fn goaway_on_every_request_is_retried_twice_and_every_try_counted() {
    let (port, seen) = hostile(&[], true, goaway_always);
    let r = run_measured(
        &[
            "--url",
            &url(port),
            "--http2",
            "-c",
            "1",
            "-n",
            "10",
            "--workers",
            "1",
        ],
        Duration::from_secs(20),
    );
    r.assert_bounded(Duration::from_secs(10));
    settled(&seen);
    let what = r.summary.to_string();
    // Three tries a request, each on a connection of its own; the summary adds up to them.
    assert_eq!(seen.requests.load(Ordering::SeqCst), 30, "{what}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 30, "{what}");
    assert_eq!(
        (r.num("requests"), r.num("failures"), r.num("reconnects")),
        (10, 10, 20),
        "{what}"
    );
    assert_eq!(
        r.errors(),
        [("connection_closed".to_string(), 10)],
        "{what}"
    );
}

#[test]
fn http2_over_tls_to_a_server_without_h2_fails_once_said_and_sends_nothing() {
    // nginx with TLS and no http2: ALPN chooses http/1.1.
    let dir = tempfile::tempdir().expect("temp dir");
    crate::support::nginx::self_signed(dir.path());
    let tls_port = crate::support::free_port();
    let d = dir.path().display();
    let n = crate::support::nginx::Nginx::start_with(&format!(
        r#"server {{
            listen 127.0.0.1:{tls_port} ssl;
            ssl_certificate {d}/cert.pem;
            ssl_certificate_key {d}/key.pem;
            location / {{ return 200 "ok"; }}
        }}"#
    ));
    let url = format!("https://127.0.0.1:{tls_port}/");
    let r = run_measured(
        &[
            "--url",
            &url,
            "--http2",
            "-k",
            "-c",
            "2",
            "-n",
            "20",
            "--workers",
            "1",
        ],
        Duration::from_secs(20),
    );
    r.assert_bounded(Duration::from_secs(10));
    let what = format!("{}\n{}", r.summary, r.stderr);
    assert_eq!((r.num("requests"), r.num("failures")), (20, 20), "{what}");
    assert_eq!(r.errors(), [("protocol".to_string(), 20)], "{what}");
    assert_eq!(
        r.stderr.matches("did not negotiate h2").count(),
        1,
        "{what}"
    );
    assert!(r.stderr.contains("ALPN chose http/1.1"), "{what}");
    // Nothing went to nginx as HTTP/2 (an h2 preface would have been a 400 in its log).
    assert!(n.logged_connections().is_empty(), "{what}");
}

#[test]
fn a_refused_connect_on_a_shared_pool_is_connection_refused_for_every_waiter() {
    let port = crate::support::free_port();
    let ov = Overrides {
        urls: vec![url(port)],
        vus: Some(50),
        iterations: Some(2000),
        workers: Some(1),
        http2: true,
        h2_streams: Some(10),
        ..Default::default()
    };
    let cfg = stampede::config::load(None, &ov).expect("ad-hoc config");
    let s = stampede::run_config(cfg, None, stampede::Presentation::default()).expect("run");
    assert_eq!((s.requests, s.failures), (2000, 2000), "{:?}", s.errors);
    assert_eq!(
        s.errors.get("connection_refused"),
        Some(&2000),
        "{:?}",
        s.errors
    );
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
}

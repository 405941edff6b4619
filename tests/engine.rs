//! The load engine against the embedded target and a real nginx.

use std::sync::atomic::Ordering;
use std::time::Duration;

use stampede::config::{Dur, Overrides};

use crate::support::{self, nginx::Nginx};

#[test]
fn summary_count_equals_what_the_server_counted() {
    let t = support::target();
    let s = support::run_toml(
        &format!(
            r#"
            [[scenarios]]
            executor = "shared-iterations"
            vus = 8
            iterations = 1500
            requests = [{{ url = "http://{}/" }}]
            "#,
            t.addr
        ),
        &Overrides::default(),
    );
    assert_eq!(s.requests, 1500);
    assert_eq!(s.failures, 0);
    assert_eq!(s.iterations, 1500);
    assert_eq!(t.counters.requests.load(Ordering::Relaxed), 1500);
    assert_eq!(s.by_name.len(), 1);
    assert_eq!(s.by_name[0].status_codes.get("200"), Some(&1500));
    // Keep-alive: one connection per VU.
    assert_eq!(t.counters.connections.load(Ordering::Relaxed), 8);
}

#[test]
fn summary_count_equals_nginx_access_log() {
    let n = Nginx::start();
    let ov = Overrides {
        urls: vec![format!("http://127.0.0.1:{}/", n.port)],
        vus: Some(20),
        iterations: Some(3000),
        ..Default::default()
    };
    let cfg = stampede::config::load(None, &ov).expect("ad-hoc config");
    let s = stampede::run_config(cfg, None, stampede::Presentation::default()).expect("run");
    assert_eq!(s.requests, 3000);
    assert_eq!(s.failures, 0);
    assert_eq!(n.logged_requests(), 3000);
}

#[test]
fn locust_scenario_logs_in_extracts_the_token_and_splits_50_50() {
    let t = support::target();
    let ov = Overrides {
        urls: vec![format!("http://{}", t.addr)],
        vus: Some(4),
        duration: Some(Dur::millis(1500)),
        ..Default::default()
    };
    let s = support::run_file(&support::root().join("config/locust-admin.toml"), &ov);
    let c = &t.counters;
    assert_eq!(c.logins.load(Ordering::Relaxed), 4, "one login per VU");
    let apps = c.get_apps.load(Ordering::Relaxed);
    let tables = c.get_tables.load(Ordering::Relaxed);
    assert!(apps > 50 && tables > 50, "{apps} {tables}");
    // Smooth weighted round-robin per VU: each VU alternates, so totals differ by < VUs.
    assert!(apps.abs_diff(tables) <= 4, "{apps} vs {tables}");
    assert_eq!(s.requests, apps + tables + 4);
    assert_eq!(
        s.failures, 0,
        "the bearer token was extracted and used: {:?}",
        s.errors
    );
    for c in &s.checks {
        assert_eq!(c.fails, 0, "{c:?}");
    }
    assert!(s.thresholds.iter().all(|t| t.ok), "{:?}", s.thresholds);
}

#[test]
fn open_model_sends_rate_times_duration() {
    let t = support::target();
    let s = support::run_toml(
        &format!(
            r#"
            [[scenarios]]
            executor = "constant-arrival-rate"
            rate = 400
            duration = "5s"
            vus = 50
            requests = [{{ url = "http://{}/" }}]
            "#,
            t.addr
        ),
        &Overrides::default(),
    );
    let expected = 400.0 * 5.0;
    let off = (s.requests as f64 - expected).abs() / expected;
    assert!(off <= 0.01, "{} requests for 2000 scheduled", s.requests);
    // Every scheduled iteration is accounted for: sent, or dropped and counted (a loaded CI
    // machine may start a handful more than 10 ms late).
    assert_eq!(s.iterations + s.dropped_iterations, 2000);
    assert_eq!(t.counters.requests.load(Ordering::Relaxed), s.requests);
}

#[test]
fn a_stalling_server_shows_in_open_model_p99() {
    let t = support::target();
    let addr = t.addr;
    // Stall the server for 1 s, starting 1 s into a 3 s run at 100/s.
    let staller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        use std::io::Write;
        let _ = s.write_all(b"POST /__stall/1000 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let mut sink = Vec::new();
        use std::io::Read;
        let _ = s.read_to_end(&mut sink);
    });
    let s = support::run_toml(
        &format!(
            r#"
            [[scenarios]]
            executor = "constant-arrival-rate"
            rate = 100
            duration = "3s"
            vus = 300
            requests = [{{ url = "http://{addr}/" }}]
            "#
        ),
        &Overrides::default(),
    );
    staller.join().expect("staller");
    // ~100 of ~300 requests were scheduled inside the stall; measured from their scheduled
    // start, they waited up to a second. A closed-model tool would show one slow request.
    assert!(s.latency_s.p99 >= 0.8, "p99 {}", s.latency_s.p99);
    assert!(s.latency_s.p90 >= 0.3, "p90 {}", s.latency_s.p90);
    assert_eq!(s.dropped_iterations, 0);
    assert!((s.requests as i64 - 300).abs() <= 3, "{}", s.requests);
}

#[test]
fn too_few_vus_drop_iterations_and_count_them() {
    let t = support::target();
    let s = support::run_toml(
        &format!(
            r#"
            [[scenarios]]
            executor = "constant-arrival-rate"
            rate = 50
            duration = "2s"
            vus = 1
            requests = [{{ url = "http://{}/delay/100" }}]
            "#,
            t.addr
        ),
        &Overrides::default(),
    );
    // One VU, 100 ms per request, one iteration scheduled every 20 ms: at most ~10/s can
    // run (those within 50 ms of their slot), the rest of the 100 scheduled are dropped.
    assert!(s.dropped_iterations >= 50, "{}", s.dropped_iterations);
    assert!(s.iterations <= 25, "{}", s.iterations);
    assert_eq!(s.iterations + s.dropped_iterations, 100);
}

#[test]
fn every_failure_gets_a_low_cardinality_error_type() {
    let t = support::target();
    let closed = support::free_port();
    let s = support::run_toml(
        &format!(
            r#"
            [defaults]
            timeout = "300ms"
            [[scenarios]]
            executor = "shared-iterations"
            vus = 1
            iterations = 4
            [[scenarios.requests]]
            url = "http://{a}/status/503"
            [[scenarios.requests]]
            url = "http://{a}/reset"
            [[scenarios.requests]]
            url = "http://127.0.0.1:{closed}/"
            [[scenarios.requests]]
            url = "http://{a}/delay/2000"
            [[scenarios.requests]]
            url = "http://{a}/status/404"
            [[scenarios.requests]]
            url = "http://{a}/"
            "#,
            a = t.addr
        ),
        &Overrides::default(),
    );
    assert_eq!(s.requests, 24);
    assert_eq!(s.failures, 20);
    let e = &s.errors;
    assert_eq!(e.get("503"), Some(&4), "{e:?}");
    assert_eq!(e.get("404"), Some(&4), "{e:?}");
    assert_eq!(e.get("connection_reset"), Some(&4), "{e:?}");
    assert_eq!(e.get("connection_refused"), Some(&4), "{e:?}");
    assert_eq!(e.get("timeout"), Some(&4), "{e:?}");
}

#[test]
fn ramping_vus_follow_the_stages() {
    let t = support::target();
    let s = support::run_toml(
        &format!(
            r#"
            [[scenarios]]
            executor = "ramping-vus"
            stages = [{{ duration = "1s", target = 6 }}, {{ duration = "1s", target = 6 }}, {{ duration = "500ms", target = 0 }}]
            think_time = "50ms"
            requests = [{{ url = "http://{}/" }}]
            "#,
            t.addr
        ),
        &Overrides::default(),
    );
    // Each VU does ~1 iteration per 50 ms while active: ~(3 + 6 + 1.5) VU-seconds * 20/s.
    assert!(s.requests > 120 && s.requests < 260, "{}", s.requests);
    assert_eq!(
        t.counters.connections.load(Ordering::Relaxed),
        6,
        "six VUs, one connection each"
    );
}

#[test]
fn http2_prior_knowledge_works_against_the_embedded_target() {
    let t = support::target();
    let ov = Overrides {
        urls: vec![format!("http://{}/", t.addr)],
        vus: Some(2),
        iterations: Some(100),
        http2: true,
        ..Default::default()
    };
    let cfg = stampede::config::load(None, &ov).expect("config");
    let s = stampede::run_config(cfg, None, stampede::Presentation::default()).expect("run");
    assert_eq!((s.requests, s.failures), (100, 0), "{:?}", s.errors);
}

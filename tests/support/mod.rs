//! Shared test support: the embedded target, real Prometheus and Collector processes, nginx,
//! and helpers to run stampede in-process or as a binary.
#![allow(dead_code, unreachable_pub)]

pub mod collector;
pub mod nginx;
pub mod prometheus;
pub mod schema;
pub mod tty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stampede::config::{Overrides, load, load_str};
use stampede::{Presentation, Summary};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts an embedded target on a free loopback port (lives until the test process exits).
pub fn target() -> stampede::target::Target {
    stampede::target::spawn_background(([127, 0, 0, 1], 0).into())
        .expect("start the embedded target on 127.0.0.1:0")
}

/// Writes `text` to a temp file named `name` and returns (dir guard, path).
pub fn write_config(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write config");
    (dir, p)
}

/// Loads a TOML config from text and runs it in-process (quietly).
pub fn run_toml(text: &str, ov: &Overrides) -> Summary {
    let name = "scenario.toml";
    let cfg = load_str(name, text, ov).unwrap_or_else(|e| panic!("config: {e}"));
    stampede::run_config(cfg, Some(Path::new(name)), Presentation::default())
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Runs a config file in-process.
pub fn run_file(p: &Path, ov: &Overrides) -> Summary {
    let cfg = load(Some(p), ov).unwrap_or_else(|e| panic!("config {}: {e}", p.display()));
    stampede::run_config(cfg, Some(p), Presentation::default())
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Runs the stampede binary.
pub fn stampede(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .output()
        .expect("run the stampede binary")
}

/// What a measured run of the binary gave: its exit code, output, peak RSS and wall time.
#[derive(Debug)]
pub struct Measured {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Peak resident set size, MB (the child's own `VmHWM`, see [`PeakRss`]).
    pub peak_rss_mb: u64,
    /// From start to exit.
    pub wall: std::time::Duration,
}

/// Watches a child's peak resident set: its `VmHWM` in `/proc/<pid>/status`, read every 5 ms
/// until the process has no memory left (a zombie, or reaped). Not `wait4`'s `ru_maxrss`: on
/// Linux a child started with vfork/posix_spawn (as `Command` does) inherits its parent's
/// high-water mark at exec, so a test binary of 250 MB made every child look 250 MB large.
pub struct PeakRss(std::thread::JoinHandle<u64>);

impl PeakRss {
    /// Starts watching `pid`.
    pub fn watch(pid: u32) -> PeakRss {
        PeakRss(std::thread::spawn(move || {
            let mut peak_kb = 0;
            while let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let Some(kb) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                else {
                    break;
                };
                peak_kb = peak_kb.max(kb);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak_kb
        }))
    }

    /// The peak seen, MB (call after the child has exited).
    pub fn mb(self) -> u64 {
        self.0.join().unwrap_or(0) / 1024
    }
}

/// Runs the stampede binary and measures its peak memory ([`PeakRss`]) and wall time.
#[cfg(unix)]
pub fn stampede_measured(args: &[&str]) -> Measured {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = stampede_child(args);
    let peak = PeakRss::watch(child.id());
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    let stdout = reader.join().unwrap_or_default();
    let status = child.wait().expect("wait for stampede");
    Measured {
        code: status.code(),
        stdout,
        stderr,
        peak_rss_mb: peak.mb(),
        wall: started.elapsed(),
    }
}

/// Starts the stampede binary with piped stdout/stderr (for signal tests).
pub fn stampede_child(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the stampede binary")
}

/// Sends `sig` to a child process.
#[cfg(unix)]
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on the pid of our own child process.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0, "kill({}, {sig})", child.id());
}

/// Reads a `--summary-json` file.
pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs the stampede binary with `--quiet --summary-json <tmp>` added; returns its output and
/// the JSON summary (`null` when none was written).
pub fn stampede_summary(args: &[&str]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("summary.json");
    let mut all = args.to_vec();
    all.extend([
        "--quiet",
        "--summary-json",
        json.to_str().expect("utf-8 path"),
    ]);
    let o = stampede(&all);
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, v)
}

/// A free loopback port (bound then released), taken below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768–60999 by default) when there is room there: a port
/// from that range can be taken by any outgoing connection on the machine the moment it is
/// released, which makes a server that is stopped and started again on the same port (the
/// Collector restart tests) fail to bind. Each call hands out a different port, starting at a
/// point derived from the process id so parallel test processes do not walk in step.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (lo, hi) = (10_000u32, ephemeral_start.min(65_536));
    if hi > lo + 1_000 {
        let span = hi - lo;
        let seed = std::process::id().wrapping_mul(7_919);
        for _ in 0..span {
            let port = lo + seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            if let Ok(port) = u16::try_from(port)
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A finished process as text for an assertion message: exit code, stdout and stderr.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A unique run id for a test.
pub fn run_id(test: &str) -> String {
    format!("{test}-{}", stampede::generate_run_id())
}

/// A TCP server on a free loopback port that accepts connections and never answers (nor
/// closes them) — a receiver that hangs. Stops on drop.
pub struct SilentServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentServer {
    /// Starts it.
    pub fn start() -> SilentServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    held.push(c);
                }
            }
        });
        SilentServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The entry of the text summary whose first line starts with `start`, its wrapped
/// continuation lines (indented by four spaces) joined with a space.
pub fn summary_entry(stdout: &str, start: &str) -> Option<String> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(start));
    let mut entry = lines.next()?.to_string();
    for l in lines.take_while(|l| l.starts_with("    ")) {
        entry.push(' ');
        entry.push_str(l.trim_start());
    }
    Some(entry)
}

/// A loopback HTTP/1.1 server that answers every request with the same bytes and counts the
/// requests it read. With `close_after`, it closes each connection after one response (without
/// saying `Connection: close`), as an idle timeout or a careless proxy does; otherwise it keeps
/// connections open. Lives until the test process exits.
pub struct CannedServer {
    /// The port (127.0.0.1).
    pub port: u16,
    /// Requests read so far.
    pub requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CannedServer {
    /// Starts the server.
    pub fn start(reply: Vec<u8>, close_after: bool) -> CannedServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("addr").port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = requests.clone();
        let reply = std::sync::Arc::new(reply);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let (count, reply) = (count.clone(), reply.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request head (stampede's GETs have no body).
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            count.fetch_add(1, Ordering::SeqCst);
                            if s.write_all(&reply).is_err() || close_after {
                                return;
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        CannedServer { port, requests }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Requests read so far.
    pub fn count(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reads a `--summary-json` file.
pub fn summary_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the summary {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary JSON: {e}: {text}"))
}

//! Test support: build and run the project's OpenTelemetry Collector
//! (`otel-collector/`, binary `otelcol-stampede`) on free loopback ports.
//!
//! ```ignore
//! let mut col = Collector::start(&format!("http://127.0.0.1:{prom_port}/api/v1/write"));
//! // point stampede's OTLP exporter at col.grpc_endpoint / col.http_endpoint ...
//! col.restart(); // same ports
//! ```
//!
//! The binary comes from `otel-collector/build.sh` (built once per test process and
//! reused across processes while `manifest.yaml` is unchanged), or from the
//! `STAMPEDE_OTELCOL_BIN` environment variable when that is set.

// Not every test binary uses every helper, and the items are `pub` for the including
// module's sake although the test crate is not a library.
#![allow(dead_code, unreachable_pub)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long `start`/`restart` wait for the health check to answer 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits for a graceful exit (SIGTERM) before killing.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The project's Collector configuration, `otel-collector/config.yaml`.
pub fn collector_config() -> PathBuf {
    repo_root().join("otel-collector").join("config.yaml")
}

/// Path of the `otelcol-stampede` binary, building it on first use in this process.
///
/// Set `STAMPEDE_OTELCOL_BIN` to use a prebuilt binary instead of running
/// `otel-collector/build.sh`. Panics with instructions when the build fails.
pub fn collector_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(build_collector) {
        Ok(path) => path.clone(),
        Err(msg) => panic!("{msg}"),
    }
}

fn build_collector() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("STAMPEDE_OTELCOL_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "STAMPEDE_OTELCOL_BIN={} does not exist; unset it to build the Collector \
                 with otel-collector/build.sh",
                bin.display()
            ))
        };
    }

    let script = repo_root().join("otel-collector").join("build.sh");
    let help = format!(
        "The integration tests need the project's OpenTelemetry Collector. Install Go >= 1.26 \
         (https://go.dev/doc/install or your distribution's golang package; the build needs the \
         Go module proxy and takes a few minutes the first time), then run\n    bash {}\n\
         or set STAMPEDE_OTELCOL_BIN to an otelcol-stampede binary.",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `bash {}`: {e}\n{help}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "building the Collector failed ({}).\n--- build.sh stderr ---\n{stderr}\n\
             --- build.sh stdout ---\n{stdout}\n{help}",
            out.status
        ));
    }
    let path = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("build.sh printed no binary path.\n{stderr}\n{help}"))?;
    if !path.is_file() {
        return Err(format!(
            "build.sh reported {} but no such file exists.\n{stderr}\n{help}",
            path.display()
        ));
    }
    Ok(path)
}

/// Runs `otelcol-stampede validate --config otel-collector/config.yaml`.
pub fn validate_config() -> Output {
    Command::new(collector_binary())
        .arg("validate")
        .arg("--config")
        .arg(collector_config())
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("failed to run `otelcol-stampede validate`")
}

/// A running `otelcol-stampede` with the project's `otel-collector/config.yaml`,
/// listening on loopback only. Killed on drop.
pub struct Collector {
    /// OTLP/gRPC endpoint, `http://127.0.0.1:PORT`.
    pub grpc_endpoint: String,
    /// OTLP/HTTP base endpoint, `http://127.0.0.1:PORT` (metrics go to `/v1/metrics`).
    pub http_endpoint: String,
    /// Health check URL, `http://127.0.0.1:PORT/`.
    pub health_endpoint: String,
    /// Where the Collector remote-writes to.
    pub remote_write_url: String,
    grpc_port: u16,
    http_port: u16,
    health_port: u16,
    extra_env: Vec<(String, String)>,
    child: Option<Child>,
    // The Collector's stdout+stderr go to this file (a pipe nobody reads would
    // eventually block it). Appended to across restarts.
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Collector {
    /// Starts the Collector, remote-writing to `remote_write_url`, and waits until its
    /// health check answers (panics after 30 s, showing the Collector's output).
    pub fn start(remote_write_url: &str) -> Collector {
        Self::start_with_env(remote_write_url, &[])
    }

    /// Like [`Collector::start`], with extra environment variables for the config, e.g.
    /// `("DEBUG_VERBOSITY", "detailed")`, `("BATCH_TIMEOUT", "1s")`,
    /// `("PROMETHEUS_TARGET_INFO", "false")`.
    pub fn start_with_env(remote_write_url: &str, env: &[(&str, &str)]) -> Collector {
        let binary = collector_binary();
        let log_dir = tempfile::Builder::new()
            .prefix("stampede-otelcol-")
            .tempdir()
            .expect("could not create a temp dir for the Collector's log");
        let (grpc_port, http_port, health_port) = distinct_free_ports();
        let mut collector = Collector {
            grpc_endpoint: format!("http://127.0.0.1:{grpc_port}"),
            http_endpoint: format!("http://127.0.0.1:{http_port}"),
            health_endpoint: format!("http://127.0.0.1:{health_port}/"),
            remote_write_url: remote_write_url.to_owned(),
            grpc_port,
            http_port,
            health_port,
            extra_env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            log_path: log_dir.path().join("otelcol.log"),
            _log_dir: log_dir,
        };
        collector.spawn(&binary);
        collector
    }

    /// Starts the process and waits for its health check. When it exits at once because one
    /// of its ports is taken (after a restart, a port can be held for a moment by a connection
    /// another test opened), it tries again a few times on the same ports.
    fn spawn(&mut self, binary: &Path) {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let log_start = self.logs().len();
            self.spawn_once(binary);
            match self.wait_ready() {
                Ok(()) => return,
                Err(msg) => {
                    let this_run = self.logs().get(log_start..).unwrap_or_default().to_owned();
                    if attempt < ATTEMPTS && this_run.contains("address already in use") {
                        eprintln!(
                            "the Collector could not bind its ports (attempt {attempt} of \
                             {ATTEMPTS}); trying again in 1 s"
                        );
                        thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                    panic!(
                        "{msg}.\n--- otelcol-stampede output of this start ({}) ---\n{this_run}\n\
                         --- end of Collector output ---",
                        self.log_path.display()
                    );
                }
            }
        }
    }

    fn spawn_once(&mut self, binary: &Path) {
        assert!(self.child.is_none(), "Collector is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("could not open the Collector's log file");
        let log_err = log
            .try_clone()
            .expect("could not duplicate the Collector's log file handle");
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(collector_config())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .env(
                "OTLP_GRPC_ENDPOINT",
                format!("127.0.0.1:{}", self.grpc_port),
            )
            .env(
                "OTLP_HTTP_ENDPOINT",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env(
                "HEALTH_CHECK_ENDPOINT",
                format!("127.0.0.1:{}", self.health_port),
            )
            .env("PROMETHEUS_REMOTE_WRITE_URL", &self.remote_write_url)
            // Tests want data in Prometheus quickly.
            .env("BATCH_TIMEOUT", "200ms");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        self.child = Some(child);
    }

    /// Waits for the health check to answer 200; the error carries the Collector's output.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.health_port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(format!("the Collector exited during startup ({status})"));
                    }
                    Ok(None) => {}
                    Err(e) => panic!("could not poll the Collector process: {e}"),
                }
            }
            if health_ok(addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "the Collector's health check at {} did not answer 200 within {:?}",
                    self.health_endpoint, READY_TIMEOUT,
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// True while the process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// PID of the running process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the Collector gracefully (SIGTERM, so batches and the remote-write queue are
    /// flushed), killing it after 10 s. No-op when already stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if termed {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the Collector at once (SIGKILL): nothing is flushed. No-op when stopped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (gracefully) and starts the Collector again on the same ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(&collector_binary());
    }

    /// Starts a stopped Collector again on the same ports (no-op when running).
    pub fn start_again(&mut self) {
        if self.is_running() {
            return;
        }
        self.child = None;
        self.spawn(&collector_binary());
    }

    /// Everything the Collector wrote to stdout/stderr so far (all runs).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three different free ports (the OS could hand out the same one twice after release).
fn distinct_free_ports() -> (u16, u16, u16) {
    let a = super::free_port();
    let mut b = super::free_port();
    while b == a {
        b = super::free_port();
    }
    let mut c = super::free_port();
    while c == a || c == b {
        c = super::free_port();
    }
    (a, b, c)
}

/// Plain HTTP/1.0 GET / against the health check; true on a 200 answer.
fn health_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let head = String::from_utf8_lossy(&response);
    let status_line = head.lines().next().unwrap_or_default();
    status_line.starts_with("HTTP/1.") && status_line.split_whitespace().nth(1) == Some("200")
}

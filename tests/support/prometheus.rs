//! Test support: a throwaway real Prometheus server acting as remote-write receiver.
//!
//! Used by the end-to-end tests of the export path (collection → translate →
//! encode → queue → send → **Prometheus**): starts `prometheus` from PATH on a free
//! 127.0.0.1 port with `--web.enable-remote-write-receiver`, a temp data dir, and
//! offers a tiny std-only HTTP/1.1 client for the query API. Killed on drop.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running Prometheus child process.
pub struct Prometheus {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    native_histograms: bool,
    child: Option<Child>,
}

impl Prometheus {
    /// Starts Prometheus without native histograms.
    pub fn start() -> Prometheus {
        Prometheus::start_with(false)
    }

    /// Starts Prometheus; `native_histograms` adds `--enable-feature=native-histograms`.
    /// Panics if `prometheus` is not on PATH or not ready within 30 s.
    pub fn start_with(native_histograms: bool) -> Prometheus {
        let bin = find_on_path("prometheus").unwrap_or_else(|| {
            panic!("`prometheus` binary not found on PATH; install it: apt-get install prometheus")
        });
        let port = super::free_port();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "stampede-prom-{}-{port}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("create prometheus temp dir");
        std::fs::write(
            dir.join("prometheus.yml"),
            "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nscrape_configs: []\n",
        )
        .expect("write prometheus.yml");
        let mut p = Prometheus {
            bin,
            port,
            dir,
            native_histograms,
            child: None,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("prometheus.log"))
            .expect("open prometheus.log");
        let log2 = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!(
            "--config.file={}",
            self.dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            self.dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
        .arg("--web.enable-remote-write-receiver")
        // Exemplars (trace ids of the slowest sampled requests) are kept only with this.
        .arg("--enable-feature=exemplar-storage")
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
        if self.native_histograms {
            cmd.arg("--enable-feature=native-histograms");
        }
        self.child = Some(cmd.spawn().expect("spawn prometheus"));
        self.wait_ready(Duration::from_secs(30));
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.get("/-/ready") {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "prometheus exited during startup ({status}); log:\n{}",
                        self.log()
                    );
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "prometheus not ready after {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Contents of the Prometheus log file (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The remote-write endpoint `http://127.0.0.1:<port>/api/v1/write`.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base_url())
    }

    /// The temp directory (config, data, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Instant query; returns the response's `data` object
    /// (`{"resultType": ..., "result": ...}`). Panics on API errors.
    pub fn query(&self, expr: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let (status, body) = self
            .get(&path)
            .unwrap_or_else(|e| panic!("query {expr:?} failed: {e}"));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("query {expr:?}: bad JSON ({e}): {body}"));
        if status != 200 || v["status"] != "success" {
            panic!("query {expr:?}: HTTP {status}: {body}");
        }
        v["data"].clone()
    }

    /// Sum of the float values of a vector result (or the scalar), `None` if empty.
    pub fn query_scalar(&self, expr: &str) -> Option<f64> {
        let data = self.query(expr);
        let parse = |v: &serde_json::Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
        match data["resultType"].as_str() {
            Some("scalar") => parse(&data["result"]),
            Some("vector") => {
                let items = data["result"].as_array()?;
                if items.is_empty() {
                    return None;
                }
                Some(items.iter().filter_map(|i| parse(&i["value"])).sum())
            }
            _ => None,
        }
    }

    /// Polls [`Prometheus::query_scalar`] until it returns `Some` or `timeout` passes.
    pub fn query_scalar_eventually(&self, expr: &str, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.query_scalar(expr);
            if v.is_some() || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/api/v1/series?match[]=<selector>`: label sets of matching series.
    pub fn series(&self, selector: &str) -> Vec<BTreeMap<String, String>> {
        let path = format!("/api/v1/series?match%5B%5D={}", url_encode(selector));
        let (status, body) = self
            .get(&path)
            .unwrap_or_else(|e| panic!("series {selector:?} failed: {e}"));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("series {selector:?}: bad JSON ({e}): {body}"));
        if status != 200 || v["status"] != "success" {
            panic!("series {selector:?}: HTTP {status}: {body}");
        }
        v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_object())
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops the server (SIGKILL), keeping the data dir and port.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops (if running) and starts again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether the child process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Minimal HTTP/1.1 GET with `Connection: close`; returns (status, body).
    pub fn get(&self, path_and_query: &str) -> Result<(u16, String), String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no header terminator")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut body = raw[split + 4..].to_vec();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line: {head}"))?;
        if head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("transfer-encoding:")
                && l.to_ascii_lowercase().contains("chunked")
        }) {
            body = dechunk(&body)?;
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("STAMPEDE_KEEP_PROMETHEUS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_str = String::from_utf8_lossy(&b[..line_end]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_str:?}: {e}"))?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

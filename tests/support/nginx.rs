//! A real nginx (Debian's package) on a free loopback port, counting requests in its access log.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx; killed on drop.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

fn nginx_binary() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "nginx is not installed: run `apt-get install -y nginx` (the README's test command does)"
    );
}

impl Nginx {
    /// Starts nginx serving `return 200 "ok"` on `/` and `/slow` via a 1-worker config.
    pub fn start() -> Nginx {
        Nginx::start_with("")
    }

    /// As [`Nginx::start`], with extra directives in the `http` block (e.g.
    /// `keepalive_timeout 1s;`).
    pub fn start_with(http_directives: &str) -> Nginx {
        let bin = nginx_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let conf = format!(
            r#"
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log {d}/access.log;
    log_format stampede_conn '$connection $request_uri';
    access_log {d}/connections.log stampede_conn;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000;
    {http_directives}
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"#,
            d = dir.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, dir, port }
    }

    /// Requests nginx logged (its access log has one line per request).
    pub fn logged_requests(&self) -> usize {
        // nginx writes the log line after the response; give it a moment to settle.
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Nginx {
    /// Per logged request: nginx's connection serial number and the request URI.
    pub fn logged_connections(&self) -> Vec<(u64, String)> {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(self.dir.path().join("connections.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (c, uri) = l.split_once(' ')?;
                Some((c.parse().ok()?, uri.to_string()))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A real nginx (Debian's package) on a free loopback port, counting requests in its access log.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx; killed on drop.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// HTTP/2 servers ([`Nginx::start_h2`]): the port of h2 over TLS (ALPN), self-signed.
    pub tls_port: u16,
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
        Nginx::start_conf(http_directives, false)
    }

    /// nginx speaking HTTP/2 only: h2c with prior knowledge on [`Nginx::port`] and h2 over TLS
    /// (ALPN, a self-signed certificate for 127.0.0.1: run with `--insecure`) on
    /// [`Nginx::tls_port`]; extra directives go in the `http` block (e.g.
    /// `http2_max_concurrent_streams 2;`). `/echo/…` answers with the request's method, URI
    /// and the headers `user-agent`, `x-fixed`, `x-pad` and `authorization`. The access log
    /// has one line per request:
    /// `$connection $connection_requests $server_protocol $scheme $msec $request_time`.
    pub fn start_h2(http_directives: &str) -> Nginx {
        Nginx::start_conf(http_directives, true)
    }

    fn start_conf(http_directives: &str, h2: bool) -> Nginx {
        let bin = nginx_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let tls_port = if h2 { super::free_port() } else { 0 };
        let keepalive = if http_directives.contains("keepalive_requests") {
            ""
        } else {
            "keepalive_requests 100000;"
        };
        let servers = if h2 {
            self_signed(dir.path());
            format!(
                r#"
    log_format h2 '$connection $connection_requests $server_protocol $scheme $msec $request_time';
    access_log {d}/access.log h2;
    access_log {d}/wire.log stampede_wire;
    server {{
        listen 127.0.0.1:{port} http2;
        listen 127.0.0.1:{tls_port} ssl http2;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location / {{ return 200 "ok"; }}
        location /echo/ {{ return 200 "$request_method $request_uri ua=$http_user_agent fixed=$http_x_fixed pad=$http_x_pad auth=$http_authorization"; }}
    }}"#,
                d = dir.path().display()
            )
        } else {
            format!(
                r#"
    access_log {d}/access.log;
    access_log {d}/wire.log stampede_wire;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}"#,
                d = dir.path().display()
            )
        };
        let conf = format!(
            r#"
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    log_format stampede_conn '$connection $request_uri';
    log_format stampede_wire '$request_length $bytes_sent';
    access_log {d}/connections.log stampede_conn;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {keepalive}
    {http_directives}
    {servers}
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
            // Master and workers in a process group of their own, so that drop stops them all.
            .process_group(0)
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
        Nginx {
            child,
            dir,
            port,
            tls_port,
        }
    }

    /// The access log's lines (see [`Nginx::start_h2`] for their format there).
    pub fn log_lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Asks nginx to reload its configuration gracefully (SIGHUP): its old worker sends
    /// GOAWAY on every connection, finishes the streams in flight and exits.
    pub fn reload(&self) {
        super::signal(&self.child, libc::SIGHUP);
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

impl Nginx {
    /// Per logged request, the octets nginx counted: `$request_length` (request line, head
    /// and body as received) and `$bytes_sent` (response as sent).
    pub fn logged_wire(&self) -> Vec<(u64, u64)> {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(self.dir.path().join("wire.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (a, b) = l.split_once(' ')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Nginx {
    /// Fast shutdown (SIGTERM: the master stops its workers), then SIGKILL to the whole process
    /// group for whatever is left: killing only the master would leave its workers running.
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) with a process group we created; no memory is involved.
        unsafe { libc::kill(pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; -pgid names the group (master and workers).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for 127.0.0.1 (`cert.pem`, `key.pem` in `dir`).
pub fn self_signed(dir: &std::path::Path) {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "openssl makes the test certificate: apt-get install -y openssl"
    );
}

//! Test-only helpers shared by unit tests of several modules: a throw-away PKI made with the
//! `openssl` CLI and a small HTTPS server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Generates a CA and a 127.0.0.1 leaf certificate with the `openssl` CLI.
/// Returns (ca_pem_path, leaf_cert_pem, leaf_key_pem); panics with an install hint if openssl
/// is missing.
pub(crate) fn make_test_pki(
    dir: &std::path::Path,
) -> Option<(std::path::PathBuf, Vec<u8>, Vec<u8>)> {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=stampede-test-ca",
    ]);
    let mut csr = vec!["req"];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&[
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    let sign = [
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ];
    if !(run(&ca) && run(&csr) && run(&sign)) {
        return None;
    }
    Some((
        dir.join("ca.pem"),
        std::fs::read(dir.join("leaf.pem")).ok()?,
        std::fs::read(dir.join("leaf.key")).ok()?,
    ))
}

/// An HTTPS/1.1 server on 127.0.0.1:0 with the given leaf certificate. It answers every request
/// `200` with an empty body and counts the requests whose body passes `accept`.
pub(crate) async fn tls_receiver(
    cert_pem: &[u8],
    key_pem: &[u8],
    accept: fn(&[u8]) -> bool,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .expect("key")
        .expect("a key");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let ok = Arc::new(AtomicUsize::new(0));
    let ok2 = ok.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, ok) = (acceptor.clone(), ok2.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let ok = ok.clone();
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        if body.is_ok_and(|b| accept(&b)) {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::new(),
                        )))
                    }
                });
                let _ = server_http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, ok)
}

/// A plan from a scenario file's text (written to a temp file, loaded with no overrides).
pub(crate) fn plan_of(toml: &str) -> crate::scenario::plan::Plan {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("s.toml");
    std::fs::write(&p, toml).expect("write the scenario file");
    let cfg = crate::config::load(Some(&p), &crate::config::Overrides::default())
        .unwrap_or_else(|e| panic!("config: {e}"));
    crate::scenario::plan::build(cfg, "t".into(), "s.toml").unwrap_or_else(|e| panic!("plan: {e}"))
}

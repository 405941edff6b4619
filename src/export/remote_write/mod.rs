//! Prometheus remote-write 1.0 exporter.
//!
//! Flow: collection (our `ManualReader`) → [`translate`] → [`encode`] →
//! **queue** (bounded, drop-oldest) → **send** (one background tokio task, in
//! order, HTTP/1.1 or HTTPS via rustls, retries with exponential backoff and full
//! jitter). This file holds the configuration, the queue, the sender and the
//! [`PushMetricExporter`] implementation.
//!
//! Secrets (passwords, bearer tokens, URL userinfo) are never logged: the config
//! `Debug` impl redacts them, the `Authorization` header is marked sensitive and
//! URLs are passed through [`redact_url`] before they appear in logs or errors.

pub mod encode;
pub mod proto;
pub mod translate;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::Notify;

use self::proto::{Label, Sample, TimeSeries, WriteRequest};
use self::translate::{TranslateOptions, translate};

/// Prometheus' staleness marker NaN bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Remote-write protocol version header value (1.0 spec).
pub const REMOTE_WRITE_VERSION: &str = "0.1.0";
/// Response bodies are truncated to this many bytes in logs.
const MAX_LOGGED_BODY: usize = 512;
/// Upper bound on a server-provided `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// A secret string (password, token). `Debug` prints `<redacted>`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `remote_write.basic_auth`: username plus exactly one password source.
#[derive(Clone, Default, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// `username`.
    pub username: String,
    /// `password` (inline; prefer `password_file`/`password_env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// `password_file`: file whose trimmed content is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `password_env`: environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// `remote_write.tls`.
#[derive(Clone, Default, Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `ca_file`: PEM bundle trusted in addition to the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// `insecure_skip_verify`: accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
}

/// `[remote_write]` configuration section.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// `url`: receiver endpoint, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: String,
    /// `push_interval`: humantime string, default `5s`, minimum `1s`.
    #[serde(deserialize_with = "de_duration")]
    pub push_interval: Duration,
    /// `timeout`: per HTTP attempt (connect + request + response), default `10s`.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `headers`: extra request headers (may not override the protocol headers).
    pub headers: BTreeMap<String, String>,
    /// `basic_auth`.
    pub basic_auth: Option<BasicAuth>,
    /// `bearer_token` (inline).
    pub bearer_token: Option<Secret>,
    /// `bearer_token_file`.
    pub bearer_token_file: Option<PathBuf>,
    /// `bearer_token_env`: name of an environment variable.
    pub bearer_token_env: Option<String>,
    /// `tls`.
    pub tls: TlsConfig,
    /// `queue_capacity`: max queued batches (pushes); default 720 (1 h at 5 s).
    pub queue_capacity: usize,
    /// `max_retries` per batch before it is given up (counted as failed); default 10.
    pub max_retries: u32,
    /// `min_backoff`: first retry backoff cap, default `100ms`.
    #[serde(deserialize_with = "de_duration")]
    pub min_backoff: Duration,
    /// `max_backoff`: backoff cap, default `10s`.
    #[serde(deserialize_with = "de_duration")]
    pub max_backoff: Duration,
    /// `stale_markers_on_end`: on [`RemoteWriteExporter::flush`], send a StaleNaN for every series seen.
    pub stale_markers_on_end: bool,
    /// `send_metadata`: include `MetricMetadata` in every request (default false, like the Collector).
    pub send_metadata: bool,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            push_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            bearer_token_env: None,
            tls: TlsConfig::default(),
            queue_capacity: 720,
            max_retries: 10,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            stale_markers_on_end: false,
            send_metadata: false,
        }
    }
}

impl fmt::Debug for RemoteWriteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|k| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("RemoteWriteConfig")
            .field("url", &redact_url(&self.url))
            .field("push_interval", &self.push_interval)
            .field("timeout", &self.timeout)
            .field("headers", &headers)
            .field("basic_auth", &self.basic_auth)
            .field("bearer_token", &self.bearer_token)
            .field("bearer_token_file", &self.bearer_token_file)
            .field("bearer_token_env", &self.bearer_token_env)
            .field("tls", &self.tls)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_retries", &self.max_retries)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("stale_markers_on_end", &self.stale_markers_on_end)
            .field("send_metadata", &self.send_metadata)
            .finish()
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim()).map_err(serde::de::Error::custom)
}

/// Errors creating the exporter. Messages name the offending `remote_write.*` key
/// and never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// A configuration value is invalid.
    #[error("invalid remote_write.{key}: {reason}")]
    InvalidConfig {
        /// Config key, e.g. `push_interval`.
        key: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A secret/CA file could not be read.
    #[error("remote_write.{key}: cannot read {path}: {source}")]
    ReadFile {
        /// Config key.
        key: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An environment variable referenced by a `*_env` key is unset or not UTF-8.
    #[error("remote_write.{key}: environment variable {var} is not set")]
    MissingEnv {
        /// Config key.
        key: &'static str,
        /// Variable name.
        var: String,
    },
    /// `RemoteWriteExporter::new` was called outside a tokio runtime.
    #[error("remote_write exporter must be created inside a tokio runtime")]
    NoRuntime,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> RemoteWriteError {
    RemoteWriteError::InvalidConfig {
        key,
        reason: reason.into(),
    }
}

/// Strips userinfo and replaces the query string of a URL so it can be logged.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = match tail.find('?') {
        Some(q) => format!("{}?<redacted>", &tail[..q]),
        None => tail.to_owned(),
    };
    match scheme {
        Some(s) => format!("{s}://{host}{tail}"),
        None => format!("{host}{tail}"),
    }
}

fn read_secret_file(key: &'static str, path: &PathBuf) -> Result<String, RemoteWriteError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| RemoteWriteError::ReadFile {
            key,
            path: path.display().to_string(),
            source,
        })
}

fn read_env(key: &'static str, var: &str) -> Result<String, RemoteWriteError> {
    std::env::var(var).map_err(|_| RemoteWriteError::MissingEnv {
        key,
        var: var.to_owned(),
    })
}

pub(crate) use crate::http::url::base64;

/// Validated, resolved settings used by the sender.
struct Settings {
    uri: Uri,
    https: bool,
    host: String,
    port: u16,
    /// `Host` header value (authority without userinfo).
    host_header: HeaderValue,
    redacted_url: String,
    headers: HeaderMap,
    timeout: Duration,
    queue_capacity: usize,
    max_retries: u32,
    min_backoff: Duration,
    max_backoff: Duration,
    stale_markers_on_end: bool,
    translate: TranslateOptions,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl RemoteWriteConfig {
    /// Validates the configuration without reading files or environment.
    pub fn validate(&self) -> Result<(), RemoteWriteError> {
        self.parse_url()?;
        if self.push_interval < Duration::from_secs(1) {
            return Err(invalid(
                "push_interval",
                format!("must be at least 1s, got {:?}", self.push_interval),
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be greater than 0"));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if self.min_backoff.is_zero() {
            return Err(invalid("min_backoff", "must be greater than 0"));
        }
        if self.max_backoff < self.min_backoff {
            return Err(invalid("max_backoff", "must be >= min_backoff"));
        }
        let bearer_sources = usize::from(self.bearer_token.is_some())
            + usize::from(self.bearer_token_file.is_some())
            + usize::from(self.bearer_token_env.is_some());
        if bearer_sources > 1 {
            return Err(invalid(
                "bearer_token",
                "set only one of bearer_token, bearer_token_file, bearer_token_env",
            ));
        }
        if let Some(b) = &self.basic_auth {
            if bearer_sources > 0 {
                return Err(invalid(
                    "basic_auth",
                    "cannot be combined with bearer_token*",
                ));
            }
            if b.username.is_empty() {
                return Err(invalid("basic_auth.username", "must not be empty"));
            }
            let n = usize::from(b.password.is_some())
                + usize::from(b.password_file.is_some())
                + usize::from(b.password_env.is_some());
            if n != 1 {
                return Err(invalid(
                    "basic_auth.password",
                    "set exactly one of password, password_file, password_env",
                ));
            }
        }
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| invalid("headers", format!("invalid header name {k:?}")))?;
            if HeaderValue::from_str(v).is_err() {
                return Err(invalid(
                    "headers",
                    format!("invalid value for header {k:?}"),
                ));
            }
            let reserved = [
                header::CONTENT_ENCODING,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::HOST,
                HeaderName::from_static("x-prometheus-remote-write-version"),
            ];
            if reserved.contains(&name) {
                return Err(invalid(
                    "headers",
                    format!("header {k:?} cannot be overridden"),
                ));
            }
            if name == header::AUTHORIZATION && (bearer_sources > 0 || self.basic_auth.is_some()) {
                return Err(invalid(
                    "headers",
                    "Authorization header conflicts with basic_auth/bearer_token",
                ));
            }
        }
        if self.tls.ca_file.is_some() && self.tls.insecure_skip_verify {
            return Err(invalid(
                "tls.insecure_skip_verify",
                "cannot be combined with tls.ca_file",
            ));
        }
        Ok(())
    }

    fn parse_url(&self) -> Result<(Uri, bool, String, u16), RemoteWriteError> {
        if self.url.trim().is_empty() {
            return Err(invalid("url", "must be set"));
        }
        let uri: Uri = self
            .url
            .trim()
            .parse()
            .map_err(|_| invalid("url", format!("cannot parse {}", redact_url(&self.url))))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid("url", "scheme must be http or https")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("url", "missing host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok((uri, https, host, port))
    }

    fn authorization(&self) -> Result<Option<HeaderValue>, RemoteWriteError> {
        let value = if let Some(b) = &self.basic_auth {
            let pw = if let Some(p) = &b.password {
                p.0.clone()
            } else if let Some(f) = &b.password_file {
                read_secret_file("basic_auth.password_file", f)?
            } else if let Some(v) = &b.password_env {
                read_env("basic_auth.password_env", v)?
            } else {
                String::new()
            };
            Some(format!(
                "Basic {}",
                base64(format!("{}:{pw}", b.username).as_bytes())
            ))
        } else if let Some(t) = &self.bearer_token {
            Some(format!("Bearer {}", t.0))
        } else if let Some(f) = &self.bearer_token_file {
            Some(format!(
                "Bearer {}",
                read_secret_file("bearer_token_file", f)?
            ))
        } else if let Some(v) = &self.bearer_token_env {
            Some(format!("Bearer {}", read_env("bearer_token_env", v)?))
        } else if let (_, Some(c)) = crate::http::url::split_credentials(self.url.trim()) {
            // credentials embedded in the URL → basic auth, decoded as for the load target
            Some(c.basic_auth())
        } else {
            None
        };
        match value {
            None => Ok(None),
            Some(v) => {
                let mut hv = HeaderValue::from_str(&v).map_err(|_| {
                    invalid(
                        "bearer_token",
                        "contains characters not allowed in a header",
                    )
                })?;
                hv.set_sensitive(true);
                Ok(Some(hv))
            }
        }
    }

    fn resolve(&self) -> Result<Settings, RemoteWriteError> {
        self.validate()?;
        let (uri, https, host, port) = self.parse_url()?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, h)| h))
            .unwrap_or_default();
        let host_header =
            HeaderValue::from_str(authority).map_err(|_| invalid("url", "invalid host"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            HeaderName::from_static("x-prometheus-remote-write-version"),
            HeaderValue::from_static(REMOTE_WRITE_VERSION),
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("stampede/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| invalid("headers", format!("invalid header name {k:?}")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| invalid("headers", format!("invalid value for header {k:?}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(auth) = self.authorization()? {
            headers.insert(header::AUTHORIZATION, auth);
        }
        let tls = if https {
            Some(build_tls(&self.tls)?)
        } else {
            None
        };
        Ok(Settings {
            redacted_url: redact_url(&self.url),
            uri,
            https,
            host,
            port,
            host_header,
            headers,
            timeout: self.timeout,
            queue_capacity: self.queue_capacity,
            max_retries: self.max_retries,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
            stale_markers_on_end: self.stale_markers_on_end,
            translate: TranslateOptions {
                metadata: self.send_metadata,
                ..TranslateOptions::default()
            },
            tls,
        })
    }
}

fn build_tls(cfg: &TlsConfig) -> Result<tokio_rustls::TlsConnector, RemoteWriteError> {
    let mut extra = Vec::new();
    if let Some(path) = &cfg.ca_file
        && !cfg.insecure_skip_verify
    {
        let pem = std::fs::read(path).map_err(|source| RemoteWriteError::ReadFile {
            key: "tls.ca_file",
            path: path.display().to_string(),
            source,
        })?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            extra.push(cert.map_err(|e| invalid("tls.ca_file", e.to_string()))?);
        }
        if extra.is_empty() {
            return Err(invalid("tls.ca_file", "no PEM certificates found"));
        }
    }
    let config = crate::http::tls::client_config(cfg.insecure_skip_verify, extra, &[b"http/1.1"])
        .map_err(|e| invalid("tls", e.to_string()))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

// ---------------------------------------------------------------------------
// Retry policy (pure)
// ---------------------------------------------------------------------------

/// Outcome of one HTTP attempt, as seen by [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The server answered with this status (and optional parsed `Retry-After`).
    Status(u16, Option<Duration>),
    /// TCP/TLS connect failed.
    ConnectError,
    /// The attempt exceeded `timeout`.
    Timeout,
    /// The connection broke mid-request.
    Io,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Delivered (2xx).
    Delivered,
    /// Retry, after the server-requested delay if any (else exponential backoff).
    Retry(Option<Duration>),
    /// Permanent failure (4xx other than 429, or 1xx/3xx): drop the batch.
    Reject,
}

/// Retry classification: 2xx delivered; 5xx and 429 retried (honouring
/// `Retry-After`); other statuses rejected; connect errors, timeouts and broken
/// connections retried.
pub fn classify(outcome: &SendOutcome) -> RetryDecision {
    match *outcome {
        SendOutcome::Status(code, _) if (200..300).contains(&code) => RetryDecision::Delivered,
        SendOutcome::Status(code, retry_after) if code == 429 || (500..600).contains(&code) => {
            RetryDecision::Retry(retry_after)
        }
        SendOutcome::Status(..) => RetryDecision::Reject,
        SendOutcome::ConnectError | SendOutcome::Timeout | SendOutcome::Io => {
            RetryDecision::Retry(None)
        }
    }
}

/// Parses a `Retry-After` header given in delta-seconds (HTTP dates are ignored,
/// falling back to backoff), capped at 60 s.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Exponential backoff with full jitter: `uniform(0, min(max, min_backoff·2^(attempt-1)))`,
/// `attempt` starting at 1. `unit_random` is in `[0, 1)`.
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, unit_random: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let cap = min.saturating_mul(1u32 << exp).min(max);
    cap.mul_f64(unit_random.clamp(0.0, 1.0))
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

/// Delivery counters, safe to put into the JSON summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStats {
    /// Batches accepted into the queue by `export`.
    pub batches_enqueued: u64,
    /// Samples accepted into the queue.
    pub samples_enqueued: u64,
    /// Batches delivered (2xx).
    pub batches_sent: u64,
    /// Samples delivered.
    pub samples_sent: u64,
    /// Compressed bytes delivered.
    pub bytes_sent: u64,
    /// Compressed size of the last enqueued batch.
    pub last_batch_bytes: u64,
    /// Retry attempts (all batches).
    pub retries: u64,
    /// Batches dropped because the queue was full (oldest first).
    pub batches_dropped: u64,
    /// Samples in dropped batches.
    pub samples_dropped: u64,
    /// Batches rejected by the receiver (4xx other than 429).
    pub batches_rejected: u64,
    /// Samples in rejected batches.
    pub samples_rejected: u64,
    /// Batches given up after `max_retries` (or cancelled by shutdown).
    pub batches_failed: u64,
    /// Samples in failed batches.
    pub samples_failed: u64,
    /// Batches still queued or in flight.
    pub batches_pending: u64,
    /// Samples still queued or in flight.
    pub samples_pending: u64,
}

impl DeliveryStats {
    /// Samples that were not (or not yet) delivered: dropped + rejected + failed + pending.
    pub fn samples_not_delivered(&self) -> u64 {
        self.samples_dropped + self.samples_rejected + self.samples_failed + self.samples_pending
    }
}

/// Result of [`RemoteWriteExporter::flush`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// True if the queue drained before the timeout.
    pub drained: bool,
    /// Snapshot of the counters after the flush.
    pub stats: DeliveryStats,
    /// `stats.samples_not_delivered()`.
    pub samples_not_delivered: u64,
}

// ---------------------------------------------------------------------------
// Exporter
// ---------------------------------------------------------------------------

/// Time series per remote-write request; a larger collection is split into several requests.
pub const MAX_SERIES_PER_REQUEST: usize = 2000;

struct Batch {
    body: Bytes,
    samples: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Batch>,
    in_flight: Option<u64>,
    stats: DeliveryStats,
    /// series → last timestamp (only with stale markers).
    seen: HashMap<Vec<Label>, i64>,
    logged_reject: bool,
    logged_drop: bool,
    logged_delta: bool,
    stale_sent: bool,
}

struct Inner {
    settings: Settings,
    state: Mutex<State>,
    /// Wakes the sender when work arrives or on shutdown.
    work: Notify,
    /// Wakes flushers whenever a batch finishes.
    progress: Notify,
    shutdown: AtomicBool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Prometheus remote-write exporter. Cheap to clone; the background sender task is
/// aborted when the last clone is dropped.
#[derive(Clone)]
pub struct RemoteWriteExporter {
    inner: Arc<Inner>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for RemoteWriteExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWriteExporter")
            .field("url", &self.inner.settings.redacted_url)
            .finish_non_exhaustive()
    }
}

impl RemoteWriteExporter {
    /// Validates `cfg`, reads secret files/env, builds TLS and spawns the sender
    /// task. Must be called inside a tokio runtime.
    pub fn new(cfg: RemoteWriteConfig) -> Result<Self, RemoteWriteError> {
        let settings = cfg.resolve()?;
        let handle =
            tokio::runtime::Handle::try_current().map_err(|_| RemoteWriteError::NoRuntime)?;
        let inner = Arc::new(Inner {
            settings,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            progress: Notify::new(),
            shutdown: AtomicBool::new(false),
        });
        let task = handle.spawn(run_sender(inner.clone()));
        Ok(Self {
            inner,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// The receiver URL with credentials removed.
    pub fn redacted_url(&self) -> &str {
        &self.inner.settings.redacted_url
    }

    /// Current delivery counters.
    pub fn stats(&self) -> DeliveryStats {
        let st = self.inner.lock();
        let mut s = st.stats.clone();
        s.batches_pending = st.queue.len() as u64 + u64::from(st.in_flight.is_some());
        s.samples_pending =
            st.queue.iter().map(|b| b.samples).sum::<u64>() + st.in_flight.unwrap_or(0);
        s
    }

    /// Translates, encodes and enqueues one collection; returns without waiting
    /// for delivery. Returns the number of samples enqueued.
    pub fn export_metrics(&self, rm: &ResourceMetrics) -> Result<usize, OTelSdkError> {
        if self.inner.shutdown.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let t = translate(rm, &self.inner.settings.translate);
        if !t.skipped_delta.is_empty() || !t.errors.is_empty() {
            let mut st = self.inner.lock();
            if !st.logged_delta {
                st.logged_delta = true;
                tracing::warn!(
                    delta_metrics = ?t.skipped_delta,
                    errors = ?t.errors,
                    "remote_write: skipped metrics that cannot be translated (Delta temporality is not supported)"
                );
            }
        }
        if self.inner.settings.stale_markers_on_end {
            let mut st = self.inner.lock();
            for ts in &t.timeseries {
                let last = ts
                    .samples
                    .iter()
                    .map(|s| s.timestamp)
                    .chain(ts.histograms.iter().map(|h| h.timestamp))
                    .max()
                    .unwrap_or(0);
                let e = st.seen.entry(ts.labels.clone()).or_insert(last);
                *e = (*e).max(last);
            }
        }
        let samples = t.sample_count();
        if samples == 0 {
            return Ok(0);
        }
        // Large collections go out as several requests (in order), like Prometheus' own
        // max_samples_per_send, so size-limited receivers (Mimir, Cortex, gateways) accept them.
        let mut metadata = Some(t.metadata);
        let mut series = t.timeseries;
        while !series.is_empty() {
            let rest = series.split_off(series.len().min(MAX_SERIES_PER_REQUEST));
            self.enqueue_request(&WriteRequest {
                timeseries: series,
                metadata: metadata.take().unwrap_or_default(),
            })?;
            series = rest;
        }
        Ok(samples)
    }

    /// Encodes and enqueues a ready-made request (drop-oldest when full).
    pub fn enqueue_request(&self, req: &WriteRequest) -> Result<(), OTelSdkError> {
        let samples: u64 = req
            .timeseries
            .iter()
            .map(|t| (t.samples.len() + t.histograms.len()) as u64)
            .sum();
        let body = encode::encode_write_request(req)
            .map_err(|e| OTelSdkError::InternalFailure(format!("remote_write encode: {e}")))?;
        self.enqueue(Batch {
            body: Bytes::from(body),
            samples,
        });
        Ok(())
    }

    fn enqueue(&self, batch: Batch) {
        let cap = self.inner.settings.queue_capacity;
        let mut st = self.inner.lock();
        st.stats.batches_enqueued += 1;
        st.stats.samples_enqueued += batch.samples;
        st.stats.last_batch_bytes = batch.body.len() as u64;
        while st.queue.len() >= cap {
            let Some(old) = st.queue.pop_front() else {
                break;
            };
            st.stats.batches_dropped += 1;
            st.stats.samples_dropped += old.samples;
            if !st.logged_drop {
                st.logged_drop = true;
                tracing::warn!(
                    capacity = cap,
                    samples = old.samples,
                    "remote_write: queue full, dropping the oldest batch"
                );
            } else {
                tracing::debug!(
                    samples = old.samples,
                    "remote_write: queue full, dropped oldest batch"
                );
            }
        }
        st.queue.push_back(batch);
        drop(st);
        self.inner.work.notify_one();
    }

    /// Waits until every queued batch has been delivered (or given up) or until
    /// `timeout`. With `stale_markers_on_end`, first enqueues a StaleNaN for every
    /// series seen (once). Undelivered samples are reported, never hidden.
    pub async fn flush(&self, timeout: Duration) -> DeliveryReport {
        if self.inner.settings.stale_markers_on_end {
            let req = {
                let mut st = self.inner.lock();
                if st.stale_sent || st.seen.is_empty() {
                    None
                } else {
                    st.stale_sent = true;
                    Some(stale_request(&st.seen, SystemTime::now()))
                }
            };
            if let Some(req) = req {
                if let Err(e) = self.enqueue_request(&req) {
                    tracing::warn!("remote_write: cannot enqueue stale markers: {e}");
                }
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let drained = loop {
            let notified = self.inner.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.inner.lock();
                if st.queue.is_empty() && st.in_flight.is_none() {
                    break true;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break false;
            }
        };
        let stats = self.stats();
        if !drained {
            tracing::warn!(
                pending_samples = stats.samples_pending,
                url = %self.inner.settings.redacted_url,
                "remote_write: flush timed out with undelivered samples"
            );
        }
        DeliveryReport {
            drained,
            samples_not_delivered: stats.samples_not_delivered(),
            stats,
        }
    }
}

/// Builds one request with a StaleNaN sample for every series in `seen`, stamped
/// `max(now, last + 1ms)`.
fn stale_request(seen: &HashMap<Vec<Label>, i64>, now: SystemTime) -> WriteRequest {
    let now = translate::to_millis(now);
    let mut timeseries: Vec<TimeSeries> = seen
        .iter()
        .map(|(labels, last)| TimeSeries {
            labels: labels.clone(),
            samples: vec![Sample {
                value: f64::from_bits(STALE_NAN_BITS),
                timestamp: now.max(last + 1),
            }],
            histograms: Vec::new(),
        })
        .collect();
    timeseries.sort_by(|a, b| a.labels.cmp(&b.labels));
    WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

impl PushMetricExporter for RemoteWriteExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.export_metrics(metrics).map(|_| ())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.work.notify_one();
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

// ---------------------------------------------------------------------------
// Sender
// ---------------------------------------------------------------------------

type Conn = SendRequest<Full<Bytes>>;

async fn run_sender(inner: Arc<Inner>) {
    let mut conn: Option<Conn> = None;
    loop {
        let next = {
            let mut st = inner.lock();
            let b = st.queue.pop_front();
            st.in_flight = b.as_ref().map(|b| b.samples);
            b
        };
        let Some(batch) = next else {
            inner.progress.notify_waiters();
            if inner.shutdown.load(Ordering::Acquire) {
                return;
            }
            inner.work.notified().await;
            continue;
        };
        deliver(&inner, &mut conn, &batch).await;
        inner.lock().in_flight = None;
        inner.progress.notify_waiters();
    }
}

async fn deliver(inner: &Inner, conn: &mut Option<Conn>, batch: &Batch) {
    let s = &inner.settings;
    let mut attempt: u32 = 0;
    loop {
        let (outcome, body) = send_once(s, conn, batch.body.clone()).await;
        match classify(&outcome) {
            RetryDecision::Delivered => {
                let mut st = inner.lock();
                st.stats.batches_sent += 1;
                st.stats.samples_sent += batch.samples;
                st.stats.bytes_sent += batch.body.len() as u64;
                return;
            }
            RetryDecision::Reject => {
                let mut st = inner.lock();
                st.stats.batches_rejected += 1;
                st.stats.samples_rejected += batch.samples;
                let first = !st.logged_reject;
                st.logged_reject = true;
                drop(st);
                let status = match outcome {
                    SendOutcome::Status(c, _) => c,
                    _ => 0,
                };
                if first {
                    tracing::error!(
                        status,
                        url = %s.redacted_url,
                        samples = batch.samples,
                        body = %body,
                        "remote_write: receiver rejected batch (not retried); later rejections are logged at debug"
                    );
                } else {
                    tracing::debug!(status, samples = batch.samples, body = %body, "remote_write: batch rejected");
                }
                return;
            }
            RetryDecision::Retry(after) => {
                if attempt >= s.max_retries || inner.shutdown.load(Ordering::Acquire) {
                    let mut st = inner.lock();
                    st.stats.batches_failed += 1;
                    st.stats.samples_failed += batch.samples;
                    drop(st);
                    tracing::warn!(
                        url = %s.redacted_url,
                        outcome = ?outcome,
                        attempts = attempt + 1,
                        samples = batch.samples,
                        "remote_write: giving up on batch"
                    );
                    return;
                }
                attempt += 1;
                inner.lock().stats.retries += 1;
                let delay = after.unwrap_or_else(|| {
                    backoff_delay(attempt, s.min_backoff, s.max_backoff, fastrand::f64())
                });
                tracing::debug!(?outcome, attempt, ?delay, "remote_write: retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

enum AttemptError {
    Connect,
    Io,
}

/// One HTTP attempt. Returns the outcome and (for non-2xx) the truncated body.
async fn send_once(s: &Settings, conn: &mut Option<Conn>, body: Bytes) -> (SendOutcome, String) {
    let attempt = async {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = Some(connect(s).await.map_err(|_| AttemptError::Connect)?);
        }
        let c = conn.as_mut().ok_or(AttemptError::Connect)?;
        c.ready().await.map_err(|_| AttemptError::Io)?;
        let mut req = Request::post(s.uri.path_and_query().map_or("/", |p| p.as_str()))
            .body(Full::new(body))
            .map_err(|_| AttemptError::Io)?;
        *req.headers_mut() = s.headers.clone();
        req.headers_mut()
            .insert(header::HOST, s.host_header.clone());
        let resp = c.send_request(req).await.map_err(|_| AttemptError::Io)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = match Limited::new(resp.into_body(), 64 * 1024).collect().await {
            Ok(b) if !(200..300).contains(&status) => {
                let bytes = b.to_bytes();
                let cut = &bytes[..bytes.len().min(MAX_LOGGED_BODY)];
                String::from_utf8_lossy(cut).into_owned()
            }
            _ => String::new(),
        };
        Ok::<_, AttemptError>((SendOutcome::Status(status, retry_after), text))
    };
    match tokio::time::timeout(s.timeout, attempt).await {
        Ok(Ok(r)) => r,
        Ok(Err(AttemptError::Connect)) => {
            *conn = None;
            (SendOutcome::ConnectError, String::new())
        }
        Ok(Err(AttemptError::Io)) => {
            *conn = None;
            (SendOutcome::Io, String::new())
        }
        Err(_) => {
            *conn = None;
            (SendOutcome::Timeout, String::new())
        }
    }
}

async fn connect(s: &Settings) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port)).await?;
    let _ = tcp.set_nodelay(true);
    if s.https {
        let connector = s.tls.as_ref().ok_or("tls not configured")?;
        let name = rustls::pki_types::ServerName::try_from(s.host.clone())?;
        let tls = connector.connect(name, tcp).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    } else {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
pub(crate) mod tests;

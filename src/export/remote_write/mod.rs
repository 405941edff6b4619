//! Prometheus remote-write 1.0 exporter.
//!
//! Flow: collection (a `ManualReader`) → [`translate`] → [`encode`] → [`queue`] (bounded,
//! drop-oldest) → [`sender`] (one background tokio task per target, in order, HTTP/1.1 or
//! HTTPS, the shared retry policy). This file resolves the settings (secrets, TLS) and holds the
//! exporter that ties the stages together; the settings types are in
//! [`crate::config::RemoteWriteConfig`].
//!
//! Secrets (passwords, bearer tokens, URL userinfo) are never logged: the `Authorization`
//! header is marked sensitive and URLs are passed through [`redact_url`] before they appear in
//! logs or errors.

pub mod encode;
pub mod proto;
mod queue;
mod sender;
pub mod translate;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::Full;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use serde::Serialize;
use tokio::sync::Notify;

use self::proto::{Label, Sample, TimeSeries, WriteRequest};
pub use self::queue::DeliveryStats;
use self::queue::{Batch, Queue};
use self::translate::TranslateOptions;
use super::delivery::{Delivery, Unit, Waiting};
use super::retry::RetryPolicy;
use super::transport::{Peer, tls_connector};
use crate::config::{InvalidRemoteWrite, TlsConfig};
pub use crate::config::{RemoteWriteConfig, redact_url};

/// Prometheus' staleness marker NaN bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Remote-write protocol version header value (1.0 spec).
pub const REMOTE_WRITE_VERSION: &str = "0.1.0";
/// Time series per remote-write request; a larger collection is split into several requests.
pub const MAX_SERIES_PER_REQUEST: usize = 2000;

/// Errors creating the exporter. Messages name the offending `remote_write.*` key and never
/// contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidRemoteWrite),
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
    RemoteWriteError::Invalid(InvalidRemoteWrite {
        key,
        reason: reason.into(),
    })
}

fn read_secret_file(key: &'static str, path: &Path) -> Result<String, RemoteWriteError> {
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

/// Resolved settings used by the sender: secrets read, TLS built.
struct Settings {
    peer: Peer,
    /// Path and query of the endpoint.
    path: String,
    /// `Host` header value (authority without userinfo).
    host_header: HeaderValue,
    redacted_url: String,
    headers: HeaderMap,
    timeout: Duration,
    queue_capacity: usize,
    retry: RetryPolicy,
    stale_markers_on_end: bool,
    translate: TranslateOptions,
}

impl Settings {
    /// Validates `cfg`, reads its secrets and builds TLS.
    fn resolve(cfg: &RemoteWriteConfig) -> Result<Settings, RemoteWriteError> {
        cfg.validate()?;
        let url = cfg.parse_url()?;
        let authority = url
            .uri
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
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| invalid("headers", format!("invalid header name {k:?}")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| invalid("headers", format!("invalid value for header {k:?}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(auth) = authorization(cfg)? {
            headers.insert(header::AUTHORIZATION, auth);
        }
        let tls = if url.https {
            Some(build_tls(&cfg.tls)?)
        } else {
            None
        };
        Ok(Settings {
            redacted_url: redact_url(&cfg.url),
            path: url
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            peer: Peer {
                host: url.host,
                port: url.port,
                tls,
            },
            host_header,
            headers,
            timeout: cfg.timeout.get(),
            queue_capacity: cfg.queue_capacity,
            retry: RetryPolicy {
                max_retries: cfg.max_retries,
                min_backoff: cfg.min_backoff.get(),
                max_backoff: cfg.max_backoff.get(),
            },
            stale_markers_on_end: cfg.stale_markers_on_end,
            translate: TranslateOptions {
                metadata: cfg.send_metadata,
                ..TranslateOptions::default()
            },
        })
    }

    /// A push request carrying `body`.
    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::post(self.path.as_str())
            .body(Full::new(body))
            .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())));
        *req.headers_mut() = self.headers.clone();
        req.headers_mut()
            .insert(header::HOST, self.host_header.clone());
        req
    }
}

/// The `Authorization` header: basic auth, a bearer token, or the URL's userinfo.
fn authorization(cfg: &RemoteWriteConfig) -> Result<Option<HeaderValue>, RemoteWriteError> {
    let value = if let Some(b) = &cfg.basic_auth {
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
    } else if let Some(t) = &cfg.bearer_token {
        Some(format!("Bearer {}", t.0))
    } else if let Some(f) = &cfg.bearer_token_file {
        Some(format!(
            "Bearer {}",
            read_secret_file("bearer_token_file", f)?
        ))
    } else if let Some(v) = &cfg.bearer_token_env {
        Some(format!("Bearer {}", read_env("bearer_token_env", v)?))
    } else if let (_, Some(c)) = crate::http::url::split_credentials(cfg.url.trim()) {
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
    tls_connector(cfg.insecure_skip_verify, extra, &[b"http/1.1"]).map_err(|e| invalid("tls", e))
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

struct State {
    queue: Queue,
    /// series → last timestamp (only with stale markers).
    seen: HashMap<Vec<Label>, i64>,
    /// The cause of the last failed attempt.
    last_error: Option<String>,
    /// Whether the last attempt failed.
    last_failed: bool,
    /// Causes already logged at warn (each new cause is, once).
    warned: Vec<String>,
    logged_reject: bool,
    logged_drop: bool,
    /// Whether the receiver has answered at all (a success or an HTTP status).
    reached: bool,
    /// A likely misconfiguration behind the failures (cleared by a delivery).
    hint: Option<String>,
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
    /// Set once the final flush has begun.
    flushing: AtomicBool,
    /// Wakes a sender waiting out a backoff when the final flush begins.
    flush_started: Notify,
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

/// Prometheus remote-write exporter. Cheap to clone; the background sender task is aborted
/// when the last clone is dropped.
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

/// Everything [`RemoteWriteExporter::new`] checks before it starts — values, secret and CA
/// files, environment variables, TLS — without starting anything: `stampede validate` and the
/// run refuse the same settings before any request is sent.
pub fn check(cfg: &RemoteWriteConfig) -> Result<(), RemoteWriteError> {
    Settings::resolve(cfg).map(|_| ())
}

impl RemoteWriteExporter {
    /// Validates `cfg`, reads secret files/env, builds TLS and spawns the sender task. Must be
    /// called inside a tokio runtime.
    pub fn new(cfg: RemoteWriteConfig) -> Result<Self, RemoteWriteError> {
        let settings = Settings::resolve(&cfg)?;
        let handle =
            tokio::runtime::Handle::try_current().map_err(|_| RemoteWriteError::NoRuntime)?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                queue: Queue::new(settings.queue_capacity),
                seen: HashMap::new(),
                last_error: None,
                last_failed: false,
                warned: Vec::new(),
                logged_reject: false,
                logged_drop: false,
                reached: false,
                hint: None,
                logged_delta: false,
                stale_sent: false,
            }),
            settings,
            work: Notify::new(),
            progress: Notify::new(),
            shutdown: AtomicBool::new(false),
            flushing: AtomicBool::new(false),
            flush_started: Notify::new(),
        });
        let task = handle.spawn(sender::run(inner.clone()));
        Ok(Self {
            inner,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// The receiver URL with credentials removed.
    pub fn redacted_url(&self) -> &str {
        &self.inner.settings.redacted_url
    }

    /// The exporter's name in reports.
    pub fn describe(&self) -> String {
        format!("remote_write {}", self.inner.settings.redacted_url)
    }

    /// Current delivery counters.
    pub fn stats(&self) -> DeliveryStats {
        self.inner.lock().queue.snapshot()
    }

    /// What was delivered and what not, so far.
    pub fn delivery(&self) -> Delivery {
        let st = self.inner.lock();
        let s = st.queue.snapshot();
        Delivery {
            exporter: self.describe(),
            unit: Unit::Samples,
            delivered: s.samples_sent,
            dropped: s.samples_dropped,
            rejected: s.samples_rejected,
            given_up: s.samples_failed,
            pending: s.samples_pending,
            requests: s.batches_sent,
            bytes: Some(s.bytes_sent),
            failed_attempts: s.attempts_failed,
            last_failed: st.last_failed,
            last_error: st.last_error.clone(),
            hint: st.hint.clone(),
        }
    }

    /// What a flush would still wait for (`None` when idle).
    pub fn waiting(&self) -> Option<Waiting> {
        let st = self.inner.lock();
        if st.queue.is_idle() {
            return None;
        }
        let s = st.queue.snapshot();
        Some(Waiting {
            exporter: self.describe(),
            unit: Unit::Samples,
            pending: s.samples_pending,
            requests: s.batches_pending,
            failed_attempts: s.attempts_failed,
            last_error: st.last_error.clone(),
        })
    }

    /// Translates, encodes and enqueues one collection; returns without waiting for delivery.
    /// Returns the number of samples enqueued.
    pub fn export_metrics(&self, rm: &ResourceMetrics) -> Result<usize, OTelSdkError> {
        self.export_metrics_with(rm, &crate::metrics::Exemplars::new())
    }

    /// [`RemoteWriteExporter::export_metrics`] with exemplars on the request duration's
    /// bucket series.
    pub fn export_metrics_with(
        &self,
        rm: &ResourceMetrics,
        exemplars: &crate::metrics::Exemplars,
    ) -> Result<usize, OTelSdkError> {
        if self.inner.shutdown.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let t = translate::translate_with_exemplars(rm, &self.inner.settings.translate, exemplars);
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
        let batch = Batch {
            body: Bytes::from(body),
            samples,
        };
        let mut st = self.inner.lock();
        let dropped = st.queue.push(batch);
        if dropped > 0 {
            let cap = self.inner.settings.queue_capacity;
            if !st.logged_drop {
                st.logged_drop = true;
                tracing::warn!(
                    url = %self.inner.settings.redacted_url,
                    "remote_write: queue full ({cap} batches): dropped the oldest batch, {dropped} samples NOT delivered (later drops are logged at debug)"
                );
            } else {
                tracing::debug!("remote_write: queue full, dropped {dropped} samples");
            }
        }
        drop(st);
        self.inner.work.notify_one();
        Ok(())
    }

    /// Waits until every queued batch has been delivered (or given up) or until `timeout`.
    /// With `stale_markers_on_end`, first enqueues a StaleNaN for every series seen (once).
    /// Undelivered samples are reported, never hidden.
    pub async fn flush(&self, timeout: Duration) -> DeliveryReport {
        self.flush_until(super::transport::after(timeout)).await
    }

    /// [`RemoteWriteExporter::flush`] with a deadline.
    pub async fn flush_until(&self, deadline: tokio::time::Instant) -> DeliveryReport {
        self.inner.flushing.store(true, Ordering::Release);
        self.inner.flush_started.notify_waiters();
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
        let drained = loop {
            let notified = self.inner.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.lock().queue.is_idle() {
                break true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break false;
            }
        };
        let stats = self.stats();
        if !drained {
            let last = self.inner.lock().last_error.clone();
            tracing::debug!(
                url = %self.inner.settings.redacted_url,
                "remote_write: flush deadline reached: {} samples in {} batches NOT delivered{}",
                stats.samples_pending,
                stats.batches_pending,
                last.map(|e| format!(" (last error: {e})")).unwrap_or_default()
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
            exemplars: Vec::new(),
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

#[cfg(test)]
pub(crate) mod tests;

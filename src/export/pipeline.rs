//! Export loops: each exporter collects its own reader on its own interval, and a final
//! collection + export + bounded flush at the end of the run.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use tokio::sync::watch;
use tokio::time::Instant;

use super::otlp::{self, OtlpExporter};
use super::remote_write::{RemoteWriteError, RemoteWriteExporter};
use crate::config::MetricsConfig;
use crate::metrics::SharedReader;
use crate::report::ExportRow;
use crate::task::Panicked;

/// Why export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Remote-write configuration.
    #[error("metrics.remote_write[{index}]: {source}")]
    RemoteWrite {
        /// Which target.
        index: usize,
        /// What is wrong.
        source: RemoteWriteError,
    },
    /// OTLP configuration.
    #[error("OTLP: {0}")]
    Otlp(#[from] otlp::OtlpError),
}

enum Kind {
    RemoteWrite(RemoteWriteExporter),
    Otlp(Box<OtlpExporter>),
}

struct Entry {
    reader: SharedReader,
    kind: Kind,
    interval: Duration,
}

/// All exporters of a run.
pub struct Pipeline {
    entries: Vec<Arc<Entry>>,
    stop: watch::Sender<bool>,
    loops: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Export loops that panicked (found when [`Pipeline::finish`] joins them).
    panicked: std::sync::Mutex<Vec<Panicked>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("exporters", &self.entries.len())
            .finish()
    }
}

impl Pipeline {
    /// Builds the exporters the configuration asks for (call inside a tokio runtime).
    pub fn build(cfg: &MetricsConfig) -> Result<Pipeline, ExportError> {
        let mut entries = Vec::new();
        for (index, rw) in cfg.remote_write.iter().enumerate() {
            let interval = rw.push_interval;
            let exp = RemoteWriteExporter::new(rw.clone())
                .map_err(|source| ExportError::RemoteWrite { index, source })?;
            entries.push(Arc::new(Entry {
                reader: SharedReader::new(Temporality::Cumulative),
                kind: Kind::RemoteWrite(exp),
                interval,
            }));
        }
        if let Some(settings) = otlp::resolve(cfg.otlp.as_ref(), &crate::template::process_env)? {
            let interval = otlp_interval(cfg.interval.map(|d| d.get()), settings.interval);
            let temporality = settings.temporality;
            let exp = OtlpExporter::new(settings)?;
            entries.push(Arc::new(Entry {
                reader: SharedReader::new(temporality),
                kind: Kind::Otlp(Box::new(exp)),
                interval,
            }));
        }
        Ok(Pipeline {
            entries,
            stop: watch::channel(false).0,
            loops: std::sync::Mutex::new(Vec::new()),
            panicked: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Whether any exporter is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The readers to register with the MeterProvider.
    pub fn readers(&self) -> Vec<SharedReader> {
        self.entries.iter().map(|e| e.reader.clone()).collect()
    }

    /// Describes the exporters for the start banner (no credentials).
    pub fn describe(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| match &e.kind {
                Kind::RemoteWrite(r) => {
                    format!("remote_write {} every {:?}", r.redacted_url(), e.interval)
                }
                Kind::Otlp(o) => format!("{} every {:?}", o.describe(), e.interval),
            })
            .collect()
    }

    /// Starts the periodic loops on the current runtime.
    pub fn start(&self) {
        let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
        for e in &self.entries {
            let e = e.clone();
            let mut stop = self.stop.subscribe();
            loops.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(Instant::now() + e.interval, e.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    let deadline = Instant::now() + e.interval;
                    collect_and_export(&e, 3, deadline).await;
                }
            }));
        }
    }

    /// Export loops that panicked, found by [`Pipeline::finish`] (a run with any fails).
    pub fn panicked(&self) -> Vec<Panicked> {
        std::mem::take(&mut *self.panicked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stops the loops, exports one last collection per exporter and waits up to `timeout` for
    /// delivery. Returns what each exporter delivered and did not.
    pub async fn finish(&self, timeout: Duration) -> Vec<ExportRow> {
        self.stop.send_replace(true);
        let loops: Vec<_> =
            std::mem::take(&mut *self.loops.lock().unwrap_or_else(|p| p.into_inner()));
        for l in loops {
            if let Err(e) = l.await
                && let Some(p) = Panicked::from_join("an export loop", e)
            {
                self.panicked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(p);
            }
        }
        let deadline = Instant::now() + timeout;
        let mut rows = Vec::new();
        for e in &self.entries {
            collect_and_export(e, 5, deadline).await;
            let left = deadline.saturating_duration_since(Instant::now());
            rows.push(match &e.kind {
                Kind::RemoteWrite(r) => {
                    let rep = r.flush(left).await;
                    let s = &rep.stats;
                    let mut detail = vec![format!(
                        "{} batches, {} bytes, {} retries",
                        s.batches_sent, s.bytes_sent, s.retries
                    )];
                    if s.samples_dropped > 0 {
                        detail.push(format!(
                            "{} samples dropped (queue full)",
                            s.samples_dropped
                        ));
                    }
                    if s.samples_rejected > 0 {
                        detail.push(format!(
                            "{} samples rejected by the receiver",
                            s.samples_rejected
                        ));
                    }
                    if s.samples_failed > 0 {
                        detail.push(format!(
                            "{} samples given up after retries",
                            s.samples_failed
                        ));
                    }
                    if s.samples_pending > 0 {
                        detail.push(format!(
                            "{} samples still queued at exit",
                            s.samples_pending
                        ));
                    }
                    ExportRow {
                        exporter: format!("remote_write {}", r.redacted_url()),
                        delivered: s.samples_sent,
                        not_delivered: rep.samples_not_delivered,
                        failed_attempts: s.retries + s.batches_rejected,
                        detail: detail.join(", "),
                    }
                }
                Kind::Otlp(o) => {
                    let s = o.stats();
                    o.shutdown();
                    let mut detail = format!("{} exports", s.exports_ok);
                    if s.exports_given_up > 0 {
                        detail.push_str(&format!(", {} given up", s.exports_given_up));
                    }
                    if !s.last_ok {
                        detail.push_str(", FINAL EXPORT FAILED");
                    }
                    if let Some(err) = &s.last_error {
                        detail.push_str(&format!(", last error: {err}"));
                    }
                    ExportRow {
                        exporter: o.describe(),
                        delivered: s.points_delivered,
                        not_delivered: s.points_lost,
                        failed_attempts: s.attempts_failed,
                        detail,
                    }
                }
            });
        }
        for row in &rows {
            if row.not_delivered > 0 {
                tracing::error!(
                    exporter = %row.exporter,
                    not_delivered = row.not_delivered,
                    "metrics were NOT delivered: {}",
                    row.detail
                );
            }
        }
        rows
    }
}

/// The OTLP export interval: config and flags beat `OTEL_METRIC_EXPORT_INTERVAL`, which beats
/// the 5 s default.
fn otlp_interval(configured: Option<Duration>, env: Option<Duration>) -> Duration {
    configured.or(env).unwrap_or(Duration::from_secs(5))
}

async fn collect_and_export(e: &Entry, attempts: u32, deadline: Instant) {
    let mut rm = ResourceMetrics::default();
    if let Err(err) = e.reader.collect(&mut rm) {
        tracing::warn!(error = %err, "metric collection failed");
        return;
    }
    match &e.kind {
        Kind::RemoteWrite(r) => {
            if let Err(err) = r.export_metrics(&rm) {
                tracing::warn!(error = %err, "remote_write: cannot enqueue a collection");
            }
        }
        Kind::Otlp(o) => {
            o.export_with_retry(&rm, attempts, deadline).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_interval_precedence() {
        let s = Duration::from_secs;
        assert_eq!(otlp_interval(Some(s(2)), Some(s(7))), s(2));
        assert_eq!(otlp_interval(None, Some(s(7))), s(7));
        assert_eq!(otlp_interval(None, None), s(5));
    }

    #[test]
    fn a_panicked_export_loop_is_reported_not_ignored() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let panicked = rt.block_on(async {
            let p = Pipeline {
                entries: Vec::new(),
                stop: watch::channel(false).0,
                loops: std::sync::Mutex::new(vec![
                    tokio::spawn(async {}),
                    tokio::spawn(async { panic!("export loop broke") }),
                ]),
                panicked: std::sync::Mutex::new(Vec::new()),
            };
            p.finish(Duration::from_secs(1)).await;
            p.panicked()
        });
        assert_eq!(panicked.len(), 1);
        assert_eq!(
            panicked[0].to_string(),
            "an export loop panicked: export loop broke"
        );
    }
}

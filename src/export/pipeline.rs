//! Export loops: each exporter collects its own reader on its own interval; at the end, one
//! deadline bounds everything that is left (the periodic exports still running, then the final
//! collection, export and flush of every exporter at once), and every await honours it.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use tokio::sync::watch;
use tokio::time::Instant;

use super::delivery::{Delivery, Waiting};
use super::otlp::{self, OtlpExporter};
use super::remote_write::{RemoteWriteError, RemoteWriteExporter};
use super::spans::SpanExport;
use super::transport::after;
use crate::config::{MetricsConfig, TraceExport};
use crate::engine::task::Panicked;
use crate::metrics::{ExemplarStore, Exemplars, SharedReader};
use crate::scenario::plan::Plan;

/// How long the final flush may go on before [`Pipeline::finish`] reports what it waits for.
pub const SLOW_FLUSH: Duration = Duration::from_secs(1);

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

impl Entry {
    fn delivery(&self) -> Delivery {
        match &self.kind {
            Kind::RemoteWrite(r) => r.delivery(),
            Kind::Otlp(o) => o.delivery(),
        }
    }

    fn waiting(&self) -> Option<Waiting> {
        match &self.kind {
            Kind::RemoteWrite(r) => r.waiting(),
            Kind::Otlp(o) => o.waiting(),
        }
    }
}

/// All exporters of a run.
pub struct Pipeline {
    entries: Vec<Arc<Entry>>,
    stop: watch::Sender<bool>,
    /// The periodic loops, by entry.
    loops: std::sync::Mutex<Vec<(usize, tokio::task::JoinHandle<()>)>>,
    /// Export loops that panicked (found when [`Pipeline::finish`] joins them).
    panicked: std::sync::Mutex<Vec<Panicked>>,
    /// Exemplar slots, one per exporter (entry index).
    exemplars: Arc<ExemplarStore>,
    /// Client spans, with `--otlp-traces`.
    spans: Option<Arc<SpanExport>>,
    /// The span loop.
    span_loop: std::sync::Mutex<Option<tokio::task::JoinHandle<SpanLeft>>>,
}

/// What the span loop leaves for the final flush.
type SpanLeft = Option<(
    tokio::sync::mpsc::Receiver<crate::trace::SpanRecord>,
    Vec<crate::trace::SpanRecord>,
)>;

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
            let interval = rw.push_interval.get();
            let exp = RemoteWriteExporter::new(rw.clone())
                .map_err(|source| ExportError::RemoteWrite { index, source })?;
            entries.push(Arc::new(Entry {
                reader: SharedReader::new(Temporality::Cumulative),
                kind: Kind::RemoteWrite(exp),
                interval,
            }));
        }
        if let Some(settings) =
            otlp::resolve(cfg.otlp.as_ref(), &crate::scenario::template::process_env)?
        {
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
            exemplars: Arc::new(ExemplarStore::new(entries.len())),
            entries,
            stop: watch::channel(false).0,
            loops: std::sync::Mutex::new(Vec::new()),
            panicked: std::sync::Mutex::new(Vec::new()),
            spans: None,
            span_loop: std::sync::Mutex::new(None),
        })
    }

    /// The exemplar slots the exporters take from (give them to the instruments).
    pub fn exemplars(&self) -> Arc<ExemplarStore> {
        self.exemplars.clone()
    }

    /// Sets up client span export when the plan asks for it (`[tracing] export = "otlp"`);
    /// returns where the workers leave span records.
    pub(crate) fn add_spans(
        &mut self,
        plan: &Plan,
    ) -> Result<Option<crate::trace::SpanSink>, ExportError> {
        if plan.tracing.export != Some(TraceExport::Otlp) {
            return Ok(None);
        }
        let env = &crate::scenario::template::process_env;
        let Some(metrics) = otlp::resolve(plan.metrics.otlp.as_ref(), env)? else {
            return Err(ExportError::Otlp(otlp::OtlpError::Invalid {
                source_name: "tracing.export",
                message: "client spans go to the OTLP endpoint: set --otlp-endpoint (metrics.otlp.endpoint) or OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            }));
        };
        let (sink, source) = crate::trace::SpanSink::channel(super::spans::CAPACITY);
        let resource = crate::metrics::resource(&plan.metrics, &plan.run_id);
        let exp = SpanExport::new(
            otlp::traces_settings(&metrics, env),
            plan,
            &resource,
            source,
        )?;
        self.spans = Some(Arc::new(exp));
        Ok(Some(sink))
    }

    /// Whether any exporter is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.spans.is_none()
    }

    /// The readers to register with the MeterProvider.
    pub fn readers(&self) -> Vec<SharedReader> {
        self.entries.iter().map(|e| e.reader.clone()).collect()
    }

    /// Describes the exporters for the start banner (no credentials).
    pub fn describe(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                let name = match &e.kind {
                    Kind::RemoteWrite(r) => r.describe(),
                    Kind::Otlp(o) => o.describe(),
                };
                format!("{name} every {}", humantime::format_duration(e.interval))
            })
            .chain(self.spans.iter().map(|s| s.describe()))
            .collect()
    }

    /// Starts the periodic loops on the current runtime.
    pub fn start(&self) {
        let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
        for (i, e) in self.entries.iter().enumerate() {
            let e = e.clone();
            let ex = self.exemplars.clone();
            let mut stop = self.stop.subscribe();
            loops.push((
                i,
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval_at(after(e.interval), e.interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = stop.wait_for(|s| *s) => break,
                        }
                        collect_and_export(&e, &ex, i, after(e.interval)).await;
                    }
                }),
            ));
        }
        if let Some(s) = &self.spans {
            let stop = self.stop.subscribe();
            *self.span_loop.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(tokio::spawn(s.clone().run(stop)));
        }
    }

    /// What the exporters are still waiting for.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.entries
            .iter()
            .filter_map(|e| e.waiting())
            .chain(self.spans.iter().filter_map(|s| s.waiting()))
            .collect()
    }

    /// Stops the loops, exports one last collection per exporter and waits until `deadline`
    /// at the latest for delivery, all exporters at once. When that takes longer than
    /// [`SLOW_FLUSH`], `on_slow` is told once what is still pending. Returns what each
    /// exporter delivered and did not.
    pub async fn finish(
        &self,
        deadline: Instant,
        on_slow: &mut (dyn FnMut(&[Waiting]) + Send),
    ) -> Vec<Delivery> {
        let flush = self.flush(deadline);
        tokio::pin!(flush);
        let slow = Instant::now() + SLOW_FLUSH;
        tokio::select! {
            () = &mut flush => {}
            () = tokio::time::sleep_until(slow.min(deadline)) => {
                let waiting = self.waiting();
                if !waiting.is_empty() {
                    on_slow(&waiting);
                }
                flush.await;
            }
        }
        let deliveries: Vec<Delivery> = self
            .entries
            .iter()
            .map(|e| e.delivery())
            .chain(self.spans.iter().map(|s| s.delivery()))
            .collect();
        for d in &deliveries {
            let n = d.not_delivered();
            if n > 0 {
                tracing::error!(
                    "{}: {n} {} NOT delivered{}{}",
                    d.exporter,
                    d.unit.name(n),
                    d.last_error
                        .as_ref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default(),
                    d.hint
                        .as_ref()
                        .map(|h| format!("; hint: {h}"))
                        .unwrap_or_default()
                );
            }
        }
        deliveries
    }

    /// Export loops that panicked, found by [`Pipeline::finish`] (a run with any fails).
    pub fn panicked(&self) -> Vec<Panicked> {
        std::mem::take(&mut *self.panicked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn flush(&self, deadline: Instant) {
        self.stop.send_replace(true);
        let loops: Vec<_> =
            std::mem::take(&mut *self.loops.lock().unwrap_or_else(|p| p.into_inner()));
        // A periodic export still running may finish within the deadline; past it, it is cut
        // and its data points count as not delivered (with cumulative temporality the final
        // export below carries the same totals).
        for (i, mut l) in loops {
            match tokio::time::timeout_at(deadline, &mut l).await {
                Err(_) => {
                    l.abort();
                    if let Kind::Otlp(o) = &self.entries[i].kind {
                        o.abandon_in_flight();
                    }
                }
                Ok(Err(e)) => {
                    if let Some(p) = Panicked::from_join("an export loop", e) {
                        self.panicked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(p);
                    }
                }
                Ok(Ok(())) => {}
            }
        }
        let span_loop = self
            .span_loop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let spans = async {
            let (Some(s), Some(mut l)) = (&self.spans, span_loop) else {
                return;
            };
            let left = match tokio::time::timeout_at(deadline, &mut l).await {
                Ok(Ok(left)) => left,
                Ok(Err(e)) => {
                    if let Some(p) = Panicked::from_join("the span export loop", e) {
                        self.panicked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(p);
                    }
                    None
                }
                Err(_) => {
                    l.abort();
                    s.abandon_in_flight();
                    None
                }
            };
            s.flush(left, deadline).await;
        };
        let metrics = futures_util::future::join_all(
            self.entries
                .iter()
                .enumerate()
                .map(|(i, e)| final_export(e.as_ref(), &self.exemplars, i, deadline)),
        );
        futures_util::future::join(metrics, spans).await;
    }
}

/// The final collection of one exporter, exported and flushed before `deadline`.
async fn final_export(e: &Entry, ex: &ExemplarStore, index: usize, deadline: Instant) {
    collect_and_export(e, ex, index, deadline).await;
    if let Kind::RemoteWrite(r) = &e.kind {
        r.flush_until(deadline).await;
    }
}

/// The OTLP export interval: config and flags beat `OTEL_METRIC_EXPORT_INTERVAL`, which beats
/// the 5 s default.
fn otlp_interval(configured: Option<Duration>, env: Option<Duration>) -> Duration {
    configured.or(env).unwrap_or(Duration::from_secs(5))
}

/// Collects exporter `index`'s reader and exports the collection with the exemplars of its
/// interval (taken after the collection, so every exemplar's request is in the collection).
async fn collect_and_export(e: &Entry, ex: &ExemplarStore, index: usize, deadline: Instant) {
    let mut rm = ResourceMetrics::default();
    if let Err(err) = e.reader.collect(&mut rm) {
        tracing::warn!("metric collection failed: {err}");
        return;
    }
    let exemplars: Exemplars = ex.take(index);
    match &e.kind {
        Kind::RemoteWrite(r) => {
            if let Err(err) = r.export_metrics_with(&rm, &exemplars) {
                tracing::warn!("{}: cannot enqueue a collection: {err}", r.describe());
            }
        }
        Kind::Otlp(o) => {
            o.export_with(&rm, &exemplars, deadline).await;
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
                    (0, tokio::spawn(async {})),
                    (1, tokio::spawn(async { panic!("export loop broke") })),
                ]),
                panicked: std::sync::Mutex::new(Vec::new()),
                exemplars: Arc::new(ExemplarStore::new(0)),
                spans: None,
                span_loop: std::sync::Mutex::new(None),
            };
            p.finish(Instant::now() + Duration::from_secs(1), &mut |_| {})
                .await;
            p.panicked()
        });
        assert_eq!(panicked.len(), 1);
        assert_eq!(
            panicked[0].to_string(),
            "an export loop panicked: export loop broke"
        );
    }
}

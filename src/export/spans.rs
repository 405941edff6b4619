//! Client spans: the span records of sampled requests ([`crate::trace::SpanRecord`]) turned
//! into OTLP `http.client` spans (semantic conventions: `http.request.method`,
//! `server.address`, `server.port`, `url.full` without credentials,
//! `http.response.status_code`, `error.type`), batched off the hot path and sent to the OTLP
//! endpoint with the shared retry policy; flushed at the end like the metrics.
//!
//! Workers hand records over a bounded channel ([`crate::trace::SpanSink`]); the loop here
//! sends a batch when [`BATCH`] spans are waiting or every [`EVERY`], whichever comes first.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::delivery::{Delivery, Waiting};
use super::otlp::{OtlpExporter, Resolved};
use super::transport::after;
use crate::scenario::plan::{Plan, UrlPlan};
use crate::trace::{SpanRecord, SpanSource};

/// Spans per export request.
pub(crate) const BATCH: usize = 512;
/// A partial batch waits at most this long.
pub(crate) const EVERY: Duration = Duration::from_secs(1);
/// Span records the channel holds before dropping (and counting) new ones.
pub(crate) const CAPACITY: usize = 65_536;

/// The span exporter of a run.
pub(crate) struct SpanExport {
    exporter: OtlpExporter,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    builder: SpanBuilder,
    source: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<SpanRecord>>>,
}

impl SpanExport {
    /// The exporter for `settings` (from [`super::otlp::traces_settings`]), reading `source`.
    pub(crate) fn new(
        settings: Resolved,
        plan: &Plan,
        resource: &opentelemetry_sdk::Resource,
        source: SpanSource,
    ) -> Result<SpanExport, super::otlp::OtlpError> {
        Ok(SpanExport {
            exporter: OtlpExporter::for_spans(settings)?,
            dropped: source.dropped,
            builder: SpanBuilder::new(plan, resource),
            source: std::sync::Mutex::new(Some(source.rx)),
        })
    }

    /// A name for the banner and reports.
    pub(crate) fn describe(&self) -> String {
        self.exporter.describe()
    }

    /// What was delivered (spans dropped because the channel was full count as dropped).
    pub(crate) fn delivery(&self) -> Delivery {
        let mut d = self.exporter.delivery();
        d.dropped += self.dropped.load(Ordering::Relaxed);
        d
    }

    /// What the final flush still waits for.
    pub(crate) fn waiting(&self) -> Option<Waiting> {
        self.exporter.waiting()
    }

    /// Counts an export cut off at the deadline.
    pub(crate) fn abandon_in_flight(&self) {
        self.exporter.abandon_in_flight();
    }

    /// The batching loop; returns, once `stop` is set, the channel and what it had not sent.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
    ) -> Option<(tokio::sync::mpsc::Receiver<SpanRecord>, Vec<SpanRecord>)> {
        let mut rx = self
            .source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let mut buf = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval_at(after(EVERY), EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut buf, BATCH * 4) => {
                    if n == 0 || buf.len() < BATCH {
                        if n == 0 { break; }
                        continue;
                    }
                }
                _ = tick.tick() => {
                    if buf.is_empty() { continue; }
                }
                _ = stop.wait_for(|s| *s) => break,
            }
            while !buf.is_empty() {
                let take = buf.len().min(BATCH);
                let batch: Vec<SpanRecord> = buf.drain(..take).collect();
                self.send(&batch, after(self.exporter.settings().timeout))
                    .await;
                if buf.len() < BATCH {
                    break;
                }
            }
        }
        Some((rx, buf))
    }

    /// Sends what is left, before `deadline`.
    pub(crate) async fn flush(
        &self,
        left: Option<(tokio::sync::mpsc::Receiver<SpanRecord>, Vec<SpanRecord>)>,
        deadline: Instant,
    ) {
        let Some((mut rx, mut buf)) = left else {
            return;
        };
        rx.close();
        while let Ok(r) = rx.try_recv() {
            buf.push(r);
        }
        for batch in buf.chunks(BATCH) {
            self.send(batch, deadline).await;
        }
    }

    async fn send(&self, batch: &[SpanRecord], deadline: Instant) {
        let req = self.builder.request(batch);
        self.exporter
            .export_spans(&req, batch.len() as u64, deadline)
            .await;
    }
}

/// Turns span records into the protobuf request, with what the plan knows about each request.
struct SpanBuilder {
    resource: Resource,
    /// By request id: its attributes that do not vary (method, server, template, run, scenario).
    request_attrs: Vec<Vec<KeyValue>>,
    /// By request id: span name (`{method} {url.template}`).
    names: Vec<String>,
    /// By request id: `url.full` of static URLs.
    urls: Vec<Option<String>>,
    /// By request id: `scheme://host:port` of its target.
    origins: Vec<String>,
    /// By scenario: run id and scenario.
    scenario_attrs: Vec<Vec<KeyValue>>,
    scenario_names: Vec<String>,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `url.full` without credentials: scheme, host and port from the plan's target, path and
/// query from the (rendered) URL.
fn full_url(origin: &str, url: &str) -> String {
    let pq = match url.parse::<http::Uri>() {
        Ok(u) => u.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        Err(_) => "/".to_string(),
    };
    format!("{origin}{pq}")
}

impl SpanBuilder {
    fn new(plan: &Plan, resource: &opentelemetry_sdk::Resource) -> SpanBuilder {
        let resource = Resource {
            attributes: resource
                .iter()
                .map(|(k, v)| s(k.as_str(), v.as_str().into_owned()))
                .collect(),
            dropped_attributes_count: 0,
            entity_refs: Vec::new(),
        };
        let scenario_attrs: Vec<Vec<KeyValue>> = plan
            .scenarios
            .iter()
            .map(|sc| {
                vec![
                    s("stampede.run.id", plan.run_id.clone()),
                    s("stampede.scenario", sc.name.to_string()),
                ]
            })
            .collect();
        let origins: Vec<String> = plan
            .requests
            .iter()
            .map(|r| {
                let t = &plan.targets[r.target];
                let scheme = if t.tls { "https" } else { "http" };
                format!("{scheme}://{}", t.authority)
            })
            .collect();
        let mut urls = vec![None; plan.requests.len()];
        for sc in &plan.scenarios {
            for r in sc.on_start.iter().chain(sc.tasks.iter().flatten()) {
                if let (UrlPlan::Static(u), Some(slot)) = (&r.url, urls.get_mut(r.id)) {
                    *slot = Some(full_url(&origins[r.id], &u.to_string()));
                }
            }
        }
        SpanBuilder {
            resource,
            request_attrs: plan
                .requests
                .iter()
                .map(|r| {
                    let t = &plan.targets[r.target];
                    let mut v = scenario_attrs[r.scenario].clone();
                    v.push(s("http.request.method", r.method.as_str()));
                    v.push(s("server.address", t.host.clone()));
                    v.push(kv(
                        "server.port",
                        any_value::Value::IntValue(i64::from(t.port)),
                    ));
                    v.push(s("url.template", r.name.to_string()));
                    v
                })
                .collect(),
            names: plan
                .requests
                .iter()
                .map(|r| format!("{} {}", r.method, r.name))
                .collect(),
            urls,
            origins,
            scenario_names: plan.scenarios.iter().map(|s| s.name.to_string()).collect(),
            scenario_attrs,
        }
    }

    fn span(&self, r: &SpanRecord) -> Span {
        let (name, kind, mut attributes) = match r.req {
            Some(id) => {
                let mut a = self.request_attrs[id].clone();
                let url = match &r.url {
                    Some(u) => Some(full_url(&self.origins[id], u)),
                    None => self.urls[id].clone(),
                };
                if let Some(u) = url {
                    a.push(s("url.full", u));
                }
                (self.names[id].clone(), SpanKind::Client, a)
            }
            None => (
                format!("iteration {}", self.scenario_names[r.scenario]),
                SpanKind::Internal,
                self.scenario_attrs[r.scenario].clone(),
            ),
        };
        if let Some(st) = r.status {
            attributes.push(kv(
                "http.response.status_code",
                any_value::Value::IntValue(i64::from(st)),
            ));
        }
        let error = match (r.error, r.status) {
            (Some(e), _) => Some(e.as_str().into_owned()),
            (None, Some(st)) if st >= 400 => Some(st.to_string()),
            _ => None,
        };
        let status = match &error {
            Some(e) => {
                attributes.push(s("error.type", e.clone()));
                Status {
                    message: String::new(),
                    code: StatusCode::Error as i32,
                }
            }
            None => Status::default(),
        };
        Span {
            trace_id: r.ctx.trace_id.to_vec(),
            span_id: r.ctx.span_id.to_vec(),
            trace_state: String::new(),
            parent_span_id: r.ctx.parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: 0x101,
            name,
            kind: kind as i32,
            start_time_unix_nano: nanos(r.start),
            end_time_unix_nano: nanos(r.end),
            attributes,
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Some(status),
        }
    }

    fn request(&self, batch: &[SpanRecord]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: crate::metrics::SCOPE.to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        attributes: Vec::new(),
                        dropped_attributes_count: 0,
                    }),
                    spans: batch.iter().map(|r| self.span(r)).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}

//! W3C trace context for sampled requests: ids, the `traceparent` header, sampling, and the
//! span records that sampled requests leave for the span exporter and the exemplars.
//!
//! Flow: [`crate::engine::executor`] asks a [`Sampler`] once per request (or once per iteration with
//! `[tracing] per_iteration`); a sampled request gets fresh ids, a `traceparent` header
//! (`00-<32 hex trace id>-<16 hex span id>-01`, 55 bytes) spliced into its pre-rendered
//! HTTP/1.1 bytes ([`splice_header`]) or inserted into its HTTP/2 request, and, when it
//! finishes, a [`SpanRecord`] that `export` turns into an OTLP `http.client` span. Unsampled
//! requests do not reach this module at all: tracing off costs one branch per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::outcome::ErrorKind;

/// The header name, lower case as HTTP/2 wants it.
pub(crate) const TRACEPARENT: &str = "traceparent";
/// Length of a version-00 `traceparent` value.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// A 16-byte trace id (never all zeros).
pub(crate) type TraceId = [u8; 16];
/// An 8-byte span id (never all zeros).
pub(crate) type SpanId = [u8; 8];

/// Random ids from a per-VU generator seeded from the process' random state (so two runs, or
/// two VUs, never repeat each other's ids).
#[derive(Debug)]
pub(crate) struct IdGen(fastrand::Rng);

impl IdGen {
    /// A generator seeded from the thread's random state.
    pub(crate) fn new() -> IdGen {
        IdGen(fastrand::Rng::with_seed(fastrand::u64(..)))
    }

    /// A new trace id.
    pub(crate) fn trace_id(&mut self) -> TraceId {
        let mut id = (u128::from(self.0.u64(..)) << 64 | u128::from(self.0.u64(..))).to_be_bytes();
        // All zeros is invalid (W3C): one bit set makes it valid, at no measurable cost.
        id[15] |= 1;
        id
    }

    /// A new span id.
    pub(crate) fn span_id(&mut self) -> SpanId {
        let mut id = self.0.u64(..).to_be_bytes();
        id[7] |= 1;
        id
    }

    /// Whether to sample, given a threshold from [`Sampler`].
    fn below(&mut self, threshold: u64) -> bool {
        self.0.u64(..) < threshold
    }
}

/// The sampling decision: a ratio in (0, 1] as a threshold on a uniform u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sampler {
    /// Sample when a uniform u64 is below this (`None`: always).
    threshold: Option<u64>,
}

impl Sampler {
    /// A sampler for `ratio` (`None` for a ratio of 0 or less: tracing off).
    pub(crate) fn new(ratio: f64) -> Option<Sampler> {
        if ratio.is_nan() || ratio <= 0.0 {
            None
        } else if ratio >= 1.0 {
            Some(Sampler { threshold: None })
        } else {
            Some(Sampler {
                threshold: Some((ratio * u64::MAX as f64) as u64),
            })
        }
    }

    /// Whether this request (or iteration) is sampled.
    pub(crate) fn sample(&self, ids: &mut IdGen) -> bool {
        self.threshold.is_none_or(|t| ids.below(t))
    }
}

/// The trace context of one sampled request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpanContext {
    /// The trace.
    pub trace_id: TraceId,
    /// This request's (client) span: the `parent-id` the server sees.
    pub span_id: SpanId,
    /// The iteration's root span, in per-iteration mode.
    pub parent: Option<SpanId>,
}

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

/// Lower-case hex of an id (trace ids and span ids in labels and logs).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

impl SpanContext {
    /// The `traceparent` value: `00-<trace id>-<span id>-01` (sampled).
    pub(crate) fn traceparent(&self) -> [u8; TRACEPARENT_LEN] {
        let mut v = [b'-'; TRACEPARENT_LEN];
        v[0] = b'0';
        v[1] = b'0';
        hex_into(&mut v[3..35], &self.trace_id);
        hex_into(&mut v[36..52], &self.span_id);
        v[53] = b'0';
        v[54] = b'1';
        v
    }
}

/// Copies an HTTP/1.1 request (`wire`: head, blank line, body) into `out` with the header
/// `name: value` added as the last header line. Returns false (and leaves `out` empty) when
/// `wire` has no complete head.
pub(crate) fn splice_header(wire: &[u8], name: &str, value: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    // The first blank line ends the head (a header cannot contain one).
    let Some(end) = memchr::memmem::find(wire, b"\r\n\r\n") else {
        return false;
    };
    let head = end + 2;
    out.reserve(wire.len() + name.len() + value.len() + 4);
    out.extend_from_slice(&wire[..head]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&wire[head..]);
    true
}

/// What a finished sampled request leaves for the span exporter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SpanRecord {
    /// Ids.
    pub(crate) ctx: SpanContext,
    /// Request definition (global id); `None` for an iteration's root span.
    pub(crate) req: Option<usize>,
    /// Scenario index.
    pub(crate) scenario: usize,
    /// Wall-clock start.
    pub(crate) start: SystemTime,
    /// Wall-clock end.
    pub(crate) end: SystemTime,
    /// Response status.
    pub(crate) status: Option<u16>,
    /// Failure.
    pub(crate) error: Option<ErrorKind>,
    /// `url.full` (no credentials); empty for root spans and static URLs (the exporter fills
    /// those in from the plan).
    pub(crate) url: Option<String>,
}

/// Where workers leave the span records of sampled requests: a bounded channel to the span
/// exporter (a full channel drops the record and counts it, so a slow receiver never slows the
/// load).
#[derive(Clone, Debug)]
pub(crate) struct SpanSink {
    tx: tokio::sync::mpsc::Sender<SpanRecord>,
    dropped: Arc<AtomicU64>,
}

/// The exporter's end of a [`SpanSink`].
#[derive(Debug)]
pub(crate) struct SpanSource {
    /// The records.
    pub rx: tokio::sync::mpsc::Receiver<SpanRecord>,
    /// Records dropped because the channel was full.
    pub dropped: Arc<AtomicU64>,
}

impl SpanSink {
    /// A sink holding up to `capacity` records.
    pub(crate) fn channel(capacity: usize) -> (SpanSink, SpanSource) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        (
            SpanSink {
                tx,
                dropped: dropped.clone(),
            },
            SpanSource { rx, dropped },
        )
    }

    /// Hands a record to the exporter, or counts it as dropped.
    pub(crate) fn push(&self, r: SpanRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_w3c_version_00_sampled() {
        let c = SpanContext {
            trace_id: [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
            span_id: [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
            parent: None,
        };
        // The W3C specification's own example.
        assert_eq!(
            &c.traceparent()[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(hex(&c.span_id), "00f067aa0ba902b7");
    }

    #[test]
    fn ids_are_random_and_never_zero() {
        let mut g = IdGen::new();
        let a = g.trace_id();
        let b = g.trace_id();
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
        assert_ne!(g.span_id(), [0; 8]);
        let mut other = IdGen::new();
        assert_ne!(other.trace_id(), a, "another generator, other ids");
    }

    #[test]
    fn the_sampler_keeps_the_ratio() {
        assert_eq!(Sampler::new(0.0), None);
        assert_eq!(Sampler::new(-1.0), None);
        assert_eq!(Sampler::new(f64::NAN), None);
        let mut g = IdGen::new();
        let all = Sampler::new(1.0).expect("on");
        assert!((0..1000).all(|_| all.sample(&mut g)));
        let s = Sampler::new(0.1).expect("on");
        let n = (0..100_000).filter(|_| s.sample(&mut g)).count();
        // 10,000 expected, σ ≈ 95: six sigmas either side.
        assert!((9_430..=10_570).contains(&n), "{n}");
    }

    #[test]
    fn the_header_goes_at_the_end_of_the_head_and_the_body_stays() {
        let wire = b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 8\r\n\r\nab\r\n\r\ncd";
        let mut out = Vec::new();
        assert!(splice_header(wire, TRACEPARENT, b"00-1-2-01", &mut out));
        assert_eq!(
            out,
            b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 8\r\ntraceparent: 00-1-2-01\r\n\r\nab\r\n\r\ncd"
        );
        assert!(!splice_header(
            b"GET / HTTP/1.1\r\n",
            TRACEPARENT,
            b"v",
            &mut out
        ));
        assert!(out.is_empty());
    }
}

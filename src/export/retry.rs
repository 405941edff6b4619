//! The one retry policy of every exporter (remote-write and OTLP): what a failed attempt was
//! ([`Failure`]), whether it is worth another try ([`classify`]), and when
//! ([`RetryPolicy::after_failure`]: exponential backoff with full jitter, or the receiver's
//! `Retry-After`). Pure functions; the senders do the waiting.

use std::fmt;
use std::time::Duration;

/// Upper bound on a receiver-provided `Retry-After`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How much of a receiver's error body is kept (for logs and the summary).
pub const MAX_ERROR_BODY: usize = 512;

/// Why one delivery attempt failed. `Display` gives the whole cause, credentials excluded
/// (senders never put them into a `Failure`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The receiver answered with a non-2xx HTTP status.
    Status {
        /// The status code.
        code: u16,
        /// `Retry-After`, when given in seconds (capped at [`MAX_RETRY_AFTER`]).
        retry_after: Option<Duration>,
        /// The start of the response body (what the receiver says is wrong).
        body: String,
    },
    /// The receiver answered with a gRPC status other than OK.
    Grpc {
        /// The gRPC status code (0–16).
        code: i32,
        /// The status message.
        message: String,
    },
    /// TCP or TLS connect failed; the cause chain.
    Connect(String),
    /// No complete answer within the attempt's time.
    Timeout(Duration),
    /// The connection broke or the answer was not the expected protocol; the cause chain.
    Broken(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { code, body, .. } => {
                let reason = http::StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "HTTP {code} {reason}")?;
                let body = body.trim();
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Failure::Grpc { code, message } => {
                write!(f, "gRPC status {}", grpc_code_name(*code))?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Failure::Connect(cause) => write!(f, "cannot connect: {cause}"),
            Failure::Timeout(d) => write!(f, "no answer within {:.1}s", d.as_secs_f64()),
            Failure::Broken(cause) => write!(f, "connection failed: {cause}"),
        }
    }
}

/// A cause chain as one line: `outer: inner: innermost` (what `{:#}` prints for anyhow).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let s = cause.to_string();
        // Some errors repeat their source's text; print each part once.
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = cause.source();
    }
    out
}

/// Whether `cause` is new to `seen` (then it is remembered, up to a few): each new cause is
/// logged at warn once, repeats at debug.
pub fn first_time(seen: &mut Vec<String>, cause: &str) -> bool {
    if seen.iter().any(|c| c == cause) {
        return false;
    }
    if seen.len() >= 8 {
        seen.remove(0);
    }
    seen.push(cause.to_string());
    true
}

/// The start of a response body, as text, for messages.
pub fn body_excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_ERROR_BODY)];
    let text = String::from_utf8_lossy(cut);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > MAX_ERROR_BODY {
        s.push('…');
    }
    s.trim().to_string()
}

/// The name of a gRPC status code.
pub fn grpc_code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("(unknown code)")
}

/// Whether a failure is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try again: after the receiver's delay if it gave one, else after the backoff.
    Retry(Option<Duration>),
    /// Permanent: the receiver refused this data; sending it again would fail the same way.
    Reject,
}

/// Answers that say the request can never succeed, whatever their status (Prometheus answers
/// the first with HTTP 500), and what to change: (what the body says, the hint).
const PERMANENT: &[(&str, &str)] = &[
    (
        "native histograms are disabled",
        "the receiver does not take native histograms: start Prometheus with --enable-feature=native-histograms, or export explicit buckets (--histogram explicit)",
    ),
    (
        "remote write receiver needs to be enabled",
        "start Prometheus with --web.enable-remote-write-receiver",
    ),
    (
        "otlp write receiver needs to be enabled",
        "start Prometheus with --enable-feature=otlp-write-receiver (or use its remote-write URL)",
    ),
];

/// The hint for a failure whose answer says what is misconfigured, if it does.
pub fn hint(f: &Failure) -> Option<&'static str> {
    let said = match f {
        Failure::Status { body, .. } => body,
        Failure::Grpc { message, .. } => message,
        _ => return None,
    };
    let said = said.to_ascii_lowercase();
    PERMANENT
        .iter()
        .find(|(text, _)| said.contains(text))
        .map(|(_, hint)| *hint)
}

/// Classification: HTTP 429 and 5xx are retried (honouring `Retry-After`), other statuses are
/// permanent, and so is an answer whose body says the request can never succeed (see
/// [`hint`]: Prometheus' HTTP 500 "native histograms are disabled"); gRPC codes follow the
/// OTLP specification's retryable list; connect errors, timeouts and broken connections are
/// retried.
pub fn classify(f: &Failure) -> Verdict {
    if hint(f).is_some() {
        return Verdict::Reject;
    }
    match f {
        Failure::Status {
            code, retry_after, ..
        } if *code == 429 || (500..600).contains(code) => Verdict::Retry(*retry_after),
        Failure::Status { .. } => Verdict::Reject,
        // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
        // UNAVAILABLE, DATA_LOSS.
        Failure::Grpc {
            code: 1 | 4 | 8 | 10 | 11 | 14 | 15,
            ..
        } => Verdict::Retry(None),
        Failure::Grpc { .. } => Verdict::Reject,
        Failure::Connect(_) | Failure::Timeout(_) | Failure::Broken(_) => Verdict::Retry(None),
    }
}

/// Parses a `Retry-After` header given in delta-seconds (HTTP dates fall back to the backoff),
/// capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Retries and backoff of one exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt before the data is given up.
    pub max_retries: u32,
    /// Cap of the first backoff.
    pub min_backoff: Duration,
    /// Cap of every backoff.
    pub max_backoff: Duration,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// The receiver refused the data for good.
    Reject,
    /// The retries are used up.
    GiveUp,
    /// The next attempt could not start before the deadline.
    OutOfTime,
}

impl RetryPolicy {
    /// Exponential backoff with full jitter before retry number `retry` (1-based):
    /// `uniform(0, min(max_backoff, min_backoff·2^(retry-1)))`; `unit_random` is in `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit_random: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let cap = self
            .min_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        cap.mul_f64(unit_random.clamp(0.0, 1.0))
    }

    /// The decision after `failures` failed attempts (1 = the first), the last one `f`, with
    /// `time_left` until the deadline (`None`: no deadline).
    pub fn after_failure(
        &self,
        failures: u32,
        f: &Failure,
        unit_random: f64,
        time_left: Option<Duration>,
    ) -> Next {
        let after = match classify(f) {
            Verdict::Reject => return Next::Reject,
            Verdict::Retry(after) => after,
        };
        if failures > self.max_retries {
            return Next::GiveUp;
        }
        let delay = after.unwrap_or_else(|| self.backoff(failures, unit_random));
        match time_left {
            Some(left) if delay >= left => Next::OutOfTime,
            _ => Next::Retry(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::Status {
            code,
            retry_after: None,
            body: String::new(),
        }
    }

    #[test]
    fn classification_table() {
        use Verdict::*;
        for code in [500, 502, 503, 504, 429] {
            assert_eq!(classify(&status(code)), Retry(None), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 302, 100] {
            assert_eq!(classify(&status(code)), Reject, "{code}");
        }
        let throttled = Failure::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(3)),
            body: String::new(),
        };
        assert_eq!(classify(&throttled), Retry(Some(Duration::from_secs(3))));
        assert_eq!(classify(&Failure::Connect("refused".into())), Retry(None));
        assert_eq!(
            classify(&Failure::Timeout(Duration::from_secs(1))),
            Retry(None)
        );
        assert_eq!(classify(&Failure::Broken("reset".into())), Retry(None));
        // A 500 whose body says it can never succeed is permanent, with a hint; any other
        // 500 is retried.
        let disabled = Failure::Status {
            code: 500,
            retry_after: None,
            body: body_excerpt(b"Native histograms are disabled\n"),
        };
        assert_eq!(classify(&disabled), Reject);
        assert!(
            hint(&disabled).is_some_and(|h| h.contains("--enable-feature=native-histograms")),
            "{:?}",
            hint(&disabled)
        );
        let busy = Failure::Status {
            code: 500,
            retry_after: None,
            body: "too many requests in flight".into(),
        };
        assert_eq!((classify(&busy), hint(&busy)), (Retry(None), None));
        let no_receiver = Failure::Status {
            code: 404,
            retry_after: None,
            body:
                "remote write receiver needs to be enabled with --web.enable-remote-write-receiver"
                    .into(),
        };
        assert!(
            hint(&no_receiver).is_some_and(|h| h.contains("--web.enable-remote-write-receiver"))
        );
        assert_eq!(hint(&Failure::Connect("refused".into())), None);
        let grpc = |code| Failure::Grpc {
            code,
            message: String::new(),
        };
        for code in [1, 4, 8, 10, 11, 14, 15] {
            assert_eq!(
                classify(&grpc(code)),
                Retry(None),
                "{}",
                grpc_code_name(code)
            );
        }
        for code in [2, 3, 5, 6, 7, 9, 12, 13, 16] {
            assert_eq!(classify(&grpc(code)), Reject, "{}", grpc_code_name(code));
        }
    }

    #[test]
    fn retry_after_is_parsed_and_capped() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("100000"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy {
            max_retries: 10,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        };
        assert_eq!(
            p.backoff(1, 0.999_999),
            Duration::from_millis(100).mul_f64(0.999_999)
        );
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(200));
        assert_eq!(p.backoff(40, 1.0), p.max_backoff);
        assert_eq!(p.backoff(5, 0.0), Duration::ZERO);
        let mut rng = fastrand::Rng::with_seed(1);
        for retry in 1..50 {
            assert!(p.backoff(retry, rng.f64()) <= p.max_backoff);
        }
    }

    #[test]
    fn after_failure_decides_retry_reject_give_up_and_deadline() {
        let p = RetryPolicy {
            max_retries: 2,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let refused = Failure::Connect("connection refused".into());
        assert_eq!(
            p.after_failure(1, &refused, 0.5, None),
            Next::Retry(Duration::from_millis(50))
        );
        assert_eq!(
            p.after_failure(2, &refused, 0.5, None),
            Next::Retry(Duration::from_millis(100))
        );
        assert_eq!(p.after_failure(3, &refused, 0.5, None), Next::GiveUp);
        assert_eq!(p.after_failure(1, &status(400), 0.5, None), Next::Reject);
        let throttled = Failure::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(5)),
            body: String::new(),
        };
        assert_eq!(
            p.after_failure(1, &throttled, 0.5, None),
            Next::Retry(Duration::from_secs(5)),
            "Retry-After beats the backoff cap"
        );
        assert_eq!(
            p.after_failure(1, &throttled, 0.5, Some(Duration::from_secs(2))),
            Next::OutOfTime
        );
        assert_eq!(
            p.after_failure(1, &refused, 0.5, Some(Duration::from_secs(2))),
            Next::Retry(Duration::from_millis(50))
        );
    }

    #[test]
    fn failures_read_as_causes() {
        let f = Failure::Status {
            code: 500,
            retry_after: None,
            body: body_excerpt(b"native histograms are disabled\n"),
        };
        assert_eq!(
            f.to_string(),
            "HTTP 500 Internal Server Error: native histograms are disabled"
        );
        assert_eq!(
            Failure::Grpc {
                code: 12,
                message: "unknown service".into()
            }
            .to_string(),
            "gRPC status UNIMPLEMENTED: unknown service"
        );
        assert_eq!(
            Failure::Timeout(Duration::from_millis(9_990)).to_string(),
            "no answer within 10.0s"
        );
        let long = vec![b'x'; 2000];
        assert_eq!(body_excerpt(&long).chars().count(), MAX_ERROR_BODY + 1);
        let io = std::io::Error::other("inner cause");
        let outer = std::io::Error::other(Wrapped(io));
        assert_eq!(chain(&outer), "wrapped: inner cause");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}

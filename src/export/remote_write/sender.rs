//! The sender: one background task per target taking batches from the queue in order and
//! delivering each one with the shared retry policy over one kept-alive HTTP/1.1 (or HTTPS)
//! connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use super::queue::Batch;
use crate::export::retry::{self, Failure, Next, first_time};
use crate::export::transport::{Http1, after};

/// Attempts at a batch, during the final flush, before a receiver that has refused every
/// connection of the run is given up (instead of retrying until the flush deadline).
const UNREACHABLE_ATTEMPTS: u32 = 2;

/// Delivers queued batches until shutdown.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut http = Http1::new(inner.settings.peer.clone());
    loop {
        let next = inner.lock().queue.pop();
        let Some(batch) = next else {
            inner.progress.notify_waiters();
            if inner.shutdown.load(Ordering::Acquire) {
                return;
            }
            inner.work.notified().await;
            continue;
        };
        deliver(&inner, &mut http, &batch).await;
        inner.lock().queue.done();
        inner.progress.notify_waiters();
    }
}

/// Sends one batch until it is delivered, rejected or given up.
async fn deliver(inner: &Inner, http: &mut Http1, batch: &Batch) {
    let s = &inner.settings;
    let mut failures = 0u32;
    loop {
        let until = after(s.timeout);
        let failure = match http.send(s.request(batch.body.clone()), until).await {
            Ok(_) => {
                let mut st = inner.lock();
                st.queue.stats.batches_sent += 1;
                st.queue.stats.samples_sent += batch.samples;
                st.queue.stats.bytes_sent += batch.body.len() as u64;
                st.last_failed = false;
                st.reached = true;
                st.hint = None;
                return;
            }
            Err(f) => f,
        };
        failures += 1;
        let (next, hint) = decide(inner, failures, &failure);
        let cause = failure.to_string();
        let hint_text = hint
            .as_ref()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        let delay = {
            let mut st = inner.lock();
            st.queue.stats.attempts_failed += 1;
            st.last_error = Some(cause.clone());
            st.last_failed = true;
            if hint.is_some() {
                st.hint = hint;
            }
            match next {
                Next::Retry(delay) => {
                    st.queue.stats.retries += 1;
                    // Each new cause once at warn (a receiver's error body included), repeats
                    // at debug.
                    if first_time(&mut st.warned, &cause) {
                        tracing::warn!(
                            url = %s.redacted_url,
                            "remote_write: push failed, retrying (the same cause again is logged at debug): {cause}"
                        );
                    } else {
                        tracing::debug!(url = %s.redacted_url, failures, ?delay, "remote_write: push failed, retrying: {cause}");
                    }
                    delay
                }
                Next::Reject => {
                    st.queue.stats.batches_rejected += 1;
                    st.queue.stats.samples_rejected += batch.samples;
                    if !st.logged_reject {
                        st.logged_reject = true;
                        tracing::error!(
                            url = %s.redacted_url,
                            "remote_write: the receiver rejected {} samples (not retried; later rejections are logged at debug): {cause}{hint_text}",
                            batch.samples
                        );
                    } else {
                        tracing::debug!(url = %s.redacted_url, "remote_write: {} samples rejected: {cause}", batch.samples);
                    }
                    return;
                }
                Next::GiveUp | Next::OutOfTime => {
                    st.queue.stats.batches_failed += 1;
                    st.queue.stats.samples_failed += batch.samples;
                    tracing::warn!(
                        url = %s.redacted_url,
                        "remote_write: gave up on {} samples after {failures} attempts: {cause}{hint_text}",
                        batch.samples
                    );
                    return;
                }
            }
        };
        backoff(inner, delay).await;
    }
}

/// What to do after failed attempt number `failures`, and the hint the failure gives: the
/// shared policy, except that at shutdown the batch is given up, and so it is during the final
/// flush after [`UNREACHABLE_ATTEMPTS`] when nothing has accepted a connection all run (the
/// flush does not wait out its deadline for a receiver that is not there).
fn decide(inner: &Inner, failures: u32, failure: &Failure) -> (Next, Option<String>) {
    let s = &inner.settings;
    let unreachable = {
        let mut st = inner.lock();
        st.reached |= matches!(failure, Failure::Status { .. });
        !st.reached && matches!(failure, Failure::Connect(_))
    };
    let next = if inner.shutdown.load(Ordering::Acquire)
        || (unreachable
            && failures >= UNREACHABLE_ATTEMPTS
            && inner.flushing.load(Ordering::Acquire))
    {
        Next::GiveUp
    } else {
        s.retry
            .after_failure(failures, failure, fastrand::f64(), None)
    };
    let hint = retry::hint(failure).map(str::to_string).or_else(|| {
        unreachable.then(|| {
            format!(
                "nothing accepted a connection at {} all run: is the receiver running, and the URL right?",
                s.redacted_url
            )
        })
    });
    (next, hint)
}

/// Waits `delay` before the next attempt; the start of the final flush cuts the wait short (a
/// receiver unreachable all run is then given up at once rather than after the backoff).
async fn backoff(inner: &Inner, delay: std::time::Duration) {
    let flush = inner.flush_started.notified();
    tokio::pin!(flush);
    flush.as_mut().enable();
    if inner.flushing.load(Ordering::Acquire) {
        tokio::time::sleep(delay).await;
        return;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = flush => {}
    }
}

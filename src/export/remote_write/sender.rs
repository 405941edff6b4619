//! The sender: one background task per target taking batches from the queue in order and
//! delivering each one with the shared retry policy over one kept-alive HTTP/1.1 (or HTTPS)
//! connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use super::queue::Batch;
use crate::export::retry::{Next, first_time};
use crate::export::transport::{Http1, after};

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
                return;
            }
            Err(f) => f,
        };
        failures += 1;
        let next = if inner.shutdown.load(Ordering::Acquire) {
            Next::GiveUp
        } else {
            s.retry
                .after_failure(failures, &failure, fastrand::f64(), None)
        };
        let cause = failure.to_string();
        let delay = {
            let mut st = inner.lock();
            st.queue.stats.attempts_failed += 1;
            st.last_error = Some(cause.clone());
            st.last_failed = true;
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
                            "remote_write: the receiver rejected {} samples (not retried; later rejections are logged at debug): {cause}",
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
                        "remote_write: gave up on {} samples after {failures} attempts: {cause}",
                        batch.samples
                    );
                    return;
                }
            }
        };
        tokio::time::sleep(delay).await;
    }
}

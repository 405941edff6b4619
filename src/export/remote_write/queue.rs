//! The queue between collection and the sender: encoded batches in order, bounded,
//! dropping the oldest when full, with the delivery counters.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::Serialize;

/// One encoded remote-write request.
#[derive(Debug)]
pub(super) struct Batch {
    /// Snappy-compressed protobuf `WriteRequest`.
    pub(super) body: Bytes,
    /// Samples (float samples and histograms) in it.
    pub(super) samples: u64,
}

/// Delivery counters.
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
    /// Failed attempts (retried or not).
    pub attempts_failed: u64,
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

/// Batches waiting for the sender, and the one it is sending.
#[derive(Debug)]
pub(super) struct Queue {
    batches: VecDeque<Batch>,
    capacity: usize,
    in_flight: Option<u64>,
    /// The counters.
    pub(super) stats: DeliveryStats,
}

impl Queue {
    /// An empty queue of at most `capacity` batches.
    pub(super) fn new(capacity: usize) -> Self {
        Queue {
            batches: VecDeque::new(),
            capacity: capacity.max(1),
            in_flight: None,
            stats: DeliveryStats::default(),
        }
    }

    /// Appends a batch; when full, drops the oldest first. Returns the samples dropped.
    pub(super) fn push(&mut self, batch: Batch) -> u64 {
        self.stats.batches_enqueued += 1;
        self.stats.samples_enqueued += batch.samples;
        self.stats.last_batch_bytes = batch.body.len() as u64;
        let mut dropped = 0;
        while self.batches.len() >= self.capacity {
            let Some(old) = self.batches.pop_front() else {
                break;
            };
            self.stats.batches_dropped += 1;
            self.stats.samples_dropped += old.samples;
            dropped += old.samples;
        }
        self.batches.push_back(batch);
        dropped
    }

    /// Takes the oldest batch for sending (it counts as in flight until [`Queue::done`]).
    pub(super) fn pop(&mut self) -> Option<Batch> {
        let b = self.batches.pop_front();
        self.in_flight = b.as_ref().map(|b| b.samples);
        b
    }

    /// The batch in flight is settled (delivered, rejected or given up).
    pub(super) fn done(&mut self) {
        self.in_flight = None;
    }

    /// Nothing queued, nothing in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.batches.is_empty() && self.in_flight.is_none()
    }

    /// The counters with the pending ones filled in.
    pub(super) fn snapshot(&self) -> DeliveryStats {
        let mut s = self.stats.clone();
        s.batches_pending = self.batches.len() as u64 + u64::from(self.in_flight.is_some());
        s.samples_pending =
            self.batches.iter().map(|b| b.samples).sum::<u64>() + self.in_flight.unwrap_or(0);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(samples: u64) -> Batch {
        Batch {
            body: Bytes::from_static(b"x"),
            samples,
        }
    }

    #[test]
    fn drops_oldest_when_full_and_counts_everything() {
        let mut q = Queue::new(2);
        assert_eq!(q.push(batch(1)), 0);
        assert_eq!(q.push(batch(2)), 0);
        assert_eq!(q.push(batch(3)), 1, "the oldest goes");
        let s = q.snapshot();
        assert_eq!((s.batches_dropped, s.samples_dropped), (1, 1));
        assert_eq!((s.batches_pending, s.samples_pending), (2, 5));
        let b = q.pop().expect("a batch");
        assert_eq!(b.samples, 2);
        assert_eq!(
            q.snapshot().samples_pending,
            5,
            "in flight is still pending"
        );
        q.done();
        assert_eq!(q.snapshot().samples_pending, 3);
        assert!(!q.is_idle());
        q.pop();
        q.done();
        assert!(q.is_idle());
        assert_eq!(q.snapshot().samples_not_delivered(), 1);
    }
}

//! Latency histograms in a form that travels and merges exactly: HdrHistogram's V2 compressed
//! encoding (the format every HdrHistogram implementation reads: Java, Go, C, Python, Rust),
//! wrapped in standard base64. The summary JSON carries histograms this way so that `stampede
//! merge`, the distributed coordinator, `stampede report` and `stampede compare` compute exact
//! percentiles of a union of runs, never averages of percentiles.
//!
//! Decoding brings back the exact counts of every bucket (3 significant digits, µs); adding two
//! decoded histograms equals the histogram the two runs would have recorded together.

#![allow(dead_code)] // Used by the summary JSON (merge, timeline) as those land.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use super::new_hist;

/// A histogram that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HdrError {
    /// Not base64.
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not an HdrHistogram V2 encoding.
    #[error("histogram is not an HdrHistogram V2 encoding: {0}")]
    Decode(String),
    /// Its bounds do not fit stampede's (1 µs … 1 h).
    #[error("histogram bounds do not fit stampede's (1 µs to 1 h, 3 significant digits)")]
    Bounds,
}

/// Encodes a histogram: base64 of the V2 deflate encoding.
pub(crate) fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::with_capacity(64);
    // Writing into a Vec cannot fail, and a stampede histogram's counts fit the encoding.
    match V2DeflateSerializer::new().serialize(h, &mut buf) {
        Ok(_) => STANDARD.encode(&buf),
        Err(_) => String::new(),
    }
}

/// Decodes [`encode`]'s output into a histogram with stampede's bounds (so that it adds to any
/// other stampede histogram). An empty string is an empty histogram.
pub(crate) fn decode(s: &str) -> Result<Histogram<u64>, HdrError> {
    let mut out = new_hist();
    if s.is_empty() {
        return Ok(out);
    }
    let bytes = STANDARD.decode(s.trim())?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HdrError::Decode(format!("{e:?}")))?;
    out.add(&h).map_err(|_| HdrError::Bounds)?;
    Ok(out)
}

/// `#[serde(with = "crate::stats::hdr::base64_serde")]` for a `Histogram<u64>` field.
pub(crate) mod base64_serde {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as [`super::encode`].
    pub(crate) fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(h))
    }

    /// Deserializes with [`super::decode`].
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let s = String::deserialize(d)?;
        super::decode(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_and_merges_exactly() {
        let mut a = new_hist();
        let mut b = new_hist();
        let mut both = new_hist();
        let mut x: u64 = 12345;
        for i in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 1 + (x >> 33) % 5_000_000;
            if i % 3 == 0 { &mut a } else { &mut b }.record(v).unwrap();
            both.record(v).unwrap();
        }
        let mut merged = decode(&encode(&a)).unwrap();
        merged.add(decode(&encode(&b)).unwrap()).unwrap();
        assert_eq!(merged.len(), both.len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                both.value_at_quantile(q),
                "q={q}"
            );
        }
        assert_eq!(merged.max(), both.max());
        assert_eq!(merged.min(), both.min());
        assert_eq!(merged, both);
    }

    #[test]
    fn empty_and_bad_input() {
        assert_eq!(decode("").unwrap().len(), 0);
        assert_eq!(decode(&encode(&new_hist())).unwrap().len(), 0);
        assert!(matches!(decode("!!"), Err(HdrError::Base64(_))));
        assert!(matches!(decode("AAAA"), Err(HdrError::Decode(_))));
    }

    #[test]
    fn compact_for_a_typical_latency_distribution() {
        let mut h = new_hist();
        for i in 0..100_000u64 {
            h.record(800 + (i * 7919) % 40_000).unwrap();
        }
        let s = encode(&h);
        assert!(s.len() < 20_000, "{} bytes", s.len());
    }
}

//! Latency histograms in a form that travels and merges exactly: HdrHistogram's V2 compressed
//! encoding (the format every HdrHistogram implementation reads: Java, Go, C, Python, Rust),
//! wrapped in standard base64. The summary JSON carries histograms this way so that `stampede
//! merge`, the distributed coordinator, `stampede report` and `stampede compare` compute exact
//! percentiles of a union of runs, never averages of percentiles.
//!
//! Decoding brings back the exact counts of every bucket (3 significant digits, µs); adding two
//! decoded histograms equals the histogram the two runs would have recorded together.

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
    /// A length in the encoding claims more bytes than the input holds (or than any histogram
    /// with stampede's bounds can need): refused before anything of that size is allocated.
    #[error("histogram {what} claims {claimed} bytes, {holds}")]
    Length {
        /// Which length.
        what: &'static str,
        /// What it claims.
        claimed: u64,
        /// What there is.
        holds: String,
    },
    /// Its bucket counts do not add up to its total (or overflow a 64-bit count).
    #[error("histogram counts {0}")]
    Counts(String),
}

/// HdrHistogram's V2 cookies (uncompressed, deflate), word size 8 in the low bits.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// The V2 header: cookie, payload length, normalizing offset, significant digits (4 bytes
/// each), lowest and highest trackable value and the integer-to-double ratio (8 bytes each).
const V2_HEADER: usize = 40;
/// The most significant digits accepted (stampede records 3; more would only cost memory).
const MAX_DIGITS: u32 = 3;

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|x| <[u8; 4]>::try_from(x).ok())
        .map_or(0, u32::from_be_bytes)
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|x| <[u8; 8]>::try_from(x).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Counts in a histogram of stampede's bounds (1 µs … 1 h, 3 digits: 2,048 sub-buckets, 22
/// buckets; 23 × 1,024 counts), the most any accepted histogram has.
const MAX_COUNTS: usize = 23 * 1024;
/// The largest payload an accepted histogram can have: at most 9 bytes (one varint of a
/// zig-zag u64) per count.
const MAX_PAYLOAD: usize = 9 * MAX_COUNTS;

/// Checks an uncompressed V2 encoding's header against `bytes` (its claimed payload fits in
/// what follows; bounds within stampede's), so that decoding allocates nothing beyond the
/// input's size and one histogram of stampede's bounds.
fn check_header(bytes: &[u8]) -> Result<(), HdrError> {
    if bytes.len() < V2_HEADER || be32(bytes, 0) != V2_COOKIE {
        return Err(HdrError::Decode("no V2 header".into()));
    }
    let payload = u64::from(be32(bytes, 4));
    let rest = (bytes.len() - V2_HEADER) as u64;
    if payload > rest {
        return Err(HdrError::Length {
            what: "payload",
            claimed: payload,
            holds: format!("the encoding holds {rest}"),
        });
    }
    let (digits, low, high) = (be32(bytes, 12), be64(bytes, 16), be64(bytes, 24));
    if digits > MAX_DIGITS || low < 1 || high > super::HIST_MAX_US || high < 2 * low {
        return Err(HdrError::Bounds);
    }
    Ok(())
}

/// The uncompressed V2 encoding in `bytes` (inflated when it is the deflate form), checked
/// with [`check_header`].
fn checked_v2(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, HdrError> {
    use std::io::Read as _;
    match be32(bytes, 0) {
        V2_COOKIE => check_header(bytes).map(|()| bytes.into()),
        V2_DEFLATE_COOKIE => {
            let claimed = u64::from(be32(bytes, 4));
            let rest = bytes.len().saturating_sub(8) as u64;
            if claimed > rest {
                return Err(HdrError::Length {
                    what: "compressed length",
                    claimed,
                    holds: format!("the encoding holds {rest}"),
                });
            }
            let limit = (V2_HEADER + MAX_PAYLOAD) as u64;
            let compressed = &bytes[8..8 + claimed as usize];
            let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(1 << 16));
            flate2::read::ZlibDecoder::new(compressed)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| HdrError::Decode(format!("deflate: {e}")))?;
            if out.len() as u64 > limit {
                return Err(HdrError::Length {
                    what: "inflated payload",
                    claimed: out.len() as u64,
                    holds: format!("at most {limit} fit stampede's bounds"),
                });
            }
            check_header(&out)?;
            Ok(out.into())
        }
        _ => Err(HdrError::Decode("unknown cookie".into())),
    }
}

/// Decodes base64 V2 into a histogram of its own bounds, refusing lengths beyond the input
/// and counts that do not add up to the total.
fn decode_raw(s: &str) -> Result<Histogram<u64>, HdrError> {
    let bytes = STANDARD.decode(s.trim())?;
    let v2 = checked_v2(&bytes)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &v2[..])
        .map_err(|e| HdrError::Decode(format!("{e:?}")))?;
    // The decoder saturates its total: a sum that overflows or differs is refused.
    let sum = h
        .iter_recorded()
        .try_fold(0u64, |a, v| a.checked_add(v.count_at_value()));
    match sum {
        None => Err(HdrError::Counts("overflow a 64-bit total".into())),
        Some(n) if n != h.len() => Err(HdrError::Counts(format!(
            "add up to {n}, the total says {}",
            h.len()
        ))),
        Some(_) => Ok(h),
    }
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
/// other stampede histogram). An empty string is an empty histogram. Hostile input is refused
/// without large allocations: see [`decode_raw`].
pub(crate) fn decode(s: &str) -> Result<Histogram<u64>, HdrError> {
    let mut out = new_hist();
    decode_into(s, &mut out)?;
    Ok(out)
}

/// Decodes [`encode`]'s output and adds it to `into` (one histogram less to allocate and add
/// than [`decode`] when summing many). A sum beyond a 64-bit count is refused.
pub(crate) fn decode_into(s: &str, into: &mut Histogram<u64>) -> Result<(), HdrError> {
    if s.is_empty() {
        return Ok(());
    }
    let h = decode_raw(s)?;
    if into.len().checked_add(h.len()).is_none() {
        return Err(HdrError::Counts(
            "overflow a 64-bit total when added".into(),
        ));
    }
    into.add(&h).map_err(|_| HdrError::Bounds)
}

/// `#[serde(with = "crate::stats::hdr::base64_serde")]` for a `Histogram<u64>` field.
#[allow(dead_code)] // For typed histogram fields (the timeline's).
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

    /// A V2 header (uncompressed) claiming `payload` bytes, with the given bounds.
    fn header(payload: u32, digits: u32, low: u64, high: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&V2_COOKIE.to_be_bytes());
        b.extend_from_slice(&payload.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&digits.to_be_bytes());
        b.extend_from_slice(&low.to_be_bytes());
        b.extend_from_slice(&high.to_be_bytes());
        b.extend_from_slice(&1.0f64.to_be_bytes());
        b
    }

    /// The deflate form of an uncompressed V2 encoding.
    fn deflated(v2: &[u8]) -> String {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(v2).unwrap();
        let body = z.finish().unwrap();
        let mut b = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        b.extend_from_slice(&(body.len() as u32).to_be_bytes());
        b.extend_from_slice(&body);
        STANDARD.encode(b)
    }

    #[test]
    fn claimed_lengths_beyond_the_input_are_refused_before_allocating() {
        // The inner header claims 2^31 payload bytes; none follow.
        let e = decode(&deflated(&header(1 << 31, 3, 1, HIST_MAX)))
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(e, HdrError::Length { claimed, .. } if claimed == 1 << 31),
            "{e}"
        );
        assert!(
            e.to_string().contains("payload claims 2147483648 bytes"),
            "{e}"
        );
        // Uncompressed, likewise.
        let e = decode(&STANDARD.encode(header(u32::MAX, 3, 1, HIST_MAX)))
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(e, HdrError::Length { .. }), "{e}");
        // The outer length beyond the bytes there are.
        let mut b = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        b.extend_from_slice(&[0; 16]);
        let e = decode(&STANDARD.encode(b)).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("compressed length claims"), "{e}");
        // A deflate bomb: 4 MB of zeros inflates no further than the largest payload.
        let mut bomb = header(4 << 20, 3, 1, HIST_MAX);
        bomb.resize(bomb.len() + (4 << 20), 0);
        let e = decode(&deflated(&bomb)).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("inflated payload"), "{e}");
        // Bounds that would allocate a large counts array.
        for (digits, low, high) in [(5, 1, HIST_MAX), (3, 1, u64::MAX / 2), (3, 0, HIST_MAX)] {
            let e = decode(&deflated(&header(0, digits, low, high)))
                .map(|_| ())
                .unwrap_err();
            assert!(matches!(e, HdrError::Bounds), "{digits} {low} {high}: {e}");
        }
    }

    const HIST_MAX: u64 = super::super::HIST_MAX_US;

    #[test]
    fn the_largest_payload_is_that_of_stampedes_bounds() {
        assert_eq!(new_hist().distinct_values(), MAX_COUNTS);
    }

    #[test]
    fn counts_that_overflow_their_total_are_refused() {
        // Five buckets of 2^62: the decoder's total saturates at u64::MAX, the counts add to
        // more (a count goes as a signed varint: 2^63 is not encodable).
        let mut h = new_hist();
        for v in [100, 200, 300, 400, 500] {
            h.record_n(v, 1 << 62).unwrap();
        }
        let text = encode(&h);
        assert!(!text.is_empty());
        match decode(&text) {
            Err(HdrError::Counts(m)) => assert!(m.contains("overflow"), "{m}"),
            other => panic!("{:?}", other.map(|h| h.len())),
        }
        // One of 2^62 decodes; added to three more it is refused.
        let mut one = new_hist();
        one.record_n(100, 1 << 62).unwrap();
        let text = encode(&one);
        let mut sum = decode(&text).unwrap();
        assert_eq!(sum.len(), 1 << 62);
        decode_into(&text, &mut sum).unwrap();
        decode_into(&text, &mut sum).unwrap();
        assert!(matches!(
            decode_into(&text, &mut sum),
            Err(HdrError::Counts(_))
        ));
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

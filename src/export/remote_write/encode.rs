//! `WriteRequest` → protobuf bytes → snappy **block** (not the framing format).
//!
//! Flow: collection → translate → **encode** → queue → send.
//!
//! Remote-write 1.0 mandates the snappy block format (`snap::raw`), which is what
//! Prometheus' `snappy.Decode` expects; the streaming/frame format (`snap::read`/
//! `snap::write`, starting with `0xff 0x06 0x00 0x00 sNaPpY`) would be rejected.

use prost::Message;

use super::proto::WriteRequest;

/// Errors from encoding/decoding a remote-write body.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Snappy compression/decompression failed.
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// Protobuf decoding failed (decoding is only used by tests and receivers).
    #[error("protobuf decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Serialises `req` with prost and compresses it as one snappy block.
pub fn encode_write_request(req: &WriteRequest) -> Result<Vec<u8>, EncodeError> {
    let raw = req.encode_to_vec();
    Ok(snap::raw::Encoder::new().compress_vec(&raw)?)
}

/// Inverse of [`encode_write_request`]: snappy-block-decompresses and decodes.
pub fn decode_write_request(body: &[u8]) -> Result<WriteRequest, EncodeError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Label, Sample, TimeSeries};
    use super::*;

    fn small() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1000,
                }],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![],
        }
    }

    /// Hand-derived protobuf encoding of [`small`].
    #[rustfmt::skip]
    const SMALL_PB: [u8; 32] = [
        0x0a, 0x1e,                   // WriteRequest.timeseries (1, LEN) 30 bytes
          0x0a, 0x0e,                 // TimeSeries.labels (1, LEN) 14 bytes
            0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', // Label.name (1) "__name__"
            0x12, 0x02, b'u', b'p',   // Label.value (2) "up"
          0x12, 0x0c,                 // TimeSeries.samples (2, LEN) 12 bytes
            0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // Sample.value (1, I64) 1.0 little-endian
            0x10, 0xe8, 0x07,         // Sample.timestamp (2, VARINT) 1000
    ];

    #[test]
    fn golden_protobuf_bytes() {
        assert_eq!(small().encode_to_vec(), SMALL_PB.to_vec());
    }

    #[test]
    fn golden_exemplar_bytes() {
        use super::super::proto::Exemplar;
        let ts = TimeSeries {
            labels: vec![],
            samples: vec![],
            exemplars: vec![Exemplar {
                labels: vec![Label {
                    name: "trace_id".into(),
                    value: "ab".into(),
                }],
                value: 0.5,
                timestamp: 1000,
            }],
            histograms: vec![],
        };
        #[rustfmt::skip]
        let want = [
            0x1a, 0x1c,                     // TimeSeries.exemplars (3, LEN) 28 bytes
              0x0a, 0x0e,                   // Exemplar.labels (1, LEN) 14 bytes
                0x0a, 0x08, b't', b'r', b'a', b'c', b'e', b'_', b'i', b'd', // Label.name
                0x12, 0x02, b'a', b'b',     // Label.value "ab"
              0x11, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, // Exemplar.value (2, I64) 0.5
              0x18, 0xe8, 0x07,             // Exemplar.timestamp (3, VARINT) 1000
        ];
        assert_eq!(ts.encode_to_vec(), want.to_vec());
    }

    #[test]
    fn golden_snappy_block_for_literal_input() {
        // Inputs shorter than 17 bytes are emitted as one literal by snappy:
        // varint(len) then tag ((len-1) << 2 | 0b00) then the bytes.
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "a".into(),
                    value: "b".into(),
                }],
                samples: vec![],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![],
        };
        // pb: 0a 08 | 0a 06 | 0a 01 'a' 12 01 'b'  = 10 bytes
        let pb = [0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        let mut want = vec![10u8, (10 - 1) << 2];
        want.extend_from_slice(&pb);
        assert_eq!(encode_write_request(&req).ok(), Some(want));
    }

    #[test]
    fn round_trip_and_block_format() {
        let body = encode_write_request(&small()).unwrap_or_default();
        // block format starts with the uncompressed length varint, never the frame magic
        assert_eq!(body[0], 32);
        assert_ne!(body[0], 0xff);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .unwrap_or_default();
        assert_eq!(raw, SMALL_PB.to_vec());
        assert_eq!(decode_write_request(&body).ok(), Some(small()));
    }
}

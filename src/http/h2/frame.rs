//! HTTP/2 frames (RFC 9113 §4 and §6) as the client writes and reads them: the 9-octet frame
//! header, the frames a client sends (HEADERS split into CONTINUATION at the peer's maximum
//! frame size, DATA, SETTINGS, WINDOW_UPDATE, PING, RST_STREAM, GOAWAY), padding removal, and
//! the error codes. Pure functions over byte buffers; the connection lives in [`super`].

use crate::outcome::ErrorKind;

/// The connection preface a client sends first (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Octets in a frame header.
pub(crate) const HEAD_LEN: usize = 9;
/// The largest frame payload either side may send before SETTINGS_MAX_FRAME_SIZE says more
/// (we never say more, so this is also the largest we accept).
pub(crate) const DEFAULT_MAX_FRAME: usize = 16_384;
/// Largest flow-control window (2^31 − 1).
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;
/// A window's size before SETTINGS_INITIAL_WINDOW_SIZE or WINDOW_UPDATE changes it.
pub(crate) const DEFAULT_WINDOW: i64 = 65_535;

/// Frame types.
pub(crate) mod kind {
    pub(crate) const DATA: u8 = 0;
    pub(crate) const HEADERS: u8 = 1;
    pub(crate) const PRIORITY: u8 = 2;
    pub(crate) const RST_STREAM: u8 = 3;
    pub(crate) const SETTINGS: u8 = 4;
    pub(crate) const PUSH_PROMISE: u8 = 5;
    pub(crate) const PING: u8 = 6;
    pub(crate) const GOAWAY: u8 = 7;
    pub(crate) const WINDOW_UPDATE: u8 = 8;
    pub(crate) const CONTINUATION: u8 = 9;
}

/// Frame flags.
pub(crate) mod flag {
    pub(crate) const END_STREAM: u8 = 0x1;
    pub(crate) const ACK: u8 = 0x1;
    pub(crate) const END_HEADERS: u8 = 0x4;
    pub(crate) const PADDED: u8 = 0x8;
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters.
pub(crate) mod setting {
    pub(crate) const HEADER_TABLE_SIZE: u16 = 1;
    pub(crate) const ENABLE_PUSH: u16 = 2;
    pub(crate) const MAX_CONCURRENT_STREAMS: u16 = 3;
    pub(crate) const INITIAL_WINDOW_SIZE: u16 = 4;
    pub(crate) const MAX_FRAME_SIZE: u16 = 5;
    pub(crate) const MAX_HEADER_LIST_SIZE: u16 = 6;
}

/// Error codes (RFC 9113 §7).
pub(crate) mod code {
    pub(crate) const NO_ERROR: u32 = 0;
    pub(crate) const PROTOCOL_ERROR: u32 = 1;
    pub(crate) const FLOW_CONTROL_ERROR: u32 = 3;
    pub(crate) const SETTINGS_TIMEOUT: u32 = 4;
    pub(crate) const STREAM_CLOSED: u32 = 5;
    pub(crate) const FRAME_SIZE_ERROR: u32 = 6;
    pub(crate) const REFUSED_STREAM: u32 = 7;
    pub(crate) const CANCEL: u32 = 8;
    pub(crate) const COMPRESSION_ERROR: u32 = 9;
    pub(crate) const ENHANCE_YOUR_CALM: u32 = 0xb;
    pub(crate) const HTTP_1_1_REQUIRED: u32 = 0xd;
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) len: usize,
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
}

impl Head {
    /// Parses the first [`HEAD_LEN`] octets of `b` (None if shorter).
    pub(crate) fn parse(b: &[u8]) -> Option<Head> {
        let h: &[u8; HEAD_LEN] = b.get(..HEAD_LEN)?.try_into().ok()?;
        Some(Head {
            len: (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }
}

/// Appends a frame header.
pub(crate) fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a SETTINGS frame with `params`.
pub(crate) fn put_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    put_head(out, params.len() * 6, kind::SETTINGS, 0, 0);
    for (id, v) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends the acknowledgement of the peer's SETTINGS.
pub(crate) fn put_settings_ack(out: &mut Vec<u8>) {
    put_head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Appends a WINDOW_UPDATE (`stream` 0: the connection's window).
pub(crate) fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
}

/// Appends a PING (or its acknowledgement).
pub(crate) fn put_ping(out: &mut Vec<u8>, ack: bool, data: [u8; 8]) {
    put_head(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&data);
}

/// Appends an RST_STREAM.
pub(crate) fn put_rst(out: &mut Vec<u8>, stream: u32, code: u32) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a GOAWAY.
pub(crate) fn put_goaway(out: &mut Vec<u8>, last_stream: u32, code: u32) {
    put_head(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a header block (the concatenation of `parts`) as HEADERS then as many CONTINUATION
/// frames as `max_frame` requires.
pub(crate) fn put_headers(
    out: &mut Vec<u8>,
    stream: u32,
    parts: [&[u8]; 2],
    end_stream: bool,
    max_frame: usize,
) {
    let total = parts[0].len() + parts[1].len();
    let max_frame = max_frame.max(1);
    let mut left = total;
    let mut first = true;
    let (mut part, mut at) = (0, 0);
    loop {
        let n = left.min(max_frame);
        left -= n;
        let mut flags = if left == 0 { flag::END_HEADERS } else { 0 };
        let k = if first {
            if end_stream {
                flags |= flag::END_STREAM;
            }
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        put_head(out, n, k, flags, stream);
        let mut need = n;
        while need > 0 && part < 2 {
            let src = &parts[part][at..];
            let take = src.len().min(need);
            out.extend_from_slice(&src[..take]);
            need -= take;
            at += take;
            if at == parts[part].len() {
                part += 1;
                at = 0;
            }
        }
        first = false;
        if left == 0 {
            break;
        }
    }
}

/// Appends one DATA frame.
pub(crate) fn put_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    put_head(out, data.len(), kind::DATA, flags, stream);
    out.extend_from_slice(data);
}

/// The payload of a DATA or HEADERS frame without its padding (and, for HEADERS with the
/// PRIORITY flag, without the priority fields). None: the padding is longer than the frame
/// (a `PROTOCOL_ERROR`).
pub(crate) fn unpad<'p>(h: &Head, payload: &'p [u8]) -> Option<&'p [u8]> {
    let mut p = payload;
    let mut pad = 0;
    if h.flags & flag::PADDED != 0 {
        pad = usize::from(*p.first()?);
        p = &p[1..];
    }
    if h.kind == kind::HEADERS && h.flags & flag::PRIORITY != 0 {
        p = p.get(5..)?;
    }
    p.get(..p.len().checked_sub(pad)?)
}

/// The `error.type` of a stream the server reset (`reset`) or of a connection it closed with
/// GOAWAY, by error code.
pub(crate) fn classify(code: u32, reset: bool) -> ErrorKind {
    match code {
        code::PROTOCOL_ERROR
        | code::COMPRESSION_ERROR
        | code::FRAME_SIZE_ERROR
        | code::FLOW_CONTROL_ERROR
        | code::SETTINGS_TIMEOUT
        | code::STREAM_CLOSED
        | code::HTTP_1_1_REQUIRED => ErrorKind::Protocol,
        // RST_STREAM: the stream (HTTP/2's unit of a connection) was reset.
        _ if reset => ErrorKind::ConnectionReset,
        // The server closed the connection (GOAWAY) before answering.
        _ => ErrorKind::ConnectionClosed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_into_continuation_at_the_max_frame_size() {
        let mut out = Vec::new();
        put_headers(&mut out, 3, [b"abcdefg", b"hij"], true, 4);
        let mut at = 0;
        let mut got = Vec::new();
        let mut frames = Vec::new();
        while at < out.len() {
            let h = Head::parse(&out[at..]).expect("head");
            got.extend_from_slice(&out[at + HEAD_LEN..at + HEAD_LEN + h.len]);
            frames.push((h.kind, h.flags, h.len, h.stream));
            at += HEAD_LEN + h.len;
        }
        assert_eq!(got, b"abcdefghij");
        assert_eq!(
            frames,
            [
                (kind::HEADERS, flag::END_STREAM, 4, 3),
                (kind::CONTINUATION, 0, 4, 3),
                (kind::CONTINUATION, flag::END_HEADERS, 2, 3),
            ]
        );
        // One frame when it fits; an empty block is still one HEADERS frame.
        let mut out = Vec::new();
        put_headers(&mut out, 1, [b"ab", b""], false, 16_384);
        assert_eq!(out, [0, 0, 2, 1, 4, 0, 0, 0, 1, b'a', b'b']);
        let mut out = Vec::new();
        put_headers(&mut out, 1, [b"", b""], true, 16_384);
        assert_eq!(out, [0, 0, 0, 1, 5, 0, 0, 0, 1]);
    }

    #[test]
    fn control_frames_have_their_fixed_layout() {
        let mut out = Vec::new();
        put_settings(&mut out, &[(setting::ENABLE_PUSH, 0)]);
        assert_eq!(out, [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
        out.clear();
        put_window_update(&mut out, 5, 0x8000_0001);
        assert_eq!(out, [0, 0, 4, 8, 0, 0, 0, 0, 5, 0, 0, 0, 1]);
        out.clear();
        put_rst(&mut out, 7, code::CANCEL);
        assert_eq!(out, [0, 0, 4, 3, 0, 0, 0, 0, 7, 0, 0, 0, 8]);
        out.clear();
        put_goaway(&mut out, 9, code::NO_ERROR);
        assert_eq!(out, [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0]);
        out.clear();
        put_ping(&mut out, true, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(out[..9], [0, 0, 8, 6, 1, 0, 0, 0, 0]);
        let h = Head::parse(&[0xff, 0xff, 0xff, 0, 0, 0x80, 0, 0, 1]).expect("head");
        assert_eq!(
            (h.len, h.stream),
            (0xff_ffff, 1),
            "the reserved bit is ignored"
        );
        assert_eq!(Head::parse(&[0; 8]), None);
    }

    #[test]
    fn padding_and_priority_are_removed_and_bad_padding_refused() {
        let h = |kind, flags| Head {
            len: 0,
            kind,
            flags,
            stream: 1,
        };
        assert_eq!(
            unpad(&h(kind::DATA, flag::PADDED), &[2, b'o', b'k', 0, 0]),
            Some(&b"ok"[..])
        );
        assert_eq!(unpad(&h(kind::DATA, flag::PADDED), &[3, b'o', 0]), None);
        assert_eq!(
            unpad(
                &h(kind::HEADERS, flag::PADDED | flag::PRIORITY),
                &[1, 0, 0, 0, 3, 16, 0x88, 0]
            ),
            Some(&[0x88][..])
        );
        assert_eq!(unpad(&h(kind::DATA, 0), b"x"), Some(&b"x"[..]));
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(
            classify(code::REFUSED_STREAM, true),
            ErrorKind::ConnectionReset
        );
        assert_eq!(classify(code::CANCEL, true), ErrorKind::ConnectionReset);
        assert_eq!(classify(code::PROTOCOL_ERROR, true), ErrorKind::Protocol);
        assert_eq!(classify(code::NO_ERROR, false), ErrorKind::ConnectionClosed);
        assert_eq!(
            classify(code::COMPRESSION_ERROR, false),
            ErrorKind::Protocol
        );
    }
}

//! HPACK (RFC 7541) as the HTTP/2 client needs it: an encoder for request heads that uses only
//! the static table (indexed names, literal values without indexing, no Huffman), so a head
//! encoded once at plan time is valid on any connection; a per-connection [`Encoder`] that
//! turns such a block into indexes of the connection's dynamic table; and a lazy decoder for
//! response header blocks.
//!
//! The decoder keeps the dynamic table exactly (size updates, incremental indexing, eviction),
//! but materializes only what is asked for: `:status` always, every other field only when the
//! caller keeps headers. A Huffman-coded literal that is neither indexed nor wanted is skipped
//! without being decoded.
//!
//! Huffman decoding uses the code lengths of RFC 7541 Appendix B: the code is canonical (codes
//! of one length are consecutive, in symbol order), so the lengths alone define it.

use std::collections::VecDeque;

use thiserror::Error;

/// A header block the decoder cannot accept: a connection error (`COMPRESSION_ERROR`).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub(crate) enum HpackError {
    /// The block ends inside a field.
    #[error("header block truncated")]
    Truncated,
    /// An integer does not fit (or uses more octets than any valid one).
    #[error("HPACK integer overflow")]
    Overflow,
    /// Index 0, or an index past the end of the tables.
    #[error("invalid HPACK index {0}")]
    Index(usize),
    /// A dynamic table size update above the limit we advertised, or after a field.
    #[error("invalid dynamic table size update")]
    SizeUpdate,
    /// Bad Huffman padding, or EOS inside a string.
    #[error("invalid Huffman code")]
    Huffman,
}

/// The static table (RFC 7541 Appendix A), index 1 first.
pub(crate) const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Bit length of each symbol's Huffman code (RFC 7541 Appendix B), symbols 0–255 then EOS.
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/// The canonical Huffman code, laid out for decoding: per code length, the first code, how
/// many codes have that length, and where their symbols start in `syms`.
struct Canonical {
    first: [u32; 31],
    count: [u16; 31],
    start: [u16; 31],
    syms: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut c = Canonical {
        first: [0; 31],
        count: [0; 31],
        start: [0; 31],
        syms: [0; 257],
    };
    let mut n = 0;
    let mut code = 0u32;
    let mut len = 1;
    while len <= 30 {
        c.first[len] = code;
        c.start[len] = n as u16;
        let mut sym = 0;
        while sym < 257 {
            if HUFFMAN_LENGTHS[sym] as usize == len {
                c.syms[n] = sym as u16;
                n += 1;
                c.count[len] += 1;
            }
            sym += 1;
        }
        code = (code + c.count[len] as u32) << 1;
        len += 1;
    }
    c
}

static CANONICAL: Canonical = canonical();

/// The end-of-string symbol: never valid inside a string.
const EOS: u16 = 256;

/// Decodes a Huffman-coded string (RFC 7541 §5.2), appending to `out`.
pub(crate) fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let c = &CANONICAL;
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            if len > 30 {
                return Err(HpackError::Huffman);
            }
            let i = code.wrapping_sub(c.first[len]);
            if i < u32::from(c.count[len]) {
                let sym = c.syms[c.start[len] as usize + i as usize];
                if sym == EOS {
                    return Err(HpackError::Huffman);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(())
}

/// Reads an integer with an `n`-bit prefix (RFC 7541 §5.1) at `*pos`.
fn int(buf: &[u8], pos: &mut usize, n: u8) -> Result<usize, HpackError> {
    let mask = ((1u16 << n) - 1) as u8;
    let first = *buf.get(*pos).ok_or(HpackError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut v = usize::from(mask);
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        if shift > 28 {
            return Err(HpackError::Overflow);
        }
        v += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return if v > u32::MAX as usize {
                Err(HpackError::Overflow)
            } else {
                Ok(v)
            };
        }
        shift += 7;
    }
}

/// A string literal as it stands in the block: its octets and whether they are Huffman-coded.
#[derive(Clone, Copy)]
struct Lit<'a> {
    raw: &'a [u8],
    huffman: bool,
}

impl Lit<'_> {
    fn read<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Lit<'a>, HpackError> {
        let huffman = buf.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = int(buf, pos, 7)?;
        let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
        let raw = buf.get(*pos..end).ok_or(HpackError::Truncated)?;
        *pos = end;
        Ok(Lit { raw, huffman })
    }

    fn decoded(&self) -> Result<Vec<u8>, HpackError> {
        if self.huffman {
            let mut out = Vec::with_capacity(self.raw.len() * 8 / 5);
            huffman_decode(self.raw, &mut out)?;
            Ok(out)
        } else {
            Ok(self.raw.to_vec())
        }
    }
}

/// A header field's name in a literal representation: an index, or a literal.
enum Name<'a> {
    Index(usize),
    Lit(Lit<'a>),
}

/// One dynamic table entry, decoded; with the value's Huffman octets as they arrived, so a
/// later literal with the same octets is not decoded again (servers such as nginx index the
/// same `server`, `date` and `content-type` values response after response).
#[derive(Default)]
struct Entry {
    name: Vec<u8>,
    value: Vec<u8>,
    /// The value arrived Huffman-coded as `raw`.
    huffman: bool,
    raw: Vec<u8>,
}

impl Entry {
    fn size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}

/// The size of the dynamic table we allow the server (SETTINGS_HEADER_TABLE_SIZE, the default).
pub(crate) const TABLE_SIZE: usize = 4096;

/// Decodes response header blocks of one connection (the dynamic table lives across blocks).
pub(crate) struct Decoder {
    /// Newest first: dynamic index 62 is `table[0]`.
    table: VecDeque<Entry>,
    size: usize,
    max: usize,
    limit: usize,
    /// Evicted entries whose buffers the next insertions reuse.
    spare: Vec<Entry>,
    /// The bound on a block's decoded list ([`MAX_HEADER_LIST`]).
    max_list: usize,
}

/// Most spare entries kept.
const SPARE: usize = 8;
/// How many of the newest entries a Huffman-coded literal is compared with.
const RECENT: usize = 16;

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("entries", &self.table.len())
            .field("size", &self.size)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(TABLE_SIZE)
    }
}

/// What the caller receives of every field, when it keeps headers.
pub(crate) type Sink<'s> = &'s mut dyn FnMut(&[u8], &[u8]);

impl Decoder {
    /// A decoder whose dynamic table may grow to `limit` octets.
    pub(crate) fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: limit,
            limit,
            spare: Vec::new(),
            max_list: MAX_HEADER_LIST,
        }
    }

    /// The dynamic table's size in octets (RFC 7541 §4.1) and its number of entries.
    #[cfg(test)]
    fn dynamic(&self) -> (usize, usize) {
        (self.size, self.table.len())
    }

    fn get(&self, i: usize) -> Result<(&[u8], &[u8]), HpackError> {
        match i {
            0 => Err(HpackError::Index(i)),
            1..=61 => {
                let (n, v) = STATIC[i - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self
                .table
                .get(i - 62)
                .map(|e| (&*e.name, &*e.value))
                .ok_or(HpackError::Index(i)),
        }
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            match self.table.pop_back() {
                Some(e) => {
                    self.size -= e.size();
                    self.recycle(e);
                }
                None => break,
            }
        }
    }

    fn recycle(&mut self, e: Entry) {
        if self.spare.len() < SPARE {
            self.spare.push(e);
        }
    }

    fn insert(&mut self, e: Entry) {
        let size = e.size();
        if size > self.max {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self.evict_to(0);
            self.recycle(e);
            return;
        }
        self.evict_to(self.max - size);
        self.size += size;
        self.table.push_front(e);
    }

    /// A literal field, decoded into a (recycled) entry.
    fn materialize(&mut self, name: &Name<'_>, value: Lit<'_>) -> Result<Entry, HpackError> {
        let mut e = self.spare.pop().unwrap_or_default();
        e.name.clear();
        e.value.clear();
        e.raw.clear();
        match name {
            Name::Index(i) => e.name.extend_from_slice(self.get(*i)?.0),
            Name::Lit(l) if l.huffman => huffman_decode(l.raw, &mut e.name)?,
            Name::Lit(l) => e.name.extend_from_slice(l.raw),
        }
        e.huffman = value.huffman;
        if value.huffman {
            e.raw.extend_from_slice(value.raw);
            match self
                .table
                .iter()
                .take(RECENT)
                .find(|t| t.huffman && t.raw == value.raw)
            {
                Some(t) => e.value.extend_from_slice(&t.value),
                None => huffman_decode(value.raw, &mut e.value)?,
            }
        } else {
            e.value.extend_from_slice(value.raw);
        }
        Ok(e)
    }

    /// Decodes one complete header block: its `:status`, its `content-length`, whether it is
    /// malformed or too large (see [`Block`]); with `all`, hands every field (decoded) to it,
    /// up to [`MAX_HEADER_LIST`]. A block past the bound is still decoded to its end (the
    /// dynamic table is the connection's), but nothing more of it is handed out or decoded
    /// that need not be.
    pub(crate) fn decode(
        &mut self,
        block: &[u8],
        mut all: Option<Sink<'_>>,
    ) -> Result<Block, HpackError> {
        let mut out = Block::default();
        let mut list = 0usize;
        let mut pos = 0;
        let mut fields = false;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let i = int(block, &mut pos, 7)?;
                let (n, v) = self.get(i)?;
                list += n.len() + v.len() + 32;
                out.field(special(n), v);
                if list > self.max_list {
                    out.too_large = true;
                    all = None;
                }
                if let Some(f) = all.as_mut() {
                    f(n, v);
                }
                fields = true;
                continue;
            }
            if b & 0xe0 == 0x20 {
                let size = int(block, &mut pos, 5)?;
                if fields || size > self.limit {
                    return Err(HpackError::SizeUpdate);
                }
                self.max = size;
                self.evict_to(size);
                continue;
            }
            // Literal: with incremental indexing (6-bit prefix), else without / never indexed.
            let index = b & 0xc0 == 0x40;
            let i = int(block, &mut pos, if index { 6 } else { 4 })?;
            let name = if i == 0 {
                Name::Lit(Lit::read(block, &mut pos)?)
            } else {
                // Checked now: an index past the tables is an error even if unused.
                self.get(i)?;
                Name::Index(i)
            };
            let value = Lit::read(block, &mut pos)?;
            fields = true;
            let (sp, name_len) = match &name {
                Name::Index(8..=14) => (Special::Status, 7),
                Name::Index(28) => (Special::ContentLength, 14),
                Name::Index(i) => {
                    let n = self.get(*i)?.0;
                    (special(n), n.len())
                }
                Name::Lit(l) if l.huffman => {
                    let n = l.decoded()?;
                    (special(&n), n.len())
                }
                Name::Lit(l) => (special(l.raw), l.raw.len()),
            };
            // Skipped values count their coded length (a Huffman code is at most 8/5 shorter).
            list += name_len + value.raw.len() + 32;
            if list > self.max_list {
                out.too_large = true;
                all = None;
            }
            if !(index || sp != Special::Other || all.is_some()) {
                continue;
            }
            let e = self.materialize(&name, value)?;
            out.field(sp, &e.value);
            if let Some(f) = all.as_mut() {
                f(&e.name, &e.value);
            }
            if index {
                self.insert(e);
            } else {
                self.recycle(e);
            }
        }
        Ok(out)
    }
}

/// The most octets of decoded header list (RFC 9113 §6.5.2: names, values and 32 octets per
/// field) a response's header block may carry: advertised as SETTINGS_MAX_HEADER_LIST_SIZE.
pub(crate) const MAX_HEADER_LIST: usize = 64 << 10;

/// What the client reads of a header block (the rest is decoded for the dynamic table only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Block {
    /// `:status` (None if absent or not three digits).
    pub(crate) status: Option<u16>,
    /// `content-length`, when present (and, if repeated, the same each time).
    pub(crate) content_length: Option<u64>,
    /// Malformed (RFC 9113 §8.1.1, §8.3.2): a second `:status`, or a `content-length` that is
    /// not a number or disagrees with another.
    pub(crate) malformed: bool,
    /// The decoded list exceeded [`MAX_HEADER_LIST`].
    pub(crate) too_large: bool,
    /// Any `:status` field (trailers must have none).
    pub(crate) has_status: bool,
}

impl Block {
    fn field(&mut self, sp: Special, v: &[u8]) {
        match sp {
            Special::Other => {}
            Special::Status => {
                self.malformed |= self.has_status;
                self.has_status = true;
                self.status = parse_status(v);
            }
            Special::ContentLength => match parse_length(v) {
                Some(n) if self.content_length.is_none_or(|m| m == n) => {
                    self.content_length = Some(n);
                }
                _ => self.malformed = true,
            },
        }
    }
}

/// The fields [`Block`] looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    Status,
    ContentLength,
    Other,
}

fn special(name: &[u8]) -> Special {
    match name {
        b":status" => Special::Status,
        b"content-length" => Special::ContentLength,
        _ => Special::Other,
    }
}

/// A `content-length` value: 1 to 19 digits.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn parse_status(v: &[u8]) -> Option<u16> {
    match v {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Appends an integer with an `n`-bit prefix, the prefix's other bits set to `flags`.
fn put_int(out: &mut Vec<u8>, flags: u8, n: u8, v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = v - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a string literal, not Huffman-coded.
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// The static table index of `name`, if it has one.
fn static_name(name: &[u8]) -> Option<usize> {
    STATIC
        .iter()
        .position(|(n, _)| n.as_bytes() == name)
        .map(|i| i + 1)
}

/// Appends one field as a literal without indexing (its name indexed when the static table
/// has it): valid on any connection, and it leaves the server's dynamic table alone.
pub(crate) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    // Credentials are marked never to be indexed, by us or by any proxy on the way.
    let flags = if sensitive(name) { NEVER_INDEXED } else { 0 };
    put_name(out, flags, 4, name);
    put_str(out, value);
}

/// Literal field representations (RFC 7541 §6.2): the first octet's pattern.
const NEVER_INDEXED: u8 = 0x10;
const INCREMENTAL: u8 = 0x40;

/// A field's name: its static table index in an `n`-bit prefix, or index 0 and the literal.
fn put_name(out: &mut Vec<u8>, flags: u8, n: u8, name: &[u8]) {
    match static_name(name) {
        Some(i) => put_int(out, flags, n, i),
        None => {
            out.push(flags);
            put_str(out, name);
        }
    }
}

/// Fields that carry credentials: never entered in a dynamic table.
fn sensitive(name: &[u8]) -> bool {
    matches!(name, b"authorization" | b"proxy-authorization" | b"cookie")
}

/// Headers HTTP/2 forbids in requests (RFC 9113 §8.2.2); `te` is allowed only as `trailers`.
fn connection_specific(name: &[u8], value: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
    ) || (name == b"te" && value != b"trailers")
}

/// Encodes a request head: the pseudo-headers (fully indexed where the static table has the
/// pair), then `headers` (names lower case, as `http::HeaderName` keeps them). Connection-specific
/// headers are left out.
pub(crate) fn encode_request<'h>(
    out: &mut Vec<u8>,
    method: &[u8],
    scheme: &[u8],
    authority: &[u8],
    path: &[u8],
    headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
) {
    match method {
        b"GET" => out.push(0x82),
        b"POST" => out.push(0x83),
        m => put_field(out, b":method", m),
    }
    match scheme {
        b"http" => out.push(0x86),
        b"https" => out.push(0x87),
        s => put_field(out, b":scheme", s),
    }
    put_field(out, b":authority", authority);
    match path {
        b"/" => out.push(0x84),
        p => put_field(out, b":path", p),
    }
    for (n, v) in headers {
        if !connection_specific(n, v) {
            put_field(out, n, v);
        }
    }
}

/// The request side of a connection's HPACK state: a dynamic table that the server's decoder
/// mirrors, so that fields repeated request after request go as an index of an octet or two.
///
/// Request heads arrive as blocks [`encode_request`] made (static table only, literals
/// without indexing, no Huffman). Each field is looked up in the table: found, it goes as its
/// index; not found, it goes as a literal with incremental indexing and enters the table (a
/// fixed head's fields, and a templated head's `:authority` and `user-agent`: the other fields
/// of a templated head may change from request to request, and entering them would only evict
/// the fixed ones). Credentials stay never-indexed literals. The encoded form of a fixed head is
/// kept, valid until the table changes: in a steady run nothing enters the table any more, and
/// a fixed head costs one copy.
#[derive(Debug)]
pub(crate) struct Encoder {
    /// Newest first: dynamic index 62 is `table[0]`.
    table: VecDeque<Pair>,
    size: usize,
    max: usize,
    /// A dynamic table size update to send at the start of the next block.
    update: bool,
    /// Bumped whenever the table changes.
    generation: u64,
    /// Encoded fixed heads by request id, with the generation they are valid for.
    kept: Vec<Option<(u64, Vec<u8>)>>,
    scratch: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder {
            table: VecDeque::new(),
            size: 0,
            max: TABLE_SIZE,
            update: false,
            generation: 0,
            kept: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// A dynamic table entry of ours: name and value.
type Pair = (Box<[u8]>, Box<[u8]>);

/// One field of a block [`encode_request`] made.
enum Field<'a> {
    /// A static table entry, name and value: its index.
    Static(usize),
    /// A literal: the name (static index or octets), the value, never-indexed.
    Literal {
        index: usize,
        name: &'a [u8],
        value: &'a [u8],
        never: bool,
    },
}

impl Encoder {
    /// The server's SETTINGS_HEADER_TABLE_SIZE: the table shrinks to it (we use at most
    /// [`TABLE_SIZE`]), and the next block says so.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.max = limit.min(TABLE_SIZE);
        self.evict_to(self.max);
        self.update = true;
        self.generation += 1;
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => self.size = 0,
            }
        }
    }

    /// `block` (from [`encode_request`]) for this connection. `fixed`: the id of a request
    /// whose head never changes (its encoded form is kept).
    pub(crate) fn encode(&mut self, block: &[u8], fixed: Option<usize>) -> &[u8] {
        if let Some(id) = fixed
            && let Some(Some((generation, _))) = self.kept.get(id)
            && *generation == self.generation
        {
            return self.kept[id].as_ref().map_or(&[], |k| &k.1);
        }
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let before = self.generation;
        if !self.index(block, fixed.is_some(), &mut out) {
            // Not a block of ours: as it is (it refers to no dynamic entry).
            out.clear();
            out.extend_from_slice(block);
        }
        match fixed {
            // Nothing entered the table: the same bytes serve until it changes.
            Some(id) if self.generation == before => {
                if self.kept.len() <= id {
                    self.kept.resize_with(id + 1, || None);
                }
                self.kept[id] = Some((self.generation, out));
                self.kept[id].as_ref().map_or(&[], |k| &k.1)
            }
            _ => {
                self.scratch = out;
                &self.scratch
            }
        }
    }

    /// Encodes `block`'s fields into `out` against the table; false (nothing changed) if
    /// `block` is not one [`encode_request`] made.
    fn index(&mut self, block: &[u8], fixed: bool, out: &mut Vec<u8>) -> bool {
        let mut pos = 0;
        while pos < block.len() {
            if Encoder::field(block, &mut pos).is_err() {
                return false;
            }
        }
        if std::mem::take(&mut self.update) {
            put_int(out, 0x20, 5, self.max);
        }
        let mut pos = 0;
        while let Ok(f) = Encoder::field(block, &mut pos) {
            match f {
                Field::Static(i) => put_int(out, 0x80, 7, i),
                Field::Literal {
                    index,
                    name,
                    value,
                    never,
                } => {
                    let name = if index > 0 {
                        STATIC[index - 1].0.as_bytes()
                    } else {
                        name
                    };
                    if never {
                        put_name(out, NEVER_INDEXED, 4, name);
                        put_str(out, value);
                    } else if let Some(i) = self
                        .table
                        .iter()
                        .position(|(n, v)| &n[..] == name && &v[..] == value)
                    {
                        put_int(out, 0x80, 7, STATIC.len() + 1 + i);
                    } else if (fixed || matches!(name, b":authority" | b"user-agent"))
                        && name.len() + value.len() + 32 <= self.max
                    {
                        put_name(out, INCREMENTAL, 6, name);
                        put_str(out, value);
                        self.evict_to(self.max - (name.len() + value.len() + 32));
                        self.size += name.len() + value.len() + 32;
                        self.table.push_front((name.into(), value.into()));
                        self.generation += 1;
                    } else {
                        put_name(out, 0, 4, name);
                        put_str(out, value);
                    }
                }
            }
            if pos == block.len() {
                break;
            }
        }
        true
    }

    /// Reads one field of a block [`encode_request`] made.
    fn field<'a>(block: &'a [u8], pos: &mut usize) -> Result<Field<'a>, HpackError> {
        let first = *block.get(*pos).ok_or(HpackError::Truncated)?;
        if first & 0x80 != 0 {
            let i = int(block, pos, 7)?;
            return match i {
                1..=61 => Ok(Field::Static(i)),
                _ => Err(HpackError::Index(i)),
            };
        }
        if first & 0xe0 != 0 {
            // Indexing or a size update: not in our blocks.
            return Err(HpackError::Index(0));
        }
        let never = first & NEVER_INDEXED != 0;
        let index = int(block, pos, 4)?;
        let name = match index {
            0 => Lit::read(block, pos)?,
            1..=61 => Lit {
                raw: &[],
                huffman: false,
            },
            i => return Err(HpackError::Index(i)),
        };
        let value = Lit::read(block, pos)?;
        if name.huffman || value.huffman {
            return Err(HpackError::Huffman);
        }
        Ok(Field::Literal {
            index,
            name: name.raw,
            value: value.raw,
            never,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut got = Vec::new();
        let mut sink = |n: &[u8], v: &[u8]| {
            got.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        };
        d.decode(block, Some(&mut sink))
            .map(|b| b.status)
            .expect("decodes");
        got
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn requests(blocks: [&str; 3]) {
        let mut d = Decoder::new(4096);
        assert_eq!(
            decode_all(&mut d, &hex(blocks[0])),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        assert_eq!(d.dynamic(), (57, 1));
        assert_eq!(
            decode_all(&mut d, &hex(blocks[1])),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ])
        );
        assert_eq!(d.dynamic(), (110, 2));
        assert_eq!(
            decode_all(&mut d, &hex(blocks[2])),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.dynamic(), (164, 3));
    }

    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    /// C.5 / C.6: a 256-octet table, so the later responses evict entries.
    fn responses(blocks: [&str; 3]) {
        let first = [
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ];
        let mut d = Decoder::new(256);
        let mut want = vec![(":status", "302")];
        want.extend(first);
        assert_eq!(decode_all(&mut d, &hex(blocks[0])), pairs(&want));
        assert_eq!(d.dynamic(), (222, 4));
        // Lazily: only the status; the dynamic table moves exactly as when decoding all.
        let mut lazy = Decoder::new(256);
        assert_eq!(
            lazy.decode(&hex(blocks[0]), None).map(|b| b.status),
            Ok(Some(302))
        );
        assert_eq!(lazy.dynamic(), (222, 4));

        let mut want = vec![(":status", "307")];
        want.extend(first);
        assert_eq!(decode_all(&mut d, &hex(blocks[1])), pairs(&want));
        assert_eq!(d.dynamic(), (222, 4));
        assert_eq!(
            lazy.decode(&hex(blocks[1]), None).map(|b| b.status),
            Ok(Some(307))
        );

        assert_eq!(
            decode_all(&mut d, &hex(blocks[2])),
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(d.dynamic(), (215, 3));
        assert_eq!(
            lazy.decode(&hex(blocks[2]), None).map(|b| b.status),
            Ok(Some(200))
        );
        assert_eq!(lazy.dynamic(), (215, 3));
        assert_eq!(
            d.get(62).map(|(n, _)| n.to_vec()),
            Ok(b"set-cookie".to_vec())
        );
    }

    #[test]
    fn rfc7541_c5_responses_without_huffman() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
        ]);
    }

    #[test]
    fn rfc7541_c6_responses_with_huffman() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn huffman_rejects_bad_padding_and_eos() {
        let mut out = Vec::new();
        assert_eq!(huffman_decode(&hex("6402"), &mut out), Ok(()));
        assert_eq!(out, b"302");
        for bad in ["1fffffffff", "18", "1fff", "00", "ff"] {
            assert_eq!(
                huffman_decode(&hex(bad), &mut Vec::new()),
                Err(HpackError::Huffman),
                "{bad}"
            );
        }
    }

    #[test]
    fn integers_round_trip_and_overflow_is_refused() {
        for (n, v) in [(5u8, 10usize), (5, 1337), (8, 42), (4, 15), (7, 1 << 20)] {
            let mut out = Vec::new();
            put_int(&mut out, 0, n, v);
            assert_eq!(int(&out, &mut 0, n), Ok(v));
        }
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
        let mut out = Vec::new();
        put_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
        assert_eq!(
            int(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut 0, 7),
            Err(HpackError::Overflow)
        );
        assert_eq!(int(&[0x7f, 0x80], &mut 0, 7), Err(HpackError::Truncated));
    }

    #[test]
    fn errors_index_size_update_and_truncation() {
        let mut d = Decoder::new(4096);
        assert_eq!(
            d.decode(&[0x80], None).map(|b| b.status),
            Err(HpackError::Index(0))
        );
        assert_eq!(
            d.decode(&[0xbe], None).map(|b| b.status),
            Err(HpackError::Index(62))
        );
        // A size update above what we allow, and one after a field.
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x1f], None).map(|b| b.status),
            Err(HpackError::SizeUpdate)
        );
        assert_eq!(
            d.decode(&[0x88, 0x20], None).map(|b| b.status),
            Err(HpackError::SizeUpdate)
        );
        assert_eq!(
            d.decode(&[0x20, 0x88], None).map(|b| b.status),
            Ok(Some(200))
        );
        assert_eq!(
            d.decode(&[0x04, 0x05, b'/'], None).map(|b| b.status),
            Err(HpackError::Truncated)
        );
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(
            &mut out,
            b"GET",
            b"https",
            b"127.0.0.1:8443",
            path.as_bytes(),
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        );
        out
    }

    #[test]
    fn fixed_heads_go_as_indexes_and_the_servers_table_follows() {
        let fixed = request("/", &[("user-agent", "stampede/0"), ("accept", "*/*")]);
        let login = request(
            "/login",
            &[
                ("user-agent", "stampede/0"),
                ("authorization", "Bearer secret"),
            ],
        );
        let mut enc = Encoder::default();
        let mut server = Decoder::new(TABLE_SIZE);
        let mut sizes = Vec::new();
        for round in 0..4 {
            let templated = request(&format!("/items/{round}"), &[("user-agent", "stampede/0")]);
            for (block, id) in [(&fixed, Some(0)), (&login, Some(1)), (&templated, None)] {
                let sent = enc.encode(block, id).to_vec();
                // What the server decodes is what was meant, whatever the encoding.
                assert_eq!(
                    decode_all(&mut server, &sent),
                    decode_all(&mut Decoder::new(TABLE_SIZE), block),
                    "round {round}"
                );
                if id == Some(1) {
                    // `authorization` (static index 23) as a never-indexed literal, every time.
                    let never: &[u8] = &[NEVER_INDEXED | 0x0f, 23 - 15, 13];
                    assert!(sent.windows(3).any(|w| w == never), "{sent:?}");
                }
                sizes.push(sent.len());
            }
        }
        // The first fixed head enters the table; from the next round on it is six indexes.
        assert!(sizes[0] > 30, "{sizes:?}");
        assert_eq!(sizes[3], 6, "{sizes:?}");
        assert_eq!(sizes[9], 6, "{sizes:?}");
        // The credential never entered either table, nor did a templated path.
        assert_eq!(server.dynamic(), (enc.size, enc.table.len()));
        assert!(
            enc.table
                .iter()
                .all(|(n, v)| &n[..] != b"authorization" && &v[..] != b"/items/1")
        );
        assert_eq!(
            enc.table.len(),
            4,
            "authority, user-agent, accept, :path /login"
        );
    }

    #[test]
    fn a_small_table_evicts_in_step_with_the_servers() {
        let mut enc = Encoder::default();
        // The server allows 200 octets: the first block says so, then entries of ~60 octets
        // each evict one another.
        let mut server = Decoder::new(200);
        enc.set_limit(200);
        let heads: Vec<Vec<u8>> = (0..7)
            .map(|i| request("/", &[("x-field", &format!("value-{i}"))]))
            .collect();
        for n in 0..60 {
            let i = (n * 5) % heads.len();
            let sent = enc.encode(&heads[i], Some(i)).to_vec();
            if n == 0 {
                assert_eq!(sent[0], 0x20 | 0x1f, "a size update leads");
            }
            assert_eq!(
                decode_all(&mut server, &sent),
                decode_all(&mut Decoder::new(TABLE_SIZE), &heads[i]),
                "block {n}"
            );
            assert!(enc.size <= 200);
            assert_eq!(server.dynamic(), (enc.size, enc.table.len()), "block {n}");
        }
        // A server with no table at all: literals only, nothing kept in step.
        let mut enc = Encoder::default();
        enc.set_limit(0);
        let mut server = Decoder::new(0);
        for _ in 0..3 {
            let sent = enc.encode(&heads[0], Some(0)).to_vec();
            assert_eq!(decode_all(&mut server, &sent).len(), 5);
            assert_eq!(server.dynamic(), (0, 0));
        }
    }

    #[test]
    fn request_heads_decode_to_what_was_encoded() {
        let mut out = Vec::new();
        encode_request(
            &mut out,
            b"PUT",
            b"https",
            b"example.com:8443",
            b"/a?b=c",
            [
                (&b"user-agent"[..], &b"stampede/0"[..]),
                (b"x-long-name-not-in-the-table", b"v"),
                (b"connection", b"close"),
                (b"content-type", b"application/json"),
            ],
        );
        let mut d = Decoder::new(4096);
        assert_eq!(
            decode_all(&mut d, &out),
            pairs(&[
                (":method", "PUT"),
                (":scheme", "https"),
                (":authority", "example.com:8443"),
                (":path", "/a?b=c"),
                ("user-agent", "stampede/0"),
                ("x-long-name-not-in-the-table", "v"),
                ("content-type", "application/json"),
            ])
        );
        // Nothing entered the dynamic table: the bytes are valid on every connection.
        assert_eq!(d.dynamic(), (0, 0));
        let mut get = Vec::new();
        encode_request(&mut get, b"GET", b"http", b"h", b"/", []);
        assert_eq!(get, [0x82, 0x86, 0x01, 0x01, b'h', 0x84]);
    }

    /// A literal with incremental indexing, its name indexed (static `index`).
    fn indexed_literal(out: &mut Vec<u8>, index: usize, value: &[u8]) {
        put_int(out, INCREMENTAL, 6, index);
        put_str(out, value);
    }

    #[test]
    fn an_hpack_bomb_is_cut_at_the_header_list_bound_and_the_table_survives() {
        // One ~4 KB entry, then 100,000 one-octet references to it: 400 MB if materialized.
        let mut block = vec![0x88];
        indexed_literal(&mut block, 54, &[b'x'; 4000]);
        block.extend(std::iter::repeat_n(0xbe, 100_000));
        for keep in [true, false] {
            let mut d = Decoder::new(4096);
            let mut handed = 0usize;
            let mut sink = |n: &[u8], v: &[u8]| handed += n.len() + v.len() + 32;
            let sink: Option<Sink<'_>> = if keep { Some(&mut sink) } else { None };
            let b = d.decode(&block, sink).expect("decodes");
            assert!(b.too_large, "keep={keep}");
            assert_eq!(b.status, Some(200));
            assert!(handed <= MAX_HEADER_LIST, "{handed}");
            if keep {
                assert!(handed > MAX_HEADER_LIST - 4100, "{handed}");
            }
            // The table kept step: the next block refers to the entry.
            let next = d.decode(&[0x88, 0xbe], None).expect("decodes");
            assert_eq!((next.status, next.too_large), (Some(200), false));
            assert_eq!(d.dynamic(), (4000 + 6 + 32, 1));
        }
    }

    #[test]
    fn literals_skipped_lazily_count_toward_the_bound() {
        // 20 literals of 4,000 octets, never indexed and not kept: 80 KB decoded.
        let mut block = vec![0x88];
        for _ in 0..20 {
            put_field(&mut block, b"x-pad", &[b'p'; 4000]);
        }
        let b = Decoder::new(4096).decode(&block, None).expect("decodes");
        assert!(b.too_large);
        let mut small = vec![0x88];
        put_field(&mut small, b"x-pad", &[b'p'; 4000]);
        let b = Decoder::new(4096).decode(&small, None).expect("decodes");
        assert!(!b.too_large);
    }

    #[test]
    fn status_and_content_length_are_read_and_malformed_blocks_flagged() {
        let cl = |vals: &[&[u8]], extra_status: bool| {
            let mut block = vec![0x88];
            if extra_status {
                block.push(0x8d);
            }
            for v in vals {
                // Name indexed (content-length is static 28), without indexing / indexed.
                put_field(&mut block, b"content-length", v);
            }
            Decoder::new(4096).decode(&block, None).expect("decodes")
        };
        let b = cl(&[b"100"], false);
        assert_eq!(
            (b.status, b.content_length, b.malformed),
            (Some(200), Some(100), false)
        );
        assert_eq!(cl(&[b"5", b"5"], false).content_length, Some(5));
        assert!(cl(&[b"5", b"6"], false).malformed);
        assert!(cl(&[b"-1"], false).malformed);
        assert!(cl(&[b""], false).malformed);
        assert!(cl(&[b"99999999999999999999"], false).malformed);
        let two = cl(&[], true);
        assert!(two.malformed && two.has_status, "two :status fields");
        // In the dynamic table (nginx indexes it) and through a Huffman-coded literal name.
        let mut d = Decoder::new(4096);
        let mut block = vec![0x88];
        indexed_literal(&mut block, 28, b"42");
        assert_eq!(
            d.decode(&block, None).map(|b| b.content_length),
            Ok(Some(42))
        );
        assert_eq!(
            d.decode(&[0x88, 0xbe], None).map(|b| b.content_length),
            Ok(Some(42))
        );
        let mut block = vec![0x88, 0x00];
        let name = b"content-length";
        let mut coded = Vec::new();
        huffman_encode_for_test(name, &mut coded);
        put_int(&mut block, 0x80, 7, coded.len());
        block.extend_from_slice(&coded);
        put_str(&mut block, b"7");
        assert_eq!(
            Decoder::new(4096)
                .decode(&block, None)
                .map(|b| b.content_length),
            Ok(Some(7))
        );
    }

    /// Huffman-encodes `src` with the canonical code (tests only).
    fn huffman_encode_for_test(src: &[u8], out: &mut Vec<u8>) {
        let c = &CANONICAL;
        let (mut acc, mut bits) = (0u64, 0u32);
        for &sym in src {
            let len = HUFFMAN_LENGTHS[sym as usize] as usize;
            let rank = (c.start[len]..c.start[len] + c.count[len])
                .position(|k| c.syms[k as usize] == u16::from(sym))
                .expect("symbol");
            let code = c.first[len] + rank as u32;
            acc = (acc << len) | u64::from(code);
            bits += len as u32;
            while bits >= 8 {
                out.push((acc >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | ((1u8 << (8 - bits)) - 1));
        }
    }
}

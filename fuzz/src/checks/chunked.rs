//! The in-place chunked decoder, `Chunked`, on arbitrary bytes and on encodings built from
//! them.
//!
//! The input is used twice:
//!
//! 1. As a chunked body, with a size limit derived from it. Decoding it at once, in pieces
//!    with `compact` between calls (what the transport does), and in pieces without
//!    `compact` all give the same outcome: the same body and the same bytes left after it,
//!    or the same `Partial`, or the same error. A decoded body lies within the buffer, its
//!    `consumed` within the input, the bytes after `consumed` are untouched, and the body
//!    is no larger than the limit. The outcome is the one of a naive reference decoder:
//!    whatever one accepts, the other accepts with the same body and length. Compaction
//!    keeps the buffer within the body plus `MAX_LINE + MAX_HEAD`, the slack the transport
//!    allows.
//! 2. As a recipe for an encoding: chunk sizes (hex in either case, leading zeros, trailing
//!    whitespace), extensions, bare-LF or CRLF line ends, trailer
//!    fields and bytes after the body are all taken from the input. Decoding the encoding
//!    gives exactly the data that was encoded, at once and in pieces, with a limit of
//!    exactly its length too; one byte less of limit is `BodyTooLarge`; and every
//!    truncation of it is `Partial`.

use tinylambda::parse::{Body, Chunked, Error, MAX_HEAD, MAX_LINE, Status};

use super::{Rng, is_field_byte, is_field_line, is_token};

/// The result of decoding, comparable across ways of feeding the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The decoded body and the input bytes that follow the chunked encoding.
    Body {
        body: Vec<u8>,
        rest: Vec<u8>,
    },
    Partial,
    Err(Error),
}

/// Checks both uses of `data`.
pub fn check(data: &[u8]) {
    check_stream(data);
    check_round_trip(data);
}

/// `data` as a chunked body, with a limit derived from it. Returns the outcome of decoding
/// it at once.
pub fn check_stream(data: &[u8]) -> Outcome {
    let mut rng = Rng::from_input(data);
    let limit = match rng.below(4) {
        0 => u64::MAX,
        1 => 1 << 20,
        2 => data.len() as u64,
        _ => rng.below(64) as u64,
    };
    check_decoding(data, limit)
}

/// `data` as a chunked body, decoded with `limit`. Returns the outcome of decoding it at
/// once.
pub fn check_decoding(data: &[u8], limit: u64) -> Outcome {
    let mut rng = Rng::from_input(data);
    let once = at_once(data, limit);
    let (compacted, largest) = in_pieces(data, limit, &mut rng, true);
    assert_eq!(compacted, once, "in pieces with compact, limit {limit}");
    let (plain, _) = in_pieces(data, limit, &mut rng, false);
    assert_eq!(plain, once, "in pieces without compact, limit {limit}");

    match (&once, reference(data, limit)) {
        (Outcome::Body { body, rest }, Some((expected, consumed))) => {
            assert_eq!(body, &expected, "body differs from the reference decoder");
            assert_eq!(
                rest,
                &data[consumed..],
                "consumed differs from the reference"
            );
            assert!(
                largest < body.len() + MAX_LINE + MAX_HEAD,
                "compacted buffer of {largest} bytes for a body of {}",
                body.len()
            );
        }
        (Outcome::Body { .. }, None) => panic!("decoded what the reference refuses: {once:?}"),
        (_, Some(valid)) => panic!("refused a valid encoding of {valid:?}: {once:?}"),
        _ => {}
    }
    once
}

/// `data` as a recipe for a chunked encoding, which must decode to exactly what it encodes.
pub fn check_round_trip(data: &[u8]) {
    let enc = encode(data);
    let mut stream = enc.encoded.clone();
    stream.extend_from_slice(&enc.after);
    let expected = Outcome::Body {
        body: enc.payload.clone(),
        rest: enc.after.clone(),
    };
    let exact = enc.payload.len() as u64;
    assert_eq!(at_once(&stream, u64::MAX), expected, "at once: {enc:?}");
    assert_eq!(at_once(&stream, exact), expected, "limit {exact}: {enc:?}");
    if exact > 0 {
        assert_eq!(
            at_once(&stream, exact - 1),
            Outcome::Err(Error::BodyTooLarge),
            "limit {}: {enc:?}",
            exact - 1
        );
    }
    let mut rng = Rng::from_input(&stream);
    for compact in [true, false] {
        let (got, _) = in_pieces(&stream, exact, &mut rng, compact);
        assert_eq!(got, expected, "in pieces (compact {compact}): {enc:?}");
    }
    assert_eq!(
        reference(&stream, exact),
        Some((enc.payload.clone(), enc.encoded.len())),
        "reference decoder: {enc:?}"
    );
    for cut in [rng.below(enc.encoded.len()), enc.encoded.len() - 1] {
        assert_eq!(
            at_once(&enc.encoded[..cut], u64::MAX),
            Outcome::Partial,
            "truncated to {cut} bytes: {enc:?}"
        );
    }
}

/// Decodes `data` in one call.
pub fn at_once(data: &[u8], limit: u64) -> Outcome {
    let mut buf = data.to_vec();
    match Chunked::new(limit).decode(&mut buf) {
        Ok(Status::Complete(b)) => {
            check_body(&b, buf.len(), limit);
            assert_eq!(
                &buf[b.consumed..],
                &data[b.consumed..],
                "bytes after the body were changed"
            );
            Outcome::Body {
                body: buf[b.start..b.end].to_vec(),
                rest: buf[b.consumed..].to_vec(),
            }
        }
        Ok(Status::Partial) => Outcome::Partial,
        Err(e) => Outcome::Err(e),
    }
}

/// Decodes `data` as it would arrive from a socket in reads of sizes drawn from `rng`,
/// calling `compact` between reads when `compact` is set, like the transport. Also returns
/// the largest buffer length left by `compact`.
pub fn in_pieces(data: &[u8], limit: u64, rng: &mut Rng, compact: bool) -> (Outcome, usize) {
    let mut decoder = Chunked::new(limit);
    let mut fed = rng.below(data.len() + 1);
    let mut buf = data[..fed].to_vec();
    let mut largest = 0;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Status::Complete(b)) => {
                check_body(&b, buf.len(), limit);
                let mut rest = buf[b.consumed..].to_vec();
                rest.extend_from_slice(&data[fed..]);
                let body = buf[b.start..b.end].to_vec();
                return (Outcome::Body { body, rest }, largest);
            }
            Ok(Status::Partial) => {}
            Err(e) => return (Outcome::Err(e), largest),
        }
        if fed == data.len() {
            return (Outcome::Partial, largest);
        }
        if compact {
            let len = decoder.compact(&mut buf);
            assert!(len <= buf.len(), "compact grew the buffer");
            buf.truncate(len);
            largest = largest.max(len);
        }
        let n = rng.piece().min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
    }
}

/// A complete body lies within the buffer and within the limit.
fn check_body(b: &Body, len: usize, limit: u64) {
    assert!(
        b.start <= b.end && b.end <= b.consumed && b.consumed <= len,
        "{b:?} in a buffer of {len} bytes"
    );
    assert!(
        (b.end - b.start) as u64 <= limit,
        "{b:?} over limit {limit}"
    );
}

/// A naive chunked decoder with the same rules and limits: the body and the bytes the
/// encoding used, or `None` when `data` is not a complete, valid encoding within `limit`.
pub fn reference(data: &[u8], limit: u64) -> Option<(Vec<u8>, usize)> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let line = take_line(data, &mut pos, MAX_LINE)?;
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let (hex, ext) = line.split_at(digits);
        let size = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        let blank = ext.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        match &ext[blank..] {
            [] => {}
            [b';', rest @ ..] if rest.iter().all(|&b| is_field_byte(b)) => {}
            _ => return None,
        }
        if size > limit.saturating_sub(body.len() as u64) {
            return None;
        }
        if size == 0 {
            break;
        }
        let end = pos.checked_add(usize::try_from(size).ok()?)?;
        body.extend_from_slice(data.get(pos..end)?);
        pos = end;
        if data[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if data[pos..].starts_with(b"\n") {
            pos += 1;
        } else {
            return None;
        }
    }
    let mut trailer = 0;
    loop {
        let start = pos;
        let line = take_line(data, &mut pos, MAX_HEAD - trailer)?;
        trailer += pos - start;
        if line.is_empty() {
            return Some((body, pos));
        }
        if !is_field_line(line) {
            return None;
        }
    }
}

/// The line at `*pos` without its line break (LF, or CRLF), if it is complete and at most
/// `max` bytes long with the line break.
fn take_line<'a>(data: &'a [u8], pos: &mut usize, max: usize) -> Option<&'a [u8]> {
    let rest = data.get(*pos..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    if nl + 1 > max {
        return None;
    }
    *pos += nl + 1;
    let line = &rest[..nl];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// A chunked encoding built from a recipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The data that was encoded.
    pub payload: Vec<u8>,
    /// The chunked encoding, up to and including its final blank line.
    pub encoded: Vec<u8>,
    /// Bytes that follow the encoding on the wire (the next response, or nothing).
    pub after: Vec<u8>,
}

/// Reads a recipe byte by byte; past its end every byte is 0.
struct Recipe<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Recipe<'a> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = (self.pos + 1).min(self.data.len());
        b
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos;
        self.pos = start.saturating_add(n).min(self.data.len());
        &self.data[start..self.pos]
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Builds a chunked encoding from `recipe`: a plan byte (trailer count, last-chunk style,
/// what follows), the trailer fields, then for each chunk a length byte, a style byte and
/// the chunk's data, until the recipe runs out.
pub fn encode(recipe: &[u8]) -> Encoded {
    let mut r = Recipe {
        data: recipe,
        pos: 0,
    };
    let plan = r.byte();
    let mut trailers = Vec::new();
    for _ in 0..plan % 4 {
        let name_len = 1 + usize::from(r.byte() % 24);
        let value_len = usize::from(r.byte() % 64);
        let mut name: Vec<u8> = r
            .take(name_len)
            .iter()
            .map(|&b| if is_token(b) { b } else { b'X' })
            .collect();
        if name.is_empty() {
            name.push(b'T');
        }
        let value = field_bytes(r.take(value_len));
        trailers.push((name, value));
    }

    let mut e = Encoded {
        payload: Vec::new(),
        encoded: Vec::new(),
        after: Vec::new(),
    };
    while !r.is_empty() {
        let len_byte = r.byte();
        let style = r.byte();
        let len = if len_byte >= 0xf0 {
            usize::from(len_byte & 0x0f) << 8 | usize::from(r.byte())
        } else {
            usize::from(len_byte) + 1
        };
        let chunk = r.take(len);
        if chunk.is_empty() {
            break;
        }
        size_line(chunk.len(), style, &mut r, &mut e.encoded);
        e.encoded.extend_from_slice(chunk);
        e.encoded
            .extend_from_slice(if style & 0x80 != 0 { b"\n" } else { b"\r\n" });
        e.payload.extend_from_slice(chunk);
    }
    size_line(0, plan >> 2, &mut r, &mut e.encoded);
    for (i, (name, value)) in trailers.iter().enumerate() {
        e.encoded.extend_from_slice(name);
        e.encoded
            .extend_from_slice(if i % 2 == 0 { b": " } else { b":" });
        e.encoded.extend_from_slice(value);
        e.encoded.extend_from_slice(b"\r\n");
    }
    e.encoded
        .extend_from_slice(if plan & 0x40 != 0 { b"\n" } else { b"\r\n" });
    e.after = match plan >> 6 {
        0 | 1 => Vec::new(),
        2 => b"HTTP/1.1 200 OK\r\n".to_vec(),
        _ => b"0\r\n\r\n".to_vec(),
    };
    e
}

/// Appends the chunk-size line for `len` in the form `style` picks.
fn size_line(len: usize, style: u8, r: &mut Recipe<'_>, out: &mut Vec<u8>) {
    let digits = match style & 3 {
        // Whitespace after the size (RFC 9112's BWS), without an extension.
        0 => format!("{len:x} \t"),
        1 => format!("{len:x}"),
        2 => format!("{len:X}"),
        _ => format!("{len:0width$x}", width = 1 + usize::from(style >> 5)),
    };
    out.extend_from_slice(digits.as_bytes());
    if style & 4 != 0 {
        let space: &[u8] = [&b""[..], b" ", b"\t", b" \t "][usize::from(style >> 3) & 3];
        out.extend_from_slice(space);
        out.push(b';');
        let n = usize::from(r.byte() % 32);
        out.extend_from_slice(&field_bytes(r.take(n)));
    }
    out.extend_from_slice(if style & 0x40 != 0 { b"\n" } else { b"\r\n" });
}

/// `bytes` with everything that may not appear in a field value replaced by `=`.
fn field_bytes(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| if is_field_byte(b) { b } else { b'=' })
        .collect()
}

//! Zero-copy parsing of the Runtime API's HTTP/1.1 responses, `core` only.
//!
//! The caller owns the bytes. [`parse_head`] reads a complete response head and returns a
//! [`Head`] of plain numbers: the status, how the body is framed, and where each
//! `Lambda-Runtime-*` value sits in the buffer (a [`Span`]). Nothing is copied or allocated,
//! and the head stays valid while the caller appends body bytes after it.
//!
//! [`Chunked`] decodes a `Transfer-Encoding: chunked` body in place: chunk data is moved down
//! over the chunk-size lines so the decoded body ends up as one contiguous slice. The first
//! chunk never moves, so a body sent as a single chunk (what Go servers do) costs no copy.
//!
//! Every byte is untrusted: anything malformed is an [`Error`], never a panic, and every
//! length is bounded ([`MAX_HEAD`], [`MAX_LINE`], and the body limit given to [`Chunked`]).

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use core::fmt;

/// The outcome of parsing bytes that may not all have arrived yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsing finished with this value.
    Complete(T),
    /// The input ends before the message does: append more bytes and call again.
    Partial,
}

/// The largest response head (status line and headers) accepted, and the largest trailer
/// section: 64 KiB.
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest chunk-size line (size and extensions) accepted: 4 KiB.
pub const MAX_LINE: usize = 4 * 1024;

/// What is wrong with a response. Each variant names the broken part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The head (or the trailer section) is larger than [`MAX_HEAD`].
    HeadTooLarge,
    /// The status line is not `HTTP/1.0` or `HTTP/1.1`, a 3-digit code and a reason.
    StatusLine,
    /// A header name is empty or holds a character that is not allowed in a token.
    HeaderName,
    /// A header value holds a control character (CR, NUL, DEL, ...).
    HeaderValue,
    /// `Content-Length` is not a plain decimal number, overflows, or appears twice with
    /// different values.
    ContentLength,
    /// `Transfer-Encoding` is not exactly `chunked`, or comes with a `Content-Length`.
    TransferEncoding,
    /// A chunk-size line is not hex digits with optional well-formed extensions, overflows,
    /// or is longer than [`MAX_LINE`].
    ChunkSize,
    /// Chunk data is not followed by a line break.
    ChunkData,
    /// A trailer field is malformed.
    Trailer,
    /// The body is larger than the limit the caller set.
    BodyTooLarge,
}

impl Error {
    /// A lowercase, one-line description, without allocation or formatting machinery.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::HeadTooLarge => "head over 64 KiB",
            Error::StatusLine => "malformed status line",
            Error::HeaderName => "malformed header name",
            Error::HeaderValue => "control character in header value",
            Error::ContentLength => "invalid Content-Length",
            Error::TransferEncoding => "unsupported Transfer-Encoding",
            Error::ChunkSize => "malformed chunk-size line",
            Error::ChunkData => "chunk without its CRLF",
            Error::Trailer => "malformed trailer field",
            Error::BodyTooLarge => "body over the size limit",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A byte range of the buffer a [`Head`] was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// The bytes this span covers in `buf`, or an empty slice if `buf` is too short (it
    /// never panics, even when given the wrong buffer). Out of line: it is called from a
    /// dozen places, and its checks are the same each time.
    #[inline(never)]
    pub fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// The response headers the runtime reads, besides framing. The discriminant indexes
/// [`Head::header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Header {
    /// `Lambda-Runtime-Aws-Request-Id`
    RequestId,
    /// `Lambda-Runtime-Deadline-Ms`
    DeadlineMs,
    /// `Lambda-Runtime-Invoked-Function-Arn`
    InvokedFunctionArn,
    /// `Lambda-Runtime-Trace-Id`
    TraceId,
    /// `Lambda-Runtime-Client-Context`
    ClientContext,
    /// `Lambda-Runtime-Cognito-Identity`
    CognitoIdentity,
    /// `Lambda-Runtime-Aws-Tenant-Id`
    TenantId,
    /// `Lambda-Runtime-Invocation-Id`
    InvocationId,
    /// `Content-Type`
    ContentType,
}

/// How many [`Header`]s there are.
pub(crate) const HEADERS: usize = 9;

impl Header {
    /// Every header, in discriminant order.
    pub const ALL: [Header; HEADERS] = [
        Header::RequestId,
        Header::DeadlineMs,
        Header::InvokedFunctionArn,
        Header::TraceId,
        Header::ClientContext,
        Header::CognitoIdentity,
        Header::TenantId,
        Header::InvocationId,
        Header::ContentType,
    ];
}

/// The lowercase names of the headers the parser looks at: the [`Header`]s in order, then
/// the three framing headers, at these indexes. Only used at compile time, to build
/// [`NAMES`] and [`NAME_ENDS`]: a table of slices would need a relocation per entry in a
/// position-independent binary.
const HEADER_NAMES: [&[u8]; HEADERS + 3] = [
    b"lambda-runtime-aws-request-id",
    b"lambda-runtime-deadline-ms",
    b"lambda-runtime-invoked-function-arn",
    b"lambda-runtime-trace-id",
    b"lambda-runtime-client-context",
    b"lambda-runtime-cognito-identity",
    b"lambda-runtime-aws-tenant-id",
    b"lambda-runtime-invocation-id",
    b"content-type",
    b"content-length",
    b"transfer-encoding",
    b"connection",
];
const CONTENT_LENGTH: usize = HEADERS;
const TRANSFER_ENCODING: usize = HEADERS + 1;
const CONNECTION: usize = HEADERS + 2;

/// [`HEADER_NAMES`] joined.
static NAMES: [u8; names_len()] = join_names();

/// Where each of [`HEADER_NAMES`] ends in [`NAMES`].
static NAME_ENDS: [u16; HEADERS + 3] = name_ends();

// Evaluated at compile time: an index out of range fails the build, never a run.
#[allow(clippy::indexing_slicing)]
const fn names_len() -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < HEADER_NAMES.len() {
        len += HEADER_NAMES[i].len();
        i += 1;
    }
    len
}

// Evaluated at compile time: an index out of range fails the build, never a run.
#[allow(clippy::indexing_slicing)]
const fn join_names() -> [u8; names_len()] {
    let mut out = [0; names_len()];
    let (mut i, mut at) = (0, 0);
    while i < HEADER_NAMES.len() {
        let mut j = 0;
        while j < HEADER_NAMES[i].len() {
            out[at] = HEADER_NAMES[i][j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

// Evaluated at compile time: an index out of range fails the build, never a run.
#[allow(clippy::indexing_slicing)]
const fn name_ends() -> [u16; HEADERS + 3] {
    let mut out = [0; HEADERS + 3];
    let (mut i, mut end) = (0, 0);
    while i < HEADER_NAMES.len() {
        end += HEADER_NAMES[i].len();
        out[i] = end as u16;
        i += 1;
    }
    out
}

/// The index in [`HEADER_NAMES`] of `name`, compared without ASCII case.
fn known_header(name: &[u8]) -> Option<usize> {
    let mut start = 0;
    for (i, &end) in NAME_ENDS.iter().enumerate() {
        let known = NAMES.get(start..usize::from(end)).unwrap_or_default();
        if eq_lowercase(name, known) {
            return Some(i);
        }
        start = usize::from(end);
    }
    None
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a 1xx, 204 or 304 status.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`: decode with [`Chunked`].
    Chunked,
    /// Neither length nor chunked: the body runs until the server closes the connection.
    UntilClose,
}

/// A parsed response head. It holds offsets, not references, so the buffer stays free to
/// receive the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code, 100 to 999.
    pub status: u16,
    /// The length of the head in bytes, including the blank line: the body starts here.
    pub len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    /// Where each header's value is; [`ABSENT`] for a header that was not sent.
    fields: [Span; HEADERS],
}

/// The span of a header that was not sent (its start is past its end).
const ABSENT: Span = Span { start: 1, end: 0 };

impl Head {
    /// A placeholder head: status 0, no body, no headers.
    pub const EMPTY: Head = Head {
        status: 0,
        len: 0,
        framing: Framing::Empty,
        keep_alive: false,
        fields: [ABSENT; HEADERS],
    };

    /// Where the first occurrence of `header` sits in the buffer, if the header was sent.
    pub fn header(&self, header: Header) -> Option<Span> {
        self.fields
            .get(header as usize)
            .copied()
            .filter(|&span| span != ABSENT)
    }
}

/// Finds the end of a response head in `buf`: the offset just past the blank line. Scanning
/// starts at `from` (pass the previous buffer length minus 3 to resume without rescanning).
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(nl) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let at = i + nl;
        match buf.get(at + 1..) {
            Some([b'\n', ..]) => return Some(at + 2),
            Some([b'\r', b'\n', ..]) => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

/// Parses a response head at the start of `buf`.
///
/// Returns `Partial` until the blank line that ends the head has arrived, then the head.
/// Header names are matched case-insensitively; a line may end in CRLF or a bare LF.
///
/// # Errors
/// A head over [`MAX_HEAD`], a malformed status line or header, a `Content-Length` that is
/// not a number, or a `Transfer-Encoding` other than `chunked`.
pub fn parse_head(buf: &[u8]) -> Result<Status<Head>, Error> {
    let Some(len) = head_end(buf, 0) else {
        return if buf.len() > MAX_HEAD {
            Err(Error::HeadTooLarge)
        } else {
            Ok(Status::Partial)
        };
    };
    if len > MAX_HEAD {
        return Err(Error::HeadTooLarge);
    }
    let mut lines = Lines {
        buf,
        pos: 0,
        end: len,
    };
    let (minor, status) = parse_status_line(lines.next().unwrap_or_default())?;

    let mut head = Head {
        status,
        len,
        framing: Framing::UntilClose,
        keep_alive: minor == 1,
        fields: [ABSENT; HEADERS],
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    while let Some(line) = lines.next() {
        if line.0.is_empty() {
            break;
        }
        let (name, value) = split_field(line, Error::HeaderName, Error::HeaderValue)?;
        let value_bytes = value.get(buf);
        match known_header(name) {
            Some(CONTENT_LENGTH) => {
                let n = parse_decimal(value_bytes).ok_or(Error::ContentLength)?;
                if length.is_some_and(|old| old != n) {
                    return Err(Error::ContentLength);
                }
                length = Some(n);
            }
            Some(TRANSFER_ENCODING) => {
                if chunked || !eq_lowercase(value_bytes, b"chunked") {
                    return Err(Error::TransferEncoding);
                }
                chunked = true;
            }
            Some(CONNECTION) => {
                for option in value_bytes.split(|&b| b == b',') {
                    let option = trim_ows(option);
                    close |= eq_lowercase(option, b"close");
                    keep_alive |= eq_lowercase(option, b"keep-alive");
                }
            }
            Some(i) => {
                if let Some(field) = head.fields.get_mut(i).filter(|field| **field == ABSENT) {
                    *field = value;
                }
            }
            None => {}
        }
    }

    if chunked && length.is_some() {
        return Err(Error::TransferEncoding);
    }
    head.keep_alive = !close && (minor == 1 || keep_alive);
    head.framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        head.keep_alive = false;
        Framing::UntilClose
    };
    Ok(Status::Complete(head))
}

/// Lines of `buf[pos..end]`, split at LF with one trailing CR removed, as spans.
struct Lines<'b> {
    buf: &'b [u8],
    pos: usize,
    end: usize,
}

impl<'b> Lines<'b> {
    fn next(&mut self) -> Option<(&'b [u8], Span)> {
        let rest = self.buf.get(self.pos..self.end)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let start = self.pos;
        self.pos += nl + 1;
        let mut line = rest.get(..nl)?;
        if let [body @ .., b'\r'] = line {
            line = body;
        }
        Some((line, span(start, start + line.len())))
    }
}

fn span(start: usize, end: usize) -> Span {
    // Heads are at most MAX_HEAD bytes, so offsets fit in u32.
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// `HTTP/1.x NNN reason` → (x, NNN).
fn parse_status_line((line, _): (&[u8], Span)) -> Result<(u8, u16), Error> {
    let (minor, rest) = match line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor @ (b'0' | b'1'),
            rest @ ..,
        ] => (minor - b'0', rest),
        _ => return Err(Error::StatusLine),
    };
    let (code, reason) = match rest {
        [
            b' ',
            a @ b'1'..=b'9',
            b @ b'0'..=b'9',
            c @ b'0'..=b'9',
            reason @ ..,
        ] => {
            let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            (code, reason)
        }
        _ => return Err(Error::StatusLine),
    };
    match reason {
        [] => {}
        [b' ', text @ ..] if text.iter().all(|&b| is_field_byte(b)) => {}
        _ => return Err(Error::StatusLine),
    }
    Ok((minor, code))
}

/// Splits `name: value` into the name and the span of the value without surrounding
/// whitespace, checking both.
fn split_field(
    (line, at): (&[u8], Span),
    name_error: Error,
    value_error: Error,
) -> Result<(&[u8], Span), Error> {
    let colon = line.iter().position(|&b| b == b':').ok_or(name_error)?;
    let (name, value) = line.split_at_checked(colon).ok_or(name_error)?;
    let value = value.get(1..).unwrap_or_default();
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return Err(name_error);
    }
    if !value.iter().all(|&b| is_field_byte(b)) {
        return Err(value_error);
    }
    let leading = value.len() - trim_start_ows(value).len();
    let trimmed = trim_ows(value);
    let start = at.start as usize + colon + 1 + leading;
    Ok((name, span(start, start + trimmed.len())))
}

/// Whether `bytes` equals `lowercase` ignoring ASCII case (`lowercase` must be lowercase).
pub(crate) fn eq_lowercase(bytes: &[u8], lowercase: &[u8]) -> bool {
    bytes.len() == lowercase.len()
        && bytes
            .iter()
            .zip(lowercase)
            .all(|(b, l)| b.to_ascii_lowercase() == *l)
}

/// `tchar` from RFC 9110: the characters of header names and chunk-extension names.
fn is_token(b: u8) -> bool {
    matches!(b,
        b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z' | b'^'..=b'z' | b'|' | b'~')
}

/// A byte allowed in a field value or reason phrase: HTAB, SP, visible ASCII, obs-text.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start_ows(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_ows(b)).count();
    s.get(n..).unwrap_or_default()
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let s = trim_start_ows(s);
    let n = s.iter().rev().take_while(|&&b| is_ows(b)).count();
    s.get(..s.len() - n).unwrap_or_default()
}

/// The value of the first header called `name` (compared without ASCII case) in a complete
/// response head, for headers [`Head`] does not keep. `None` when it is absent or the head
/// is malformed.
#[cfg(feature = "graceful-shutdown")]
pub fn find_header<'b>(head: &'b [u8], name: &str) -> Option<&'b [u8]> {
    let end = head_end(head, 0)?;
    let mut lines = Lines {
        buf: head,
        pos: 0,
        end,
    };
    lines.next()?;
    while let Some(line) = lines.next() {
        if line.0.is_empty() {
            break;
        }
        let (field, value) = split_field(line, Error::HeaderName, Error::HeaderValue).ok()?;
        if field.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(value.get(head));
        }
    }
    None
}

/// Parses a non-empty run of ASCII digits into a u64, or `None` on anything else or
/// overflow.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Where a chunked body ended up in the buffer given to [`Chunked::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body {
    /// Offset of the first decoded byte.
    pub start: usize,
    /// Offset one past the last decoded byte.
    pub end: usize,
    /// How many bytes of the buffer the chunked encoding used, up to and including the
    /// final blank line. Bytes after this were not part of the response.
    pub consumed: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size,
    Data,
    DataEnd,
    Trailer,
    Done,
}

/// An in-place decoder for a `Transfer-Encoding: chunked` body.
///
/// Give it the bytes after the head, as many as have arrived, again and again as more
/// arrive. Decoded data is gathered at the front, right after the first chunk-size line.
/// Between calls, [`Chunked::compact`] moves the undecoded tail down so the buffer holds no
/// dead bytes; the buffer only ever needs to be as large as the body plus one read.
#[derive(Clone, Debug)]
pub struct Chunked {
    state: State,
    /// Data bytes left in the current chunk.
    remaining: u64,
    /// Start of decoded data, once the first size line is read.
    start: Option<usize>,
    /// End of decoded data.
    out: usize,
    /// Start of bytes not decoded yet.
    pos: usize,
    /// Bytes of trailer fields read so far.
    trailer: usize,
    /// Largest decoded body allowed.
    limit: u64,
}

impl Chunked {
    /// A decoder that fails with [`Error::BodyTooLarge`] once the decoded body would exceed
    /// `limit` bytes.
    pub const fn new(limit: u64) -> Self {
        Chunked {
            state: State::Size,
            remaining: 0,
            start: None,
            out: 0,
            pos: 0,
            trailer: 0,
            limit,
        }
    }

    /// Decodes as much of `buf` as possible. `buf` is everything received after the head
    /// (compacted by [`Chunked::compact`] if it was called), including the bytes decoded by
    /// earlier calls.
    ///
    /// # Errors
    /// A malformed size line, extension or trailer, missing line breaks after chunk data,
    /// or a body over the limit.
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Status<Body>, Error> {
        loop {
            let rest = buf.get(self.pos..).unwrap_or_default();
            match self.state {
                State::Size => {
                    let Some(line) = take_line(rest, MAX_LINE, Error::ChunkSize)? else {
                        return Ok(Status::Partial);
                    };
                    let size = parse_chunk_size(line.text)?;
                    self.pos += line.used;
                    let start = *self.start.get_or_insert(self.pos);
                    if self.out < start {
                        self.out = start;
                    }
                    let decoded = (self.out - start) as u64;
                    if size > self.limit.saturating_sub(decoded) {
                        return Err(Error::BodyTooLarge);
                    }
                    self.remaining = size;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    if rest.is_empty() {
                        return Ok(Status::Partial);
                    }
                    let n = rest
                        .len()
                        .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                    if self.out != self.pos {
                        move_bytes(buf, self.pos, self.pos + n, self.out);
                    }
                    self.out += n;
                    self.pos += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataEnd;
                    }
                }
                State::DataEnd => match rest {
                    [b'\n', ..] => {
                        self.pos += 1;
                        self.state = State::Size;
                    }
                    [b'\r', b'\n', ..] => {
                        self.pos += 2;
                        self.state = State::Size;
                    }
                    [] | [b'\r'] => return Ok(Status::Partial),
                    _ => return Err(Error::ChunkData),
                },
                State::Trailer => {
                    let room = MAX_HEAD - self.trailer;
                    let Some(line) = take_line(rest, room, Error::HeadTooLarge)? else {
                        return Ok(Status::Partial);
                    };
                    self.pos += line.used;
                    self.trailer += line.used;
                    if line.text.is_empty() {
                        self.state = State::Done;
                    } else {
                        split_field((line.text, Span::default()), Error::Trailer, Error::Trailer)?;
                    }
                }
                State::Done => {
                    let start = self.start.unwrap_or(self.pos);
                    return Ok(Status::Complete(Body {
                        start,
                        end: self.out.max(start),
                        consumed: self.pos,
                    }));
                }
            }
        }
    }

    /// Moves the bytes not decoded yet down to the end of the decoded data and returns the
    /// new length of the buffer's meaningful part. Call it with the same `buf` as the last
    /// [`Chunked::decode`], before appending more bytes after the returned length.
    pub fn compact(&mut self, buf: &mut [u8]) -> usize {
        let len = buf.len();
        let Some(start) = self.start else {
            return len;
        };
        let out = self.out.max(start);
        if self.pos > out && self.pos <= len {
            move_bytes(buf, self.pos, len, out);
            let new_len = out + (len - self.pos);
            self.pos = out;
            self.out = out;
            return new_len;
        }
        len
    }
}

/// `buf.copy_within(start..end, dest)` for a move down (`dest <= start`) when the ranges
/// fit in `buf`, and nothing otherwise: checked here once so that no call site carries a
/// panic path.
pub(crate) fn move_bytes(buf: &mut [u8], start: usize, end: usize, dest: usize) {
    let (Some(from), Some(window)) = (start.checked_sub(dest), buf.get_mut(dest..end)) else {
        return;
    };
    if from <= window.len() {
        window.copy_within(from.., 0);
    }
}

struct Line<'b> {
    /// The line without its line break.
    text: &'b [u8],
    /// Bytes consumed including the line break.
    used: usize,
}

/// The first line of `rest`, if its line break has arrived. A line longer than `max` bytes
/// (or one that is already too long without a line break) is `too_long`.
fn take_line(rest: &[u8], max: usize, too_long: Error) -> Result<Option<Line<'_>>, Error> {
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return if rest.len() > max {
            Err(too_long)
        } else {
            Ok(None)
        };
    };
    if nl + 1 > max {
        return Err(too_long);
    }
    let mut text = rest.get(..nl).unwrap_or_default();
    if let [body @ .., b'\r'] = text {
        text = body;
    }
    Ok(Some(Line { text, used: nl + 1 }))
}

/// `1*HEXDIG [ BWS ";" ext ]`: the size in hex, then optionally extensions, which are
/// ignored, so they are only checked for control characters.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, ext) = line.split_at_checked(digits).unwrap_or_default();
    if hex.is_empty() {
        return Err(Error::ChunkSize);
    }
    let mut size: u64 = 0;
    for &b in hex {
        let digit = (b as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or(Error::ChunkSize)?;
    }
    match trim_start_ows(ext) {
        [] => Ok(size),
        [b';', ext @ ..] if ext.iter().all(|&b| is_field_byte(b)) => Ok(size),
        _ => Err(Error::ChunkSize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 20;

    fn head(buf: &[u8]) -> Head {
        match parse_head(buf) {
            Ok(Status::Complete(h)) => h,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    fn field<'b>(buf: &'b [u8], h: &Head, f: Header) -> Option<&'b [u8]> {
        h.header(f).map(|s| s.get(buf))
    }

    /// Decodes a whole chunked body in one call and returns it.
    fn dechunk(raw: &[u8]) -> Result<Vec<u8>, Error> {
        let mut buf = raw.to_vec();
        match Chunked::new(LIMIT).decode(&mut buf)? {
            Status::Complete(b) => Ok(buf[b.start..b.end].to_vec()),
            Status::Partial => Err(Error::ChunkData),
        }
    }

    /// Feeds `raw` (head and body) in pieces of the given sizes, the way a socket would, and
    /// returns the head and the body. The buffer is compacted between reads like the
    /// transport does.
    fn feed(raw: &[u8], pieces: &[usize]) -> Result<(Head, Vec<u8>), Error> {
        let mut buf = Vec::new();
        let mut sent = 0;
        let mut next_piece = pieces.iter().cycle();
        let mut read = |buf: &mut Vec<u8>| -> bool {
            if sent == raw.len() {
                return false;
            }
            let n = (*next_piece.next().unwrap()).clamp(1, raw.len() - sent);
            buf.extend_from_slice(&raw[sent..sent + n]);
            sent += n;
            true
        };
        let h = loop {
            match parse_head(&buf)? {
                Status::Complete(h) => break h,
                Status::Partial => assert!(read(&mut buf), "eof inside head"),
            }
        };
        match h.framing {
            Framing::Chunked => {
                let mut dec = Chunked::new(LIMIT);
                loop {
                    let mut body = buf.split_off(h.len);
                    let status = dec.decode(&mut body)?;
                    if let Status::Complete(b) = status {
                        assert_eq!(b.consumed, body.len(), "nothing follows in these tests");
                        return Ok((h, body[b.start..b.end].to_vec()));
                    }
                    let keep = dec.compact(&mut body);
                    body.truncate(keep);
                    buf.extend_from_slice(&body);
                    assert!(read(&mut buf), "eof inside chunked body");
                }
            }
            Framing::Length(n) => {
                while buf.len() < h.len + n as usize {
                    assert!(read(&mut buf), "eof inside body");
                }
                Ok((h, buf[h.len..].to_vec()))
            }
            _ => Ok((h, Vec::new())),
        }
    }

    const NEXT: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: application/json\r\n\
Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n\
Lambda-Runtime-Deadline-Ms: 1542409706888\r\n\
Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-2:123456789012:function:custom-runtime\r\n\
Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\
Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
Content-Length: 17\r\n\
\r\n\
{\"hello\":\"world\"}";

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\n\
lambda-runtime-aws-request-id: abc\r\n\
transfer-encoding: chunked\r\n\
\r\n\
5;name=value\r\nhello\r\n\
1 ; quoted = \"a \\\" b\" ; flag\r\n \r\n\
6\r\nworld!\r\n\
0\r\nSome-Trailer: yes\r\nOther: 1\r\n\r\n";

    #[test]
    fn next_response_with_content_length_gives_every_lambda_header() {
        let h = head(NEXT);
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(17));
        assert!(h.keep_alive);
        assert_eq!(&NEXT[h.len..], b"{\"hello\":\"world\"}");
        let f = |x| field(NEXT, &h, x);
        assert_eq!(
            f(Header::RequestId),
            Some(&b"8476a536-e9f4-11e8-9739-2dfe598c3fcd"[..])
        );
        assert_eq!(f(Header::DeadlineMs), Some(&b"1542409706888"[..]));
        assert_eq!(
            f(Header::InvokedFunctionArn),
            Some(&b"arn:aws:lambda:us-east-2:123456789012:function:custom-runtime"[..])
        );
        assert!(f(Header::TraceId).unwrap().starts_with(b"Root=1-5bef4de7"));
        assert_eq!(f(Header::ContentType), Some(&b"application/json"[..]));
        assert_eq!(f(Header::ClientContext), None);
        assert_eq!(f(Header::CognitoIdentity), None);
        assert_eq!(f(Header::TenantId), None);
        assert_eq!(f(Header::InvocationId), None);
    }

    #[test]
    fn header_names_match_in_any_case_and_values_lose_surrounding_whitespace() {
        let raw = b"HTTP/1.1 200 OK\r\nLAMBDA-runtime-AWS-request-ID: \t id-1 \t\r\n\
lambda-runtime-invocation-id:nonce\r\nCONTENT-LENGTH: 0\r\n\r\n";
        let h = head(raw);
        assert_eq!(field(raw, &h, Header::RequestId), Some(&b"id-1"[..]));
        assert_eq!(field(raw, &h, Header::InvocationId), Some(&b"nonce"[..]));
        assert_eq!(h.framing, Framing::Length(0));
    }

    #[test]
    fn first_occurrence_of_a_repeated_lambda_header_wins() {
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: one\r\n\
Lambda-Runtime-Aws-Request-Id: two\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(field(raw, &head(raw), Header::RequestId), Some(&b"one"[..]));
    }

    #[test]
    fn empty_header_value_is_present_but_empty() {
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Trace-Id:\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(field(raw, &head(raw), Header::TraceId), Some(&b""[..]));
    }

    #[test]
    fn bare_lf_line_endings_are_accepted() {
        let raw = b"HTTP/1.1 202 Accepted\nContent-Length: 2\n\nok";
        let h = head(raw);
        assert_eq!(
            (h.status, h.framing, &raw[h.len..]),
            (202, Framing::Length(2), &b"ok"[..])
        );
    }

    #[test]
    fn status_line_without_reason_is_accepted() {
        assert_eq!(head(b"HTTP/1.1 204\r\n\r\n").status, 204);
        assert_eq!(
            head(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").status,
            200
        );
    }

    #[test]
    fn connection_close_and_http_1_0_turn_off_keep_alive() {
        assert!(
            !head(b"HTTP/1.1 202 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert!(
            !head(b"HTTP/1.1 202 OK\r\nConnection: foo, CLOSE\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        assert!(!head(b"HTTP/1.0 202 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            head(b"HTTP/1.0 202 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        assert!(
            head(b"HTTP/1.1 202 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
    }

    #[test]
    fn body_without_framing_runs_until_close() {
        let h = head(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: x\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
    }

    #[test]
    fn informational_204_and_304_have_no_body() {
        for raw in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(head(raw).framing, Framing::Empty);
        }
    }

    #[test]
    fn head_is_partial_until_the_blank_line_arrives() {
        for end in 0..NEXT.len() {
            let prefix = &NEXT[..end];
            let complete = head_end(prefix, 0).is_some();
            match parse_head(prefix) {
                Ok(Status::Partial) => assert!(!complete, "prefix {end}"),
                Ok(Status::Complete(h)) => assert_eq!(h.len, head_end(NEXT, 0).unwrap()),
                Err(e) => panic!("prefix of {end} bytes gave {e:?}"),
            }
        }
    }

    #[test]
    fn head_end_resumes_from_an_offset() {
        let end = head_end(NEXT, 0).unwrap();
        for from in 0..end.saturating_sub(3) {
            assert_eq!(head_end(NEXT, from), Some(end));
        }
        assert_eq!(head_end(b"abc\r\n\r\n", 100), None);
    }

    #[test]
    fn every_split_point_of_a_content_length_response_gives_the_same_result() {
        let whole = feed(NEXT, &[NEXT.len()]).unwrap();
        for piece in 1..NEXT.len() {
            assert_eq!(feed(NEXT, &[piece]).unwrap(), whole, "pieces of {piece}");
        }
        for split in 1..NEXT.len() {
            assert_eq!(
                feed(NEXT, &[split, NEXT.len()]).unwrap(),
                whole,
                "split at {split}"
            );
        }
    }

    #[test]
    fn every_split_point_of_a_chunked_response_gives_the_same_body() {
        for split in 1..CHUNKED.len() {
            let (h, body) = feed(CHUNKED, &[split, CHUNKED.len()]).unwrap();
            assert_eq!(body, b"hello world!", "split at {split}");
            assert_eq!(field(CHUNKED, &h, Header::RequestId), Some(&b"abc"[..]));
        }
        for piece in 1..8 {
            assert_eq!(
                feed(CHUNKED, &[piece]).unwrap().1,
                b"hello world!",
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_decodes() {
        let h = head(CHUNKED);
        assert_eq!(h.framing, Framing::Chunked);
        let mut body = CHUNKED[h.len..].to_vec();
        let Status::Complete(b) = Chunked::new(LIMIT).decode(&mut body).unwrap() else {
            panic!("partial")
        };
        assert_eq!(&body[b.start..b.end], b"hello world!");
        assert_eq!(b.consumed, body.len());
    }

    #[test]
    fn single_chunk_body_is_not_moved() {
        let mut raw = b"4\r\nabcd\r\n0\r\n\r\n".to_vec();
        let Status::Complete(b) = Chunked::new(LIMIT).decode(&mut raw).unwrap() else {
            panic!("partial")
        };
        assert_eq!((b.start, b.end), (3, 7));
    }

    #[test]
    fn chunk_extensions_are_ignored_whatever_their_syntax() {
        for ext in [
            &b";"[..],
            b";a=",
            b";a=\"x",
            b"\t; name = \"v;1\" ; flag",
            b";\xc3\xa9",
        ] {
            let mut raw = b"5".to_vec();
            raw.extend_from_slice(ext);
            raw.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            assert_eq!(dechunk(&raw).unwrap(), b"hello", "{ext:?}");
        }
    }

    #[test]
    fn empty_chunked_body_decodes_to_nothing() {
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap(), b"");
        assert_eq!(dechunk(b"000\n\n").unwrap(), b"");
    }

    #[test]
    fn chunk_sizes_are_hex_in_either_case() {
        let mut raw = b"A\r\n0123456789\r\nb\r\nabcdefghijk\r\n".to_vec();
        raw.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(dechunk(&raw).unwrap(), b"0123456789abcdefghijk");
    }

    #[test]
    fn bytes_after_the_chunked_body_are_not_consumed() {
        let mut raw = b"1\r\nx\r\n0\r\n\r\nHTTP/1.1".to_vec();
        let Status::Complete(b) = Chunked::new(LIMIT).decode(&mut raw).unwrap() else {
            panic!("partial")
        };
        assert_eq!(b.consumed, raw.len() - 8);
    }

    #[test]
    fn chunked_body_over_the_limit_is_refused_before_its_data_arrives() {
        let mut raw = b"5\r\nhello\r\n6\r\n".to_vec();
        assert_eq!(Chunked::new(10).decode(&mut raw), Err(Error::BodyTooLarge));
        let mut raw = b"ffffffffffffffff\r\n".to_vec();
        assert_eq!(
            Chunked::new(LIMIT).decode(&mut raw),
            Err(Error::BodyTooLarge)
        );
        let mut raw = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n".to_vec();
        assert!(matches!(
            Chunked::new(10).decode(&mut raw),
            Ok(Status::Complete(_))
        ));
    }

    #[test]
    fn endless_chunk_size_line_is_refused() {
        let mut raw = vec![b'0'; MAX_LINE + 1];
        assert_eq!(Chunked::new(LIMIT).decode(&mut raw), Err(Error::ChunkSize));
        let mut raw = vec![b'1'; 100];
        raw.extend_from_slice(b"\r\n");
        assert_eq!(
            Chunked::new(LIMIT).decode(&mut raw),
            Err(Error::ChunkSize),
            "overflow"
        );
    }

    #[test]
    fn endless_trailer_section_is_refused() {
        let mut raw = b"0\r\n".to_vec();
        while raw.len() < MAX_HEAD + 100 {
            raw.extend_from_slice(b"X-Pad: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(
            Chunked::new(LIMIT).decode(&mut raw),
            Err(Error::HeadTooLarge)
        );
    }

    macro_rules! bad_chunked {
        ($($name:ident: $raw:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(dechunk($raw), Err($err));
            }
        )*};
    }

    bad_chunked! {
        chunk_size_that_is_not_hex_is_rejected: b"zz\r\n\r\n" => Error::ChunkSize;
        chunk_size_line_that_is_empty_is_rejected: b"\r\nabc" => Error::ChunkSize;
        negative_chunk_size_is_rejected: b"-1\r\n\r\n" => Error::ChunkSize;
        chunk_size_with_junk_after_it_is_rejected: b"5 x\r\nhello\r\n0\r\n\r\n" => Error::ChunkSize;
        control_character_in_extension_is_rejected: b"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n" => Error::ChunkSize;
        chunk_data_longer_than_its_size_is_rejected: b"3\r\nhello\r\n0\r\n\r\n" => Error::ChunkData;
        chunk_data_followed_by_bare_cr_is_rejected: b"5\r\nhello\rx0\r\n\r\n" => Error::ChunkData;
        trailer_without_colon_is_rejected: b"0\r\nnot a field\r\n\r\n" => Error::Trailer;
        trailer_with_control_character_is_rejected: b"0\r\nX: a\x00b\r\n\r\n" => Error::Trailer;
    }

    #[test]
    fn truncated_chunked_bodies_stay_partial() {
        for raw in [
            &b""[..],
            b"5",
            b"5\r",
            b"5\r\nhel",
            b"5\r\nhello",
            b"5\r\nhello\r",
            b"5\r\nhello\r\n0\r\n",
            b"5\r\nhello\r\n0\r\nTrailer: x\r\n",
        ] {
            let mut buf = raw.to_vec();
            assert_eq!(
                Chunked::new(LIMIT).decode(&mut buf),
                Ok(Status::Partial),
                "{raw:?}"
            );
        }
    }

    macro_rules! bad_head {
        ($($name:ident: $raw:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse_head($raw), Err($err));
            }
        )*};
    }

    bad_head! {
        http_2_status_line_is_rejected: b"HTTP/2 200 OK\r\n\r\n" => Error::StatusLine;
        http_1_2_status_line_is_rejected: b"HTTP/1.2 200 OK\r\n\r\n" => Error::StatusLine;
        lowercase_protocol_is_rejected: b"http/1.1 200 OK\r\n\r\n" => Error::StatusLine;
        two_digit_status_is_rejected: b"HTTP/1.1 20 OK\r\n\r\n" => Error::StatusLine;
        four_digit_status_is_rejected: b"HTTP/1.1 2000 OK\r\n\r\n" => Error::StatusLine;
        status_below_100_is_rejected: b"HTTP/1.1 099 OK\r\n\r\n" => Error::StatusLine;
        missing_space_after_version_is_rejected: b"HTTP/1.1200 OK\r\n\r\n" => Error::StatusLine;
        control_character_in_reason_is_rejected: b"HTTP/1.1 200 O\x00K\r\n\r\n" => Error::StatusLine;
        empty_status_line_is_rejected: b"\r\n\r\n" => Error::StatusLine;
        header_without_colon_is_rejected: b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n" => Error::HeaderName;
        header_with_empty_name_is_rejected: b"HTTP/1.1 200 OK\r\n: value\r\n\r\n" => Error::HeaderName;
        space_before_colon_is_rejected: b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx" => Error::HeaderName;
        folded_header_line_is_rejected: b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n" => Error::HeaderName;
        bare_cr_in_value_is_rejected: b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n" => Error::HeaderValue;
        nul_in_value_is_rejected: b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n" => Error::HeaderValue;
        del_in_value_is_rejected: b"HTTP/1.1 200 OK\r\nA: b\x7fc\r\n\r\n" => Error::HeaderValue;
        non_numeric_content_length_is_rejected: b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n" => Error::ContentLength;
        signed_content_length_is_rejected: b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n" => Error::ContentLength;
        empty_content_length_is_rejected: b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n" => Error::ContentLength;
        overflowing_content_length_is_rejected: b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n" => Error::ContentLength;
        conflicting_content_lengths_are_rejected: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" => Error::ContentLength;
        gzip_transfer_encoding_is_rejected: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => Error::TransferEncoding;
        double_chunked_is_rejected: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => Error::TransferEncoding;
        chunked_with_content_length_is_rejected: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" => Error::TransferEncoding;
    }

    #[test]
    fn repeated_equal_content_lengths_are_accepted() {
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(h.framing, Framing::Length(3));
    }

    #[test]
    fn obs_text_in_a_value_is_kept() {
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Client-Context: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            field(raw, &head(raw), Header::ClientContext),
            Some(&b"caf\xc3\xa9"[..])
        );
    }

    #[test]
    fn head_over_64_kib_is_rejected_even_before_it_ends() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        while raw.len() <= MAX_HEAD {
            raw.extend_from_slice(b"X-Pad: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(parse_head(&raw), Err(Error::HeadTooLarge));
        raw.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&raw), Err(Error::HeadTooLarge));
    }

    #[test]
    fn head_of_exactly_64_kib_is_accepted() {
        let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ".to_vec();
        raw.resize(MAX_HEAD - 4, b'a');
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head(&raw).len, MAX_HEAD);
    }

    #[test]
    fn span_from_another_buffer_is_empty_not_a_panic() {
        let s = Span { start: 10, end: 20 };
        assert_eq!(s.get(b"short"), b"");
        assert_eq!(Span { start: 3, end: 1 }.get(b"abcdef"), b"");
    }

    #[cfg(feature = "graceful-shutdown")]
    #[test]
    fn find_header_reads_headers_the_head_does_not_keep() {
        let raw = b"HTTP/1.1 200 OK\r\nlambda-extension-identifier:  abc-123 \r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            find_header(raw, "Lambda-Extension-Identifier"),
            Some(&b"abc-123"[..])
        );
        assert_eq!(find_header(raw, "X-Missing"), None);
        assert_eq!(find_header(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n", "X"), None);
        assert_eq!(
            find_header(b"HTTP/1.1 200 OK\r\n", "X"),
            None,
            "incomplete head"
        );
    }

    #[test]
    fn decimal_parsing_is_strict() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b" 1"), None);
        assert_eq!(parse_decimal(b"1.5"), None);
    }

    #[test]
    fn every_error_has_a_one_line_message() {
        for e in [
            Error::HeadTooLarge,
            Error::StatusLine,
            Error::HeaderName,
            Error::HeaderValue,
            Error::ContentLength,
            Error::TransferEncoding,
            Error::ChunkSize,
            Error::ChunkData,
            Error::Trailer,
            Error::BodyTooLarge,
        ] {
            let s = e.as_str();
            assert!(
                !s.is_empty() && !s.contains('\n') && !s.ends_with('.'),
                "{s}"
            );
        }
    }
}

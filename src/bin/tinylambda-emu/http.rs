//! Server-side HTTP/1.1, just what the two endpoints need: request heads parsed in place,
//! bodies framed by `Content-Length` or `Transfer-Encoding: chunked` (decoded in place by
//! `tinylambda::parse::Chunked`), keep-alive, `Expect: 100-continue`, and responses written
//! with one vectored write. Each connection reuses one receive buffer and one head buffer.
//!
//! Streamed bodies go both ways without being gathered: a request body can be read piece by
//! piece as it arrives ([`Conn::read_piece`], chunked or not, with its trailer fields), and a
//! response can be written as chunks ([`Conn::send_chunk`], [`Conn::end_chunks`] with
//! trailers).
//!
//! No header value written ever holds a line break: a request whose header values hold a
//! control character (other than a tab) is refused (400, as Go's server behind Lambda's
//! and AWS's emulator refuses it), and every value written has CR and LF replaced by
//! spaces (as Go's `Header.Write` does), whatever its source.

use std::ffi::c_int;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tinylambda::parse::{Chunked, MAX_HEAD, Status, head_end, parse_decimal};

/// Room for one read beyond a body's limit (chunk framing, trailers, a pipelined request).
const SLACK: usize = MAX_HEAD + 4096;

/// How long [`Conn::drain_and_close`] waits for more bytes from a client it is refusing.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// At most this much is read and thrown away by [`Conn::drain_and_close`].
const DRAIN_MAX: u64 = 1 << 30;

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (0 when the request has neither header).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head: offsets into the connection's buffer.
#[derive(Clone, Debug)]
pub struct Head {
    method: Range<usize>,
    target: Range<usize>,
    /// The header lines (without the request line and the blank line).
    fields: Range<usize>,
    /// Bytes of the head, including the blank line.
    len: usize,
    /// How the body is framed.
    pub framing: Framing,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// Whether the request is HTTP/1.0 (else HTTP/1.1).
    pub http10: bool,
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection failed or closed mid-request.
    Io,
    /// The request is malformed: answer 400 with this reason and close.
    Bad(&'static str),
    /// `Transfer-Encoding` other than `chunked`: answer 501 and close.
    Unsupported,
}

/// The longest chunk-size line accepted in a streamed body (extensions included).
const MAX_SIZE_LINE: usize = 4096;

/// Where [`Conn::read_piece`] is in a body it streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PieceState {
    /// `Content-Length` framing: this many bytes left.
    Length(u64),
    /// Chunked: at a chunk-size line.
    Size,
    /// Chunked: this many data bytes left in the current chunk.
    Data(u64),
    /// Chunked: the line break after a chunk's data.
    DataEnd,
    /// Chunked: in the trailer section.
    Trailer,
    /// The body has ended.
    Done,
}

/// The state of a request body read piece by piece, and the trailer fields it ended with.
#[derive(Debug)]
pub struct Pieces {
    state: PieceState,
    trailer_bytes: usize,
    /// The trailer fields (name, value), in order.
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Pieces {
    /// The value of the trailer field `name` (ASCII case ignored), once the body has ended.
    pub fn trailer(&self, name: &str) -> Option<&[u8]> {
        self.trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }
}

/// The outcome of reading a body.
pub enum Body {
    /// The body is at this range of [`Conn::bytes`].
    Complete(Range<usize>),
    /// The body is larger than the limit given: answer 413 and close.
    TooLarge,
}

/// One accepted connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
    /// Bytes at the front of `buf` that belong to the request being handled.
    used: usize,
    /// Response heads are written here.
    out: Vec<u8>,
    /// How long one response, or one chunk of one, may take to write (none: no limit).
    write_limit: Option<Duration>,
}

impl Conn {
    /// From now on, a response (or one chunk of a chunked response, or its end) that
    /// cannot be written whole within `limit` fails: the peer has stopped reading.
    pub fn set_write_limit(&mut self, limit: Duration) {
        self.write_limit = Some(limit);
    }

    /// Wraps an accepted stream (sets `TCP_NODELAY`: responses are single writes).
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
            used: 0,
            out: Vec::with_capacity(1024),
            write_limit: None,
        }
    }

    /// The connection's receive buffer (heads and bodies are ranges of it).
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Reads the next request head. `Ok(None)` when the client closed the connection
    /// cleanly between requests.
    pub fn read_head(&mut self) -> Result<Option<Head>, ReadError> {
        // Drop the previous request; keep what the client pipelined after it.
        if self.used > 0 {
            self.buf.copy_within(self.used..self.filled, 0);
            self.filled -= self.used;
            self.used = 0;
        }
        let mut scan = 0;
        loop {
            if let Some(end) = head_end(&self.buf[..self.filled], scan) {
                let head = parse_head(&self.buf[..end])?;
                self.used = end;
                return Ok(Some(head));
            }
            scan = self.filled.saturating_sub(3);
            if self.filled > MAX_HEAD {
                return Err(ReadError::Bad("request head over 64 KiB"));
            }
            if !self.fill(MAX_HEAD + 1)? {
                return if self.filled == 0 {
                    Ok(None)
                } else {
                    Err(ReadError::Io)
                };
            }
        }
    }

    /// The request's method.
    pub fn method(&self, head: &Head) -> &[u8] {
        &self.buf[head.method.clone()]
    }

    /// The request's target (path and query).
    pub fn target(&self, head: &Head) -> &[u8] {
        &self.buf[head.target.clone()]
    }

    /// The value of the first header called `name` (ASCII case ignored), trimmed.
    pub fn header(&self, head: &Head, name: &str) -> Option<&[u8]> {
        header_in(&self.buf[head.fields.clone()], name)
    }

    /// Every header field of the request, in order: its name and its value, trimmed (the
    /// head was checked when it was read: each line has a colon).
    pub fn fields<'c>(&'c self, head: &Head) -> impl Iterator<Item = (&'c [u8], &'c [u8])> {
        self.buf[head.fields.clone()]
            .split(|&b| b == b'\n')
            .filter_map(|raw| {
                let field = trim_cr(raw);
                let colon = field.iter().position(|&b| b == b':')?;
                Some((&field[..colon], trim(&field[colon + 1..])))
            })
    }

    /// The address of the peer.
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Reads the body of the request whose head was just read, decoding chunked framing, if
    /// it is at most `limit` bytes. Sends `100 Continue` first when the client asked for it.
    pub fn read_body(&mut self, head: &Head, limit: usize) -> Result<Body, ReadError> {
        let start = head.len;
        match head.framing {
            Framing::Length(n) => {
                let Some(n) = usize::try_from(n).ok().filter(|&n| n <= limit) else {
                    return Ok(Body::TooLarge);
                };
                self.continue_if_asked(head)?;
                let end = start + n;
                while self.filled < end {
                    if !self.fill(end)? {
                        return Err(ReadError::Io);
                    }
                }
                self.used = end;
                Ok(Body::Complete(start..end))
            }
            Framing::Chunked => {
                self.continue_if_asked(head)?;
                let mut decoder = Chunked::new(limit as u64);
                loop {
                    match decoder.decode(&mut self.buf[start..self.filled]) {
                        Ok(Status::Complete(b)) => {
                            self.used = start + b.consumed;
                            return Ok(Body::Complete(start + b.start..start + b.end));
                        }
                        Ok(Status::Partial) => {}
                        Err(tinylambda::parse::Error::BodyTooLarge) => return Ok(Body::TooLarge),
                        Err(e) => return Err(ReadError::Bad(e.as_str())),
                    }
                    self.filled = start + decoder.compact(&mut self.buf[start..self.filled]);
                    if !self.fill(start + limit + SLACK)? {
                        return Err(ReadError::Io);
                    }
                }
            }
        }
    }

    /// Starts reading the body of the request whose head was just read piece by piece (see
    /// [`Conn::read_piece`]). Sends `100 Continue` first when the client asked for it.
    pub fn pieces(&mut self, head: &Head) -> Result<Pieces, ReadError> {
        self.continue_if_asked(head)?;
        let state = match head.framing {
            Framing::Length(0) => PieceState::Done,
            Framing::Length(n) => PieceState::Length(n),
            Framing::Chunked => PieceState::Size,
        };
        Ok(Pieces {
            state,
            trailer_bytes: 0,
            trailers: Vec::new(),
        })
    }

    /// The next piece of a body being streamed, as soon as any of it has arrived: its range
    /// in [`Conn::bytes`] (valid until the next call), or `None` once the body has ended
    /// (with its trailer fields in `pieces`). Pieces are at most `max` bytes.
    pub fn read_piece(
        &mut self,
        pieces: &mut Pieces,
        max: usize,
    ) -> Result<Option<Range<usize>>, ReadError> {
        loop {
            let available = &self.buf[self.used..self.filled];
            match pieces.state {
                PieceState::Done => return Ok(None),
                PieceState::Length(left) | PieceState::Data(left) if !available.is_empty() => {
                    let n = available
                        .len()
                        .min(max.max(1))
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    let range = self.used..self.used + n;
                    self.used += n;
                    let left = left - n as u64;
                    pieces.state = match pieces.state {
                        PieceState::Length(_) if left == 0 => PieceState::Done,
                        PieceState::Length(_) => PieceState::Length(left),
                        _ if left == 0 => PieceState::DataEnd,
                        _ => PieceState::Data(left),
                    };
                    return Ok(Some(range));
                }
                PieceState::Length(_) | PieceState::Data(_) => {}
                PieceState::DataEnd => match available {
                    [b'\n', ..] => {
                        self.used += 1;
                        pieces.state = PieceState::Size;
                        continue;
                    }
                    [b'\r', b'\n', ..] => {
                        self.used += 2;
                        pieces.state = PieceState::Size;
                        continue;
                    }
                    [] | [b'\r'] => {}
                    _ => return Err(ReadError::Bad("missing line break after chunk data")),
                },
                PieceState::Size | PieceState::Trailer => {
                    let limit = if pieces.state == PieceState::Size {
                        MAX_SIZE_LINE
                    } else {
                        MAX_HEAD.saturating_sub(pieces.trailer_bytes)
                    };
                    if let Some(nl) = available.iter().position(|&b| b == b'\n') {
                        if nl > limit {
                            return Err(ReadError::Bad("chunk-size line or trailer too long"));
                        }
                        let line = trim_cr(&available[..nl]);
                        if pieces.state == PieceState::Size {
                            let size =
                                chunk_size(line).ok_or(ReadError::Bad("invalid chunk size"))?;
                            pieces.state = if size == 0 {
                                PieceState::Trailer
                            } else {
                                PieceState::Data(size)
                            };
                        } else if line.is_empty() {
                            pieces.state = PieceState::Done;
                        } else {
                            let colon = line
                                .iter()
                                .position(|&b| b == b':')
                                .ok_or(ReadError::Bad("malformed trailer field"))?;
                            let name = String::from_utf8_lossy(trim(&line[..colon])).into_owned();
                            let value = trim(&line[colon + 1..]).to_vec();
                            pieces.trailers.push((name, value));
                            pieces.trailer_bytes += nl + 1;
                        }
                        self.used += nl + 1;
                        continue;
                    }
                    if available.len() > limit {
                        return Err(ReadError::Bad("chunk-size line or trailer too long"));
                    }
                }
            }
            // More bytes are needed: drop what has been handed out, then read.
            if self.used > 0 {
                self.buf.copy_within(self.used..self.filled, 0);
                self.filled -= self.used;
                self.used = 0;
            }
            if !self.fill(MAX_HEAD + SLACK)? {
                return Err(ReadError::Io);
            }
        }
    }

    /// A second handle on the connection's socket, to tell later whether the peer has
    /// closed it (see [`peer_closed`]).
    pub fn probe(&self) -> Option<TcpStream> {
        self.stream.try_clone().ok()
    }

    fn continue_if_asked(&mut self, head: &Head) -> Result<(), ReadError> {
        if head.expect_continue {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Io)?;
        }
        Ok(())
    }

    /// Reads once more into the buffer, growing it up to `cap` bytes. False on EOF.
    fn fill(&mut self, cap: usize) -> Result<bool, ReadError> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= cap {
                return Err(ReadError::Bad("message too large"));
            }
            let len = (self.buf.len() * 2).min(cap).max(self.filled + 1);
            self.buf.resize(len, 0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.filled += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Io),
            }
        }
    }

    /// Starts a response head: status line and `headers`; finish with [`Conn::send`].
    pub fn head(&mut self, status: &str, headers: &[(&str, &[u8])]) -> &mut Conn {
        self.out.clear();
        self.out.extend_from_slice(b"HTTP/1.1 ");
        self.out.extend_from_slice(status.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            self.push_header(name, value);
        }
        self
    }

    /// Adds one header line to the response head being built (CR and LF in `value` become
    /// spaces).
    pub fn push_header(&mut self, name: &str, value: &[u8]) {
        push_field(&mut self.out, name, value);
    }

    /// Adds raw bytes to the response head being built.
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Ends the head with `Content-Length` (and `Connection: close` when `close`), then
    /// writes head and `body` in one vectored write.
    pub fn send(&mut self, body: &[u8], close: bool) -> io::Result<()> {
        self.out.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut self.out, body.len() as u64);
        self.out.extend_from_slice(if close {
            b"\r\nConnection: close\r\n\r\n"
        } else {
            b"\r\n\r\n"
        });
        let out = std::mem::take(&mut self.out);
        let result = self.write_all(&mut [IoSlice::new(&out), IoSlice::new(body)]);
        self.out = out;
        result
    }

    /// Writes the head built so far (which must already end with its blank line) and the
    /// `parts` of the body, in one vectored write.
    pub fn send_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let mut slices = Vec::with_capacity(parts.len() + 1);
        slices.push(IoSlice::new(&out));
        slices.extend(parts.iter().map(|p| IoSlice::new(p)));
        let result = self.write_all(&mut slices);
        self.out = out;
        result
    }

    /// Ends the head with `Content-Length: len` and writes it without the body (the answer
    /// to a `HEAD` request, RFC 9110 §9.3.2).
    pub fn send_head_only(&mut self, len: usize) -> io::Result<()> {
        self.out.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut self.out, len as u64);
        self.out.extend_from_slice(b"\r\n\r\n");
        self.send_parts(&[])
    }

    /// Ends the head without a body or `Content-Length` (a 204: HTTP forbids the field
    /// there, RFC 9110 §8.6) and writes it.
    pub fn send_no_content(&mut self) -> io::Result<()> {
        self.out.extend_from_slice(b"\r\n");
        self.send_parts(&[])
    }

    /// Writes the head built so far, ended by its blank line, and nothing else (the body
    /// follows as chunks: the head must carry `Transfer-Encoding: chunked`).
    pub fn send_head(&mut self) -> io::Result<()> {
        self.out.extend_from_slice(b"\r\n");
        self.send_parts(&[])
    }

    /// Writes `data` as one chunk of a chunked response, at once. Empty data sends nothing
    /// (an empty chunk would end the body).
    pub fn send_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut size = Vec::with_capacity(18);
        push_hex(&mut size, data.len() as u64);
        size.extend_from_slice(b"\r\n");
        self.write_all(&mut [
            IoSlice::new(&size),
            IoSlice::new(data),
            IoSlice::new(b"\r\n"),
        ])
    }

    /// Ends a chunked response: the last chunk, then `trailers` (name, value).
    pub fn end_chunks(&mut self, trailers: &[(&str, &[u8])]) -> io::Result<()> {
        let mut end = b"0\r\n".to_vec();
        for (name, value) in trailers {
            push_field(&mut end, name, value);
        }
        end.extend_from_slice(b"\r\n");
        self.write_all(&mut [IoSlice::new(&end)])
    }

    /// After refusing a request whose body is still coming: reads and discards what the
    /// client sends (so it can finish writing and read the refusal rather than get a reset),
    /// until it closes, goes quiet for 2 s, or 1 GiB has gone by; then closes.
    pub fn drain_and_close(&mut self) {
        let _ = self.stream.set_read_timeout(Some(DRAIN_IDLE));
        let mut seen = 0u64;
        let mut scratch = [0u8; 64 * 1024];
        while seen < DRAIN_MAX {
            match self.stream.read(&mut scratch) {
                Ok(0) => break,
                Ok(n) => seen += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

unsafe extern "C" {
    fn recv(fd: c_int, buf: *mut u8, len: usize, flags: c_int) -> isize;
}

const MSG_PEEK: c_int = 2;
const MSG_DONTWAIT: c_int = 0x40;

/// Whether the peer of `stream` has closed the connection (or it has failed), without
/// reading anything or waiting: a peek that finds the end of the stream.
pub fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer on the stack; the descriptor is owned by `stream`.
    let n = unsafe { recv(stream.as_raw_fd(), &mut byte, 1, MSG_PEEK | MSG_DONTWAIT) };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => !matches!(
            io::Error::last_os_error().kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

/// The size of a chunk-size line (hex digits, then optional `;extensions`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = trim(line.split(|&b| b == b';').next().unwrap_or_default());
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n * 16 + u64::from(d))
    })
}

/// Appends the field line `name: value`, CR and LF in `value` written as spaces.
fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(
        value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

impl Conn {
    /// Writes every byte of `slices`, retrying short writes, within the write limit if
    /// there is one (each write waits at most for what is left of it).
    fn write_all(&mut self, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        let deadline = self.write_limit.map(|limit| Instant::now() + limit);
        while slices.iter().any(|s| !s.is_empty()) {
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                self.stream.set_write_timeout(Some(left))?;
            }
            match self.stream.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The status line of `code` (`201 Created`): the code and its reason phrase from RFC 9110
/// §15, or the code alone for one that names none (the phrase is optional, RFC 9112 §4).
pub fn status_line(code: u16) -> String {
    let reason = match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    };
    format!("{code} {reason}")
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// `n` in decimal, written at the end of `digits`.
pub fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

/// Appends `n` in lowercase hex (for chunk sizes).
pub fn push_hex(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Parses a request head (`head` ends with its blank line).
fn parse_head(head: &[u8]) -> Result<Head, ReadError> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(ReadError::Bad("no request line"))?;
    let line = trim_cr(&head[..line_end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err(ReadError::Bad("malformed request line"));
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Err(ReadError::Bad("not HTTP/1.0 or HTTP/1.1")),
    };
    let method_at = 0..method.len();
    let target_at = method.len() + 1..method.len() + 1 + target.len();
    let fields = line_end + 1..head.len();

    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut keep_alive = !http10;
    let mut expect_continue = false;
    for raw in head[fields.clone()].split(|&b| b == b'\n') {
        let field = trim_cr(raw);
        if field.is_empty() {
            continue;
        }
        if matches!(field.first(), Some(b' ' | b'\t')) {
            return Err(ReadError::Bad("folded header line"));
        }
        let colon = field
            .iter()
            .position(|&b| b == b':')
            .ok_or(ReadError::Bad("header line without a colon"))?;
        let (name, value) = (&field[..colon], trim(&field[colon + 1..]));
        if name.is_empty() || name.iter().any(|b| !b.is_ascii_graphic()) {
            return Err(ReadError::Bad("malformed header name"));
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ReadError::Bad("control character in a header value"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(ReadError::Bad("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ReadError::Bad("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") || chunked {
                return Err(ReadError::Unsupported);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    let framing = match (chunked, length) {
        (true, Some(_)) => return Err(ReadError::Bad("both Content-Length and chunked")),
        (true, None) => Framing::Chunked,
        (false, length) => Framing::Length(length.unwrap_or(0)),
    };
    Ok(Head {
        method: method_at,
        target: target_at,
        fields,
        len: head.len(),
        framing,
        keep_alive,
        expect_continue: expect_continue && !http10,
        http10,
    })
}

fn header_in<'a>(fields: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields.split(|&b| b == b'\n').find_map(|raw| {
        let field = trim_cr(raw);
        let colon = field.iter().position(|&b| b == b':')?;
        field[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| trim(&field[colon + 1..]))
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair on 127.0.0.1: (client side, server side wrapped in a Conn).
    fn pair() -> (TcpStream, Conn) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (client, Conn::new(server))
    }

    /// Reads every piece of the body after `head`, returning them and the reader.
    fn all_pieces(conn: &mut Conn, max: usize) -> (Vec<Vec<u8>>, Pieces) {
        let head = conn.read_head().unwrap().unwrap();
        let mut pieces = conn.pieces(&head).unwrap();
        let mut got = Vec::new();
        while let Some(range) = conn.read_piece(&mut pieces, max).unwrap() {
            got.push(conn.bytes()[range].to_vec());
        }
        (got, pieces)
    }

    #[test]
    fn streamed_bodies_arrive_piece_by_piece_with_their_trailers() {
        let (mut client, mut conn) = pair();
        let writer = std::thread::spawn(move || {
            let parts: [&[u8]; 5] = [
                b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhel",
                b"lo\r\n",
                b"6\r\n world\r\n0\r\nLambda-Runtime-Function-Error-Type: Function.X\r\n",
                b"Lambda-Runtime-Function-Error-Body: e30=\r\n",
                b"\r\nGET /next HTTP/1.1\r\n\r\n",
            ];
            for part in parts {
                client.write_all(part).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            client
        });
        let (got, pieces) = all_pieces(&mut conn, 4);
        assert_eq!(got.concat(), b"hello world");
        assert!(got.iter().all(|p| p.len() <= 4), "{got:?}");
        assert_eq!(
            pieces.trailer("lambda-runtime-function-error-type"),
            Some(&b"Function.X"[..])
        );
        assert_eq!(
            pieces.trailer("Lambda-Runtime-Function-Error-Body"),
            Some(&b"e30="[..])
        );
        // The request pipelined after the body is intact.
        let next = conn.read_head().unwrap().unwrap();
        assert_eq!(conn.target(&next), b"/next");
        drop(writer.join());
    }

    #[test]
    fn streamed_bodies_with_a_length_and_bad_chunking() {
        let (mut client, mut conn) = pair();
        client
            .write_all(b"POST /r HTTP/1.1\r\nContent-Length: 7\r\n\r\nabcdefg")
            .unwrap();
        let (got, pieces) = all_pieces(&mut conn, 1 << 20);
        assert_eq!(
            (got.concat(), pieces.trailers.len()),
            (b"abcdefg".to_vec(), 0)
        );

        let (mut client, mut conn) = pair();
        client
            .write_all(b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .unwrap();
        let head = conn.read_head().unwrap().unwrap();
        let mut pieces = conn.pieces(&head).unwrap();
        assert!(matches!(
            conn.read_piece(&mut pieces, 16),
            Err(ReadError::Bad("invalid chunk size"))
        ));

        let (client, mut conn) = pair();
        let mut client = client;
        client
            .write_all(b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc")
            .unwrap();
        drop(client);
        let head = conn.read_head().unwrap().unwrap();
        let mut pieces = conn.pieces(&head).unwrap();
        let first = conn.read_piece(&mut pieces, 16).unwrap().unwrap();
        assert_eq!(&conn.bytes()[first], b"abc");
        assert!(matches!(
            conn.read_piece(&mut pieces, 16),
            Err(ReadError::Io)
        ));
    }

    #[test]
    fn chunked_responses_end_with_their_trailers_and_closed_peers_are_seen() {
        let (mut client, mut conn) = pair();
        conn.head("200 OK", &[("Transfer-Encoding", b"chunked")]);
        conn.send_head().unwrap();
        conn.send_chunk(b"first").unwrap();
        conn.send_chunk(b"").unwrap();
        conn.end_chunks(&[("X-Error", b"yes")]).unwrap();
        let probe = conn.probe().unwrap();
        assert!(!peer_closed(&probe));
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let expected: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\nX-Error: yes\r\n\r\n";
        let mut raw = vec![0; expected.len()];
        client.read_exact(&mut raw).unwrap();
        assert_eq!(raw, expected);
        drop(client);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !peer_closed(&probe) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(peer_closed(&probe));
    }

    #[test]
    fn heads_give_method_target_framing_and_keep_alive() {
        let raw = b"POST /a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Thing:  v \r\n\r\n";
        let h = parse_head(raw).unwrap();
        assert_eq!(
            (&raw[h.method.clone()], &raw[h.target.clone()]),
            (&b"POST"[..], &b"/a/b"[..])
        );
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive && !h.expect_continue);
        assert_eq!(
            header_in(&raw[h.fields.clone()], "x-thing"),
            Some(&b"v"[..])
        );
    }

    #[test]
    fn http_1_0_closes_unless_asked_and_chunked_is_recognised() {
        let h = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = parse_head(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive);
    }

    #[test]
    fn malformed_heads_are_refused() {
        for raw in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nX-Amzn-Trace-Id: Root=1\rInjected: yes\r\n\r\n",
            b"POST / HTTP/1.1\r\nX-Amz-Tenant-Id: a\x00b\r\n\r\n",
        ] {
            assert!(matches!(parse_head(raw), Err(ReadError::Bad(_))), "{raw:?}");
        }
        assert!(matches!(
            parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(ReadError::Unsupported)
        ));
    }

    #[test]
    fn a_peer_that_stops_reading_fails_the_write_within_its_limit() {
        let (_client, mut conn) = pair();
        conn.set_write_limit(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let body = vec![0u8; 64 << 20];
        let sent = conn.head("200 OK", &[]).send(&body, false);
        assert!(sent.is_err(), "64 MiB went into a peer that reads nothing");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn written_header_values_never_break_a_line() {
        let (mut client, mut conn) = pair();
        conn.head(
            "204 No Content",
            &[("X-Echo", b"a\r\nInjected: yes\r\n\r\n")],
        );
        conn.send_no_content().unwrap();
        drop(conn);
        let mut raw = Vec::new();
        client.read_to_end(&mut raw).unwrap();
        assert_eq!(
            raw,
            b"HTTP/1.1 204 No Content\r\nX-Echo: a  Injected: yes    \r\n\r\n"
        );
        let h = parse_head(b"GET / HTTP/1.1\r\nX-Tab: a\tb\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(0));
    }

    #[test]
    fn numbers_are_written_without_formatting_machinery() {
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        out.push(b' ');
        push_decimal(&mut out, 6_291_556);
        out.push(b' ');
        push_hex(&mut out, 2049);
        assert_eq!(out, b"0 6291556 801");
    }
}

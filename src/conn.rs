//! The connection to the Runtime API: one keep-alive TCP socket with `TCP_NODELAY`, request
//! heads written into a reused buffer, responses read into a reused buffer and parsed in
//! place.
//!
//! A request is one vectored write (head and body together) and its response one read when
//! it fits in the buffer, which is what a request costs in system calls at best.

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
#[cfg(feature = "resolve")]
use core::net::SocketAddr;
use core::ops::Range;

use crate::endpoint::Endpoint;
use crate::parse::{self, Chunked, Framing, Head, MAX_HEAD, Status};
use crate::request::{self, PostHead};
use crate::sys::{self, IoVec, Socket};

/// The receive buffer's starting size: a 64 KiB event and a 64 KiB head fit without
/// growing it. Pages are only touched as bytes arrive.
const RECV_START: usize = 2 * MAX_HEAD;

/// Room beyond the body for one read's worth of chunk framing and trailers.
const CHUNK_SLACK: usize = MAX_HEAD + parse::MAX_LINE;

/// Connection attempts wait 10 ms, then twice as long each time, up to this (0.63 s in all).
const CONNECT_BACKOFF_MS: i32 = 320;

/// More interim (1xx) responses than this before the real one is an error.
const MAX_INTERIM: u32 = 8;

/// How an exchange failed, in what the connection knows: whether any byte of the request
/// was written, and whether any byte of a reply was read. (A connection that cannot be
/// made at all ends the process.)
#[derive(Clone, Copy, Debug)]
pub(crate) enum Failure {
    /// Not one byte of the request was written. `reused` says whether the connection had
    /// carried an earlier exchange (a stale keep-alive connection fails this way).
    Unsent { reused: bool, why: Why },
    /// The request was written, whole or in part (`why` is then the write's failure), and
    /// not one byte of a reply was read.
    NoReply { reused: bool, why: Why },
    /// A reply started but is malformed or broke off. `head` says whether its head was
    /// complete (it is then in [`Recv::head`], its values still in the buffer).
    Broken { head: bool, why: Why },
}

/// The cause behind a [`Failure`]: small and `Copy`, so failures cost no drop code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// A system call failed with this OS error number (0 when there was none, as for a
    /// failed host lookup).
    Io(i32),
    /// The server closed the connection.
    Closed,
    Parse(parse::Error),
    /// Too many 1xx responses.
    Interim,
}

/// The receive buffer, reused for every response, and the last response's head and body.
/// It grows for large events and stays grown.
pub(crate) struct Recv {
    /// Always fully initialised: `len` is the capacity in use.
    pub buf: Vec<u8>,
    filled: usize,
    /// The last response's head (kept here rather than moved around: it is 150 bytes).
    pub head: Head,
    /// Where the last response's body is in `buf`.
    pub body: Range<usize>,
}

impl Recv {
    pub(crate) fn new() -> Self {
        Recv {
            buf: crate::bytes::zeroed(RECV_START),
            filled: 0,
            head: Head::EMPTY,
            body: 0..0,
        }
    }

    /// The bytes received so far.
    #[inline(never)]
    fn filled(&self) -> &[u8] {
        self.buf.get(..self.filled).unwrap_or_default()
    }

    /// The last response's body.
    pub(crate) fn body(&self) -> &[u8] {
        self.buf.get(self.body.clone()).unwrap_or_default()
    }

    /// Makes the buffer at least `len` bytes long, up to `cap`; false when `len > cap`.
    fn reserve(&mut self, len: usize, cap: usize) -> bool {
        if len > cap {
            return false;
        }
        if self.buf.len() < len {
            self.buf
                .resize(len.max(self.buf.len().saturating_mul(2)).min(cap), 0);
        }
        true
    }
}

/// The Runtime API connection and the request-head buffers.
pub(crate) struct Conn {
    /// The host to connect to, without IPv6 brackets (see [`open`]).
    host: String,
    port: u16,
    prefix: String,
    authority: String,
    stream: Option<Socket>,
    /// Whether `stream` has completed an exchange (so it may have gone stale).
    reused: bool,
    /// `GET /next`, written once.
    next: Vec<u8>,
    /// The current POST head, `head[..head_len]`.
    head: Vec<u8>,
    head_len: usize,
}

impl Conn {
    /// Keeps what requests need from the endpoint and writes the `/next` request. Does not
    /// connect yet.
    pub(crate) fn new(endpoint: &Endpoint<'_>) -> Self {
        let mut conn = Conn {
            host: endpoint.host.to_owned(),
            port: endpoint.port,
            prefix: endpoint.prefix.to_owned(),
            authority: endpoint.authority.to_owned(),
            stream: None,
            reused: false,
            next: crate::bytes::zeroed(256),
            head: crate::bytes::zeroed(512),
            head_len: 0,
        };
        let (prefix, authority) = (&conn.prefix, &conn.authority);
        let len = fill(&mut conn.next, |buf| {
            request::write_next(buf, prefix, authority)
        });
        conn.next.truncate(len);
        conn
    }

    /// Writes the head of a POST, to be sent by the following [`Conn::exchange`] calls.
    pub(crate) fn prepare_post(&mut self, head: &PostHead<'_>) {
        let (prefix, authority) = (&self.prefix, &self.authority);
        self.head_len = fill(&mut self.head, |buf| {
            request::write_post(buf, prefix, authority, head)
        });
    }

    /// Sends `GET /next` (for `post_body == None`) or the prepared POST head with
    /// `post_body`, and reads the reply into `recv`. A body over `limit` bytes is refused.
    /// On any failure the connection is dropped, so the next exchange starts afresh.
    pub(crate) fn exchange(
        &mut self,
        recv: &mut Recv,
        post_body: Option<&[u8]>,
        limit: usize,
    ) -> Result<(), Failure> {
        if post_body.is_some() {
            self.drop_if_closed();
        }
        if self.stream.is_none() {
            self.stream = Some(self.connect());
            self.reused = false;
        }
        let reused = self.reused;
        let Some(stream) = self.stream.as_ref() else {
            return Err(Failure::Unsent {
                reused,
                why: Why::Closed,
            });
        };
        let head = match post_body {
            None => &self.next,
            Some(_) => self.head.get(..self.head_len).unwrap_or_default(),
        };
        let body = post_body.unwrap_or_default();
        let result = match write_all(stream, head, body) {
            Ok(()) => read_reply(stream, recv, limit, reused),
            Err(Unwritten { sent: 0, why }) => Err(Failure::Unsent { reused, why }),
            // Part of the request went out: a server that answers before reading all of a
            // body (as Go's does when it refuses one) may have replied, and its reply
            // counts as if the write had completed. The connection is done either way.
            Err(Unwritten { why, .. }) => match read_reply(stream, recv, limit, reused) {
                Ok(_) => Ok(false),
                Err(Failure::NoReply { .. }) => Err(Failure::NoReply { reused, why }),
                Err(broken) => Err(broken),
            },
        };
        match result {
            Ok(true) => self.reused = true,
            _ => self.stream = None,
        }
        result.map(drop)
    }

    /// Writes the head of the next POST (or GET, sent with an empty body) with `write`, given
    /// the endpoint's prefix and authority: for requests other than the runtime's own.
    #[cfg(feature = "graceful-shutdown")]
    pub(crate) fn prepare_with(
        &mut self,
        mut write: impl FnMut(&mut [u8], &str, &str) -> Option<usize>,
    ) {
        let (prefix, authority) = (&self.prefix, &self.authority);
        self.head_len = fill(&mut self.head, |buf| write(buf, prefix, authority));
    }

    /// Sends the prepared head alone, without waiting for the reply (a long poll left in
    /// flight on purpose).
    #[cfg(feature = "graceful-shutdown")]
    pub(crate) fn send_prepared(&mut self) -> Result<(), Why> {
        if self.stream.is_none() {
            self.stream = Some(self.connect());
        }
        let Some(stream) = self.stream.as_ref() else {
            return Err(Why::Closed);
        };
        write_all(
            stream,
            self.head.get(..self.head_len).unwrap_or_default(),
            &[],
        )
        .map_err(|unwritten| unwritten.why)
    }

    /// Writes the head of a streamed `/response`, sent by the first [`Conn::send_parts`].
    #[cfg(feature = "streaming")]
    pub(crate) fn prepare_stream(
        &mut self,
        request_id: &str,
        content_type: &str,
        invocation_id: Option<&[u8]>,
    ) {
        let (prefix, authority) = (&self.prefix, &self.authority);
        self.head_len = fill(&mut self.head, |buf| {
            request::write_stream_head(
                buf,
                prefix,
                authority,
                request_id,
                content_type,
                invocation_id,
            )
        });
    }

    /// Sends `parts` in one vectored write, after the prepared head when `with_head` (the
    /// start of a streamed response). The start goes out on a fresh connection if the
    /// current one was closed while the handler ran, and once more on a fresh one if not one
    /// byte of it can be written into a reused one. After any other failure the connection
    /// is kept for [`Conn::end_stream`] to read the reply that may have arrived (a server
    /// refusing the stream answers before reading it).
    #[cfg(feature = "streaming")]
    pub(crate) fn send_parts(&mut self, with_head: bool, parts: &[&[u8]]) -> Result<(), Why> {
        if with_head {
            self.drop_if_closed();
        }
        let mut retried = !with_head;
        loop {
            if self.stream.is_none() {
                self.stream = Some(self.connect());
                self.reused = false;
            }
            let reused = self.reused;
            let Some(stream) = self.stream.as_ref() else {
                return Err(Why::Closed);
            };
            let head = if with_head {
                self.head.get(..self.head_len).unwrap_or_default()
            } else {
                &[]
            };
            match write_parts(stream, head, parts) {
                Ok(()) => return Ok(()),
                Err(Unwritten { sent: 0, .. }) if reused && !retried => {
                    self.stream = None;
                    retried = true;
                }
                Err(Unwritten { why, .. }) => return Err(why),
            }
        }
    }

    /// Reads the reply to a streamed response into `recv`, then closes the connection: a
    /// streamed response ends its connection, and the next `/next` takes a fresh one. Also
    /// after the stream failed: the reply may have arrived before the failure.
    #[cfg(feature = "streaming")]
    pub(crate) fn end_stream(&mut self, recv: &mut Recv, limit: usize) -> Result<(), Failure> {
        match self.stream.take() {
            Some(stream) => read_reply(&stream, recv, limit, false).map(drop),
            None => Err(Failure::Unsent {
                reused: false,
                why: Why::Closed,
            }),
        }
    }

    /// Drops a reused connection that the server closed (or sent something unasked on)
    /// while the handler ran, so that a POST is never written into it: there it could be
    /// lost, and re-sending it later could answer the invocation twice. One system call.
    #[inline(never)]
    fn drop_if_closed(&mut self) {
        let closed = match &self.stream {
            Some(stream) if self.reused => !stream.quiet_and_open(),
            _ => false,
        };
        if closed {
            self.stream = None;
        }
    }

    /// Connects, retrying for up to 0.63 s (the API may come up just after the runtime, as
    /// under some emulators), with `TCP_NODELAY`. Ends the process when it cannot.
    fn connect(&self) -> Socket {
        let mut delay = 10;
        loop {
            match open(&self.host, self.port) {
                Some(Ok(stream)) => return stream,
                None => crate::log::fatal(
                    b"AWS_LAMBDA_RUNTIME_API host \x01 needs the `resolve` feature (or use an IP address)",
                    &[self.host.as_bytes()],
                ),
                Some(Err(e)) if delay > CONNECT_BACKOFF_MS => crate::log::fatal(
                    b"cannot connect to AWS_LAMBDA_RUNTIME_API at \x01: \x02",
                    &[
                        self.authority.as_bytes(),
                        Why::Io(e).describe(&mut [0; crate::log::DESCRIBED]),
                    ],
                ),
                Some(Err(_)) => {
                    crate::sys::sleep_ms(delay);
                    delay *= 2;
                }
            }
        }
    }
}

/// Opens a connection to `host`: an IP address as it is (Lambda gives `127.0.0.1:9001`),
/// `localhost` as 127.0.0.1 then ::1 (see `sys::open`), and any other name through the
/// system's resolver with the `resolve` feature; without it, `None`. A name lookup
/// (`getaddrinfo`) brings the C library's resolver into a static binary: about 17 KiB with
/// musl.
fn open(host: &str, port: u16) -> Option<Result<Socket, i32>> {
    let opened = sys::open(host, port);
    #[cfg(feature = "resolve")]
    if opened.is_none() {
        return Some(resolve(host, port));
    }
    opened
}

/// Looks `host` up with the system's resolver and connects to the first address that
/// accepts. A failed lookup is error 0 ("the host name did not resolve").
#[cfg(feature = "resolve")]
fn resolve(host: &str, port: u16) -> Result<Socket, i32> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.raw_os_error().unwrap_or(0))?
        .collect();
    // The first address that accepts; the last error when none does (0 when there are
    // none).
    let mut error = 0;
    for addr in &addrs {
        match Socket::connect(addr) {
            Ok(socket) => return Ok(socket),
            Err(code) => error = code,
        }
    }
    Err(error)
}

impl Why {
    /// A short description, for messages, written into `buf` when it is not a fixed text.
    pub(crate) fn describe(self, buf: &mut [u8; crate::log::DESCRIBED]) -> &[u8] {
        match self {
            Why::Io(code) => crate::log::describe_os_error(code, buf),
            Why::Closed => b"connection closed",
            Why::Parse(e) => e.as_str().as_bytes(),
            Why::Interim => b"too many 1xx responses",
        }
    }
}

/// Calls `write` with `buf`, doubling `buf` until the result fits; returns its length.
fn fill(buf: &mut Vec<u8>, mut write: impl FnMut(&mut [u8]) -> Option<usize>) -> usize {
    loop {
        if let Some(n) = write(buf) {
            return n;
        }
        let len = buf.len() * 2;
        buf.resize(len, 0);
    }
}

/// A write that failed after `sent` bytes of the request had gone out.
#[derive(Clone, Copy, Debug)]
struct Unwritten {
    sent: usize,
    why: Why,
}

/// Writes `head` then each of `parts` in as few `writev` calls as the kernel allows (one,
/// normally), up to four slices at a time.
#[cfg(feature = "streaming")]
fn write_parts(stream: &Socket, head: &[u8], parts: &[&[u8]]) -> Result<(), Unwritten> {
    let mut sent = 0;
    loop {
        let mut slices = [IoVec::EMPTY; 4];
        let mut used = 0;
        let mut skip = sent;
        for part in [head].iter().chain(parts) {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            if let Some(slot) = slices.get_mut(used) {
                *slot = IoVec::new(part.get(skip..).unwrap_or_default());
                used += 1;
            }
            skip = 0;
        }
        if used == 0 {
            return Ok(());
        }
        sent += write_some(stream, slices.get(..used).unwrap_or_default(), sent)?;
    }
}

/// Writes `head` then `body` in as few `writev` calls as the kernel allows (one, normally).
fn write_all(stream: &Socket, head: &[u8], body: &[u8]) -> Result<(), Unwritten> {
    let mut sent = 0;
    loop {
        let rest_of_head = head.get(sent..).unwrap_or_default();
        let rest_of_body = body
            .get(sent.saturating_sub(head.len())..)
            .unwrap_or_default();
        if rest_of_head.is_empty() && rest_of_body.is_empty() {
            return Ok(());
        }
        let slices = [IoVec::new(rest_of_head), IoVec::new(rest_of_body)];
        sent += write_some(stream, &slices, sent)?;
    }
}

/// One `writev` of `slices` (0 bytes when interrupted by a signal), after `sent` bytes of
/// the same request.
fn write_some(stream: &Socket, slices: &[IoVec<'_>], sent: usize) -> Result<usize, Unwritten> {
    let why = match stream.write_vectored(slices) {
        Ok(0) => Why::Closed,
        Ok(n) => return Ok(n),
        Err(sys::EINTR) => return Ok(0),
        Err(code) => Why::Io(code),
    };
    Err(Unwritten { sent, why })
}

/// Reads one response (skipping interim 1xx ones) into `recv`. Returns whether the
/// connection can carry the next request: the server did not ask to close, the body had
/// its own framing, and nothing followed the response.
#[inline(never)]
fn read_reply(
    stream: &Socket,
    recv: &mut Recv,
    limit: usize,
    reused: bool,
) -> Result<bool, Failure> {
    recv.filled = 0;
    let mut head_done = false;
    read_message(stream, recv, limit, &mut head_done).map_err(|why| {
        if recv.filled == 0 {
            Failure::NoReply { reused, why }
        } else {
            Failure::Broken {
                head: head_done,
                why,
            }
        }
    })
}

fn read_message(
    stream: &Socket,
    recv: &mut Recv,
    limit: usize,
    head_done: &mut bool,
) -> Result<bool, Why> {
    let mut scan = 0;
    let mut interim = 0;
    loop {
        // What is already in the buffer first: the reply after a 1xx may have come with it.
        let Some(end) = parse::head_end(recv.filled(), scan) else {
            scan = recv.filled.saturating_sub(3);
            more(stream, recv, MAX_HEAD + 1)?;
            continue;
        };
        recv.head = match parse::parse_head(recv.filled().get(..end).unwrap_or_default()) {
            Ok(Status::Complete(head)) => head,
            Ok(Status::Partial) => {
                more(stream, recv, MAX_HEAD + 1)?;
                continue;
            }
            Err(e) => return Err(Why::Parse(e)),
        };
        if !(100..200).contains(&recv.head.status) || recv.head.status == 101 {
            break;
        }
        interim += 1;
        if interim > MAX_INTERIM {
            return Err(Why::Interim);
        }
        parse::move_bytes(&mut recv.buf, end, recv.filled, 0);
        recv.filled -= end;
        scan = 0;
    }
    *head_done = true;
    let start = recv.head.len;
    // Until the body is whole, it is empty (not a stale range from the last reply).
    recv.body = start..start;
    // Where the response ends: anything after it means the connection is out of step and
    // must not be reused.
    let end = match recv.head.framing {
        Framing::Empty => {
            recv.body = start..start;
            start
        }
        Framing::Length(n) => {
            let end = usize::try_from(n)
                .ok()
                .filter(|&n| n <= limit)
                .ok_or(Why::Parse(parse::Error::BodyTooLarge))?
                + start;
            while recv.filled < end {
                more(stream, recv, end)?;
            }
            recv.body = start..end;
            end
        }
        Framing::Chunked => {
            let mut decoder = Chunked::new(limit as u64);
            loop {
                match decoder.decode(recv.buf.get_mut(start..recv.filled).unwrap_or_default()) {
                    Ok(Status::Complete(b)) => {
                        recv.body = start + b.start..start + b.end;
                        break start + b.consumed;
                    }
                    Ok(Status::Partial) => {}
                    Err(e) => return Err(Why::Parse(e)),
                }
                recv.filled = start
                    + decoder.compact(recv.buf.get_mut(start..recv.filled).unwrap_or_default());
                more(stream, recv, start + limit + CHUNK_SLACK)?;
            }
        }
        Framing::UntilClose => loop {
            match more(stream, recv, start + limit + 1) {
                Ok(()) => {}
                Err(Why::Closed) => {
                    recv.body = start..recv.filled;
                    break usize::MAX;
                }
                Err(why) => return Err(why),
            }
        },
    };
    Ok(recv.head.keep_alive && recv.filled == end)
}

/// Reads more bytes into `recv`, growing it up to `cap` bytes. Past `cap`, the message is
/// too large: [`parse::Error::BodyTooLarge`] (or `HeadTooLarge` while reading the head).
fn more(stream: &Socket, recv: &mut Recv, cap: usize) -> Result<(), Why> {
    if !recv.reserve(recv.filled + 1, cap) {
        let error = if cap == MAX_HEAD + 1 {
            parse::Error::HeadTooLarge
        } else {
            parse::Error::BodyTooLarge
        };
        return Err(Why::Parse(error));
    }
    loop {
        match stream.read(recv.buf.get_mut(recv.filled..).unwrap_or_default()) {
            Ok(0) => return Err(Why::Closed),
            Ok(n) => {
                recv.filled += n;
                return Ok(());
            }
            Err(sys::EINTR) => {}
            Err(code) => return Err(Why::Io(code)),
        }
    }
}

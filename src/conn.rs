//! The connection to the Runtime API: one keep-alive `TcpStream` with `TCP_NODELAY`, request
//! heads written into a reused buffer, responses read into a reused buffer and parsed in
//! place.
//!
//! A request is one vectored write (head and body together) and its response one read when
//! it fits in the buffer, which is what a request costs in system calls at best.

use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::parse::{self, Chunked, Framing, Head, MAX_HEAD, Status};
use crate::request::{self, PostHead};

/// The receive buffer's starting size: a 64 KiB event and a 64 KiB head fit without
/// growing it. Pages are only touched as bytes arrive.
const RECV_START: usize = 2 * MAX_HEAD;

/// Room beyond the body for one read's worth of chunk framing and trailers.
const CHUNK_SLACK: usize = MAX_HEAD + parse::MAX_LINE;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connection attempts before giving up, 10 ms apart and doubling (0.63 s in all).
const CONNECT_ATTEMPTS: u32 = 7;

/// More interim (1xx) responses than this before the real one is an error.
const MAX_INTERIM: u32 = 8;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection could be made.
    Connect(io::Error),
    /// Nothing of the reply arrived: the request may never have been seen. `reused` says
    /// whether the connection had carried an earlier exchange (a stale keep-alive
    /// connection fails this way).
    NoReply { reused: bool, why: Why },
    /// The reply started but is malformed or broke off. `head` is set when the head was
    /// complete (its values are still in the receive buffer).
    Broken { head: Option<Box<Head>>, why: Why },
}

/// The cause behind a [`Failure`].
#[derive(Debug)]
pub(crate) enum Why {
    Io(io::Error),
    /// The server closed the connection.
    Closed,
    Parse(parse::Error),
    /// Too many 1xx responses.
    Interim,
}

/// A complete response: its head and where its body is in the receive buffer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub head: Head,
    pub body: Range<usize>,
    /// Whether the connection can carry the next request: the server did not ask to close,
    /// the body had its own framing, and nothing followed the response.
    pub keep_alive: bool,
}

/// The receive buffer, reused for every response. It grows for large events and stays
/// grown.
pub(crate) struct Recv {
    /// Always fully initialised: `len` is the capacity in use.
    pub buf: Vec<u8>,
    filled: usize,
}

impl Recv {
    pub(crate) fn new() -> Self {
        Recv {
            buf: vec![0; RECV_START],
            filled: 0,
        }
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
    addrs: Vec<SocketAddr>,
    prefix: String,
    authority: String,
    stream: Option<TcpStream>,
    /// Whether `stream` has completed an exchange (so it may have gone stale).
    reused: bool,
    /// `GET /next`, written once.
    next: Vec<u8>,
    /// The current POST head, `head[..head_len]`.
    head: Vec<u8>,
    head_len: usize,
}

impl Conn {
    /// Resolves the endpoint (once; reconnects reuse the address) and writes the `/next`
    /// request. Does not connect yet.
    pub(crate) fn new(endpoint: &Endpoint<'_>) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = match endpoint.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, endpoint.port)],
            Err(_) => (endpoint.host, endpoint.port).to_socket_addrs()?.collect(),
        };
        if addrs.is_empty() {
            return Err(io::ErrorKind::AddrNotAvailable.into());
        }
        let mut conn = Conn {
            addrs,
            prefix: endpoint.prefix.to_owned(),
            authority: endpoint.authority.to_owned(),
            stream: None,
            reused: false,
            next: vec![0; 256],
            head: vec![0; 512],
            head_len: 0,
        };
        let (prefix, authority) = (&conn.prefix, &conn.authority);
        let next = &mut conn.next;
        let len = fill(next, |buf| request::write_next(buf, prefix, authority));
        next.truncate(len);
        Ok(conn)
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
    ) -> Result<Reply, Failure> {
        if self.stream.is_none() {
            self.stream = Some(self.connect().map_err(Failure::Connect)?);
            self.reused = false;
        }
        let reused = self.reused;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::NoReply {
                reused,
                why: Why::Closed,
            });
        };
        let head = match post_body {
            None => &self.next[..],
            Some(_) => &self.head[..self.head_len],
        };
        let body = post_body.unwrap_or_default();
        let mut slices = [IoSlice::new(head), IoSlice::new(body)];
        let sent = write_all(stream, &mut slices[..if body.is_empty() { 1 } else { 2 }]);
        let result = match sent {
            Err(e) => Err(Failure::NoReply {
                reused,
                why: Why::Io(e),
            }),
            Ok(()) => read_reply(stream, recv, limit, reused),
        };
        match &result {
            Ok(reply) if reply.keep_alive => self.reused = true,
            _ => self.stream = None,
        }
        result
    }

    /// Connects to the first address that answers, retrying for up to 0.63 s (the API may
    /// come up just after the runtime, as under some emulators).
    fn connect(&self) -> io::Result<TcpStream> {
        let mut delay = Duration::from_millis(10);
        let mut last = io::Error::from(io::ErrorKind::AddrNotAvailable);
        for attempt in 1..=CONNECT_ATTEMPTS {
            for addr in &self.addrs {
                match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
                    Ok(stream) => {
                        // Without it, a small POST after a write can wait for a delayed ACK.
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(e) => last = e,
                }
            }
            if attempt < CONNECT_ATTEMPTS {
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
        Err(last)
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

/// Writes every slice, in as few `writev` calls as the kernel allows (one, normally).
fn write_all(stream: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads once into `buf`, retrying on EINTR.
fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Reads one response (skipping interim 1xx ones) into `recv`.
fn read_reply(
    stream: &mut TcpStream,
    recv: &mut Recv,
    limit: usize,
    reused: bool,
) -> Result<Reply, Failure> {
    recv.filled = 0;
    let mut scan = 0;
    let mut interim = 0;
    let mut got_bytes = false;
    let broken = |head, why| Failure::Broken { head, why };
    let head = 'head: loop {
        if !recv.reserve(recv.filled + 1, MAX_HEAD + 1) {
            return Err(broken(None, Why::Parse(parse::Error::HeadTooLarge)));
        }
        let n = match read_some(stream, &mut recv.buf[recv.filled..]) {
            Ok(0) if !got_bytes => {
                return Err(Failure::NoReply {
                    reused,
                    why: Why::Closed,
                });
            }
            Ok(0) => return Err(broken(None, Why::Closed)),
            Ok(n) => n,
            Err(e) if !got_bytes => {
                return Err(Failure::NoReply {
                    reused,
                    why: Why::Io(e),
                });
            }
            Err(e) => return Err(broken(None, Why::Io(e))),
        };
        got_bytes = true;
        recv.filled += n;
        while let Some(end) = parse::head_end(&recv.buf[..recv.filled], scan) {
            let head = match parse::parse_head(&recv.buf[..end]) {
                Ok(Status::Complete(head)) => head,
                Ok(Status::Partial) => break,
                Err(e) => return Err(broken(None, Why::Parse(e))),
            };
            if !(100..200).contains(&head.status) || head.status == 101 {
                break 'head head;
            }
            interim += 1;
            if interim > MAX_INTERIM {
                return Err(broken(None, Why::Interim));
            }
            recv.buf.copy_within(end..recv.filled, 0);
            recv.filled -= end;
            scan = 0;
        }
        if recv.filled > MAX_HEAD {
            return Err(broken(None, Why::Parse(parse::Error::HeadTooLarge)));
        }
        scan = recv.filled.saturating_sub(3);
    };
    let too_large = || broken(Some(Box::new(head)), Why::Parse(parse::Error::BodyTooLarge));
    let start = head.len;
    // Where the response ends in the buffer; anything after it means the connection is out
    // of step and must not be reused.
    let (body, end) = match head.framing {
        Framing::Empty => (start..start, start),
        Framing::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= limit)
                .ok_or_else(too_large)?;
            let end = start + n;
            recv.reserve(end, end);
            while recv.filled < end {
                match read_some(stream, &mut recv.buf[recv.filled..end]) {
                    Ok(0) => return Err(broken(Some(Box::new(head)), Why::Closed)),
                    Ok(n) => recv.filled += n,
                    Err(e) => return Err(broken(Some(Box::new(head)), Why::Io(e))),
                }
            }
            (start..end, end)
        }
        Framing::Chunked => {
            let mut decoder = Chunked::new(limit as u64);
            let cap = start + limit + CHUNK_SLACK;
            loop {
                match decoder.decode(&mut recv.buf[start..recv.filled]) {
                    Ok(Status::Complete(b)) => {
                        break (start + b.start..start + b.end, start + b.consumed);
                    }
                    Ok(Status::Partial) => {}
                    Err(e) => return Err(broken(Some(Box::new(head)), Why::Parse(e))),
                }
                recv.filled = start + decoder.compact(&mut recv.buf[start..recv.filled]);
                if !recv.reserve(recv.filled + 1, cap) {
                    return Err(too_large());
                }
                match read_some(stream, &mut recv.buf[recv.filled..]) {
                    Ok(0) => return Err(broken(Some(Box::new(head)), Why::Closed)),
                    Ok(n) => recv.filled += n,
                    Err(e) => return Err(broken(Some(Box::new(head)), Why::Io(e))),
                }
            }
        }
        Framing::UntilClose => loop {
            if !recv.reserve(recv.filled + 1, start + limit + 1) {
                return Err(too_large());
            }
            match read_some(stream, &mut recv.buf[recv.filled..]) {
                Ok(0) => break (start..recv.filled, usize::MAX),
                Ok(n) => recv.filled += n,
                Err(e) => return Err(broken(Some(Box::new(head)), Why::Io(e))),
            }
        },
    };
    let keep_alive = head.keep_alive && recv.filled == end;
    Ok(Reply {
        head,
        body,
        keep_alive,
    })
}

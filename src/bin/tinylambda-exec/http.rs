//! A keep-alive HTTP/1.1 client for one local server: write a request, read the reply,
//! keep the connection for the next one. Responses are parsed with tinylambda's own
//! zero-copy parser (`Content-Length`, chunked, or until close).

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::time::{Duration, Instant};

use tinylambda::parse::{self, Chunked, Framing, Status, parse_head};

use crate::deadline::Deadline;
use crate::output::MAX_RESPONSE;

/// A connection idle this long is checked before it is reused: the server may have closed
/// it (many close idle connections after a few seconds).
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// The longest wait for a connection (a local server refuses at once when it is down).
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// The largest single read.
const CHUNK: usize = 64 * 1024;

/// Why a request got no usable reply.
pub(crate) enum Failure {
    /// The connection could not be made.
    Connect(io::Error),
    /// Sending or receiving failed; `replied` if part of a reply had arrived.
    Io {
        /// What failed.
        error: io::Error,
        /// Whether any reply bytes had arrived.
        replied: bool,
    },
    /// The connection closed before the reply was complete.
    Closed {
        /// Whether any reply bytes had arrived.
        replied: bool,
    },
    /// The reply is not valid HTTP/1.1.
    Malformed(parse::Error),
    /// The reply body is over [`MAX_RESPONSE`]: this many bytes, when known.
    TooLarge(Option<u64>),
    /// The deadline came first.
    Timeout,
}

impl Failure {
    /// Whether the request may be sent again on a fresh connection: it met a kept-alive
    /// connection the server had closed (nothing came back).
    fn stale(&self) -> bool {
        matches!(
            self,
            Failure::Io { replied: false, .. } | Failure::Closed { replied: false }
        )
    }

    /// A short description for an error message.
    pub(crate) fn describe(&self) -> Vec<u8> {
        match self {
            Failure::Connect(e) => {
                [b"cannot connect: ".as_slice(), e.to_string().as_bytes()].concat()
            }
            Failure::Io { error, .. } => error.to_string().into_bytes(),
            Failure::Closed { .. } => b"the connection closed before a complete reply".to_vec(),
            Failure::Malformed(e) => {
                [b"malformed reply: ".as_slice(), e.as_str().as_bytes()].concat()
            }
            Failure::TooLarge(_) => b"reply over the size limit".to_vec(),
            Failure::Timeout => b"no reply before the deadline".to_vec(),
        }
    }
}

/// A reply: its status and where its body is in [`Client::body`].
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    body: Range<usize>,
}

/// One kept-alive connection to `addr`.
pub(crate) struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    used: Instant,
    recv: Vec<u8>,
}

impl Client {
    /// A client for `addr`, starting with `stream` if one is already connected.
    pub(crate) fn new(addr: SocketAddr, stream: Option<TcpStream>) -> Client {
        if let Some(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        Client {
            addr,
            stream,
            used: Instant::now(),
            recv: Vec::new(),
        }
    }

    /// The body of `reply`, the last one received.
    pub(crate) fn body(&self, reply: &Reply) -> &[u8] {
        self.recv.get(reply.body.clone()).unwrap_or_default()
    }

    /// Sends `head` and `body` and reads the reply, within `deadline`. A request that
    /// meets a kept-alive connection the server has closed is sent once more on a fresh
    /// one.
    pub(crate) fn send(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        let mut retried = false;
        loop {
            let reused = self.stream.is_some();
            match self.exchange(head, body, deadline) {
                Ok((reply, keep)) => {
                    if !keep {
                        self.stream = None;
                    }
                    self.used = Instant::now();
                    return Ok(reply);
                }
                Err(failure) => {
                    self.stream = None;
                    if reused && !retried && failure.stale() {
                        retried = true;
                        continue;
                    }
                    return Err(failure);
                }
            }
        }
    }

    fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Deadline,
    ) -> Result<(Reply, bool), Failure> {
        if self.stream.is_some() && self.used.elapsed() >= PROBE_AFTER && !self.alive() {
            self.stream = None;
        }
        let limit = match deadline.left() {
            Some(Duration::ZERO) => return Err(Failure::Timeout),
            left => left,
        };
        let stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let wait = limit.unwrap_or(CONNECT_LIMIT).min(CONNECT_LIMIT);
                let stream =
                    TcpStream::connect_timeout(&self.addr, wait).map_err(Failure::Connect)?;
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        let stream = self.stream.insert(stream);
        let io = |error: io::Error| match error.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout,
            _ => Failure::Io {
                error,
                replied: false,
            },
        };
        stream.set_read_timeout(limit).map_err(io)?;
        stream.set_write_timeout(limit).map_err(io)?;
        write_all(stream, head, body).map_err(io)?;
        receive(stream, &mut self.recv)
    }

    /// Whether the idle connection is still open: a non-blocking peek finds no EOF and no
    /// stray bytes.
    fn alive(&self) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        if stream.set_nonblocking(true).is_err() {
            return false;
        }
        let alive = matches!(stream.peek(&mut [0]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        stream.set_nonblocking(false).is_ok() && alive
    }
}

/// Writes `head` then `body`, vectored.
fn write_all(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    let total = head.len() + body.len();
    while sent < total {
        let (a, b) = match head.get(sent..) {
            Some(rest) if !rest.is_empty() => (rest, body),
            _ => (body.get(sent - head.len()..).unwrap_or_default(), &[][..]),
        };
        match stream.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads more of the reply into `recv`; `Ok(0)` at EOF.
fn read_more(stream: &mut TcpStream, recv: &mut Vec<u8>) -> Result<usize, Failure> {
    let len = recv.len();
    recv.resize(len + CHUNK, 0);
    let read = loop {
        match stream.read(recv.get_mut(len..).unwrap_or_default()) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            other => break other,
        }
    };
    let n = *read.as_ref().unwrap_or(&0);
    recv.truncate(len + n);
    read.map_err(|error| match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Io {
            error,
            replied: len > 0,
        },
    })
}

/// Reads one reply into `recv`; the reply and whether the connection can be kept.
fn receive(stream: &mut TcpStream, recv: &mut Vec<u8>) -> Result<(Reply, bool), Failure> {
    recv.clear();
    let head = loop {
        match parse_head(recv).map_err(Failure::Malformed)? {
            Status::Complete(head) if (100..200).contains(&head.status) => {
                recv.drain(..head.len); // an interim reply (100 Continue): the real one follows
            }
            Status::Complete(head) => break head,
            Status::Partial => {
                if read_more(stream, recv)? == 0 {
                    return Err(Failure::Closed {
                        replied: !recv.is_empty(),
                    });
                }
            }
        }
    };
    let start = head.len;
    let (body, keep) = match head.framing {
        Framing::Empty => (start..start, recv.len() == start),
        Framing::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_RESPONSE)
                .ok_or(Failure::TooLarge(Some(n)))?;
            while recv.len() < start + n {
                if read_more(stream, recv)? == 0 {
                    return Err(Failure::Closed { replied: true });
                }
            }
            (start..start + n, recv.len() == start + n)
        }
        Framing::Chunked => {
            let mut decoder = Chunked::new(MAX_RESPONSE as u64);
            loop {
                let rest = recv.get_mut(start..).unwrap_or_default();
                match decoder.decode(rest) {
                    Ok(Status::Complete(b)) => {
                        break (
                            start + b.start..start + b.end,
                            recv.len() == start + b.consumed,
                        );
                    }
                    Ok(Status::Partial) => {
                        let kept = decoder.compact(rest);
                        recv.truncate(start + kept);
                        if read_more(stream, recv)? == 0 {
                            return Err(Failure::Closed { replied: true });
                        }
                    }
                    Err(parse::Error::BodyTooLarge) => return Err(Failure::TooLarge(None)),
                    Err(e) => return Err(Failure::Malformed(e)),
                }
            }
        }
        Framing::UntilClose => {
            while read_more(stream, recv)? > 0 {
                if recv.len() - start > MAX_RESPONSE {
                    return Err(Failure::TooLarge(None));
                }
            }
            (start..recv.len(), false)
        }
    };
    Ok((
        Reply {
            status: head.status,
            body,
        },
        keep && head.keep_alive,
    ))
}

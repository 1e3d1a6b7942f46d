//! A keep-alive HTTP/1.1 client for one local server: write a request, read the reply,
//! keep the connection for the next one. Responses are parsed with tinylambda's own
//! zero-copy parser (`Content-Length`, chunked, or until close). The whole exchange,
//! connecting included, ends by one deadline (`timed.rs`), and a request is sent again only
//! when none of it went out (see [`Client::send`]).

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::time::Duration;

use tinylambda::parse::{self, Chunked, Framing, Status, parse_head};

use crate::deadline::Deadline;
use crate::output::MAX_RESPONSE;
use crate::timed::Timed;

/// The longest wait for a connection (a local server refuses at once when it is down).
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// The largest single read.
const CHUNK: usize = 64 * 1024;

/// Why a request got no usable reply.
pub(crate) enum Failure {
    /// The connection could not be made.
    Connect(io::Error),
    /// Sending or receiving failed.
    Io {
        /// What failed.
        error: io::Error,
        /// Whether any byte of the request went out (the server may have acted on it).
        sent: bool,
    },
    /// The connection closed before the reply was complete.
    Closed,
    /// The reply is not valid HTTP/1.1.
    Malformed(parse::Error),
    /// The reply body is over [`MAX_RESPONSE`]: this many bytes, when known.
    TooLarge(Option<u64>),
    /// The deadline came first.
    Timeout,
}

impl Failure {
    /// Whether the request may be sent again: not one byte of it went out, so the server
    /// cannot have seen it. A request that went out, even in part, is never sent twice: a
    /// server may act on an event it never answers.
    fn unsent(&self) -> bool {
        matches!(self, Failure::Io { sent: false, .. })
    }

    /// A short description for an error message.
    pub(crate) fn describe(&self) -> Vec<u8> {
        match self {
            Failure::Connect(e) => {
                [b"cannot connect: ".as_slice(), e.to_string().as_bytes()].concat()
            }
            Failure::Io { error, .. } => error.to_string().into_bytes(),
            Failure::Closed => b"the connection closed before a complete reply".to_vec(),
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
            recv: Vec::new(),
        }
    }

    /// The body of `reply`, the last one received.
    pub(crate) fn body(&self, reply: &Reply) -> &[u8] {
        self.recv.get(reply.body.clone()).unwrap_or_default()
    }

    /// Sends `head` and `body` and reads the reply, all by `deadline`. A kept-alive
    /// connection is checked before it is reused (the server may have closed it while it
    /// was idle), and replaced when it was; a request that then fails on it before a byte
    /// went out is sent once more, on a fresh connection. Nothing else is retried.
    pub(crate) fn send(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Deadline,
    ) -> Result<Reply, Failure> {
        if self.stream.is_some() && !self.alive() {
            self.stream = None;
        }
        let reused = self.stream.is_some();
        let result = match self.exchange(head, body, deadline) {
            Err(failure) if reused && failure.unsent() => {
                self.stream = None;
                self.exchange(head, body, deadline)
            }
            other => other,
        };
        match result {
            Ok((reply, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(reply)
            }
            Err(failure) => {
                self.stream = None;
                Err(failure)
            }
        }
    }

    /// One request and its reply, on the kept connection or a new one.
    fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Deadline,
    ) -> Result<(Reply, bool), Failure> {
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
        let mut timed = Timed::new(self.stream.insert(stream), deadline);
        let (sent, written) = timed.write_all(head, body);
        written.map_err(|error| failure(error, sent > 0))?;
        receive(&mut timed, &mut self.recv)
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

/// A failed read or write: [`Failure::Timeout`] once the deadline has passed.
fn failure(error: io::Error, sent: bool) -> Failure {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Io { error, sent },
    }
}

/// Reads more of the reply into `recv`; `Ok(0)` at EOF.
fn read_more(stream: &mut Timed<'_>, recv: &mut Vec<u8>) -> Result<usize, Failure> {
    let len = recv.len();
    recv.resize(len + CHUNK, 0);
    let read = stream.read(recv.get_mut(len..).unwrap_or_default());
    recv.truncate(len + *read.as_ref().unwrap_or(&0));
    read.map_err(|error| failure(error, true))
}

/// Reads one reply into `recv`; the reply and whether the connection can be kept.
fn receive(stream: &mut Timed<'_>, recv: &mut Vec<u8>) -> Result<(Reply, bool), Failure> {
    recv.clear();
    let head = loop {
        match parse_head(recv).map_err(Failure::Malformed)? {
            Status::Complete(head) if (100..200).contains(&head.status) => {
                recv.drain(..head.len); // an interim reply (100 Continue): the real one follows
            }
            Status::Complete(head) => break head,
            Status::Partial => {
                if read_more(stream, recv)? == 0 {
                    return Err(Failure::Closed);
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
                    return Err(Failure::Closed);
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
                            return Err(Failure::Closed);
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

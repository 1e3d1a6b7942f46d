//! A connection with one deadline for a whole exchange: each read and each write waits at
//! most the time left until it, so a server that sends (or takes) a few bytes now and then
//! cannot stretch a request past the deadline.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::deadline::Deadline;

/// `stream` for the length of one exchange that must end by `deadline`.
pub(crate) struct Timed<'s> {
    stream: &'s mut TcpStream,
    deadline: Deadline,
}

impl<'s> Timed<'s> {
    /// `stream`, every wait on it bounded by `deadline`.
    pub(crate) fn new(stream: &'s mut TcpStream, deadline: Deadline) -> Timed<'s> {
        Timed { stream, deadline }
    }

    /// The time left, as a socket timeout (`None`: no deadline); `TimedOut` when none is
    /// left.
    fn left(&self) -> io::Result<Option<Duration>> {
        match self.deadline.left() {
            Some(Duration::ZERO) => Err(ErrorKind::TimedOut.into()),
            left => Ok(left),
        }
    }

    /// Reads what is available, waiting at most until the deadline (`TimedOut` or
    /// `WouldBlock` after it).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.stream.set_read_timeout(self.left()?)?;
            match self.stream.read(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Writes `head` then `body`, vectored, by the deadline. Returns how many bytes went
    /// out, and how the writing ended.
    pub(crate) fn write_all(&mut self, head: &[u8], body: &[u8]) -> (usize, io::Result<()>) {
        let mut sent = 0;
        let total = head.len() + body.len();
        while sent < total {
            let (a, b) = match head.get(sent..) {
                Some(rest) if !rest.is_empty() => (rest, body),
                _ => (body.get(sent - head.len()..).unwrap_or_default(), &[][..]),
            };
            let timeout = match self.left() {
                Ok(timeout) => timeout,
                Err(e) => return (sent, Err(e)),
            };
            if let Err(e) = self.stream.set_write_timeout(timeout) {
                return (sent, Err(e));
            }
            match self
                .stream
                .write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
            {
                Ok(0) => return (sent, Err(ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return (sent, Err(e)),
            }
        }
        (sent, Ok(()))
    }
}

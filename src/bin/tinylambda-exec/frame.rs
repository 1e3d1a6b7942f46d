//! The persistent-mode protocol, on the child's stdin and stdout.
//!
//! To the child, per invocation: a header line with two decimal byte counts, the event's
//! and the context's, then the context, then the event:
//!
//! ```text
//! 17 165\n
//! LAMBDA_REQUEST_ID=8476a536-… LAMBDA_DEADLINE_MS=1542409706888 LAMBDA_INVOKED_FUNCTION_ARN=arn:… _X_AMZN_TRACE_ID=Root=…
//! {"hello":"world"}
//! ```
//!
//! The context is `NAME=value` words separated by single spaces, with the variables
//! per-call children get in their environment (a value the invocation lacks is left out).
//! It comes counted rather than as a line because bash reads lines one byte per system
//! call but reads a known count (`read -N`) in one.
//!
//! From the child: the response, a NUL byte, then a status line: empty for success.
//! Otherwise the invocation fails: a number means "exit status N" (`Runtime.ExitError`,
//! with the end of the child's stderr as the message), anything else is the `errorType`,
//! with the bytes before the NUL (or, when there are none, the end of its stderr) as the
//! `errorMessage`.

use std::io::{self, Read};
use std::process::ChildStdout;

use tinylambda::Context;

use crate::output::MAX_RESPONSE;
use crate::pump::Sink;
use crate::vars;

/// The longest status line accepted.
pub(crate) const MAX_STATUS: usize = 256;

/// The largest single read.
const CHUNK: usize = 64 * 1024;

/// Writes the frame's head (header line and context) for an event of `event_len` bytes.
pub(crate) fn write_head(out: &mut Vec<u8>, event_len: usize, ctx: &Context<'_>) {
    out.clear();
    vars::each(ctx, |i, value| {
        if let (Some(name), Some(value)) = (vars::NAMES.get(i), value) {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value);
        }
    });
    let mut line = tinylambda::request::decimal(event_len as u64, &mut [0; 20]).to_vec();
    line.push(b' ');
    line.extend_from_slice(tinylambda::request::decimal(out.len() as u64, &mut [0; 20]));
    line.push(b'\n');
    out.splice(0..0, line);
}

/// What a complete reply says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    /// Success, with this response.
    Response(&'a [u8]),
    /// The child reported a failure: the status line and the bytes before the NUL.
    Failed {
        /// The status line without its newline.
        status: &'a [u8],
        /// What came before the NUL.
        body: &'a [u8],
    },
    /// The response had this many bytes, over [`MAX_RESPONSE`].
    TooLarge(u64),
    /// Not a reply: a status line over [`MAX_STATUS`] bytes.
    Invalid,
}

/// Reads one reply from the child's stdout: up to the NUL and the status line after it.
/// Response bytes past the limit are counted and dropped while the NUL is looked for.
#[derive(Default)]
pub(crate) struct ReplyBuf {
    buf: Vec<u8>,
    len: usize,
    /// Bytes of `buf` already searched.
    scan: usize,
    /// Where the NUL is.
    nul: Option<usize>,
    /// Where the status line's newline is.
    end: Option<usize>,
    /// Response bytes dropped for being over the limit.
    dropped: u64,
    invalid: bool,
}

impl ReplyBuf {
    /// Forgets the last reply (keeping the buffer).
    pub(crate) fn reset(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        *self = ReplyBuf {
            buf,
            ..ReplyBuf::default()
        };
    }

    /// Appends `bytes` as if read from the child (for tests).
    #[cfg(test)]
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.truncate(self.len);
        self.buf.extend_from_slice(bytes);
        self.len = self.buf.len();
        self.advance();
    }

    /// Looks for the NUL, then the newline, in what arrived since the last call.
    fn advance(&mut self) {
        let data = self.buf.get(..self.len).unwrap_or_default();
        let from = self.scan;
        let fresh = data.get(from..).unwrap_or_default();
        self.scan = self.len;
        match self.nul {
            None => match fresh.iter().position(|&b| b == 0) {
                Some(i) => {
                    self.nul = Some(from + i);
                    self.scan = from + i + 1;
                    self.advance();
                }
                None if self.len > MAX_RESPONSE => {
                    self.dropped += self.len as u64;
                    self.len = 0;
                    self.scan = 0;
                }
                None => {}
            },
            Some(nul) => match fresh.iter().position(|&b| b == b'\n') {
                Some(i) => self.end = Some(from + i),
                None => self.invalid = self.len - nul > MAX_STATUS + 1,
            },
        }
    }

    /// The reply, once complete.
    pub(crate) fn reply(&self) -> Option<Reply<'_>> {
        if self.invalid {
            return Some(Reply::Invalid);
        }
        let (nul, end) = (self.nul?, self.end?);
        let body = self.buf.get(..nul).unwrap_or_default();
        let size = self.dropped + nul as u64;
        let status = self.buf.get(nul + 1..end).unwrap_or_default();
        let status = status.strip_suffix(b"\r").unwrap_or(status).trim_ascii();
        Some(if size > MAX_RESPONSE as u64 {
            Reply::TooLarge(size)
        } else if status.is_empty() || status == b"0" {
            Reply::Response(body)
        } else {
            Reply::Failed { status, body }
        })
    }

    /// Bytes the child wrote after its reply (a protocol slip: they are dropped).
    pub(crate) fn extra(&self) -> usize {
        self.end.map_or(0, |end| self.len.saturating_sub(end + 1))
    }
}

impl Sink for ReplyBuf {
    fn read_from(&mut self, stdout: &mut ChildStdout) -> io::Result<usize> {
        if self.buf.len() - self.len < CHUNK / 4 {
            let grown = (self.buf.len() * 2).clamp(CHUNK, MAX_RESPONSE + 2 * CHUNK);
            self.buf.resize(grown.max(self.len + CHUNK / 4), 0);
        }
        let n = stdout.read(self.buf.get_mut(self.len..).unwrap_or_default())?;
        self.len += n;
        self.advance();
        Ok(n)
    }

    fn done(&self) -> bool {
        self.end.is_some() || self.invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylambda::{Config, Header};

    #[test]
    fn the_head_counts_the_event_and_the_context() {
        let config = Config::default();
        let ctx = Context::new("id-1", &config)
            .with(Header::DeadlineMs, "1542409706888")
            .with(Header::TraceId, "Root=1-a;Sampled=1");
        let mut out = Vec::new();
        write_head(&mut out, 17, &ctx);
        let context = "LAMBDA_REQUEST_ID=id-1 LAMBDA_DEADLINE_MS=1542409706888 \
                       _X_AMZN_TRACE_ID=Root=1-a;Sampled=1";
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("17 {}\n{context}", context.len())
        );
    }

    #[test]
    fn a_reply_is_complete_at_the_status_line_in_any_pieces() {
        let mut r = ReplyBuf::default();
        for piece in [&b"{\"ok\""[..], b":1}", b"\0", b"\n"] {
            assert_eq!(r.reply(), None);
            r.push(piece);
        }
        assert_eq!(r.reply(), Some(Reply::Response(b"{\"ok\":1}")));
        assert_eq!(r.extra(), 0);
        r.reset();
        r.push(b"body\x000\nextra");
        assert_eq!(r.reply(), Some(Reply::Response(b"body")));
        assert_eq!(r.extra(), 5);
    }

    #[test]
    fn a_status_line_reports_a_failure() {
        let mut r = ReplyBuf::default();
        r.push(b"bad input\0Function.BadInput\r\n");
        assert_eq!(
            r.reply(),
            Some(Reply::Failed {
                status: b"Function.BadInput",
                body: b"bad input"
            })
        );
        r.reset();
        r.push(b"\x003\n");
        assert_eq!(
            r.reply(),
            Some(Reply::Failed {
                status: b"3",
                body: b""
            })
        );
    }

    #[test]
    fn an_endless_status_line_is_invalid() {
        let mut r = ReplyBuf::default();
        r.push(b"x\0");
        r.push(&[b'y'; MAX_STATUS]);
        assert_eq!(r.reply(), None);
        r.push(b"yy");
        assert_eq!(r.reply(), Some(Reply::Invalid));
    }

    #[test]
    fn a_response_over_the_limit_is_counted_not_kept() {
        let mut r = ReplyBuf::default();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..7 {
            r.push(&chunk);
        }
        r.push(b"tail\0\n");
        assert!(r.buf.len() < 2 << 20, "memory stays bounded");
        assert_eq!(r.reply(), Some(Reply::TooLarge(7 * (1 << 20) + 4)));
    }
}

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
//! From the child, a reply in one of two forms:
//!
//! - the response, a NUL byte, then a status line (`{"ok":1}\0\n`); the response cannot
//!   hold a NUL;
//! - counted: a NUL, `=` and the response's length in bytes, optionally a space and a
//!   status, a newline, then exactly that many bytes, any bytes (`\0=3\na\0b`,
//!   `\0=7 Function.Bad\nno good`).
//!
//! The status is empty for success. Otherwise the invocation fails: a number means "exit
//! status N" (`Runtime.ExitError`, with the end of the child's stderr as the message),
//! anything else is the `errorType`, with the response bytes (or, when there are none, the
//! end of its stderr) as the `errorMessage`. A status line is text: a control character
//! in it (a NUL printed inside a response), or over [`MAX_STATUS`] bytes, is a protocol
//! error, and the child is replaced.
//!
//! The two streams stay in step only if the child reads its whole frame before it replies,
//! and writes nothing but the reply: one that replies with part of its frame unwritten or
//! unread, or writes more after its reply, is replaced (its reply stands), so that the
//! rest is never taken for the next invocation's (see `persistent.rs`).

use std::io::{self, Read};
use std::ops::Range;
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
    /// The child reported a failure: the status and the response bytes.
    Failed {
        /// The status (after the count, in the counted form), without its newline.
        status: &'a [u8],
        /// The response bytes.
        body: &'a [u8],
    },
    /// The response had this many bytes, over [`MAX_RESPONSE`].
    TooLarge(u64),
    /// Not a reply: a status line over [`MAX_STATUS`] bytes, or with a control character
    /// in it, or a count that is not a number.
    Invalid,
}

/// Where [`ReplyBuf`] is in a reply.
#[derive(Default)]
enum Stage {
    /// Looking for the NUL that ends the response.
    #[default]
    Body,
    /// Looking for the newline that ends the status line after the NUL at `nul`.
    Status {
        /// Where the NUL is.
        nul: usize,
    },
    /// The counted form: `left` of the `size` response bytes have yet to arrive, kept from
    /// `start` when within the limit, else counted and dropped.
    Counted {
        /// The status, after the count.
        status: Range<usize>,
        /// Where the response starts.
        start: usize,
        /// Response bytes still to come.
        left: u64,
        /// The count.
        size: u64,
    },
    /// A whole reply.
    Complete {
        /// The response bytes (empty when they were dropped for their size).
        body: Range<usize>,
        /// The status.
        status: Range<usize>,
        /// The size of the response.
        size: u64,
        /// Bytes read after the reply.
        extra: usize,
    },
    /// Not a reply.
    Invalid,
}

/// Reads one reply from the child's stdout, in either form. Response bytes past the limit
/// are counted and dropped as they arrive, so memory stays bounded.
#[derive(Default)]
pub(crate) struct ReplyBuf {
    buf: Vec<u8>,
    /// Bytes of `buf` in use.
    len: usize,
    /// Bytes of `buf` already looked at.
    scan: usize,
    stage: Stage,
    /// Response bytes dropped (uncounted form) for being over the limit.
    dropped: u64,
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

    /// Goes through what arrived since the last call, as far as it allows.
    fn advance(&mut self) {
        loop {
            let data = self.buf.get(..self.len).unwrap_or_default();
            let fresh = data.get(self.scan..).unwrap_or_default();
            match self.stage {
                Stage::Body => match fresh.iter().position(|&b| b == 0) {
                    Some(i) => {
                        let nul = self.scan + i;
                        self.stage = Stage::Status { nul };
                        self.scan = nul + 1;
                    }
                    None if self.len > MAX_RESPONSE => {
                        self.dropped += self.len as u64;
                        self.len = 0;
                        self.scan = 0;
                        return;
                    }
                    None => {
                        self.scan = self.len;
                        return;
                    }
                },
                Stage::Status { nul } => match fresh.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let end = self.scan + i;
                        self.stage = self.status_line(nul, end);
                        self.scan = end + 1;
                    }
                    None => {
                        if self.len - nul > MAX_STATUS + 1 {
                            self.stage = Stage::Invalid;
                        }
                        self.scan = self.len;
                        return;
                    }
                },
                Stage::Counted {
                    ref status,
                    start,
                    left,
                    size,
                } => {
                    let have = (self.len - start) as u64;
                    if size <= MAX_RESPONSE as u64 {
                        if have >= left {
                            self.stage = Stage::Complete {
                                body: start..start + size as usize,
                                status: status.clone(),
                                size,
                                extra: (have - left) as usize,
                            };
                        } else {
                            self.scan = self.len;
                        }
                        return;
                    }
                    // Over the limit: drop what arrived of the response, keep what follows.
                    let used = have.min(left);
                    self.buf.copy_within(start + used as usize..self.len, start);
                    self.len -= used as usize;
                    self.scan = self.len;
                    let left = left - used;
                    self.stage = if left == 0 {
                        Stage::Complete {
                            body: start..start,
                            status: status.clone(),
                            size,
                            extra: self.len - start,
                        }
                    } else {
                        Stage::Counted {
                            status: status.clone(),
                            start,
                            left,
                            size,
                        }
                    };
                    return;
                }
                Stage::Complete { .. } | Stage::Invalid => return,
            }
        }
    }

    /// What the status line between the NUL at `nul` and the newline at `end` starts: the
    /// end of an uncounted reply, or the response of a counted one.
    fn status_line(&self, nul: usize, end: usize) -> Stage {
        let line = self.buf.get(nul + 1..end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().any(|&b| b < b' ' || b == 0x7f) {
            return Stage::Invalid;
        }
        let Some(counted) = line.strip_prefix(b"=") else {
            return Stage::Complete {
                body: 0..nul,
                status: nul + 1..nul + 1 + line.len(),
                size: self.dropped + nul as u64,
                extra: self.len - end - 1,
            };
        };
        // `\0=COUNT[ STATUS]\n`, then COUNT bytes; nothing may come before the NUL.
        let digits = counted.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = counted.get(digits..).unwrap_or_default();
        let size = counted
            .get(..digits)
            .and_then(tinylambda::parse::parse_decimal);
        match size {
            Some(size)
                if nul == 0
                    && self.dropped == 0
                    && (rest.is_empty() || rest.first() == Some(&b' ')) =>
            {
                let after = nul + 2 + digits;
                let status = if rest.is_empty() {
                    after..after
                } else {
                    after + 1..nul + 1 + line.len()
                };
                Stage::Counted {
                    status,
                    start: end + 1,
                    left: size,
                    size,
                }
            }
            _ => Stage::Invalid,
        }
    }

    /// The reply, once complete.
    pub(crate) fn reply(&self) -> Option<Reply<'_>> {
        let Stage::Complete {
            ref body,
            ref status,
            size,
            ..
        } = self.stage
        else {
            return matches!(self.stage, Stage::Invalid).then_some(Reply::Invalid);
        };
        let body = self.buf.get(body.clone()).unwrap_or_default();
        let status = self
            .buf
            .get(status.clone())
            .unwrap_or_default()
            .trim_ascii();
        Some(if size > MAX_RESPONSE as u64 {
            Reply::TooLarge(size)
        } else if status.is_empty() || status == b"0" {
            Reply::Response(body)
        } else {
            Reply::Failed { status, body }
        })
    }

    /// Bytes the child wrote after its reply (it is out of step).
    pub(crate) fn extra(&self) -> usize {
        match self.stage {
            Stage::Complete { extra, .. } => extra,
            _ => 0,
        }
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
        matches!(self.stage, Stage::Complete { .. } | Stage::Invalid)
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

    #[test]
    fn a_counted_reply_holds_any_bytes_and_may_carry_a_status() {
        let mut r = ReplyBuf::default();
        for piece in [&b"\0=3"[..], b"\n", b"x\0", b"y"] {
            assert_eq!(r.reply(), None);
            r.push(piece);
        }
        assert_eq!(r.reply(), Some(Reply::Response(b"x\0y")));
        assert_eq!(r.extra(), 0);
        r.reset();
        r.push(b"\0=7 Function.Bad\r\nno\0good");
        assert_eq!(
            r.reply(),
            Some(Reply::Failed {
                status: b"Function.Bad",
                body: b"no\0good"
            })
        );
        r.reset();
        r.push(b"\0=0\n\0\n");
        assert_eq!(r.reply(), Some(Reply::Response(b"")));
        assert_eq!(r.extra(), 2);
    }

    #[test]
    fn a_counted_reply_over_the_limit_is_counted_not_kept() {
        let mut r = ReplyBuf::default();
        let size = MAX_RESPONSE + 10;
        r.push(format!("\0={size}\n").as_bytes());
        let chunk = vec![b'a'; 1 << 20];
        let mut left = size;
        while left > chunk.len() {
            r.push(&chunk);
            left -= chunk.len();
            assert!(r.buf.len() < 3 << 20, "memory stays bounded");
        }
        r.push(&[&chunk[..left], b"more"].concat());
        assert_eq!(r.reply(), Some(Reply::TooLarge(size as u64)));
        assert_eq!(r.extra(), 4);
    }

    #[test]
    fn malformed_status_lines_are_invalid() {
        for bytes in [
            &b"a\0b\0\n"[..],             // a NUL in the status: a shell function printed one
            b"\0=x\n",                    // a count that is not a number
            b"\0=3x\nabc",                // no space after the count
            b"body\0=4\nabcd",            // bytes before a counted reply
            b"\0=99999999999999999999\n", // a count over u64
        ] {
            let mut r = ReplyBuf::default();
            r.push(bytes);
            assert_eq!(r.reply(), Some(Reply::Invalid), "{bytes:?}");
        }
    }
}

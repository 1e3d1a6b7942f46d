//! A per-call child's stdout, collected up to Lambda's response limit; the rest is read
//! and counted, never stored, so a child printing gigabytes neither blocks nor exhausts
//! memory.

use std::io::{self, Read};
use std::process::ChildStdout;

use crate::pump::Sink;

/// Lambda's limit for a buffered response: 6 MiB and 100 bytes.
pub(crate) const MAX_RESPONSE: usize = 6_291_556;

/// The largest single read.
const CHUNK: usize = 64 * 1024;

/// Everything the child wrote to stdout, up to [`MAX_RESPONSE`].
#[derive(Default)]
pub(crate) struct Collected {
    /// Initialised storage; the output is `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
    /// Bytes received, kept or not.
    total: u64,
}

impl Sink for Collected {
    fn read_from(&mut self, stdout: &mut ChildStdout) -> io::Result<usize> {
        if self.buf.len() - self.len < CHUNK / 4 && self.buf.len() < MAX_RESPONSE + CHUNK {
            let grown = (self.buf.len() * 2).clamp(CHUNK, MAX_RESPONSE + CHUNK);
            self.buf.resize(grown, 0);
        }
        let n = stdout.read(self.buf.get_mut(self.len..).unwrap_or_default())?;
        self.total += n as u64;
        // Past the limit, the same space at the end is read into again and again.
        self.len = (self.len + n).min(MAX_RESPONSE);
        Ok(n)
    }
}

impl Collected {
    /// Empties it for the next invocation, keeping the storage (its pages are already
    /// mapped: a fresh 64 KiB buffer per invocation costs page faults), unless a large
    /// output made it grow past 1 MiB.
    pub(crate) fn clear(&mut self) {
        if self.buf.len() > 1 << 20 {
            self.buf = Vec::new();
        }
        self.len = 0;
        self.total = 0;
    }

    /// Bytes received in all.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Whether it all fitted within the limit.
    pub(crate) fn fits(&self) -> bool {
        self.total <= MAX_RESPONSE as u64
    }

    /// A copy of the output, without trailing newlines when `trim` is set (as `$(...)`
    /// removes them).
    pub(crate) fn response(&self, trim: bool) -> Vec<u8> {
        let out = self.buf.get(..self.len).unwrap_or_default();
        if trim { trim_newlines(out) } else { out }.to_vec()
    }
}

/// `out` without its trailing `\n`s, as shell command substitution removes them.
pub(crate) fn trim_newlines(mut out: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n'] = out {
        out = rest;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_removes_every_trailing_newline_and_nothing_else() {
        assert_eq!(trim_newlines(b"{\"a\": 1}\n\n"), b"{\"a\": 1}");
        assert_eq!(trim_newlines(b"x\n \r"), b"x\n \r");
        assert_eq!(trim_newlines(b"\n"), b"");
    }
}

//! The child's stderr: forwarded to ours line by line as it arrives (it is the function's
//! log), with the end of it kept for the `errorMessage` of a failed invocation.

use std::borrow::Cow;
use std::io::{self, Read};

use crate::log::write_stderr;

/// How much of the end of the child's stderr goes into an `errorMessage`.
pub(crate) const TAIL_BYTES: usize = 4096;

/// A line longer than this is forwarded in pieces rather than held back.
const MAX_LINE: usize = 16 * 1024;

/// Forwards whole lines and remembers the last [`TAIL_BYTES`] of the current invocation.
pub(crate) struct Relay {
    /// The start of a line whose end has not arrived.
    partial: Vec<u8>,
    /// The end of what arrived since [`Relay::begin`] (up to twice `TAIL_BYTES`).
    tail: Vec<u8>,
    /// Whether bytes were dropped from the front of `tail`.
    cut: bool,
    scratch: Box<[u8]>,
    /// Where lines go: our stderr.
    out: fn(&[u8]),
}

impl Relay {
    /// A relay with nothing pending.
    pub(crate) fn new() -> Relay {
        Relay {
            partial: Vec::new(),
            tail: Vec::new(),
            cut: false,
            scratch: vec![0; 16 * 1024].into_boxed_slice(),
            out: write_stderr,
        }
    }

    /// A relay that only keeps the tail: nothing reaches our stderr (for output that is
    /// reported some other way).
    pub(crate) fn quiet() -> Relay {
        Relay {
            out: |_| {},
            ..Relay::new()
        }
    }

    /// Starts a new invocation's tail.
    pub(crate) fn begin(&mut self) {
        self.tail.clear();
        self.cut = false;
    }

    /// Reads what is available from `stderr` (after `poll` said it is readable) and
    /// forwards it; `Ok(0)` at the end of the stream.
    pub(crate) fn read_from(&mut self, stderr: &mut impl Read) -> io::Result<usize> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let read = stderr.read(&mut scratch);
        if let Ok(n) = read {
            self.push(scratch.get(..n).unwrap_or_default());
        }
        self.scratch = scratch;
        read
    }

    /// Forwards the complete lines of `bytes` (and of what was pending) in one write and
    /// keeps the rest for later.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * TAIL_BYTES {
            let drop = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..drop);
            self.cut = true;
        }
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                let (lines, rest) = bytes.split_at(last + 1);
                self.partial.extend_from_slice(lines);
                (self.out)(&self.partial);
                self.partial.clear();
                self.partial.extend_from_slice(rest);
            }
            None => self.partial.extend_from_slice(bytes),
        }
        if self.partial.len() > MAX_LINE {
            self.finish();
        }
    }

    /// Forwards a pending partial line, ended with a newline (the stream ended, or the line
    /// is too long to hold).
    pub(crate) fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            (self.out)(&self.partial);
            self.partial.clear();
        }
    }

    /// The end of this invocation's stderr as text: at most [`TAIL_BYTES`], starting at a
    /// line when it had to be cut, without trailing whitespace.
    pub(crate) fn tail(&self) -> Cow<'_, str> {
        let mut tail = &self.tail[..];
        if tail.len() > TAIL_BYTES {
            tail = tail.get(tail.len() - TAIL_BYTES..).unwrap_or_default();
        }
        if self.cut || tail.len() < self.tail.len() {
            if let Some(nl) = tail.iter().position(|&b| b == b'\n') {
                if nl + 1 < tail.len() {
                    tail = tail.get(nl + 1..).unwrap_or_default();
                }
            }
        }
        String::from_utf8_lossy(tail.trim_ascii_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::RefCell;

    thread_local! {
        static WRITES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    fn record(bytes: &[u8]) {
        WRITES.with(|w| w.borrow_mut().push(bytes.to_vec()));
    }

    fn relay() -> Relay {
        WRITES.with(|w| w.borrow_mut().clear());
        Relay {
            out: record,
            ..Relay::new()
        }
    }

    fn writes() -> Vec<Vec<u8>> {
        WRITES.with(|w| w.borrow().clone())
    }

    #[test]
    fn whole_lines_go_out_as_they_arrive_and_a_last_partial_one_at_the_end() {
        let mut relay = relay();
        relay.push(b"one\ntw");
        assert_eq!(writes(), [b"one\n".to_vec()]);
        relay.push(b"o\nthree\nfo");
        assert_eq!(writes()[1], b"two\nthree\n");
        relay.push(b"ur");
        assert_eq!(writes().len(), 2, "no newline yet");
        relay.finish();
        assert_eq!(writes()[2], b"four\n");
        relay.finish();
        assert_eq!(writes().len(), 3);
    }

    #[test]
    fn an_endless_line_is_forwarded_in_pieces() {
        let mut relay = relay();
        relay.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(writes().len(), 1);
        assert_eq!(writes()[0].len(), MAX_LINE + 2);
    }

    #[test]
    fn the_tail_is_the_end_of_this_invocation_from_a_line_start() {
        let mut relay = relay();
        relay.push(b"old invocation\n");
        relay.begin();
        assert_eq!(relay.tail(), "");
        relay.push(b"first\nsecond");
        relay.push(b" half\n");
        assert_eq!(relay.tail(), "first\nsecond half");
        let mut many = Vec::new();
        for i in 0..2000 {
            many.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        relay.push(&many);
        let tail = relay.tail();
        assert!(tail.len() <= TAIL_BYTES);
        assert!(tail.starts_with("line "), "{tail:?}");
        assert!(tail.ends_with("line 1999"));
        relay.finish();
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut relay = relay();
        relay.push(b"bad \xff byte\n");
        assert_eq!(relay.tail(), "bad \u{fffd} byte");
    }
}

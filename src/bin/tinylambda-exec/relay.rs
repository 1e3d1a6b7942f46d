//! The child's stderr: forwarded to ours line by line as it arrives (it is the function's
//! log, in its format: see `forward.rs`), with the end of it kept for the `errorMessage` of
//! a failed invocation.

use std::borrow::Cow;
use std::io::{self, Read};

use tinylambda::Context;

use crate::forward::{Forward, MAX_LINE};

/// How much of the end of the child's stderr goes into an `errorMessage`.
pub(crate) const TAIL_BYTES: usize = 4096;

/// Forwards whole lines and remembers the last [`TAIL_BYTES`] of the current invocation.
pub(crate) struct Relay {
    /// The start of a line whose end has not arrived.
    partial: Vec<u8>,
    /// The end of what arrived since [`Relay::begin`] (up to twice `TAIL_BYTES`).
    tail: Vec<u8>,
    /// Whether bytes were dropped from the front of `tail`.
    cut: bool,
    scratch: Box<[u8]>,
    /// Where lines go: our stderr, in the function's log format.
    out: Forward,
}

impl Relay {
    /// A relay with nothing pending.
    pub(crate) fn new() -> Relay {
        Relay {
            partial: Vec::new(),
            tail: Vec::new(),
            cut: false,
            scratch: vec![0; 16 * 1024].into_boxed_slice(),
            out: Forward::to_log(),
        }
    }

    /// A relay that only keeps the tail: nothing reaches our stderr (for output that is
    /// reported some other way).
    pub(crate) fn quiet() -> Relay {
        Relay {
            out: Forward::with(|_| {}, None),
            ..Relay::new()
        }
    }

    /// Starts the invocation of `ctx`: a new tail, and the lines from now on are about it.
    pub(crate) fn begin(&mut self, ctx: &Context<'_>) {
        self.tail.clear();
        self.cut = false;
        self.out.begin(ctx);
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
                self.out.lines(&self.partial);
                self.partial.clear();
                self.partial.extend_from_slice(rest);
            }
            None => self.partial.extend_from_slice(bytes),
        }
        if self.partial.len() > MAX_LINE {
            self.overflow();
        }
    }

    /// Forwards the start of a line too long to hold. In text format, as a line of its own
    /// (ended with a newline); in JSON format, as records, up to its last whole character
    /// (the rest of that character stays for the next piece, so none is split).
    fn overflow(&mut self) {
        if self.out.is_text() {
            return self.finish();
        }
        let cut = self.partial.len() - incomplete_char(&self.partial);
        self.out.piece(self.partial.get(..cut).unwrap_or_default());
        self.partial.drain(..cut);
    }

    /// Forwards a pending partial line, ended with a newline (the stream ended, or the
    /// invocation did, or in text format the line is too long to hold).
    pub(crate) fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            self.out.lines(&self.partial);
            self.partial.clear();
        }
        // Whatever was pending has ended, even a long line whose last piece went out.
        self.out.line_ended();
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

/// How many bytes at the end of `bytes` are the start of a UTF-8 character whose other
/// bytes have not arrived (0 to 3).
fn incomplete_char(bytes: &[u8]) -> usize {
    for back in 1..=3 {
        let Some(&b) = bytes.len().checked_sub(back).and_then(|i| bytes.get(i)) else {
            return 0;
        };
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: the character starts further back
        }
        let width = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::RefCell;

    use tinylambda::{Config, Header};

    use crate::forward::Invocation;

    thread_local! {
        static WRITES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    fn record(bytes: &[u8]) {
        WRITES.with(|w| w.borrow_mut().push(bytes.to_vec()));
    }

    /// A record as the JSON format's writer would get it: `INFO id tenant: message`.
    fn json_record(invocation: Option<&Invocation>, message: &str) {
        let (id, tenant) = invocation.map_or(("-", "-"), |i| {
            (i.request_id.as_str(), i.tenant_id.as_deref().unwrap_or("-"))
        });
        record(format!("INFO {id} {tenant}: {message}").as_bytes());
    }

    fn relay() -> Relay {
        WRITES.with(|w| w.borrow_mut().clear());
        Relay {
            out: Forward::with(record, None),
            ..Relay::new()
        }
    }

    fn json_relay() -> Relay {
        WRITES.with(|w| w.borrow_mut().clear());
        Relay {
            out: Forward::with(record, Some(json_record)),
            ..Relay::new()
        }
    }

    fn texts() -> Vec<String> {
        writes()
            .iter()
            .map(|w| String::from_utf8(w.clone()).unwrap())
            .collect()
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
        relay.begin(&Context::new("r", &Config::default()));
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

    #[test]
    fn json_format_passes_objects_and_wraps_other_lines_of_the_invocation() {
        let config = Config::default();
        let mut relay = json_relay();
        relay.push(b"before any invocation\n");
        relay.begin(&Context::new("r-1", &config).with(Header::TenantId, "t-1"));
        relay.push(b"plain\n{\"level\":\"WARN\",\"message\":\"m\"}\n{not json}\n\nbad \xff\n");
        relay.begin(&Context::new("r-2", &config));
        relay.push(b"  {\"a\":[1]} \r\nlast");
        relay.finish();
        assert_eq!(
            texts(),
            [
                "INFO - -: before any invocation",
                "INFO r-1 t-1: plain",
                "{\"level\":\"WARN\",\"message\":\"m\"}\n",
                "INFO r-1 t-1: {not json}",
                "INFO r-1 t-1: ",
                "INFO r-1 t-1: bad \u{fffd}",
                "  {\"a\":[1]} \r\n",
                "INFO r-2 -: last",
            ]
        );
    }

    #[test]
    fn json_format_wraps_an_endless_line_in_pieces_split_between_characters() {
        let mut relay = json_relay();
        // 'é' is two bytes after a start of odd length: the 4 KiB reads end inside one, and
        // so would the pieces, unless the relay moved them.
        let line = format!("{{\"a\":\"x{}\"}}", "é".repeat(2 * MAX_LINE));
        for chunk in line.as_bytes().chunks(4096) {
            relay.push(chunk);
        }
        relay.push(b"\n");
        let texts = texts();
        assert!(texts.len() >= 3, "{}", texts.len());
        let mut joined = String::new();
        for text in &texts {
            joined += text.strip_prefix("INFO - -: ").unwrap();
        }
        assert_eq!(
            joined, line,
            "a long JSON object is wrapped whole, in pieces"
        );
    }

    #[test]
    fn json_format_takes_a_line_over_the_limit_for_text_even_when_whole() {
        let mut relay = json_relay();
        let line = format!("{{\"a\":\"{}\"}}\n", "x".repeat(MAX_LINE));
        relay.push(line.as_bytes());
        assert_eq!(texts(), [format!("INFO - -: {}", line.trim_end())]);
        let fits = format!("{{\"a\":\"{}\"}}\n", "x".repeat(MAX_LINE - 8));
        relay.push(fits.as_bytes());
        assert_eq!(texts()[1], fits);
    }

    #[test]
    fn json_format_ends_a_long_line_with_its_stream_even_with_nothing_left() {
        let mut relay = json_relay();
        // Pieces end at character boundaries: an ASCII line leaves nothing pending.
        relay.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(texts().len(), 1);
        relay.finish();
        relay.push(b"{\"a\":1}\n");
        assert_eq!(
            texts()[1],
            "{\"a\":1}\n",
            "the next line is a line of its own"
        );
    }

    #[test]
    fn text_format_is_untouched() {
        let config = Config::default();
        let mut relay = relay();
        relay.begin(&Context::new("r-1", &config));
        relay.push(b"plain\n{\"a\":1}\nbad \xff\n");
        assert_eq!(writes(), [b"plain\n{\"a\":1}\nbad \xff\n".to_vec()]);
    }

    #[test]
    fn incomplete_characters_are_found_at_the_end() {
        assert_eq!(incomplete_char(b""), 0);
        assert_eq!(incomplete_char(b"abc"), 0);
        assert_eq!(incomplete_char("é".as_bytes()), 0);
        assert_eq!(incomplete_char(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_char(&"😀".as_bytes()[..3]), 3);
        assert_eq!(incomplete_char(&"😀".as_bytes()[..2]), 2);
        assert_eq!(incomplete_char("😀".as_bytes()), 0);
        assert_eq!(
            incomplete_char(b"\x80\x80\x80"),
            0,
            "stray continuation bytes"
        );
        assert_eq!(incomplete_char(b"a\xff"), 0);
    }
}

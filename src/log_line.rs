//! One log line in Lambda's formats, built in a caller's buffer, `core` only: no `core::fmt`,
//! no allocation.
//!
//! - JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`): one object per line,
//!   `{"timestamp":"2026-12-02T15:04:05.123Z","level":"WARN","requestId":"…","tenantId":"…","message":"…"}`,
//!   `requestId` and `tenantId` only when known; every string strictly escaped (quotes,
//!   backslashes, control characters as `\u00XX`; bytes that are not UTF-8 as U+FFFD).
//!   Lambda filters such lines by their `level`.
//! - Text: `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage`, the line managed runtimes write, with each
//!   line break in the message written as a carriage return so the message stays one log
//!   event.
//!
//! A message longer than one line's buffer is written in pieces, one line each, every piece a
//! whole line of its own (a JSON piece is a whole object), each cut at a character boundary.

// Bytes here come from handlers and the network: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use crate::request::hex;

/// A log level, as Lambda's advanced logging controls name them (`AWS_LAMBDA_LOG_LEVEL`),
/// from the most detailed to the most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `TRACE`: the finest detail.
    Trace,
    /// `DEBUG`: detail for diagnosis.
    Debug,
    /// `INFO`: what happens normally (the default level).
    Info,
    /// `WARN`: something unexpected that the function survived.
    Warn,
    /// `ERROR`: a failure.
    Error,
    /// `FATAL`: a failure that ends the process.
    Fatal,
}

impl Level {
    /// Every level, the most detailed first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The name Lambda uses: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// The level named `name`, in any case; `None` for anything else.
    pub fn parse(name: &[u8]) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|level| name.eq_ignore_ascii_case(level.as_str().as_bytes()))
    }

    /// The level at `index` in [`Level::ALL`] (the most severe past its end).
    pub(crate) fn from_index(index: u8) -> Level {
        Level::ALL
            .get(usize::from(index))
            .copied()
            .unwrap_or(Level::Fatal)
    }
}

/// What a line says besides its message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'a> {
    pub level: Level,
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The open invocation's `Lambda-Runtime-Aws-Request-Id`, if any.
    pub request_id: Option<&'a [u8]>,
    /// Its `Lambda-Runtime-Aws-Tenant-Id`, if any.
    pub tenant_id: Option<&'a [u8]>,
}

/// Room a line needs besides its message, at most (the fields are bounded: request ids to
/// 256 bytes, tenant ids are cut to 256 bytes, each escaped to at most 6 bytes a byte).
pub(crate) const OVERHEAD: usize = 96 + 2 * 6 * MAX_ID;

/// The longest request or tenant id written; longer ones are cut.
const MAX_ID: usize = 256;

/// Writes the first line of `message` with `fields` into `buf` (JSON or text); returns the
/// line's length, newline included, and how many bytes of `message` it holds. The rest of
/// the message goes in further lines (call again with what is left). `buf` must have room
/// for [`OVERHEAD`] bytes and some of the message; with less, the line is cut.
pub(crate) fn write(buf: &mut [u8], json: bool, fields: &Fields<'_>, message: &[u8]) -> (usize, usize) {
    let mut w = Writer { buf, len: 0 };
    let mut stamp = [0; 24];
    let stamp = timestamp(fields.now_ms, &mut stamp);
    // One byte at the end for the line break, and for JSON the `"}` before it.
    let room = w.buf.len().saturating_sub(if json { 3 } else { 1 });
    let used;
    if json {
        w.put(b"{\"timestamp\":\"");
        w.put(stamp);
        w.put(b"\",\"level\":\"");
        w.put(fields.level.as_str().as_bytes());
        w.put(b"\"");
        for (key, value) in [
            (&b",\"requestId\":\""[..], fields.request_id),
            (b",\"tenantId\":\"", fields.tenant_id),
        ] {
            if let Some(value) = value {
                w.put(key);
                let value = value.get(..MAX_ID).unwrap_or(value);
                let (_, written) = escape(value, w.rest(room));
                w.len += written;
                w.put(b"\"");
            }
        }
        w.put(b",\"message\":\"");
        let (read, written) = escape(message, w.rest(room));
        w.len += written;
        used = read;
        w.put(b"\"}");
    } else {
        w.put(stamp);
        w.put(b"\t");
        if let Some(id) = fields.request_id {
            w.put(id.get(..MAX_ID).unwrap_or(id));
        }
        w.put(b"\t");
        w.put(fields.level.as_str().as_bytes());
        w.put(b"\t");
        let take = text_piece(message, room.saturating_sub(w.len));
        let start = w.len;
        w.put(take);
        // The message stays one log event: line breaks become carriage returns.
        for b in w.buf.get_mut(start..w.len).unwrap_or_default() {
            if *b == b'\n' {
                *b = b'\r';
            }
        }
        used = take.len();
    }
    w.put(b"\n");
    (w.len, used)
}

/// The longest start of `message` of at most `room` bytes that ends at a character
/// boundary (a byte that is not UTF-8 counts as one character).
fn text_piece(message: &[u8], room: usize) -> &[u8] {
    let mut end = 0;
    while end < message.len() {
        let len = char_len(message.get(end..).unwrap_or_default()).unwrap_or(1);
        if end + len > room {
            break;
        }
        end += len;
    }
    message.get(..end).unwrap_or_default()
}

/// Writes `src` JSON-escaped (no quotes) into `dst`, whole characters only, as many as fit;
/// returns how many bytes of `src` that took and how many it wrote. Quotes and backslashes
/// get a backslash, control characters become `\u00XX`, valid UTF-8 is kept and any other
/// byte becomes `\ufffd`.
pub(crate) fn escape(src: &[u8], dst: &mut [u8]) -> (usize, usize) {
    let (mut read, mut written) = (0, 0);
    while let Some(&b) = src.get(read) {
        let mut unicode = [b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 15)];
        let (out, len): (&[u8], usize) = match b {
            b'"' | b'\\' => (&[b'\\', b][..], 1),
            0..=0x1f => (&unicode[..], 1),
            0x20..=0x7f => (src.get(read..=read).unwrap_or_default(), 1),
            _ => match char_len(src.get(read..).unwrap_or_default()) {
                Some(len) => (src.get(read..read + len).unwrap_or_default(), len),
                None => {
                    unicode = *b"\\ufffd";
                    (&unicode[..], 1)
                }
            },
        };
        let Some(slot) = dst.get_mut(written..written + out.len()) else {
            break;
        };
        slot.copy_from_slice(out);
        written += out.len();
        read += len;
    }
    (read, written)
}

/// The length of the UTF-8 character `bytes` starts with, when it is a valid one (no
/// overlong form, no surrogate, nothing past U+10FFFF).
pub(crate) fn char_len(bytes: &[u8]) -> Option<usize> {
    let (&first, rest) = bytes.split_first()?;
    let (len, least) = match first {
        0..=0x7f => return Some(1),
        0xc2..=0xdf => (1, 0x80),
        0xe0..=0xef => (2, 0x800),
        0xf0..=0xf4 => (3, 0x1_0000),
        _ => return None,
    };
    let mut code = u32::from(first) & (0x3f >> len);
    for &next in rest.get(..len)? {
        if next & 0xc0 != 0x80 {
            return None;
        }
        code = code << 6 | u32::from(next & 0x3f);
    }
    let valid = code >= least && code <= 0x10_ffff && !(0xd800..0xe000).contains(&code);
    valid.then_some(len + 1)
}

/// `ms` (milliseconds since the Unix epoch) as `YYYY-MM-DDTHH:MM:SS.mmmZ` in `out`.
pub(crate) fn timestamp(ms: u64, out: &mut [u8; 24]) -> &[u8] {
    let seconds = ms / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm), in unsigned arithmetic from
    // 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    let mut w = Writer {
        buf: &mut out[..],
        len: 0,
    };
    for (value, digits, after) in [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (of_day / 3600, 2, b':'),
        (of_day / 60 % 60, 2, b':'),
        (of_day % 60, 2, b'.'),
        (ms % 1000, 3, b'Z'),
    ] {
        for i in (0..digits).rev() {
            w.put(&[b'0' + (value / 10u64.pow(i) % 10) as u8]);
        }
        w.put(&[after]);
    }
    let len = w.len;
    out.get(..len).unwrap_or_default()
}

/// Appends to a fixed buffer, as much as fits.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.len += crate::log::join(self.buf.get_mut(self.len..).unwrap_or_default(), &[bytes]);
    }

    /// The free part of the buffer, up to `room` bytes from its start.
    fn rest(&mut self, room: usize) -> &mut [u8] {
        self.buf.get_mut(self.len..room.max(self.len)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: bool, fields: &Fields<'_>, message: &[u8], size: usize) -> Vec<String> {
        let mut buf = vec![0; size];
        let mut rest = message;
        let mut lines = Vec::new();
        loop {
            let (len, used) = write(&mut buf, json, fields, rest);
            lines.push(String::from_utf8(buf[..len].to_vec()).unwrap());
            rest = &rest[used..];
            if rest.is_empty() || used == 0 {
                break;
            }
        }
        lines
    }

    const AT: u64 = 1_764_687_845_123; // 2025-12-02T15:04:05.123Z

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let mut out = [0; 24];
        assert_eq!(timestamp(0, &mut out), b"1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(AT, &mut out), b"2025-12-02T15:04:05.123Z");
        assert_eq!(timestamp(951_782_400_000, &mut out), b"2000-02-29T00:00:00.000Z");
        assert_eq!(timestamp(4_107_542_399_999, &mut out), b"2100-02-28T23:59:59.999Z");
        assert_eq!(timestamp(253_402_300_799_999, &mut out), b"9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn json_lines_carry_every_field_escaped() {
        let fields = Fields {
            level: Level::Warn,
            now_ms: AT,
            request_id: Some(b"r-1"),
            tenant_id: Some(b"t\"1"),
        };
        assert_eq!(
            line(true, &fields, b"a \"q\" \\ \n\x01 \xc3\xa9 \xff", 4096),
            [concat!(
                r#"{"timestamp":"2025-12-02T15:04:05.123Z","level":"WARN","requestId":"r-1","#,
                r#""tenantId":"t\"1","message":"a \"q\" \\ \u000A\u0001 é \ufffd"}"#,
                "\n"
            )]
        );
        let bare = Fields {
            request_id: None,
            tenant_id: None,
            ..fields
        };
        assert_eq!(
            line(true, &bare, b"", 4096),
            ["{\"timestamp\":\"2025-12-02T15:04:05.123Z\",\"level\":\"WARN\",\"message\":\"\"}\n"]
        );
    }

    #[test]
    fn text_lines_keep_the_message_one_event() {
        let fields = Fields {
            level: Level::Info,
            now_ms: AT,
            request_id: Some(b"r-2"),
            tenant_id: None,
        };
        assert_eq!(
            line(false, &fields, b"two\nlines", 4096),
            ["2025-12-02T15:04:05.123Z\tr-2\tINFO\ttwo\rlines\n"]
        );
        let none = Fields {
            request_id: None,
            ..fields
        };
        assert_eq!(
            line(false, &none, b"init", 4096),
            ["2025-12-02T15:04:05.123Z\t\tINFO\tinit\n"]
        );
    }

    #[test]
    fn long_messages_go_out_in_whole_lines_cut_at_characters() {
        let fields = Fields {
            level: Level::Info,
            now_ms: AT,
            request_id: Some(b"r"),
            tenant_id: None,
        };
        let message: String = "é\"x".repeat(10_000);
        for json in [true, false] {
            let lines = line(json, &fields, message.as_bytes(), 4096);
            assert!(lines.len() > 5);
            let mut joined = String::new();
            for l in &lines {
                assert!(l.len() <= 4096 && l.ends_with('\n'));
                if json {
                    let start = l.find("\"message\":\"").unwrap() + 11;
                    let body = &l[start..l.len() - 3];
                    joined += &body.replace("\\\"", "\"");
                } else {
                    joined += l.trim_end_matches('\n').rsplit('\t').next().unwrap();
                }
            }
            assert_eq!(joined, message);
        }
    }

    #[test]
    fn characters_are_checked_strictly() {
        for ok in ["a", "é", "€", "😀"] {
            assert_eq!(char_len(ok.as_bytes()), Some(ok.len()), "{ok}");
        }
        for bad in [
            &b"\xc0\x80"[..],
            b"\xe0\x80\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc3",
            b"\x80",
        ] {
            assert_eq!(char_len(bad), None, "{bad:?}");
        }
        assert_eq!(escape(b"\xe2\x82", &mut [0; 16]), (2, 12));
        assert_eq!(escape(b"\xe2\x82", &mut [0; 8]), (1, 6), "whole escapes only");
    }

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(Level::parse(b"warn"), Some(Level::Warn));
        assert_eq!(Level::parse(b"FATAL"), Some(Level::Fatal));
        assert_eq!(Level::parse(b"Trace"), Some(Level::Trace));
        assert_eq!(Level::parse(b"verbose"), None);
        assert!(Level::Debug < Level::Info);
    }
}

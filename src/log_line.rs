//! One log line in Lambda's formats, built in a caller's buffer, `core` only: no `core::fmt`,
//! no allocation.
//!
//! - JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`): one object per line,
//!   `{"timestamp":"2026-12-02T15:04:05.123Z","level":"WARN","requestId":"…","tenantId":"…","message":"…"}`,
//!   `requestId` and `tenantId` only when known; every string escaped by the JSON module
//!   ([`crate::json::escape_into`]: quotes, backslashes, control characters as `\u00XX`).
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
    pub request_id: Option<&'a str>,
    /// Its `Lambda-Runtime-Aws-Tenant-Id`, if any.
    pub tenant_id: Option<&'a str>,
}

/// The longest request or tenant id written; longer ones are cut.
const MAX_ID: usize = 256;

/// Writes the first line of `message` with `fields` into `buf` as one JSON object,
/// `{"timestamp":…,"level":…,"requestId":…,"tenantId":…,"message":…}`; returns the line's
/// length, newline included, and how many bytes of `message` it holds. The rest of the
/// message goes in further lines (call again with what is left). With a buffer too small for
/// the fields and some of the message, the line is cut.
#[inline(never)]
pub(crate) fn write_json(buf: &mut [u8], fields: &Fields<'_>, message: &str) -> (usize, usize) {
    let mut stamp = *b"0000-00-00T00:00:00.000Z";
    timestamp(fields.now_ms, &mut stamp);
    // Room at the end for `"}` and the line break.
    let room = buf.len().saturating_sub(3);
    let mut w = Writer { buf, len: 0 };
    w.expand(
        b"{\"timestamp\":\"\x01\",\"level\":\"\x02\"",
        &[&stamp, fields.level.as_str().as_bytes()],
    );
    for (key, value) in [
        (&b",\"requestId\":\""[..], fields.request_id),
        (b",\"tenantId\":\"", fields.tenant_id),
    ] {
        if let Some(value) = value {
            w.put(key);
            w.escaped(crate::request::cut(value, MAX_ID), room);
            w.put(b"\"");
        }
    }
    w.put(b",\"message\":\"");
    let used = w.escaped(message, room);
    w.put(b"\"}\n");
    (w.len, used)
}

/// [`write_json`] in text: `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage`, line breaks in the message
/// written as carriage returns.
#[inline(never)]
pub(crate) fn write_text_line(
    buf: &mut [u8],
    fields: &Fields<'_>,
    message: &str,
) -> (usize, usize) {
    let mut stamp = *b"0000-00-00T00:00:00.000Z";
    timestamp(fields.now_ms, &mut stamp);
    // Room at the end for the line break.
    let room = buf.len().saturating_sub(1);
    let mut w = Writer { buf, len: 0 };
    let id = crate::request::cut(fields.request_id.unwrap_or_default(), MAX_ID);
    w.expand(
        b"\x01\t\x02\t\x03\t",
        &[&stamp, id.as_bytes(), fields.level.as_str().as_bytes()],
    );
    let take = crate::request::cut(message, room.saturating_sub(w.len));
    let start = w.len;
    w.put(take.as_bytes());
    // The message stays one log event: line breaks become carriage returns.
    for b in w.buf.get_mut(start..w.len).unwrap_or_default() {
        if *b == b'\n' {
            *b = b'\r';
        }
    }
    w.put(b"\n");
    (w.len, take.len())
}

/// Writes `ms` (milliseconds since the Unix epoch) into `out`, a `0000-00-00T00:00:00.000Z`
/// template, as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn timestamp(ms: u64, out: &mut [u8; 24]) {
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
    // Each value goes in the run of digits of the template that ends before `end`.
    for (end, mut value) in [
        (4, year),
        (7, month),
        (10, day),
        (13, of_day / 3600),
        (16, of_day / 60 % 60),
        (19, of_day % 60),
        (23usize, ms % 1000),
    ] {
        let mut at = end;
        while let Some(digit) = at.checked_sub(1).and_then(|i| out.get_mut(i)) {
            if !digit.is_ascii_digit() {
                break;
            }
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
            at -= 1;
        }
    }
}

/// Appends to a fixed buffer, as much as fits.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.len += crate::bytes::copy(self.buf.get_mut(self.len..).unwrap_or_default(), bytes);
    }

    /// `template` with its `args` (see [`crate::bytes::expand`]).
    fn expand(&mut self, template: &[u8], args: &[&[u8]]) {
        let rest = self.buf.get_mut(self.len..).unwrap_or_default();
        self.len += crate::bytes::expand(rest, template, args).0;
    }

    /// As much of `src`, escaped, as fits before `room`; returns how much of `src` that was.
    fn escaped(&mut self, src: &str, room: usize) -> usize {
        let rest = self
            .buf
            .get_mut(self.len..room.max(self.len))
            .unwrap_or_default();
        let (read, written) = crate::json::escape_into(src, rest);
        self.len += written;
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(json: bool, fields: &Fields<'_>, message: &str, size: usize) -> Vec<String> {
        let mut buf = vec![0; size];
        let mut rest = message;
        let mut lines = Vec::new();
        loop {
            let (len, used) = if json {
                write_json(&mut buf, fields, rest)
            } else {
                write_text_line(&mut buf, fields, rest)
            };
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
        let at = |ms| {
            let mut out = *b"0000-00-00T00:00:00.000Z";
            timestamp(ms, &mut out);
            String::from_utf8(out.to_vec()).unwrap()
        };
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(AT), "2025-12-02T15:04:05.123Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(at(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn json_lines_carry_every_field_escaped() {
        let fields = Fields {
            level: Level::Warn,
            now_ms: AT,
            request_id: Some("r-1"),
            tenant_id: Some("t\"1"),
        };
        assert_eq!(
            lines(true, &fields, "a \"q\" \\ \n\u{1} é", 4096),
            [concat!(
                r#"{"timestamp":"2025-12-02T15:04:05.123Z","level":"WARN","requestId":"r-1","#,
                r#""tenantId":"t\"1","message":"a \"q\" \\ \u000A\u0001 é"}"#,
                "\n"
            )]
        );
        let bare = Fields {
            request_id: None,
            tenant_id: None,
            ..fields
        };
        assert_eq!(
            lines(true, &bare, "", 4096),
            ["{\"timestamp\":\"2025-12-02T15:04:05.123Z\",\"level\":\"WARN\",\"message\":\"\"}\n"]
        );
    }

    #[test]
    fn text_lines_keep_the_message_one_event() {
        let fields = Fields {
            level: Level::Info,
            now_ms: AT,
            request_id: Some("r-2"),
            tenant_id: None,
        };
        assert_eq!(
            lines(false, &fields, "two\nlines", 4096),
            ["2025-12-02T15:04:05.123Z\tr-2\tINFO\ttwo\rlines\n"]
        );
        let none = Fields {
            request_id: None,
            ..fields
        };
        assert_eq!(
            lines(false, &none, "init", 4096),
            ["2025-12-02T15:04:05.123Z\t\tINFO\tinit\n"]
        );
    }

    #[test]
    fn long_messages_go_out_in_whole_lines_cut_at_characters() {
        let fields = Fields {
            level: Level::Info,
            now_ms: AT,
            request_id: Some("r"),
            tenant_id: None,
        };
        let message: String = "é\"x😀".repeat(10_000);
        for json in [true, false] {
            let lines = lines(json, &fields, &message, 4096);
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
    fn levels_parse_in_any_case() {
        assert_eq!(Level::parse(b"warn"), Some(Level::Warn));
        assert_eq!(Level::parse(b"FATAL"), Some(Level::Fatal));
        assert_eq!(Level::parse(b"Trace"), Some(Level::Trace));
        assert_eq!(Level::parse(b"verbose"), None);
        assert!(Level::Debug < Level::Info);
    }
}

//! The function's log: the runtime's own lines and handlers' records, in the format and
//! from the level Lambda's logging controls set (`AWS_LAMBDA_LOG_FORMAT`,
//! `AWS_LAMBDA_LOG_LEVEL`), on stderr, without `core::fmt` or allocation.
//!
//! - Text (the default): the runtime's lines are `tinylambda: …`, as they always were;
//!   handlers' records are `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage` (see [`crate::log_line`]).
//! - JSON: every line is one JSON object with `timestamp`, `level`, `message` and, while an
//!   invocation is open, its `requestId` (and `tenantId`), so Lambda can filter by level.
//!
//! Lines below the level are not written (nor built: nothing is read, not even the clock).
//! Each line goes out in one `write` of at most [`LINE`] bytes (the size the kernel writes
//! to a pipe whole), so lines from concurrent loops never interleave; a longer record is
//! written as several lines.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::bytes::{copy, expand};
use crate::log_line::{self, Fields, Level};

/// The longest line written at once: `PIPE_BUF`, the most a pipe takes in one piece.
pub(crate) const LINE: usize = 4096;

/// The longest message of a runtime line (its template filled in); longer ones are cut.
const MESSAGE: usize = 1024;

/// How the function's log lines are written: `AWS_LAMBDA_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Plain lines (`Text`, and the default).
    Text,
    /// One JSON object per line (`JSON`), which Lambda filters by its `level`.
    Json,
}

/// The settings once read: [`READ`], [`JSON`] and the least level's index in its low bits.
static SETTINGS: AtomicU8 = AtomicU8::new(0);
const READ: u8 = 0x80;
const JSON: u8 = 0x40;

/// The log format and the least level written, read from the environment on first use.
pub(crate) fn settings() -> (LogFormat, Level) {
    let mut bits = SETTINGS.load(Ordering::Relaxed);
    if bits & READ == 0 {
        bits = configure(&crate::Config::from_env());
    }
    let format = if bits & JSON != 0 {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    (format, Level::from_index(bits & 7))
}

/// Takes the settings from `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`, in any case) and
/// `AWS_LAMBDA_LOG_LEVEL` (`TRACE` to `FATAL`, in any case) as `config` read them, unless
/// they were taken already: an unset variable is text, `INFO`; an unknown value is the same,
/// with one warning line. The runtime calls it at start, before any thread of its own
/// exists; a plain load and store are enough.
#[inline(never)]
pub(crate) fn configure(config: &crate::Config) -> u8 {
    let bits = SETTINGS.load(Ordering::Relaxed);
    if bits & READ != 0 {
        return bits;
    }
    let (format, level) = (
        config.log_format().as_bytes(),
        config.log_level().as_bytes(),
    );
    let mut bits = READ | Level::Info as u8;
    let mut unknown: [Option<&[u8]>; 2] = [None, None];
    if format.eq_ignore_ascii_case(b"json") {
        bits |= JSON;
    } else if !format.is_empty() && !format.eq_ignore_ascii_case(b"text") {
        unknown[0] = Some(b"AWS_LAMBDA_LOG_FORMAT=\x01 is not Text or JSON: writing text");
    }
    match Level::parse(level) {
        Some(level) => bits = bits & !7 | level as u8,
        None if level.is_empty() => {}
        None => {
            unknown[1] = Some(
                b"AWS_LAMBDA_LOG_LEVEL=\x01 is not TRACE, DEBUG, INFO, WARN, ERROR or FATAL: \
                  writing INFO and above",
            )
        }
    }
    SETTINGS.store(bits, Ordering::Relaxed);
    for (template, given) in unknown.iter().zip([format, level]) {
        if let Some(template) = template {
            line(Level::Warn, None, template, &[given]);
        }
    }
    bits
}

/// The invocation a line is about.
#[derive(Clone, Copy, Debug)]
pub(crate) struct About<'a> {
    pub request_id: &'a str,
    pub tenant_id: Option<&'a str>,
}

/// Writes one of the runtime's own lines at `level`: `tinylambda: ` and `template` with its
/// `args` (see [`crate::bytes::expand`]), cut at 1 KiB. In text, control characters in it
/// (which may come from the network) become spaces, so a line stays one line; in JSON they
/// are escaped, and `about` names the open invocation.
#[inline(never)]
pub(crate) fn line(level: Level, about: Option<About<'_>>, template: &[u8], args: &[&[u8]]) {
    let (format, least) = settings();
    if level < least {
        return;
    }
    // The message, and room after it for the line break of a text line.
    let mut line = [0; MESSAGE + 1];
    let (message, _) = line.split_at_mut(MESSAGE);
    let mut len = copy(message, b"tinylambda: ");
    len += expand(message.get_mut(len..).unwrap_or_default(), template, args).0;
    // Control characters (which may come from the network) become spaces, in either
    // format: a runtime line reads the same in both.
    for b in message.get_mut(..len).unwrap_or_default() {
        if *b < b' ' || *b == 0x7f {
            *b = b' ';
        }
    }
    if format == LogFormat::Json {
        let message = message.get_mut(..len).unwrap_or_default();
        // A JSON string is UTF-8: bytes from the network that are not become `?`.
        if crate::sys::utf8(message).is_none() {
            for b in message.iter_mut().filter(|b| **b >= 0x80) {
                *b = b'?';
            }
        }
        return json_record(level, about, crate::sys::utf8(message).unwrap_or_default());
    }
    if let Some(end) = line.get_mut(len) {
        *end = b'\n';
    }
    crate::sys::write_stderr(line.get(..=len).unwrap_or_default());
}

/// Writes `message` as records of `level` about `about` in the configured format (see
/// [`crate::log_line`]): one line, or as many as it takes, each in one `write`. Nothing at
/// all below the configured level.
#[inline(never)]
pub(crate) fn record(level: Level, about: Option<About<'_>>, message: &str) {
    if level >= settings().1 {
        records(level, about, message);
    }
}

/// [`record`] without the level check.
fn records(level: Level, about: Option<About<'_>>, message: &str) {
    if settings().0 == LogFormat::Json {
        json_record(level, about, message)
    } else {
        pieces(log_line::write_text_line, level, about, message)
    }
}

/// A runtime line as a JSON record (a runtime line fits in one).
fn json_record(level: Level, about: Option<About<'_>>, message: &str) {
    pieces(log_line::write_json, level, about, message)
}

/// Writes `message` with `write`, one line at a time, each in one `write(2)`.
#[inline(always)]
fn pieces(
    write: fn(&mut [u8], &Fields<'_>, &str) -> (usize, usize),
    level: Level,
    about: Option<About<'_>>,
    mut message: &str,
) {
    let fields = Fields {
        level,
        now_ms: crate::sys::now_ms(),
        request_id: about.map(|a| a.request_id),
        tenant_id: about.and_then(|a| a.tenant_id),
    };
    let mut buf = [0; LINE];
    loop {
        let (len, used) = write(&mut buf, &fields, message);
        crate::sys::write_stderr(buf.get(..len).unwrap_or_default());
        message = message.get(used..).unwrap_or_default();
        if message.is_empty() || used == 0 {
            return;
        }
    }
}

/// Writes one of the runtime's own lines at `FATAL` and ends the process with status 1.
#[inline(always)]
pub(crate) fn fatal(template: &[u8], args: &[&[u8]]) -> ! {
    line(Level::Fatal, None, template, args);
    crate::sys::exit(1)
}

/// At most the first 200 bytes of a reply body, for a log line.
pub(crate) fn excerpt(body: &[u8]) -> &[u8] {
    body.get(..200).unwrap_or(body)
}

/// A short description of an OS error number, written into `buf`: its name on Linux for
/// the errors a connection to the Runtime API meets, and the number. No `core::fmt`.
pub(crate) fn describe_os_error(code: i32, buf: &mut [u8; DESCRIBED]) -> &[u8] {
    let name: &[u8] = match code {
        // No OS error: std's name lookup is the one source, only with `resolve`.
        #[cfg(feature = "resolve")]
        0 => return b"the host name did not resolve",
        32 => b"broken pipe",
        104 => b"connection reset",
        110 => b"timed out",
        111 => b"connection refused",
        _ => b"I/O error",
    };
    let mut digits = [0; 20];
    let digits = crate::request::decimal(u64::from(code.unsigned_abs()), &mut digits);
    let (len, _) = expand(buf, b"\x01 (os error \x02)", &[name, digits]);
    buf.get(..len).unwrap_or_default()
}

/// Room for a description of an error (see [`describe_os_error`]).
pub(crate) const DESCRIBED: usize = 64;

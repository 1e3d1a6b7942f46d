//! Our own diagnostics on stderr (the function's log), one line each, without `core::fmt`.

use std::io::Write;

use tinylambda::{Level, LogFormat};

/// Writes one of our own lines to the function's log at `level`: `tinylambda-exec: ` and
/// the parts, control characters in them (which may come from a child or the environment)
/// made spaces. In text format it is one line in one write, as it always was; in JSON
/// format a record written by the library (bytes that are not UTF-8 replaced), like the
/// runtime's own lines. Below `AWS_LAMBDA_LOG_LEVEL` nothing, in either format, as for
/// the runtime's lines.
pub(crate) fn log(level: Level, parts: &[&[u8]]) {
    if level < tinylambda::log_level() {
        return;
    }
    let line = text_line(parts);
    match tinylambda::log_format() {
        LogFormat::Text => write_stderr(&line),
        LogFormat::Json => {
            let message = line.strip_suffix(b"\n").unwrap_or(&line);
            tinylambda::log(level, &String::from_utf8_lossy(message));
        }
    }
}

/// Writes `tinylambda-exec: ` and the parts as one plain line, in one write: for the
/// command line (`cli.rs`), where no log format applies.
pub(crate) fn plain(parts: &[&[u8]]) {
    write_stderr(&text_line(parts));
}

/// `tinylambda-exec: `, the parts with control characters made spaces, and a newline.
fn text_line(parts: &[&[u8]]) -> Vec<u8> {
    let mut line = b"tinylambda-exec: ".to_vec();
    for part in parts {
        line.extend(
            part.iter()
                .map(|&b| if b < b' ' || b == 0x7f { b' ' } else { b }),
        );
    }
    line.push(b'\n');
    line
}

/// Writes `bytes` to our stderr as they are, ignoring errors: there is nowhere better to
/// report them.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().write_all(bytes);
}

/// `n` in decimal, for log lines and messages.
pub(crate) fn decimal(n: u64) -> Vec<u8> {
    tinylambda::request::decimal(n, &mut [0; 20]).to_vec()
}

//! One-line diagnostics on stderr (the function's log), without `core::fmt`.

use std::io;

/// The longest line written; longer lines are cut.
const MAX_LINE: usize = 1024;

/// Writes `tinylambda: ` and the parts as one line, in one `write`. Control characters in
/// the parts (which may come from the network) become spaces, so a line stays one line.
pub(crate) fn log(parts: &[&[u8]]) {
    let mut line = b"tinylambda: ".to_vec();
    for part in parts {
        line.extend_from_slice(part);
    }
    line.truncate(MAX_LINE - 1);
    for b in &mut line {
        if *b < b' ' || *b == 0x7f {
            *b = b' ';
        }
    }
    line.push(b'\n');
    crate::sys::write_stderr(&line);
}

/// Logs the parts and ends the process with status 1.
pub(crate) fn fatal(parts: &[&[u8]]) -> ! {
    log(parts);
    std::process::exit(1)
}

/// At most the first 200 bytes of a reply body, for a log line.
pub(crate) fn excerpt(body: &[u8]) -> &[u8] {
    body.get(..200).unwrap_or(body)
}

/// Whether an I/O error is EINTR (a signal arrived): the call should just be repeated.
pub(crate) fn interrupted(e: &io::Error) -> bool {
    e.raw_os_error() == Some(4)
}

/// Appends a short description of an OS error number: its name on Linux for the errors a
/// connection to the Runtime API meets, and the number. No `core::fmt`.
pub(crate) fn describe_os_error(code: i32, out: &mut Vec<u8>) {
    out.extend_from_slice(match code {
        // No OS error: std's name lookup is the one source (with the `resolve` feature).
        0 => b"the host name did not resolve",
        32 => b"broken pipe",
        104 => b"connection reset",
        110 => b"timed out",
        111 => b"connection refused",
        _ => b"I/O error",
    });
    if code != 0 {
        out.extend_from_slice(b" (os error ");
        out.extend_from_slice(crate::request::decimal(
            u64::from(code.unsigned_abs()),
            &mut [0; 20],
        ));
        out.push(b')');
    }
}

//! One-line diagnostics on stderr (the function's log), without `core::fmt`.

use std::io::{self, Write};

/// The longest line written; longer lines are cut.
const MAX_LINE: usize = 1024;

/// Writes `tinylambda: ` and the parts as one line, in one `write`. Control characters in
/// the parts (which may come from the network) become spaces, so a line stays one line.
pub(crate) fn log(parts: &[&[u8]]) {
    let mut line = [0u8; MAX_LINE];
    let mut n = 0;
    for &b in [&b"tinylambda: "[..]]
        .iter()
        .chain(parts)
        .flat_map(|p| p.iter())
    {
        if n == MAX_LINE - 1 {
            break;
        }
        line[n] = if b < b' ' || b == 0x7f { b' ' } else { b };
        n += 1;
    }
    line[n] = b'\n';
    // Nothing useful can be done if stderr is gone.
    let _ = io::stderr().write_all(&line[..=n]);
}

/// Logs the parts and ends the process with status 1.
pub(crate) fn fatal(parts: &[&[u8]]) -> ! {
    log(parts);
    std::process::exit(1)
}

/// At most the first 200 bytes of a reply body, for a log line.
pub(crate) fn excerpt(body: &[u8]) -> &[u8] {
    &body[..body.len().min(200)]
}

/// A short description of an I/O error, without `core::fmt`: its kind, and the OS error
/// number in `digits` when there is one.
pub(crate) fn io_error<'d>(e: &io::Error, digits: &'d mut [u8; 20]) -> [&'d [u8]; 3] {
    use io::ErrorKind::*;
    let kind: &'static [u8] = match e.kind() {
        ConnectionRefused => b"connection refused",
        ConnectionReset => b"connection reset by peer",
        ConnectionAborted => b"connection aborted",
        BrokenPipe => b"broken pipe",
        NotConnected => b"not connected",
        TimedOut => b"timed out",
        AddrNotAvailable => b"address not available",
        UnexpectedEof => b"connection closed",
        WriteZero => b"connection accepted no more bytes",
        OutOfMemory => b"out of memory",
        _ => b"I/O error",
    };
    match e.raw_os_error().and_then(|n| u64::try_from(n).ok()) {
        Some(n) => [kind, b" (os error ", crate::request::decimal(n, digits)],
        None => [kind, b"", b""],
    }
}

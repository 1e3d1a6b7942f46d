//! Our own diagnostics on stderr (the function's log), one line each, without `core::fmt`.

use std::io::Write;

/// Writes `tinylambda-exec: ` and the parts as one line, in one write. Control characters
/// in the parts (which may come from a child or the environment) become spaces.
pub(crate) fn log(parts: &[&[u8]]) {
    let mut line = b"tinylambda-exec: ".to_vec();
    for part in parts {
        line.extend(
            part.iter()
                .map(|&b| if b < b' ' || b == 0x7f { b' ' } else { b }),
        );
    }
    line.push(b'\n');
    write_stderr(&line);
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

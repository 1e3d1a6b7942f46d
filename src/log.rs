//! One-line diagnostics on stderr (the function's log), without `core::fmt`.

/// The longest line written; longer lines are cut.
const MAX_LINE: usize = 1024;

/// Writes `tinylambda: ` and the parts as one line, in one `write`. Control characters in
/// the parts (which may come from the network) become spaces, so a line stays one line.
/// The line is built on the stack: logging allocates nothing.
#[inline(never)]
pub(crate) fn log(parts: &[&[u8]]) {
    const PREFIX: &[u8] = b"tinylambda: ";
    let mut line = [0; MAX_LINE];
    // One byte short of the line: room for the line break.
    let body = line.get_mut(..MAX_LINE - 1).unwrap_or_default();
    let mut len = copy(body, PREFIX);
    len += join(body.get_mut(len..).unwrap_or_default(), parts);
    for b in body.get_mut(..len).unwrap_or_default() {
        if *b < b' ' || *b == 0x7f {
            *b = b' ';
        }
    }
    if let Some(end) = line.get_mut(len) {
        *end = b'\n';
    }
    crate::sys::write_stderr(line.get(..=len).unwrap_or_default());
}

/// Copies the parts one after the other into `buf`, as many bytes as fit; returns how many
/// were copied.
pub(crate) fn join(buf: &mut [u8], parts: &[&[u8]]) -> usize {
    let mut len = 0;
    for part in parts {
        len += copy(buf.get_mut(len..).unwrap_or_default(), part);
    }
    len
}

/// Copies `src` to the start of `dst`, as much as fits, and returns how many bytes that
/// was: `copy_from_slice` without its length check, whose panic path (a formatted message)
/// costs about 200 bytes.
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) -> usize {
    let mut len = 0;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
        len += 1;
    }
    len
}

/// Logs the parts and ends the process with status 1.
#[inline(always)]
pub(crate) fn fatal(parts: &[&[u8]]) -> ! {
    log(parts);
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
    let len = join(buf, &[name, b" (os error ", digits, b")"]);
    buf.get(..len).unwrap_or_default()
}

/// Room for a description of an error (see [`describe_os_error`]).
pub(crate) const DESCRIBED: usize = 64;

/// `len` zero bytes, grown from an empty vector (what `vec![0; len]` does, but through the
/// growth path the other buffers use, rather than code of its own).
#[allow(clippy::slow_vector_initialization)] // On purpose: see above.
pub(crate) fn zeroed(len: usize) -> alloc::vec::Vec<u8> {
    let mut buf = alloc::vec::Vec::new();
    buf.resize(len, 0);
    buf
}

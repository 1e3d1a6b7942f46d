//! One-line diagnostics on stderr (the function's log), without `core::fmt`.

/// The longest line written; longer lines are cut.
const MAX_LINE: usize = 1024;

/// Writes `tinylambda: ` and `template` with its `args` (see [`expand`]) as one line, in
/// one `write`. Control characters in the arguments (which may come from the network)
/// become spaces, so a line stays one line. The line is built on the stack: logging
/// allocates nothing.
#[inline(never)]
pub(crate) fn log(template: &[u8], args: &[&[u8]]) {
    const PREFIX: &[u8] = b"tinylambda: ";
    let mut line = [0; MAX_LINE];
    // One byte short of the line: room for the line break.
    let body = line.get_mut(..MAX_LINE - 1).unwrap_or_default();
    let mut len = copy(body, PREFIX);
    len += expand(body.get_mut(len..).unwrap_or_default(), template, args).0;
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

/// Copies `template` into `buf`, each byte 1 to 9 in it replaced by `args[byte - 1]` (which
/// is copied as it is), as much as fits; returns how many bytes were written and whether
/// that was all. One template in place of the fixed pieces between the values costs a
/// caller one pointer and length instead of one per piece: log lines and request heads are
/// written this way.
pub(crate) fn expand(buf: &mut [u8], template: &[u8], args: &[&[u8]]) -> (usize, bool) {
    let mut len = 0;
    let mut whole = true;
    for b in template {
        let part = match args.get(usize::from(*b).wrapping_sub(1)) {
            Some(arg) if *b < 10 => arg,
            _ => core::slice::from_ref(b),
        };
        let copied = copy(buf.get_mut(len..).unwrap_or_default(), part);
        whole &= copied == part.len();
        len += copied;
    }
    (len, whole)
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

/// Logs the line (see [`log`]) and ends the process with status 1.
#[inline(always)]
pub(crate) fn fatal(template: &[u8], args: &[&[u8]]) -> ! {
    log(template, args);
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

/// `len` zero bytes: `vec![0; len]`, which asks the allocator for zeroed memory, so a large
/// buffer's pages (fresh from the system, already zero) are not written, nor touched, until
/// bytes arrive in them.
pub(crate) fn zeroed(len: usize) -> alloc::vec::Vec<u8> {
    alloc::vec![0; len]
}

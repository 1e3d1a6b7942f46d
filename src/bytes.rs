//! Copying into fixed buffers, without panics or `core::fmt`: what log lines and request
//! heads are written with.

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

/// Copies the parts one after the other into `buf`, as many bytes as fit; returns how many
/// were copied.
pub(crate) fn join(buf: &mut [u8], parts: &[&[u8]]) -> usize {
    let mut len = 0;
    for part in parts {
        len += copy(buf.get_mut(len..).unwrap_or_default(), part);
    }
    len
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

/// `len` zero bytes: `vec![0; len]`, which asks the allocator for zeroed memory, so a large
/// buffer's pages (fresh from the system, already zero) are not written, nor touched, until
/// bytes arrive in them.
pub(crate) fn zeroed(len: usize) -> alloc::vec::Vec<u8> {
    alloc::vec![0; len]
}

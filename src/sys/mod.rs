//! The operating system behind a few small functions: the only `unsafe` code in the crate.
//!
//! - [`linux`]: on Linux (Lambda's only platform) the runtime calls the C library directly,
//!   with or without std: the socket, its reads and writes with the error as the plain
//!   `errno` number, stderr, sleeps and the IP address parser. Why each is not std's is
//!   written there, with what it saves.
//! - [`portable`]: anywhere else (a laptop running a handler's unit tests), the same
//!   functions on std's portable facilities (`TcpStream`, `std::io::stderr`,
//!   `std::thread`). It needs the `std` feature; `--cfg tinylambda_portable` selects it on
//!   Linux too, which is how it is tested.
//! - [`env`]: the environment (configuration reads, `_X_AMZN_TRACE_ID`): through std's
//!   functions when std is there (they hold std's environment lock), through the C
//!   library's without it.
//! - [`heap`]: on Linux, the small allocator [`crate::main!`] gives a static musl program
//!   without std, for Rust and the C library both, in place of musl's own.
//! - [`thread`] and [`signals`], for the opt-in features.
//!
//! Exiting and the wall clock are here too: std's when std is there (its exit flushes
//! `stdout`), the C library's without it.

#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
mod linux;
#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
pub(crate) use linux::*;

#[cfg(all(
    not(feature = "std"),
    any(not(target_os = "linux"), tinylambda_portable)
))]
compile_error!(
    "tinylambda without the `std` feature runs on Linux only (it calls the C library \
     directly): enable the `std` feature for this target"
);

#[cfg(any(not(target_os = "linux"), tinylambda_portable))]
mod portable;
#[cfg(any(not(target_os = "linux"), tinylambda_portable))]
pub(crate) use portable::*;

pub(crate) mod env;
#[cfg(target_os = "linux")]
pub(crate) mod heap;
#[cfg(feature = "graceful-shutdown")]
pub(crate) mod signals;
#[cfg(any(feature = "graceful-shutdown", feature = "concurrent"))]
pub(crate) mod thread;

use core::marker::PhantomData;

// Without std, nothing else links the C library: this does, statically into a static
// binary (musl's `crt-static` targets), dynamically otherwise.
#[cfg(not(feature = "std"))]
#[cfg_attr(
    target_feature = "crt-static",
    link(name = "c", kind = "static", modifiers = "-bundle")
)]
#[cfg_attr(not(target_feature = "crt-static"), link(name = "c"))]
unsafe extern "C" {}

/// One slice of a vectored write, laid out as the C library's `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct IoVec<'a> {
    base: *const u8,
    len: usize,
    bytes: PhantomData<&'a [u8]>,
}

impl<'a> IoVec<'a> {
    /// A slice of nothing.
    #[cfg(feature = "streaming")]
    pub(crate) const EMPTY: IoVec<'static> = IoVec::new(&[]);

    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        IoVec {
            base: bytes.as_ptr(),
            len: bytes.len(),
            bytes: PhantomData,
        }
    }

    /// The bytes again.
    #[cfg(any(not(target_os = "linux"), tinylambda_portable))]
    pub(crate) fn as_slice(&self) -> &'a [u8] {
        // SAFETY: made from a slice that lives for 'a, in `new`.
        unsafe { core::slice::from_raw_parts(self.base, self.len) }
    }
}

/// Ends the process with `code`: std's `exit` (which flushes `stdout` first) with std, the C
/// library's without.
#[inline(always)]
pub(crate) fn exit(code: i32) -> ! {
    #[cfg(feature = "std")]
    {
        std::process::exit(code)
    }
    #[cfg(not(feature = "std"))]
    {
        unsafe extern "C" {
            fn exit(code: core::ffi::c_int) -> !;
        }
        // SAFETY: the C library's exit, which runs its exit handlers and never returns.
        unsafe { exit(code) }
    }
}

/// Ends the process with `code` at once, through the C library's `_exit`: no exit handlers,
/// no flushing, nothing that could allocate or take a lock. For ends after which nothing
/// may be trusted (a panic without std, a damaged heap).
#[cfg(target_os = "linux")]
#[inline(always)]
pub(crate) fn exit_at_once(code: i32) -> ! {
    unsafe extern "C" {
        fn _exit(code: core::ffi::c_int) -> !;
    }
    // SAFETY: `_exit` takes a status and ends the process; it never returns.
    unsafe { _exit(code) }
}

/// Milliseconds since the Unix epoch, by the wall clock (0 before 1970). No system call on
/// Linux (the vDSO answers). On Linux the C library's `clock_gettime`, with or without std:
/// `SystemTime::now` would bring its `expect` and `io::Error`'s `Debug` formatting (about
/// 3 KiB measured in the std echo, whose log lines read the clock); elsewhere `SystemTime`.
pub(crate) fn now_ms() -> u64 {
    #[cfg(any(not(target_os = "linux"), tinylambda_portable))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
    #[cfg(all(target_os = "linux", not(tinylambda_portable)))]
    {
        linux::realtime_ms()
    }
}

/// `bytes` as text when they are valid UTF-8: `core::str::from_utf8` with std (which links it
/// anyway), a plain validator of about 200 bytes without (core's, built for speed on long
/// text, is about 500: the runtime only checks header values and short variables).
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "std")]
    {
        core::str::from_utf8(bytes).ok()
    }
    #[cfg(not(feature = "std"))]
    {
        // SAFETY: checked to be valid UTF-8 just before.
        valid_utf8(bytes).then(|| unsafe { core::str::from_utf8_unchecked(bytes) })
    }
}

/// Whether `bytes` are valid UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
#[cfg_attr(feature = "std", allow(dead_code))]
fn valid_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        // The length of the sequence and the least code point it may encode.
        let (len, least) = match first {
            0..=0x7f => continue,
            0xc2..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf4 => (3, 0x1_0000),
            _ => return false,
        };
        let mut code = u32::from(first) & (0x3f >> len);
        for _ in 0..len {
            match rest.split_first() {
                Some((&next, tail)) if next & 0xc0 == 0x80 => {
                    code = code << 6 | u32::from(next & 0x3f);
                    rest = tail;
                }
                _ => return false,
            }
        }
        if code < least || code > 0x10_ffff || (0xd800..0xe000).contains(&code) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_validation_agrees_with_core() {
        let agree = |bytes: &[u8]| {
            assert_eq!(
                valid_utf8(bytes),
                core::str::from_utf8(bytes).is_ok(),
                "{bytes:x?}"
            );
            assert_eq!(utf8(bytes), core::str::from_utf8(bytes).ok());
        };
        for a in 0..=255u8 {
            agree(&[a]);
            for b in 0..=255u8 {
                agree(&[a, b]);
                agree(&[b'x', a, b]);
                if a >= 0xe0 {
                    for c in 0x70..=0xc0u8 {
                        agree(&[a, b, c]);
                        agree(&[a, b, c, 0x80]);
                        agree(&[a, b, c, 0xbf, b'z']);
                    }
                }
            }
        }
        for text in [
            "",
            "plain",
            "caf\u{e9}",
            "\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
        ] {
            agree(text.as_bytes());
        }
    }
}

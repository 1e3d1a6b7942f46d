//! The libc calls std has no cheap equivalent for; the only `unsafe` code in the crate.
//!
//! - `_X_AMZN_TRACE_ID`: `std::env::set_var` goes through libc `setenv`, which in glibc
//!   copies every new value and never frees the old ones: with a fresh trace id per
//!   invocation, that is a leak of about 100 bytes per call. Instead the variable points at
//!   one buffer of ours, installed with `putenv` and rewritten in place: no allocation, no
//!   leak. `unsetenv` removes it.
//! - Log lines go to stderr with one `write(2)`: `std::io::stderr()` would add its
//!   reentrant lock (about 600 bytes) for lines that are written whole anyway.
//! - Backoff sleeps use `nanosleep`: `std::thread::sleep` brings about 500 bytes of
//!   assertion formatting with it; and a coarse monotonic clock (`clock_gettime`) tells
//!   how long a connection has been idle, where `Instant` would bring its own arithmetic.

use std::ffi::{c_char, c_int, c_long, c_void};

/// `struct timespec` on 64-bit Linux (glibc and musl).
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: c_long,
}

unsafe extern "C" {
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn nanosleep(request: *const Timespec, remaining: *mut Timespec) -> c_int;
    fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
    /// POSIX `putenv`: puts `string` itself (`NAME=value`, NUL-terminated) into the
    /// environment; it stays in use until replaced, so it must outlive that.
    fn putenv(string: *mut c_char) -> c_int;
    /// POSIX `unsetenv`: removes `name` (NUL-terminated) from the environment.
    fn unsetenv(name: *const c_char) -> c_int;
}

/// Writes all of `bytes` to stderr (file descriptor 2), ignoring errors: there is no better
/// place to report them.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe a live slice.
        let n = unsafe { write(2, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => bytes = bytes.get(n..).unwrap_or_default(),
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// Sleeps for `ms` milliseconds (less if a signal arrives).
pub(crate) fn sleep_ms(ms: u64) {
    let t = Timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as c_long,
    };
    // SAFETY: `t` is a valid timespec; a null `remaining` is allowed.
    unsafe { nanosleep(&t, std::ptr::null_mut()) };
}

/// Whole seconds of a monotonic clock, read cheaply (`CLOCK_MONOTONIC_COARSE`, served by
/// the vDSO on Linux: no system call). Only differences mean anything.
pub(crate) fn monotonic_secs() -> i64 {
    const CLOCK_MONOTONIC_COARSE: c_int = 6;
    let mut t = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec.
    unsafe { clock_gettime(CLOCK_MONOTONIC_COARSE, &mut t) };
    t.tv_sec
}

const NAME: &[u8] = b"_X_AMZN_TRACE_ID";

/// Keeps `_X_AMZN_TRACE_ID` in step with the current invocation.
pub(crate) struct TraceEnv {
    /// `NAME=value\0`, leaked: the environment may point at it for the rest of the process.
    /// Replaced by a larger one (and the old one leaked too) when a value does not fit,
    /// which X-Ray headers (about 100 bytes) never need.
    slot: &'static mut [u8],
}

impl TraceEnv {
    pub(crate) const fn new() -> Self {
        TraceEnv { slot: &mut [] }
    }

    /// Sets the variable to `value`, or removes it for `None`. No allocation once the slot
    /// exists; no system call.
    ///
    /// Must be called from the loop thread while no other thread reads or writes the
    /// environment: the same rule as `std::env::set_var`.
    pub(crate) fn set(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            // SAFETY: a NUL-terminated name; the environment is not used concurrently (see
            // the function's documentation).
            unsafe { unsetenv(c"_X_AMZN_TRACE_ID".as_ptr()) };
            return;
        };
        let len = NAME.len() + 1 + value.len();
        if self.slot.len() <= len {
            self.slot = Vec::leak(vec![0; (len + 1).max(256)]);
        }
        let text = NAME.iter().chain(b"=").chain(value.as_bytes()).chain(b"\0");
        for (slot, &b) in self.slot.iter_mut().zip(text) {
            *slot = b;
        }
        // SAFETY: the slot is a NUL-terminated `NAME=value` string that is never freed and
        // is only rewritten here, on the loop thread, while no other thread reads the
        // environment. Header values have no NUL (the parser rejects control characters),
        // so the variable is the whole value.
        unsafe { putenv(self.slot.as_mut_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test only: the environment is process-wide and tests run in parallel threads.
    #[test]
    fn trace_id_is_set_rewritten_and_removed() {
        let mut env = TraceEnv::new();
        env.set(Some("Root=1-a;Parent=b;Sampled=1"));
        assert_eq!(
            std::env::var("_X_AMZN_TRACE_ID").as_deref(),
            Ok("Root=1-a;Parent=b;Sampled=1")
        );
        env.set(Some("Root=2"));
        assert_eq!(std::env::var("_X_AMZN_TRACE_ID").as_deref(), Ok("Root=2"));
        env.set(None);
        assert!(std::env::var("_X_AMZN_TRACE_ID").is_err());
        env.set(Some("Root=3"));
        assert_eq!(std::env::var("_X_AMZN_TRACE_ID").as_deref(), Ok("Root=3"));
        let long = "x".repeat(1000);
        env.set(Some(&long));
        assert_eq!(
            std::env::var("_X_AMZN_TRACE_ID").as_deref(),
            Ok(long.as_str())
        );
        env.set(Some("Root=4"));
        assert_eq!(std::env::var("_X_AMZN_TRACE_ID").as_deref(), Ok("Root=4"));
        env.set(None);
        env.set(None);
        assert!(std::env::var("_X_AMZN_TRACE_ID").is_err());
    }
}

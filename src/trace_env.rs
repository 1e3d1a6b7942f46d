//! `_X_AMZN_TRACE_ID`, set from `Lambda-Runtime-Trace-Id` before each handler call.
//!
//! `std::env::set_var` goes through libc `setenv`, which in glibc copies every new value
//! and never frees the old ones: with a fresh trace id per invocation, that is a leak of
//! about 100 bytes per call. Instead the variable points at one buffer of ours, installed
//! with `putenv` and rewritten in place: no allocation, no leak. This is the only `unsafe`
//! code in the crate.

use std::ffi::{c_char, c_int};

unsafe extern "C" {
    /// POSIX `putenv`: puts `string` itself (`NAME=value`, NUL-terminated) into the
    /// environment; it stays in use until replaced, so it must outlive that.
    fn putenv(string: *mut c_char) -> c_int;
}

const NAME: &str = "_X_AMZN_TRACE_ID";

/// Room for `_X_AMZN_TRACE_ID=`, the value and a NUL. X-Ray headers are about 100 bytes;
/// longer values fall back to `set_var`.
const SLOT: usize = 512;

/// Keeps `_X_AMZN_TRACE_ID` in step with the current invocation.
pub(crate) struct TraceEnv {
    /// Leaked on first use: the environment may point at it for the rest of the process.
    slot: Option<&'static mut [u8; SLOT]>,
}

impl TraceEnv {
    pub(crate) const fn new() -> Self {
        TraceEnv { slot: None }
    }

    /// Sets the variable to `value`, or removes it for `None`.
    ///
    /// Must be called from the loop thread while no other thread reads or writes the
    /// environment: the same rule as `std::env::set_var`.
    pub(crate) fn set(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            // SAFETY: the loop thread is the only one touching the environment here (the
            // handler has not started); see the function's documentation.
            unsafe { std::env::remove_var(NAME) };
            return;
        };
        let len = NAME.len() + 1 + value.len();
        if len < SLOT && !value.as_bytes().contains(&0) {
            let slot = self
                .slot
                .get_or_insert_with(|| Box::leak(Box::new([0; SLOT])));
            slot[..NAME.len()].copy_from_slice(NAME.as_bytes());
            slot[NAME.len()] = b'=';
            slot[NAME.len() + 1..len].copy_from_slice(value.as_bytes());
            slot[len] = 0;
            // SAFETY: the slot is a NUL-terminated `NAME=value` string that is never freed
            // (it is leaked) and only rewritten here, on the loop thread, while no other
            // thread reads the environment.
            if unsafe { putenv(slot.as_mut_ptr().cast()) } == 0 {
                return;
            }
        }
        // SAFETY: as above; `value` has no NUL (checked by the parser, which rejects
        // control characters in header values) and NAME has no `=`.
        unsafe { std::env::set_var(NAME, value) };
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
            std::env::var(NAME).as_deref(),
            Ok("Root=1-a;Parent=b;Sampled=1")
        );
        env.set(Some("Root=2"));
        assert_eq!(std::env::var(NAME).as_deref(), Ok("Root=2"));
        env.set(None);
        assert!(std::env::var(NAME).is_err());
        env.set(Some("Root=3"));
        assert_eq!(std::env::var(NAME).as_deref(), Ok("Root=3"));
        let long = "x".repeat(SLOT * 2);
        env.set(Some(&long));
        assert_eq!(std::env::var(NAME).as_deref(), Ok(long.as_str()));
        env.set(Some("Root=4"));
        assert_eq!(std::env::var(NAME).as_deref(), Ok("Root=4"));
        env.set(None);
        env.set(None);
        assert!(std::env::var(NAME).is_err());
    }
}

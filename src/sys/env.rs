//! The process environment: the configuration Lambda passes in it, and `_X_AMZN_TRACE_ID`,
//! which the runtime keeps in step with the current invocation.
//!
//! With std, both go through std's functions (`std::env::var_os`, `set_var`, `remove_var`):
//! they hold std's environment lock, which `std::env::var` and `Command::spawn` take too, so
//! any thread that reads the environment through std sees the old value or the new one,
//! never a mix. Without std there is no such lock: the C library's `getenv`, `putenv` and
//! `unsetenv`.
//!
//! What remains unsafe either way is what std's `set_var` documents: code that reads the
//! environment outside std's lock (C code calling `getenv`, say) on another thread while the
//! loop runs.

use alloc::string::String;
#[cfg(not(feature = "std"))]
use alloc::vec::Vec;
use core::ffi::CStr;

/// The variable X-Ray SDKs read the current invocation's trace header from.
#[cfg(any(not(feature = "std"), test))]
const TRACE_VAR: &CStr = c"_X_AMZN_TRACE_ID";
/// The same name for std's functions.
#[cfg(feature = "std")]
const TRACE_NAME: &str = "_X_AMZN_TRACE_ID";

/// Appends the value of the environment variable `name` (a constant of ours) to `out`;
/// false, with `out` untouched, when it is unset or not UTF-8. Costs one lookup and the
/// copy (no allocation of its own, so that several values can share one string).
pub(crate) fn var_into(name: &CStr, out: &mut String) -> bool {
    #[cfg(feature = "std")]
    {
        #[cfg(unix)]
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes());
        #[cfg(not(unix))]
        let Ok(name) = name.to_str() else {
            return false;
        };
        match std::env::var_os(name)
            .as_ref()
            .and_then(|value| value.to_str())
        {
            Some(value) => {
                out.push_str(value);
                true
            }
            None => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        c::var_into(name, out)
    }
}

/// Keeps `_X_AMZN_TRACE_ID` in step with the current invocation (see the module
/// documentation for who may read it meanwhile).
pub(crate) struct TraceEnv {
    /// Whether the variable may be set (it is removed when an invocation has no trace id).
    present: bool,
    /// Set when several loops share the process: one environment cannot name the trace of
    /// each of their invocations, so it is left alone.
    #[cfg(feature = "concurrent")]
    disabled: bool,
    /// Two `_X_AMZN_TRACE_ID=value\0` strings for `putenv`, which makes the string itself
    /// part of the environment: they are written in turn, so the one the environment holds
    /// is never the one being rewritten.
    #[cfg(not(feature = "std"))]
    strings: [Vec<u8>; 2],
    /// Which of `strings` is written next (the other may be in the environment).
    #[cfg(not(feature = "std"))]
    next: usize,
    /// Whether the environment holds one of `strings`.
    #[cfg(not(feature = "std"))]
    in_env: bool,
}

impl TraceEnv {
    pub(crate) const fn new() -> Self {
        TraceEnv {
            present: true,
            #[cfg(feature = "concurrent")]
            disabled: false,
            #[cfg(not(feature = "std"))]
            strings: [Vec::new(), Vec::new()],
            #[cfg(not(feature = "std"))]
            next: 0,
            #[cfg(not(feature = "std"))]
            in_env: false,
        }
    }

    /// Stops touching the environment (for concurrent loops).
    #[cfg(feature = "concurrent")]
    pub(crate) fn disable(&mut self) {
        self.disabled = true;
    }

    /// Sets the variable to `value`, or removes it for `None` (a value holding a NUL, which
    /// the parser never lets through, counts as none). Costs std's lock and `set_var` (with
    /// std), or the C library's `putenv` of a string of ours, rewritten in place (no
    /// allocation once it is as long as the longest value), or `unsetenv`; no system call.
    #[inline(never)]
    pub(crate) fn set(&mut self, value: Option<&str>) {
        #[cfg(feature = "concurrent")]
        if self.disabled {
            return;
        }
        // A plain loop: `contains` would link the `memchr` of `core` for this one search.
        match value.filter(|value| value.bytes().all(|b| b != 0)) {
            Some(value) => {
                self.put(value);
                self.present = true;
            }
            None if self.present => {
                self.remove();
                self.present = false;
            }
            None => {}
        }
    }

    #[cfg(feature = "std")]
    fn put(&mut self, value: &str) {
        // SAFETY: std's lock orders this against every reader and writer that goes through
        // std; the name is a constant without `=` or NUL and the value has no NUL. Readers
        // outside std are the documented exception (see the module documentation).
        unsafe { std::env::set_var(TRACE_NAME, value) };
    }

    #[cfg(feature = "std")]
    fn remove(&mut self) {
        // SAFETY: as in `put`.
        unsafe { std::env::remove_var(TRACE_NAME) };
    }

    #[cfg(not(feature = "std"))]
    fn put(&mut self, value: &str) {
        let Some(string) = self.strings.get_mut(self.next) else {
            return;
        };
        // Appends rather than a `push`, whose growth path would be code of its own.
        string.clear();
        string.extend_from_slice(b"_X_AMZN_TRACE_ID=");
        string.extend_from_slice(value.as_bytes());
        string.extend_from_slice(&[0]);
        // On success the environment holds this string, and no longer the other, which is
        // written next; on failure (no memory for a new entry) it holds neither of them.
        if c::put(string) {
            self.in_env = true;
            self.next ^= 1;
        }
    }

    #[cfg(not(feature = "std"))]
    fn remove(&mut self) {
        c::unset(TRACE_VAR);
        self.in_env = false;
    }
}

/// The environment must not keep a string of a `TraceEnv` that is gone.
#[cfg(not(feature = "std"))]
impl Drop for TraceEnv {
    fn drop(&mut self) {
        if self.in_env {
            c::unset(TRACE_VAR);
        }
    }
}

/// The C library's environment functions, for programs without std.
#[cfg(not(feature = "std"))]
mod c {
    use alloc::string::String;
    use core::ffi::{CStr, c_char, c_int};

    unsafe extern "C" {
        fn getenv(name: *const c_char) -> *const c_char;
        fn putenv(string: *mut c_char) -> c_int;
        fn unsetenv(name: *const c_char) -> c_int;
    }

    pub(super) fn var_into(name: &CStr, out: &mut String) -> bool {
        // SAFETY: `name` is NUL-terminated. Nothing changes the environment meanwhile: the
        // runtime reads its configuration before it starts threads or sets the trace id.
        let value = unsafe { getenv(name.as_ptr()) };
        if value.is_null() {
            return false;
        }
        // SAFETY: `getenv` returned a NUL-terminated string, valid until the environment
        // changes (it is copied at once).
        let bytes = unsafe { CStr::from_ptr(value) }.to_bytes();
        match crate::sys::utf8(bytes) {
            Some(value) => {
                out.push_str(value);
                true
            }
            None => false,
        }
    }

    /// `putenv(string)`: `string` (`NAME=value`, ending with its NUL) becomes part of the
    /// environment, until `unsetenv` or another `putenv` of the name replaces it; the
    /// caller neither changes nor frees it until then. False when it could not be added.
    pub(super) fn put(string: &mut [u8]) -> bool {
        if string.last() != Some(&0) {
            return false;
        }
        // SAFETY: `string` is NUL-terminated, and the caller keeps it unchanged and alive
        // for as long as the environment holds it.
        unsafe { putenv(string.as_mut_ptr().cast()) == 0 }
    }

    pub(super) fn unset(name: &CStr) {
        // SAFETY: `name` is NUL-terminated.
        unsafe { unsetenv(name.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test only: the environment is process-wide and tests run in parallel threads.
    #[test]
    fn trace_id_is_set_rewritten_and_removed() {
        let read = || {
            let mut value = String::new();
            var_into(TRACE_VAR, &mut value).then_some(value)
        };
        let mut env = TraceEnv::new();
        env.set(Some("Root=1-a;Parent=b;Sampled=1"));
        assert_eq!(read().as_deref(), Some("Root=1-a;Parent=b;Sampled=1"));
        env.set(Some("Root=2"));
        assert_eq!(read().as_deref(), Some("Root=2"));
        env.set(None);
        assert_eq!(read(), None);
        env.set(None);
        assert_eq!(read(), None);
        env.set(Some("Root=3"));
        assert_eq!(read().as_deref(), Some("Root=3"));
        env.set(Some("a\0b"));
        assert_eq!(read(), None, "a value with a NUL counts as none");
        // A child process inherits it.
        env.set(Some("Root=4"));
        let child = std::process::Command::new("sh")
            .args(["-c", "printf %s \"$_X_AMZN_TRACE_ID\""])
            .output()
            .unwrap();
        assert_eq!(child.stdout, b"Root=4");
        env.set(None);
    }
}

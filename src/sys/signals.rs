//! SIGTERM (and SIGINT) for graceful shutdown, on Linux.
//!
//! The signal handler does only async-signal-safe things: it loads an atomic and calls
//! `write(2)` on a non-blocking pipe, keeping the interrupted code's `errno`. Everything
//! else (the user's callback, the exit) happens on an ordinary thread that blocks reading
//! the other end of the pipe. Both ends are close-on-exec: processes the handler starts do
//! not inherit them. The handler is installed only once that thread runs, so that a signal
//! never goes to a pipe nobody reads. Elsewhere [`open`] reports that it cannot.

#[cfg(any(not(target_os = "linux"), tinylambda_portable))]
pub(crate) use portable::{handle, open, wait};

#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
pub(crate) use unix::{handle, open, wait};

#[cfg(any(not(target_os = "linux"), tinylambda_portable))]
mod portable {
    /// SIGTERM is not handled off Linux: `None`.
    pub(crate) fn open() -> Option<i32> {
        None
    }

    /// Never called: [`open`] gave nothing to handle signals with.
    pub(crate) fn handle() -> bool {
        false
    }

    /// Never called: there is nothing to wait for.
    pub(crate) fn wait(_fd: i32) {}
}

#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
mod unix {
    use core::ffi::{c_int, c_void};
    use core::sync::atomic::{AtomicI32, Ordering};

    use super::super::linux::{__errno_location, EINTR, errno, write};

    unsafe extern "C" {
        fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
        fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
        /// `signal(2)`; the handler is passed and returned as an address.
        fn signal(signum: c_int, handler: usize) -> usize;
        fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    }

    const SIGINT: c_int = 2;
    const SIGTERM: c_int = 15;
    /// `SIG_ERR`, what `signal` returns on failure.
    const SIG_ERR: usize = usize::MAX;
    const O_CLOEXEC: c_int = 0o2000000;
    const O_NONBLOCK: c_int = 0o4000;
    const F_SETFL: c_int = 4;

    /// The pipe's write end, for the handler; -1 until installed.
    static WAKE: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(_signum: c_int) {
        let fd = WAKE.load(Ordering::Relaxed);
        if fd >= 0 {
            // The interrupted code may be between a failed call and its look at `errno`.
            let saved = errno();
            let byte = 1u8;
            // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte. A
            // full pipe fails at once (non-blocking): a byte is already waiting then.
            unsafe { write(fd, (&raw const byte).cast(), 1) };
            // SAFETY: the thread's own `errno`, written back as it was.
            unsafe { *__errno_location() = saved };
        }
    }

    /// Makes the pipe the handler writes to, and returns its read end, for [`wait`]. `None`
    /// when it cannot be made. Signals keep their action until [`handle`].
    pub(crate) fn open() -> Option<c_int> {
        let mut fds: [c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a writable array of two ints, as pipe2(2) requires.
        if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
            return None;
        }
        let [read_end, write_end] = fds;
        // SAFETY: F_SETFL on a descriptor just made, with an int flag argument; O_CLOEXEC
        // is a descriptor flag (F_SETFD), which this leaves as it is.
        if unsafe { fcntl(write_end, F_SETFL, O_NONBLOCK) } != 0 {
            return None;
        }
        WAKE.store(write_end, Ordering::Relaxed);
        Some(read_end)
    }

    /// Installs the handler for SIGTERM and SIGINT: from now on they go to the pipe of
    /// [`open`], whose reader must already be waiting. False when it cannot be installed.
    pub(crate) fn handle() -> bool {
        let handler = on_signal as extern "C" fn(c_int) as usize;
        // SAFETY: `on_signal` is an extern "C" function of the signature signal(2) expects
        // and only does async-signal-safe work (see the module documentation).
        unsafe { signal(SIGTERM, handler) != SIG_ERR && signal(SIGINT, handler) != SIG_ERR }
    }

    /// Blocks until the handler has run (a signal arrived), or the pipe fails.
    pub(crate) fn wait(fd: c_int) {
        let mut byte = 0u8;
        loop {
            // SAFETY: reads at most one byte into a live local.
            let n = unsafe { read(fd, (&raw mut byte).cast(), 1) };
            // Only EINTR (4) means "try again".
            if n >= 0 || errno() != EINTR {
                return;
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_handler_leaves_errno_as_it_found_it() {
            // A write end that is not open: the handler's write fails (EBADF).
            WAKE.store(1 << 20, Ordering::Relaxed);
            // SAFETY: the thread's own `errno`.
            unsafe { *__errno_location() = 42 };
            on_signal(SIGTERM);
            let after = errno();
            WAKE.store(-1, Ordering::Relaxed);
            assert_eq!(after, 42);
        }
    }
}

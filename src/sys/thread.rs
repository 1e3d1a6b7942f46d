//! Threads for the opt-in features (the shutdown waiter, concurrent loops): detached,
//! with the main thread's stack size, running until the process exits.
//!
//! On Linux they start with `pthread_create` directly: `std::thread::spawn` brings about
//! 35 KiB into a tiny static binary (stack-size settings read from the environment, thread
//! names, output capture, join handles), none of which such a thread needs. Elsewhere,
//! `std::thread`.

#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
pub(crate) use pthread::spawn;

#[cfg(any(not(target_os = "linux"), tinylambda_portable))]
pub(crate) use portable::spawn;

/// What a thread runs.
pub(crate) type Task = alloc::boxed::Box<dyn FnOnce() + Send + 'static>;

/// The stack of each thread when the main thread's limit is unknown or unlimited: Linux's
/// default `RLIMIT_STACK` (and Lambda's).
const STACK: usize = 8 << 20;
/// The least stack a thread gets: std's default for its threads.
#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
const LEAST_STACK: usize = 2 << 20;

#[cfg(all(target_os = "linux", not(tinylambda_portable)))]
mod pthread {
    use alloc::boxed::Box;
    use core::ffi::{c_int, c_void};

    use super::{LEAST_STACK, STACK, Task};

    /// `pthread_attr_t` is 56 bytes on 64-bit glibc and musl, 64 on aarch64 glibc: room
    /// for either, suitably aligned.
    #[repr(C, align(16))]
    struct Attr([u8; 128]);

    unsafe extern "C" {
        fn pthread_attr_init(attr: *mut Attr) -> c_int;
        fn pthread_attr_setstacksize(attr: *mut Attr, size: usize) -> c_int;
        fn pthread_attr_destroy(attr: *mut Attr) -> c_int;
        fn pthread_create(
            thread: *mut usize,
            attr: *const Attr,
            start: extern "C" fn(*mut c_void) -> *mut c_void,
            arg: *mut c_void,
        ) -> c_int;
        fn pthread_detach(thread: usize) -> c_int;
        /// `rlim` is `struct rlimit`: two `rlim_t` (64 bits on 64-bit glibc and musl).
        fn getrlimit(resource: c_int, rlim: *mut [u64; 2]) -> c_int;
    }

    const RLIMIT_STACK: c_int = 3;

    /// The stack size the main thread may grow to (`RLIMIT_STACK`'s soft limit), so that a
    /// handler needs no more stack on one concurrent loop than on another (the first runs
    /// on the main thread): [`STACK`] when unlimited or unknown, at least [`LEAST_STACK`],
    /// at most 1 GiB. Only the pages a thread touches become memory.
    fn stack_size() -> usize {
        let mut limit = [0u64; 2];
        // SAFETY: `limit` is writable storage for a `struct rlimit`.
        if unsafe { getrlimit(RLIMIT_STACK, &mut limit) } != 0 {
            return STACK;
        }
        match usize::try_from(limit[0]) {
            Ok(size) if size <= 1 << 30 => size.max(LEAST_STACK),
            _ => STACK,
        }
    }

    extern "C" fn start(arg: *mut c_void) -> *mut c_void {
        // SAFETY: `arg` is the `Box<Task>` leaked by `spawn`, taken back here exactly once.
        let task = unsafe { Box::from_raw(arg.cast::<Task>()) };
        task();
        core::ptr::null_mut()
    }

    /// Runs `task` on a new, detached thread with the main thread's stack size (see
    /// [`stack_size`]). False when the thread cannot be created. A panic escaping `task`
    /// aborts the process (it cannot unwind into C).
    pub(crate) fn spawn(task: Task) -> bool {
        let arg: *mut Task = Box::into_raw(Box::new(task));
        let mut attr = Attr([0; 128]);
        let mut thread = 0usize;
        // SAFETY: `attr` is writable storage of the right size and alignment.
        if unsafe { pthread_attr_init(&mut attr) } != 0 {
            // SAFETY: the thread never started, so `arg` was not taken back.
            drop(unsafe { Box::from_raw(arg) });
            return false;
        }
        // SAFETY: `attr` was initialised above; `start` matches pthread_create's expected
        // signature and `arg` stays valid (leaked) until `start` takes it back.
        let created = unsafe {
            pthread_attr_setstacksize(&mut attr, stack_size()) == 0
                && pthread_create(&mut thread, &attr, start, arg.cast()) == 0
        };
        // SAFETY: `attr` was initialised above, and is destroyed once, after use.
        unsafe { pthread_attr_destroy(&mut attr) };
        if created {
            // SAFETY: a thread id pthread_create just returned.
            unsafe { pthread_detach(thread) };
        } else {
            // SAFETY: the thread never started, so `arg` was not taken back.
            drop(unsafe { Box::from_raw(arg) });
        }
        created
    }
}

#[cfg(any(not(target_os = "linux"), tinylambda_portable))]
mod portable {
    use super::{STACK, Task};

    /// Runs `task` on a new, detached thread. False when the thread cannot be created.
    pub(crate) fn spawn(task: Task) -> bool {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(task)
            .is_ok()
    }
}

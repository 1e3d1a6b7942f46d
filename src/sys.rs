//! The libc calls std has no cheap equivalent for; the only `unsafe` code in the crate.
//!
//! - Log lines go to stderr with one `write(2)`: `std::io::stderr()` would add its
//!   reentrant lock (about 600 bytes) for lines that are written whole anyway.
//! - Backoff sleeps are a `poll` on no descriptors with a timeout: `std::thread::sleep`
//!   brings about 500 bytes of assertion formatting with it, and std already links `poll`
//!   (it checks the standard descriptors at start) where `nanosleep` would add its own code.
//! - Whether a kept-alive connection is still open is one `recv(MSG_PEEK | MSG_DONTWAIT)`:
//!   with std it takes three system calls (non-blocking on, peek, non-blocking off).
//! - The connection is a socket of our own (`socket` with `SOCK_CLOEXEC`, `connect`,
//!   `setsockopt(TCP_NODELAY)`, `close` on drop) rather than a `TcpStream`, and its `writev`
//!   and `recv` are the calls `TcpStream` makes, all with the error as the plain `errno`
//!   number: an `io::Error` costs code to decode and drop at every call, and std's connect
//!   brings its own copy of the address conversion and error paths.
//! - An IP address in `AWS_LAMBDA_RUNTIME_API` is read with `inet_pton`: `str::parse` links
//!   std's address parser (about 2 KiB), the C library's is about 700 bytes.

use std::ffi::{c_char, c_int, c_void};

unsafe extern "C" {
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn poll(fds: *mut c_void, nfds: usize, timeout_ms: c_int) -> c_int;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn writev(fd: c_int, iov: *const std::io::IoSlice<'_>, count: c_int) -> isize;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const u8, len: u32) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn close(fd: c_int) -> c_int;
    /// POSIX `inet_pton`: 1 when `src` (NUL-terminated) is an address of family `af`,
    /// written to `dst` in network order.
    fn inet_pton(af: c_int, src: *const c_char, dst: *mut c_void) -> c_int;
    /// The calling thread's `errno` (glibc and musl both name it so).
    fn __errno_location() -> *mut c_int;
}

/// The calling thread's `errno`, right after a failed call: cheaper than
/// `std::io::Error::last_os_error` (no error value to decode and drop).
fn errno() -> c_int {
    // SAFETY: `__errno_location` returns a valid pointer to the thread's `errno`.
    unsafe { *__errno_location() }
}

/// `EINTR`: a signal interrupted the call; it should be repeated.
pub(crate) const EINTR: c_int = 4;

/// Writes all of `bytes` to stderr (file descriptor 2), ignoring errors: there is no better
/// place to report them.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe a live slice.
        let n = unsafe { write(2, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => bytes = bytes.get(n..).unwrap_or_default(),
            _ if errno() == EINTR => {}
            _ => return,
        }
    }
}

/// Writes the `slices` to socket `fd` with one `writev`, as `TcpStream::write_vectored`
/// does, but with the error as a plain OS error number (no `io::Error` to decode and drop).
/// `Err(EINTR)` means "call again".
pub(crate) fn write_vectored(fd: c_int, slices: &[std::io::IoSlice<'_>]) -> Result<usize, c_int> {
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix, and the slices are
    // live for the call; a bad `fd` is an error return.
    let n = unsafe { writev(fd, slices.as_ptr(), slices.len() as c_int) };
    usize::try_from(n).map_err(|_| errno())
}

/// Reads from socket `fd` into `buf` with one `recv`, as `TcpStream::read` does, with the
/// error as a plain OS error number. `Err(EINTR)` means "call again".
pub(crate) fn read(fd: c_int, buf: &mut [u8]) -> Result<usize, c_int> {
    // SAFETY: the pointer and length describe a live, writable slice.
    let n = unsafe { recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).map_err(|_| errno())
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A connected TCP socket, closed on drop.
pub(crate) struct Socket(c_int);

impl Socket {
    /// The file descriptor, for the calls above.
    pub(crate) fn fd(&self) -> c_int {
        self.0
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours (from `socket`) and closed only here, once.
        unsafe { close(self.0) };
    }
}

/// `struct sockaddr_in6`, and `struct sockaddr_in` in its first 16 bytes: the IPv4 address
/// is where IPv6 has its flow label, and the rest is zero.
#[repr(C)]
struct SockAddr {
    family: u16,
    /// In network order, as are the address and flow label.
    port: [u8; 2],
    word: [u8; 4],
    addr6: [u8; 16],
    scope_id: u32,
}

/// Connects a close-on-exec TCP socket to `addr` and sets `TCP_NODELAY` on it, as
/// `TcpStream::connect` and `set_nodelay` do, with the error as a plain OS error number.
pub(crate) fn connect_tcp(addr: &std::net::SocketAddr) -> Result<Socket, c_int> {
    use std::net::SocketAddr;
    const SOCK_STREAM: c_int = 1;
    const SOCK_CLOEXEC: c_int = 0o2000000;
    const IPPROTO_TCP: c_int = 6;
    const TCP_NODELAY: c_int = 1;
    let (family, word, addr6, scope_id, len) = match addr {
        SocketAddr::V4(a) => (AF_INET, a.ip().octets(), [0; 16], 0, 16),
        SocketAddr::V6(a) => (
            AF_INET6,
            a.flowinfo().to_be_bytes(),
            a.ip().octets(),
            a.scope_id(),
            28,
        ),
    };
    let raw = SockAddr {
        family,
        port: addr.port().to_be_bytes(),
        word,
        addr6,
        scope_id,
    };
    // SAFETY: plain system call; a failure is a negative return.
    let fd = unsafe { socket(c_int::from(raw.family), SOCK_STREAM | SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(errno());
    }
    let socket = Socket(fd);
    // SAFETY: `raw` holds a socket address of `len` bytes of the socket's family.
    if unsafe { connect(fd, (&raw const raw).cast(), len) } != 0 {
        return Err(errno());
    }
    let on: c_int = 1;
    // Without it, a small POST after a write can wait for a delayed ACK.
    // SAFETY: the option value is a live `int`, of the length given.
    unsafe { setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (&raw const on).cast(), 4) };
    Ok(socket)
}

/// The IP address `text` is, in the standard forms (`127.0.0.1`, `::1`, `::ffff:1.2.3.4`),
/// or `None`: the C library's `inet_pton`, where `str::parse` would bring its own parser.
pub(crate) fn parse_ip(text: &str) -> Option<std::net::IpAddr> {
    // Longer than any address's text (45 bytes at most), with room for the NUL.
    let mut nul_terminated = [0u8; 64];
    nul_terminated
        .get_mut(..text.len())
        .filter(|_| text.len() < 64)?
        .copy_from_slice(text.as_bytes());
    let src = nul_terminated.as_ptr().cast();
    let mut v4 = [0u8; 4];
    let mut v6 = [0u8; 16];
    // SAFETY: `src` is NUL-terminated and each destination has the size of its family's
    // address.
    if unsafe { inet_pton(AF_INET.into(), src, v4.as_mut_ptr().cast()) } == 1 {
        Some(v4.into())
    // SAFETY: as above.
    } else if unsafe { inet_pton(AF_INET6.into(), src, v6.as_mut_ptr().cast()) } == 1 {
        Some(v6.into())
    } else {
        None
    }
}

/// Sleeps for `ms` milliseconds (less if a signal arrives).
#[inline(always)]
pub(crate) fn sleep_ms(ms: c_int) {
    // SAFETY: no descriptors to watch, so a null array of none is valid; `poll` only waits.
    unsafe { poll(std::ptr::null_mut(), 0, ms) };
}

/// Whether the peer of socket `fd` has neither closed it nor sent anything unasked: one
/// non-blocking peek (`recv` with `MSG_PEEK | MSG_DONTWAIT`) that finds nothing to read.
pub(crate) fn quiet_and_open(fd: c_int) -> bool {
    const MSG_PEEK: c_int = 2;
    const MSG_DONTWAIT: c_int = 0x40;
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid, writable buffer of one byte; a bad `fd` is an error return.
    let n = unsafe { recv(fd, (&raw mut byte).cast(), 1, MSG_PEEK | MSG_DONTWAIT) };
    // EAGAIN (EWOULDBLOCK): nothing to read and nothing closed.
    n < 0 && errno() == 11
}

#[cfg(feature = "concurrent")]
impl TraceEnv {
    /// Stops touching the environment (for concurrent loops).
    pub(crate) fn disable(&mut self) {
        self.disabled = true;
    }
}

/// Threads for the opt-in features, started with `pthread_create` directly:
/// `std::thread::spawn` brings about 35 KiB into a tiny static binary (stack-size settings
/// read from the environment, thread names, output capture, join handles), none of which a
/// thread that runs until the process exits needs.
#[cfg(any(feature = "graceful-shutdown", feature = "concurrent"))]
pub(crate) mod thread {
    use std::ffi::{c_int, c_void};

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
    }

    /// The stack of each thread: std's default.
    const STACK: usize = 2 << 20;

    type Task = Box<dyn FnOnce() + Send + 'static>;

    extern "C" fn start(arg: *mut c_void) -> *mut c_void {
        // SAFETY: `arg` is the `Box<Task>` leaked by `spawn`, taken back here exactly once.
        let task = unsafe { Box::from_raw(arg.cast::<Task>()) };
        task();
        std::ptr::null_mut()
    }

    /// Runs `task` on a new, detached thread with a 2 MiB stack. False when the thread
    /// cannot be created. A panic escaping `task` aborts the process (it cannot unwind
    /// into C).
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
            pthread_attr_setstacksize(&mut attr, STACK) == 0
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

/// SIGTERM (and SIGINT) for graceful shutdown.
///
/// The signal handler does only async-signal-safe things: it loads an atomic and calls
/// `write(2)` on a non-blocking pipe, keeping the interrupted code's `errno`. Everything
/// else (the user's callback, the exit) happens on an ordinary thread that blocks reading
/// the other end of the pipe. Both ends are close-on-exec: processes the handler starts do
/// not inherit them.
#[cfg(feature = "graceful-shutdown")]
pub(crate) mod signals {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicI32, Ordering};

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
            let saved = super::errno();
            let byte = 1u8;
            // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte. A
            // full pipe fails at once (non-blocking): a byte is already waiting then.
            unsafe { super::write(fd, (&raw const byte).cast(), 1) };
            // SAFETY: the thread's own `errno`, written back as it was.
            unsafe { *super::__errno_location() = saved };
        }
    }

    /// Installs the handler for SIGTERM and SIGINT and returns the pipe's read end, for
    /// [`wait`]. `None` when the pipe or the handler cannot be set up.
    pub(crate) fn install() -> Option<c_int> {
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
        let handler = on_signal as extern "C" fn(c_int) as usize;
        // SAFETY: `on_signal` is an extern "C" function of the signature signal(2) expects
        // and only does async-signal-safe work (see the module documentation).
        let installed =
            unsafe { signal(SIGTERM, handler) != SIG_ERR && signal(SIGINT, handler) != SIG_ERR };
        installed.then_some(read_end)
    }

    /// Blocks until the handler has run (a signal arrived), or the pipe fails.
    pub(crate) fn wait(fd: c_int) {
        let mut byte = 0u8;
        loop {
            // SAFETY: reads at most one byte into a live local.
            let n = unsafe { read(fd, (&raw mut byte).cast(), 1) };
            // Only EINTR (4) means "try again".
            if n >= 0 || super::errno() != super::EINTR {
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
            unsafe { *super::super::__errno_location() = 42 };
            on_signal(SIGTERM);
            let after = super::super::errno();
            WAKE.store(-1, Ordering::Relaxed);
            assert_eq!(after, 42);
        }
    }
}

/// The variable X-Ray SDKs read the current invocation's trace header from.
const TRACE_VAR: &str = "_X_AMZN_TRACE_ID";

/// Keeps `_X_AMZN_TRACE_ID` in step with the current invocation, through std's environment
/// functions: they hold std's environment lock while they change the environment, which
/// `std::env::var`, `std::env::set_var` and `Command::spawn` take too, so any thread that
/// reads the environment through std sees the old value or the new one, never a mix.
///
/// What remains unsafe is what std's `set_var` documents: code outside std (C code calling
/// `getenv`, say) reading the environment on another thread while the loop runs.
pub(crate) struct TraceEnv {
    /// Whether the variable may be set (it is removed when an invocation has no trace id).
    present: bool,
    /// Set when several loops share the process: one environment cannot name the trace of
    /// each of their invocations, so it is left alone.
    #[cfg(feature = "concurrent")]
    disabled: bool,
}

impl TraceEnv {
    pub(crate) const fn new() -> Self {
        TraceEnv {
            present: true,
            #[cfg(feature = "concurrent")]
            disabled: false,
        }
    }

    /// Sets the variable to `value`, or removes it for `None` (a value holding a NUL, which
    /// the parser never lets through, counts as none). Costs std's lock and the C library's
    /// `setenv` (one allocation for the new value; musl frees the old one, glibc keeps every
    /// value it was ever given) or `unsetenv`; no system call.
    #[inline(never)]
    pub(crate) fn set(&mut self, value: Option<&str>) {
        #[cfg(feature = "concurrent")]
        if self.disabled {
            return;
        }
        match value.filter(|value| !value.contains('\0')) {
            Some(value) => {
                // SAFETY: std's lock orders this against every reader and writer that goes
                // through std; the name is a constant without `=` or NUL and the value has
                // no NUL. Readers outside std are the documented exception (see above).
                unsafe { std::env::set_var(TRACE_VAR, value) };
                self.present = true;
            }
            None if self.present => {
                // SAFETY: as above.
                unsafe { std::env::remove_var(TRACE_VAR) };
                self.present = false;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_parse_as_std_parses_them() {
        for text in [
            "127.0.0.1",
            "10.0.0.255",
            "::",
            "::1",
            "fe80::1:2",
            "::ffff:1.2.3.4",
        ] {
            assert_eq!(parse_ip(text), text.parse().ok(), "{text}");
        }
        for text in [
            "",
            "localhost",
            "1.2.3",
            "1.2.3.4.5",
            "256.0.0.1",
            "::1:",
            "[::1]",
            "1::2::3",
        ] {
            assert_eq!(parse_ip(text), None, "{text}");
        }
        assert_eq!(parse_ip(&"1".repeat(100)), None);
        assert_eq!(parse_ip(&format!("::{}", "0".repeat(70))), None);
    }

    #[test]
    fn sockets_connect_close_on_exec_and_without_delay() {
        use std::mem::ManuallyDrop;
        use std::net::{TcpListener, TcpStream};
        use std::os::fd::FromRawFd;
        unsafe extern "C" {
            fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        }
        const F_GETFD: c_int = 1;
        const FD_CLOEXEC: c_int = 1;
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        // Where IPv6 is available.
        let v6 = TcpListener::bind("[::1]:0").ok();
        for listener in std::iter::once(&v4).chain(&v6) {
            let addr = listener.local_addr().unwrap();
            let socket = connect_tcp(&addr).unwrap();
            let (_accepted, peer) = listener.accept().unwrap();
            // SAFETY: `socket` is a live descriptor; the stream never closes it.
            let stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(socket.fd()) });
            assert_eq!(stream.peer_addr().unwrap(), addr);
            assert_eq!(stream.local_addr().unwrap(), peer);
            assert!(stream.nodelay().unwrap());
            // SAFETY: F_GETFD on a live descriptor takes no argument.
            let flags = unsafe { fcntl(socket.fd(), F_GETFD) };
            assert_eq!(flags & FD_CLOEXEC, FD_CLOEXEC);
        }
    }

    // One test only: the environment is process-wide and tests run in parallel threads.
    #[test]
    fn trace_id_is_set_rewritten_and_removed() {
        let var = || std::env::var(TRACE_VAR).ok();
        let mut env = TraceEnv::new();
        env.set(Some("Root=1-a;Parent=b;Sampled=1"));
        assert_eq!(var().as_deref(), Some("Root=1-a;Parent=b;Sampled=1"));
        env.set(Some("Root=2"));
        assert_eq!(var().as_deref(), Some("Root=2"));
        env.set(None);
        assert_eq!(var(), None);
        env.set(None);
        assert_eq!(var(), None);
        env.set(Some("Root=3"));
        assert_eq!(var().as_deref(), Some("Root=3"));
        env.set(Some("a\0b"));
        assert_eq!(var(), None, "a value with a NUL counts as none");
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

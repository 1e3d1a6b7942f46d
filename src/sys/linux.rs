//! The C library's calls, on Linux: what the runtime does with the operating system, each
//! one system call where std would make more or bring more code.
//!
//! - Log lines go to stderr with one `write(2)`: `std::io::stderr()` would add its
//!   reentrant lock (about 600 bytes) for lines that are written whole anyway.
//! - Backoff sleeps are a `poll` on no descriptors with a timeout: `std::thread::sleep`
//!   brings about 500 bytes of assertion formatting with it, and std already links `poll`
//!   (it checks the standard descriptors at start) where `nanosleep` would add its own code.
//! - Whether a kept-alive connection is still open is one `recv(MSG_PEEK | MSG_DONTWAIT)`:
//!   with std it takes three system calls (non-blocking on, peek, non-blocking off).
//! - The connection is a socket of our own (`socket` with `SOCK_CLOEXEC`, `connect`,
//!   `setsockopt(TCP_NODELAY)`, `close` on drop) rather than a `TcpStream`, its writes a
//!   vectored `sendmsg` with `MSG_NOSIGNAL` and its reads `recv`, all with the error as the
//!   plain `errno` number: an `io::Error` costs code to decode and drop at every call, and
//!   std's connect brings its own copy of the address conversion and error paths.
//!   `MSG_NOSIGNAL` makes a write to a connection the server has reset fail with `EPIPE`
//!   instead of raising `SIGPIPE`, whose default action ends the process: std ignores the
//!   signal for the whole process before `main`, a program without std does not.
//! - An IP address in `AWS_LAMBDA_RUNTIME_API` is read with `inet_pton`: `str::parse` links
//!   std's address parser (about 2 KiB), the C library's is about 700 bytes.
//!
//! The constants are Linux's (the same on x86_64 and aarch64).

use core::ffi::{c_char, c_int, c_void};
use core::net::SocketAddr;

use super::IoVec;

unsafe extern "C" {
    pub(super) fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn poll(fds: *mut c_void, nfds: usize, timeout_ms: c_int) -> c_int;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn sendmsg(fd: c_int, message: *const MsgHdr<'_>, flags: c_int) -> isize;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const u8, len: u32) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn close(fd: c_int) -> c_int;
    /// POSIX `inet_pton`: 1 when `src` (NUL-terminated) is an address of family `af`,
    /// written to `dst` in network order.
    fn inet_pton(af: c_int, src: *const c_char, dst: *mut c_void) -> c_int;
    /// The calling thread's `errno` (glibc and musl both name it so).
    pub(super) fn __errno_location() -> *mut c_int;
}

/// The calling thread's `errno`, right after a failed call: cheaper than
/// `std::io::Error::last_os_error` (no error value to decode and drop).
pub(super) fn errno() -> c_int {
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

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A connected TCP socket, closed on drop.
pub(crate) struct Socket(c_int);

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

/// `struct msghdr` on 64-bit Linux (glibc has the lengths as `size_t`; musl as an `int`
/// or `socklen_t` and padding, which on these little-endian targets is the same bytes).
#[repr(C)]
struct MsgHdr<'a> {
    name: *mut c_void,
    name_len: u32,
    iov: *const IoVec<'a>,
    iov_len: usize,
    control: *mut c_void,
    control_len: usize,
    flags: c_int,
}

impl SockAddr {
    /// The address of `family` with `port`, all else zero.
    fn new(family: u16, port: u16) -> Self {
        SockAddr {
            family,
            port: port.to_be_bytes(),
            word: [0; 4],
            addr6: [0; 16],
            scope_id: 0,
        }
    }

    /// How many bytes of it `connect` reads: `sockaddr_in6` or `sockaddr_in`.
    fn len(&self) -> u32 {
        if self.family == AF_INET6 { 28 } else { 16 }
    }
}

impl Socket {
    /// Connects a close-on-exec TCP socket to `addr` and sets `TCP_NODELAY` on it, as
    /// `TcpStream::connect` and `set_nodelay` do, with the error as a plain OS error number.
    #[cfg_attr(not(any(feature = "resolve", test)), allow(dead_code))]
    pub(crate) fn connect(addr: &SocketAddr) -> Result<Socket, c_int> {
        let raw = match addr {
            SocketAddr::V4(a) => SockAddr {
                word: a.ip().octets(),
                ..SockAddr::new(AF_INET, a.port())
            },
            SocketAddr::V6(a) => SockAddr {
                word: a.flowinfo().to_be_bytes(),
                addr6: a.ip().octets(),
                scope_id: a.scope_id(),
                ..SockAddr::new(AF_INET6, a.port())
            },
        };
        Socket::connect_raw(&raw)
    }

    /// [`Socket::connect`] for an address already in the C library's form.
    fn connect_raw(raw: &SockAddr) -> Result<Socket, c_int> {
        const SOCK_STREAM: c_int = 1;
        const SOCK_CLOEXEC: c_int = 0o2000000;
        const IPPROTO_TCP: c_int = 6;
        const TCP_NODELAY: c_int = 1;
        // SAFETY: plain system call; a failure is a negative return.
        let fd = unsafe { socket(c_int::from(raw.family), SOCK_STREAM | SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(errno());
        }
        let socket = Socket(fd);
        // SAFETY: `raw` holds a socket address of `len` bytes of the socket's family.
        if unsafe { connect(fd, (&raw const *raw).cast(), raw.len()) } != 0 {
            return Err(errno());
        }
        let on: c_int = 1;
        // Without it, a small POST after a write can wait for a delayed ACK.
        // SAFETY: the option value is a live `int`, of the length given.
        unsafe { setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (&raw const on).cast(), 4) };
        Ok(socket)
    }

    /// Writes the `slices` with one `sendmsg`, as `TcpStream::write_vectored` does with
    /// `writev`, but with the error as a plain OS error number (no `io::Error` to decode and
    /// drop) and `MSG_NOSIGNAL`: a connection the server has reset is `Err(EPIPE)`, never a
    /// `SIGPIPE` that ends a program without std. `Err(EINTR)` means "call again".
    pub(crate) fn write_vectored(&self, slices: &[IoVec<'_>]) -> Result<usize, c_int> {
        const MSG_NOSIGNAL: c_int = 0x4000;
        let message = MsgHdr {
            name: core::ptr::null_mut(),
            name_len: 0,
            iov: slices.as_ptr(),
            iov_len: slices.len(),
            control: core::ptr::null_mut(),
            control_len: 0,
            flags: 0,
        };
        // SAFETY: `message` is a `struct msghdr` with no address and no control data whose
        // `IoVec`s (laid out as `struct iovec`) are live for the call; a bad descriptor is
        // an error return.
        let n = unsafe { sendmsg(self.0, &message, MSG_NOSIGNAL) };
        usize::try_from(n).map_err(|_| errno())
    }

    /// Reads into `buf` with one `recv`, as `TcpStream::read` does, with the error as a
    /// plain OS error number. `Err(EINTR)` means "call again".
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<usize, c_int> {
        // SAFETY: the pointer and length describe a live, writable slice.
        let n = unsafe { recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        usize::try_from(n).map_err(|_| errno())
    }

    /// Whether the peer has neither closed the connection nor sent anything unasked: one
    /// non-blocking peek (`recv` with `MSG_PEEK | MSG_DONTWAIT`) that finds nothing to read.
    pub(crate) fn quiet_and_open(&self) -> bool {
        const MSG_PEEK: c_int = 2;
        const MSG_DONTWAIT: c_int = 0x40;
        let mut byte = 0u8;
        // SAFETY: `byte` is a valid, writable buffer of one byte.
        let n = unsafe { recv(self.0, (&raw mut byte).cast(), 1, MSG_PEEK | MSG_DONTWAIT) };
        // EAGAIN (EWOULDBLOCK): nothing to read and nothing closed.
        n < 0 && errno() == 11
    }

    /// The file descriptor (for tests).
    #[cfg(test)]
    fn fd(&self) -> c_int {
        self.0
    }
}

/// Connects to `host` when it is an IP address (Lambda gives `127.0.0.1:9001`), in the
/// standard forms (`127.0.0.1`, `::1`, `::ffff:1.2.3.4`), or `localhost` (127.0.0.1, then
/// ::1; the last error when neither accepts); `None` for anything else. The address is read
/// by the C library's `inet_pton` straight into the socket address: `str::parse` would
/// bring its own parser (about 2 KiB), and `core::net`'s types their conversions.
pub(crate) fn open(host: &str, port: u16) -> Option<Result<Socket, c_int>> {
    let mut v4 = SockAddr::new(AF_INET, port);
    let mut v6 = SockAddr::new(AF_INET6, port);
    match parse_ip(host, &mut v4, &mut v6) {
        Some(family) if family == AF_INET => Some(Socket::connect_raw(&v4)),
        Some(_) => Some(Socket::connect_raw(&v6)),
        None if crate::parse::eq_lowercase(host.as_bytes(), b"localhost") => {
            v4.word = [127, 0, 0, 1];
            v6.addr6[15] = 1;
            Some(Socket::connect_raw(&v4).or_else(|_| Socket::connect_raw(&v6)))
        }
        None => None,
    }
}

/// Reads `text` as an IPv4 address into `v4` or an IPv6 one into `v6` and returns which
/// family it was; `None` when it is neither.
fn parse_ip(text: &str, v4: &mut SockAddr, v6: &mut SockAddr) -> Option<u16> {
    // Longer than any address's text (45 bytes at most), with room for the NUL.
    let mut nul_terminated = [0u8; 64];
    if text.len() >= 64 {
        return None;
    }
    crate::bytes::copy(&mut nul_terminated, text.as_bytes());
    let src = nul_terminated.as_ptr().cast();
    // SAFETY: `src` is NUL-terminated and each destination has the size of its family's
    // address.
    if unsafe { inet_pton(AF_INET.into(), src, v4.word.as_mut_ptr().cast()) } == 1 {
        Some(AF_INET)
    // SAFETY: as above.
    } else if unsafe { inet_pton(AF_INET6.into(), src, v6.addr6.as_mut_ptr().cast()) } == 1 {
        Some(AF_INET6)
    } else {
        None
    }
}

/// Sleeps for `ms` milliseconds (less if a signal arrives).
#[inline(always)]
pub(crate) fn sleep_ms(ms: c_int) {
    // SAFETY: no descriptors to watch, so a null array of none is valid; `poll` only waits.
    unsafe { poll(core::ptr::null_mut(), 0, ms) };
}

/// `clock_gettime(2)`: with std, the C library's (std links it, with the vDSO lookup that
/// answers without a system call); without std on x86_64 and arm64, the system call itself,
/// which spares a static binary the C library's vDSO lookup (about 700 bytes) for a clock
/// read only by log lines, never per invocation.
#[cfg(any(
    feature = "std",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
unsafe fn clock_gettime<T>(clock: c_int, time: *mut T) -> c_int {
    unsafe extern "C" {
        #[link_name = "clock_gettime"]
        fn c_clock_gettime(clock: c_int, time: *mut c_void) -> c_int;
    }
    // SAFETY: the caller's `time` is a writable `struct timespec`.
    unsafe { c_clock_gettime(clock, time.cast()) }
}

/// See the other `clock_gettime`.
#[cfg(all(
    not(feature = "std"),
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
unsafe fn clock_gettime<T>(clock: c_int, time: *mut T) -> c_int {
    unsafe extern "C" {
        fn syscall(number: core::ffi::c_long, ...) -> core::ffi::c_long;
    }
    #[cfg(target_arch = "x86_64")]
    const SYS_CLOCK_GETTIME: core::ffi::c_long = 228;
    #[cfg(target_arch = "aarch64")]
    const SYS_CLOCK_GETTIME: core::ffi::c_long = 113;
    // SAFETY: the caller's `time` is a writable `struct timespec`; the number is this
    // architecture's `clock_gettime`.
    unsafe { syscall(SYS_CLOCK_GETTIME, clock, time) as c_int }
}

/// Milliseconds since the Unix epoch by `CLOCK_REALTIME` (0 if the clock cannot be read).
pub(super) fn realtime_ms() -> u64 {
    /// `struct timespec` with a 64-bit `time_t` (every 64-bit Linux, and musl everywhere).
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: core::ffi::c_long,
    }
    const CLOCK_REALTIME: c_int = 0;
    let mut now = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: `now` is a writable `struct timespec`.
    if unsafe { clock_gettime(CLOCK_REALTIME, &mut now) } != 0 {
        return 0;
    }
    let seconds = u64::try_from(now.seconds).unwrap_or(0);
    let millis = u64::try_from(now.nanoseconds / 1_000_000).unwrap_or(0);
    seconds.saturating_mul(1000).saturating_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    use core::net::IpAddr;

    /// The address `text` is, as `core::net` has it.
    fn ip(text: &str) -> Option<IpAddr> {
        let (mut v4, mut v6) = (SockAddr::new(AF_INET, 1), SockAddr::new(AF_INET6, 1));
        match parse_ip(text, &mut v4, &mut v6)? {
            AF_INET => Some(v4.word.into()),
            _ => Some(v6.addr6.into()),
        }
    }

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
            assert_eq!(ip(text), text.parse().ok(), "{text}");
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
            assert_eq!(ip(text), None, "{text}");
        }
        assert_eq!(ip(&"1".repeat(100)), None);
        assert_eq!(ip(&format!("::{}", "0".repeat(70))), None);
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
            let socket = Socket::connect(&addr).unwrap();
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
}

//! The same functions as `linux.rs` on std's portable facilities, for targets other than
//! Linux (a laptop running a handler's unit tests): a `TcpStream`, `std::io::stderr`,
//! `std::thread::sleep`, std's address parser. Errors are OS error numbers as std reports
//! them (0 when it gives none); an interrupted call is [`EINTR`], to be repeated.
//!
//! `--cfg tinylambda_portable` selects this on Linux too, so the test suite can run on it.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};

use super::IoVec;

/// Stands for an interrupted call, whatever the platform's own number for it.
pub(crate) const EINTR: i32 = 4;

/// The OS error number of `error` (0 when it has none), [`EINTR`] when interrupted.
fn code(error: &std::io::Error) -> i32 {
    if error.kind() == ErrorKind::Interrupted {
        EINTR
    } else {
        error.raw_os_error().unwrap_or(0)
    }
}

/// Writes all of `bytes` to stderr, ignoring errors: there is no better place to report
/// them.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().write_all(bytes);
}

/// A connected TCP socket with `TCP_NODELAY`, closed on drop.
pub(crate) struct Socket(TcpStream);

impl Socket {
    /// Connects to `addr` and sets `TCP_NODELAY`.
    pub(crate) fn connect(addr: &SocketAddr) -> Result<Socket, i32> {
        let stream = TcpStream::connect(addr).map_err(|e| code(&e))?;
        // Without it, a small POST after a write can wait for a delayed ACK.
        let _ = stream.set_nodelay(true);
        Ok(Socket(stream))
    }

    /// Writes the `slices` with one vectored write. `Err(EINTR)` means "call again".
    pub(crate) fn write_vectored(&self, slices: &[IoVec<'_>]) -> Result<usize, i32> {
        let mut buffers = [IoSlice::new(&[]); 4];
        for (buffer, slice) in buffers.iter_mut().zip(slices) {
            *buffer = IoSlice::new(slice.as_slice());
        }
        let used = slices.len().min(buffers.len());
        (&self.0)
            .write_vectored(buffers.get(..used).unwrap_or_default())
            .map_err(|e| code(&e))
    }

    /// Reads into `buf`. `Err(EINTR)` means "call again".
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<usize, i32> {
        (&self.0).read(buf).map_err(|e| code(&e))
    }

    /// Whether the peer has neither closed the connection nor sent anything unasked: a
    /// non-blocking peek that finds nothing to read.
    pub(crate) fn quiet_and_open(&self) -> bool {
        if self.0.set_nonblocking(true).is_err() {
            return false;
        }
        let quiet = matches!(self.0.peek(&mut [0]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        self.0.set_nonblocking(false).is_ok() && quiet
    }
}

/// Connects to `host` when it is an IP address, or `localhost` (127.0.0.1, then ::1; the last
/// error when neither accepts); `None` for anything else.
pub(crate) fn open(host: &str, port: u16) -> Option<Result<Socket, i32>> {
    let ips: [IpAddr; 2] = match host.parse() {
        Ok(ip) => [ip, ip],
        Err(_) if host.eq_ignore_ascii_case("localhost") => {
            [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
        }
        Err(_) => return None,
    };
    let [first, second] = ips.map(|ip| SocketAddr::new(ip, port));
    Some(Socket::connect(&first).or_else(|e| {
        if first == second {
            Err(e)
        } else {
            Socket::connect(&second)
        }
    }))
}

/// Sleeps for `ms` milliseconds.
pub(crate) fn sleep_ms(ms: i32) {
    std::thread::sleep(std::time::Duration::from_millis(
        u64::try_from(ms).unwrap_or(0),
    ));
}

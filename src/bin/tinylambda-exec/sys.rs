//! The libc calls std has no safe equivalent for; the only `unsafe` code in the binary.
//!
//! - `poll`: one thread waits on the child's stdout, stderr and stdin, its exit and the
//!   deadline at once, so nothing can deadlock and no thread is started per invocation.
//! - `kill` of a process group: `Child::kill` reaches one process, but a handler script's
//!   own children (a `sleep`, a pipeline) must go too, or they keep the pipes open.
//! - `fcntl(F_SETFL, O_NONBLOCK)` on our end of the child's stdin: a write never blocks,
//!   however much of the event the child has not read yet.
//! - `pidfd_open` (Linux 5.3): a descriptor that becomes readable when the child exits, so
//!   `poll` notices a child that exits while something else still holds its pipes.
//! - `prctl(PR_SET_PDEATHSIG)` and `getppid`, in a child between fork and exec: the web
//!   server gets SIGKILL when we end, however we end (SIGKILL included).
//! - `ioctl(FIONREAD)` on a pipe: how many bytes wait in it, from either end, so a
//!   persistent handler that left part of its frame unread, or wrote between invocations,
//!   is noticed.
//! - `pipe2(O_CLOEXEC)`: one pipe for both output streams of the web server, in JSON log
//!   format (`std::io::pipe` is newer than the crate's minimum Rust, 1.85).

use std::ffi::{c_int, c_long, c_short, c_ulong};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PollFd {
    /// The descriptor to watch.
    pub fd: c_int,
    /// What to wait for.
    pub events: c_short,
    /// What happened (set by `poll`).
    pub revents: c_short,
}

/// Readable (or, for a pidfd, exited).
pub(crate) const POLLIN: c_short = 0x1;
/// Writable.
pub(crate) const POLLOUT: c_short = 0x4;
/// Error, hang-up or invalid descriptor: the end of that stream.
pub(crate) const POLLEND: c_short = 0x8 | 0x10 | 0x20;

const F_SETFL: c_int = 4;
/// `FIONREAD` in the generic ioctl numbering, which x86_64 and aarch64 use.
const FIONREAD: c_ulong = 0x541B;
const O_NONBLOCK: c_int = 0o4000;
/// The same value on x86_64 and aarch64.
const O_CLOEXEC: c_int = 0o2_000_000;
const SIGKILL: c_int = 9;
const PR_SET_PDEATHSIG: c_int = 1;
const ESRCH: i32 = 3;
/// The same number on every Linux architecture (it postdates the per-architecture tables).
const SYS_PIDFD_OPEN: c_long = 434;

unsafe extern "C" {
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn prctl(option: c_int, ...) -> c_int;
    fn getppid() -> c_int;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
}

/// Waits until one of `fds` is ready or `timeout_ms` passes (-1: no limit); the number of
/// ready descriptors, 0 on timeout.
pub(crate) fn wait(fds: &mut [PollFd], timeout_ms: c_int) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, writable slice of `struct pollfd`.
    let n = unsafe { poll(fds.as_mut_ptr(), fds.len() as c_ulong, timeout_ms) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Sends SIGKILL to every process in the group `pgid` (a child started with
/// `process_group(0)` leads a group whose id is its pid). Ignores errors: the group may
/// be gone already.
pub(crate) fn kill_group(pgid: u32) {
    match c_int::try_from(pgid) {
        // Never 0 or 1: `kill(0)` and `kill(-1)` would reach our own group or everything.
        Ok(pgid) if pgid > 1 => {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe { kill(-pgid, SIGKILL) };
        }
        _ => {}
    }
}

/// Makes the process `cmd` starts get SIGKILL when the calling thread ends, however it
/// ends: exit, a fatal signal, SIGKILL (`PR_SET_PDEATHSIG`; it survives the exec, and the
/// exec of a shell's last command). Call it on the thread that lives as long as the process
/// (the main thread). Only that process: what it starts in turn does not inherit it.
pub(crate) fn die_with_this_thread(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls may be made: `die_with_parent` makes two system calls, reads
    // errno, and allocates nothing (an `io::Error` from an OS error code owns no memory).
    unsafe { cmd.pre_exec(move || die_with_parent(parent)) };
}

/// In a child between fork and exec: SIGKILL when the thread that forked it ends; an error
/// when its parent is no longer `parent` (it ended before the request took effect, so the
/// signal would never come and the child must not start).
fn die_with_parent(parent: u32) -> io::Result<()> {
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG takes integers only.
    if unsafe { prctl(PR_SET_PDEATHSIG, c_ulong::from(SIGKILL.unsigned_abs())) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid(2) takes nothing and cannot fail.
    if u32::try_from(unsafe { getppid() }).ok() != Some(parent) {
        return Err(io::Error::from_raw_os_error(ESRCH));
    }
    Ok(())
}

/// Makes writes to (or reads from) `fd` return `WouldBlock` instead of waiting. Only the
/// file status flags change (the access mode bits are ignored by `F_SETFL`), and only for
/// this end of the pipe: the child's end is a separate open file.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) with F_SETFL takes an int argument and touches no memory of ours.
    if unsafe { fcntl(fd, F_SETFL, O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The number of bytes waiting in the pipe `fd` is an end of (its read end or its write
/// end: both see the same buffer).
pub(crate) fn unread(fd: RawFd) -> io::Result<usize> {
    let mut count: c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to a live c_int.
    if unsafe { ioctl(fd, FIONREAD, &mut count as *mut c_int) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(count).unwrap_or(0))
}

/// A new pipe, both ends closed on exec (a child gets one only as a stream it is given):
/// its read end and its write end.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [c_int; 2] = [-1, -1];
    // SAFETY: pipe2(2) writes two ints through the pointer, which points to a live array
    // of two.
    if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let [read, write] = fds;
    // SAFETY: the kernel just returned these two descriptors to us, and nothing else owns
    // them.
    Ok(unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) })
}

/// A descriptor that becomes readable when process `pid` (our unreaped child) exits;
/// `None` on kernels without `pidfd_open`.
pub(crate) fn pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = c_int::try_from(pid).ok()?;
    // SAFETY: pidfd_open(2) takes a pid and flags and touches no memory of ours.
    let fd = unsafe { syscall(SYS_PIDFD_OPEN, pid, 0 as c_int) };
    let fd = RawFd::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::process::{Command, Stdio};

    #[test]
    fn unread_counts_the_bytes_in_a_pipe_from_either_end() {
        let mut child = Command::new("sh")
            .args(["-c", "read -r line; printf '%s!' \"$line\"; exec sleep 5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        stdin.write_all(b"one\ntwo three").unwrap();
        let mut reply = [0; 4];
        stdout.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"one!");
        // sh reads its line a byte at a time from a pipe: the rest is still there.
        assert_eq!(unread(stdin.as_raw_fd()).unwrap(), 9);
        assert_eq!(unread(stdout.as_raw_fd()).unwrap(), 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

//! Moving bytes between us and a child without deadlock: one `poll` loop writes the event
//! to its stdin, reads its stdout, forwards its stderr as it arrives, notices its exit, and
//! kills its process group at the deadline. No thread is started, and no write or read
//! ever waits for the child, however large the event or the output, and whether or not
//! the child reads its stdin.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::AsRawFd;
use std::process::ChildStdout;

use crate::child::Child;
use crate::deadline::Deadline;
use crate::relay::Relay;
use crate::sys::{self, POLLEND, POLLIN, POLLOUT, PollFd};

/// After the child exits while something still holds its pipes, how long to keep reading
/// what is left before giving up on the pipes.
const GRACE_MS: u64 = 200;

/// After the kill at the deadline, how long to keep reading what is left: half the margin
/// the kill leaves before the deadline (see [`crate::deadline::MARGIN_MS`]), so that the
/// `/error` goes out in time even when a process that left the handler's group (`timeout`
/// starts its command in a group of its own) still holds the pipes.
const KILL_GRACE_MS: u64 = crate::deadline::MARGIN_MS / 2;

/// Where the child's stdout goes.
pub(crate) trait Sink {
    /// Reads what is available from `stdout` (after `poll` said it is readable); `Ok(0)` at
    /// the end of the stream.
    fn read_from(&mut self, stdout: &mut ChildStdout) -> std::io::Result<usize>;

    /// Whether the answer is complete without waiting for the end of the stream.
    fn done(&self) -> bool {
        false
    }
}

/// Reads and drops everything.
pub(crate) struct Discard;

impl Sink for Discard {
    fn read_from(&mut self, stdout: &mut ChildStdout) -> std::io::Result<usize> {
        stdout.read(&mut [0; 8192])
    }
}

/// When an exchange is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// When the child has exited and its stdout and stderr have ended (a per-call child).
    Exit,
    /// When the sink has a complete answer (a persistent child), or stdout ends.
    Reply,
}

/// How an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The sink has its answer (`Until::Reply`), and all of the input was written.
    Done,
    /// The sink has its answer (`Until::Reply`) but part of the input was never written:
    /// the child answered before reading all of it.
    Early,
    /// The child's output ended (`Until::Exit`: it exited; `Until::Reply`: it closed its
    /// stdout without a complete answer).
    Closed,
    /// The deadline came: the child's process group was killed.
    TimedOut,
    /// The child had already closed its stdin before anything was written
    /// (`Until::Reply` only): it was gone before the exchange began.
    Gone,
}

/// What to write to the child's stdin: up to two slices, sent in order.
pub(crate) struct Input<'a> {
    parts: [&'a [u8]; 2],
    sent: usize,
    /// Close the child's stdin once everything is written.
    close: bool,
    /// The child closed its end: the rest will never be written.
    broken: bool,
}

impl<'a> Input<'a> {
    /// `first` then `second`; with `close`, stdin is closed after them.
    pub(crate) fn new(first: &'a [u8], second: &'a [u8], close: bool) -> Input<'a> {
        Input {
            parts: [first, second],
            sent: 0,
            close,
            broken: false,
        }
    }

    /// The bytes to write in all.
    pub(crate) fn len(&self) -> usize {
        self.parts[0].len() + self.parts[1].len()
    }

    /// The bytes written so far.
    pub(crate) fn sent(&self) -> usize {
        self.sent
    }

    fn pending(&self) -> bool {
        !self.broken && self.sent < self.len()
    }

    /// Writes as much as the pipe takes now.
    fn write_to(&mut self, stdin: &mut impl Write) {
        while self.pending() {
            let [first, second] = self.parts;
            let (a, b) = match first.get(self.sent..) {
                Some(rest) if !rest.is_empty() => (rest, second),
                _ => (
                    second.get(self.sent - first.len()..).unwrap_or_default(),
                    &[][..],
                ),
            };
            match stdin.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
                Ok(0) => self.broken = true,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.broken = true,
            }
        }
    }
}

/// Feeds `input` to the child and closes its stdin when that is finished or broken.
fn feed(child: &mut Child, input: &mut Input<'_>) {
    if let Some(stdin) = &mut child.stdin {
        input.write_to(stdin);
        if input.broken || (input.close && !input.pending()) {
            child.stdin = None;
        }
    }
}

fn watch(fd: Option<&impl AsRawFd>, events: i16) -> PollFd {
    PollFd {
        fd: fd.map_or(-1, |fd| fd.as_raw_fd()),
        events,
        revents: 0,
    }
}

/// Runs one exchange with `child` (see the module documentation): `input` to its stdin,
/// its stdout to `sink`, its stderr to `relay`, until `until` says it is over or
/// `deadline` comes.
pub(crate) fn pump(
    child: &mut Child,
    input: &mut Input<'_>,
    sink: &mut dyn Sink,
    relay: &mut Relay,
    deadline: Deadline,
    until: Until,
) -> End {
    let mut killed = false;
    let mut limit = deadline;
    // A small event usually goes in this one write, before any waiting.
    feed(child, input);
    if until == Until::Reply && input.broken && input.sent == 0 {
        return End::Gone;
    }
    loop {
        if sink.done() {
            return if input.sent < input.len() {
                End::Early
            } else {
                End::Done
            };
        }
        let over = match until {
            Until::Exit => {
                child.stdout.is_none()
                    && child.stderr.is_none()
                    && (child.exited || child.pidfd.is_none())
            }
            Until::Reply => child.stdout.is_none(),
        };
        if over {
            return if killed { End::TimedOut } else { End::Closed };
        }
        let writing = child.stdin.as_ref().filter(|_| input.pending());
        let running = child.pidfd.as_ref().filter(|_| !child.exited);
        let mut fds = [
            watch(child.stdout.as_ref(), POLLIN),
            watch(child.stderr.as_ref(), POLLIN),
            watch(writing, POLLOUT),
            watch(running, POLLIN),
        ];
        let stop = match sys::wait(&mut fds, limit.poll_ms()) {
            Ok(0) => limit.passed(),
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::Interrupted, // cannot wait: end it, bounded
        };
        if stop {
            if killed {
                return End::TimedOut; // something outside the group holds the pipes
            }
            if child.exited {
                return End::Closed; // it exited; leftovers it started hold the pipes
            }
            child.kill();
            killed = true;
            limit = Deadline::after_ms(KILL_GRACE_MS);
            continue;
        }
        let [out, err, inp, pid] = fds.map(|f| f.revents);
        if err & (POLLIN | POLLEND) != 0 {
            if let Some(stderr) = &mut child.stderr {
                match relay.read_from(stderr) {
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Ok(0) | Err(_) => {
                        child.stderr = None;
                        relay.finish();
                    }
                    Ok(_) => {}
                }
            }
        }
        if out & (POLLIN | POLLEND) != 0 {
            if let Some(stdout) = &mut child.stdout {
                match sink.read_from(stdout) {
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Ok(0) | Err(_) => child.stdout = None,
                    Ok(_) => {}
                }
            }
        }
        if inp & (POLLOUT | POLLEND) != 0 {
            feed(child, input);
        }
        if pid & (POLLIN | POLLEND) != 0 {
            child.exited = true;
            // Whatever it left running in its group goes too: it would hold the pipes
            // open and pile up across invocations.
            child.kill();
            limit = limit.min(Deadline::after_ms(GRACE_MS));
        }
    }
}

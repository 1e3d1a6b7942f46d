//! The web server's output in JSON log format. Its stdout and stderr share one pipe (on
//! Lambda both streams of a process go to the same log), which a thread of ours reads
//! through a [`Relay`], as a handler's stderr is read: each line reaches the log as a JSON
//! object or an `INFO` record (see `forward.rs`) about the invocation open when it was read
//! (none before the first; after one ends, still that one until the next begins). When an
//! invocation begins, and when its reply has arrived, what the server wrote until then is
//! forwarded at once ([`ServerLog::drain`]), so it never passes for the next invocation's.
//!
//! In text format none of this exists: the server writes to our stdout and stderr directly,
//! as it always did.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tinylambda::{Context, Level, LogFormat};

use crate::log::log;
use crate::relay::Relay;
use crate::sys::{self, POLLIN, PollFd};

/// The web server's log, relayed in JSON format.
pub(crate) struct ServerLog {
    /// Whether the format is JSON (else nothing is relayed).
    json: bool,
    /// The pipe of the server started last and its relay, in JSON format.
    current: Option<Piped>,
}

/// A server's pipe (its read end, non-blocking) and the relay its lines go through,
/// shared by the reading thread and the invocations.
#[derive(Clone)]
struct Piped {
    /// The read end.
    pipe: Arc<File>,
    /// Where what is read goes, with the invocation it is about.
    relay: Arc<Mutex<Relay>>,
}

impl ServerLog {
    /// The web server's log in the function's log format.
    pub(crate) fn new() -> ServerLog {
        ServerLog {
            json: tinylambda::log_format() == LogFormat::Json,
            current: None,
        }
    }

    /// In JSON format, the streams to give a server about to start as its stdout and stderr:
    /// the write end of a new pipe, twice, whose lines a new thread relays. `None` in text
    /// format, or when the pipe or the thread cannot be made (logged): the server then
    /// writes to our streams directly.
    pub(crate) fn streams(&mut self) -> Option<(Stdio, Stdio)> {
        if !self.json {
            return None;
        }
        match self.relayed_pipe() {
            Ok(streams) => Some(streams),
            Err(e) => {
                log(
                    Level::Warn,
                    &[
                        b"cannot relay the web server's output (",
                        e.to_string().as_bytes(),
                        b"): it goes to the log as it is",
                    ],
                );
                None
            }
        }
    }

    /// A pipe and the thread that reads it, made the current ones: the write end twice.
    fn relayed_pipe(&mut self) -> std::io::Result<(Stdio, Stdio)> {
        let (read, write) = sys::pipe()?;
        sys::set_nonblocking(read.as_raw_fd())?;
        let piped = Piped {
            pipe: Arc::new(File::from(read)),
            relay: Arc::new(Mutex::new(Relay::new())),
        };
        let reader = piped.clone();
        std::thread::Builder::new()
            .name("server-log".into())
            .spawn(move || reader.relay_until_the_end())?;
        self.current = Some(piped);
        let stderr = write.try_clone()?;
        Ok((Stdio::from(write), Stdio::from(stderr)))
    }

    /// Makes the server's lines from now on about the invocation of `ctx`.
    pub(crate) fn begin(&self, ctx: &Context<'_>) {
        if let Some(piped) = &self.current {
            piped.lock().begin(ctx);
        }
    }

    /// Forwards what waits in the pipe now, unless the thread already has: called before an
    /// invocation begins and when its request is over, so that what the server wrote until
    /// then is about the invocation it wrote it in.
    pub(crate) fn drain(&self) {
        let Some(piped) = &self.current else {
            return;
        };
        let mut relay = piped.lock();
        // While we hold the relay the thread reads nothing: what is in the pipe now is all
        // that is left of what was written before.
        let mut left = sys::unread(piped.pipe.as_raw_fd()).unwrap_or(0);
        while left > 0 {
            match relay.read_from(&mut &*piped.pipe) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

impl Piped {
    /// The relay, for this thread alone.
    fn lock(&self) -> MutexGuard<'_, Relay> {
        // A panic elsewhere with the lock held leaves a relay that is still usable.
        self.relay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: waits for output (not holding the relay, so an invocation can drain the
    /// pipe meanwhile), reads it through the relay, and ends when every writer has closed
    /// the pipe (the server and what it started have ended).
    fn relay_until_the_end(self) {
        let fd = self.pipe.as_raw_fd();
        loop {
            let mut fds = [PollFd {
                fd,
                events: POLLIN,
                revents: 0,
            }];
            if let Err(e) = sys::wait(&mut fds, -1) {
                if e.kind() != ErrorKind::Interrupted {
                    // Cannot wait: look again soon rather than leave the server blocked
                    // on a full pipe.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            // Non-blocking: `WouldBlock` when an invocation drained it first.
            match self.lock().read_from(&mut &*self.pipe) {
                Ok(0) => break,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => break,
                Ok(_) => {}
            }
        }
        self.lock().finish();
    }
}

//! Persistent mode: one child started at init serves invocation after invocation over
//! the framed protocol in `frame.rs`, so an invocation costs no fork and no exec: a write
//! to its stdin, a `poll` and a read from its stdout. A child that dies is started again
//! for the next invocation; one killed at the deadline too, and one that got out of step
//! with its frames (see `frame.rs`).

use std::os::fd::AsRawFd;

use tinylambda::{Context, Error, Level};

use crate::child::Child;
use crate::deadline::Deadline;
use crate::failure::{self, PROTOCOL_ERROR};
use crate::frame::{self, MAX_STATUS, Reply, ReplyBuf};
use crate::log::{decimal, log};
use crate::output::trim_newlines;
use crate::pump::{Discard, End, Input, Until, pump};
use crate::relay::Relay;
use crate::spec::Spec;
use crate::sys::{self, POLLIN, PollFd};

/// How long a retired child's remaining stderr is read after it is killed.
const DRAIN_MS: u64 = 200;

/// A handler process kept between invocations.
pub(crate) struct Persistent {
    spec: Spec,
    child: Option<Child>,
    relay: Relay,
    head: Vec<u8>,
    reply: ReplyBuf,
}

impl Persistent {
    /// Starts the handler process (at init, so its start-up is not paid by an invocation).
    ///
    /// # Errors
    /// `Runtime.StartError` when it cannot be started.
    pub(crate) fn start(spec: Spec) -> Result<Persistent, Error> {
        let child = spec.spawn(&mut spec.command())?;
        Ok(Persistent {
            spec,
            child: Some(child),
            relay: Relay::new(),
            head: Vec::new(),
            reply: ReplyBuf::default(),
        })
    }

    /// Runs one invocation.
    pub(crate) fn invoke(&mut self, event: &[u8], ctx: &Context<'_>) -> Result<Vec<u8>, Error> {
        let deadline = Deadline::of(ctx);
        frame::write_head(&mut self.head, event.len(), ctx);
        self.relay.begin(ctx);
        self.replace_if_out_of_step();
        for attempt in 0..2 {
            let child = match self.child.take() {
                Some(child) => child,
                None => self.spec.spawn(&mut self.spec.command())?,
            };
            let child = self.child.insert(child);
            self.reply.reset();
            let mut input = Input::new(&self.head, event, false);
            let end = pump(
                child,
                &mut input,
                &mut self.reply,
                &mut self.relay,
                deadline,
                Until::Reply,
            );
            match end {
                End::Done | End::Early => {
                    // A partial last line of this invocation's log is not held back
                    // until the next one.
                    self.relay.finish();
                    let unread = child
                        .stdin
                        .as_ref()
                        .and_then(|stdin| sys::unread(stdin.as_raw_fd()).ok())
                        .unwrap_or(0);
                    let read = input.sent().saturating_sub(unread);
                    return self.answer(read, input.len());
                }
                End::Gone if attempt == 0 => {
                    // It ended between invocations (its own `exit`, or a crash): start a
                    // new one for this invocation.
                    let status = self.retire();
                    log(
                        Level::Warn,
                        &[
                            b"the handler process had ended (",
                            &failure::status_text(status),
                            b"); starting it again",
                        ],
                    );
                }
                End::TimedOut => {
                    self.retire();
                    return Err(failure::timed_out(&self.relay.tail()));
                }
                End::Gone | End::Closed => {
                    let status = self.retire();
                    return Err(failure::ended(status, &self.relay.tail()));
                }
            }
        }
        // Not reached: the second attempt returns from every arm.
        Err(failure::ended(None, &self.relay.tail()))
    }

    /// Before an invocation: a handler that wrote something since its last reply is out of
    /// step (that would be taken for this invocation's reply), and one whose stdout ended
    /// has exited. Either is replaced.
    fn replace_if_out_of_step(&mut self) {
        let Some(stdout) = self.child.as_ref().and_then(|c| c.stdout.as_ref()) else {
            return;
        };
        let mut fds = [PollFd {
            fd: stdout.as_raw_fd(),
            events: POLLIN,
            revents: 0,
        }];
        if !matches!(sys::wait(&mut fds, 0), Ok(1)) {
            return; // quiet: in step
        }
        let stray = sys::unread(stdout.as_raw_fd()).unwrap_or(0);
        let status = self.retire();
        if stray > 0 {
            log(
                Level::Warn,
                &[
                    b"the handler wrote ",
                    &decimal(stray as u64),
                    b" bytes after its last reply; it was stopped and starts again",
                ],
            );
        } else {
            log(
                Level::Warn,
                &[
                    b"the handler process had ended (",
                    &failure::status_text(status),
                    b"); starting it again",
                ],
            );
        }
    }

    /// The invocation's result from a complete reply, for which the handler read `read`
    /// bytes of its `len`-byte frame. A handler that replied before reading all of its
    /// frame, or wrote more after the reply, is out of step: its reply stands, and it is
    /// replaced so that the rest is not taken for the next invocation.
    fn answer(&mut self, read: usize, len: usize) -> Result<Vec<u8>, Error> {
        if matches!(self.reply.reply(), Some(Reply::Invalid) | None) {
            // The stream is out of step: nothing after this can be trusted.
            self.retire();
            return Err(failure::error(
                PROTOCOL_ERROR,
                &[
                    b"the handler's reply has no valid status line (a NUL, then at most ",
                    &decimal(MAX_STATUS as u64),
                    b" bytes of text and a newline); it was stopped",
                ],
            ));
        }
        let result = match self.reply.reply() {
            Some(Reply::Response(body)) => Ok(if self.spec.trim {
                trim_newlines(body)
            } else {
                body
            }
            .to_vec()),
            Some(Reply::Failed { status, body }) => {
                Err(failure::reported(status, body, &self.relay.tail()))
            }
            Some(Reply::TooLarge(size)) => Err(failure::too_large(Some(size))),
            Some(Reply::Invalid) | None => Err(failure::ended(None, &self.relay.tail())),
        };
        if let Some(slip) = slip(read, len, self.reply.extra()) {
            log(Level::Warn, &[&slip, b"; it was stopped and starts again"]);
            self.retire();
        }
        result
    }

    /// Kills the handler process and its group, forwards what is left of its stderr, and
    /// reaps it.
    fn retire(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        child.kill();
        let mut nothing = Input::new(b"", b"", true);
        pump(
            &mut child,
            &mut nothing,
            &mut Discard,
            &mut self.relay,
            Deadline::after_ms(DRAIN_MS),
            Until::Exit,
        );
        let status = child.reap();
        self.relay.finish();
        status
    }
}

/// How a handler that replied got out of step with its frames, if it did: it read `read` of
/// its `len`-byte frame, and wrote `extra` bytes after the reply.
fn slip(read: usize, len: usize, extra: usize) -> Option<Vec<u8>> {
    if read < len {
        Some(
            [
                b"the handler replied before reading all of its frame (".as_slice(),
                &decimal(read as u64),
                b" of ",
                &decimal(len as u64),
                b" bytes)",
            ]
            .concat(),
        )
    } else if extra > 0 {
        Some(
            [
                b"the handler wrote ".as_slice(),
                &decimal(extra as u64),
                b" bytes after its reply",
            ]
            .concat(),
        )
    } else {
        None
    }
}

//! Persistent mode: one child started at init serves invocation after invocation over
//! the framed protocol in `frame.rs`, so an invocation costs no fork and no exec: a write
//! to its stdin, a `poll` and a read from its stdout. A child that dies is started again
//! for the next invocation; one killed at the deadline too.

use tinylambda::{Context, Error};

use crate::child::Child;
use crate::deadline::Deadline;
use crate::failure::{self, PROTOCOL_ERROR};
use crate::frame::{self, MAX_STATUS, Reply, ReplyBuf};
use crate::log::{decimal, log};
use crate::output::trim_newlines;
use crate::pump::{Discard, End, Input, Until, pump};
use crate::relay::Relay;
use crate::spec::Spec;

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
        self.relay.begin();
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
                End::Done => {
                    // A partial last line of this invocation's log is not held back
                    // until the next one.
                    self.relay.finish();
                    return self.answer();
                }
                End::Gone if attempt == 0 => {
                    // It ended between invocations (its own `exit`, or a crash): start a
                    // new one for this invocation.
                    let status = self.retire();
                    log(&[
                        b"the handler process had ended (",
                        &failure::status_text(status),
                        b"); starting it again",
                    ]);
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

    /// The invocation's result from a complete reply.
    fn answer(&mut self) -> Result<Vec<u8>, Error> {
        if matches!(self.reply.reply(), Some(Reply::Invalid) | None) {
            // The stream is out of step: nothing after this can be trusted.
            self.retire();
            return Err(failure::error(
                PROTOCOL_ERROR,
                &[
                    b"the handler's reply has no status line within ",
                    &decimal(MAX_STATUS as u64),
                    b" bytes after the NUL; it was stopped",
                ],
            ));
        }
        let extra = self.reply.extra();
        if extra > 0 {
            log(&[
                b"dropped ",
                &decimal(extra as u64),
                b" bytes the handler wrote after its reply",
            ]);
        }
        match self.reply.reply() {
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
        }
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

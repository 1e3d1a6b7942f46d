//! The invocations of one sandbox and their deadlines: the queue of those waiting for the
//! runtime, and the open ones the runtime holds.
//!
//! - A **queued** invocation waits at most [`queue_limit`] (the init limit plus the
//!   function timeout: long enough for a cold start and for the invocation before it) for
//!   the runtime to take it; then its caller gets `Sandbox.Timedout` without it ever
//!   reaching the runtime. Lambda never queues a synchronous invocation (it starts another
//!   environment, or throttles), so this bound is the emulator's own: no caller waits
//!   without one.
//! - An **open** invocation's deadline is the function timeout after its event was sent
//!   (its `Lambda-Runtime-Deadline-Ms`). One instance at a time (on demand), it stays open
//!   after its response until the runtime's next `GET /next`, and its deadline still holds
//!   ("an invoke is not complete until next() is called again": aws-lambda-go
//!   `runtime_api_client.go`; AWS's emulator times the whole invoke to the runtime's
//!   release, `internal/lambda/rapidcore/server.go` `Invoke`). Under Lambda Managed
//!   Instances it ends with its response (AWS's emulator,
//!   `internal/lambda-managed-instances/invoke/running_invoke.go`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use super::outcome::{Outcome, Pipe};
use super::report::Status;
use crate::ids::RequestId;

/// How long a runtime may take from its start to its first `GET /next` (Lambda's init
/// limit for on-demand functions, `lambda-runtime-environment.md`).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

/// How many timed-out invocations are remembered, so that a late `/response` or `/error`
/// for one gets 410 rather than 400 (Managed Instances; AWS's emulator keeps 1,000,
/// `internal/lambda-managed-instances/invoke/timeout/timeout_cache.go`).
const TIMED_OUT_KEPT: usize = 1000;

/// How long a queued invocation may wait for the runtime, for a function `timeout`.
pub fn queue_limit(timeout: Duration) -> Duration {
    INIT_LIMIT + timeout
}

/// One invocation, as a caller submits it.
#[derive(Debug)]
pub struct Invocation {
    /// Its request id.
    pub id: RequestId,
    /// The event (shared, so the bench sends one buffer many times).
    pub event: Arc<[u8]>,
    /// The caller's `Content-Type`, passed to the runtime (default `application/json`).
    pub content_type: Option<String>,
    /// The caller's `X-Amzn-Trace-Id`, else one is made up.
    pub trace_id: Option<String>,
    /// The client context (a JSON object), passed as `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// The caller's `X-Amz-Tenant-Id`, passed as `Lambda-Runtime-Aws-Tenant-Id`.
    pub tenant_id: Option<String>,
    /// Whether the caller wants the response body (the bench only needs its length).
    pub keep_body: bool,
}

/// Where an invocation's outcome goes.
pub type Reply = SyncSender<Outcome>;

/// An invocation waiting for the runtime.
#[derive(Debug)]
pub struct Queued {
    /// The invocation.
    pub invocation: Invocation,
    /// Its caller.
    pub reply: Reply,
    /// When its wait ends.
    pub deadline: Instant,
}

/// What the runtime is doing with an open invocation.
#[derive(Debug)]
pub enum Holding {
    /// It has the event and has not answered yet.
    Working,
    /// Its response is being streamed to the caller through this pipe.
    Streaming(Arc<Pipe>),
    /// It has answered (so); the invocation lasts until its next `GET /next`.
    Answered(Status),
}

/// An invocation the runtime holds.
#[derive(Debug)]
pub struct Open {
    /// Its request id.
    pub id: RequestId,
    /// Its caller, until it has its outcome.
    pub reply: Option<Reply>,
    /// When its event was sent.
    pub sent_at: Instant,
    /// Its deadline.
    pub deadline: Instant,
    /// Whether its caller wants the response body.
    pub keep_body: bool,
    /// What the runtime is doing with it.
    pub holding: Holding,
}

/// Why a runtime's POST for an invocation is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `InvalidRequestID`.
    WrongId,
    /// 403 `InvalidStateTransition`, for this reason.
    WrongState(&'static str),
    /// 410 `InvokeTimeout`: the invocation timed out (Managed Instances).
    Gone,
    /// From a replaced runtime: close the connection.
    Stale,
}

/// The queue and the open invocations.
#[derive(Debug, Default)]
pub struct Slots {
    /// Waiting for the runtime, in order of arrival.
    pub queue: VecDeque<Queued>,
    /// Held by the runtime.
    pub open: Vec<Open>,
    /// The last N ids handed out: a POST for one that is no longer open is 403, for any
    /// other id 400.
    handed: VecDeque<RequestId>,
    /// Recently timed-out ids (Managed Instances).
    timed_out: VecDeque<RequestId>,
}

impl Slots {
    /// Invocations queued or being worked on (an answered one waiting for `/next` is not).
    pub fn in_flight(&self) -> usize {
        self.queue.len()
            + self
                .open
                .iter()
                .filter(|o| !matches!(o.holding, Holding::Answered(_)))
                .count()
    }

    /// Opens `queued` at `now` with the function `timeout`; `n` ids are remembered.
    pub fn open(&mut self, queued: Queued, now: Instant, timeout: Duration, n: usize) {
        let invocation = &queued.invocation;
        self.open.push(Open {
            id: invocation.id,
            reply: Some(queued.reply),
            sent_at: now,
            deadline: now + timeout,
            keep_body: invocation.keep_body,
            holding: Holding::Working,
        });
        self.handed.push_back(invocation.id);
        while self.handed.len() > n {
            self.handed.pop_front();
        }
    }

    /// The position of open invocation `id`.
    pub fn position(&self, id: &[u8]) -> Option<usize> {
        self.open.iter().position(|o| o.id.as_bytes() == id)
    }

    /// The checks of a POST for `id` (400, 403, 410); the position of its open invocation
    /// when it passes. An open invocation is always answerable, however many others were
    /// handed out since (with `--concurrency`, a slow one can fall out of the last N).
    pub fn check(&mut self, id: &[u8]) -> Result<usize, Refusal> {
        if let Some(at) = self.position(id) {
            return match self.open[at].holding {
                Holding::Working => Ok(at),
                Holding::Streaming(_) => Err(Refusal::WrongState(
                    "the response is being streamed: an error after its start goes in its trailers",
                )),
                Holding::Answered(_) => Err(Refusal::WrongState(
                    "this invocation already has its response or error",
                )),
            };
        }
        if let Some(at) = self.timed_out.iter().position(|t| t.as_bytes() == id) {
            self.timed_out.remove(at);
            return Err(Refusal::Gone);
        }
        if self.handed.iter().any(|h| h.as_bytes() == id) {
            return Err(Refusal::WrongState(
                "this invocation already has its response or error",
            ));
        }
        Err(Refusal::WrongId)
    }

    /// Remembers that `id` timed out.
    pub fn timed_out(&mut self, id: RequestId) {
        if self.timed_out.len() == TIMED_OUT_KEPT {
            self.timed_out.pop_front();
        }
        self.timed_out.push_back(id);
    }

    /// Forgets the ids of the generation that ended.
    pub fn forget_ids(&mut self) {
        self.handed.clear();
        self.timed_out.clear();
    }

    /// The earliest deadline of a queued or open invocation.
    pub fn next_deadline(&self) -> Option<Instant> {
        let queued = self.queue.iter().map(|q| q.deadline);
        let open = self.open.iter().map(|o| o.deadline);
        queued.chain(open).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Ids;
    use std::sync::mpsc::sync_channel;

    fn queued(ids: &mut Ids, now: Instant) -> Queued {
        let (reply, _) = sync_channel(1);
        Queued {
            invocation: Invocation {
                id: ids.request_id(),
                event: Arc::from(&b"{}"[..]),
                content_type: None,
                trace_id: None,
                client_context: None,
                tenant_id: None,
                keep_body: true,
            },
            reply,
            deadline: now + queue_limit(Duration::from_secs(3)),
        }
    }

    #[test]
    fn posts_are_checked_against_what_was_handed_out() {
        let mut ids = Ids::new();
        let now = Instant::now();
        let mut slots = Slots::default();
        let (a, b) = (queued(&mut ids, now), queued(&mut ids, now));
        let (a_id, b_id) = (a.invocation.id, b.invocation.id);
        slots.open(a, now, Duration::from_secs(3), 1);
        assert_eq!(slots.check(a_id.as_bytes()), Ok(0));
        slots.open[0].holding = Holding::Streaming(Pipe::new());
        assert!(matches!(
            slots.check(a_id.as_bytes()),
            Err(Refusal::WrongState(why)) if why.contains("streamed")
        ));
        slots.open.clear();
        assert!(matches!(
            slots.check(a_id.as_bytes()),
            Err(Refusal::WrongState(_))
        ));
        assert_eq!(slots.check(b"not-an-id"), Err(Refusal::WrongId));
        slots.timed_out(b_id);
        assert_eq!(slots.check(b_id.as_bytes()), Err(Refusal::Gone));
        assert_eq!(slots.check(b_id.as_bytes()), Err(Refusal::WrongId), "once");
    }

    #[test]
    fn deadlines_cover_queued_and_open_invocations() {
        let mut ids = Ids::new();
        let now = Instant::now();
        let mut slots = Slots::default();
        assert_eq!(slots.next_deadline(), None);
        slots.queue.push_back(queued(&mut ids, now));
        assert_eq!(
            slots.next_deadline(),
            Some(now + INIT_LIMIT + Duration::from_secs(3))
        );
        let first = slots.queue.pop_front().unwrap();
        slots.open(first, now, Duration::from_secs(1), 1);
        assert_eq!(slots.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(slots.in_flight(), 1);
        slots.open[0].holding = Holding::Answered(Status::Success { produced: 0 });
        assert_eq!(slots.in_flight(), 0, "answered: only waiting for /next");
    }
}

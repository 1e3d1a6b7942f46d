//! The sandbox's state machine: the runtime's phase, the invocations, the parked
//! `GET /next` requests and the extensions of one function instance. Pure: no blocking
//! system call and no waiting; every transition is given `now` (the wall clock is read only
//! for the epoch milliseconds Lambda's headers and events carry, and a `GET /next`'s
//! connection is probed without waiting). What must happen outside the lock (start or kill
//! processes, connect, write log lines, hand an outcome to its caller) is returned as
//! [`Effect`]s, in order.
//!
//! ```text
//!          Spawn       first GET /next             shutdown, with an extension
//! Stopped ───────▶ Init ─────────────────▶ Running ─────────────────────────────▶ ShuttingDown
//!    ▲              │ /runtime/init/error     │                                        │
//!    │              ▼                         │ the bootstrap ends                     │ grace over,
//!    │          InitFailed                    ▼                                        │ or ended and
//!    │                                     Exiting: its connections deliver what       │ done
//!    │◀────────────────────────────────────────┘ reached them before the end           │
//!    │                                                                                 ▼
//!    └───── Stopping: every process the runtime started is killed ◀── timeout, restart, stop
//! ```
//!
//! A runtime start is a *generation*: a process with a Runtime API listener of its own, so
//! nothing from a stopped runtime reaches its successor; a new runtime starts only once
//! every process of the previous one has been killed. The process is spawned outside the
//! lock: until it is, the runtime of [`Phase::Init`] has no pid (nothing can have ended:
//! the reaper waits for the pid to be recorded).
//!
//! The transitions: `phases` (start, stop, the runtime's end, shutdown), `api` (the
//! Runtime and Extensions APIs), `deadlines` (everything the timer ends); callers and the
//! bench here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::extensions::{ExtensionRefusal, Extensions, forbidden};
use super::outcome::{Outcome, Pipe, Stream, StreamEnd, StreamError};
use super::report::{Report, Status, start_line};
use super::slots::{Holding, INIT_LIMIT, Invocation, Queued, Refusal, Reply, Slots, queue_limit};
use crate::clock::unix_millis;
use crate::function::Function;
use crate::ids::{Ids, RequestId};
use crate::json::{error_document, error_type_of, push_string};
use crate::process::Exit;

/// Lambda's limit on a buffered response, as the Runtime API enforces it: 6 MiB + 100
/// bytes (AWS's emulator: "Exceeded maximum allowed payload size (6291556 bytes)",
/// `internal/lambda/rapi/rendering/render_error.go`).
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024 + 100;

/// Lambda's limit on a streamed response: 200 MiB (`config-rs-invoke-furls.html`).
pub const MAX_STREAM: u64 = 200 * 1024 * 1024;

/// How long the connections of a runtime that ended may take to deliver what it sent
/// before it ended (longer than a caller may stall a stream: see `crate::invoke`).
pub const EXIT_DRAIN: Duration = Duration::from_secs(3);

/// How invocations share the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    /// One at a time; more wait in a queue (Lambda would start more environments).
    OnDemand,
    /// Lambda Managed Instances (`--concurrency N`): up to N at once; one more is
    /// throttled; a timeout fails only its own invocation.
    Managed(usize),
}

impl Concurrency {
    /// N: how many invocations the runtime may hold at once.
    pub fn n(self) -> usize {
        match self {
            Concurrency::OnDemand => 1,
            Concurrency::Managed(n) => n.max(1),
        }
    }
}

/// Something to do once the lock is released.
#[derive(Debug)]
pub enum Effect {
    /// Start the runtime of this generation.
    Spawn(u64),
    /// Kill every process the runtime of this generation started (once it is spawned, if
    /// it is being spawned), then wake its listener.
    Kill {
        /// The generation.
        generation: u64,
        /// Its Runtime API listener, if it was opened yet.
        api: Option<SocketAddr>,
    },
    /// Wake a listener whose generation has ended.
    Wake(SocketAddr),
    /// SIGTERM to the runtime (a graceful shutdown).
    Terminate(i32),
    /// A line on stderr.
    Say(String),
    /// `END` and `REPORT` lines.
    Report(Report),
    /// An outcome for its caller.
    Deliver(Reply, Outcome),
    /// The end of a stream, for its caller.
    EndStream(Arc<Pipe>, StreamEnd),
}

/// The effects of a transition.
pub type Effects = Vec<Effect>;

/// A test of whether a `GET /next`'s connection has been closed by the runtime.
pub struct Probe(pub Box<dyn Fn() -> bool + Send>);

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

/// Everything the `/next` response carries.
#[derive(Debug)]
pub struct Delivery {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub id: RequestId,
    /// `Lambda-Runtime-Deadline-Ms`.
    pub deadline_ms: u64,
    /// The body.
    pub event: Arc<[u8]>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Aws-Tenant-Id`.
    pub tenant_id: Option<String>,
}

/// Where a `GET /next` stands.
#[derive(Debug)]
pub enum Next {
    /// An invocation to send.
    Event(Delivery),
    /// Nothing yet: wait for a change.
    Wait,
    /// 403: not allowed now, for this reason.
    Refused(String),
    /// From a runtime that has been replaced or has ended: close the connection.
    Stale,
}

/// Why a `GET /next` cannot wait for an event.
#[derive(Debug)]
pub enum NotParked {
    /// 403: not allowed now, for this reason.
    Refused(String),
    /// From a runtime that has been replaced or has ended: close the connection.
    Stale,
}

/// What a runtime posted for an invocation.
pub enum Posted<'a> {
    /// `/response` with this body and `Content-Type`.
    Response(&'a [u8], Option<&'a [u8]>),
    /// `/error` with this body and `Lambda-Runtime-Function-Error-Type`.
    Error(&'a [u8], Option<&'a [u8]>),
    /// A `/response` or `/error` body over [`MAX_RESPONSE`] (answered 413).
    TooLarge,
    /// A `/response` whose `Lambda-Runtime-Function-Response-Mode` is not `streaming`
    /// (answered 400).
    BadMode,
}

/// The answer to `POST /extension/register`.
pub enum Registered {
    /// 200: the extension's identifier and the response body.
    Ok {
        /// `Lambda-Extension-Identifier`.
        id: String,
        /// `{"functionName":…,"functionVersion":…,"handler":…}`.
        body: Vec<u8>,
    },
    /// Refused.
    Refused(ExtensionRefusal),
    /// From a replaced runtime: close the connection.
    Stale,
}

/// Where a `GET /extension/event/next` stands.
pub enum ExtensionNext {
    /// 200 with this event, and its id for `Lambda-Extension-Event-Identifier`.
    Event(Vec<u8>, String),
    /// Nothing yet: wait for a change.
    Wait,
    /// Refused.
    Refused(ExtensionRefusal),
    /// The generation ended: close the connection.
    Stale,
}

/// A runtime waiting for its first (or next) event, for the bench.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    /// From spawn to its first `GET /next`.
    pub init: Duration,
}

/// Where the bench's wait for an idle runtime stands.
pub enum Readiness {
    /// It waits in `GET /next` with nothing to do.
    Ready(Ready),
    /// It will not: why.
    Failed(String),
    /// Not yet.
    Wait,
}

#[derive(Debug)]
enum Phase {
    Stopped,
    /// Started, not yet asking for an event.
    Init,
    InitFailed,
    Running,
    /// The bootstrap ended; the connections of its generation deliver what reached them.
    Exiting(Exiting),
    /// SIGTERM was sent; the grace period runs.
    ShuttingDown(ShuttingDown),
    /// Every process of generation `.0` is being killed; nothing starts until it is done.
    Stopping(u64),
}

#[derive(Debug)]
struct Exiting {
    exit: Exit,
    /// It ended before its first `/next`.
    in_init: bool,
    /// The rest of its processes have been killed…
    killed: bool,
    /// …and its listener woken by a connection from this port, once killed…
    marker: Option<u16>,
    /// …which the listener has accepted: every connection made before it is registered.
    drained: bool,
    /// Ports of the connections accepted while exiting.
    seen: Vec<u16>,
    /// When the wait ends anyway.
    until: Instant,
}

#[derive(Debug)]
struct ShuttingDown {
    since: Instant,
    until: Instant,
    ended: Option<Exit>,
}

/// A failed start, kept for the first caller.
#[derive(Debug)]
enum InitFailure {
    /// The document the runtime posted to `/runtime/init/error`.
    Posted(Vec<u8>),
    /// The runtime ended before asking for an event.
    Exited(Exit),
    /// The bootstrap could not be started.
    Spawn(String),
    /// It did not ask for an event within the init limit.
    Timedout,
}

impl InitFailure {
    fn document(&self, id: &RequestId) -> Vec<u8> {
        match self {
            InitFailure::Posted(document) => document.clone(),
            InitFailure::Exited(exit) => exit_document(id, *exit),
            InitFailure::Spawn(why) => error_document(
                "Runtime.InvalidEntrypoint",
                &format!("RequestId: {} Error: {why}", id.as_str()),
            ),
            InitFailure::Timedout => timeout_document(id, "Init timed out", INIT_LIMIT),
        }
    }

    fn describe(&self) -> String {
        match self {
            InitFailure::Posted(document) => format!(
                "the runtime reported an init error: {}",
                String::from_utf8_lossy(document)
            ),
            InitFailure::Exited(exit) => format!(
                "the runtime ended before asking for an event ({})",
                exit.describe()
            ),
            InitFailure::Spawn(why) => why.clone(),
            InitFailure::Timedout => format!(
                "the runtime did not ask for an event within {} s of its start",
                INIT_LIMIT.as_secs()
            ),
        }
    }
}

fn exit_document(id: &RequestId, exit: Exit) -> Vec<u8> {
    let why = match exit {
        Exit::Code(0) => "Runtime exited without providing a reason".to_owned(),
        exit => format!("Runtime exited with error: {}", exit.describe()),
    };
    error_document(
        "Runtime.ExitError",
        &format!("RequestId: {} Error: {why}", id.as_str()),
    )
}

fn timeout_document(id: &RequestId, what: &str, after: Duration) -> Vec<u8> {
    error_document(
        "Sandbox.Timedout",
        &format!(
            "RequestId: {} Error: {what} after {:.2} seconds",
            id.as_str(),
            after.as_secs_f64()
        ),
    )
}

/// The running process of the current generation.
#[derive(Debug)]
struct Runtime {
    /// Its pid, once it is spawned.
    pid: Option<i32>,
    /// Just before it was spawned.
    started: Instant,
    /// Its Runtime API listener, once it is open.
    api: Option<SocketAddr>,
    /// From spawn to its first `/next`.
    init: Option<Duration>,
    /// Whether a `REPORT` line has carried `init` already.
    init_reported: bool,
}

/// A `GET /next` waiting for an event.
#[derive(Debug)]
struct Parked {
    ticket: u64,
    /// Its connection, to tell whether the runtime has gone from it (N > 1 only).
    probe: Option<Probe>,
}

impl Parked {
    fn closed(&self) -> bool {
        self.probe.as_ref().is_some_and(|probe| (probe.0)())
    }
}

/// The state of one sandbox (see the module docs).
#[derive(Debug)]
pub struct State {
    function: Arc<Function>,
    concurrency: Concurrency,
    /// Whether to write Lambda's log lines and the emulator's notes.
    log: bool,
    generation: u64,
    phase: Phase,
    runtime: Option<Runtime>,
    slots: Slots,
    parked: Vec<Parked>,
    tickets: u64,
    ids: Ids,
    extensions: Extensions,
    init_failure: Option<InitFailure>,
    /// Open connections of the current generation's Runtime API.
    connections: usize,
    /// Whether every process the runtime started has been reaped.
    tree_gone: bool,
    /// The emulator is stopping: no runtime starts any more.
    closed: bool,
}

/// The caller of `Sandbox::submit` gets 429: N invocations are in flight already.
#[derive(Debug, PartialEq, Eq)]
pub struct Throttled;

impl State {
    /// A sandbox for `function`, nothing running.
    pub fn new(function: Arc<Function>, concurrency: Concurrency, log: bool) -> State {
        State {
            function,
            concurrency,
            log,
            generation: 0,
            phase: Phase::Stopped,
            runtime: None,
            slots: Slots::default(),
            parked: Vec::new(),
            tickets: 0,
            ids: Ids::new(),
            extensions: Extensions::default(),
            init_failure: None,
            connections: 0,
            tree_gone: true,
            closed: false,
        }
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether no runtime runs or is being started or stopped.
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    /// A fresh request id.
    pub fn new_id(&mut self) -> RequestId {
        self.ids.request_id()
    }

    fn say(&self, fx: &mut Effects, line: String) {
        if self.log {
            fx.push(Effect::Say(line));
        }
    }

    fn report(&mut self, fx: &mut Effects, id: RequestId, duration: Duration, status: Status) {
        if !self.log {
            return;
        }
        let (pid, init) = match &mut self.runtime {
            Some(runtime) => {
                let init = if runtime.init_reported {
                    None
                } else {
                    runtime.init_reported = runtime.init.is_some();
                    runtime.init
                };
                (runtime.pid, init)
            }
            None => (None, None),
        };
        fx.push(Effect::Report(Report {
            id,
            duration,
            status,
            memory_mb: self.function.memory_mb,
            pid,
            init,
        }));
    }

    // -----------------------------------------------------------------------------------
    // Callers

    /// Queues `invocation`, whose outcome goes to `reply`; throttled (429) under Managed
    /// Instances when N invocations are in flight already.
    pub fn submit(
        &mut self,
        invocation: Invocation,
        reply: Reply,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<(), Throttled> {
        if let Concurrency::Managed(n) = self.concurrency {
            if self.slots.in_flight() >= n {
                return Err(Throttled);
            }
        }
        if self.closed {
            let document = error_document(
                "Runtime.ExitError",
                &format!(
                    "RequestId: {} Error: the emulator is stopping",
                    invocation.id.as_str()
                ),
            );
            fx.push(Effect::Deliver(reply, Outcome::Error { document }));
            return Ok(());
        }
        let deadline = now + queue_limit(self.function.timeout);
        self.slots.queue.push_back(Queued {
            invocation,
            reply,
            deadline,
        });
        self.pump(now, fx);
        Ok(())
    }

    /// Starts a runtime when invocations wait and none runs; hands a stored failed start to
    /// the first of them.
    fn pump(&mut self, now: Instant, fx: &mut Effects) {
        while !self.slots.queue.is_empty() {
            if let Some(failure) = self.init_failure.take() {
                if let Some(first) = self.slots.queue.pop_front() {
                    let document = failure.document(&first.invocation.id);
                    fx.push(Effect::Deliver(first.reply, Outcome::Error { document }));
                }
                continue;
            }
            match self.phase {
                Phase::Stopped => self.start(now, fx),
                // It reported an init error and should be gone: make sure, and start again.
                Phase::InitFailed => self.stop(now, fx),
                _ => {}
            }
            break;
        }
    }

    /// Gives a failed start to the caller waiting for it, or keeps it for the first one.
    fn fail_init(&mut self, failure: InitFailure, fx: &mut Effects) {
        match self.slots.queue.pop_front() {
            Some(first) => {
                let document = failure.document(&first.invocation.id);
                fx.push(Effect::Deliver(first.reply, Outcome::Error { document }));
            }
            None => self.init_failure = Some(failure),
        }
    }

    // -----------------------------------------------------------------------------------
    // The bench

    /// Whether the runtime waits in `GET /next` with nothing to do.
    pub fn readiness(&self) -> Readiness {
        match (&self.phase, &self.runtime) {
            (Phase::Running, Some(runtime))
                if !self.parked.is_empty()
                    && self.slots.queue.is_empty()
                    && self.slots.open.is_empty() =>
            {
                Readiness::Ready(Ready {
                    init: runtime.init.unwrap_or_default(),
                })
            }
            (Phase::Stopped | Phase::InitFailed, _) => Readiness::Failed(
                self.init_failure
                    .as_ref()
                    .map_or("the runtime stopped".into(), InitFailure::describe),
            ),
            _ => Readiness::Wait,
        }
    }
}

mod api;
mod deadlines;
mod phases;
#[cfg(test)]
mod tests;

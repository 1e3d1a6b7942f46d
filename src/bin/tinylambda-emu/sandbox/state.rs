//! The sandbox's state machine: the runtime's phase, the invocations, the parked
//! `GET /next` requests and the extensions of one function instance. Pure: no system
//! calls, no clock of its own (every transition is given `now`), no waiting. What must
//! happen outside the lock (start or kill processes, connect, write log lines, hand an
//! outcome to its caller) is returned as [`Effect`]s, in order.
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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::extensions::{ExtensionRefusal, Extensions, forbidden};
use super::outcome::{Outcome, Pipe, Stream, StreamEnd, StreamError};
use super::report::{Report, Status, start_line};
use super::slots::{Holding, INIT_LIMIT, Invocation, Queued, Refusal, Reply, Slots, queue_limit};
use crate::function::Function;
use crate::ids::{Ids, RequestId, unix_millis};
use crate::json::{error_document, push_string};
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
    // Starting and stopping

    /// Starts a runtime at `now` if none runs (so that its init overlaps the wait for the
    /// first caller). A bootstrap that cannot be started is reported by
    /// [`State::take_spawn_failure`].
    pub fn start(&mut self, now: Instant, fx: &mut Effects) {
        if matches!(self.phase, Phase::Stopped) && !self.closed {
            self.generation += 1;
            self.phase = Phase::Init;
            self.runtime = Some(Runtime {
                pid: None,
                started: now,
                api: None,
                init: None,
                init_reported: false,
            });
            self.tree_gone = false;
            fx.push(Effect::Spawn(self.generation));
        }
    }

    /// Why the last start failed, if it failed to spawn (taken: the first caller will not
    /// get it).
    pub fn take_spawn_failure(&mut self) -> Option<String> {
        match self.init_failure.take() {
            Some(InitFailure::Spawn(why)) => Some(why),
            other => {
                self.init_failure = other;
                None
            }
        }
    }

    /// The Runtime API of generation `generation` listens on `api`; false when the
    /// generation has been stopped meanwhile (its listener is then woken at once).
    pub fn listening(&mut self, generation: u64, api: SocketAddr) -> bool {
        match &mut self.runtime {
            Some(runtime) if generation == self.generation => {
                runtime.api = Some(api);
                true
            }
            _ => false,
        }
    }

    /// The runtime of generation `generation` was spawned as `pid` at `started` (called
    /// before the reaper can reap it); false when the generation has been stopped
    /// meanwhile (the pending [`Effect::Kill`] ends it).
    pub fn spawned(&mut self, generation: u64, pid: i32, started: Instant) -> bool {
        match &mut self.runtime {
            Some(runtime) if generation == self.generation => {
                runtime.pid = Some(pid);
                runtime.started = started;
                true
            }
            _ => false,
        }
    }

    /// The runtime of generation `generation` could not be started, for `why`; its
    /// listener, if it was opened, is `api`.
    pub fn spawn_failed(
        &mut self,
        generation: u64,
        why: String,
        api: Option<SocketAddr>,
        now: Instant,
        fx: &mut Effects,
    ) {
        fx.extend(api.map(Effect::Wake));
        if generation == self.generation && matches!(self.phase, Phase::Init) {
            self.runtime = None;
            self.end_generation();
            self.phase = Phase::Stopped;
            self.fail_init(InitFailure::Spawn(why), fx);
            self.pump(now, fx);
        }
    }

    /// Ends the current generation: fails what it holds, kills every process it started
    /// (the next runtime starts once that is done).
    fn stop(&mut self, now: Instant, fx: &mut Effects) {
        let ended = self.generation;
        self.fail_open(now, fx, |id| {
            error_document(
                "Runtime.ExitError",
                &format!("RequestId: {} Error: the runtime was stopped", id.as_str()),
            )
        });
        self.end_generation();
        match self.runtime.take() {
            Some(runtime) => {
                self.phase = Phase::Stopping(ended);
                fx.push(Effect::Kill {
                    generation: ended,
                    api: runtime.api,
                });
            }
            None => self.phase = Phase::Stopped,
        }
    }

    /// Forgets what belonged to the generation that ends, and moves to the next one.
    fn end_generation(&mut self) {
        self.generation += 1;
        self.parked.clear();
        self.slots.forget_ids();
        self.extensions.clear();
        self.connections = 0;
    }

    /// Fails every open invocation (the runtime is gone): its caller gets `document`, a
    /// stream its error; an answered one is over.
    fn fail_open(
        &mut self,
        now: Instant,
        fx: &mut Effects,
        document: impl Fn(&RequestId) -> Vec<u8>,
    ) {
        for open in std::mem::take(&mut self.slots.open) {
            let duration = now.saturating_duration_since(open.sent_at);
            match open.holding {
                Holding::Working => {
                    self.report(fx, open.id, duration, Status::Error);
                    if let Some(reply) = open.reply {
                        fx.push(Effect::Deliver(
                            reply,
                            Outcome::Error {
                                document: document(&open.id),
                            },
                        ));
                    }
                }
                Holding::Streaming(pipe) => {
                    self.report(fx, open.id, duration, Status::Error);
                    let end = StreamEnd {
                        error: Some(StreamError::of_document(&error_document(
                            "Runtime.TruncatedResponse",
                            "the runtime ended before its streamed response did",
                        ))),
                        latency: duration,
                    };
                    fx.push(Effect::EndStream(pipe, end));
                }
                Holding::Answered(status) => self.report(fx, open.id, duration, status),
            }
        }
    }

    /// Every process of generation `generation` has been killed; its listener was woken by
    /// a connection from port `marker`.
    pub fn killed(&mut self, generation: u64, marker: Option<u16>, now: Instant, fx: &mut Effects) {
        match &mut self.phase {
            Phase::Stopping(of) if *of == generation => {
                self.phase = Phase::Stopped;
                self.pump(now, fx);
            }
            Phase::Exiting(exiting) if generation == self.generation => {
                exiting.killed = true;
                exiting.marker = marker;
                exiting.drained = marker.is_none_or(|m| exiting.seen.contains(&m));
                self.finish_exit_if_drained(now, fx);
            }
            _ => {}
        }
    }

    /// The reaper reaped `pid`, which ended so.
    pub fn exited(&mut self, pid: i32, exit: Exit, now: Instant, fx: &mut Effects) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        if runtime.pid != Some(pid) {
            return; // a process the runtime started
        }
        let api = runtime.api;
        if let Phase::ShuttingDown(shutting) = &mut self.phase {
            shutting.ended = Some(exit);
            self.finish_shutdown_if_done(now, fx);
            return;
        }
        let in_init = match self.phase {
            Phase::Init => true,
            Phase::InitFailed | Phase::Running => false,
            _ => return,
        };
        self.phase = Phase::Exiting(Exiting {
            exit,
            in_init,
            killed: false,
            marker: None,
            drained: false,
            seen: Vec::new(),
            until: now + EXIT_DRAIN,
        });
        // What it left running goes; then its connections can only end.
        fx.push(Effect::Kill {
            generation: self.generation,
            api,
        });
    }

    /// Ends an exit once every connection of the runtime has delivered what it had.
    fn finish_exit_if_drained(&mut self, now: Instant, fx: &mut Effects) {
        if let Phase::Exiting(exiting) = &self.phase {
            if exiting.killed && exiting.drained && self.connections == 0 {
                self.finish_exit(now, fx);
            }
        }
    }

    fn finish_exit(&mut self, now: Instant, fx: &mut Effects) {
        let Phase::Exiting(exiting) = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return;
        };
        let exit = exiting.exit;
        self.fail_open(now, fx, |id| exit_document(id, exit));
        if exiting.in_init {
            self.fail_init(InitFailure::Exited(exit), fx);
        }
        self.say(
            fx,
            format!(
                "tinylambda-emu: the runtime ended ({}); it starts again at the next invocation",
                exit.describe()
            ),
        );
        self.end_generation();
        if let Some(api) = self.runtime.take().and_then(|r| r.api) {
            fx.push(Effect::Wake(api));
        }
        self.pump(now, fx);
    }

    /// The emulator has no child left: every process the runtime started is gone.
    pub fn no_children(&mut self, now: Instant, fx: &mut Effects) {
        self.tree_gone = true;
        self.finish_shutdown_if_done(now, fx);
    }

    /// Lambda's Shutdown phase ([`crate::sandbox::Sandbox::shutdown`]): with no extension
    /// the runtime is killed at once; with one, it gets SIGTERM, `SHUTDOWN` subscribers get
    /// their event, and everything is killed when the runtime has ended and every
    /// subscriber has asked for its next event (or its processes are all gone), or when the
    /// grace period is over. Nothing starts afterwards.
    pub fn shutdown(&mut self, now: Instant, fx: &mut Effects) {
        self.closed = true;
        for queued in std::mem::take(&mut self.slots.queue) {
            let document = error_document(
                "Runtime.ExitError",
                &format!(
                    "RequestId: {} Error: the emulator is stopping",
                    queued.invocation.id.as_str()
                ),
            );
            fx.push(Effect::Deliver(queued.reply, Outcome::Error { document }));
        }
        let pid = self.runtime.as_ref().and_then(|r| r.pid);
        match (&self.phase, pid) {
            (Phase::Init | Phase::Running, Some(pid)) if !self.extensions.is_empty() => {
                let budget = self.extensions.shutdown_budget();
                let event = format!(
                    r#"{{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":{}}}"#,
                    unix_millis() + budget.as_millis() as u64
                );
                self.extensions.shutdown(event.as_bytes());
                self.phase = Phase::ShuttingDown(ShuttingDown {
                    since: now,
                    until: now + budget,
                    ended: None,
                });
                fx.push(Effect::Terminate(pid));
                fx.push(Effect::Say(format!(
                    "tinylambda-emu: shutting down: SIGTERM to the runtime (an extension is registered), SIGKILL in {} ms",
                    budget.as_millis()
                )));
            }
            (Phase::Exiting(_) | Phase::ShuttingDown(_) | Phase::Stopping(_), _) => {}
            _ => self.stop(now, fx),
        }
    }

    fn finish_shutdown_if_done(&mut self, now: Instant, fx: &mut Effects) {
        let Phase::ShuttingDown(shutting) = &self.phase else {
            return;
        };
        let Some(exit) = shutting.ended else {
            return;
        };
        if self.extensions.shutdown_done() || self.tree_gone {
            fx.push(Effect::Say(format!(
                "tinylambda-emu: the runtime ended ({}) {} ms after SIGTERM",
                exit.describe(),
                now.saturating_duration_since(shutting.since).as_millis()
            )));
            self.stop(now, fx);
        }
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
    // The Runtime API

    /// A `GET /next` from `generation` arrives at `now`; `probe` tells whether its
    /// connection has closed (needed when N > 1, to tell a runtime that reconnected from
    /// one that asks for too much). Returns its ticket for [`State::poll_next`].
    pub fn park(
        &mut self,
        generation: u64,
        probe: Option<Probe>,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<u64, NotParked> {
        if generation != self.generation {
            return Err(NotParked::Stale);
        }
        match self.phase {
            Phase::Init => {
                self.phase = Phase::Running;
                if let Some(runtime) = self.runtime.as_mut() {
                    runtime.init = Some(now.saturating_duration_since(runtime.started));
                }
            }
            Phase::Running | Phase::ShuttingDown(_) => {}
            Phase::InitFailed => {
                return Err(NotParked::Refused(
                    "GET /next after /runtime/init/error: the runtime must exit".into(),
                ));
            }
            _ => return Err(NotParked::Stale),
        }
        self.admit(now, fx).map_err(NotParked::Refused)?;
        self.tickets += 1;
        self.parked.push(Parked {
            ticket: self.tickets,
            probe,
        });
        Ok(self.tickets)
    }

    /// Whether one more `GET /next` may wait now: one at a time, a `/next` ends the
    /// invocation the runtime answered; under Managed Instances, up to N `/next` requests
    /// and open invocations together.
    fn admit(&mut self, now: Instant, fx: &mut Effects) -> Result<(), String> {
        let n = self.concurrency.n();
        if self.concurrency == Concurrency::OnDemand {
            if self
                .slots
                .open
                .iter()
                .any(|o| !matches!(o.holding, Holding::Answered(_)))
            {
                return Err(
                    "GET /next while an invocation is open: post its /response or /error first"
                        .into(),
                );
            }
            for open in std::mem::take(&mut self.slots.open) {
                if let Holding::Answered(status) = open.holding {
                    let duration = now.saturating_duration_since(open.sent_at);
                    self.report(fx, open.id, duration, status);
                }
            }
            // The newest /next wins: a runtime that lost its connection asks again.
            self.parked.clear();
            return Ok(());
        }
        if self.slots.open.len() + self.parked.len() >= n {
            self.parked.retain(|p| !p.closed());
        }
        if self.slots.open.len() + self.parked.len() >= n {
            return Err(format!(
                "GET /next with {} invocations open and {} GET /next waiting: at most {n} at once (AWS_LAMBDA_MAX_CONCURRENCY)",
                self.slots.open.len(),
                self.parked.len(),
            ));
        }
        Ok(())
    }

    /// Where the `GET /next` with `ticket` from `generation` stands at `now`.
    pub fn poll_next(
        &mut self,
        generation: u64,
        ticket: u64,
        now: Instant,
        fx: &mut Effects,
    ) -> Next {
        if generation != self.generation {
            return Next::Stale;
        }
        match self.phase {
            Phase::Running => {}
            Phase::ShuttingDown(_) => return Next::Wait,
            _ => return Next::Stale,
        }
        let Some(at) = self.parked.iter().position(|p| p.ticket == ticket) else {
            return Next::Stale; // replaced by a newer /next, or forgotten
        };
        if self.slots.queue.is_empty() {
            return Next::Wait;
        }
        let parked = self.parked.remove(at);
        if parked.closed() {
            return Next::Stale; // the runtime has gone from this connection
        }
        match self.slots.queue.pop_front() {
            Some(queued) => Next::Event(self.deliver(queued, now, fx)),
            None => Next::Wait,
        }
    }

    fn deliver(&mut self, queued: Queued, now: Instant, fx: &mut Effects) -> Delivery {
        let timeout = self.function.timeout;
        let invocation = &queued.invocation;
        self.say(fx, start_line(&invocation.id, &self.function.version));
        let trace_id = match &invocation.trace_id {
            Some(trace_id) => trace_id.clone(),
            None => self.ids.trace_id(),
        };
        let deadline_ms = unix_millis() + timeout.as_millis() as u64;
        if self.extensions.wants_invoke() {
            let mut event = br#"{"eventType":"INVOKE","deadlineMs":"#.to_vec();
            event.extend_from_slice(deadline_ms.to_string().as_bytes());
            event.extend_from_slice(br#","requestId":"#);
            push_string(&mut event, invocation.id.as_str());
            event.extend_from_slice(br#","invokedFunctionArn":"#);
            push_string(&mut event, &self.function.arn);
            event.extend_from_slice(br#","tracing":{"type":"X-Amzn-Trace-Id","value":"#);
            push_string(&mut event, &trace_id);
            event.extend_from_slice(b"}}");
            self.extensions.invoke(&event);
        }
        let delivery = Delivery {
            id: invocation.id,
            deadline_ms,
            event: invocation.event.clone(),
            content_type: invocation.content_type.clone(),
            trace_id,
            client_context: invocation.client_context.clone(),
            tenant_id: invocation.tenant_id.clone(),
        };
        self.slots.open(queued, now, timeout, self.concurrency.n());
        delivery
    }

    /// Checks a POST for `id` from `generation` before its body is read.
    pub fn check_post(&mut self, generation: u64, id: &[u8]) -> Result<(), Refusal> {
        self.check(generation, id).map(drop)
    }

    fn check(&mut self, generation: u64, id: &[u8]) -> Result<usize, Refusal> {
        if generation != self.generation {
            return Err(Refusal::Stale);
        }
        self.slots.check(id)
    }

    /// Records what the runtime posted for `id` from `generation`; `done` is when its body
    /// was read.
    pub fn complete(
        &mut self,
        generation: u64,
        id: &[u8],
        posted: Posted<'_>,
        done: Instant,
        fx: &mut Effects,
    ) -> Result<(), Refusal> {
        let at = self.check(generation, id)?;
        let open = &mut self.slots.open[at];
        let latency = done.saturating_duration_since(open.sent_at);
        let (outcome, status) = match posted {
            Posted::Response(body, content_type) => (
                Outcome::Response {
                    body: if open.keep_body {
                        body.to_vec()
                    } else {
                        Vec::new()
                    },
                    content_type: content_type.map(|c| String::from_utf8_lossy(c).into_owned()),
                    latency,
                },
                Status::Success,
            ),
            Posted::Error(body, error_type) => {
                let document = if body.is_empty() {
                    let error_type =
                        error_type.map_or("Runtime.Unknown".into(), String::from_utf8_lossy);
                    error_document(&error_type, "")
                } else {
                    body.to_vec()
                };
                (Outcome::Error { document }, Status::Error)
            }
            Posted::TooLarge => (
                Outcome::error(
                    "Function.ResponseSizeTooLarge",
                    &format!(
                        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
                    ),
                ),
                Status::Error,
            ),
            Posted::BadMode => (
                Outcome::error(
                    "Runtime.InvalidResponseModeHeader",
                    "Lambda-Runtime-Function-Response-Mode must be streaming when it is set",
                ),
                Status::Error,
            ),
        };
        if let Some(reply) = open.reply.take() {
            fx.push(Effect::Deliver(reply, outcome));
        }
        self.answered(at, status, done, fx);
        Ok(())
    }

    /// Open invocation `at` has its answer: one at a time it lasts until the runtime's
    /// next `/next`; under Managed Instances it is over.
    fn answered(&mut self, at: usize, status: Status, now: Instant, fx: &mut Effects) {
        match self.concurrency {
            Concurrency::OnDemand => self.slots.open[at].holding = Holding::Answered(status),
            Concurrency::Managed(_) => {
                let open = self.slots.open.remove(at);
                let duration = now.saturating_duration_since(open.sent_at);
                self.report(fx, open.id, duration, status);
            }
        }
    }

    /// A `/response` for `id` from `generation` in streaming mode has begun: its caller
    /// gets the [`Stream`]; returns the pipe to push its pieces into.
    pub fn start_stream(
        &mut self,
        generation: u64,
        id: &[u8],
        content_type: Option<String>,
        fx: &mut Effects,
    ) -> Result<Arc<Pipe>, Refusal> {
        let at = self.check(generation, id)?;
        let pipe = Pipe::new();
        let open = &mut self.slots.open[at];
        open.holding = Holding::Streaming(pipe.clone());
        if let Some(reply) = open.reply.take() {
            let stream = Stream::new(content_type, pipe.clone());
            fx.push(Effect::Deliver(reply, Outcome::Stream(stream)));
        }
        Ok(pipe)
    }

    /// The streamed response for `id` from `generation` has ended (with `error`, if any) at
    /// `done`: its caller gets the end. Returns its latency; refused when the invocation was
    /// already ended by the emulator (a timeout).
    pub fn finish_stream(
        &mut self,
        generation: u64,
        id: &[u8],
        error: Option<StreamError>,
        done: Instant,
        fx: &mut Effects,
    ) -> Result<Duration, Refusal> {
        if generation != self.generation {
            return Err(Refusal::Stale);
        }
        let Some(at) = self.slots.position(id) else {
            return self.slots.check(id).map(|_| Duration::ZERO);
        };
        let open = &mut self.slots.open[at];
        let Holding::Streaming(pipe) = &open.holding else {
            return Err(Refusal::WrongState("this invocation is not streaming"));
        };
        let latency = done.saturating_duration_since(open.sent_at);
        let status = if error.is_some() {
            Status::Error
        } else {
            Status::Success
        };
        fx.push(Effect::EndStream(
            pipe.clone(),
            StreamEnd { error, latency },
        ));
        self.answered(at, status, done, fx);
        Ok(latency)
    }

    /// `POST /runtime/init/error` from `generation`, with the document to give the first
    /// caller.
    pub fn init_error(
        &mut self,
        generation: u64,
        document: Vec<u8>,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<(), Refusal> {
        if generation != self.generation {
            return Err(Refusal::Stale);
        }
        if !matches!(self.phase, Phase::Init) {
            return Err(Refusal::WrongState(
                "/runtime/init/error is only allowed before the first GET /next",
            ));
        }
        self.phase = Phase::InitFailed;
        self.say(
            fx,
            format!(
                "tinylambda-emu: the runtime reported an init error: {}",
                String::from_utf8_lossy(&document)
            ),
        );
        self.fail_init(InitFailure::Posted(document), fx);
        self.pump(now, fx);
        Ok(())
    }

    /// A connection to generation `generation`'s Runtime API from port `peer` was
    /// accepted; false when it comes too late (the generation ended).
    pub fn connection_opened(
        &mut self,
        generation: u64,
        peer: u16,
        now: Instant,
        fx: &mut Effects,
    ) -> bool {
        if generation != self.generation {
            return false;
        }
        self.connections += 1;
        if let Phase::Exiting(exiting) = &mut self.phase {
            exiting.seen.push(peer);
            if exiting.marker == Some(peer) {
                exiting.drained = true;
            }
            self.finish_exit_if_drained(now, fx);
        }
        true
    }

    /// A connection of generation `generation` has closed.
    pub fn connection_closed(&mut self, generation: u64, now: Instant, fx: &mut Effects) {
        if generation == self.generation {
            self.connections = self.connections.saturating_sub(1);
            self.finish_exit_if_drained(now, fx);
        }
    }

    // -----------------------------------------------------------------------------------
    // The Extensions API

    /// `POST /2020-01-01/extension/register` from `generation`, with the
    /// `Lambda-Extension-Name` header `name` and the request body.
    pub fn register(
        &mut self,
        generation: u64,
        name: Option<&[u8]>,
        body: &[u8],
        fx: &mut Effects,
    ) -> Registered {
        if generation != self.generation {
            return Registered::Stale;
        }
        let id = self.ids.request_id().as_str().to_owned();
        let open = matches!(self.phase, Phase::Init);
        match self.extensions.register(name, body, open, id.clone()) {
            Ok(events) => {
                let name = name.map(String::from_utf8_lossy).unwrap_or_default();
                self.say(
                    fx,
                    format!("tinylambda-emu: extension {name} registered for {events:?}"),
                );
                let mut body = br#"{"functionName":"#.to_vec();
                push_string(&mut body, &self.function.name);
                body.extend_from_slice(br#","functionVersion":"#);
                push_string(&mut body, &self.function.version);
                body.extend_from_slice(br#","handler":"#);
                push_string(&mut body, &self.function.handler);
                body.push(b'}');
                Registered::Ok { id, body }
            }
            Err(refusal) => Registered::Refused(refusal),
        }
    }

    /// Where a `GET /2020-01-01/extension/event/next` from `generation` for the extension
    /// `id` stands; `asking` on its first look.
    pub fn extension_next(
        &mut self,
        generation: u64,
        id: Option<&[u8]>,
        asking: bool,
        now: Instant,
        fx: &mut Effects,
    ) -> ExtensionNext {
        let Some(id) = id else {
            return ExtensionNext::Refused(forbidden(
                "Extension.MissingExtensionIdentifier",
                "Missing Lambda-Extension-Identifier header",
            ));
        };
        if generation != self.generation {
            return ExtensionNext::Stale;
        }
        match self.extensions.next_event(id, asking) {
            Ok(Some(event)) => {
                let event_id = self.ids.request_id().as_str().to_owned();
                ExtensionNext::Event(event, event_id)
            }
            Ok(None) => {
                if asking {
                    self.finish_shutdown_if_done(now, fx);
                }
                ExtensionNext::Wait
            }
            Err(refusal) => ExtensionNext::Refused(refusal),
        }
    }

    /// Whether an extension is registered (the runtime then gets SIGTERM at shutdown).
    pub fn has_extensions(&self) -> bool {
        !self.extensions.is_empty()
    }

    // -----------------------------------------------------------------------------------
    // Deadlines

    /// The earliest deadline: the init limit, an invocation's, the end of a shutdown's
    /// grace period or of an exit's drain.
    pub fn next_deadline(&self) -> Option<Instant> {
        let phase = self.next_phase_deadline();
        phase.into_iter().chain(self.slots.next_deadline()).min()
    }

    /// The deadline of the phase itself, if it has one.
    fn next_phase_deadline(&self) -> Option<Instant> {
        match (&self.phase, &self.runtime) {
            (Phase::Init, Some(runtime)) => Some(runtime.started + INIT_LIMIT),
            (Phase::Exiting(exiting), _) if exiting.killed => Some(exiting.until),
            (Phase::ShuttingDown(shutting), _) => Some(shutting.until),
            _ => None,
        }
    }

    /// Ends whatever is due at `now`.
    pub fn expire(&mut self, now: Instant, fx: &mut Effects) {
        let phase_due = self.next_phase_deadline().is_some_and(|at| at <= now);
        if phase_due {
            match &self.phase {
                Phase::Init => self.init_timed_out(now, fx),
                Phase::Exiting(_) => self.finish_exit(now, fx),
                Phase::ShuttingDown(shutting) => {
                    let budget = shutting.until.saturating_duration_since(shutting.since);
                    fx.push(Effect::Say(format!(
                        "tinylambda-emu: the runtime was still running {} ms after SIGTERM: killed",
                        budget.as_millis()
                    )));
                    self.stop(now, fx);
                }
                _ => {}
            }
        }
        self.expire_open(now, fx);
        self.expire_queued(now, fx);
    }

    fn init_timed_out(&mut self, now: Instant, fx: &mut Effects) {
        if let Some(first) = self.slots.queue.pop_front() {
            let id = first.invocation.id;
            self.say(
                fx,
                format!(
                    "tinylambda-emu: {} Init timed out after {:.2} seconds: the runtime is killed and starts again at the next invocation",
                    id.as_str(),
                    INIT_LIMIT.as_secs_f64()
                ),
            );
            self.report(fx, id, INIT_LIMIT, Status::Timeout);
            let document = InitFailure::Timedout.document(&id);
            fx.push(Effect::Deliver(first.reply, Outcome::Error { document }));
        } else {
            self.init_failure = Some(InitFailure::Timedout);
        }
        self.stop(now, fx);
    }

    fn expire_open(&mut self, now: Instant, fx: &mut Effects) {
        let timeout = self.function.timeout;
        while let Some(at) = self.slots.open.iter().position(|o| o.deadline <= now) {
            let open = self.slots.open.remove(at);
            let id = open.id;
            let document = timeout_document(&id, "Task timed out", timeout);
            let on_demand = self.concurrency == Concurrency::OnDemand;
            let what = if on_demand {
                "the runtime is killed and starts again at the next invocation"
            } else {
                "the runtime keeps running (Lambda Managed Instances)"
            };
            self.say(
                fx,
                format!(
                    "tinylambda-emu: {} Task timed out after {:.2} seconds: {what}",
                    id.as_str(),
                    timeout.as_secs_f64()
                ),
            );
            self.report(fx, id, timeout, Status::Timeout);
            match open.holding {
                Holding::Working => {
                    if let Some(reply) = open.reply {
                        fx.push(Effect::Deliver(reply, Outcome::Error { document }));
                    }
                }
                Holding::Streaming(pipe) => {
                    let end = StreamEnd {
                        error: Some(StreamError::of_document(&document)),
                        latency: timeout,
                    };
                    fx.push(Effect::EndStream(pipe, end));
                }
                // Its caller has the answer; the runtime never asked for more.
                Holding::Answered(_) => {}
            }
            if on_demand {
                self.stop(now, fx);
                return;
            }
            self.slots.timed_out(id);
        }
    }

    fn expire_queued(&mut self, now: Instant, fx: &mut Effects) {
        let limit = queue_limit(self.function.timeout);
        while let Some(at) = self.slots.queue.iter().position(|q| q.deadline <= now) {
            let Some(queued) = self.slots.queue.remove(at) else {
                break;
            };
            let id = queued.invocation.id;
            self.say(
                fx,
                format!(
                    "tinylambda-emu: {} waited {:.2} seconds and the runtime never took it: Sandbox.Timedout",
                    id.as_str(),
                    limit.as_secs_f64()
                ),
            );
            let document =
                timeout_document(&id, "Invocation timed out waiting for the runtime", limit);
            fx.push(Effect::Deliver(queued.reply, Outcome::Error { document }));
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

#[cfg(test)]
mod tests;

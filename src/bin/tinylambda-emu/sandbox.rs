//! The sandbox: one instance of the function, the state machine of its runtime, the queue
//! of invocations waiting for it, and its extensions. Callers ([`Sandbox::submit`]) and the
//! Runtime and Extensions APIs ([`crate::server`]) meet here, under one mutex, and wake each
//! other with one condvar.
//!
//! A runtime start is a *generation*: a process (in its own process group) with a Runtime API
//! listener of its own, so nothing from a killed runtime can reach its successor.
//!
//! ```text
//!            spawn              first GET /next              shutdown, with an extension
//! Stopped ─────────▶ Init ────────────────────────▶ Running ─────────────────────────────▶ ShuttingDown
//!    ▲                │ POST /runtime/init/error       │                                      │
//!    │                ▼                                │ SIGTERM, then SIGKILL after 500 ms    │
//!    └─────────── InitFailed          exit, timeout, kill, shutdown: any state ──▶ Stopped ◀───┘
//!
//! Running holds up to N slots (N = --concurrency, default 1), each one of:
//!
//!     GET /next waiting ──── event sent ───▶ invocation open ──── /response, /error ───▶ free
//!                                                 │  /response in streaming mode            ▲
//!                                                 ▼                                          │
//!                                            streaming ──── last chunk (and trailers) ──────┘
//! ```
//!
//! Rules, as Lambda's Runtime API applies them:
//!
//! - With N = 1, one invocation at a time: `GET /next` while an invocation is open gets 403
//!   `InvalidStateTransition`; a second `/next` while one waits replaces it (the runtime
//!   reconnected). With N > 1 (Lambda Managed Instances, where the runtime's environment
//!   has `AWS_LAMBDA_MAX_CONCURRENCY=N`), up to N `/next` requests and open invocations
//!   together; one more gets 403 `InvalidStateTransition`, after waiting `/next` requests
//!   whose connections have closed are forgotten (a runtime that reconnected is not
//!   refused). Lambda documents only that it accepts up to N; the 403 is this emulator's
//!   choice, the status Lambda gives every other `/next` at the wrong moment.
//! - `/response` and `/error` for an open invocation are accepted; for an id that is not
//!   open and not among the last N handed out, 400 `InvalidRequestID`; for one that
//!   already has its result, 403. `/runtime/init/error`
//!   is only allowed before the first `/next`.
//! - A `/response` with `Lambda-Runtime-Function-Response-Mode: streaming` is relayed to
//!   its caller piece by piece as it arrives ([`Outcome::Stream`]); its end, with the error
//!   trailers if the runtime sent them, ends the invocation. Streams are not held to the
//!   6 MiB limit of buffered responses but to [`MAX_STREAM`].
//! - The first caller gets a failed start (init error, exit during init, a bootstrap that
//!   cannot be started); a runtime that exits or overruns its timeout is killed with its
//!   whole process group and started again for the next invocation (with N > 1, the other
//!   open invocations fail with it).
//!
//! Extensions ([`Sandbox::register`], [`Sandbox::extension_next`]) register during Init
//! only (after the runtime's first `/next`: 403 `Extension.RegistrationClosed`), for no
//! events, `INVOKE` or `SHUTDOWN`. The emulator starts no extensions of its own (there is
//! no `/opt/extensions`), so every extension is one the bootstrap started: one that
//! subscribes to `SHUTDOWN` is treated as an external extension (Lambda refuses `SHUTDOWN`
//! to internal ones), one that subscribes to nothing as an internal one that only parks on
//! `/event/next`. `INVOKE` events are queued for their subscribers; an invocation does not
//! wait for extensions to call `/event/next` again before the runtime gets the next one.
//!
//! [`Sandbox::shutdown`] is Lambda's Shutdown phase: with no extension registered the
//! runtime is simply killed; with one, the runtime gets SIGTERM, `SHUTDOWN` subscribers get
//! their event, and the process group is killed (SIGKILL) when the runtime has ended and
//! every `SHUTDOWN` subscriber has asked for its next event, or after 500 ms (internal
//! extensions only) or 2,000 ms (with a `SHUTDOWN` subscriber), whichever comes first.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::function::{Function, RUNTIME_API};
use crate::http::peer_closed;
use crate::ids::{Ids, RequestId, unix_millis};
use crate::json::{base64, error_document, error_type_of, from_base64, push_string};
use crate::process::{self, Exit, Usage};

/// Lambda's limit on a synchronous event and buffered response: 6 MiB + 100 bytes.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 100;

/// Lambda's limit on a streamed response: 200 MiB.
pub const MAX_STREAM: u64 = 200 * 1024 * 1024;

/// How long a runtime may take from its start to its first `GET /next` (Lambda's init limit).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

/// The Shutdown phase when only internal extensions are registered: the runtime's 500 ms.
pub const SHUTDOWN_INTERNAL: Duration = Duration::from_millis(500);

/// The Shutdown phase with an extension subscribed to `SHUTDOWN` (an external one): 2 s.
pub const SHUTDOWN_EXTERNAL: Duration = Duration::from_millis(2000);

/// Pieces of a stream in flight between the runtime's connection and the caller's: the
/// runtime is slowed to the caller's pace beyond this.
const STREAM_BUFFER: usize = 16;

/// Lambda's limit on registered extensions.
const MAX_EXTENSIONS: usize = 10;

/// One invocation, as a caller submits it.
pub struct Invocation {
    /// Its request id.
    pub id: RequestId,
    /// The event (shared, so the bench sends one buffer many times).
    pub event: Arc<[u8]>,
    /// The caller's `Content-Type`, passed to the runtime (default `application/json`).
    pub content_type: Option<String>,
    /// The caller's `X-Amzn-Trace-Id`, else one is made up.
    pub trace_id: Option<String>,
    /// The decoded `X-Amz-Client-Context`, passed as `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// Whether the caller wants the response body (the bench only needs its length).
    pub keep_body: bool,
}

/// What an invocation ended with.
#[derive(Debug)]
pub enum Outcome {
    /// The runtime posted `/response`.
    Response {
        /// The body (empty unless the invocation asked to keep it).
        body: Vec<u8>,
        /// The runtime's `Content-Type`.
        content_type: Option<String>,
        /// From the event being written to the response being read.
        latency: Duration,
    },
    /// The function failed: the runtime posted `/error` or `/runtime/init/error`, or the
    /// emulator failed it (timeout, exit, response too large). The caller sees
    /// `X-Amz-Function-Error: Unhandled` and this document.
    Error {
        /// The error document (JSON).
        document: Vec<u8>,
    },
    /// The runtime has started a streamed response: its pieces follow as they arrive.
    Stream(Stream),
}

/// A streamed response on its way: read it with [`crate::invoke::relay`].
#[derive(Debug)]
pub struct Stream {
    /// The runtime's `Content-Type`.
    pub content_type: Option<String>,
    /// The pieces, ending with [`Piece::End`].
    pub pieces: Receiver<Piece>,
    /// The invocation's deadline: the runtime is killed if the stream has not ended then.
    pub deadline: Instant,
}

/// One piece of a streamed response.
#[derive(Debug)]
pub enum Piece {
    /// Body bytes, as the runtime sent them.
    Data(Vec<u8>),
    /// The end of the stream.
    End(StreamEnd),
}

/// How a streamed response ended.
#[derive(Debug)]
pub struct StreamEnd {
    /// The error it ended with (the runtime's trailers, or the emulator's), if any.
    pub error: Option<StreamError>,
    /// From the event being written to the end of the stream being read.
    pub latency: Duration,
}

/// An error at the end of a stream, as the trailers `Lambda-Runtime-Function-Error-Type`
/// and `Lambda-Runtime-Function-Error-Body` carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    /// The error type.
    pub error_type: String,
    /// The base64 of the error document, as the runtime sent it.
    pub body: String,
}

impl StreamError {
    /// The error of an emulator-made error `document`.
    pub fn of_document(document: &[u8]) -> StreamError {
        StreamError {
            error_type: error_type_of(document)
                .unwrap_or("Runtime.Unknown")
                .to_owned(),
            body: base64(document),
        }
    }

    /// The error of a runtime's trailers: its type, and its body if it sent one (else a
    /// document made of the type, as for an `/error` without a body).
    pub fn of_trailers(error_type: &[u8], body: Option<&[u8]>) -> StreamError {
        let error_type = String::from_utf8_lossy(error_type).into_owned();
        let body = match body {
            Some(body) if !body.is_empty() => String::from_utf8_lossy(body).into_owned(),
            _ => base64(&error_document(&error_type, "")),
        };
        StreamError { error_type, body }
    }

    /// The error document, decoded from the body (the body itself if it is not base64).
    pub fn document(&self) -> Vec<u8> {
        from_base64(self.body.as_bytes()).unwrap_or_else(|| self.body.clone().into_bytes())
    }
}

/// What `GET /next` gets.
pub enum Next {
    /// An invocation to send.
    Event(Delivery),
    /// 403: not allowed now, for this reason.
    Refused(String),
    /// The request comes from a runtime that has been replaced: close the connection.
    Stale,
}

/// Everything the `/next` response carries.
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
}

/// Why a runtime's POST is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `InvalidRequestID`.
    WrongId,
    /// 403 `InvalidStateTransition`, for this reason.
    WrongState(&'static str),
    /// From a replaced runtime: close the connection.
    Stale,
}

/// What a runtime posted for an invocation.
pub enum Posted<'a> {
    /// `/response` with this body and `Content-Type`.
    Response(&'a [u8], Option<&'a [u8]>),
    /// `/error` with this body and `Lambda-Runtime-Function-Error-Type`.
    Error(&'a [u8], Option<&'a [u8]>),
    /// A `/response` or `/error` body over [`MAX_PAYLOAD`] (answered 413).
    TooLarge,
}

/// A refused Extensions API request: status line, `errorType` and message.
#[derive(Debug)]
pub struct ExtensionRefusal {
    /// The status line, e.g. `403 Forbidden`.
    pub status: &'static str,
    /// The error document's `errorType`.
    pub error_type: &'static str,
    /// The error document's `errorMessage`.
    pub message: String,
}

fn forbidden(error_type: &'static str, message: impl Into<String>) -> ExtensionRefusal {
    ExtensionRefusal {
        status: "403 Forbidden",
        error_type,
        message: message.into(),
    }
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

/// The answer to `GET /extension/event/next`.
pub enum ExtensionNext {
    /// 200 with this event, and its id for `Lambda-Extension-Event-Identifier`.
    Event(Vec<u8>, String),
    /// Refused.
    Refused(ExtensionRefusal),
    /// The generation ended: close the connection.
    Stale,
}

/// A runtime waiting for its first (or next) event, for the bench.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    /// The runtime's pid, which is also its process group.
    pub pgid: i32,
    /// From spawn to its first `GET /next`.
    pub init: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Stopped,
    Init,
    InitFailed,
    Running,
    ShuttingDown,
}

/// A failed start, kept for the first caller.
enum InitFailure {
    /// The document the runtime posted to `/runtime/init/error`.
    Posted(Vec<u8>),
    /// The runtime ended before asking for an event.
    Exited(Exit),
    /// The bootstrap could not be started.
    Spawn(String),
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
        }
    }

    fn describe(&self) -> String {
        match self {
            InitFailure::Posted(document) => format!(
                "the runtime reported an init error: {}",
                String::from_utf8_lossy(document)
            ),
            InitFailure::Exited(exit) => {
                format!(
                    "the runtime ended before asking for an event ({})",
                    exit.describe()
                )
            }
            InitFailure::Spawn(why) => why.clone(),
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

/// The running process of the current generation.
struct Runtime {
    pid: i32,
    started: Instant,
    api: SocketAddr,
    watcher: Option<JoinHandle<Usage>>,
    init: Option<Duration>,
    init_reported: bool,
}

/// An invocation the runtime is working on.
struct Current {
    id: RequestId,
    deadline: Instant,
    sent_at: Instant,
    keep_body: bool,
    /// Its response is being streamed (the caller already has the [`Stream`]).
    streaming: bool,
}

/// A `GET /next` waiting for an event.
struct Parked {
    ticket: u64,
    /// Its connection, to tell whether the runtime has gone from it (N > 1 only).
    probe: Option<TcpStream>,
}

/// A registered extension.
struct Extension {
    id: String,
    name: String,
    invoke: bool,
    shutdown: bool,
    events: VecDeque<Vec<u8>>,
    /// It has been sent `SHUTDOWN`…
    shutdown_sent: bool,
    /// …and has asked for its next event since (it is done).
    shutdown_done: bool,
}

struct State {
    generation: u64,
    phase: Phase,
    runtime: Option<Runtime>,
    queue: VecDeque<Invocation>,
    /// The open invocations (at most N).
    open: Vec<Current>,
    /// The last N ids handed out (a POST for one of them that is no longer open is 403,
    /// for any other id that is not open 400).
    handed: VecDeque<RequestId>,
    outcomes: HashMap<RequestId, Outcome>,
    init_failure: Option<InitFailure>,
    /// The `GET /next` requests waiting for an event.
    parked: Vec<Parked>,
    tickets: u64,
    ids: Ids,
    extensions: Vec<Extension>,
    /// How the runtime ended while shutting down.
    ended: Option<Exit>,
}

/// One function instance and its callers.
pub struct Sandbox {
    me: Weak<Sandbox>,
    function: Function,
    program: OsString,
    args: Vec<OsString>,
    /// Whether to print Lambda's `START`/`END`/`REPORT` lines and restarts on stderr.
    log: bool,
    /// N: how many invocations the runtime may work on at once.
    concurrency: usize,
    /// The current generation, readable without the lock.
    generation: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
    /// Held by [`Sandbox::shutdown`], so that two of them (a signal and the end of
    /// `--invoke`) run one after the other.
    shutting_down: Mutex<()>,
}

impl Sandbox {
    /// A sandbox for `program args` configured as `function`, serving up to `concurrency`
    /// invocations at once; nothing runs yet.
    pub fn new(
        function: Function,
        program: OsString,
        args: Vec<OsString>,
        log: bool,
        concurrency: usize,
    ) -> Arc<Sandbox> {
        Arc::new_cyclic(|me| Sandbox {
            me: me.clone(),
            function,
            program,
            args,
            log,
            concurrency: concurrency.max(1),
            generation: AtomicU64::new(0),
            state: Mutex::new(State {
                generation: 0,
                phase: Phase::Stopped,
                runtime: None,
                queue: VecDeque::new(),
                open: Vec::new(),
                handed: VecDeque::new(),
                outcomes: HashMap::new(),
                init_failure: None,
                parked: Vec::new(),
                tickets: 0,
                ids: Ids::new(),
                extensions: Vec::new(),
                ended: None,
            }),
            changed: Condvar::new(),
            shutting_down: Mutex::new(()),
        })
    }

    /// The function's configuration.
    pub fn function(&self) -> &Function {
        &self.function
    }

    /// N: how many invocations the runtime may work on at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Whether `generation` is still the current one (a cheap check for connections).
    pub fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_for<'a>(&self, guard: MutexGuard<'a, State>, time: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, time)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// A fresh request id.
    pub fn new_id(&self) -> RequestId {
        self.lock().ids.request_id()
    }

    /// Starts the runtime now, before any invocation (so that a bootstrap that cannot be
    /// started is reported at once, and its init overlaps the wait for the first caller).
    pub fn start(&self) -> Result<(), String> {
        let mut s = self.lock();
        self.spawn(&mut s)
    }

    /// Runs `invocation` and waits for its outcome, enforcing the function timeout (and the
    /// init limit while the runtime starts): on expiry the runtime is killed and restarted.
    /// A streamed response is returned as soon as it starts; its caller then enforces the
    /// deadline (see [`crate::invoke::relay`]).
    pub fn submit(&self, invocation: Invocation) -> Outcome {
        let id = invocation.id;
        let mut s = self.lock();
        s.queue.push_back(invocation);
        self.pump(&mut s);
        loop {
            if let Some(outcome) = s.outcomes.remove(&id) {
                return outcome;
            }
            let limit = match s.open.iter().find(|c| c.id == id) {
                Some(current) => (!current.streaming).then_some((current.deadline, false)),
                None if s.phase == Phase::Init && s.queue.front().is_some_and(|i| i.id == id) => {
                    s.runtime.as_ref().map(|r| (r.started + INIT_LIMIT, true))
                }
                None => None,
            };
            let now = Instant::now();
            s = match limit {
                Some((at, init)) if now >= at => {
                    let document = self.overrun(&mut s, id, init);
                    s.outcomes.insert(id, Outcome::Error { document });
                    s
                }
                Some((at, _)) => self.wait_for(s, at - now),
                None => self.wait(s),
            };
        }
    }

    /// Fails invocation `id` on its deadline (`init`: during the runtime's start): forgets
    /// it, kills the runtime and starts another for whatever waits. Returns the error
    /// document for its caller.
    fn overrun(&self, s: &mut State, id: RequestId, init: bool) -> Vec<u8> {
        let (error, seconds) = if init {
            s.queue.retain(|i| i.id != id);
            ("Init timed out", INIT_LIMIT.as_secs_f64())
        } else {
            s.open.retain(|c| c.id != id);
            ("Task timed out", self.function.timeout.as_secs_f64())
        };
        let document = error_document(
            "Sandbox.Timedout",
            &format!(
                "RequestId: {} Error: {error} after {seconds:.2} seconds",
                id.as_str()
            ),
        );
        if self.log {
            say!(
                "tinylambda-emu: {} {error} after {seconds:.2} seconds: the runtime is killed and starts again at the next invocation",
                id.as_str()
            );
            let duration = if init {
                INIT_LIMIT
            } else {
                self.function.timeout
            };
            self.report(s, id, duration, "timeout");
        }
        drop(self.end_generation(s));
        self.pump(s);
        document
    }

    /// The caller of the streamed invocation `id` saw its deadline pass: if the stream is
    /// still open, the runtime is killed (and restarted for whatever waits) and the
    /// `Sandbox.Timedout` document is returned; `None` if the stream has just ended.
    pub fn stream_overran(&self, id: RequestId) -> Option<Vec<u8>> {
        let mut s = self.lock();
        if !s.open.iter().any(|c| c.id == id) {
            return None;
        }
        Some(self.overrun(&mut s, id, false))
    }

    /// Starts a runtime when invocations wait and none runs; hands a stored failed start to
    /// the first of them; wakes everyone.
    fn pump(&self, s: &mut State) {
        while let Some(head) = s.queue.front() {
            let head_id = head.id;
            if let Some(failure) = s.init_failure.take() {
                s.queue.pop_front();
                s.outcomes.insert(
                    head_id,
                    Outcome::Error {
                        document: failure.document(&head_id),
                    },
                );
                continue;
            }
            match s.phase {
                // It reported an init error and should be gone: make sure, and start again.
                Phase::InitFailed => drop(self.end_generation(s)),
                Phase::Stopped => match self.spawn(s) {
                    Ok(()) => break,
                    Err(why) => {
                        s.queue.pop_front();
                        s.outcomes.insert(
                            head_id,
                            Outcome::Error {
                                document: InitFailure::Spawn(why).document(&head_id),
                            },
                        );
                    }
                },
                Phase::Init | Phase::Running | Phase::ShuttingDown => break,
            }
        }
        self.changed.notify_all();
    }

    /// Starts a new generation: a Runtime API listener, the bootstrap, and its watcher.
    fn spawn(&self, s: &mut State) -> Result<(), String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot open a port for the Runtime API: {e}"))?;
        let api = listener
            .local_addr()
            .map_err(|e| format!("cannot open a port for the Runtime API: {e}"))?;
        s.generation += 1;
        let generation = s.generation;
        self.generation.store(generation, Ordering::SeqCst);
        crate::server::serve(self.me.clone(), generation, listener)
            .map_err(|e| format!("cannot start the Runtime API thread: {e}"))?;

        let mut env = self.function.env.clone();
        env.push((RUNTIME_API.into(), api.to_string().into()));
        let spawned = match process::spawn(&self.program, &self.args, &env) {
            Ok(spawned) => spawned,
            Err(e) => {
                wake(api);
                s.generation += 1;
                self.generation.store(s.generation, Ordering::SeqCst);
                return Err(format!(
                    "cannot start {}: {e}",
                    self.program.to_string_lossy()
                ));
            }
        };
        let me = self.me.clone();
        let watcher = process::watch(spawned, move |exit| {
            if let Some(sandbox) = me.upgrade() {
                sandbox.exited(generation, exit);
            }
        });
        let watcher = match watcher {
            Ok(watcher) => watcher,
            Err(e) => {
                process::kill_group(spawned.pid);
                return Err(format!("cannot start a thread: {e}"));
            }
        };
        s.runtime = Some(Runtime {
            pid: spawned.pid,
            started: spawned.started,
            api,
            watcher: Some(watcher),
            init: None,
            init_reported: false,
        });
        s.phase = Phase::Init;
        s.ended = None;
        Ok(())
    }

    /// Ends the current generation: kills its process group, stops its listener, forgets
    /// its invocations and extensions. Returns its watcher, whose result is the tree's
    /// usage.
    fn end_generation(&self, s: &mut State) -> Option<JoinHandle<Usage>> {
        for current in s.open.drain(..) {
            if current.streaming {
                continue; // its stream breaks off: the connection relaying it reports that
            }
            let document = error_document(
                "Runtime.ExitError",
                &format!(
                    "RequestId: {} Error: the runtime was stopped",
                    current.id.as_str()
                ),
            );
            s.outcomes.insert(current.id, Outcome::Error { document });
        }
        s.generation += 1;
        self.generation.store(s.generation, Ordering::SeqCst);
        s.phase = Phase::Stopped;
        s.parked.clear();
        s.handed.clear();
        s.extensions.clear();
        let mut runtime = s.runtime.take()?;
        process::kill_group(runtime.pid);
        wake(runtime.api);
        self.changed.notify_all();
        runtime.watcher.take()
    }

    /// Called by the watcher when the bootstrap process of `generation` has ended.
    fn exited(&self, generation: u64, exit: Exit) {
        let mut s = self.lock();
        if s.generation != generation {
            return; // already ended by the emulator (timeout, restart, stop)
        }
        match s.phase {
            Phase::Running => {
                let open = std::mem::take(&mut s.open);
                for current in open.into_iter().filter(|c| !c.streaming) {
                    if self.log {
                        self.report(&mut s, current.id, current.sent_at.elapsed(), "error");
                    }
                    let document = exit_document(&current.id, exit);
                    s.outcomes.insert(current.id, Outcome::Error { document });
                }
            }
            Phase::Init => self.fail_init(&mut s, InitFailure::Exited(exit)),
            Phase::ShuttingDown => {
                // The shutdown decides when the rest of the group goes.
                s.ended = Some(exit);
                self.changed.notify_all();
                return;
            }
            Phase::InitFailed | Phase::Stopped => {}
        }
        if self.log {
            say!(
                "tinylambda-emu: the runtime ended ({}); it starts again at the next invocation",
                exit.describe()
            );
        }
        drop(self.end_generation(&mut s));
        self.pump(&mut s);
    }

    /// Gives a failed start to the caller waiting for it, or keeps it for the first one.
    fn fail_init(&self, s: &mut State, failure: InitFailure) {
        match s.queue.pop_front() {
            Some(first) => {
                let document = failure.document(&first.id);
                s.outcomes.insert(first.id, Outcome::Error { document });
            }
            None => s.init_failure = Some(failure),
        }
    }

    /// `GET /next` from generation `generation`: waits for an invocation and takes it.
    /// `probe` is the request's connection (needed when N > 1, to tell a runtime that
    /// reconnected from one that asks for too much).
    pub fn next(&self, generation: u64, probe: Option<TcpStream>) -> Next {
        let mut s = self.lock();
        let mut probe = probe;
        let mut ticket = None;
        loop {
            if s.generation != generation {
                return Next::Stale;
            }
            match s.phase {
                Phase::Init => {
                    s.phase = Phase::Running;
                    if let Some(runtime) = s.runtime.as_mut() {
                        runtime.init = Some(runtime.started.elapsed());
                    }
                }
                Phase::Running => {}
                Phase::ShuttingDown => {
                    // Nothing more to hand out: wait to be stopped.
                    s = self.wait(s);
                    continue;
                }
                Phase::InitFailed => {
                    return Next::Refused(
                        "GET /next after /runtime/init/error: the runtime must exit".into(),
                    );
                }
                Phase::Stopped => return Next::Stale,
            }
            let Some(mine) = ticket else {
                if let Err(why) = self.admit(&mut s) {
                    return Next::Refused(why);
                }
                s.tickets += 1;
                let mine = s.tickets;
                ticket = Some(mine);
                s.parked.push(Parked {
                    ticket: mine,
                    probe: probe.take(),
                });
                self.changed.notify_all();
                continue;
            };
            let Some(at) = s.parked.iter().position(|p| p.ticket == mine) else {
                return Next::Stale; // replaced by a newer /next, or forgotten
            };
            if !s.queue.is_empty() {
                let parked = s.parked.remove(at);
                if parked.probe.as_ref().is_some_and(peer_closed) {
                    self.changed.notify_all();
                    return Next::Stale; // the runtime has gone from this connection
                }
                if let Some(invocation) = s.queue.pop_front() {
                    return Next::Event(self.deliver(&mut s, invocation));
                }
            }
            s = self.wait(s);
        }
    }

    /// Whether one more `GET /next` may wait now (see the module docs for the rules).
    fn admit(&self, s: &mut State) -> Result<(), String> {
        if self.concurrency == 1 {
            if !s.open.is_empty() {
                return Err(
                    "GET /next while an invocation is open: post its /response or /error first"
                        .into(),
                );
            }
            // The newest /next wins: a runtime that lost its connection asks again.
            s.parked.clear();
            return Ok(());
        }
        if s.open.len() + s.parked.len() >= self.concurrency {
            s.parked
                .retain(|p| !p.probe.as_ref().is_some_and(peer_closed));
        }
        if s.open.len() + s.parked.len() >= self.concurrency {
            return Err(format!(
                "GET /next with {} invocations open and {} GET /next waiting: at most {} at once (AWS_LAMBDA_MAX_CONCURRENCY)",
                s.open.len(),
                s.parked.len(),
                self.concurrency
            ));
        }
        Ok(())
    }

    fn deliver(&self, s: &mut State, invocation: Invocation) -> Delivery {
        let now = Instant::now();
        let timeout = self.function.timeout;
        s.open.push(Current {
            id: invocation.id,
            deadline: now + timeout,
            sent_at: now,
            keep_body: invocation.keep_body,
            streaming: false,
        });
        s.handed.push_back(invocation.id);
        while s.handed.len() > self.concurrency {
            s.handed.pop_front();
        }
        // Its caller now has a deadline to watch.
        self.changed.notify_all();
        if self.log {
            say!(
                "START RequestId: {} Version: {}",
                invocation.id.as_str(),
                self.function.version
            );
        }
        let trace_id = match invocation.trace_id {
            Some(trace_id) => trace_id,
            None => s.ids.trace_id(),
        };
        let deadline_ms = unix_millis() + timeout.as_millis() as u64;
        if s.extensions.iter().any(|e| e.invoke) {
            let mut event = br#"{"eventType":"INVOKE","deadlineMs":"#.to_vec();
            event.extend_from_slice(deadline_ms.to_string().as_bytes());
            event.extend_from_slice(br#","requestId":"#);
            push_string(&mut event, invocation.id.as_str());
            event.extend_from_slice(br#","invokedFunctionArn":"#);
            push_string(&mut event, &self.function.arn);
            event.extend_from_slice(br#","tracing":{"type":"X-Amzn-Trace-Id","value":"#);
            push_string(&mut event, &trace_id);
            event.extend_from_slice(b"}}");
            for extension in s.extensions.iter_mut().filter(|e| e.invoke) {
                extension.events.push_back(event.clone());
            }
        }
        Delivery {
            id: invocation.id,
            deadline_ms,
            event: invocation.event,
            content_type: invocation.content_type,
            trace_id,
            client_context: invocation.client_context,
        }
    }

    /// Checks a `/response` or `/error` for `id` from `generation` before its body is read.
    pub fn check_post(&self, generation: u64, id: &[u8]) -> Result<(), Refusal> {
        let s = self.lock();
        check(&s, generation, id).map(drop)
    }

    /// Records what the runtime posted for `id`; `done` is when its body was read.
    pub fn complete(
        &self,
        generation: u64,
        id: &[u8],
        posted: Posted<'_>,
        done: Instant,
    ) -> Result<(), Refusal> {
        let mut s = self.lock();
        let at = check(&s, generation, id)?;
        let current = s.open.remove(at);
        let latency = done.saturating_duration_since(current.sent_at);
        let (outcome, status) = match posted {
            Posted::Response(body, content_type) => (
                Outcome::Response {
                    body: if current.keep_body {
                        body.to_vec()
                    } else {
                        Vec::new()
                    },
                    content_type: content_type.map(|c| String::from_utf8_lossy(c).into_owned()),
                    latency,
                },
                "",
            ),
            Posted::Error(body, error_type) => {
                let document = if body.is_empty() {
                    let error_type =
                        error_type.map_or("Runtime.Unknown".into(), String::from_utf8_lossy);
                    error_document(&error_type, "")
                } else {
                    body.to_vec()
                };
                (Outcome::Error { document }, "error")
            }
            Posted::TooLarge => (
                Outcome::Error {
                    document: error_document(
                        "Function.ResponseSizeTooLarge",
                        &format!(
                            "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."
                        ),
                    ),
                },
                "error",
            ),
        };
        if self.log {
            self.report(&mut s, current.id, latency, status);
        }
        s.outcomes.insert(current.id, outcome);
        self.changed.notify_all();
        Ok(())
    }

    /// A `/response` for `id` from `generation` in streaming mode has begun: hands its
    /// caller an [`Outcome::Stream`] and returns the sending end of its pieces.
    pub fn start_stream(
        &self,
        generation: u64,
        id: &[u8],
        content_type: Option<String>,
    ) -> Result<SyncSender<Piece>, Refusal> {
        let mut s = self.lock();
        let at = check(&s, generation, id)?;
        let current = &mut s.open[at];
        current.streaming = true;
        let (id, deadline) = (current.id, current.deadline);
        let (sender, pieces) = sync_channel(STREAM_BUFFER);
        s.outcomes.insert(
            id,
            Outcome::Stream(Stream {
                content_type,
                pieces,
                deadline,
            }),
        );
        self.changed.notify_all();
        Ok(sender)
    }

    /// The streamed response for `id` from `generation` has ended (with `error`, if any) at
    /// `done`: frees its slot. Returns its latency, or `None` if the invocation was already
    /// ended by the emulator (a timeout, a killed runtime).
    pub fn finish_stream(
        &self,
        generation: u64,
        id: &[u8],
        error: Option<&StreamError>,
        done: Instant,
    ) -> Option<Duration> {
        let mut s = self.lock();
        if s.generation != generation {
            return None;
        }
        let at = s
            .open
            .iter()
            .position(|c| c.streaming && c.id.as_bytes() == id)?;
        let current = s.open.remove(at);
        let latency = done.saturating_duration_since(current.sent_at);
        if self.log {
            let status = if error.is_some() { "error" } else { "" };
            self.report(&mut s, current.id, latency, status);
        }
        self.changed.notify_all();
        Some(latency)
    }

    /// `POST /runtime/init/error` from `generation`, with the document to give the first
    /// caller.
    pub fn init_error(&self, generation: u64, document: Vec<u8>) -> Result<(), Refusal> {
        let mut s = self.lock();
        if s.generation != generation {
            return Err(Refusal::Stale);
        }
        if s.phase != Phase::Init {
            return Err(Refusal::WrongState(
                "/runtime/init/error is only allowed before the first GET /next",
            ));
        }
        s.phase = Phase::InitFailed;
        if self.log {
            say!(
                "tinylambda-emu: the runtime reported an init error: {}",
                String::from_utf8_lossy(&document)
            );
        }
        self.fail_init(&mut s, InitFailure::Posted(document));
        self.pump(&mut s);
        Ok(())
    }

    /// `POST /2020-01-01/extension/register` from `generation`, with the
    /// `Lambda-Extension-Name` header `name` and the request body.
    pub fn register(&self, generation: u64, name: Option<&[u8]>, body: &[u8]) -> Registered {
        let mut s = self.lock();
        if s.generation != generation {
            return Registered::Stale;
        }
        let name = match name.map(std::str::from_utf8) {
            Some(Ok(name)) if !name.is_empty() => name.to_owned(),
            _ => {
                return Registered::Refused(forbidden(
                    "Extension.InvalidExtensionName",
                    "Empty extension name",
                ));
            }
        };
        let events = match crate::json::string_array(body, "events") {
            Ok(events) => events.unwrap_or_default(),
            Err(why) => {
                return Registered::Refused(forbidden("InvalidRequestFormat", why));
            }
        };
        if let Some(unknown) = events
            .iter()
            .find(|e| !matches!(e.as_str(), "INVOKE" | "SHUTDOWN"))
        {
            return Registered::Refused(forbidden(
                "Extension.InvalidEventType",
                format!("{unknown}: unknown event type (INVOKE or SHUTDOWN)"),
            ));
        }
        let refusal = if s.phase != Phase::Init {
            Some(forbidden(
                "Extension.RegistrationClosed",
                "Extension registration closed already",
            ))
        } else if s.extensions.iter().any(|e| e.name == name) {
            Some(forbidden(
                "Extension.InvalidExtensionState",
                "Extension with this name already registered",
            ))
        } else if s.extensions.len() >= MAX_EXTENSIONS {
            Some(forbidden(
                "Extension.TooManyExtensions",
                format!("Extension limit ({MAX_EXTENSIONS}) reached"),
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Registered::Refused(refusal);
        }
        let id = s.ids.request_id().as_str().to_owned();
        if self.log {
            say!("tinylambda-emu: extension {name} registered for {events:?}");
        }
        s.extensions.push(Extension {
            id: id.clone(),
            name,
            invoke: events.iter().any(|e| e == "INVOKE"),
            shutdown: events.iter().any(|e| e == "SHUTDOWN"),
            events: VecDeque::new(),
            shutdown_sent: false,
            shutdown_done: false,
        });
        let mut body = br#"{"functionName":"#.to_vec();
        push_string(&mut body, &self.function.name);
        body.extend_from_slice(br#","functionVersion":"#);
        push_string(&mut body, &self.function.version);
        body.extend_from_slice(br#","handler":"#);
        push_string(&mut body, &self.function.handler);
        body.push(b'}');
        Registered::Ok { id, body }
    }

    /// `GET /2020-01-01/extension/event/next` from `generation` for the extension whose
    /// `Lambda-Extension-Identifier` is `id`: waits for its next event.
    pub fn extension_next(&self, generation: u64, id: Option<&[u8]>) -> ExtensionNext {
        let Some(id) = id else {
            return ExtensionNext::Refused(forbidden(
                "Extension.MissingExtensionIdentifier",
                "Missing Lambda-Extension-Identifier header",
            ));
        };
        let mut s = self.lock();
        let mut first = true;
        loop {
            if s.generation != generation {
                return ExtensionNext::Stale;
            }
            let Some(extension) = s.extensions.iter_mut().find(|e| e.id.as_bytes() == id) else {
                return ExtensionNext::Refused(forbidden(
                    "Extension.UnknownExtensionIdentifier",
                    "Unknown extension identifier",
                ));
            };
            if first && extension.shutdown_sent && !extension.shutdown_done {
                extension.shutdown_done = true;
                self.changed.notify_all();
            }
            first = false;
            if let Some(event) = extension.events.pop_front() {
                let event_id = s.ids.request_id().as_str().to_owned();
                return ExtensionNext::Event(event, event_id);
            }
            s = self.wait(s);
        }
    }

    /// Prints Lambda's `END` and `REPORT` lines for `id`.
    fn report(&self, s: &mut State, id: RequestId, duration: Duration, status: &str) {
        let ms = duration.as_secs_f64() * 1e3;
        let mut line = format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
            ms.ceil().max(1.0) as u64,
            self.function.memory_mb,
            id = id.as_str(),
        );
        if let Some(runtime) = &mut s.runtime {
            if let Some(kib) = process::peak_rss_kib(runtime.pid) {
                line.push_str(&format!("\tMax Memory Used: {} MB", kib.div_ceil(1024)));
            }
            if let (Some(init), false) = (runtime.init, runtime.init_reported) {
                runtime.init_reported = true;
                line.push_str(&format!(
                    "\tInit Duration: {:.2} ms",
                    init.as_secs_f64() * 1e3
                ));
            }
        }
        if !status.is_empty() {
            line.push_str("\tStatus: ");
            line.push_str(status);
        }
        say!("{line}");
    }

    /// Waits until the runtime waits in `GET /next` with nothing to do (for the bench).
    /// Fails if it ends, reports an init error, or overruns the init limit first.
    pub fn wait_ready(&self) -> Result<Ready, String> {
        let mut s = self.lock();
        loop {
            match (s.phase, &s.runtime) {
                (Phase::Running, Some(runtime))
                    if !s.parked.is_empty() && s.queue.is_empty() && s.open.is_empty() =>
                {
                    return Ok(Ready {
                        pgid: runtime.pid,
                        init: runtime.init.unwrap_or_default(),
                    });
                }
                (Phase::Stopped | Phase::InitFailed, _) => {
                    return Err(s
                        .init_failure
                        .as_ref()
                        .map_or("the runtime stopped".into(), InitFailure::describe));
                }
                (Phase::Init, Some(runtime)) => {
                    let limit = runtime.started + INIT_LIMIT;
                    let now = Instant::now();
                    if now >= limit {
                        drop(self.end_generation(&mut s));
                        return Err(format!(
                            "the runtime did not ask for an event within {} s of its start",
                            INIT_LIMIT.as_secs()
                        ));
                    }
                    s = self.wait_for(s, limit - now);
                }
                _ => s = self.wait(s),
            }
        }
    }

    /// Whether an extension is registered (the runtime then gets SIGTERM at shutdown).
    pub fn has_extensions(&self) -> bool {
        !self.lock().extensions.is_empty()
    }

    /// Stops the runtime the way Lambda ends an execution environment (see the module
    /// docs): SIGTERM and a grace period when an extension is registered, then SIGKILL to
    /// its whole process group; waits until every process of it has been reaped. Returns
    /// what the whole tree used, from its spawn.
    pub fn shutdown(&self) -> Option<Usage> {
        let _one_at_a_time = self
            .shutting_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut s = self.lock();
        let pid = s.runtime.as_ref().map(|r| r.pid);
        if let (Some(pid), Phase::Init | Phase::Running, false) =
            (pid, s.phase, s.extensions.is_empty())
        {
            s = self.terminate(s, pid);
        }
        let watcher = self.end_generation(&mut s);
        drop(s);
        watcher.and_then(|w| w.join().ok())
    }

    /// The grace period of [`Sandbox::shutdown`]: SIGTERM to the runtime `pid`, `SHUTDOWN`
    /// to its subscribers, and a wait until they are done or the time is up.
    fn terminate<'a>(&self, mut s: MutexGuard<'a, State>, pid: i32) -> MutexGuard<'a, State> {
        let external = s.extensions.iter().any(|e| e.shutdown);
        let budget = if external {
            SHUTDOWN_EXTERNAL
        } else {
            SHUTDOWN_INTERNAL
        };
        s.phase = Phase::ShuttingDown;
        let event = format!(
            r#"{{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":{}}}"#,
            unix_millis() + budget.as_millis() as u64
        );
        for extension in s.extensions.iter_mut().filter(|e| e.shutdown) {
            extension.events.push_back(event.clone().into_bytes());
            extension.shutdown_sent = true;
        }
        self.changed.notify_all();
        let generation = s.generation;
        let started = Instant::now();
        let deadline = started + budget;
        process::terminate(pid);
        say!(
            "tinylambda-emu: shutting down: SIGTERM to the runtime (an extension is registered), SIGKILL in {} ms",
            budget.as_millis()
        );
        loop {
            let subscribers_done = s
                .extensions
                .iter()
                .filter(|e| e.shutdown)
                .all(|e| e.shutdown_done);
            let done = s.ended.is_some() && (subscribers_done || !process::group_alive(pid));
            let now = Instant::now();
            if done || now >= deadline || s.generation != generation {
                break;
            }
            // Polled: the last processes of the group end without telling the sandbox.
            s = self.wait_for(s, (deadline - now).min(Duration::from_millis(10)));
        }
        match s.ended {
            Some(exit) => say!(
                "tinylambda-emu: the runtime ended ({}) {} ms after SIGTERM",
                exit.describe(),
                started.elapsed().as_millis()
            ),
            None => say!(
                "tinylambda-emu: the runtime was still running {} ms after SIGTERM: killed",
                budget.as_millis()
            ),
        }
        s
    }
}

/// The checks of a POST for `id` from `generation` (stale, 400, 403); the position of its
/// open invocation when it passes.
fn check(s: &State, generation: u64, id: &[u8]) -> Result<usize, Refusal> {
    if s.generation != generation {
        return Err(Refusal::Stale);
    }
    // An open invocation is always answerable, however many others were handed out since
    // (with --concurrency, a slow one can fall out of the last N).
    if let Some(at) = s.open.iter().position(|c| c.id.as_bytes() == id) {
        return Ok(at);
    }
    if !s.handed.iter().any(|h| h.as_bytes() == id) {
        return Err(Refusal::WrongId);
    }
    Err(Refusal::WrongState(
        "this invocation already has its response or error",
    ))
}

/// Connects to a listener once, so that its thread wakes from `accept` and sees it is done.
fn wake(api: SocketAddr) {
    let _ = TcpStream::connect_timeout(&api, Duration::from_millis(100));
}

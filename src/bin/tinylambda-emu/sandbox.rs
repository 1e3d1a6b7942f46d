//! The sandbox: one instance of the function, the state machine of its runtime, and the
//! queue of invocations waiting for it. Callers ([`Sandbox::submit`]) and the Runtime API
//! ([`crate::server`]) meet here, under one mutex, and wake each other with one condvar.
//!
//! A runtime start is a *generation*: a process (in its own process group) with a Runtime API
//! listener of its own, so nothing from a killed runtime can reach its successor.
//!
//! ```text
//!            spawn               first GET /next             event sent
//! Stopped ─────────▶ Init ─────────────────────────▶ Ready ────────────▶ Invoking
//!    ▲                │ POST /runtime/init/error       ▲   /response, /error  │
//!    │                ▼                                └──────────────────────┘
//!    └─────────── InitFailed        exit, timeout, kill: any state ──▶ Stopped
//! ```
//!
//! Rules, as Lambda's Runtime API applies them: one invocation at a time; `/response` and
//! `/error` for any id but the last one handed out get 400, and at the wrong moment 403;
//! `GET /next` while an invocation is open gets 403 (a second `/next` while one waits
//! replaces it: the runtime reconnected); `/runtime/init/error` only before the first
//! `/next`. The first caller gets a failed start (init error, exit during init, a bootstrap
//! that cannot be started); a runtime that exits or overruns its timeout is killed with its
//! whole process group and started again for the next invocation.
//!
//! Later work fits here: several instances (`--concurrency`) become a list of these
//! per-generation states sharing the queue; streaming and the Extensions API are new
//! routes and phases of the same machine.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::function::{Function, RUNTIME_API};
use crate::ids::{Ids, RequestId, unix_millis};
use crate::json::error_document;
use crate::process::{self, Exit, Usage};

/// Lambda's limit on a synchronous event and response: 6 MiB + 100 bytes.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 100;

/// How long a runtime may take from its start to its first `GET /next` (Lambda's init limit).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

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
}

/// What `GET /next` gets.
pub enum Next {
    /// An invocation to send.
    Event(Delivery),
    /// 403: not allowed now, for this reason.
    Refused(&'static str),
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
    Ready,
    Invoking,
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

/// The invocation the runtime is working on.
struct Current {
    id: RequestId,
    deadline: Instant,
    sent_at: Instant,
    keep_body: bool,
}

struct State {
    generation: u64,
    phase: Phase,
    runtime: Option<Runtime>,
    queue: VecDeque<Invocation>,
    current: Option<Current>,
    /// The id most recently handed to the runtime (POSTs name it until the next `/next`).
    last_id: Option<RequestId>,
    outcomes: HashMap<RequestId, Outcome>,
    init_failure: Option<InitFailure>,
    /// The ticket of the `GET /next` waiting for an event.
    parked: Option<u64>,
    tickets: u64,
    ids: Ids,
}

/// One function instance and its callers.
pub struct Sandbox {
    me: Weak<Sandbox>,
    function: Function,
    program: OsString,
    args: Vec<OsString>,
    /// Whether to print Lambda's `START`/`END`/`REPORT` lines and restarts on stderr.
    log: bool,
    /// The current generation, readable without the lock.
    generation: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
}

impl Sandbox {
    /// A sandbox for `program args` configured as `function`; nothing runs yet.
    pub fn new(
        function: Function,
        program: OsString,
        args: Vec<OsString>,
        log: bool,
    ) -> Arc<Sandbox> {
        Arc::new_cyclic(|me| Sandbox {
            me: me.clone(),
            function,
            program,
            args,
            log,
            generation: AtomicU64::new(0),
            state: Mutex::new(State {
                generation: 0,
                phase: Phase::Stopped,
                runtime: None,
                queue: VecDeque::new(),
                current: None,
                last_id: None,
                outcomes: HashMap::new(),
                init_failure: None,
                parked: None,
                tickets: 0,
                ids: Ids::new(),
            }),
            changed: Condvar::new(),
        })
    }

    /// The function's configuration.
    pub fn function(&self) -> &Function {
        &self.function
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
    pub fn submit(&self, invocation: Invocation) -> Outcome {
        let id = invocation.id;
        let mut s = self.lock();
        s.queue.push_back(invocation);
        self.pump(&mut s);
        loop {
            if let Some(outcome) = s.outcomes.remove(&id) {
                return outcome;
            }
            let limit = match &s.current {
                Some(current) if current.id == id => Some((current.deadline, false)),
                _ if s.phase == Phase::Init && s.queue.front().is_some_and(|i| i.id == id) => {
                    s.runtime.as_ref().map(|r| (r.started + INIT_LIMIT, true))
                }
                _ => None,
            };
            let now = Instant::now();
            s = match limit {
                Some((at, init)) if now >= at => {
                    self.time_out(&mut s, id, init);
                    s
                }
                Some((at, _)) => self.wait_for(s, at - now),
                None => self.wait(s),
            };
        }
    }

    /// Fails invocation `id` on its deadline (`init`: during the runtime's start), kills
    /// the runtime and starts another for whatever waits.
    fn time_out(&self, s: &mut State, id: RequestId, init: bool) {
        let (error, seconds) = if init {
            s.queue.retain(|i| i.id != id);
            ("Init timed out", INIT_LIMIT.as_secs_f64())
        } else {
            s.current = None;
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
        s.outcomes.insert(id, Outcome::Error { document });
        drop(self.end_generation(s));
        self.pump(s);
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
                Phase::Init | Phase::Ready | Phase::Invoking => break,
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
        Ok(())
    }

    /// Ends the current generation: kills its process group, stops its listener, forgets
    /// its invocation. Returns its watcher, whose result is the tree's usage.
    fn end_generation(&self, s: &mut State) -> Option<JoinHandle<Usage>> {
        if let Some(current) = s.current.take() {
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
        s.parked = None;
        s.last_id = None;
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
            Phase::Invoking => {
                if let Some(current) = s.current.take() {
                    if self.log {
                        self.report(&mut s, current.id, current.sent_at.elapsed(), "error");
                    }
                    let document = exit_document(&current.id, exit);
                    s.outcomes.insert(current.id, Outcome::Error { document });
                }
            }
            Phase::Init => self.fail_init(&mut s, InitFailure::Exited(exit)),
            Phase::InitFailed | Phase::Ready | Phase::Stopped => {}
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
    pub fn next(&self, generation: u64) -> Next {
        let mut s = self.lock();
        let mut ticket = None;
        loop {
            if s.generation != generation {
                return Next::Stale;
            }
            match s.phase {
                Phase::Init => {
                    s.phase = Phase::Ready;
                    if let Some(runtime) = s.runtime.as_mut() {
                        runtime.init = Some(runtime.started.elapsed());
                    }
                }
                Phase::Ready => {}
                Phase::Invoking => {
                    return Next::Refused(
                        "GET /next while an invocation is open: post its /response or /error first",
                    );
                }
                Phase::InitFailed => {
                    return Next::Refused(
                        "GET /next after /runtime/init/error: the runtime must exit",
                    );
                }
                Phase::Stopped => return Next::Stale,
            }
            match ticket {
                None => {
                    // The newest /next wins: a runtime that lost its connection asks again.
                    s.tickets += 1;
                    ticket = Some(s.tickets);
                    s.parked = ticket;
                    self.changed.notify_all();
                }
                Some(t) if s.parked != Some(t) => return Next::Stale,
                Some(_) => {}
            }
            if let Some(invocation) = s.queue.pop_front() {
                return Next::Event(self.deliver(&mut s, invocation));
            }
            s = self.wait(s);
        }
    }

    fn deliver(&self, s: &mut State, invocation: Invocation) -> Delivery {
        let now = Instant::now();
        let timeout = self.function.timeout;
        s.parked = None;
        s.phase = Phase::Invoking;
        s.last_id = Some(invocation.id);
        s.current = Some(Current {
            id: invocation.id,
            deadline: now + timeout,
            sent_at: now,
            keep_body: invocation.keep_body,
        });
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
        Delivery {
            id: invocation.id,
            deadline_ms: unix_millis() + timeout.as_millis() as u64,
            event: invocation.event,
            content_type: invocation.content_type,
            trace_id,
            client_context: invocation.client_context,
        }
    }

    /// Checks a `/response` or `/error` for `id` from `generation` before its body is read.
    pub fn check_post(&self, generation: u64, id: &[u8]) -> Result<(), Refusal> {
        let s = self.lock();
        check(&s, generation, id)
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
        check(&s, generation, id)?;
        let Some(current) = s.current.take() else {
            return Err(Refusal::WrongState("no invocation is open"));
        };
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
        s.phase = Phase::Ready;
        if self.log {
            self.report(&mut s, current.id, latency, status);
        }
        s.outcomes.insert(current.id, outcome);
        self.changed.notify_all();
        Ok(())
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
                (Phase::Ready, Some(runtime)) if s.parked.is_some() && s.queue.is_empty() => {
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

    /// Stops the runtime: kills its process group and waits until every process of it has
    /// been reaped. Returns what the whole tree used, from its spawn.
    pub fn stop(&self) -> Option<Usage> {
        let watcher = {
            let mut s = self.lock();
            self.end_generation(&mut s)
        };
        watcher.and_then(|w| w.join().ok())
    }
}

/// The checks of a POST for `id` from `generation`: stale, 400, 403.
fn check(s: &State, generation: u64, id: &[u8]) -> Result<(), Refusal> {
    if s.generation != generation {
        return Err(Refusal::Stale);
    }
    if s.last_id.is_none_or(|last| last.as_bytes() != id) {
        return Err(Refusal::WrongId);
    }
    match &s.current {
        Some(current) if s.phase == Phase::Invoking && current.id.as_bytes() == id => Ok(()),
        _ => Err(Refusal::WrongState(
            "this invocation already has its response or error",
        )),
    }
}

/// Connects to a listener once, so that its thread wakes from `accept` and sees it is done.
fn wake(api: SocketAddr) {
    let _ = TcpStream::connect_timeout(&api, Duration::from_millis(100));
}

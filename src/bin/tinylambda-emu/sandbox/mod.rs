//! The sandbox: one instance of the function. Callers ([`Sandbox::submit`]), the Runtime
//! and Extensions APIs ([`crate::server`]), the reaper and the timer meet here.
//!
//! - [`state`]: the state machine (the runtime's phases, one at a time or N at once), pure
//!   and under one mutex; every transition returns the [`state::Effect`]s it calls for;
//! - [`slots`]: the invocation queue, the open invocations and their deadlines;
//! - [`extensions`]: the extensions registered and their events;
//! - [`report`]: Lambda's `START`, `END` and `REPORT` lines, or in JSON format
//!   ([`platform_json`]) its `platform.start`, `platform.runtimeDone` and `platform.report`
//!   records;
//! - [`outcome`]: what callers get back, streams included;
//! - [`lifecycle`]: the runtime's processes: started, killed;
//! - [`timer`]: the one thread that ends whatever is due: the init limit, every
//!   invocation's deadline (queued ones too), the shutdown's grace period.
//!
//! Nothing that can block runs under the mutex: spawning, killing, connecting, `/proc`
//! reads and log lines are effects, run by the thread that caused them once the mutex is
//! released, in order. An outcome reaches its caller the same way, after the `REPORT` line
//! that ends it.
//!
//! Rules, as Lambda's Runtime API applies them:
//!
//! - One invocation at a time (on demand): `GET /next` while an invocation is open gets
//!   403 `InvalidStateTransition`; a second `/next` while one waits replaces it (the runtime
//!   reconnected). With `--concurrency N` (Lambda Managed Instances, where the runtime's
//!   environment has `AWS_LAMBDA_MAX_CONCURRENCY=N`), up to N `/next` requests and open
//!   invocations together; one more gets 403 `InvalidStateTransition`, after waiting
//!   `/next` requests whose connections have closed are forgotten (a runtime that
//!   reconnected is not refused). Lambda documents only that it accepts up to N; the 403
//!   is this emulator's choice, the status Lambda gives every other `/next` at the wrong
//!   moment. An invocation beyond N is throttled (429 `TooManyRequestsException`), as
//!   Lambda throttles an environment that is full (AWS's emulator answers it at once,
//!   `internal/lambda-managed-instances/invoke/invoke_router.go`).
//! - `/response` and `/error` for an open invocation are accepted; for an id that is not
//!   open and not among the last N handed out, 400 `InvalidRequestID`; for one that
//!   already has its result, or whose response is being streamed, 403
//!   (`internal/lambda/core/states.go`: no error once a response has begun); for one that
//!   timed out under Managed Instances, 410 `InvokeTimeout`. `/runtime/init/error` is only
//!   allowed before the first `/next`.
//! - A timeout fails its invocation with `Sandbox.Timedout`; one at a time, the runtime is
//!   then killed with every process it started and started again for the next invocation;
//!   under Managed Instances it keeps running.
//! - The first caller gets a failed start (init error, exit during init, a bootstrap that
//!   cannot be started, the init limit); a runtime that exits is started again for the
//!   next invocation, once what it posted before it ended has been read.

pub mod extensions;
pub mod lifecycle;
pub mod outcome;
pub mod platform_json;
pub mod report;
pub mod slots;
pub mod state;
pub mod timer;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::function::Function;
use crate::ids::RequestId;
use crate::process::reaper::{self, Reaped};
use crate::process::{Usage, terminate};
use lifecycle::{Launcher, ServeApi};
use state::{Effect, Effects, NotParked, Readiness, State};

pub use extensions::ExtensionRefusal;
pub use outcome::{Outcome, Piece, Pipe, Stream, StreamError};
pub use slots::{Invocation, Refusal};
pub use state::{
    Concurrency, Delivery, ExtensionNext, MAX_RESPONSE, MAX_STREAM, Next, Posted, Probe, Ready,
    Registered, Throttled,
};

/// How long [`Sandbox::shutdown`] waits for the reaper to have reaped every process.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// The state and the number of effects called for and not run yet, under one lock.
struct Locked {
    state: State,
    /// Effects returned by transitions and not run yet: [`Sandbox::shutdown`] waits for
    /// them (the last `REPORT` line, say) before the process may exit.
    pending: usize,
}

impl std::ops::Deref for Locked {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// One function instance and its callers.
pub struct Sandbox {
    me: Weak<Sandbox>,
    function: Arc<Function>,
    launcher: Launcher,
    concurrency: Concurrency,
    /// The current generation, readable without the lock.
    generation: AtomicU64,
    state: Mutex<Locked>,
    changed: Condvar,
    /// Held by [`Sandbox::shutdown`], so that two of them (a signal and the end of
    /// `--invoke`) run one after the other.
    shutting_down: Mutex<()>,
}

impl Sandbox {
    /// A sandbox for `program args` configured as `function`, sharing the runtime as
    /// `concurrency` says, its Runtime API served by `serve_api`; writes Lambda's log lines
    /// when `log`. Its timer and the process-wide reaper start now; no runtime runs yet.
    pub fn new(
        function: Function,
        program: OsString,
        args: Vec<OsString>,
        log: bool,
        concurrency: Concurrency,
        serve_api: ServeApi,
    ) -> Result<Arc<Sandbox>, String> {
        let function = Arc::new(function);
        let sandbox = Arc::new_cyclic(|me| Sandbox {
            me: me.clone(),
            function: function.clone(),
            launcher: Launcher::new(program, args, serve_api),
            concurrency,
            generation: AtomicU64::new(0),
            state: Mutex::new(Locked {
                state: State::new(function, concurrency, log),
                pending: 0,
            }),
            changed: Condvar::new(),
            shutting_down: Mutex::new(()),
        });
        let me = Arc::downgrade(&sandbox);
        reaper::start(move |reaped| {
            if let Some(sandbox) = me.upgrade() {
                sandbox.reaped(reaped);
            }
        })
        .map_err(|e| format!("cannot start the reaper thread: {e}"))?;
        timer::start(sandbox.clone()).map_err(|e| format!("cannot start the timer thread: {e}"))?;
        Ok(sandbox)
    }

    /// The function's configuration.
    pub fn function(&self) -> &Function {
        &self.function
    }

    /// N: how many invocations the runtime may work on at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency.n()
    }

    /// Whether `generation` is still the current one (a cheap check for connections).
    pub fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Locked>) -> MutexGuard<'a, Locked> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state under the lock and wakes every waiter; returns its result
    /// and the effects it called for, not run yet.
    fn update<R>(&self, f: impl FnOnce(&mut State, &mut Effects) -> R) -> (R, Effects) {
        let mut fx = Effects::new();
        let mut s = self.lock();
        let result = f(&mut s, &mut fx);
        self.settle(&mut s, &fx);
        (result, fx)
    }

    /// [`Sandbox::update`], then runs the effects.
    fn apply<R>(&self, f: impl FnOnce(&mut State, &mut Effects) -> R) -> R {
        let (result, fx) = self.update(f);
        self.run(fx);
        result
    }

    /// After a change that called for `fx`: counts them as pending, publishes the
    /// generation and wakes every waiter.
    fn settle(&self, s: &mut Locked, fx: &Effects) {
        s.pending += fx.len();
        self.generation.store(s.generation(), Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Runs `fx` in order, and whatever they call for in turn (counted as pending by the
    /// transitions that returned them).
    fn run(&self, fx: Effects) {
        if fx.is_empty() {
            return;
        }
        let mut queue: VecDeque<Effect> = fx.into();
        let mut done = 0;
        while let Some(effect) = queue.pop_front() {
            done += 1;
            match effect {
                Effect::Spawn(generation) => queue.extend(self.launch(generation)),
                Effect::Kill { generation, api } => queue.extend(self.kill(generation, api)),
                Effect::Wake(api) => {
                    lifecycle::wake(api);
                }
                Effect::Terminate(pid) => terminate(pid),
                Effect::Say(line) => crate::say_line(line),
                Effect::Report(report) => {
                    crate::say_line(report.lines(self.function.logging.platform_format()));
                }
                Effect::Deliver(reply, outcome) => {
                    let _ = reply.send(outcome);
                }
                Effect::EndStream(pipe, end) => {
                    pipe.end(end);
                }
            }
        }
        let mut s = self.lock();
        s.pending = s.pending.saturating_sub(done);
        if s.pending == 0 {
            self.changed.notify_all();
        }
    }

    /// Starts generation `generation`'s runtime (see [`lifecycle`]).
    fn launch(&self, generation: u64) -> Effects {
        let launched = self.launcher.launch(
            &self.function,
            self.me.clone(),
            generation,
            |api| self.update(|s, _| s.listening(generation, api)).0,
            |spawned| {
                self.update(|s, _| s.spawned(generation, spawned.pid, spawned.started));
            },
        );
        match launched {
            Ok(()) => Effects::new(),
            Err(failure) => {
                self.update(|s, fx| {
                    s.spawn_failed(generation, failure.why, failure.api, Instant::now(), fx)
                })
                .1
            }
        }
    }

    /// Kills every process generation `generation`'s runtime started (see [`lifecycle`]).
    fn kill(&self, generation: u64, api: Option<SocketAddr>) -> Effects {
        let marker = self.launcher.kill(api);
        self.update(|s, fx| s.killed(generation, marker, Instant::now(), fx))
            .1
    }

    /// A report from the reaper.
    fn reaped(&self, reaped: Reaped) {
        self.apply(|s, fx| match reaped {
            Reaped::Exited { pid, exit } => s.exited(pid, exit, Instant::now(), fx),
            Reaped::NoChildren => s.no_children(Instant::now(), fx),
        });
    }

    /// A fresh request id.
    pub fn new_id(&self) -> RequestId {
        self.lock().new_id()
    }

    /// Starts the runtime now, before any invocation (so that a bootstrap that cannot be
    /// started is reported at once, and its init overlaps the wait for the first caller).
    pub fn start(&self) -> Result<(), String> {
        self.apply(|s, fx| s.start(Instant::now(), fx));
        match self.lock().take_spawn_failure() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Runs `invocation` and waits for its outcome; 429 (`Throttled`) under Managed
    /// Instances when N are in flight. The sandbox's timer ends it on its deadline, whatever
    /// the caller does; a streamed response is returned as soon as it starts.
    pub fn submit(&self, invocation: Invocation) -> Result<Outcome, Throttled> {
        let id = invocation.id;
        let (reply, outcome) = sync_channel(1);
        self.apply(|s, fx| s.submit(invocation, reply, Instant::now(), fx))?;
        Ok(outcome.recv().unwrap_or_else(|_| {
            Outcome::error(
                "Runtime.ExitError",
                &format!("RequestId: {} Error: the sandbox ended", id.as_str()),
            )
        }))
    }

    /// `GET /next` from generation `generation`: waits for an invocation and takes it.
    /// `probe` tells whether the request's connection has closed (needed when N > 1).
    pub fn next(&self, generation: u64, probe: Option<Probe>) -> Next {
        let parked = self.apply(|s, fx| s.park(generation, probe, Instant::now(), fx));
        let ticket = match parked {
            Ok(ticket) => ticket,
            Err(NotParked::Refused(why)) => return Next::Refused(why),
            Err(NotParked::Stale) => return Next::Stale,
        };
        let mut s = self.lock();
        loop {
            let mut fx = Effects::new();
            let next = s.poll_next(generation, ticket, Instant::now(), &mut fx);
            if matches!(next, Next::Wait) {
                s = self.wait(s);
                continue;
            }
            self.settle(&mut s, &fx);
            drop(s);
            // START goes out before the event does.
            self.run(fx);
            return next;
        }
    }

    /// Checks a `/response` or `/error` for `id` from `generation` before its body is read.
    pub fn check_post(&self, generation: u64, id: &[u8]) -> Result<(), Refusal> {
        self.lock().check_post(generation, id)
    }

    /// Records what the runtime posted for `id`; `done` is when its body was read.
    pub fn complete(
        &self,
        generation: u64,
        id: &[u8],
        posted: Posted<'_>,
        done: Instant,
    ) -> Result<(), Refusal> {
        self.apply(|s, fx| s.complete(generation, id, posted, done, fx))
    }

    /// A `/response` for `id` from `generation` in streaming mode has begun: hands its
    /// caller an [`Outcome::Stream`] and returns the pipe to push its pieces into.
    pub fn start_stream(
        &self,
        generation: u64,
        id: &[u8],
        content_type: Option<String>,
    ) -> Result<Arc<Pipe>, Refusal> {
        self.apply(|s, fx| s.start_stream(generation, id, content_type, fx))
    }

    /// The streamed response for `id` from `generation` has ended (with `error`, if any) at
    /// `done`, after `produced` bytes. Returns its latency; refused when the emulator had
    /// ended it already.
    pub fn finish_stream(
        &self,
        generation: u64,
        id: &[u8],
        error: Option<StreamError>,
        produced: u64,
        done: Instant,
    ) -> Result<Duration, Refusal> {
        self.apply(|s, fx| s.finish_stream(generation, id, error, produced, done, fx))
    }

    /// `POST /runtime/init/error` from `generation`, with the document to give the first
    /// caller.
    pub fn init_error(&self, generation: u64, document: Vec<u8>) -> Result<(), Refusal> {
        self.apply(|s, fx| s.init_error(generation, document, Instant::now(), fx))
    }

    /// A connection to generation `generation`'s Runtime API, from port `peer`, was
    /// accepted: a guard that counts it until it closes, or `None` when the generation has
    /// ended.
    pub fn connection(&self, generation: u64, peer: u16) -> Option<ConnectionGuard> {
        let open = self.apply(|s, fx| s.connection_opened(generation, peer, Instant::now(), fx));
        open.then(|| ConnectionGuard {
            sandbox: self.me.clone(),
            generation,
        })
    }

    /// `POST /2020-01-01/extension/register` from `generation`, with the
    /// `Lambda-Extension-Name` header `name` and the request body.
    pub fn register(&self, generation: u64, name: Option<&[u8]>, body: &[u8]) -> Registered {
        self.apply(|s, fx| s.register(generation, name, body, fx))
    }

    /// `GET /2020-01-01/extension/event/next` from `generation` for the extension whose
    /// `Lambda-Extension-Identifier` is `id`: waits for its next event.
    pub fn extension_next(&self, generation: u64, id: Option<&[u8]>) -> ExtensionNext {
        let mut s = self.lock();
        let mut asking = true;
        loop {
            let mut fx = Effects::new();
            let next = s.extension_next(generation, id, asking, Instant::now(), &mut fx);
            asking = false;
            let waiting = matches!(next, ExtensionNext::Wait);
            if waiting && fx.is_empty() {
                s = self.wait(s);
                continue;
            }
            self.settle(&mut s, &fx);
            drop(s);
            self.run(fx);
            if !waiting {
                return next;
            }
            s = self.lock();
        }
    }

    /// Waits until the runtime waits in `GET /next` with nothing to do (for the bench).
    /// Fails if it ends, reports an init error, or overruns the init limit first.
    pub fn wait_ready(&self) -> Result<Ready, String> {
        let mut s = self.lock();
        loop {
            match s.readiness() {
                Readiness::Ready(ready) => return Ok(ready),
                Readiness::Failed(why) => return Err(why),
                Readiness::Wait => s = self.wait(s),
            }
        }
    }

    /// Whether an extension is registered (the runtime then gets SIGTERM at shutdown).
    pub fn has_extensions(&self) -> bool {
        self.lock().has_extensions()
    }

    /// Stops the runtime the way Lambda ends an execution environment (see
    /// [`State::shutdown`]) and waits until every process it started has been killed and
    /// reaped, and every effect has run (the last log lines are written). Returns what they
    /// all used, from the first spawn.
    pub fn shutdown(&self) -> Usage {
        let _one_at_a_time = self
            .shutting_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.apply(|s, fx| s.shutdown(Instant::now(), fx));
        let mut s = self.lock();
        while !s.is_stopped() || s.pending > 0 {
            s = self.wait(s);
        }
        drop(s);
        reaper::wait_idle(REAP_LIMIT);
        reaper::usage()
    }
}

/// Counts one Runtime API connection of a generation while it is open (see
/// [`Sandbox::connection`]).
pub struct ConnectionGuard {
    sandbox: Weak<Sandbox>,
    generation: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.upgrade() {
            let generation = self.generation;
            sandbox.apply(|s, fx| s.connection_closed(generation, Instant::now(), fx));
        }
    }
}

//! The runtime's phases: started (its process spawned outside the lock), stopped (every
//! process it started killed before anything starts again), ended by itself (its
//! connections drained first), and shut down (Lambda's Shutdown phase).

use super::*;

impl State {
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
    pub(super) fn stop(&mut self, now: Instant, fx: &mut Effects) {
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
    pub(super) fn end_generation(&mut self) {
        self.generation += 1;
        self.parked.clear();
        self.slots.forget_ids();
        self.extensions.clear();
        self.connections = 0;
    }

    /// Fails every open invocation (the runtime is gone): its caller gets `document`, a
    /// stream its error; an answered one is over.
    pub(super) fn fail_open(
        &mut self,
        now: Instant,
        fx: &mut Effects,
        document: impl Fn(&RequestId) -> Vec<u8>,
    ) {
        for open in std::mem::take(&mut self.slots.open) {
            let duration = now.saturating_duration_since(open.sent_at);
            match open.holding {
                Holding::Working => {
                    let document = document(&open.id);
                    let error_type = error_type_of(&document).unwrap_or_default();
                    self.report(fx, open.id, duration, Status::Error(error_type));
                    if let Some(reply) = open.reply {
                        fx.push(Effect::Deliver(reply, Outcome::Error { document }));
                    }
                }
                Holding::Streaming(pipe) => {
                    let error = StreamError::of_document(&error_document(
                        "Runtime.TruncatedResponse",
                        "the runtime ended before its streamed response did",
                    ));
                    let status = Status::Error(error.error_type.clone());
                    self.report(fx, open.id, duration, status);
                    let end = StreamEnd {
                        error: Some(error),
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
    pub(super) fn finish_exit_if_drained(&mut self, now: Instant, fx: &mut Effects) {
        if let Phase::Exiting(exiting) = &self.phase {
            if exiting.killed && exiting.drained && self.connections == 0 {
                self.finish_exit(now, fx);
            }
        }
    }

    pub(super) fn finish_exit(&mut self, now: Instant, fx: &mut Effects) {
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

    pub(super) fn finish_shutdown_if_done(&mut self, now: Instant, fx: &mut Effects) {
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
}

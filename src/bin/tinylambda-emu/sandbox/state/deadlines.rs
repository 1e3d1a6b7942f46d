//! Every deadline of the sandbox, in one place: the init limit, each invocation's (queued
//! and open), the end of a shutdown's grace period and of an exit's drain. The timer
//! (`crate::sandbox::timer`) sleeps until [`State::next_deadline`] and calls
//! [`State::expire`].

use super::*;

impl State {
    /// The earliest deadline: the init limit, an invocation's, the end of a shutdown's
    /// grace period or of an exit's drain.
    pub fn next_deadline(&self) -> Option<Instant> {
        let phase = self.next_phase_deadline();
        phase.into_iter().chain(self.slots.next_deadline()).min()
    }

    /// The deadline of the phase itself, if it has one.
    pub(super) fn next_phase_deadline(&self) -> Option<Instant> {
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

    pub(super) fn init_timed_out(&mut self, now: Instant, fx: &mut Effects) {
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

    pub(super) fn expire_open(&mut self, now: Instant, fx: &mut Effects) {
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

    pub(super) fn expire_queued(&mut self, now: Instant, fx: &mut Effects) {
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
}

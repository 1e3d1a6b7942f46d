//! The Runtime API's and the Extensions API's transitions: `GET /next` waiting and
//! taking an event, posts for an invocation (buffered and streamed), `/init/error`, the
//! connections of a generation, and extensions registering and waiting for events.

use super::*;

impl State {
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
    pub(super) fn admit(&mut self, now: Instant, fx: &mut Effects) -> Result<(), String> {
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

    pub(super) fn deliver(&mut self, queued: Queued, now: Instant, fx: &mut Effects) -> Delivery {
        let timeout = self.function.timeout;
        let invocation = &queued.invocation;
        let format = self.function.logging.platform_format();
        self.say(
            fx,
            start_line(&invocation.id, &self.function.version, format),
        );
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

    pub(super) fn check(&mut self, generation: u64, id: &[u8]) -> Result<usize, Refusal> {
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
                Status::Success {
                    produced: body.len() as u64,
                },
            ),
            Posted::Error(body, error_type) => {
                // The type the runtime gave in its header, else its document's.
                let error_type = error_type
                    .filter(|t| !t.is_empty())
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .or_else(|| error_type_of(body))
                    .unwrap_or_else(|| "Runtime.Unknown".into());
                let document = if body.is_empty() {
                    error_document(&error_type, "")
                } else {
                    body.to_vec()
                };
                (Outcome::Error { document }, Status::Error(error_type))
            }
            Posted::TooLarge => (
                Outcome::error(
                    "Function.ResponseSizeTooLarge",
                    &format!(
                        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
                    ),
                ),
                Status::Error("Function.ResponseSizeTooLarge".into()),
            ),
            Posted::BadMode => (
                Outcome::error(
                    "Runtime.InvalidResponseModeHeader",
                    "Lambda-Runtime-Function-Response-Mode must be streaming when it is set",
                ),
                Status::Error("Runtime.InvalidResponseModeHeader".into()),
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
    pub(super) fn answered(&mut self, at: usize, status: Status, now: Instant, fx: &mut Effects) {
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

    /// The streamed response for `id` from `generation` has ended (with `error`, if any)
    /// at `done`, after `produced` bytes: its caller gets the end. Returns its latency;
    /// refused when the invocation was already ended by the emulator (a timeout).
    pub fn finish_stream(
        &mut self,
        generation: u64,
        id: &[u8],
        error: Option<StreamError>,
        produced: u64,
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
        let status = match &error {
            Some(error) => Status::Error(error.error_type.clone()),
            None => Status::Success { produced },
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
}

//! The state machine on its own: transitions driven with made-up times and connections,
//! checked through the effects they call for and what callers receive.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};

use super::*;
use crate::sandbox::outcome::Piece;
use crate::sandbox::{extensions, slots};

const TIMEOUT: Duration = Duration::from_secs(3);
const PID: i32 = 4242;

fn api() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9001))
}

fn state(concurrency: Concurrency) -> State {
    let function = Function::new(
        OsStr::new("./bootstrap"),
        &[],
        TIMEOUT,
        None,
        crate::logging::Logging::default(),
    )
    .expect("a default configuration");
    State::new(Arc::new(function), concurrency, true)
}

/// Runs what reaches callers (outcomes, stream ends) and returns the rest.
fn run(fx: Effects) -> Vec<Effect> {
    let mut rest = Vec::new();
    for effect in fx {
        match effect {
            Effect::Deliver(reply, outcome) => {
                let _ = reply.send(outcome);
            }
            Effect::EndStream(pipe, end) => {
                pipe.end(end);
            }
            other => rest.push(other),
        }
    }
    rest
}

fn kills(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Kill { .. }))
        .count()
}

fn reports(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Report(report) => Some(report.status.name()),
            _ => None,
        })
        .collect()
}

/// A sandbox whose runtime was spawned at `t0` and asked for its first event.
fn running(concurrency: Concurrency, t0: Instant) -> (State, u64) {
    let mut s = state(concurrency);
    let mut fx = Effects::new();
    s.start(t0, &mut fx);
    let generation = s.generation();
    assert!(matches!(fx.as_slice(), [Effect::Spawn(g)] if *g == generation));
    assert!(s.listening(generation, api()));
    assert!(s.spawned(generation, PID, t0));
    (s, generation)
}

/// Submits an invocation at `now`; its id and where its outcome arrives.
fn submit(s: &mut State, now: Instant) -> (RequestId, Receiver<Outcome>) {
    let id = s.new_id();
    let (reply, outcome) = sync_channel(1);
    let invocation = Invocation {
        id,
        event: Arc::from(&b"{}"[..]),
        content_type: None,
        trace_id: None,
        client_context: None,
        tenant_id: None,
        keep_body: true,
    };
    let mut fx = Effects::new();
    s.submit(invocation, reply, now, &mut fx)
        .expect("not throttled");
    run(fx);
    (id, outcome)
}

/// A `GET /next` at `now` that gets an event.
fn next(s: &mut State, generation: u64, now: Instant) -> Delivery {
    let mut fx = Effects::new();
    let ticket = s.park(generation, None, now, &mut fx).expect("parked");
    match s.poll_next(generation, ticket, now, &mut fx) {
        Next::Event(delivery) => delivery,
        other => panic!("no event: {other:?}"),
    }
}

fn response(s: &mut State, generation: u64, id: RequestId, now: Instant) -> Vec<Effect> {
    let mut fx = Effects::new();
    let posted = Posted::Response(b"done", None);
    s.complete(generation, id.as_bytes(), posted, now, &mut fx)
        .expect("accepted");
    run(fx)
}

fn expire(s: &mut State, now: Instant) -> Vec<Effect> {
    let mut fx = Effects::new();
    s.expire(now, &mut fx);
    run(fx)
}

fn error_type(outcome: Result<Outcome, TryRecvError>) -> String {
    match outcome {
        Ok(Outcome::Error { document }) => crate::json::error_type_of(&document)
            .unwrap_or_default()
            .to_owned(),
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn one_at_a_time_an_answered_invocation_lasts_until_the_next_get_next() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (id, outcome) = submit(&mut s, t0);
    let delivery = next(&mut s, g, t0);
    assert_eq!(delivery.id, id);
    let at = t0 + Duration::from_millis(5);
    assert!(
        reports(&response(&mut s, g, id, at)).is_empty(),
        "not over yet"
    );
    assert!(matches!(outcome.try_recv(), Ok(Outcome::Response { .. })));
    // The runtime comes back: the invocation is over.
    let mut fx = Effects::new();
    s.park(g, None, t0 + Duration::from_millis(7), &mut fx)
        .expect("parked");
    assert_eq!(reports(&run(fx)), ["success"]);
    assert_eq!(s.next_deadline(), None, "nothing left to time");
}

#[test]
fn a_runtime_that_answers_and_never_asks_again_overruns_its_deadline() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (id, outcome) = submit(&mut s, t0);
    next(&mut s, g, t0);
    response(&mut s, g, id, t0);
    assert!(matches!(outcome.try_recv(), Ok(Outcome::Response { .. })));
    // A second caller waits behind it.
    let (_, second) = submit(&mut s, t0 + Duration::from_secs(1));
    assert_eq!(s.next_deadline(), Some(t0 + TIMEOUT));
    let effects = expire(&mut s, t0 + TIMEOUT);
    assert_eq!(reports(&effects), ["timeout"]);
    assert_eq!(kills(&effects), 1, "the runtime is stopped");
    assert!(
        outcome.try_recv().is_err(),
        "its caller had its answer once"
    );
    assert!(matches!(second.try_recv(), Err(TryRecvError::Empty)));
    // Once it is killed, a new runtime starts for the second caller.
    let mut fx = Effects::new();
    s.killed(g, None, t0 + TIMEOUT, &mut fx);
    assert!(matches!(fx.as_slice(), [Effect::Spawn(next)] if *next == g + 2));
}

#[test]
fn nothing_starts_before_the_previous_runtime_is_killed() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (_, first) = submit(&mut s, t0);
    next(&mut s, g, t0);
    expire(&mut s, t0 + TIMEOUT);
    assert_eq!(error_type(first.try_recv()), "Sandbox.Timedout");
    let mut fx = Effects::new();
    submit(&mut s, t0 + TIMEOUT);
    s.start(t0 + TIMEOUT, &mut fx);
    assert!(fx.is_empty(), "still stopping: {fx:?}");
    assert!(!s.is_stopped());
    s.killed(g, None, t0 + TIMEOUT, &mut fx);
    assert!(matches!(fx.as_slice(), [Effect::Spawn(_)]));
}

#[test]
fn a_queued_invocation_the_runtime_never_takes_times_out() {
    // Managed Instances, N = 1: the runtime's only loop hangs on a timed-out invocation.
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::Managed(1), t0);
    let (hung, hung_outcome) = submit(&mut s, t0);
    next(&mut s, g, t0);
    let effects = expire(&mut s, t0 + TIMEOUT);
    assert_eq!(kills(&effects), 0, "the environment keeps running");
    assert_eq!(error_type(hung_outcome.try_recv()), "Sandbox.Timedout");
    let (_, waiting) = submit(&mut s, t0 + TIMEOUT);
    let limit = t0 + TIMEOUT + slots::queue_limit(TIMEOUT);
    assert_eq!(s.next_deadline(), Some(limit));
    expire(&mut s, limit);
    assert_eq!(error_type(waiting.try_recv()), "Sandbox.Timedout");
    // The late answer for the timed-out one: 410, once.
    let mut fx = Effects::new();
    let late = s.complete(
        g,
        hung.as_bytes(),
        Posted::Response(b"", None),
        limit,
        &mut fx,
    );
    assert_eq!(late, Err(Refusal::Gone));
}

#[test]
fn under_managed_instances_a_timeout_fails_only_its_own_invocation() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::Managed(2), t0);
    let (_, first) = submit(&mut s, t0);
    next(&mut s, g, t0);
    let later = t0 + Duration::from_secs(1);
    let (second_id, second) = submit(&mut s, later);
    next(&mut s, g, later);
    let effects = expire(&mut s, t0 + TIMEOUT);
    assert_eq!((kills(&effects), reports(&effects)), (0, vec!["timeout"]));
    assert_eq!(error_type(first.try_recv()), "Sandbox.Timedout");
    let effects = response(&mut s, g, second_id, t0 + TIMEOUT);
    assert_eq!(reports(&effects), ["success"], "over with its response");
    assert!(matches!(second.try_recv(), Ok(Outcome::Response { .. })));
}

#[test]
fn under_managed_instances_one_invocation_beyond_n_is_throttled() {
    let t0 = Instant::now();
    let (mut s, _) = running(Concurrency::Managed(2), t0);
    submit(&mut s, t0);
    submit(&mut s, t0);
    let (reply, _outcome) = sync_channel(1);
    let invocation = Invocation {
        id: s.new_id(),
        event: Arc::from(&b"{}"[..]),
        content_type: None,
        trace_id: None,
        client_context: None,
        tenant_id: None,
        keep_body: true,
    };
    let mut fx = Effects::new();
    assert_eq!(s.submit(invocation, reply, t0, &mut fx), Err(Throttled));
}

#[test]
fn what_reached_the_api_before_the_runtime_ended_counts() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (id, outcome) = submit(&mut s, t0);
    next(&mut s, g, t0);
    let mut fx = Effects::new();
    assert!(s.connection_opened(g, 40_001, t0, &mut fx));
    s.exited(PID, Exit::Code(0), t0, &mut fx);
    assert_eq!(kills(&run(std::mem::take(&mut fx))), 1, "what it left goes");
    // Its response, read after the exit was seen, still counts.
    response(&mut s, g, id, t0);
    assert!(matches!(outcome.try_recv(), Ok(Outcome::Response { .. })));
    // Killed; the listener has not yet accepted the marker connection.
    s.killed(g, Some(40_002), t0, &mut fx);
    s.connection_closed(g, t0, &mut fx);
    assert!(
        !s.is_stopped(),
        "connections made before the marker may be unread"
    );
    assert!(s.connection_opened(g, 40_002, t0, &mut fx));
    s.connection_closed(g, t0, &mut fx);
    assert!(s.is_stopped());
    let effects = run(fx);
    assert_eq!(reports(&effects), ["success"]);
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Say(l) if l.contains("the runtime ended (exit status 0)"))
        )
    );
}

#[test]
fn an_invocation_open_when_the_runtime_ends_fails_with_its_exit() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (_, outcome) = submit(&mut s, t0);
    next(&mut s, g, t0);
    let mut fx = Effects::new();
    s.exited(PID, Exit::Code(3), t0, &mut fx);
    s.killed(g, None, t0, &mut fx);
    run(fx);
    assert!(s.is_stopped());
    let Ok(Outcome::Error { document }) = outcome.try_recv() else {
        panic!("no error");
    };
    let document = String::from_utf8(document).unwrap();
    assert!(
        document.contains("Runtime exited with error: exit status 3"),
        "{document}"
    );
    // A drain that never ends is ended by the timer.
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let mut fx = Effects::new();
    assert!(s.connection_opened(g, 40_003, t0, &mut fx));
    s.exited(PID, Exit::Code(0), t0, &mut fx);
    s.killed(g, None, t0, &mut fx);
    assert_eq!(s.next_deadline(), Some(t0 + EXIT_DRAIN));
    expire(&mut s, t0 + EXIT_DRAIN);
    assert!(s.is_stopped());
}

#[test]
fn an_error_in_the_middle_of_a_stream_is_forbidden() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (id, outcome) = submit(&mut s, t0);
    next(&mut s, g, t0);
    let mut fx = Effects::new();
    let pipe = s.start_stream(g, id.as_bytes(), None, &mut fx).unwrap();
    run(std::mem::take(&mut fx));
    let Ok(Outcome::Stream(stream)) = outcome.try_recv() else {
        panic!("no stream");
    };
    let refused = s.complete(g, id.as_bytes(), Posted::Error(b"{}", None), t0, &mut fx);
    assert!(matches!(refused, Err(Refusal::WrongState(why)) if why.contains("streamed")));
    assert!(pipe.push(b"data".to_vec()));
    let latency = s.finish_stream(
        g,
        id.as_bytes(),
        None,
        7,
        t0 + Duration::from_millis(3),
        &mut fx,
    );
    assert_eq!(latency, Ok(Duration::from_millis(3)));
    run(fx);
    assert!(matches!(stream.next(), Piece::Data(d) if d == b"data"));
    assert!(matches!(stream.next(), Piece::End(end) if end.error.is_none()));
}

#[test]
fn a_stream_that_overruns_ends_with_the_timeout_whatever_its_caller_does() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let (id, outcome) = submit(&mut s, t0);
    next(&mut s, g, t0);
    let mut fx = Effects::new();
    s.start_stream(g, id.as_bytes(), None, &mut fx).unwrap();
    run(fx);
    let Ok(Outcome::Stream(stream)) = outcome.try_recv() else {
        panic!("no stream");
    };
    let effects = expire(&mut s, t0 + TIMEOUT);
    assert_eq!(kills(&effects), 1);
    match stream.next() {
        Piece::End(end) => {
            assert_eq!(
                end.error.map(|e| e.error_type).as_deref(),
                Some("Sandbox.Timedout")
            );
        }
        Piece::Data(_) => panic!("no end"),
    }
    // The runtime's own end, later, is refused as stale.
    let mut fx = Effects::new();
    let late = s.finish_stream(g, id.as_bytes(), None, 0, t0 + TIMEOUT, &mut fx);
    assert_eq!(late, Err(Refusal::Stale));
}

#[test]
fn get_next_follows_the_runtime_apis_rules() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    submit(&mut s, t0);
    next(&mut s, g, t0);
    let mut fx = Effects::new();
    assert!(matches!(
        s.park(g, None, t0, &mut fx),
        Err(NotParked::Refused(_))
    ));
    assert!(matches!(
        s.park(g + 1, None, t0, &mut fx),
        Err(NotParked::Stale)
    ));
    let mut fx = Effects::new();
    assert_eq!(
        s.complete(g, b"not-an-id", Posted::Response(b"", None), t0, &mut fx),
        Err(Refusal::WrongId)
    );
}

#[test]
fn the_init_limit_fails_the_first_caller_and_stops_the_runtime() {
    let t0 = Instant::now();
    let mut s = state(Concurrency::OnDemand);
    let mut fx = Effects::new();
    s.start(t0, &mut fx);
    let g = s.generation();
    s.spawned(g, PID, t0);
    let (_, outcome) = submit(&mut s, t0);
    assert_eq!(s.next_deadline(), Some(t0 + INIT_LIMIT));
    let effects = expire(&mut s, t0 + INIT_LIMIT);
    assert_eq!(kills(&effects), 1);
    let Ok(Outcome::Error { document }) = outcome.try_recv() else {
        panic!("no error");
    };
    assert!(String::from_utf8_lossy(&document).contains("Init timed out after 10.00 seconds"));
}

#[test]
fn a_bootstrap_that_cannot_start_is_reported_at_once() {
    let t0 = Instant::now();
    let mut s = state(Concurrency::OnDemand);
    let mut fx = Effects::new();
    s.start(t0, &mut fx);
    let g = s.generation();
    s.spawn_failed(
        g,
        "cannot start ./bootstrap: denied".into(),
        Some(api()),
        t0,
        &mut fx,
    );
    assert!(matches!(fx.as_slice(), [Effect::Spawn(_), Effect::Wake(_)]));
    assert_eq!(
        s.take_spawn_failure().as_deref(),
        Some("cannot start ./bootstrap: denied")
    );
    assert!(s.is_stopped());
}

#[test]
fn a_stop_while_the_runtime_is_spawned_waits_for_the_spawn() {
    let t0 = Instant::now();
    let mut s = state(Concurrency::OnDemand);
    let mut fx = Effects::new();
    s.start(t0, &mut fx);
    let g = s.generation();
    let mut fx = Effects::new();
    s.shutdown(t0, &mut fx);
    assert!(matches!(
        fx.as_slice(),
        [Effect::Kill { generation, api: None }] if *generation == g
    ));
    assert!(
        !s.listening(g, api()) && !s.spawned(g, PID, t0),
        "unwanted now"
    );
    s.killed(g, None, t0, &mut fx);
    assert!(s.is_stopped());
    let mut fx = Effects::new();
    s.start(t0, &mut fx);
    assert!(fx.is_empty(), "nothing starts after a shutdown");
}

#[test]
fn a_shutdown_with_an_extension_gives_the_runtime_its_grace_period() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let mut fx = Effects::new();
    let registered = s.register(g, Some(b"ext"), br#"{"events":["SHUTDOWN"]}"#, &mut fx);
    assert!(matches!(registered, Registered::Ok { .. }));
    s.park(g, None, t0, &mut fx).expect("parked");
    let mut fx = Effects::new();
    s.shutdown(t0, &mut fx);
    assert!(matches!(fx.first(), Some(Effect::Terminate(PID))));
    assert_eq!(s.next_deadline(), Some(t0 + extensions::SHUTDOWN_EXTERNAL));
    // It ends, and its extension asks for more after its SHUTDOWN: done early.
    let mut fx = Effects::new();
    s.exited(PID, Exit::Code(0), t0, &mut fx);
    assert!(fx.is_empty(), "its extension is not done yet");
    let id = match s.register(g, Some(b"late"), b"{}", &mut fx) {
        Registered::Refused(refusal) => refusal.error_type,
        _ => "registered",
    };
    assert_eq!(id, "Extension.RegistrationClosed");
    s.no_children(t0, &mut fx);
    assert_eq!(kills(&fx), 1, "everything is gone: the shutdown ends");
}

#[test]
fn a_shutdown_grace_period_ends_with_a_kill() {
    let t0 = Instant::now();
    let (mut s, g) = running(Concurrency::OnDemand, t0);
    let mut fx = Effects::new();
    s.register(g, Some(b"internal"), b"{}", &mut fx);
    s.shutdown(t0, &mut fx);
    let effects = expire(&mut s, t0 + extensions::SHUTDOWN_INTERNAL);
    assert_eq!(kills(&effects), 1);
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Say(l) if l.contains("still running 500 ms after SIGTERM"))
        )
    );
}

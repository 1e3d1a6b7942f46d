//! Concurrent invocations (`cargo test --features concurrent`): with
//! `AWS_LAMBDA_MAX_CONCURRENCY=3`, three loops hold three `/next` requests on three
//! connections, never a fourth, and their handlers run at the same time.
#![cfg(feature = "concurrent")]

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use support::{accepted, bootstrap_command, child, event, read_request, run_child};
use tinylambda::{Context, Error};

const LOOPS: usize = 3;

/// The connections of `loops` loops, each with a `/next` waiting for an event.
fn waiting_loops(listener: &TcpListener, loops: usize) -> Vec<TcpStream> {
    let mut conns = Vec::new();
    for _ in 0..loops {
        let mut conn = support::accept_loop(listener, Duration::from_secs(30));
        let (line, _) = read_request(&mut conn);
        assert!(
            line.starts_with("GET /2018-06-01/runtime/invocation/next "),
            "{line}"
        );
        conns.push(conn);
    }
    conns
}

#[test]
fn three_loops_run_three_invocations_at_once_and_never_ask_for_a_fourth() {
    if child() {
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static ALL_IN: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
        tinylambda::run_concurrent(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            // Count in, then wait (at most 10 s) until all three handlers are running.
            RUNNING.fetch_add(1, Ordering::SeqCst);
            ALL_IN.1.notify_all();
            let guard = ALL_IN.0.lock().unwrap();
            let (_guard, timeout) = ALL_IN
                .1
                .wait_timeout_while(guard, Duration::from_secs(10), |_| {
                    RUNNING.load(Ordering::SeqCst) < LOOPS
                })
                .unwrap();
            let trace = std::env::var("_X_AMZN_TRACE_ID").is_ok();
            Ok(format!("together={} trace_env={trace}", !timeout.timed_out()).into_bytes())
        })
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cmd =
        bootstrap_command("three_loops_run_three_invocations_at_once_and_never_ask_for_a_fourth");
    cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_MAX_CONCURRENCY", LOOPS.to_string());
    let runner = std::thread::spawn(move || run_child(cmd));

    // Three connections, each with a /next waiting for an event.
    let mut conns = waiting_loops(&listener, LOOPS);
    // No fourth: nothing else connects while three are waiting.
    listener.set_nonblocking(true).unwrap();
    let quiet_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet_until {
        assert!(
            listener.accept().is_err(),
            "a fourth connection while three /next were in flight"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Hand out the events only now: the handlers can only all be running at once if the
    // three loops really are independent.
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.write_all(&event(&format!("c{i}"), b"{}", &[]))
            .unwrap();
    }
    let mut bodies = Vec::new();
    for (i, conn) in conns.iter_mut().enumerate() {
        let (line, body) = read_request(conn);
        assert!(
            line.starts_with(&format!(
                "POST /2018-06-01/runtime/invocation/c{i}/response "
            )),
            "{line}"
        );
        bodies.push(String::from_utf8(body).unwrap());
        conn.write_all(&accepted()).unwrap();
    }
    assert_eq!(bodies, vec!["together=true trace_env=false"; LOOPS]);
    // Each loop asks for its next invocation on its own connection; a 500 ends the process.
    support::end_with_500(&mut conns, runner);
}

#[test]
fn one_loop_when_the_variable_is_absent_behaves_like_run() {
    if child() {
        tinylambda::run_concurrent(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            let trace = std::env::var("_X_AMZN_TRACE_ID").unwrap_or_default();
            Ok([event, b" ", trace.as_bytes()].concat())
        })
    }
    let out = support::serve(
        "one_loop_when_the_variable_is_absent_behaves_like_run",
        vec![
            support::Step::Reply(event("o", b"single", &[])),
            support::Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let body = out.posts()[0].text();
    assert!(
        body.starts_with("single Root=1-"),
        "one loop sets _X_AMZN_TRACE_ID as run does: {body}"
    );
}

/// About 3 MiB of stack: more than std's 2 MiB default for a thread, less than the 8 MiB
/// a main thread gets on Linux and on Lambda.
#[inline(never)]
fn deep(n: u32) -> u64 {
    let frame = std::hint::black_box([n as u8; 16 * 1024]);
    if n == 0 {
        u64::from(frame[0])
    } else {
        deep(n - 1) + u64::from(frame[7])
    }
}

#[test]
fn every_loop_has_the_stack_the_first_one_has() {
    if child() {
        tinylambda::run_concurrent(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(format!("deep {}", deep(192)).into_bytes())
        })
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cmd = bootstrap_command("every_loop_has_the_stack_the_first_one_has");
    // The first loop runs on the test's own thread: give it the stack of a main thread.
    cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .env("RUST_MIN_STACK", (8 << 20).to_string());
    let runner = std::thread::spawn(move || run_child(cmd));
    let mut conns = waiting_loops(&listener, 2);
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.write_all(&event(&format!("d{i}"), b"{}", &[]))
            .unwrap();
    }
    for (i, conn) in conns.iter_mut().enumerate() {
        let (line, body) = read_request(conn);
        assert!(line.contains(&format!("/d{i}/response ")), "{line}");
        let expected = format!("deep {}", (1..=192u64).sum::<u64>());
        assert_eq!(String::from_utf8_lossy(&body), expected);
        conn.write_all(&accepted()).unwrap();
    }
    support::end_with_500(&mut conns, runner);
}

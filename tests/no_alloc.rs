//! The per-invocation path allocates nothing for events under 64 KiB: a counting global
//! allocator (hand-rolled, no dependencies) counts allocations on the bootstrap's thread,
//! the handler reports the running count in each response, and the test checks that
//! successive invocations differ by exactly the handler's own one allocation.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use support::{Step, accepted, child, chunked_event, event, serve};
use tinylambda::{Context, Error};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting touches only
// a const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Replies with the number of allocations made on this thread so far, using exactly one
/// allocation of its own (the response vector).
fn count(_: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    let n = ALLOCATIONS.with(Cell::get);
    let mut out = Vec::with_capacity(20);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    Ok(out)
}

#[test]
fn invocations_under_64_kib_allocate_only_what_the_handler_does() {
    if child() {
        tinylambda::run(count)
    }
    let small = b"{\"small\":true}".to_vec();
    let large = vec![b'x'; 60 * 1024];
    let mut steps = Vec::new();
    for i in 0..40 {
        // A trace id on every invocation (the environment variable is rewritten each
        // time), and a mix of framings and sizes.
        let id = format!("a{i}");
        steps.push(Step::Reply(match i % 4 {
            0 => event(&id, &small, &[("Lambda-Runtime-Invocation-Id", "n")]),
            1 => event(&id, &large, &[]),
            2 => chunked_event(&id, &large, &[4096, 100]),
            _ => chunked_event(&id, &small, &[3]),
        }));
        steps.push(Step::Reply(accepted()));
    }
    let out = serve(
        "invocations_under_64_kib_allocate_only_what_the_handler_does",
        steps,
    );
    out.assert_ran_to_the_end();
    let counts: Vec<u64> = out
        .posts()
        .iter()
        .map(|r| r.text().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 40);
    // The first invocations may set things up (the trace-id slot); after that, each loop
    // turn allocates exactly once: the handler's response vector.
    let steady: Vec<u64> = counts.windows(2).skip(4).map(|w| w[1] - w[0]).collect();
    assert!(
        steady.iter().all(|&d| d == 1),
        "allocations per invocation after warm-up: {steady:?}"
    );
}

#[test]
fn errors_allocate_only_the_error_itself() {
    if child() {
        tinylambda::run(|event: &[u8], ctx: &Context| -> Result<Vec<u8>, Error> {
            if event == b"fail" {
                return Err(Error::new("Function.Expected", "planned failure"));
            }
            count(event, ctx)
        })
    }
    let mut steps = Vec::new();
    for i in 0..20 {
        let body: &[u8] = if i % 2 == 0 { b"fail" } else { b"count" };
        steps.push(Step::Reply(event(&format!("f{i}"), body, &[])));
        steps.push(Step::Reply(accepted()));
    }
    let out = serve("errors_allocate_only_the_error_itself", steps);
    out.assert_ran_to_the_end();
    let counts: Vec<u64> = out
        .posts()
        .iter()
        .filter(|r| r.path.ends_with("/response"))
        .map(|r| r.text().parse().unwrap())
        .collect();
    // Between two counting invocations lies one failing one: its Error (two strings), the
    // counting handler's vector, and nothing else once the error buffer has grown.
    let steady: Vec<u64> = counts.windows(2).skip(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steady.iter().all(|&d| d == 3),
        "allocations per failing + counting pair: {steady:?}"
    );
}

#[test]
fn log_records_allocate_nothing_written_or_filtered() {
    if child() {
        tinylambda::run(|event: &[u8], ctx: &Context| -> Result<Vec<u8>, Error> {
            // One record below the level (filtered) and two at or above it (written).
            ctx.debug("not written");
            ctx.info("written \"as JSON\"");
            ctx.warn(&"x".repeat(64));
            count(event, ctx)
        })
    }
    let mut steps = Vec::new();
    for i in 0..20 {
        steps.push(Step::Reply(event(&format!("l{i}"), b"{}", &[])));
        steps.push(Step::Reply(accepted()));
    }
    let out = support::serve_with(
        "log_records_allocate_nothing_written_or_filtered",
        steps,
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                .env("AWS_LAMBDA_LOG_LEVEL", "info");
        },
    );
    out.assert_ran_to_the_end();
    assert_eq!(out.stderr.matches("written \\\"as JSON\\\"").count(), 20);
    assert!(!out.stderr.contains("not written"));
    let counts: Vec<u64> = out
        .posts()
        .iter()
        .map(|r| r.text().parse().unwrap())
        .collect();
    // The handler's own allocations: its response vector and the repeated string.
    let steady: Vec<u64> = counts.windows(2).skip(4).map(|w| w[1] - w[0]).collect();
    assert!(
        steady.iter().all(|&d| d == 2),
        "allocations per invocation after warm-up: {steady:?}"
    );
}

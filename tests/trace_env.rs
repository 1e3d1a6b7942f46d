//! `_X_AMZN_TRACE_ID` while other threads read the environment: the runtime sets and removes
//! it through std's environment functions, whose lock makes every std reader safe, so a
//! reader never sees anything but a value that was sent (or none).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use support::{Step, accepted, child, serve};
use tinylambda::{Context, Error};

const INVOCATIONS: usize = 6_000;

/// A trace id as long as an X-Ray header can grow (with lineage), one short, and none.
fn trace_id(i: usize) -> Option<String> {
    match i % 3 {
        0 => Some(format!(
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1;Lineage={}",
            "a1b2c3d4:0|".repeat(30)
        )),
        1 => Some("Root=1-0".to_owned()),
        _ => None,
    }
}

/// Reads the variable as fast as it can, forever, counting reads and values that were
/// never sent.
fn read_forever(reads: &AtomicUsize, torn: &AtomicUsize) {
    let long = trace_id(0).unwrap_or_default();
    loop {
        match std::env::var("_X_AMZN_TRACE_ID") {
            Err(std::env::VarError::NotPresent) => {}
            Ok(value) if value == long || value == "Root=1-0" => {}
            // Torn, or not UTF-8 any more.
            _ => {
                torn.fetch_add(1, Ordering::Relaxed);
            }
        }
        reads.fetch_add(1, Ordering::Relaxed);
    }
}

static READS: AtomicUsize = AtomicUsize::new(0);
static TORN: AtomicUsize = AtomicUsize::new(0);

/// Answers with the reader's counts so far: `reads torn`.
fn report(_: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    let (reads, torn) = (READS.load(Ordering::Relaxed), TORN.load(Ordering::Relaxed));
    Ok(format!("{reads} {torn}").into_bytes())
}

fn next_response(id: usize) -> Vec<u8> {
    let trace = trace_id(id).map_or(String::new(), |t| {
        format!("Lambda-Runtime-Trace-Id: {t}\r\n")
    });
    format!(
        "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r{id}\r\n{trace}Content-Length: 2\r\n\r\n{{}}"
    )
    .into_bytes()
}

#[test]
fn a_thread_reading_the_trace_id_through_std_only_ever_sees_values_that_were_sent() {
    if child() {
        std::thread::spawn(|| read_forever(&READS, &TORN));
        tinylambda::run(report)
    }
    let steps = (0..INVOCATIONS)
        .flat_map(|i| [Step::Reply(next_response(i)), Step::Reply(accepted())])
        .collect();
    let out = serve(
        "a_thread_reading_the_trace_id_through_std_only_ever_sees_values_that_were_sent",
        steps,
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), INVOCATIONS);
    let last = posts[INVOCATIONS - 1].text();
    let (reads, torn) = last.split_once(' ').expect("reads and torn");
    let (reads, torn): (usize, usize) = (reads.parse().unwrap(), torn.parse().unwrap());
    assert!(reads > 1_000, "the reader ran throughout ({reads} reads)");
    assert_eq!(torn, 0, "values never sent were seen in {reads} reads");
}

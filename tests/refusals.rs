//! Results the Runtime API refuses before it has read them. Lambda's Runtime API is Go's
//! `net/http`: it answers a POST it refuses (413 over 6,291,556 bytes, 410 for an
//! invocation that has ended, 400, 403, 500) before reading the body, and with 256 KiB or
//! more of the body unread it closes the connection, which resets it. The runtime's write
//! then fails; it must read the reply that arrived, react to its status exactly as after a
//! whole write, and never post the result again.

mod support;

use support::{Outcome, Step, accepted, child, event, refusal, serve};
use tinylambda::{Context, Error};

/// A result of as many bytes as the event says.
fn sized(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    let n: usize = std::str::from_utf8(event)?.parse()?;
    Ok(vec![b'x'; n])
}

/// [`sized`] after 200 ms: long enough for a close the server makes right after the event
/// to have reached the runtime before the result goes out, however loaded the machine.
fn sized_after_a_pause(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
    std::thread::sleep(std::time::Duration::from_millis(200));
    sized(event, ctx)
}

/// The POSTs the server saw, as `(path, body bytes read)`.
fn posts(out: &Outcome) -> Vec<(String, usize)> {
    out.posts()
        .iter()
        .map(|r| (r.path.clone(), r.body.len()))
        .collect()
}

fn response_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/response")
}

/// Runs `test`'s bootstrap against a server that hands out the invocation `first` with
/// `event`, refuses its result after reading `read` bytes with `reply` (a reset without
/// one for `None`), then hands out `next` with the event `4` and accepts its result.
fn refused_then_next(
    test: &str,
    event_body: &[u8],
    read: usize,
    reply: Option<Vec<u8>>,
) -> Outcome {
    serve(
        test,
        vec![
            Step::Reply(event("first", event_body, &[])),
            Step::Refuse { read, reply },
            Step::Reply(event("next", b"4", &[])),
            Step::Reply(accepted()),
        ],
    )
}

/// Asserts the refused result was posted once (`read` bytes of it read), the loop went on
/// to `next`, and stderr says `logged`.
fn assert_posted_once_then_next(out: &Outcome, read: usize, next_len: usize, logged: &str) {
    out.assert_ran_to_the_end();
    assert_eq!(
        posts(out),
        [
            (response_path("first"), read),
            (response_path("next"), next_len)
        ],
        "one POST for the refused result, no /error, nothing twice; stderr: {}",
        out.stderr
    );
    assert!(out.stderr.contains(logged), "{logged}: {}", out.stderr);
}

/// Runs `test`'s bootstrap against a server that hands out one invocation with `event` and
/// refuses its result with 500 before reading it; asserts one POST, then the exit.
fn assert_a_500_ends_the_process_after_one_post(test: &str, event_body: &[u8]) {
    let out = serve(
        test,
        vec![
            Step::Reply(event("doomed", event_body, &[])),
            Step::Refuse {
                read: 0,
                reply: Some(refusal(500, "Container error")),
            },
        ],
    );
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let logged = "POST for doomed returned 500 (exiting)";
    assert!(out.stderr.contains(logged), "{logged}: {}", out.stderr);
    assert_eq!(
        out.requests.len(),
        2,
        "nothing after the 500: {:?}",
        posts(&out)
    );
}

#[test]
fn a_result_refused_with_413_after_six_mib_is_posted_once_and_the_loop_goes_on() {
    if child() {
        tinylambda::run(sized)
    }
    let out = refused_then_next(
        "a_result_refused_with_413_after_six_mib_is_posted_once_and_the_loop_goes_on",
        b"20000000",
        6_291_557,
        Some(refusal(
            413,
            "Exceeded maximum allowed payload size (6291556 bytes).",
        )),
    );
    assert_posted_once_then_next(&out, 6_291_557, 4, "POST for first returned 413");
}

#[test]
fn a_result_refused_with_410_before_its_body_is_posted_once_and_the_loop_goes_on() {
    if child() {
        tinylambda::run(sized)
    }
    let out = refused_then_next(
        "a_result_refused_with_410_before_its_body_is_posted_once_and_the_loop_goes_on",
        b"5000000",
        0,
        Some(refusal(410, "Invoke timeout")),
    );
    assert_posted_once_then_next(&out, 0, 4, "POST for first returned 410");
}

#[test]
fn a_result_refused_with_500_before_its_body_ends_the_process_after_one_post() {
    if child() {
        tinylambda::run(sized)
    }
    assert_a_500_ends_the_process_after_one_post(
        "a_result_refused_with_500_before_its_body_ends_the_process_after_one_post",
        b"5000000",
    );
}

#[test]
fn a_reset_that_destroys_the_reply_is_logged_and_the_result_is_not_sent_again() {
    if child() {
        tinylambda::run(sized)
    }
    let out = refused_then_next(
        "a_reset_that_destroys_the_reply_is_logged_and_the_result_is_not_sent_again",
        b"5000000",
        0,
        None,
    );
    assert_posted_once_then_next(&out, 0, 4, "POST for first got no reply");
    let after = &out.requests[2];
    assert!(
        after.is_next() && after.conn == 1,
        "a fresh connection for /next"
    );
}

#[test]
fn a_result_posted_into_a_connection_that_was_already_dead_is_sent_on_a_fresh_one() {
    if child() {
        tinylambda::run(sized_after_a_pause)
    }
    // The server closes the keep-alive connection right after the event: not one byte of
    // the result can go out on it, so the result goes out once, whole, on a new one. (Were
    // the close to arrive while the result is being written, bytes would have gone out and
    // the result would rightly not be sent again: the handler's pause rules that out.)
    let out = serve(
        "a_result_posted_into_a_connection_that_was_already_dead_is_sent_on_a_fresh_one",
        vec![
            Step::ReplyClose(event("a", b"5000000", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("b", b"1", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert_eq!(
        posts(&out),
        [(response_path("a"), 5_000_000), (response_path("b"), 1)]
    );
}

/// Streamed responses refused before the server reads them (`--features streaming`).
#[cfg(feature = "streaming")]
mod streamed {
    use super::{assert_a_500_ends_the_process_after_one_post, assert_posted_once_then_next};
    use super::{refusal, refused_then_next};
    use crate::support::child;
    use tinylambda::{Context, Error, Stream};

    /// Streams as many MiB as the event says, in 64 KiB writes, stopping at the first
    /// failed write (as a handler using `?` does).
    fn stream_mib(event: &[u8], _: &Context, out: &mut Stream) -> Result<(), Error> {
        let mib: usize = std::str::from_utf8(event)?.parse()?;
        let piece = vec![b's'; 64 * 1024];
        for _ in 0..mib * 16 {
            out.write_all(&piece)?;
        }
        Ok(())
    }

    #[test]
    fn a_stream_refused_with_410_is_posted_once_logged_and_the_loop_goes_on() {
        if child() {
            tinylambda::run_streaming(stream_mib)
        }
        let out = refused_then_next(
            "streamed::a_stream_refused_with_410_is_posted_once_logged_and_the_loop_goes_on",
            b"8",
            0,
            Some(refusal(410, "Invoke timeout")),
        );
        // The next invocation streams 4 MiB.
        assert_posted_once_then_next(&out, 0, 4 << 20, "POST for first returned 410");
    }

    #[test]
    fn a_stream_refused_with_500_ends_the_process_after_one_post() {
        if child() {
            tinylambda::run_streaming(stream_mib)
        }
        assert_a_500_ends_the_process_after_one_post(
            "streamed::a_stream_refused_with_500_ends_the_process_after_one_post",
            b"8",
        );
    }
}

//! Results the Runtime API refuses before it has read them. Lambda's Runtime API is Go's
//! `net/http`: it answers a POST it refuses (413 over 6,291,556 bytes, 410 for an
//! invocation that has ended, 400, 403, 500) before reading the body, and with 256 KiB or
//! more of the body unread it closes the connection, which resets it. The runtime's write
//! then fails; it must read the reply that arrived, react to its status exactly as after a
//! whole write, and never post the result again.

mod support;

use support::{Outcome, Request, Step, accepted, child, event, refusal, serve};
use tinylambda::{Context, Error};

/// A result of as many bytes as the event says.
fn sized(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    let n: usize = std::str::from_utf8(event)?.parse()?;
    Ok(vec![b'x'; n])
}

/// The POSTs the server saw, as `(path, body bytes read)`.
fn posts(out: &Outcome) -> Vec<(String, usize)> {
    out.posts()
        .iter()
        .map(|r: &&Request| (r.path.clone(), r.body.len()))
        .collect()
}

fn response_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/response")
}

#[test]
fn a_result_refused_with_413_after_six_mib_is_posted_once_and_the_loop_goes_on() {
    if child() {
        tinylambda::run(sized)
    }
    let out = serve(
        "a_result_refused_with_413_after_six_mib_is_posted_once_and_the_loop_goes_on",
        vec![
            Step::Reply(event("big", b"20000000", &[])),
            Step::Refuse {
                read: 6_291_557,
                reply: Some(refusal(
                    413,
                    "Exceeded maximum allowed payload size (6291556 bytes).",
                )),
            },
            Step::Reply(event("next", b"2", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert_eq!(
        posts(&out),
        [
            (response_path("big"), 6_291_557),
            (response_path("next"), 2)
        ],
        "one POST for the refused result, no /error after a 413; stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("POST for big returned 413"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("twice"), "{}", out.stderr);
}

#[test]
fn a_result_refused_with_410_before_its_body_is_posted_once_and_the_loop_goes_on() {
    if child() {
        tinylambda::run(sized)
    }
    let out = serve(
        "a_result_refused_with_410_before_its_body_is_posted_once_and_the_loop_goes_on",
        vec![
            Step::Reply(event("late", b"5000000", &[])),
            Step::Refuse {
                read: 0,
                reply: Some(refusal(410, "Invoke timeout")),
            },
            Step::Reply(event("next", b"3", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert_eq!(
        posts(&out),
        [(response_path("late"), 0), (response_path("next"), 3)],
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("POST for late returned 410"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_result_refused_with_500_before_its_body_ends_the_process_after_one_post() {
    if child() {
        tinylambda::run(sized)
    }
    let out = serve(
        "a_result_refused_with_500_before_its_body_ends_the_process_after_one_post",
        vec![
            Step::Reply(event("doomed", b"5000000", &[])),
            Step::Refuse {
                read: 0,
                reply: Some(refusal(500, "Container error")),
            },
        ],
    );
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("POST for doomed returned 500 (exiting)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.requests.len(),
        2,
        "nothing after the 500: {posts:?}",
        posts = posts(&out)
    );
}

#[test]
fn a_reset_that_destroys_the_reply_is_logged_and_the_result_is_not_sent_again() {
    if child() {
        tinylambda::run(sized)
    }
    let out = serve(
        "a_reset_that_destroys_the_reply_is_logged_and_the_result_is_not_sent_again",
        vec![
            Step::Reply(event("lost", b"5000000", &[])),
            Step::Refuse {
                read: 0,
                reply: None,
            },
            Step::Reply(event("next", b"4", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert_eq!(
        posts(&out),
        [(response_path("lost"), 0), (response_path("next"), 4)],
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("POST for lost got no reply"),
        "{}",
        out.stderr
    );
    let after = &out.requests[2];
    assert!(
        after.is_next() && after.conn == 1,
        "a fresh connection for /next"
    );
}

#[test]
fn a_result_posted_into_a_connection_that_was_already_dead_is_sent_on_a_fresh_one() {
    if child() {
        tinylambda::run(sized)
    }
    // The server closes the keep-alive connection right after the event: not one byte of
    // the result can go out on it, so the result goes out once, whole, on a new one.
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
    use super::{posts, response_path};
    use crate::support::{Step, accepted, child, event, refusal, serve};
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
        let out = serve(
            "streamed::a_stream_refused_with_410_is_posted_once_logged_and_the_loop_goes_on",
            vec![
                Step::Reply(event("late", b"8", &[])),
                Step::Refuse {
                    read: 0,
                    reply: Some(refusal(410, "Invoke timeout")),
                },
                Step::Reply(event("next", b"0", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        assert_eq!(
            posts(&out),
            [(response_path("late"), 0), (response_path("next"), 0)],
            "stderr: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("POST for late returned 410"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn a_stream_refused_with_500_ends_the_process_after_one_post() {
        if child() {
            tinylambda::run_streaming(stream_mib)
        }
        let out = serve(
            "streamed::a_stream_refused_with_500_ends_the_process_after_one_post",
            vec![
                Step::Reply(event("doomed", b"8", &[])),
                Step::Refuse {
                    read: 0,
                    reply: Some(refusal(500, "Container error")),
                },
            ],
        );
        assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
        assert!(
            out.stderr
                .contains("POST for doomed returned 500 (exiting)"),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 2, "nothing after the 500");
    }
}

//! Fault injection: the fake Runtime API misbehaves at the socket level, and each test
//! asserts the runtime's exact reaction (retry once, exit non-zero with a clear line, or
//! go on) and that no invocation is answered twice.

mod support;

use std::time::Duration;

use support::{Step, accepted, child, chunked_event, event, serve};
use tinylambda::{Context, Error};

fn echo(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

/// Echo, after sleeping for as many milliseconds as the event says (`sleep:1200`).
fn slow_echo(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    if let Some(ms) = event.strip_prefix(b"sleep:") {
        let ms: u64 = std::str::from_utf8(ms)?.parse()?;
        std::thread::sleep(Duration::from_millis(ms));
    }
    Ok(event.to_vec())
}

#[test]
fn dribbled_chunked_event_and_reply_are_read_whole() {
    if child() {
        tinylambda::run(echo)
    }
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 97) as u8 + 32).collect();
    let out = serve(
        "dribbled_chunked_event_and_reply_are_read_whole",
        vec![
            Step::Dribble(chunked_event("d", &body, &[1000, 7])),
            Step::Dribble(accepted()),
            Step::Reply(event("e", b"after", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts[0].body, body);
    assert_eq!(posts[1].body, b"after");
    assert!(
        out.requests.iter().all(|r| r.conn == 0),
        "dribbling is no reason to reconnect"
    );
    out.assert_answered_at_most_once();
}

#[test]
fn next_cut_mid_head_ends_the_process_without_posting() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve(
        "next_cut_mid_head_ends_the_process_without_posting",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::Reply(accepted()),
            Step::Cut(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Re".to_vec()),
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("GET /next failed: connection closed"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 1, "only the first invocation was posted");
    assert_eq!(
        out.requests.len(),
        3,
        "no retry once bytes of the reply arrived"
    );
}

#[test]
fn next_cut_mid_body_is_reported_to_error_once() {
    if child() {
        tinylambda::run(echo)
    }
    // Content-Length promises 100 bytes; 10 arrive, then the server closes.
    let mut cut =
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: short\r\nContent-Length: 100\r\n\r\n"
            .to_vec();
    cut.extend_from_slice(b"0123456789");
    let out = serve(
        "next_cut_mid_body_is_reported_to_error_once",
        vec![
            Step::Cut(cut),
            Step::Reply(accepted()),
            Step::Reply(event("b", b"ok", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/short/error");
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Runtime.InvalidEvent")
    );
    assert_eq!(posts[1].path, "/2018-06-01/runtime/invocation/b/response");
    out.assert_answered_at_most_once();
}

#[test]
fn reply_to_post_cut_mid_head_is_logged_and_not_re_posted() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve(
        "reply_to_post_cut_mid_head_is_logged_and_not_re_posted",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::Cut(b"HTTP/1.1 202 Acc".to_vec()),
            Step::Reply(event("b", b"2", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert!(
        out.stderr
            .contains("POST for a: the reply broke off: connection closed"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 2);
    assert_eq!(
        out.requests[2].conn, 1,
        "the next /next on a fresh connection"
    );
    out.assert_answered_at_most_once();
}

#[test]
fn post_that_gets_no_reply_is_not_re_posted() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve(
        "post_that_gets_no_reply_is_not_re_posted",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::Hangup,
            Step::Reply(event("b", b"2", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert!(
        out.stderr
            .contains("POST for a got no reply (connection closed); not re-sent"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 2);
    out.assert_answered_at_most_once();
}

#[test]
fn reset_of_the_idle_connection_between_invocations_is_survived() {
    if child() {
        tinylambda::run(echo)
    }
    // After answering the first POST the server resets the connection, as a connection
    // that died while the process was frozen; the next /next must be retried once on a
    // fresh connection.
    let out = serve(
        "reset_of_the_idle_connection_between_invocations_is_survived",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::ReplyReset(accepted()),
            Step::Reply(event("b", b"2", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(
        (posts[0].body.as_slice(), posts[1].body.as_slice()),
        (&b"1"[..], &b"2"[..])
    );
    assert_eq!(posts[1].conn, 1);
    out.assert_answered_at_most_once();
}

#[test]
fn reset_during_the_long_poll_is_retried_once() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve(
        "reset_during_the_long_poll_is_retried_once",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::Reply(accepted()),
            Step::Reset,
            Step::Reply(event("b", b"2", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let nexts: Vec<usize> = out
        .requests
        .iter()
        .filter(|r| r.is_next())
        .map(|r| r.conn)
        .collect();
    assert_eq!(
        &nexts[..3],
        &[0, 0, 1],
        "the reset /next went out again on a new connection"
    );
    assert_eq!(out.posts().len(), 2);
    out.assert_answered_at_most_once();
}

#[test]
fn connection_reset_while_the_handler_ran_is_replaced_before_posting() {
    if child() {
        tinylambda::run(slow_echo)
    }
    // The server resets the connection right after sending the event; by the time the
    // (50 ms) handler is done, the reset has arrived, the POST cannot be written, and it is
    // sent once on a fresh connection.
    let out = serve(
        "connection_reset_while_the_handler_ran_is_replaced_before_posting",
        vec![
            Step::ReplyReset(event("a", b"sleep:50", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body, b"sleep:50");
    assert_eq!(posts[0].conn, 1);
}

#[test]
fn connection_closed_during_a_long_handler_is_checked_before_posting() {
    if child() {
        tinylambda::run(slow_echo)
    }
    // The server closes the connection (FIN, no Connection: close) right after sending the
    // event. A POST written into it would vanish; after a handler of over a second the
    // runtime checks the connection first and posts on a fresh one.
    let out = serve(
        "connection_closed_during_a_long_handler_is_checked_before_posting",
        vec![
            Step::ReplyClose(event("a", b"sleep:1200", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body, b"sleep:1200");
    assert_eq!(posts[0].conn, 1);
}

#[test]
fn endless_chunked_body_is_cut_off_and_reported() {
    if child() {
        tinylambda::run(echo)
    }
    let head = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: endless\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let out = serve(
        "endless_chunked_body_is_cut_off_and_reported",
        vec![
            Step::Endless(head),
            Step::Reply(accepted()),
            Step::Reply(event("b", b"ok", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(
        posts[0].path,
        "/2018-06-01/runtime/invocation/endless/error"
    );
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Runtime.EventTooLarge")
    );
    assert_eq!(posts[1].body, b"ok");
    out.assert_answered_at_most_once();
}

#[test]
fn api_gone_for_good_ends_the_process_with_one_line() {
    if child() {
        tinylambda::run(echo)
    }
    // After one invocation the server stops accepting; reconnecting fails, so the runtime
    // gives up after its bounded retries.
    let out = serve(
        "api_gone_for_good_ends_the_process_with_one_line",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::ReplyPause(accepted(), Duration::from_secs(3)),
            Step::Hangup,
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("GET /next failed") || out.stderr.contains("cannot connect"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 1);
}

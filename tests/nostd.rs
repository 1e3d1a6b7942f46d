//! The bootstraps without std, as deployed (`--profile tiny`, static musl): the `echo` of
//! `examples/nostd` (made with `tinylambda::main!`) and the probe of `tests/nostd-probe`
//! (the three pieces written out by hand), against the scripted fake Runtime API and
//! through `tinylambda-emu`. The whole suite also runs against the library built without
//! std (`cargo test --no-default-features --features streaming,graceful-shutdown,concurrent
//! --tests`); this file checks the binaries themselves: start-up without std, the panic
//! handler, the allocator, static linking.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::nostd::{NoStd, TARGET, binaries};
use support::{
    Outcome, Step, accepted, as_bootstrap, assert_response, chunked_event, event, refusal,
    registered, run_child_output, serve_command, status,
};

const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");
/// Lambda's limit on an event or a response: 6 MiB + 100 bytes.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 100;

/// Runs `binary` against a server following `steps`, with `vars` in its environment.
fn serve(binary: &Path, vars: &[(&str, &str)], steps: Vec<Step>) -> Outcome {
    serve_command(as_bootstrap(Command::new(binary)), steps, |cmd, port| {
        cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
        cmd.envs(vars.iter().copied());
    })
}

fn built(test: &str) -> Option<&'static NoStd> {
    binaries(test, TARGET)
}

#[test]
fn the_echo_is_a_static_binary() {
    let Some(bin) = built("the_echo_is_a_static_binary") else {
        return;
    };
    let elf = std::fs::read(&bin.echo).unwrap();
    let interp = elf.windows(b".interp".len()).any(|w| w == b".interp");
    assert!(!interp, "no program interpreter: nothing to load at start");
    assert!(
        !elf.windows(b"libc.so".len()).any(|w| w == b"libc.so"),
        "no shared C library"
    );
}

#[test]
fn the_echo_round_trips_events_over_one_keep_alive_connection() {
    let Some(bin) = built("the_echo_round_trips_events_over_one_keep_alive_connection") else {
        return;
    };
    let out = serve(
        &bin.echo,
        &[],
        vec![
            Step::Reply(event("a", b"{\"n\":1}", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("b", b"", &[])),
            Step::Reply(accepted()),
            Step::Dribble(event("c", b"dribbled", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "a", b"{\"n\":1}");
    assert_response(posts[1], "b", b"");
    assert_response(posts[2], "c", b"dribbled");
    assert_eq!(posts[0].header("Content-Type"), Some("application/json"));
    assert!(
        out.requests.iter().take(6).all(|r| r.conn == 0),
        "one keep-alive connection"
    );
}

#[test]
fn the_echo_takes_chunked_and_six_mib_events_in_both_framings() {
    let Some(bin) = built("the_echo_takes_chunked_and_six_mib_events_in_both_framings") else {
        return;
    };
    let big: Vec<u8> = (0..MAX_PAYLOAD).map(|i| (i % 251) as u8).collect();
    let small: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = serve(
        &bin.echo,
        &[],
        vec![
            Step::Reply(chunked_event("c1", &small, &[2049, 1, 300])),
            Step::Reply(accepted()),
            Step::Reply(event("l6", &big, &[])),
            Step::Reply(accepted()),
            Step::Reply(chunked_event("c6", &big, &[65536, 7])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "c1", &small);
    assert_response(posts[1], "l6", &big);
    assert_response(posts[2], "c6", &big);
}

#[test]
fn the_echo_reconnects_after_connection_close_and_after_a_reset_idle_connection() {
    let Some(bin) =
        built("the_echo_reconnects_after_connection_close_and_after_a_reset_idle_connection")
    else {
        return;
    };
    let out = serve(
        &bin.echo,
        &[],
        vec![
            Step::ReplyClose(event("a", b"1", &[("Connection", "close")])),
            Step::Reply(accepted()),
            Step::Reply(event("b", b"2", &[])),
            // The idle keep-alive connection is reset (as after a freeze and thaw): the
            // next `/next` goes out again on a fresh one.
            Step::ReplyReset(accepted()),
            Step::Reply(event("c", b"3", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "a", b"1");
    assert_response(posts[1], "b", b"2");
    assert_response(posts[2], "c", b"3");
    out.assert_answered_at_most_once();
}

#[test]
fn a_refused_result_is_posted_once_and_a_500_ends_the_process() {
    let Some(bin) = built("a_refused_result_is_posted_once_and_a_500_ends_the_process") else {
        return;
    };
    let out = serve(
        &bin.probe,
        &[],
        vec![
            Step::Reply(event("big", b"size:20000000", &[])),
            Step::Refuse {
                read: 6_291_557,
                reply: Some(refusal(413, "Exceeded maximum allowed payload size")),
            },
            Step::Reply(event("late", b"size:5000000", &[])),
            Step::Refuse {
                read: 0,
                reply: Some(refusal(410, "Invoke timeout")),
            },
            Step::Reply(event("doomed", b"size:5000000", &[])),
            Step::Refuse {
                read: 0,
                reply: Some(refusal(500, "Container error")),
            },
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let posts: Vec<&str> = out.posts().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        posts,
        [
            "/2018-06-01/runtime/invocation/big/response",
            "/2018-06-01/runtime/invocation/late/response",
            "/2018-06-01/runtime/invocation/doomed/response",
        ]
    );
    for line in [
        "POST for big returned 413",
        "POST for late returned 410",
        "POST for doomed returned 500 (exiting)",
    ] {
        assert!(out.stderr.contains(line), "{line}: {}", out.stderr);
    }
}

#[test]
fn handler_errors_and_status_codes_follow_the_status_matrix() {
    let Some(bin) = built("handler_errors_and_status_codes_follow_the_status_matrix") else {
        return;
    };
    let out = serve(
        &bin.probe,
        &[],
        vec![
            Step::Reply(
                b"HTTP/1.1 204 No Content\r\nLambda-Runtime-Aws-Request-Id: x\r\n\r\n".to_vec(),
            ),
            Step::Reply(event("e", b"error", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("r", b"fine", &[])),
            Step::Reply(status(403, "gone")),
        ],
    );
    assert_eq!(out.code, Some(1));
    let posts = out.posts();
    assert_eq!(posts.len(), 2, "the 204 is not an invocation");
    assert!(posts[0].path.ends_with("/e/error"));
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Probe")
    );
    assert_eq!(
        posts[0].text(),
        "{\"errorMessage\":\"asked to fail\",\"errorType\":\"Function.Probe\",\"stackTrace\":[]}"
    );
    assert!(
        out.stderr.contains("POST for r returned 403 (not retried)"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_context_and_the_trace_id_reach_the_handler() {
    let Some(bin) = built("the_context_and_the_trace_id_reach_the_handler") else {
        return;
    };
    let no_trace =
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: t2\r\nContent-Length: 5\r\n\r\ntrace"
            .to_vec();
    let out = serve(
        &bin.probe,
        &[
            ("AWS_LAMBDA_FUNCTION_NAME", "probe-fn"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ],
        vec![
            Step::Reply(event(
                "ctx",
                b"context",
                &[("Lambda-Runtime-Invocation-Id", "inv-7")],
            )),
            Step::Reply(accepted()),
            Step::Reply(event("t1", b"trace", &[])),
            Step::Reply(accepted()),
            Step::Reply(no_trace),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts[0].text(), "ctx|time left|probe-fn|256|inv-7");
    assert_eq!(
        posts[0].header("Lambda-Runtime-Invocation-Id"),
        Some("inv-7")
    );
    assert_eq!(
        posts[1].text(),
        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
    );
    assert_eq!(posts[2].text(), "-", "removed when /next has no trace id");
}

#[test]
fn a_panic_writes_its_message_and_place_and_ends_the_process_posting_nothing_for_it() {
    let Some(bin) =
        built("a_panic_writes_its_message_and_place_and_ends_the_process_posting_nothing_for_it")
    else {
        return;
    };
    for (event_body, message) in [
        (&b"panic"[..], "probe panicked on purpose"),
        (b"panic-static", "a fixed panic message"),
    ] {
        let out = serve(
            &bin.probe,
            &[],
            vec![
                Step::Reply(event("ok", b"fine", &[])),
                Step::Reply(accepted()),
                Step::Reply(event("p", event_body, &[])),
            ],
        );
        assert_eq!(out.code, Some(101), "{}", out.stderr);
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("panicked at"))
            .unwrap_or_else(|| panic!("no panic line: {}", out.stderr));
        assert!(
            line.starts_with("tinylambda: panicked at ") && line.contains("probe.rs:"),
            "{line}"
        );
        assert!(line.ends_with(message), "{line}");
        assert_eq!(
            out.posts().len(),
            1,
            "nothing posted for the invocation that panicked"
        );
        assert_eq!(out.requests.len(), 3);
    }
}

#[test]
fn an_init_error_is_posted_to_init_error_and_the_process_exits() {
    let Some(bin) = built("an_init_error_is_posted_to_init_error_and_the_process_exits") else {
        return;
    };
    let out = serve(
        &bin.probe,
        &[("PROBE_INIT_FAIL", "1")],
        vec![Step::Reply(accepted())],
    );
    assert_eq!(out.code, Some(1));
    assert_eq!(out.requests[0].path, "/2018-06-01/runtime/init/error");
    assert_eq!(
        out.requests[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Runtime.ProbeInit")
    );
    assert!(
        out.stderr.contains("init failed: Runtime.ProbeInit"),
        "{}",
        out.stderr
    );
}

#[test]
fn streamed_responses_send_each_write_as_a_chunk_and_errors_as_trailers() {
    let Some(bin) = built("streamed_responses_send_each_write_as_a_chunk_and_errors_as_trailers")
    else {
        return;
    };
    let out = serve(
        &bin.probe,
        &[("PROBE_MODE", "stream")],
        vec![
            Step::Reply(event("s", b"abcdef", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("e", b"error", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Response-Mode"),
        Some("streaming")
    );
    assert_eq!(posts[0].chunks, [1, 1, 1, 6]);
    assert_eq!(posts[0].body, b"abcabcdef");
    assert_eq!(posts[1].body, b"err");
    assert_eq!(
        posts[1].trailer("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Probe")
    );
    assert!(posts[1].conn != posts[0].conn, "a connection per stream");
}

#[test]
fn sigterm_runs_the_shutdown_callback_and_exits_zero() {
    let Some(bin) = built("sigterm_runs_the_shutdown_callback_and_exits_zero") else {
        return;
    };
    let out = serve(
        &bin.probe,
        &[("PROBE_SHUTDOWN", "1")],
        vec![
            Step::Reply(registered("ext-1")),
            Step::Park,
            Step::Reply(event("a", b"work", &[])),
            Step::Reply(accepted()),
            Step::SigTerm,
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("probe: shutdown callback ran"),
        "{}",
        out.stderr
    );
    assert_eq!(out.requests[0].path, "/2020-01-01/extension/register");
    let response = out
        .requests
        .iter()
        .find(|r| r.path.ends_with("/a/response"));
    assert_eq!(response.map(|r| r.body.as_slice()), Some(&b"work"[..]));
}

#[test]
fn concurrent_loops_each_keep_a_connection_of_their_own() {
    let Some(bin) = built("concurrent_loops_each_keep_a_connection_of_their_own") else {
        return;
    };
    // Two loops, each with a connection of its own: once the first loop has answered `a`,
    // its next `/next` is left waiting, so `b` can only go to the other loop.
    let out = serve(
        &bin.probe,
        &[
            ("PROBE_MODE", "concurrent"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "2"),
        ],
        vec![
            Step::Reply(event("a", b"one", &[])),
            Step::Reply(accepted()),
            Step::Park,
            Step::Reply(event("b", b"two", &[])),
            Step::Reply(accepted()),
        ],
    );
    let posts = out.posts();
    assert_eq!(posts.len(), 2, "{}", out.stderr);
    assert_eq!(
        (posts[0].body.as_slice(), posts[1].body.as_slice()),
        (&b"one"[..], &b"two"[..])
    );
    assert_ne!(
        posts[0].conn, posts[1].conn,
        "each loop has its own connection"
    );
}

#[test]
fn the_heap_serves_four_loops_at_once_in_a_static_binary() {
    let Some(bin) = built("the_heap_serves_four_loops_at_once_in_a_static_binary") else {
        return;
    };
    support::nostd::assert_heap_under_loops(as_bootstrap(Command::new(&bin.probe_heap)), 4, 16);
}

#[test]
fn the_echo_runs_under_tinylambda_emu() {
    let Some(bin) = built("the_echo_runs_under_tinylambda_emu") else {
        return;
    };
    let mut cmd = Command::new(EMU);
    cmd.args(["--invoke", r#"{"hello":"no_std"}"#, "--"])
        .arg(&bin.echo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (code, stdout, stderr) = run_child_output(cmd, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, br#"{"hello":"no_std"}"#);
}

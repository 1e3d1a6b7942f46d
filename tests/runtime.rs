//! The runtime end to end: a real bootstrap process (this test binary, re-run as a child
//! with the test's handler) against the scripted fake Runtime API in `support`. Each test
//! asserts exactly what the server received.

mod support;

use support::{Step, accepted, child, chunked_event, event, serve, serve_with, status};
use tinylambda::{Context, Error};

fn echo(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

/// Every context value, one per line, for tests that check what the handler saw.
fn describe(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
    let text = format!(
        "id={}\ndeadline={:?}\nremaining_is_some={}\narn={:?}\ntrace={:?}\nclient={:?}\ncognito={:?}\n\
         tenant={:?}\ninvocation={:?}\ncontent_type={:?}\nname={}\nversion={}\nmemory={}\ngroup={}\n\
         stream={}\nenv_trace={:?}\nevent_len={}",
        ctx.request_id(),
        ctx.deadline_ms(),
        ctx.remaining_ms().is_some(),
        ctx.invoked_function_arn(),
        ctx.trace_id(),
        ctx.client_context(),
        ctx.cognito_identity(),
        ctx.tenant_id(),
        ctx.invocation_id(),
        ctx.content_type(),
        ctx.function_name(),
        ctx.function_version(),
        ctx.memory_mb(),
        ctx.log_group(),
        ctx.log_stream(),
        std::env::var("_X_AMZN_TRACE_ID").ok(),
        event.len(),
    );
    Ok(text.into_bytes())
}

/// [`support::assert_response`], and the `Content-Type` a buffered response has.
fn assert_response(request: &support::Request, id: &str, body: &[u8]) {
    support::assert_response(request, id, body);
    assert_eq!(request.header("Content-Type"), Some("application/json"));
}

#[test]
fn run_says_it_serves_one_invocation_at_a_time_when_lambda_allows_more() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve_with(
        "run_says_it_serves_one_invocation_at_a_time_when_lambda_allows_more",
        vec![Step::Reply(event("r", b"x", &[])), Step::Reply(accepted())],
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_MAX_CONCURRENCY", "4");
        },
    );
    assert!(
        out.stderr
            .contains("AWS_LAMBDA_MAX_CONCURRENCY > 1: run serves one at a time"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 1, "{}", out.stderr);
}

#[test]
fn echo_round_trips_events_over_one_keep_alive_connection() {
    if child() {
        tinylambda::run(echo)
    }
    let events: [&[u8]; 3] = [b"{\"hello\":\"world\"}", b"", b"\x00\xff binary \xc3"];
    let mut steps = Vec::new();
    for (i, body) in events.iter().enumerate() {
        steps.push(Step::Reply(event(&format!("id-{i}"), body, &[])));
        steps.push(Step::Reply(accepted()));
    }
    let out = serve(
        "echo_round_trips_events_over_one_keep_alive_connection",
        steps,
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), 3);
    for (i, body) in events.iter().enumerate() {
        assert_response(posts[i], &format!("id-{i}"), body);
    }
    let next = &out.requests[0];
    assert!(next.is_next());
    assert!(next.body.is_empty());
    assert_eq!(
        next.header("Host").map(|h| h.starts_with("127.0.0.1:")),
        Some(true)
    );
    assert!(
        next.header("User-Agent")
            .is_some_and(|ua| ua.starts_with("tinylambda/"))
    );
    assert!(
        out.requests.iter().all(|r| r.conn == 0),
        "one connection for everything"
    );
}

#[test]
fn chunked_events_of_every_shape_are_decoded() {
    if child() {
        tinylambda::run(echo)
    }
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let shapes: [&[usize]; 4] = [&[5000], &[2049, 1], &[1, 7, 300], &[4096, 10]];
    let mut steps = Vec::new();
    for (i, sizes) in shapes.iter().enumerate() {
        steps.push(Step::Reply(chunked_event(&format!("c{i}"), &big, sizes)));
        steps.push(Step::Reply(accepted()));
    }
    steps.push(Step::Reply(chunked_event("empty", b"", &[1])));
    steps.push(Step::Reply(accepted()));
    let out = serve("chunked_events_of_every_shape_are_decoded", steps);
    out.assert_ran_to_the_end();
    let posts = out.posts();
    for (i, post) in posts.iter().take(shapes.len()).enumerate() {
        assert_response(post, &format!("c{i}"), &big);
    }
    assert_response(posts[4], "empty", b"");
}

#[test]
fn a_reply_dribbled_one_byte_at_a_time_is_read_whole() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve(
        "a_reply_dribbled_one_byte_at_a_time_is_read_whole",
        vec![
            Step::Dribble(chunked_event("d1", b"dribbled event", &[3, 4])),
            Step::Dribble(accepted()),
            Step::Dribble(event("d2", b"second", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "d1", b"dribbled event");
    assert_response(posts[1], "d2", b"second");
}

#[test]
fn connection_close_after_every_reply_means_a_new_connection_each_time() {
    if child() {
        tinylambda::run(echo)
    }
    let closing = |bytes: Vec<u8>| {
        let text = String::from_utf8(bytes).unwrap();
        Step::ReplyClose(
            text.replacen("\r\n", "\r\nConnection: close\r\n", 1)
                .into_bytes(),
        )
    };
    let out = serve(
        "connection_close_after_every_reply_means_a_new_connection_each_time",
        vec![
            closing(event("a", b"1", &[])),
            closing(accepted()),
            closing(event("b", b"2", &[])),
            closing(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let conns: Vec<usize> = out.requests.iter().map(|r| r.conn).collect();
    assert_eq!(
        &conns[..4],
        &[0, 1, 2, 3],
        "each request on its own connection"
    );
    let posts = out.posts();
    assert_eq!(posts.len(), 2);
    assert_response(posts[0], "a", b"1");
    assert_response(posts[1], "b", b"2");
}

#[test]
fn idle_connection_closed_by_the_server_is_replaced_without_losing_an_invocation() {
    if child() {
        tinylambda::run(echo)
    }
    // The server answers /response and then drops the connection silently (no
    // `Connection: close`), as after a freeze/thaw; the next /next must go out again on a
    // fresh connection.
    let out = serve(
        "idle_connection_closed_by_the_server_is_replaced_without_losing_an_invocation",
        vec![
            Step::Reply(event("a", b"first", &[])),
            Step::ReplyClose(accepted()),
            Step::Reply(event("b", b"second", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), 2, "each invocation answered exactly once");
    assert_response(posts[0], "a", b"first");
    assert_response(posts[1], "b", b"second");
    assert_eq!(
        out.requests[2].conn, 1,
        "second /next on a fresh connection"
    );
}

#[test]
fn next_that_dies_twice_before_a_reply_ends_the_process() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve(
        "next_that_dies_twice_before_a_reply_ends_the_process",
        vec![
            Step::Reply(event("a", b"x", &[])),
            Step::Reply(accepted()),
            Step::Hangup,
            Step::Hangup,
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("GET /next failed twice"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.requests.len(),
        4,
        "one retry, no more: {:?}",
        out.requests
    );
    assert!(out.requests[2].is_next() && out.requests[3].is_next());
}

#[test]
fn lower_case_headers_and_missing_optional_headers_are_fine() {
    if child() {
        tinylambda::run(describe)
    }
    let bare =
        b"HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: bare-1\r\ncontent-length: 2\r\n\r\n{}";
    let out = serve(
        "lower_case_headers_and_missing_optional_headers_are_fine",
        vec![Step::Reply(bare.to_vec()), Step::Reply(accepted())],
    );
    out.assert_ran_to_the_end();
    let body = out.posts()[0].text();
    for line in [
        "id=bare-1",
        "deadline=None",
        "remaining_is_some=false",
        "arn=None",
        "trace=None",
        "client=None",
        "cognito=None",
        "tenant=None",
        "invocation=None",
        "content_type=None",
        "env_trace=None",
        "event_len=2",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from {body}"
        );
    }
}

#[test]
fn every_lambda_header_reaches_the_context() {
    if child() {
        tinylambda::run(describe)
    }
    let extra = [
        (
            "lambda-runtime-client-context",
            "{\"custom\":{\"k\":\"v\"}}",
        ),
        (
            "LAMBDA-RUNTIME-COGNITO-IDENTITY",
            "{\"cognitoIdentityId\":\"c\"}",
        ),
        ("Lambda-Runtime-Aws-Tenant-Id", "tenant-7"),
        ("Lambda-Runtime-Invocation-Id", "inv-42"),
    ];
    let out = serve(
        "every_lambda_header_reaches_the_context",
        vec![
            Step::Reply(event("full-1", b"{}", &extra)),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let body = out.posts()[0].text();
    for line in [
        "id=full-1",
        "deadline=Some(4102444800000)",
        "remaining_is_some=true",
        "arn=Some(\"arn:aws:lambda:us-east-1:123456789012:function:test\")",
        "trace=Some(\"Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\")",
        "client=Some(\"{\\\"custom\\\":{\\\"k\\\":\\\"v\\\"}}\")",
        "cognito=Some(\"{\\\"cognitoIdentityId\\\":\\\"c\\\"}\")",
        "tenant=Some(\"tenant-7\")",
        "invocation=Some(\"inv-42\")",
        "content_type=Some(\"application/json\")",
        "env_trace=Some(\"Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\")",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from {body}"
        );
    }
}

#[test]
fn trace_id_env_var_follows_each_invocation_and_is_removed_when_absent() {
    if child() {
        tinylambda::run(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(std::env::var("_X_AMZN_TRACE_ID")
                .unwrap_or_else(|_| "<unset>".into())
                .into_bytes())
        })
    }
    let with_trace = |id: &str, trace: &str| {
        let raw = format!(
            "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Trace-Id: {trace}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Step::Reply(raw.into_bytes())
    };
    let out = serve_with(
        "trace_id_env_var_follows_each_invocation_and_is_removed_when_absent",
        vec![
            with_trace("t1", "Root=1-a"),
            Step::Reply(accepted()),
            with_trace("t2", "Root=1-b;Parent=c"),
            Step::Reply(accepted()),
            Step::Reply(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: t3\r\nContent-Length: 0\r\n\r\n".to_vec()),
            Step::Reply(accepted()),
        ],
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("_X_AMZN_TRACE_ID", "stale-from-the-environment");
        },
    );
    out.assert_ran_to_the_end();
    let seen: Vec<String> = out.posts().iter().map(|r| r.text()).collect();
    assert_eq!(seen, ["Root=1-a", "Root=1-b;Parent=c", "<unset>"]);
}

#[test]
fn invocation_id_is_echoed_exactly_when_next_carried_one() {
    if child() {
        tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            if event == b"fail" {
                Err("failed".into())
            } else {
                Ok(event.to_vec())
            }
        })
    }
    let out = serve(
        "invocation_id_is_echoed_exactly_when_next_carried_one",
        vec![
            Step::Reply(event(
                "i1",
                b"ok",
                &[("Lambda-Runtime-Invocation-Id", "nonce-1")],
            )),
            Step::Reply(accepted()),
            Step::Reply(event("i2", b"ok", &[])),
            Step::Reply(accepted()),
            Step::Reply(event(
                "i3",
                b"fail",
                &[("lambda-runtime-invocation-id", "nonce-3")],
            )),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(
        posts[0].header("Lambda-Runtime-Invocation-Id"),
        Some("nonce-1")
    );
    assert_eq!(posts[1].header("Lambda-Runtime-Invocation-Id"), None);
    assert!(posts[2].path.ends_with("/i3/error"));
    assert_eq!(
        posts[2].header("Lambda-Runtime-Invocation-Id"),
        Some("nonce-3")
    );
}

#[test]
fn an_invocation_id_that_is_not_utf8_is_still_echoed() {
    if child() {
        tinylambda::run(echo)
    }
    let mut raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: raw\r\n".to_vec();
    raw.extend_from_slice(b"Lambda-Runtime-Invocation-Id: inv-\xff\xfe\r\n");
    raw.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
    let out = serve(
        "an_invocation_id_that_is_not_utf8_is_still_echoed",
        vec![Step::Reply(raw), Step::Reply(accepted())],
    );
    out.assert_ran_to_the_end();
    // The fake server reads headers as lossy UTF-8: the two bytes show as two U+FFFD.
    assert_eq!(
        out.posts()[0].header("Lambda-Runtime-Invocation-Id"),
        Some("inv-\u{fffd}\u{fffd}")
    );
}

#[test]
fn a_server_that_closes_right_after_the_event_still_gets_the_response() {
    if child() {
        // The handler takes 50 ms, as any real one takes some time: the server's close has
        // arrived by the time the response goes out. (A close that crosses the response
        // on the wire cannot be told from a server that read it and went away: that
        // response is never sent twice, see tests/refusals.rs.)
        tinylambda::run(|event: &[u8], ctx: &Context| -> Result<Vec<u8>, Error> {
            std::thread::sleep(std::time::Duration::from_millis(50));
            echo(event, ctx)
        })
    }
    // The event comes without `Connection: close`, but the connection is closed after it:
    // the response must go out on a fresh connection, not be lost in the closed one.
    let out = serve(
        "a_server_that_closes_right_after_the_event_still_gets_the_response",
        vec![
            Step::ReplyClose(event("quick", b"fast handler", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), 1, "{}", out.stderr);
    assert_response(posts[0], "quick", b"fast handler");
    assert_eq!(posts[0].conn, 1, "on a new connection");
}

#[test]
fn an_interim_reply_and_the_event_in_one_read_are_both_used() {
    if child() {
        tinylambda::run(echo)
    }
    let mut raw = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    raw.extend_from_slice(&event("after-100", b"here", &[]));
    let out = serve(
        "an_interim_reply_and_the_event_in_one_read_are_both_used",
        vec![Step::Reply(raw), Step::Reply(accepted())],
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "after-100", b"here");
}

#[test]
fn six_mib_events_arrive_whole_in_both_framings() {
    if child() {
        tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            // Answer with the length and a checksum rather than 6 MiB back.
            let sum = event.iter().fold(0u64, |acc, &b| {
                acc.wrapping_mul(31).wrapping_add(u64::from(b))
            });
            Ok(format!("{} {sum}", event.len()).into_bytes())
        })
    }
    let size = 6_291_556;
    let big: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let sum = big.iter().fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let expected = format!("{size} {sum}");
    let out = serve(
        "six_mib_events_arrive_whole_in_both_framings",
        vec![
            Step::Reply(event("big-cl", &big, &[])),
            Step::Reply(accepted()),
            Step::Reply(chunked_event("big-chunked", &big, &[65536, 1, 1 << 20])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "big-cl", expected.as_bytes());
    assert_response(posts[1], "big-chunked", expected.as_bytes());
}

#[test]
fn six_mib_response_goes_out_whole() {
    if child() {
        tinylambda::run(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(vec![b'r'; 6_291_556])
        })
    }
    let out = serve(
        "six_mib_response_goes_out_whole",
        vec![Step::Reply(event("r", b"{}", &[])), Step::Reply(accepted())],
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "r", &vec![b'r'; 6_291_556]);
}

#[test]
fn handler_error_posts_the_error_document_and_the_loop_goes_on() {
    if child() {
        tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            match event {
                b"custom" => Err(Error::new(
                    "Function.Bad\r\nX-Injected: 1",
                    "quote \" back \\ nl \n tab \t ctl \u{1} é 日本",
                )),
                b"string" => Err("plain message".into()),
                b"parse" => Ok(std::str::from_utf8(event)?
                    .parse::<u8>()?
                    .to_string()
                    .into_bytes()),
                _ => Ok(b"fine".to_vec()),
            }
        })
    }
    let out = serve(
        "handler_error_posts_the_error_document_and_the_loop_goes_on",
        vec![
            Step::Reply(event("e1", b"custom", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("e2", b"string", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("e3", b"parse", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("e4", b"other", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/e1/error");
    assert_eq!(
        posts[0].text(),
        "{\"errorMessage\":\"quote \\\" back \\\\ nl \\u000A tab \\u0009 ctl \\u0001 é 日本\",\
         \"errorType\":\"Function.Bad\\u000D\\u000AX-Injected: 1\",\"stackTrace\":[]}"
    );
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Function.BadX-Injected: 1"),
        "CR/LF stripped from the header"
    );
    assert_eq!(posts[0].header("X-Injected"), None);
    assert_eq!(posts[0].header("Content-Type"), Some("application/json"));
    assert_eq!(
        posts[1].text(),
        "{\"errorMessage\":\"plain message\",\"errorType\":\"Function.Error\",\"stackTrace\":[]}"
    );
    assert_eq!(
        posts[1].header("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Error")
    );
    assert!(posts[2].path.ends_with("/e3/error"));
    assert!(
        posts[2].text().contains("invalid digit found in string"),
        "{}",
        posts[2].text()
    );
    assert_response(posts[3], "e4", b"fine");
}

/// Panics on the event `boom`.
fn panics_on_boom(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    if event == b"boom" {
        panic!("the handler blew up on {}", "purpose");
    }
    Ok(b"survived".to_vec())
}

/// With std (and an unwinding build), a panic is caught and reported, and the loop goes on.
#[test]
#[cfg(feature = "std")]
fn handler_panic_is_reported_and_the_loop_goes_on() {
    if child() {
        tinylambda::run(panics_on_boom)
    }
    let out = serve(
        "handler_panic_is_reported_and_the_loop_goes_on",
        vec![
            Step::Reply(event("p1", b"boom", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("p2", b"after", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert!(posts[0].path.ends_with("/p1/error"));
    assert_eq!(
        posts[0].text(),
        "{\"errorMessage\":\"handler panicked: the handler blew up on purpose\",\
         \"errorType\":\"Function.Panic\",\"stackTrace\":[]}"
    );
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Panic")
    );
    assert_response(posts[1], "p2", b"survived");
    assert!(
        out.stderr.contains("the handler blew up on purpose"),
        "panic message logged"
    );
}

/// Without std nothing catches a panic: the process ends with the message on stderr and
/// nothing posted for the invocation (Lambda reports `Runtime.ExitError` and starts a fresh
/// runtime).
#[test]
#[cfg(not(feature = "std"))]
fn without_std_a_handler_panic_ends_the_process_with_its_message() {
    if child() {
        tinylambda::run(panics_on_boom)
    }
    let out = serve(
        "without_std_a_handler_panic_ends_the_process_with_its_message",
        vec![
            Step::Reply(event("p1", b"fine", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("p2", b"boom", &[])),
        ],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("the handler blew up on purpose"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.posts().len(),
        1,
        "nothing posted for the invocation that panicked"
    );
    assert_eq!(out.requests.len(), 3);
}

#[test]
fn closure_handlers_keep_state_across_invocations() {
    if child() {
        let mut count = 0;
        tinylambda::run(move |_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            count += 1;
            Ok(count.to_string().into_bytes())
        })
    }
    let mut steps = Vec::new();
    for i in 0..3 {
        steps.push(Step::Reply(event(&format!("s{i}"), b"", &[])));
        steps.push(Step::Reply(accepted()));
    }
    let out = serve("closure_handlers_keep_state_across_invocations", steps);
    out.assert_ran_to_the_end();
    let seen: Vec<String> = out.posts().iter().map(|r| r.text()).collect();
    assert_eq!(seen, ["1", "2", "3"]);
}

#[test]
fn function_configuration_comes_from_the_environment_with_defaults() {
    if child() {
        tinylambda::run(describe)
    }
    let steps = || vec![Step::Reply(event("c1", b"", &[])), Step::Reply(accepted())];
    let set = serve_with(
        "function_configuration_comes_from_the_environment_with_defaults",
        steps(),
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_FUNCTION_NAME", "my-fn")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "7")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/my-fn")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/21/[$LATEST]abc");
        },
    );
    set.assert_ran_to_the_end();
    let body = set.posts()[0].text();
    for line in [
        "name=my-fn",
        "version=7",
        "memory=3008",
        "group=/aws/lambda/my-fn",
        "stream=2026/11/21/[$LATEST]abc",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from {body}"
        );
    }
    let unset = serve_with(
        "function_configuration_comes_from_the_environment_with_defaults",
        steps(),
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots");
        },
    );
    unset.assert_ran_to_the_end();
    let body = unset.posts()[0].text();
    for line in [
        "name=",
        "version=$LATEST",
        "memory=128",
        "group=",
        "stream=",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from {body}"
        );
    }
}

#[test]
fn path_prefix_and_scheme_forms_reach_the_right_paths() {
    if child() {
        tinylambda::run(echo)
    }
    let steps = || vec![Step::Reply(event("x", b"p", &[])), Step::Reply(accepted())];
    for (form, prefix) in [
        ("http://127.0.0.1:{port}/.rt", "/.rt"),
        ("http://127.0.0.1:{port}/.rt/_/", "/.rt/_"),
        ("localhost:{port}/foo", "/foo"),
        ("HTTP://127.0.0.1:{port}", ""),
    ] {
        let out = serve_with(
            "path_prefix_and_scheme_forms_reach_the_right_paths",
            steps(),
            |cmd, port| {
                cmd.env(
                    "AWS_LAMBDA_RUNTIME_API",
                    form.replace("{port}", &port.to_string()),
                );
            },
        );
        out.assert_ran_to_the_end();
        assert_eq!(
            out.requests[0].path,
            format!("{prefix}/2018-06-01/runtime/invocation/next"),
            "{form}"
        );
        assert_eq!(
            out.requests[1].path,
            format!("{prefix}/2018-06-01/runtime/invocation/x/response"),
            "{form}"
        );
    }
}

#[test]
fn ipv6_loopback_endpoint_works_when_the_host_has_ipv6() {
    if child() {
        tinylambda::run(echo)
    }
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback on this host");
        return;
    };
    drop(listener);
    // The support server listens on 127.0.0.1; a tiny relay on [::1] forwards to it.
    let relay = std::net::TcpListener::bind("[::1]:0").unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let out = serve_with(
        "ipv6_loopback_endpoint_works_when_the_host_has_ipv6",
        vec![
            Step::Reply(event("v6", b"six", &[])),
            Step::Reply(accepted()),
        ],
        |cmd, port| {
            std::thread::spawn(move || {
                for client in relay.incoming().flatten() {
                    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    let (mut c2, mut s2) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (mut c1, mut s1) = (client, server);
                    std::thread::spawn(move || std::io::copy(&mut c1, &mut s1));
                    std::thread::spawn(move || std::io::copy(&mut s2, &mut c2));
                }
            });
            cmd.env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://[::1]:{relay_port}"),
            );
        },
    );
    out.assert_ran_to_the_end();
    assert_eq!(
        out.requests[0].header("Host"),
        Some(format!("[::1]:{relay_port}").as_str())
    );
    assert_response(out.posts()[0], "v6", b"six");
}

mod status_matrix {
    use super::*;

    /// One invocation whose POST gets `reply`; returns what the server saw.
    fn post_answered_with(test: &str, reply: Vec<u8>) -> support::Outcome {
        serve(
            test,
            vec![
                Step::Reply(event("m1", b"one", &[])),
                Step::Reply(reply),
                Step::Reply(event("m2", b"two", &[])),
                Step::Reply(accepted()),
            ],
        )
    }

    fn assert_logged_and_went_on(out: &support::Outcome, code: &str) {
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_eq!(posts.len(), 2, "no re-post, no /error: {:?}", posts);
        assert!(posts[0].path.ends_with("/m1/response"));
        assert_response(posts[1], "m2", b"two");
        assert!(
            out.stderr.contains(&format!("POST for m1 returned {code}")),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn response_413_is_logged_without_posting_error() {
        if child() {
            tinylambda::run(echo)
        }
        let reply = status(
            413,
            "Exceeded maximum allowed payload size (6291556 bytes).",
        );
        let out = post_answered_with(
            "status_matrix::response_413_is_logged_without_posting_error",
            reply,
        );
        assert_logged_and_went_on(&out, "413");
        assert!(
            out.stderr.contains("Exceeded maximum allowed payload size"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn response_400_is_logged_and_not_retried() {
        if child() {
            tinylambda::run(echo)
        }
        let out = post_answered_with(
            "status_matrix::response_400_is_logged_and_not_retried",
            status(400, "InvalidRequestID"),
        );
        assert_logged_and_went_on(&out, "400");
    }

    #[test]
    fn response_403_is_logged_and_not_retried() {
        if child() {
            tinylambda::run(echo)
        }
        let out = post_answered_with(
            "status_matrix::response_403_is_logged_and_not_retried",
            status(403, "InvalidStateTransition"),
        );
        assert_logged_and_went_on(&out, "403");
    }

    #[test]
    fn response_410_is_logged_and_not_retried() {
        if child() {
            tinylambda::run(echo)
        }
        let out = post_answered_with(
            "status_matrix::response_410_is_logged_and_not_retried",
            status(410, "InvokeTimeout"),
        );
        assert_logged_and_went_on(&out, "410");
    }

    #[test]
    fn error_answered_400_403_or_410_is_logged_and_not_retried() {
        if child() {
            tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
                if event == b"fail" {
                    Err("it failed".into())
                } else {
                    Ok(event.to_vec())
                }
            })
        }
        for code in [400, 403, 410] {
            let out = serve(
                "status_matrix::error_answered_400_403_or_410_is_logged_and_not_retried",
                vec![
                    Step::Reply(event("e1", b"fail", &[])),
                    Step::Reply(status(code, "refused")),
                    Step::Reply(event("e2", b"fine", &[])),
                    Step::Reply(accepted()),
                ],
            );
            out.assert_ran_to_the_end();
            let posts = out.posts();
            assert_eq!(posts.len(), 2, "{code}: one /error, no re-post: {posts:?}");
            assert!(posts[0].path.ends_with("/e1/error"), "{code}");
            assert_response(posts[1], "e2", b"fine");
            assert!(
                out.stderr.contains(&format!("POST for e1 returned {code}")),
                "{}",
                out.stderr
            );
        }
    }

    #[test]
    fn cargo_lambdas_empty_200_counts_as_accepted() {
        if child() {
            tinylambda::run(echo)
        }
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec();
        let out = post_answered_with(
            "status_matrix::cargo_lambdas_empty_200_counts_as_accepted",
            reply,
        );
        out.assert_ran_to_the_end();
        assert_eq!(out.posts().len(), 2);
        assert!(
            !out.stderr.contains("POST for"),
            "nothing logged: {}",
            out.stderr
        );
    }

    #[test]
    fn response_500_ends_the_process_at_once() {
        if child() {
            tinylambda::run(echo)
        }
        let out = post_answered_with(
            "status_matrix::response_500_ends_the_process_at_once",
            status(500, "container error"),
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("POST for m1 returned 500"),
            "{}",
            out.stderr
        );
        assert_eq!(
            out.requests.len(),
            2,
            "nothing after the 500: {:?}",
            out.requests
        );
    }

    #[test]
    fn error_500_ends_the_process_at_once() {
        if child() {
            tinylambda::run(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> { Err("no".into()) })
        }
        let out = post_answered_with(
            "status_matrix::error_500_ends_the_process_at_once",
            status(500, "container error"),
        );
        assert_eq!(out.code, Some(1));
        assert!(out.requests[1].path.ends_with("/m1/error"));
        assert_eq!(out.requests.len(), 2);
    }

    #[test]
    fn next_403_ends_the_process() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "status_matrix::next_403_ends_the_process",
            vec![Step::Reply(status(403, "InvalidStateTransition"))],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("GET /next returned 403"),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 1);
    }

    #[test]
    fn next_404_is_retried_then_ends_the_process_naming_the_status() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "status_matrix::next_404_is_retried_then_ends_the_process_naming_the_status",
            vec![Step::Reply(status(404, "no such route")); 6],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr
                .contains(r#"GET /next returned 404: {"errorMessage":"no such route""#),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 6, "five retries, then stop");
    }

    #[test]
    fn response_500_whose_body_breaks_off_still_ends_the_process() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "status_matrix::response_500_whose_body_breaks_off_still_ends_the_process",
            vec![
                Step::Reply(event("r", b"x", &[])),
                Step::Cut(b"HTTP/1.1 500 Internal\r\nContent-Length: 100\r\n\r\npartial".to_vec()),
                Step::Reply(event("never", b"y", &[])),
            ],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("POST for r returned 500 (exiting)"),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 2, "no /next after the 500");
    }

    #[test]
    fn next_429_then_an_event_is_served() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "status_matrix::next_429_then_an_event_is_served",
            vec![
                Step::Reply(status(429, "slow down")),
                Step::Reply(status(502, "bad gateway")),
                Step::Reply(event("after", b"waiting", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        assert_response(out.posts()[0], "after", b"waiting");
    }

    #[test]
    fn next_500_ends_the_process_without_retrying() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "status_matrix::next_500_ends_the_process_without_retrying",
            vec![Step::Reply(status(500, "boom")); 2],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr
                .contains(r#"GET /next returned 500: {"errorMessage":"boom""#),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 1);
    }

    #[test]
    fn next_204_is_retried_with_backoff() {
        if child() {
            tinylambda::run(echo)
        }
        let no_content = b"HTTP/1.1 204 No Content\r\n\r\n".to_vec();
        let out = serve(
            "status_matrix::next_204_is_retried_with_backoff",
            vec![
                Step::Reply(no_content.clone()),
                Step::Reply(no_content),
                Step::Reply(event("late", b"finally", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        assert_response(out.posts()[0], "late", b"finally");
    }

    #[test]
    fn a_2xx_other_than_200_is_not_an_invocation_even_with_a_request_id() {
        if child() {
            tinylambda::run(echo)
        }
        // cargo lambda answers 204 with a request id when it has nothing to hand out.
        let out = serve(
            "status_matrix::a_2xx_other_than_200_is_not_an_invocation_even_with_a_request_id",
            vec![
                Step::Reply(
                    b"HTTP/1.1 204 No Content\r\nLambda-Runtime-Aws-Request-Id: ghost-1\r\n\r\n"
                        .to_vec(),
                ),
                Step::Reply(
                    b"HTTP/1.1 202 Accepted\r\nLambda-Runtime-Aws-Request-Id: ghost-2\r\n\
                      Content-Length: 2\r\n\r\n{}"
                        .to_vec(),
                ),
                Step::Reply(event("real", b"event", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_eq!(posts.len(), 1, "no handler call, no POST for a 204 or 202");
        assert_response(posts[0], "real", b"event");
    }

    #[test]
    fn next_that_never_stops_answering_204_ends_the_process() {
        if child() {
            tinylambda::run(echo)
        }
        let steps = vec![Step::Reply(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()); 6];
        let out = serve(
            "status_matrix::next_that_never_stops_answering_204_ends_the_process",
            steps,
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("GET /next returned 204"),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 6, "five retries, then stop");
    }
}

mod bad_input {
    use super::*;

    #[test]
    fn request_id_that_could_inject_ends_the_process_without_using_it() {
        if child() {
            tinylambda::run(echo)
        }
        for bad in ["a b", "a/../../x", "a\tb", "..", "."] {
            let raw = format!(
                "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {bad}\r\nContent-Length: 0\r\n\r\n"
            );
            let out = serve(
                "bad_input::request_id_that_could_inject_ends_the_process_without_using_it",
                vec![Step::Reply(raw.into_bytes())],
            );
            assert_eq!(out.code, Some(1), "{bad:?}");
            assert!(out.stderr.contains("unsafe request id"), "{}", out.stderr);
            assert_eq!(out.requests.len(), 1, "no POST with {bad:?}");
        }
    }

    #[test]
    fn next_200_without_request_id_ends_the_process() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "bad_input::next_200_without_request_id_ends_the_process",
            vec![Step::Reply(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            )],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr
                .contains("GET /next returned 200 with no request id"),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 1);
    }

    #[test]
    fn head_over_64_kib_ends_the_process_with_a_clear_line() {
        if child() {
            tinylambda::run(echo)
        }
        let mut raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: h\r\n".to_vec();
        while raw.len() < 70_000 {
            raw.extend_from_slice(b"X-Padding: 0123456789012345678901234567890123456789\r\n");
        }
        raw.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let out = serve(
            "bad_input::head_over_64_kib_ends_the_process_with_a_clear_line",
            vec![Step::Reply(raw)],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("GET /next failed: head over 64 KiB"),
            "{}",
            out.stderr
        );
        assert_eq!(out.requests.len(), 1);
    }

    #[test]
    fn malformed_head_ends_the_process() {
        if child() {
            tinylambda::run(echo)
        }
        let out = serve(
            "bad_input::malformed_head_ends_the_process",
            vec![Step::Reply(
                b"HTTP/1.1 200 OK\r\nBroken header line\r\n\r\n".to_vec(),
            )],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr
                .contains("GET /next failed: malformed header name"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn event_that_ends_early_is_reported_to_error_on_a_fresh_connection() {
        if child() {
            tinylambda::run(echo)
        }
        let mut cut = event("short", b"0123456789", &[]);
        cut.truncate(cut.len() - 4);
        let out = serve(
            "bad_input::event_that_ends_early_is_reported_to_error_on_a_fresh_connection",
            vec![
                Step::Cut(cut),
                Step::Reply(accepted()),
                Step::Reply(event("next", b"ok", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/short/error");
        assert_eq!(posts[0].conn, 1);
        assert_eq!(
            posts[0].text(),
            "{\"errorMessage\":\"the event could not be read: connection closed\",\
             \"errorType\":\"Runtime.InvalidEvent\",\"stackTrace\":[]}"
        );
        assert_eq!(
            posts[0].header("Lambda-Runtime-Function-Error-Type"),
            Some("Runtime.InvalidEvent")
        );
        assert_response(posts[1], "next", b"ok");
    }

    #[test]
    fn malformed_chunk_is_reported_to_error() {
        if child() {
            tinylambda::run(echo)
        }
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: mc\r\nTransfer-Encoding: chunked\r\n\r\n\
zz\r\nhello\r\n0\r\n\r\n"
            .to_vec();
        let out = serve(
            "bad_input::malformed_chunk_is_reported_to_error",
            vec![Step::Reply(raw), Step::Reply(accepted())],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert!(posts[0].path.ends_with("/mc/error"));
        assert!(
            posts[0].text().contains("malformed chunk-size line"),
            "{}",
            posts[0].text()
        );
    }

    #[test]
    fn event_over_the_limit_is_refused_before_it_is_read() {
        if child() {
            tinylambda::run(echo)
        }
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: huge\r\nContent-Length: 17000000\r\n\r\n".to_vec();
        let out = serve(
            "bad_input::event_over_the_limit_is_refused_before_it_is_read",
            vec![Step::Reply(raw), Step::Reply(accepted())],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert!(posts[0].path.ends_with("/huge/error"));
        assert_eq!(
            posts[0].header("Lambda-Runtime-Function-Error-Type"),
            Some("Runtime.EventTooLarge")
        );
    }
}

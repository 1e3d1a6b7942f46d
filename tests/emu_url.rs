//! `tinylambda-emu`'s function URL front door: every path outside `/2015-03-31/` is the
//! function's URL. Requests of any method become Lambda's payload format 2.0 event (query
//! strings with repeated keys, cookies, headers joined, binary bodies in base64), and the
//! function's result becomes the caller's response (status, headers, cookies, base64 bodies,
//! streams with the function URL prelude); function errors, timeouts and malformed
//! responses are 502; the event and the response are held to Lambda's limits.
//!
//! Real emulator, real bootstraps (this test binary re-run in a role, the examples), real
//! sockets on 127.0.0.1; every wait is bounded. Events are read with the strict JSON parser
//! of `support`.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use tinylambda::{Context, Error};

mod emu_support;
mod support;

use emu_support::*;
use support::json::{self, Value};

/// Lambda's limit on an invocation's request (the event): 6 MiB.
const MAX_REQUEST: usize = 6 * 1024 * 1024;
/// Lambda's limit on a buffered response: 6 MiB + 100 bytes.
const MAX_RESPONSE: usize = 6 * 1024 * 1024 + 100;

// ---------------------------------------------------------------------------------------
// Bootstraps

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Some(role) = my_role() else {
        return;
    };
    match role.as_str() {
        // The event itself is the result: no statusCode, so the caller gets it as JSON.
        "echo-event" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(event.to_vec())
        }),
        // The request's body is the function's result, as it is.
        "respond" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            let event = parse(event);
            Ok(event.str("body").unwrap_or_default().as_bytes().to_vec())
        }),
        // The request's body comes back as the response's body, base64 when it came so.
        "base64-echo" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            let event = parse(event);
            let base64 = event.get("isBase64Encoded") == Some(&Value::Bool(true));
            let mut body = Vec::new();
            json_string(&mut body, event.str("body").unwrap_or_default());
            Ok(format!(
                r#"{{"statusCode":200,"headers":{{"content-type":"application/octet-stream","x-was-base64":"{base64}"}},"body":{},"isBase64Encoded":{base64}}}"#,
                String::from_utf8_lossy(&body)
            )
            .into_bytes())
        }),
        // `/fail`: a function error; `/sleep`: past the timeout; else the path.
        "path-behaviour" => {
            tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
                let event = parse(event);
                match event.str("rawPath").unwrap_or_default() {
                    "/fail" => Err(Error::new("Function.Nope", "asked to fail")),
                    "/sleep" => {
                        std::thread::sleep(LIMIT);
                        Ok(Vec::new())
                    }
                    path => Ok(format!(r#"{{"statusCode":200,"body":"{path}"}}"#).into_bytes()),
                }
            })
        }
        // The event's length, as the result.
        "event-size" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(event.len().to_string().into_bytes())
        }),
        // `?n=N`: a result of exactly N bytes, `{"statusCode":200,"body":"xx…"}`.
        "sized-result" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            let event = parse(event);
            let query = event.str("rawQueryString").unwrap_or_default();
            let n: usize = query.strip_prefix("n=").unwrap_or("0").parse()?;
            let head = br#"{"statusCode":200,"body":""#;
            let mut result = head.to_vec();
            result.resize(n - 2, b'x');
            result.extend_from_slice(b"\"}");
            Ok(result)
        }),
        #[cfg(feature = "streaming")]
        "stream-gated" => tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut tinylambda::Stream| -> Result<(), Error> {
                out.http_response(
                    201,
                    &[("content-type", "text/plain"), ("x-streamed", "yes")],
                    &["visited=1; Path=/", "theme=dark"],
                )?;
                out.write_all(b"first\n")?;
                let marker = std::env::var("MARKER").unwrap_or_default();
                if !wait_until(LIMIT, || std::path::Path::new(&marker).exists()) {
                    out.write_all(b"gave up waiting\n")?;
                    return Ok(());
                }
                out.write_all(b"second\n")?;
                Ok(())
            },
        ),
        #[cfg(feature = "streaming")]
        "stream-fails" => tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut tinylambda::Stream| -> Result<(), Error> {
                out.http_response(200, &[("content-type", "text/plain")], &[])?;
                out.write_all(b"partial")?;
                Err(Error::new("Function.Broke", "it broke midway"))
            },
        ),
        "raw-prelude" => raw_prelude_runtime(),
        other => panic!("unknown role {other}"),
    }
}

/// Parses an event with the strict parser (a role that gets something else panics, and
/// the invocation fails).
fn parse(event: &[u8]) -> Value {
    json::parse(std::str::from_utf8(event).expect("UTF-8 event")).expect("a JSON event")
}

/// Appends `text` as a JSON string.
fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if c < ' ' => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => out.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    out.push(b'"');
}

/// Streams a function URL response by hand, the prelude cut across pieces: part of the
/// JSON; the rest of it with 3 of the NUL bytes; the other 5 with the start of the body;
/// the rest of the body.
fn raw_prelude_runtime() -> ! {
    loop {
        let (id, _, _) = next_event();
        let pieces: [&[u8]; 4] = [
            br#"{"statusCode":4"#,
            b"18,\"headers\":{\"x-teapot\":\"short and stout\"}}\0\0\0",
            b"\0\0\0\0\0I am ",
            b"a teapot",
        ];
        let mut body = Vec::new();
        for piece in pieces {
            body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let mut stream = api_send(
            "POST",
            &format!("/2018-06-01/runtime/invocation/{id}/response"),
            "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\nContent-Type: application/vnd.awslambda.http-integration-response\r\n",
            &body,
        );
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// The values of every header `name` in a raw head, in order.
fn headers_named(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .collect()
}

/// The event the echo-event role got, from its reply.
fn event_of(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    json::parse(&reply.text()).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

/// The value at `path` (member names, outermost first) in `value`.
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// The string at `path` in `value`.
fn text_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    match at(value, path)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Requests become Lambda's payload format 2.0 event

#[test]
fn every_method_becomes_a_payload_2_0_event_with_its_query_headers_and_cookies() {
    child();
    let emu = Emu::serve(&role(
        "every_method_becomes_a_payload_2_0_event_with_its_query_headers_and_cookies",
        "echo-event",
        &[],
    ));
    let mut client = emu.client();
    let headers = [
        ("User-Agent", "emu-test/1"),
        ("X-Repeat", "one"),
        ("Cookie", "session=abc; theme=dark"),
        ("x-repeat", "two"),
        ("Cookie", "lang=en"),
        (
            "X-Amzn-Trace-Id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ),
    ];
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let reply = client.send(
            method,
            "/orders/42?item=tea&item=cake&note=two%20words&flag",
            &headers,
            b"",
        );
        assert_eq!(
            reply.header("Content-Type").as_deref(),
            Some("application/json"),
            "a result without statusCode is JSON"
        );
        let event = event_of(&reply);
        assert_eq!(event.str("version"), Some("2.0"));
        assert_eq!(event.str("routeKey"), Some("$default"));
        assert_eq!(event.str("rawPath"), Some("/orders/42"));
        assert_eq!(
            event.str("rawQueryString"),
            Some("item=tea&item=cake&note=two%20words&flag")
        );
        let parameters = event.get("queryStringParameters").expect("parameters");
        assert_eq!(
            parameters.str("item"),
            Some("tea,cake"),
            "repeated keys joined"
        );
        assert_eq!(parameters.str("note"), Some("two words"));
        assert_eq!(parameters.str("flag"), Some(""));
        assert_eq!(
            event.get("cookies"),
            Some(&Value::Array(
                ["session=abc", "theme=dark", "lang=en"]
                    .map(|c| Value::String(c.into()))
                    .to_vec()
            ))
        );
        let headers = event.get("headers").expect("headers");
        assert_eq!(
            headers.str("x-repeat"),
            Some("one,two"),
            "repeated headers joined"
        );
        assert_eq!(headers.str("user-agent"), Some("emu-test/1"));
        assert_eq!(headers.str("host"), Some("localhost"));
        assert!(
            headers.keys().iter().all(|k| k.to_ascii_lowercase() == *k),
            "names lower-cased: {:?}",
            headers.keys()
        );
        assert_eq!(headers.get("cookie"), None, "cookies moved to `cookies`");
        assert_eq!(
            text_at(&event, &["requestContext", "http", "method"]),
            Some(method)
        );
        assert_eq!(
            text_at(&event, &["requestContext", "http", "path"]),
            Some("/orders/42")
        );
        assert_eq!(
            text_at(&event, &["requestContext", "http", "protocol"]),
            Some("HTTP/1.1")
        );
        assert_eq!(
            text_at(&event, &["requestContext", "http", "sourceIp"]),
            Some("127.0.0.1")
        );
        assert_eq!(
            text_at(&event, &["requestContext", "http", "userAgent"]),
            Some("emu-test/1")
        );
        let request_id = reply.header("X-Amzn-RequestId").expect("request id");
        assert_eq!(
            text_at(&event, &["requestContext", "requestId"]),
            Some(request_id.as_str())
        );
        for (path, expected) in [
            (&["requestContext", "routeKey"][..], "$default"),
            (&["requestContext", "stage"], "$default"),
            (&["requestContext", "accountId"], "123456789012"),
        ] {
            assert_eq!(text_at(&event, path), Some(expected), "{path:?}");
        }
        let url_id = text_at(&event, &["requestContext", "apiId"]).expect("apiId");
        assert_eq!(url_id.len(), 32);
        assert_eq!(
            text_at(&event, &["requestContext", "domainPrefix"]),
            Some(url_id)
        );
        assert_eq!(
            text_at(&event, &["requestContext", "domainName"]),
            Some(format!("{url_id}.lambda-url.us-east-1.on.aws").as_str())
        );
        let time = text_at(&event, &["requestContext", "time"]).expect("time");
        assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");
        let Some(Value::Number(epoch)) = at(&event, &["requestContext", "timeEpoch"]) else {
            panic!("timeEpoch");
        };
        assert_eq!(epoch.len(), 13, "epoch milliseconds: {epoch}");
        assert_eq!(event.get("body"), None, "no body, no `body`");
        assert_eq!(event.get("isBase64Encoded"), Some(&Value::Bool(false)));
    }
    // HEAD: the head of the answer, no body; the connection goes on.
    client.request("HEAD", "/anything", &[], b"");
    let reply = client.read_head_reply();
    assert_eq!(reply.status, 200, "{reply:?}");
    let length: usize = reply
        .header("Content-Length")
        .and_then(|l| l.parse().ok())
        .expect("the length the body would have");
    assert!(length > 100, "{length}");
    let reply = client.send("GET", "/after-head", &[], b"");
    assert_eq!(reply.status, 200, "the next reply is intact: {reply:?}");
    assert_eq!(event_of(&reply).str("rawPath"), Some("/after-head"));
    // The Invoke API keeps its paths: an unknown one under /2015-03-31/ is still a 404.
    let reply = client.post("/2015-03-31/functions/nope/invocations", &[], b"{}");
    assert_eq!(
        (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
        (404, Some("ResourceNotFoundException"))
    );
}

#[test]
fn a_text_body_goes_in_as_text_and_a_binary_one_as_base64_both_ways() {
    child();
    let emu = Emu::serve(&role(
        "a_text_body_goes_in_as_text_and_a_binary_one_as_base64_both_ways",
        "base64-echo",
        &[],
    ));
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let reply = emu.client().post(
        "/upload",
        &[("Content-Type", "application/octet-stream")],
        &binary,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-was-base64").as_deref(), Some("true"));
    assert_eq!(reply.body, binary, "the base64 body came back decoded");
    let text = "plain text, \"quoted\", é\n".as_bytes();
    let reply = emu.client().post(
        "/upload",
        &[("Content-Type", "text/plain; charset=utf-8")],
        text,
    );
    assert_eq!(reply.header("x-was-base64").as_deref(), Some("false"));
    assert_eq!(reply.body, text);
}

// ---------------------------------------------------------------------------------------
// The function's result becomes the caller's response

#[test]
fn a_status_code_result_gives_its_status_headers_cookies_and_body() {
    child();
    let emu = Emu::serve(&role(
        "a_status_code_result_gives_its_status_headers_cookies_and_body",
        "respond",
        &[],
    ));
    let respond = |result: &str| {
        emu.client().post(
            "/",
            &[("Content-Type", "application/json")],
            result.as_bytes(),
        )
    };
    let reply = respond(
        r#"{"statusCode":201,"headers":{"Content-Type":"text/html","X-Custom":"a, b","X-Count":3},"cookies":["a=1; Max-Age=60","b=2; Path=/"],"body":"<p>made</p>"}"#,
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(
        reply.head.starts_with("HTTP/1.1 201 Created\r\n"),
        "{}",
        reply.head
    );
    assert_eq!(reply.header("Content-Type").as_deref(), Some("text/html"));
    assert_eq!(reply.header("X-Custom").as_deref(), Some("a, b"));
    assert_eq!(reply.header("X-Count").as_deref(), Some("3"));
    assert_eq!(
        headers_named(&reply.head, "Set-Cookie"),
        ["a=1; Max-Age=60", "b=2; Path=/"]
    );
    assert_eq!(reply.body, b"<p>made</p>");

    let reply = respond(r#"{"statusCode":200,"body":"AP+Afw==","isBase64Encoded":true}"#);
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &[0, 0xff, 0x80, 0x7f][..])
    );

    let reply = respond(r#"{"statusCode":404}"#);
    assert_eq!((reply.status, reply.body.len()), (404, 0));
    let reply = respond(r#"{"statusCode":204,"body":"dropped"}"#);
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("Content-Length"), None, "{}", reply.head);

    // Any other result: 200, JSON, as it is.
    for result in [
        r#"{"message":"hi"}"#,
        r#""Hello, world!""#,
        "[1,2,3]",
        "not JSON",
    ] {
        let reply = respond(result);
        assert_eq!(
            (
                reply.status,
                reply.header("Content-Type").as_deref(),
                reply.text().as_str()
            ),
            (200, Some("application/json"), result)
        );
    }

    // A statusCode that makes no response: 502, and the log says why.
    for (result, why) in [
        (
            r#"{"statusCode":"two hundred"}"#,
            "statusCode is not a whole number",
        ),
        (
            r#"{"statusCode":200,"headers":{"bad name":"x"}}"#,
            "is not an HTTP token",
        ),
        (
            r#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
            "the body is not base64",
        ),
    ] {
        let reply = respond(result);
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (502, "Internal Server Error"),
            "{result}"
        );
        emu.wait_log(why, 1);
    }
}

#[test]
fn the_hello_example_answers_hello_world_on_any_path() {
    let emu = Emu::serve(&args(&["--", &example("hello")]));
    let reply = emu.client().send("GET", "/hello?name=ada", &[], b"");
    assert_eq!((reply.status, reply.text().as_str()), (200, "Hello World"));
}

#[test]
fn the_url_example_reads_the_path_and_the_query() {
    let emu = Emu::serve(&args(&["--", &example("url")]));
    let mut client = emu.client();
    let reply = client.send("GET", "/hello?name=ada%20lovelace&x=1", &[], b"");
    assert_eq!(
        (
            reply.status,
            reply.header("Content-Type").as_deref(),
            reply.text().as_str()
        ),
        (
            200,
            Some("text/plain; charset=utf-8"),
            "Hello, ada lovelace!\n"
        )
    );
    let reply = client.send("GET", "/hello", &[], b"");
    assert_eq!(reply.text(), "Hello, world!\n");
    let reply = client.send("GET", "/other?name=x", &[], b"");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (404, "No page at /other\n")
    );
}

// ---------------------------------------------------------------------------------------
// Streams with the function URL prelude

#[cfg(feature = "streaming")]
#[test]
fn a_streamed_response_gives_its_prelude_head_then_its_body_chunk_by_chunk() {
    child();
    let dir = temp_dir("url-stream");
    let marker = dir.join("go");
    let emu = Emu::serve(&role(
        "a_streamed_response_gives_its_prelude_head_then_its_body_chunk_by_chunk",
        "stream-gated",
        &["--env", &format!("MARKER={}", marker.display())],
    ));
    let mut client = emu.client();
    client.request("GET", "/stream", &[], b"");
    // The first line arrives while the handler still waits for the marker.
    client.wait_for(b"first\n");
    std::fs::write(&marker, b"").unwrap();
    let reply = client.read_reply();
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(
        reply.header("Transfer-Encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(reply.header("Content-Type").as_deref(), Some("text/plain"));
    assert_eq!(reply.header("x-streamed").as_deref(), Some("yes"));
    assert_eq!(
        headers_named(&reply.head, "Set-Cookie"),
        ["visited=1; Path=/", "theme=dark"]
    );
    assert_eq!(reply.text(), "first\nsecond\n", "no prelude, no NUL bytes");
    let _ = std::fs::remove_dir_all(dir);

    // The stream example: its prelude's status, header and cookie, then its lines.
    let emu = Emu::serve(&args(&["--", &example("stream")]));
    let reply = emu
        .client()
        .post("/", &[("Content-Type", "application/json")], b"{}");
    assert_eq!(reply.status, 200);
    assert_eq!(headers_named(&reply.head, "Set-Cookie"), ["visited=1"]);
    assert!(
        reply.text().starts_with("line 1 of 3\n"),
        "{}",
        reply.text()
    );
}

#[test]
fn a_prelude_cut_across_pieces_is_read_whole() {
    child();
    let emu = Emu::serve(&role(
        "a_prelude_cut_across_pieces_is_read_whole",
        "raw-prelude",
        &[],
    ));
    let reply = emu.client().send("GET", "/", &[], b"");
    assert_eq!(reply.status, 418, "{reply:?}");
    assert_eq!(reply.header("x-teapot").as_deref(), Some("short and stout"));
    assert_eq!(reply.text(), "I am a teapot");
}

#[cfg(feature = "streaming")]
#[test]
fn a_stream_that_fails_after_its_head_is_cut_off_not_ended() {
    child();
    let emu = Emu::serve(&role(
        "a_stream_that_fails_after_its_head_is_cut_off_not_ended",
        "stream-fails",
        &[],
    ));
    let mut client = emu.client();
    client.request("GET", "/", &[], b"");
    let mut raw = Vec::new();
    client
        .stream
        .read_to_end(&mut raw)
        .expect("the emulator closes");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("partial"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no last chunk: the caller sees a cut-off response: {text:?}"
    );
    emu.wait_log("the stream failed after its head with Function.Broke", 1);
}

// ---------------------------------------------------------------------------------------
// Errors and timeouts: 502

#[test]
fn function_errors_and_timeouts_are_502_and_the_log_says_which() {
    child();
    let emu = Emu::serve(&role(
        "function_errors_and_timeouts_are_502_and_the_log_says_which",
        "path-behaviour",
        &["--timeout", "1"],
    ));
    let mut client = emu.client();
    let reply = client.send("GET", "/fail", &[], b"");
    assert_eq!(
        (
            reply.status,
            reply.header("X-Amz-Function-Error"),
            reply.text().as_str()
        ),
        (502, None, "Internal Server Error")
    );
    assert!(reply.head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
    let log = emu.wait_log(
        "function URL: 502, the function failed with Function.Nope",
        1,
    );
    assert!(log.contains("asked to fail"), "{log}");

    let started = Instant::now();
    let reply = client.send("GET", "/sleep", &[], b"");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (502, "Internal Server Error")
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "at the timeout"
    );
    emu.wait_log(
        "function URL: 502, the function failed with Sandbox.Timedout",
        1,
    );

    // And the next request is served by a fresh runtime.
    let reply = client.send("GET", "/fine", &[], b"");
    assert_eq!((reply.status, reply.text().as_str()), (200, "/fine"));
}

// ---------------------------------------------------------------------------------------
// Lambda's limits

#[test]
fn the_event_and_the_response_are_held_to_lambdas_limits() {
    child();
    let test = "the_event_and_the_response_are_held_to_lambdas_limits";
    let emu = Emu::serve(&role(test, "event-size", &[]));
    let post = |len: usize| {
        emu.client().post(
            "/big",
            &[("Content-Type", "text/plain"), ("User-Agent", "limits")],
            &vec![b'a'; len],
        )
    };
    // What the event adds to a body of 7 digits' length: the rest of the event.
    let probe = 1_000_000;
    let overhead = post(probe).text().parse::<usize>().expect("a size") - probe;
    let largest = MAX_REQUEST - overhead;
    let reply = post(largest);
    assert_eq!(
        (reply.status, reply.text()),
        (200, MAX_REQUEST.to_string()),
        "an event of exactly 6 MiB"
    );
    let reply = post(largest + 1);
    assert_eq!(
        (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
        (413, Some("RequestTooLargeException"))
    );
    // A body over 6 MiB is refused before it is read whole.
    let reply = post(MAX_REQUEST + 1);
    assert_eq!(reply.status, 413);

    let emu = Emu::serve(&role(test, "sized-result", &[]));
    let reply = emu
        .client()
        .send("GET", &format!("/?n={MAX_RESPONSE}"), &[], b"");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body.len(),
        MAX_RESPONSE - br#"{"statusCode":200,"body":""}"#.len()
    );
    let reply = emu
        .client()
        .send("GET", &format!("/?n={}", MAX_RESPONSE + 1), &[], b"");
    assert_eq!(reply.status, 502);
    emu.wait_log("failed with Function.ResponseSizeTooLarge", 1);
}

#[test]
fn a_caller_that_sends_half_a_request_never_reaches_the_function() {
    let emu = Emu::serve(&args(&["--", &example("hello")]));
    let mut client = emu.client();
    client
        .stream
        .write_all(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    client.stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = client.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // Still serving, and nothing was invoked for the broken request.
    assert_eq!(emu.client().send("GET", "/", &[], b"").status, 200);
    assert_eq!(
        emu.wait_log("START RequestId:", 1).matches("START").count(),
        1
    );
}

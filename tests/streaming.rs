//! Streamed responses against the fake Runtime API (`cargo test --features streaming`):
//! the request head, chunk per write, the first chunk arriving before the handler ends,
//! errors before and after the first byte, function URL preludes, and streams over 6 MiB.
#![cfg(feature = "streaming")]

mod support;

use std::time::Duration;

use support::{Step, accepted, child, event, serve, serve_with};
use tinylambda::{Context, Error, Stream};

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for quad in text.as_bytes().chunks(4) {
        let n = quad
            .iter()
            .filter(|&&c| c != b'=')
            .fold(0u32, |n, &c| n << 6 | u32::from(value(c)))
            << (6 * quad.iter().filter(|&&c| c == b'=').count());
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - quad.iter().filter(|&&c| c == b'=').count()]);
    }
    out
}

fn assert_streaming_head(post: &support::Request, id: &str) {
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.path,
        format!("/2018-06-01/runtime/invocation/{id}/response")
    );
    assert_eq!(
        post.header("Lambda-Runtime-Function-Response-Mode"),
        Some("streaming")
    );
    assert_eq!(post.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(
        post.header("Trailer"),
        Some("Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    );
    assert_eq!(post.header("Content-Length"), None);
    assert_eq!(post.header("Expect"), None);
}

#[test]
fn every_write_is_one_chunk_and_the_connection_is_closed_after() {
    if child() {
        tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                out.write_all(b"a")?;
                out.write_all(b"")?; // sends nothing: an empty chunk would end the stream
                out.write_all(b"bb")?;
                out.write_all(b"ccc")?;
                Ok(())
            },
        )
    }
    let out = serve(
        "every_write_is_one_chunk_and_the_connection_is_closed_after",
        vec![
            Step::Reply(event(
                "s1",
                b"{}",
                &[("Lambda-Runtime-Invocation-Id", "inv-s1")],
            )),
            Step::Reply(accepted()),
            Step::Reply(event("s2", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_streaming_head(posts[0], "s1");
    assert_eq!(
        posts[0].header("Content-Type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        posts[0].header("Lambda-Runtime-Invocation-Id"),
        Some("inv-s1")
    );
    assert_eq!(posts[0].chunks, [1, 2, 3]);
    assert_eq!(posts[0].body, b"abbccc");
    assert!(posts[0].trailers.is_empty());
    assert_eq!(posts[1].header("Lambda-Runtime-Invocation-Id"), None);
    let conns: Vec<usize> = out.requests.iter().map(|r| r.conn).collect();
    assert_eq!(
        &conns[..4],
        &[0, 0, 1, 1],
        "a fresh connection after each stream"
    );
}

#[test]
fn the_first_chunk_arrives_before_the_handler_finishes() {
    let signal =
        std::env::temp_dir().join(format!("tinylambda-first-chunk-{}", std::process::id()));
    if child() {
        let signal = std::path::PathBuf::from(std::env::var_os("FIRST_CHUNK_SIGNAL").unwrap());
        tinylambda::run_streaming(
            move |_: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                out.write_all(b"first;")?;
                // Wait until the server says it has the first chunk: only possible if the write
                // went out at once.
                for _ in 0..1000 {
                    if signal.exists() {
                        out.write_all(b"the server had it before I finished")?;
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                out.write_all(b"timed out waiting")?;
                Ok(())
            },
        )
    }
    let _ = std::fs::remove_file(&signal);
    let out = serve_with(
        "the_first_chunk_arrives_before_the_handler_finishes",
        vec![
            Step::Reply(event("f1", b"{}", &[])),
            Step::ReplyWhenStreamed {
                signal: signal.clone(),
                reply: accepted(),
            },
        ],
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("FIRST_CHUNK_SIGNAL", &signal);
        },
    );
    let _ = std::fs::remove_file(&signal);
    out.assert_ran_to_the_end();
    assert_eq!(
        out.posts()[0].text(),
        "first;the server had it before I finished"
    );
}

/// Writes a little, then fails: with an error, or (for the event `panic`) a panic.
fn fails_midway(event: &[u8], _: &Context, out: &mut Stream) -> Result<(), Error> {
    out.write_all(b"partial output")?;
    if event == b"panic" {
        panic!("mid-stream panic");
    }
    Err(Error::new("Function.Midway", "broke \"halfway\"\nthrough"))
}

/// The error document in a streamed response's trailer.
fn trailer_document(post: &support::Request) -> String {
    let encoded = post
        .trailer("Lambda-Runtime-Function-Error-Body")
        .expect("error body trailer");
    String::from_utf8(base64_decode(encoded)).expect("UTF-8 document")
}

#[test]
fn an_error_after_the_first_byte_goes_out_as_trailers() {
    if child() {
        tinylambda::run_streaming(fails_midway)
    }
    let out = serve(
        "an_error_after_the_first_byte_goes_out_as_trailers",
        vec![
            Step::Reply(event("t1", b"error", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_streaming_head(posts[0], "t1");
    assert_eq!(
        posts[0].body, b"partial output",
        "the error is never body bytes"
    );
    assert_eq!(
        posts[0].trailer("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Midway")
    );
    assert_eq!(
        trailer_document(posts[0]),
        "{\"errorMessage\":\"broke \\\"halfway\\\"\\u000Athrough\",\"errorType\":\"Function.Midway\",\"stackTrace\":[]}"
    );
}

/// With std (and an unwinding build), a panic after the first byte ends the stream with
/// the panic in the trailers.
#[test]
#[cfg(feature = "std")]
fn a_panic_after_the_first_byte_goes_out_as_trailers() {
    if child() {
        tinylambda::run_streaming(fails_midway)
    }
    let out = serve(
        "a_panic_after_the_first_byte_goes_out_as_trailers",
        vec![
            Step::Reply(event("t2", b"panic", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts[0].body, b"partial output");
    assert_eq!(
        posts[0].trailer("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Panic")
    );
    assert!(trailer_document(posts[0]).contains("handler panicked: mid-stream panic"));
}

#[test]
fn an_error_before_any_byte_goes_to_the_error_endpoint() {
    if child() {
        tinylambda::run_streaming(
            |_: &[u8], _: &Context, _: &mut Stream| -> Result<(), Error> {
                Err(Error::new("Function.Early", "nothing written"))
            },
        )
    }
    let out = serve(
        "an_error_before_any_byte_goes_to_the_error_endpoint",
        vec![
            Step::Reply(event("e1", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let post = out.posts()[0];
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/e1/error");
    assert_eq!(
        post.header("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Early")
    );
    assert_eq!(
        post.text(),
        "{\"errorMessage\":\"nothing written\",\"errorType\":\"Function.Early\",\"stackTrace\":[]}"
    );
}

#[test]
fn an_empty_stream_is_still_a_terminated_streamed_response() {
    if child() {
        tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                out.set_content_type("text/event-stream")?;
                Ok(())
            },
        )
    }
    let out = serve(
        "an_empty_stream_is_still_a_terminated_streamed_response",
        vec![Step::Reply(event("z", b"{}", &[])), Step::Reply(accepted())],
    );
    out.assert_ran_to_the_end();
    let post = out.posts()[0];
    assert_streaming_head(post, "z");
    assert_eq!(post.header("Content-Type"), Some("text/event-stream"));
    assert!(post.body.is_empty() && post.chunks.is_empty());
}

#[test]
fn function_url_prelude_is_its_own_chunk_then_eight_nul_bytes() {
    if child() {
        tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                out.http_response(
                    201,
                    &[("content-type", "text/plain"), ("x-id", "7")],
                    &["a=1; Secure"],
                )?;
                out.write_all(b"hello")?;
                // The head is gone: the content type can no longer change.
                assert!(out.set_content_type("text/html").is_err());
                Ok(())
            },
        )
    }
    let out = serve(
        "function_url_prelude_is_its_own_chunk_then_eight_nul_bytes",
        vec![Step::Reply(event("u", b"{}", &[])), Step::Reply(accepted())],
    );
    out.assert_ran_to_the_end();
    let post = out.posts()[0];
    assert_eq!(
        post.header("Content-Type"),
        Some("application/vnd.awslambda.http-integration-response")
    );
    let prelude = br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-id":"7"},"cookies":["a=1; Secure"]}"#;
    assert_eq!(post.chunks, [prelude.len(), 8, 5]);
    let mut expected = prelude.to_vec();
    expected.extend_from_slice(&[0; 8]);
    expected.extend_from_slice(b"hello");
    assert_eq!(post.body, expected);
}

#[test]
fn streams_beyond_six_mib_arrive_whole() {
    if child() {
        tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                let block: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
                for _ in 0..192 {
                    out.write_all(&block)?; // 12 MiB in 64 KiB chunks
                }
                assert_eq!(out.written(), 12 << 20);
                Ok(())
            },
        )
    }
    let out = serve(
        "streams_beyond_six_mib_arrive_whole",
        vec![
            Step::Reply(event("big", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let post = out.posts()[0];
    assert_eq!(post.body.len(), 12 << 20);
    assert_eq!(post.chunks.len(), 192);
    assert!(
        post.body
            .chunks(65536)
            .all(|b| b.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8))
    );
}

#[test]
fn a_streamed_response_refused_with_413_is_logged_and_the_loop_goes_on() {
    if child() {
        tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                out.write_all(b"too much")?;
                Ok(())
            },
        )
    }
    let out = serve(
        "a_streamed_response_refused_with_413_is_logged_and_the_loop_goes_on",
        vec![
            Step::Reply(event("r1", b"{}", &[])),
            Step::Reply(support::status(413, "too large")),
            Step::Reply(event("r2", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert!(
        out.stderr.contains("POST for r1 returned 413"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 2, "no /error after a 413");
}

#[test]
fn run_streaming_says_it_serves_one_invocation_at_a_time_when_lambda_allows_more() {
    if child() {
        tinylambda::run_streaming(
            |event: &[u8], _: &Context, out: &mut Stream| -> Result<(), Error> {
                out.write_all(event)?;
                Ok(())
            },
        )
    }
    let out = serve_with(
        "run_streaming_says_it_serves_one_invocation_at_a_time_when_lambda_allows_more",
        vec![Step::Reply(event("s", b"x", &[])), Step::Reply(accepted())],
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_MAX_CONCURRENCY", "4");
        },
    );
    assert!(
        out.stderr
            .contains("AWS_LAMBDA_MAX_CONCURRENCY > 1: run_streaming serves one at a time"),
        "{}",
        out.stderr
    );
    assert_eq!(out.posts().len(), 1, "{}", out.stderr);
}

//! `tinylambda-emu` end to end: the real binary, real bootstraps (the echo example, this
//! test binary re-run as a bootstrap with a chosen behaviour, raw HTTP runtimes, and the
//! bash + curl peer), real sockets on 127.0.0.1. Every wait is bounded.
//!
//! The tests of streamed responses, graceful shutdown and concurrency need the library's
//! features (`cargo test --all-features`): their bootstraps use `run_streaming`,
//! `on_shutdown` and `run_concurrent`.
//!
//! A test that needs a bootstrap of its own passes `role`'s arguments to the emulator (see
//! `emu_support`), and [`child`] (the first line of every such test) turns the re-run test
//! binary into that bootstrap. A test that reads the emulator's log or a process state
//! waits for it (bounded); it never samples it once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
#[cfg(feature = "concurrent")]
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tinylambda::{Context, Error};

mod emu_support;
mod support;

use emu_support::*;

/// Lambda's limit on a response: 6 MiB + 100 bytes.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 100;

// ---------------------------------------------------------------------------------------
// Bootstraps

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Some(role) = my_role() else {
        return;
    };
    match role.as_str() {
        "echo-or-fail" => tinylambda::run(|event: &[u8], _: &Context| {
            if unword(event) == b"fail" {
                Err(Error::new("Function.Nope", "asked to fail"))
            } else {
                Ok(event.to_vec())
            }
        }),
        "sizes" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            // The event is a size: answer that many bytes (or the pid).
            match std::str::from_utf8(event)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            {
                Some(n) => Ok(vec![b'x'; n]),
                None => Ok(std::process::id().to_string().into_bytes()),
            }
        }),
        "sleepy" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            if unword(event) == b"sleep" {
                std::thread::sleep(Duration::from_secs(60));
            }
            Ok(std::process::id().to_string().into_bytes())
        }),
        "exits" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            if unword(event) == b"exit" {
                std::process::exit(3);
            }
            Ok(std::process::id().to_string().into_bytes())
        }),
        "init-needs-marker" => {
            let marker = std::env::var("MARKER").unwrap_or_default();
            tinylambda::init(|| {
                if Path::new(&marker).exists() {
                    Ok(())
                } else {
                    Err(Error::new(
                        "Runtime.ConfigInvalid",
                        "the marker file is missing",
                    ))
                }
            });
            tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
                Ok(event.to_vec())
            })
        }
        "environment" => tinylambda::run(|_: &[u8], ctx: &Context| -> Result<Vec<u8>, Error> {
            let mut out = String::new();
            for key in [
                "AWS_LAMBDA_RUNTIME_API",
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "_HANDLER",
                "LAMBDA_TASK_ROOT",
                "AWS_REGION",
                "FOO",
            ] {
                out.push_str(&format!(
                    "{key}={}\n",
                    std::env::var(key).unwrap_or_default()
                ));
            }
            out.push_str(&format!(
                "arn={}\n",
                ctx.invoked_function_arn().unwrap_or_default()
            ));
            out.push_str(&format!("trace={}\n", ctx.trace_id().unwrap_or_default()));
            out.push_str(&format!(
                "client_context={}\n",
                ctx.client_context().unwrap_or_default()
            ));
            out.push_str(&format!(
                "remaining_ms={}\n",
                ctx.remaining_ms().unwrap_or_default()
            ));
            Ok(out.into_bytes())
        }),
        "framing" => raw_framing_runtime(),
        "rogue" => raw_rogue_runtime(),
        "extension" => extension_runtime(),
        #[cfg(feature = "streaming")]
        "stream-gated" => tinylambda::run_streaming(
            |_: &[u8], _: &Context, out: &mut tinylambda::Stream| -> Result<(), Error> {
                // One chunk, then nothing more until the test creates the marker file.
                out.set_content_type("text/plain")?;
                out.write_all(b"first chunk\n")?;
                let marker = std::env::var("MARKER").unwrap_or_default();
                let deadline = Instant::now() + LIMIT;
                while !Path::new(&marker).exists() {
                    if Instant::now() > deadline {
                        out.write_all(b"gave up waiting\n")?;
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                out.write_all(b"second chunk\n")?;
                Ok(())
            },
        ),
        #[cfg(feature = "streaming")]
        "stream-sizes" => tinylambda::run_streaming(
            |event: &[u8], _: &Context, out: &mut tinylambda::Stream| -> Result<(), Error> {
                // "fail": a few bytes, then an error; a number: that many bytes.
                if unword(event) == b"fail" {
                    out.write_all(b"partial")?;
                    return Err(Error::new("Function.Broke", "it broke midway"));
                }
                let mut left: usize = std::str::from_utf8(event)?.parse()?;
                let block = vec![b'x'; 64 * 1024];
                while left > 0 {
                    let n = left.min(block.len());
                    out.write_all(&block[..n])?;
                    left -= n;
                }
                Ok(())
            },
        ),
        #[cfg(feature = "concurrent")]
        "together" => together_runtime(),
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// A raw runtime, for what the library never does on purpose

/// Answers each event with how it was framed and its decoded length: `chunked 2049`.
fn raw_framing_runtime() -> ! {
    loop {
        let (_, head, body) = api("GET", "invocation/next", "", b"");
        let id = header_value(&head, "Lambda-Runtime-Aws-Request-Id").expect("request id");
        let (framing, event) = if header_value(&head, "Transfer-Encoding").is_some() {
            ("chunked", dechunk(&body))
        } else {
            ("length", body)
        };
        let whole = unword(&event).iter().all(|&b| b == b'e');
        let answer = format!(
            "{framing} {} {}",
            event.len(),
            if whole { "intact" } else { "damaged" }
        );
        api(
            "POST",
            &format!("invocation/{id}/response"),
            "",
            answer.as_bytes(),
        );
    }
}

/// Breaks the rules and reports the answers: on the first event, a wrong id, `/next` while
/// the invocation is open and a late `/init/error`, then the response, then a second
/// `/response` and an `/error` for the same id; on the second event those last two statuses,
/// posted chunked with a trailer (as aws-lambda-go posts).
fn raw_rogue_runtime() -> ! {
    let mut after = String::new();
    loop {
        let (_, head, _) = api("GET", "invocation/next", "", b"");
        let id = header_value(&head, "Lambda-Runtime-Aws-Request-Id").expect("request id");
        if after.is_empty() {
            let wrong_id = api("POST", "invocation/not-the-id/response", "", b"x").0;
            let next_while_open = api("GET", "invocation/next", "", b"").0;
            let late_init_error = api("POST", "init/error", "", b"{}").0;
            let report = format!(
                "wrong-id:{wrong_id} next-while-open:{next_while_open} late-init-error:{late_init_error}"
            );
            let posted = api(
                "POST",
                &format!("invocation/{id}/response"),
                "",
                report.as_bytes(),
            )
            .0;
            let again = api("POST", &format!("invocation/{id}/response"), "", b"again").0;
            let error = api("POST", &format!("invocation/{id}/error"), "", b"{}").0;
            after =
                format!("first-post:{posted} second-response:{again} error-after-response:{error}");
        } else {
            let mut body = Vec::new();
            for piece in after.as_bytes().chunks(7) {
                body.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
                body.extend_from_slice(piece);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\nLambda-Runtime-Function-Error-Type: none\r\n\r\n");
            api(
                "POST",
                &format!("invocation/{id}/response"),
                "Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n",
                &body,
            );
        }
    }
}

/// An extension in the runtime's own process, registered for `INVOKE` and `SHUTDOWN`,
/// that logs every event it gets; the runtime ignores SIGTERM, so the emulator's shutdown
/// has to wait out its grace period and kill. Registration refusals are logged too, and
/// the event `late` answers with the status of a registration after init.
fn extension_runtime() -> ! {
    // SAFETY: SIG_IGN (1) for SIGTERM.
    unsafe { signal(SIGTERM, 1) };
    let register = |name: &str, body: &str| {
        api_at(
            "POST",
            "/2020-01-01/extension/register",
            &format!("Lambda-Extension-Name: {name}\r\n"),
            body.as_bytes(),
        )
    };
    let (status, head, body) = register("probe", r#"{"events":["INVOKE","SHUTDOWN"]}"#);
    let id = header_value(&head, "Lambda-Extension-Identifier").expect("identifier");
    let again = register("probe", r#"{"events":[]}"#).0;
    let unknown = register("other", r#"{"events":["LOGS"]}"#).0;
    log_line(&format!(
        "extension: registered {status} {} again:{again} unknown-event:{unknown}",
        String::from_utf8_lossy(&body)
    ));
    std::thread::spawn(move || {
        loop {
            // Asking again after SHUTDOWN is how an extension says it is done.
            let (status, _, event) = api_at(
                "GET",
                "/2020-01-01/extension/event/next",
                &format!("Lambda-Extension-Identifier: {id}\r\n"),
                b"",
            );
            log_line(&format!(
                "extension: {status} {}",
                String::from_utf8_lossy(&event)
            ));
        }
    });
    tinylambda::run(move |event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
        if unword(event) == b"late" {
            let late = register("late", "{}").0;
            return Ok(format!("late-register:{late}").into_bytes());
        }
        Ok(event.to_vec())
    })
}

/// Under `--concurrency 3`: each handler counts itself in and waits (at most [`LIMIT`])
/// until all three are running; the third, with three invocations open, first asks for a
/// fourth event on a connection of its own. Each answers whether the three met, that
/// request's status and `AWS_LAMBDA_MAX_CONCURRENCY`.
#[cfg(feature = "concurrent")]
fn together_runtime() -> ! {
    use std::sync::Condvar;
    /// (handlers in, status of the fourth /next once asked)
    static MET: Mutex<(usize, Option<u16>)> = Mutex::new((0, None));
    static CHANGED: Condvar = Condvar::new();
    tinylambda::run_concurrent(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
        let mut met = MET.lock().unwrap();
        met.0 += 1;
        if met.0 == 3 {
            met.1 = Some(api("GET", "invocation/next", "", b"").0);
            CHANGED.notify_all();
        }
        let (met, wait) = CHANGED
            .wait_timeout_while(met, LIMIT, |met| met.1.is_none())
            .unwrap();
        let max = std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").unwrap_or_default();
        Ok(format!(
            "together={} fourth-next={} max={max}",
            !wait.timed_out(),
            met.1.unwrap_or_default()
        )
        .into_bytes())
    })
}

unsafe extern "C" {
    fn signal(signal: i32, handler: usize) -> usize;
}

// ---------------------------------------------------------------------------------------
// The invoke endpoint

#[test]
fn invoke_endpoint_answers_with_the_function_response_on_a_kept_connection() {
    let emu = Emu::serve(&args(&["--", &example("echo")]));
    let mut client = emu.client();
    for event in [
        &br#"{"hello":"world"}"#[..],
        br#""second, same connection""#,
    ] {
        let reply = client.post(INVOKE_PATH, &[("Content-Type", "application/json")], event);
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, event);
        assert_eq!(
            reply.header("Content-Type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            reply.header("X-Amz-Executed-Version").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(
            reply.header("X-Amzn-RequestId").map(|id| id.len()),
            Some(36)
        );
        assert_eq!(reply.header("X-Amz-Function-Error"), None);
    }
    // Lambda's log lines, with the cold start on the first invocation only.
    let log = emu.wait_log("REPORT RequestId: ", 2);
    assert_eq!(log.matches("START RequestId: ").count(), 2, "{log}");
    assert_eq!(log.matches("Init Duration: ").count(), 1, "{log}");

    let reply = client.post("/2015-03-31/functions/other/invocations", &[], b"{}");
    assert_eq!(
        (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
        (404, Some("ResourceNotFoundException"))
    );
    let reply = client.send("GET", INVOKE_PATH, &[], b"");
    assert_eq!(reply.status, 405);
    let reply = client.post(INVOKE_PATH, &[("X-Amz-Invocation-Type", "DryRun")], b"{}");
    assert_eq!(reply.status, 204);
    let reply = emu.invoke(&vec![b'a'; MAX_PAYLOAD + 1]);
    assert_eq!(
        (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
        (413, Some("RequestTooLargeException"))
    );
    // Still serving.
    assert_eq!(emu.invoke(&word("after")).body, word("after"));
}

#[test]
fn function_errors_reach_the_caller_with_x_amz_function_error() {
    child();
    let emu = Emu::serve(&role(
        "function_errors_reach_the_caller_with_x_amz_function_error",
        "echo-or-fail",
        &[],
    ));
    let reply = emu.invoke(&word("fail"));
    assert_eq!(reply.status, 200, "Lambda answers function errors with 200");
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Function.Nope");
    assert!(reply.text().contains("asked to fail"), "{}", reply.text());
    assert_eq!(emu.invoke(&word("fine")).body, word("fine"));
}

#[test]
fn responses_over_6_mb_get_413_and_the_caller_sees_response_size_too_large() {
    child();
    let emu = Emu::serve(&role(
        "responses_over_6_mb_get_413_and_the_caller_sees_response_size_too_large",
        "sizes",
        &[],
    ));
    let pid = emu.invoke(&word("pid")).text();
    let reply = emu.invoke((MAX_PAYLOAD + 1).to_string().as_bytes());
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Function.ResponseSizeTooLarge");
    assert!(reply.text().contains("6291556 bytes"), "{}", reply.text());
    // Exactly at the limit passes.
    let reply = emu.invoke(MAX_PAYLOAD.to_string().as_bytes());
    assert_eq!((reply.status, reply.body.len()), (200, MAX_PAYLOAD));
    assert_eq!(reply.header("X-Amz-Function-Error"), None);
    // The runtime took the 413 in its stride: same process.
    assert_eq!(emu.invoke(&word("pid")).text(), pid);
}

#[test]
fn a_timeout_kills_the_runtime_and_the_next_invocation_starts_a_fresh_one() {
    child();
    let emu = Emu::serve(&role(
        "a_timeout_kills_the_runtime_and_the_next_invocation_starts_a_fresh_one",
        "sleepy",
        &["--timeout", "2"],
    ));
    let first = emu.invoke(&word("pid")).text();
    let started = Instant::now();
    let reply = emu.invoke(&word("sleep"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered at the deadline, not at the end of the sleep"
    );
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Sandbox.Timedout");
    assert!(
        reply.text().contains("Task timed out after 2.00 seconds"),
        "{}",
        reply.text()
    );
    assert!(
        gone(&first),
        "the timed-out runtime {first} is still running"
    );
    let second = emu.invoke(&word("pid"));
    assert_eq!(second.status, 200);
    assert_ne!(second.text(), first, "a fresh runtime answers");
    // Two cold starts: the REPORT line may come after the answer, so wait for it.
    emu.wait_log("Init Duration: ", 2);
}

#[test]
fn an_init_error_goes_to_the_first_caller_and_the_next_invocation_starts_again() {
    child();
    let dir = temp_dir("init");
    let marker = dir.join("ready");
    let emu = Emu::serve(&role(
        "an_init_error_goes_to_the_first_caller_and_the_next_invocation_starts_again",
        "init-needs-marker",
        &["--env", &format!("MARKER={}", marker.display())],
    ));
    let reply = emu.invoke(b"{}");
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Runtime.ConfigInvalid");
    assert!(
        reply.text().contains("the marker file is missing"),
        "{}",
        reply.text()
    );
    std::fs::write(&marker, b"").expect("marker");
    let reply = emu.invoke(&word("now it starts"));
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "\"now it starts\"")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_runtime_that_exits_is_restarted_on_the_next_invocation() {
    child();
    let emu = Emu::serve(&role(
        "a_runtime_that_exits_is_restarted_on_the_next_invocation",
        "exits",
        &[],
    ));
    let first = emu.invoke(&word("pid")).text();
    let reply = emu.invoke(&word("exit"));
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Runtime.ExitError");
    assert!(
        reply
            .text()
            .contains("Runtime exited with error: exit status 3"),
        "{}",
        reply.text()
    );
    let second = emu.invoke(&word("pid"));
    assert_eq!(second.status, 200);
    assert_ne!(second.text(), first);
}

// ---------------------------------------------------------------------------------------
// The Runtime API

#[test]
fn events_above_2048_bytes_reach_the_runtime_chunked_like_lambda_sends_them() {
    child();
    let emu = Emu::serve(&role(
        "events_above_2048_bytes_reach_the_runtime_chunked_like_lambda_sends_them",
        "framing",
        &[],
    ));
    for (size, expected) in [
        (2048, "length 2048 intact"),
        (2049, "chunked 2049 intact"),
        (300_000, "chunked 300000 intact"),
    ] {
        assert_eq!(emu.invoke(&json_of_len(size, b'e')).text(), expected);
    }
    // And the library's echo gets a large event through whole.
    let emu = Emu::serve(&args(&["--", &example("echo")]));
    let mut event: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    event[0] = b'"';
    event[999_999] = b'"';
    assert_eq!(emu.invoke(&event).body, event);
}

#[test]
fn the_runtime_api_refuses_wrong_ids_and_calls_in_the_wrong_state() {
    child();
    let emu = Emu::serve(&role(
        "the_runtime_api_refuses_wrong_ids_and_calls_in_the_wrong_state",
        "rogue",
        &[],
    ));
    assert_eq!(
        emu.invoke(&word("first")).text(),
        "wrong-id:400 next-while-open:403 late-init-error:403"
    );
    // Posted chunked, with a chunk extension and a trailer.
    assert_eq!(
        emu.invoke(&word("second")).text(),
        "first-post:202 second-response:403 error-after-response:403"
    );
}

#[test]
fn the_runtime_gets_lambdas_environment_and_invocation_headers() {
    child();
    let emu = Emu::serve(&role(
        "the_runtime_gets_lambdas_environment_and_invocation_headers",
        "environment",
        &[
            "--env",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
            "--env",
            "FOO=bar",
            "--timeout",
            "30",
        ],
    ));
    let trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
    let reply = emu.client().post(
        INVOKE_PATH,
        &[
            ("X-Amzn-Trace-Id", trace),
            ("X-Amz-Client-Context", "eyJjdXN0b20iOnsiayI6InYifX0="),
        ],
        b"{}",
    );
    let text = reply.text();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from {text}"))
            .to_owned()
    };
    assert!(
        value("AWS_LAMBDA_RUNTIME_API").starts_with("127.0.0.1:"),
        "{text}"
    );
    assert_eq!(value("AWS_LAMBDA_FUNCTION_NAME"), "function");
    assert_eq!(value("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(value("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "512");
    assert_eq!(value("AWS_LAMBDA_LOG_GROUP_NAME"), "/aws/lambda/function");
    assert!(
        value("AWS_LAMBDA_LOG_STREAM_NAME").contains("/[$LATEST]"),
        "{text}"
    );
    assert_eq!(value("_HANDLER"), "function.handler");
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap();
    assert_eq!(PathBuf::from(value("LAMBDA_TASK_ROOT")), exe_dir);
    assert!(!value("AWS_REGION").is_empty());
    assert_eq!(value("FOO"), "bar");
    assert!(
        value("arn").starts_with("arn:aws:lambda:") && value("arn").ends_with(":function:function"),
        "{text}"
    );
    assert_eq!(value("trace"), trace);
    assert_eq!(value("client_context"), r#"{"custom":{"k":"v"}}"#);
    let remaining: u64 = value("remaining_ms").parse().unwrap();
    assert!(
        remaining > 0 && remaining <= 30_000,
        "the deadline is the timeout away: {remaining}"
    );
}

// ---------------------------------------------------------------------------------------
// --invoke and --bench

#[test]
fn invoke_once_prints_the_response_on_stdout() {
    child();
    let output = run_emu(&args(&[
        "--invoke",
        r#"{"hello":"world"}"#,
        "--",
        &example("echo"),
    ]));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, br#"{"hello":"world"}"#);

    let dir = temp_dir("invoke");
    let file = dir.join("event.json");
    std::fs::write(&file, br#"{"from":"a file"}"#).unwrap();
    let output = run_emu(&args(&[
        "--invoke",
        &format!("@{}", file.display()),
        "--",
        &example("echo"),
    ]));
    assert_eq!(output.stdout, br#"{"from":"a file"}"#);
    let _ = std::fs::remove_dir_all(dir);

    let output = run_emu(&invoke_role(
        r#""fail""#,
        "invoke_once_prints_the_response_on_stdout",
        "echo-or-fail",
        &[],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("the function failed with Function.Nope"),
        "{stderr}"
    );
}

#[test]
fn bench_reports_every_measure_as_one_json_object() {
    let output = run_emu(&args(&[
        "--bench",
        "200",
        "--payload",
        "3000",
        "--json",
        "--",
        &example("echo"),
    ]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line = stdout.trim();
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    let number = |key: &str| -> f64 {
        let after = line
            .split(&format!("\"{key}\":"))
            .nth(1)
            .unwrap_or_else(|| panic!("{key} missing: {line}"));
        after.split([',', '}']).next().unwrap().parse().unwrap()
    };
    assert_eq!(number("invocations"), 200.0);
    assert_eq!(number("payload_bytes"), 3000.0);
    for key in [
        "cold_start_ms",
        "latency_p50_us",
        "latency_p99_us",
        "cpu_us_per_invocation",
        "peak_rss_kib",
    ] {
        assert!(number(key) > 0.0, "{key} in {line}");
    }
    assert!(number("latency_p50_us") <= number("latency_p99_us"));

    let output = run_emu(&args(&["--bench", "20", "--", &example("echo")]));
    let table = String::from_utf8_lossy(&output.stdout);
    for row in [
        "cold start",
        "latency p50",
        "latency p99",
        "CPU per invocation",
        "peak RSS",
    ] {
        assert!(table.contains(row), "{row} missing from {table}");
    }
}

#[test]
fn bench_peak_rss_is_the_runtimes_own_not_what_it_inherited_from_the_emulator() {
    // While the bench runs, this test reads the echo runtime's own VmHWM from /proc (the
    // truth), and the emulator's (what a spawned process's ru_maxrss starts from).
    let mut bench = Command::new(EMU)
        .args(["--bench", "20000", "--json", "--", &example("echo")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tinylambda-emu");
    let emulator = bench.id();
    let (mut runtime_kib, mut emulator_kib) = (None, 0);
    let deadline = Instant::now() + LIMIT;
    while bench.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        emulator_kib = emulator_kib.max(vm_hwm_kib(emulator).unwrap_or(0));
        if let Some(kib) = child_of(emulator).and_then(vm_hwm_kib) {
            runtime_kib = Some(kib);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let output = bench.wait_with_output().expect("bench output");
    assert_eq!(output.status.code(), Some(0));
    let line = String::from_utf8_lossy(&output.stdout);
    let reported: u64 = line
        .split("\"peak_rss_kib\":")
        .nth(1)
        .and_then(|rest| rest.trim_end().trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("no peak_rss_kib in {line}"));
    let runtime_kib = runtime_kib.expect("the runtime was seen while the bench ran");
    // The runtime's peak after the last look can only have grown by a little (its buffers
    // are warm by then); what it would have inherited is the emulator's whole peak.
    assert!(
        reported >= runtime_kib && reported <= runtime_kib + 256,
        "reported {reported} KiB; the runtime's own VmHWM was {runtime_kib} KiB, the emulator's {emulator_kib} KiB"
    );
}

/// `VmHWM` of process `pid`, in KiB, while it runs.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A child process of `parent`, found in /proc.
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
}

#[test]
fn the_bash_curl_peer_runs_through_the_emulator() {
    let has = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("curl") || !has("bash") {
        eprintln!(
            "SKIPPED the_bash_curl_peer_runs_through_the_emulator: curl or bash is not installed"
        );
        return;
    }
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/bash-curl/bootstrap");
    let dir = temp_dir("bash-curl");
    let tmp = format!("TMPDIR={}", dir.display());
    let output = run_emu(&args(&[
        "--env",
        &tmp,
        "--invoke",
        r#"{"hello":"from bash"}"#,
        "--",
        &peer.to_string_lossy(),
    ]));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, br#"{"hello":"from bash"}"#);
    let output = run_emu(&args(&[
        "--env",
        &tmp,
        "--bench",
        "5",
        "--json",
        "--",
        &peer.to_string_lossy(),
    ]));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"invocations\":5"));
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------
// Streamed responses, extensions and shutdown, concurrency

#[cfg(feature = "streaming")]
#[test]
fn a_streamed_response_reaches_the_caller_before_the_handler_finishes() {
    child();
    let test = "a_streamed_response_reaches_the_caller_before_the_handler_finishes";
    let dir = temp_dir("stream");
    let marker = dir.join("go");
    let marker_env = format!("MARKER={}", marker.display());
    let emu = Emu::serve(&role(test, "stream-gated", &["--env", &marker_env]));
    let mut client = emu.client();
    client.request("POST", INVOKE_PATH, &[], b"{}");
    // The handler cannot finish before the marker exists, and the test creates it only
    // once the first chunk is here: so it came while the handler was still running.
    client.wait_for(b"first chunk\n");
    std::fs::write(&marker, b"").expect("marker");
    let reply = client.read_reply();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("Transfer-Encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(reply.header("Content-Type").as_deref(), Some("text/plain"));
    assert_eq!(reply.text(), "first chunk\nsecond chunk\n");
    assert!(reply.trailers.is_empty(), "{:?}", reply.trailers);
    // The same connection serves the next invocation.
    let _ = std::fs::remove_file(&marker);
    client.request("POST", INVOKE_PATH, &[], b"{}");
    client.wait_for(b"first chunk\n");
    std::fs::write(&marker, b"").expect("marker");
    assert_eq!(client.read_reply().text(), "first chunk\nsecond chunk\n");

    // A stream that overruns the timeout: the caller has its first chunk, then the error.
    let _ = std::fs::remove_file(&marker);
    let emu = Emu::serve(&role(
        test,
        "stream-gated",
        &["--env", &marker_env, "--timeout", "1"],
    ));
    let reply = emu.invoke(b"{}");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "first chunk\n")
    );
    assert_eq!(
        reply.trailer("Lambda-Runtime-Function-Error-Type"),
        Some("Sandbox.Timedout")
    );
    let document = from_base64(reply.trailer("Lambda-Runtime-Function-Error-Body").unwrap());
    assert!(
        String::from_utf8_lossy(&document).contains("Task timed out after 1.00 seconds"),
        "{}",
        String::from_utf8_lossy(&document)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(feature = "streaming")]
#[test]
fn streams_carry_mid_stream_errors_in_trailers_and_go_past_6_mb() {
    child();
    let test = "streams_carry_mid_stream_errors_in_trailers_and_go_past_6_mb";
    let emu = Emu::serve(&role(test, "stream-sizes", &[]));
    let reply = emu.invoke(&word("fail"));
    assert_eq!((reply.status, reply.text().as_str()), (200, "partial"));
    assert_eq!(
        reply.header("Trailer").as_deref(),
        Some("Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    );
    assert_eq!(
        reply.trailer("Lambda-Runtime-Function-Error-Type"),
        Some("Function.Broke")
    );
    let document = from_base64(reply.trailer("Lambda-Runtime-Function-Error-Body").unwrap());
    let document = String::from_utf8_lossy(&document);
    assert!(
        document.contains(r#""errorType":"Function.Broke""#)
            && document.contains("it broke midway"),
        "{document}"
    );
    // 7 MiB: over the 6 MiB of a buffered response, and no 413.
    let size = 7 * 1024 * 1024;
    let reply = emu.invoke(size.to_string().as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), size);
    assert!(reply.body.iter().all(|&b| b == b'x'));
    assert!(reply.trailers.is_empty(), "{:?}", reply.trailers);

    // --invoke writes the stream to stdout and a mid-stream error to stderr, exit 1.
    let output = run_emu(&invoke_role(r#""fail""#, test, "stream-sizes", &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(output.stdout, b"partial");
    assert!(
        stderr.contains("the function failed mid-stream with Function.Broke: ")
            && stderr.contains("it broke midway"),
        "{stderr}"
    );
}

#[cfg(feature = "streaming")]
#[test]
fn a_function_url_stream_is_passed_through_with_its_prelude() {
    let output = run_emu(&args(&["--invoke", r#"{"n":1}"#, "--", &example("stream")]));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = &output.stdout;
    let nul = out
        .windows(8)
        .position(|w| w == [0; 8])
        .expect("the 8 NUL bytes after the prelude");
    let prelude = String::from_utf8_lossy(&out[..nul]);
    assert!(
        prelude.starts_with(r#"{"statusCode":200"#) && prelude.contains("visited=1"),
        "{prelude}"
    );
    assert_eq!(
        &out[nul + 8..],
        b"line 1 of 3\nline 2 of 3\nline 3 of 3\n{\"n\":1}"
    );
}

#[test]
fn extensions_register_get_their_events_and_hold_the_shutdown_up_to_its_limit() {
    child();
    let output = run_emu(&invoke_role(
        r#""late""#,
        "extensions_register_get_their_events_and_hold_the_shutdown_up_to_its_limit",
        "extension",
        &[],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // Registration closes when the runtime asks for its first event.
    assert_eq!(output.stdout, b"late-register:403");
    for expected in [
        r#"extension: registered 200 {"functionName":"function","functionVersion":"$LATEST","handler":"function.handler"} again:403 unknown-event:403"#,
        r#"extension: 200 {"eventType":"INVOKE","deadlineMs":"#,
        r#"extension: 200 {"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":"#,
        // A SHUTDOWN subscriber is an external extension: 2 s, not 500 ms.
        "tinylambda-emu: shutting down: SIGTERM to the runtime (an extension is registered), SIGKILL in 2000 ms",
        // The runtime ignores SIGTERM: it is killed at the end of the 2 s.
        "tinylambda-emu: the runtime was still running 2000 ms after SIGTERM: killed",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from {stderr}"
        );
    }
    let invoke = stderr
        .lines()
        .find(|l| l.contains(r#""eventType":"INVOKE""#))
        .unwrap();
    let start = stderr
        .lines()
        .find_map(|l| l.split("START RequestId: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .expect("START line");
    assert!(
        invoke.contains(&format!(r#""requestId":"{start}""#)),
        "{invoke}"
    );
}

#[cfg(feature = "graceful-shutdown")]
#[test]
fn the_graceful_example_gets_sigterm_and_its_callback_runs() {
    const CALLBACK: &str = "shutting down: flush buffers and close connections here";
    // At the end of --invoke.
    let output = run_emu(&args(&[
        "--invoke",
        r#"{"a":1}"#,
        "--",
        &example("graceful"),
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(output.stdout, br#"{"a":1}"#);
    assert!(
        stderr.contains("tinylambda-emu: extension tinylambda-graceful-shutdown registered for []"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SIGTERM to the runtime (an extension is registered), SIGKILL in 500 ms"),
        "{stderr}"
    );
    assert!(stderr.contains(CALLBACK), "{stderr}");
    assert!(
        stderr.contains("tinylambda-emu: the runtime ended (exit status 0)"),
        "{stderr}"
    );

    // When the serving emulator gets SIGTERM.
    let mut emu = Emu::serve(&args(&["--", &example("graceful")]));
    assert_eq!(emu.invoke(&word("served")).body, word("served"));
    assert_eq!(emu.terminate(), Some(128 + SIGTERM));
    let stderr = emu.stderr();
    assert!(stderr.contains(CALLBACK), "{stderr}");
    assert!(
        stderr.contains("tinylambda-emu: the runtime ended (exit status 0)"),
        "{stderr}"
    );
    // Without an extension there is no SIGTERM: the runtime is killed at once.
    let output = run_emu(&args(&["--invoke", "{}", "--", &example("echo")]));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("SIGTERM"));
}

#[cfg(feature = "concurrent")]
#[test]
fn with_concurrency_3_three_invocations_run_at_once_and_a_fourth_next_is_refused() {
    child();
    let emu = Emu::serve(&role(
        "with_concurrency_3_three_invocations_run_at_once_and_a_fourth_next_is_refused",
        "together",
        &["--concurrency", "3", "--timeout", "60"],
    ));
    let invoke_all = |port: u16, n: usize| -> Vec<String> {
        let callers: Vec<_> = (0..n)
            .map(|i| {
                std::thread::spawn(move || {
                    let event = format!("{{\"caller\":{i}}}");
                    Client::connect(port)
                        .post(INVOKE_PATH, &[], event.as_bytes())
                        .text()
                })
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    };
    // Each handler waits until all three run: they only answer if they overlapped.
    for reply in invoke_all(emu.port, 3) {
        assert_eq!(reply, "together=true fourth-next=403 max=3");
    }
    // The concurrent example serves callers at once the same way.
    let emu = Emu::serve(&args(&["--concurrency", "3", "--", &example("concurrent")]));
    let mut replies = invoke_all(emu.port, 3);
    replies.sort();
    let expected: Vec<String> = (0..3).map(|i| format!("{{\"caller\":{i}}}")).collect();
    assert_eq!(replies, expected);
}

// ---------------------------------------------------------------------------------------
// Bad input

#[test]
fn the_readme_says_where_each_thing_its_commands_use_comes_from_before_using_it() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = |title: &str| {
        let start = readme.find(title).unwrap_or_else(|| panic!("{title}"));
        let rest = &readme[start + title.len()..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    };
    // Where a command first uses something, and where the README first makes it.
    let before = |text: &str, made: &str, used: &str| {
        let made_at = text
            .find(made)
            .unwrap_or_else(|| panic!("{made:?} missing"));
        let used_at = text
            .find(used)
            .unwrap_or_else(|| panic!("{used:?} missing"));
        assert!(made_at < used_at, "{used:?} is used before {made:?}");
    };
    let emulator = section("## tinylambda-emu: a local Lambda");
    let commands = &emulator[emulator.find("```sh").expect("a command block")..];
    before(commands, "cargo install --path .", "tinylambda-emu ");
    before(commands, "cp target/", "./bootstrap");
    before(commands, "> event.json", "@event.json");
    let exec = section("## Shell, Perl and any executable: tinylambda-exec");
    assert!(
        !exec.contains("cp function.sh"),
        "function.sh is examples/exec/function.sh"
    );
    before(
        exec,
        "`examples/exec/function.sh`",
        "cp examples/exec/function.sh",
    );
    before(
        exec,
        "`examples/exec/lambda_script.pl`",
        "_HANDLER=lambda_script.handler --invoke",
    );
    before(exec, "pkg/bootstrap\n", "-- pkg/bootstrap");
}

#[test]
fn bad_input_gives_one_clear_line_and_the_exit_status_the_readme_gives() {
    // Usage errors: exit status 2, as command-line tools conventionally give them.
    let echo = example("echo");
    for (list, expected) in [
        (
            &["--frobnicate", "--", &echo][..],
            "unknown option --frobnicate",
        ),
        (
            &["--bench", "many", "--", &echo],
            "--bench expects a whole number",
        ),
        (&["--port", "8080"], "no bootstrap given"),
        (
            &["--env", "AWS_LAMBDA_RUNTIME_API=x", "--", &echo],
            "--env cannot set AWS_LAMBDA_RUNTIME_API",
        ),
        (
            &["--concurrency", "0", "--", &echo],
            "--concurrency must be from 1 to 1024",
        ),
        (
            &["--env", "AWS_LAMBDA_MAX_CONCURRENCY=4", "--", &echo],
            "use --concurrency N",
        ),
    ] {
        let output = run_emu(&args(list));
        assert_one_line_refusal(&output, expected);
        assert_eq!(output.status.code(), Some(2), "{list:?}");
    }
    // Failures to run: exit status 1.
    for mode in [&["--invoke", "{}"][..], &["--bench", "1"], &["--port", "0"]] {
        let mut list = args(mode);
        list.extend(args(&["--", "/nonexistent/bootstrap"]));
        let output = run_emu(&list);
        assert_one_line_refusal(
            &output,
            "cannot start /nonexistent/bootstrap: No such file or directory",
        );
        assert_eq!(output.status.code(), Some(1), "{mode:?}");
    }
    let not_executable = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = run_emu(&args(&[
        "--invoke",
        "{}",
        "--",
        &not_executable.to_string_lossy(),
    ]));
    assert_one_line_refusal(&output, "Permission denied");
    assert_eq!(output.status.code(), Some(1));
    // The README says the same.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    for said in [
        "give one line and exit status 2",
        "give one line and exit status 1",
    ] {
        assert!(readme.contains(said), "README.md must say {said:?}");
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run_emu(&args(&["--port", &port, "--", &echo]));
    assert_one_line_refusal(
        &output,
        &format!("cannot listen on 127.0.0.1:{port}: the port is already in use"),
    );
    assert_eq!(output.status.code(), Some(1));
}

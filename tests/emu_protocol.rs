//! `tinylambda-emu` speaks Lambda's protocols faithfully when the caller or the runtime
//! sends something unusual: client contexts and header values that would break a head,
//! `/error` in the middle of a stream, an unknown response mode, `DryRun`, tenant ids,
//! the request-size limit on both ways in, and where and how the bootstrap is started.
//!
//! Real emulator, real bootstraps (this test binary re-run in a role, or the examples),
//! real sockets on 127.0.0.1; every wait is bounded.

use std::io::{Read, Write};
use std::process::Command;

use tinylambda::{Context, Error};

mod emu_support;
mod support;

use emu_support::*;

/// Lambda's limit on a synchronous invocation's request: 6 MiB.
const MAX_REQUEST: usize = 6 * 1024 * 1024;

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Some(role) = my_role() else {
        return;
    };
    match role.as_str() {
        "heads" => heads_runtime(),
        "stream-then-error" => stream_then_error_runtime(),
        "bad-mode" => bad_mode_runtime(),
        "cwd" => tinylambda::run(|_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            let root = std::env::var("LAMBDA_TASK_ROOT").unwrap_or_default();
            Ok(format!("cwd={}\nroot={root}", cwd.display()).into_bytes())
        }),
        other => panic!("unknown role {other}"),
    }
}

/// Answers each event with the head of the `/next` response that carried it, as received.
fn heads_runtime() -> ! {
    loop {
        let (id, head, _) = next_event();
        api(
            "POST",
            &format!("invocation/{id}/response"),
            "",
            head.as_bytes(),
        );
    }
}

/// Streams `before;`, waits until the caller has it (the test then creates `$MARKER`:
/// the stream has surely begun), posts `/error` for the same invocation, then streams
/// `error-status:{its status};` and ends the stream cleanly.
fn stream_then_error_runtime() -> ! {
    let marker = std::path::PathBuf::from(std::env::var("MARKER").unwrap_or_default());
    loop {
        let (id, _, _) = next_event();
        let mut stream = api_send(
            "POST",
            &format!("/2018-06-01/runtime/invocation/{id}/response"),
            "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n",
            b"7\r\nbefore;\r\n",
        );
        wait_until(LIMIT, || marker.exists());
        let status = api(
            "POST",
            &format!("invocation/{id}/error"),
            "Lambda-Runtime-Function-Error-Type: Function.MidStream\r\n",
            br#"{"errorMessage":"mid-stream","errorType":"Function.MidStream"}"#,
        )
        .0;
        let piece = format!("error-status:{status};");
        let end = format!("{:x}\r\n{piece}\r\n0\r\n\r\n", piece.len());
        stream.write_all(end.as_bytes()).expect("end of stream");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        log_line(&format!(
            "stream answered: {}",
            String::from_utf8_lossy(&answer)
                .lines()
                .next()
                .unwrap_or_default()
        ));
    }
}

/// Posts its response with a response mode Lambda does not know, and logs the answer.
fn bad_mode_runtime() -> ! {
    loop {
        let (id, _, _) = next_event();
        let (status, _, body) = api(
            "POST",
            &format!("invocation/{id}/response"),
            "Lambda-Runtime-Function-Response-Mode: buffered\r\n",
            b"the response",
        );
        log_line(&format!(
            "bad-mode answer: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
}

/// The `/next` head a `heads` runtime answered with, and the value of one of its headers.
fn runtime_header(reply: &Reply, name: &str) -> Option<String> {
    header_value(&reply.text(), name)
}

// ---------------------------------------------------------------------------------------
// Header values: nothing a caller sends may add to or end the runtime's head

#[test]
fn a_client_context_must_be_a_json_object_and_never_breaks_the_runtimes_head() {
    child();
    let emu = Emu::serve(&role(
        "a_client_context_must_be_a_json_object_and_never_breaks_the_runtimes_head",
        "heads",
        &[],
    ));
    let invoke = |context: &[u8]| {
        emu.client().post(
            INVOKE_PATH,
            &[("X-Amz-Client-Context", &to_base64(context))],
            b"{}",
        )
    };
    for not_an_object in [
        &b"{}\r\nLambda-Runtime-Aws-Request-Id: injected"[..],
        b"[1,2]",
        b"\"text\"",
        b"{\"a\":1",
    ] {
        let reply = invoke(not_an_object);
        assert_eq!(
            (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
            (400, Some("InvalidRequestContentException")),
            "{:?}: {reply:?}",
            String::from_utf8_lossy(not_an_object)
        );
    }
    // JSON objects with line breaks between their tokens reach the runtime as one line.
    for (context, expected) in [
        (&b"{}\r\n\r\n"[..], "{}"),
        (b"{\"a\":\r\n1,\n\"b\":[2]}", "{\"a\":  1, \"b\":[2]}"),
    ] {
        let reply = invoke(context);
        assert_eq!(reply.status, 200, "{reply:?}");
        let head = reply.text();
        assert_eq!(
            runtime_header(&reply, "Lambda-Runtime-Client-Context").as_deref(),
            Some(expected),
            "{head}"
        );
        assert_eq!(
            head.matches("\r\n\r\n").count(),
            1,
            "one blank line: {head:?}"
        );
        assert_eq!(head.matches("Lambda-Runtime-Aws-Request-Id").count(), 1);
        assert!(head.contains("Content-Length: 2\r\n"), "{head:?}");
    }
}

#[test]
fn header_values_with_control_characters_are_refused() {
    child();
    let emu = Emu::serve(&role(
        "header_values_with_control_characters_are_refused",
        "heads",
        &[],
    ));
    for (name, value) in [
        (
            "X-Amzn-Trace-Id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700\rX-Injected: yes",
        ),
        (
            "Content-Type",
            "text/plain\rLambda-Runtime-Aws-Request-Id: injected",
        ),
        ("X-Amz-Tenant-Id", "tenant\u{0}"),
    ] {
        let reply = emu.client().post(INVOKE_PATH, &[(name, value)], b"{}");
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
    }
    // The emulator still serves, and a plain trace id reaches the runtime as sent.
    let trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
    let reply = emu
        .client()
        .post(INVOKE_PATH, &[("X-Amzn-Trace-Id", trace)], b"{}");
    assert_eq!(
        runtime_header(&reply, "Lambda-Runtime-Trace-Id").as_deref(),
        Some(trace)
    );
}

#[test]
fn the_tenant_id_reaches_the_runtime() {
    child();
    let emu = Emu::serve(&role("the_tenant_id_reaches_the_runtime", "heads", &[]));
    let reply = emu
        .client()
        .post(INVOKE_PATH, &[("X-Amz-Tenant-Id", "tenant-7")], b"{}");
    assert_eq!(
        runtime_header(&reply, "Lambda-Runtime-Aws-Tenant-Id").as_deref(),
        Some("tenant-7")
    );
    let reply = emu.invoke(b"{}");
    assert_eq!(runtime_header(&reply, "Lambda-Runtime-Aws-Tenant-Id"), None);
}

// ---------------------------------------------------------------------------------------
// The Runtime API's refusals

#[test]
fn an_error_posted_in_the_middle_of_a_stream_is_forbidden_and_the_stream_ends_cleanly() {
    child();
    let dir = temp_dir("mid-stream-error");
    let marker = dir.join("caller-has-the-first-chunk");
    let emu = Emu::serve(&role(
        "an_error_posted_in_the_middle_of_a_stream_is_forbidden_and_the_stream_ends_cleanly",
        "stream-then-error",
        &["--env", &format!("MARKER={}", marker.display())],
    ));
    let mut client = emu.client();
    client.request("POST", INVOKE_PATH, &[], b"{}");
    client.wait_for(b"before;");
    std::fs::write(&marker, b"").expect("marker");
    let reply = client.read_reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "before;error-status:403;");
    assert!(reply.trailers.is_empty(), "{:?}", reply.trailers);
    emu.wait_log("stream answered: HTTP/1.1 202", 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unknown_response_mode_gets_400_and_fails_the_invocation() {
    child();
    let emu = Emu::serve(&role(
        "an_unknown_response_mode_gets_400_and_fails_the_invocation",
        "bad-mode",
        &[],
    ));
    let reply = emu.invoke(b"{}");
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Runtime.InvalidResponseModeHeader");
    let log = emu.wait_log("bad-mode answer: ", 1);
    assert!(
        log.contains("bad-mode answer: 400 ") && log.contains("InvalidFunctionResponseMode"),
        "{log}"
    );
}

#[test]
fn dry_run_gets_204_without_a_content_length() {
    let emu = Emu::serve(&args(&["--", &example("echo")]));
    let reply = emu
        .client()
        .post(INVOKE_PATH, &[("X-Amz-Invocation-Type", "DryRun")], b"{}");
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("Content-Length"), None, "{}", reply.head);
    assert_eq!(reply.header("Transfer-Encoding"), None, "{}", reply.head);
}

// ---------------------------------------------------------------------------------------
// The request-size limit, the same for callers and --invoke

#[test]
fn the_request_limit_is_lambdas_6_mib_for_callers_and_invoke_alike() {
    let echo = example("echo");
    let emu = Emu::serve(&args(&["--", &echo]));
    let reply = emu.invoke(&json_of_len(MAX_REQUEST, b'a'));
    assert_eq!((reply.status, reply.body.len()), (200, MAX_REQUEST));
    let reply = emu.invoke(&vec![b'a'; MAX_REQUEST + 1]);
    assert_eq!(
        (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
        (413, Some("RequestTooLargeException"))
    );
    assert!(
        reply.text().contains(
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        ),
        "{}",
        reply.text()
    );

    let dir = temp_dir("request-limit");
    let at_limit = dir.join("at-limit.json");
    let over = dir.join("over.json");
    std::fs::write(&at_limit, json_of_len(MAX_REQUEST, b'a')).unwrap();
    std::fs::write(&over, vec![b'a'; MAX_REQUEST + 1]).unwrap();
    let output = run_emu(&args(&[
        "--invoke",
        &format!("@{}", at_limit.display()),
        "--",
        &echo,
    ]));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout.len(), MAX_REQUEST);
    let output = run_emu(&args(&[
        "--invoke",
        &format!("@{}", over.display()),
        "--",
        &echo,
    ]));
    assert_one_line_refusal(
        &output,
        "RequestTooLargeException: Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    );
    let output = run_emu_in(
        &args(&["--invoke", "@-", "--", &echo]),
        None,
        Some(&vec![b'a'; MAX_REQUEST + 1]),
    );
    assert_one_line_refusal(&output, "RequestTooLargeException");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------
// The payload must be JSON, for callers and --invoke alike

#[test]
fn a_payload_that_is_not_json_gets_400_invalid_request_content_from_either_door() {
    let echo = example("echo");
    let emu = Emu::serve(&args(&["--", &echo]));
    for not_json in [
        &b"not json"[..],
        b"{\"a\":1,}",
        b"{} {}",
        b"\"\xff\"",
        b"  ",
    ] {
        let reply = emu.invoke(not_json);
        assert_eq!(
            (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
            (400, Some("InvalidRequestContentException")),
            "{:?}: {}",
            String::from_utf8_lossy(not_json),
            reply.text()
        );
        assert!(
            reply
                .text()
                .contains("Could not parse request body into json"),
            "{}",
            reply.text()
        );
    }
    // JSON of any kind is accepted, and so is no payload at all (the Invoke API's default).
    for json in [&br#"{"a":[1,2]}"#[..], b"\"text\"", b"42", b" null ", b""] {
        let reply = emu.invoke(json);
        assert_eq!((reply.status, &reply.body[..]), (200, json));
    }
    // A refused payload never reaches the runtime: no START line for it.
    let log = emu.wait_log("START RequestId:", 5);
    assert_eq!(log.matches("START RequestId:").count(), 5, "{log}");

    let output = run_emu(&args(&["--invoke", "not json", "--", &echo]));
    assert_one_line_refusal(
        &output,
        "InvalidRequestContentException: Could not parse request body into json: ",
    );
    assert_eq!(output.status.code(), Some(1));
    let output = run_emu_in(
        &args(&["--invoke", "@-", "--", &echo]),
        None,
        Some(b"{\"unterminated\":"),
    );
    assert_one_line_refusal(&output, "InvalidRequestContentException");
}

// ---------------------------------------------------------------------------------------
// Where the bootstrap runs

#[test]
fn the_bootstrap_runs_in_its_task_root() {
    child();
    let dir = temp_dir("task-root");
    let exe = std::env::current_exe().unwrap();
    let exe_dir = exe.parent().unwrap().canonicalize().unwrap();
    let output = run_emu_in(
        &invoke_role("{}", "the_bootstrap_runs_in_its_task_root", "cwd", &[]),
        Some(&dir),
        None,
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        text,
        format!("cwd={}\nroot={}", exe_dir.display(), exe_dir.display())
    );

    // A relative bootstrap path is the emulator's, not the task root's.
    let function = dir.join("function");
    std::fs::create_dir_all(&function).unwrap();
    std::os::unix::fs::symlink(example("echo"), function.join("bootstrap")).unwrap();
    let output = run_emu_in(
        &args(&["--invoke", r#""relative""#, "--", "function/bootstrap"]),
        Some(&dir),
        None,
    );
    assert_eq!(
        (output.status.code(), output.stdout.as_slice()),
        (Some(0), &br#""relative""#[..]),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bootstrap_name_found_only_in_the_current_directory_is_explained() {
    let dir = temp_dir("bare-name");
    std::os::unix::fs::symlink(example("echo"), dir.join("bootstrap")).unwrap();
    let output = Command::new(EMU)
        .args(["--invoke", "{}", "--", "bootstrap"])
        .current_dir(&dir)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run tinylambda-emu");
    assert_one_line_refusal(&output, "write ./bootstrap");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PATH"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

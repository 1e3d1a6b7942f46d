//! `tinylambda-emu` end to end: the real binary, real bootstraps (the echo example, this
//! test binary re-run as a bootstrap with a chosen behaviour, raw HTTP runtimes, and the
//! bash + curl peer), real sockets on 127.0.0.1. Every wait is bounded.
//!
//! A test that needs a bootstrap of its own passes [`role`]'s arguments to the emulator: the
//! emulator then runs this test binary again, filtered to that test, with
//! `TINYLAMBDA_EMU_TEST_ROLE` set, and [`child`] (the first line of every such test) turns
//! the process into that bootstrap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tinylambda::{Context, Error};

const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");
const ROLE: &str = "TINYLAMBDA_EMU_TEST_ROLE";
/// How long any one wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(60);
/// Lambda's limit on a response: 6 MiB + 100 bytes.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 100;

// ---------------------------------------------------------------------------------------
// Bootstraps

/// The examples cargo builds for `cargo test`, next to this test binary's directory.
fn example(name: &str) -> String {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: cargo test builds the examples",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// Emulator arguments that run this test binary as a bootstrap playing `role`, filtered to
/// `test` (the calling test), after `options`.
fn role(test: &str, name: &str, options: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let mut args: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "--env",
            &format!("{ROLE}={name}"),
            "--env",
            "RUST_BACKTRACE=0",
            "--",
            &exe.to_string_lossy(),
            test,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from),
    );
    args
}

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    match role.as_str() {
        "echo-or-fail" => tinylambda::run(|event: &[u8], _: &Context| match event {
            b"fail" => Err(Error::new("Function.Nope", "asked to fail")),
            _ => Ok(event.to_vec()),
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
            if event == b"sleep" {
                std::thread::sleep(Duration::from_secs(60));
            }
            Ok(std::process::id().to_string().into_bytes())
        }),
        "exits" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            if event == b"exit" {
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
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// A raw runtime, for what the library never does on purpose

/// One request on a fresh connection to the Runtime API (`Connection: close`), returning
/// the status, the head and the body as received (not de-chunked).
fn api(method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let mut stream = TcpStream::connect(&address).expect("connect to the Runtime API");
    let head = format!(
        "{method} /2018-06-01/runtime/{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{extra}"
    );
    let framing = if extra.contains("Transfer-Encoding") {
        String::from("\r\n")
    } else {
        format!("Content-Length: {}\r\n\r\n", body.len())
    };
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(framing.as_bytes()).expect("write");
    stream.write_all(body).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head[9..12].parse().expect("status");
    (status, head, raw[split..].to_vec())
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Decodes a chunked body (sizes in hex, extensions and trailers ignored).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("size line");
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

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
        let whole = event.iter().all(|&b| b == b'e');
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

// ---------------------------------------------------------------------------------------
// The emulator, driven from the test

/// A serving emulator on an ephemeral port; stopped with SIGTERM when dropped.
struct Emu {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

unsafe extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}

impl Emu {
    fn serve(args: &[String]) -> Emu {
        let mut child = Command::new(EMU)
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tinylambda-emu");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                // The bootstrap writes to the same stderr: the line may not start with it.
                const MARKER: &str = "tinylambda-emu: listening on http://127.0.0.1:";
                if let Some(at) = line.find(MARKER) {
                    let rest = &line[at + MARKER.len()..];
                    let port = rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = port_tx.send(port);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = match port_rx.recv_timeout(LIMIT) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                panic!("the emulator did not start: {}", stderr.lock().unwrap());
            }
        };
        Emu {
            child,
            port,
            stderr,
        }
    }

    fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// One invocation on a new connection.
    fn invoke(&self, event: &[u8]) -> Reply {
        self.client().post(INVOKE_PATH, &[], event)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        // SIGTERM: the emulator kills its bootstrap's process group, then exits.
        unsafe { kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

/// What a caller got back.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        header_value(&self.head, name)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn error_type(&self) -> String {
        let text = self.text();
        let after = text.split("\"errorType\":\"").nth(1).unwrap_or_default();
        after.split('"').next().unwrap_or_default().to_owned()
    }
}

/// A keep-alive HTTP/1.1 client for the invoke endpoint.
struct Client {
    stream: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).expect("connect to the invoke endpoint");
        stream.set_read_timeout(Some(LIMIT)).expect("timeout");
        Client { stream }
    }

    fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send("POST", path, headers, body)
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).expect("write head");
        // The emulator may refuse an oversized body before reading it all.
        let _ = self.stream.write_all(body);
        self.read_reply()
    }

    fn read_reply(&mut self) -> Reply {
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end + 4]).into_owned();
                let length: usize = header_value(&head, "Content-Length")
                    .map_or(0, |v| v.parse().expect("Content-Length"));
                while raw.len() < end + 4 + length {
                    let n = self.stream.read(&mut buf).expect("read body");
                    assert!(n > 0, "connection closed mid-body");
                    raw.extend_from_slice(&buf[..n]);
                }
                return Reply {
                    status: head[9..12].parse().expect("status"),
                    body: raw[end + 4..end + 4 + length].to_vec(),
                    head,
                };
            }
            let n = self.stream.read(&mut buf).expect("read head");
            assert!(
                n > 0,
                "connection closed before a reply: {}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        }
    }
}

/// Runs the emulator to its end (killed after [`LIMIT`]).
fn run_emu(args: &[String]) -> Output {
    let child = Command::new(EMU)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tinylambda-emu");
    let pid = child.id() as i32;
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output().expect("wait");
        let _ = done_tx.send(());
        output
    });
    if done_rx.recv_timeout(LIMIT).is_err() {
        unsafe { kill(pid, 15) };
    }
    waiter.join().expect("waiter")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn assert_one_line_refusal(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        output.status.code().is_some(),
        "ended by a signal: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr:?}");
    assert!(stderr.starts_with("tinylambda-emu: "), "{stderr:?}");
    assert!(
        stderr.contains(expected),
        "{expected:?} missing from {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr:?}"
    );
}

/// Waits until process `pid` is gone (reaped), up to [`LIMIT`].
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

// ---------------------------------------------------------------------------------------
// The invoke endpoint

#[test]
fn invoke_endpoint_answers_with_the_function_response_on_a_kept_connection() {
    let emu = Emu::serve(&args(&["--", &example("echo")]));
    let mut client = emu.client();
    for event in [&br#"{"hello":"world"}"#[..], b"second, same connection"] {
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
    let log = emu.stderr();
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
    assert_eq!(emu.invoke(b"after").body, b"after");
}

#[test]
fn function_errors_reach_the_caller_with_x_amz_function_error() {
    child();
    let emu = Emu::serve(&role(
        "function_errors_reach_the_caller_with_x_amz_function_error",
        "echo-or-fail",
        &[],
    ));
    let reply = emu.invoke(b"fail");
    assert_eq!(reply.status, 200, "Lambda answers function errors with 200");
    assert_eq!(
        reply.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(reply.error_type(), "Function.Nope");
    assert!(reply.text().contains("asked to fail"), "{}", reply.text());
    assert_eq!(emu.invoke(b"fine").body, b"fine");
}

#[test]
fn responses_over_6_mb_get_413_and_the_caller_sees_response_size_too_large() {
    child();
    let emu = Emu::serve(&role(
        "responses_over_6_mb_get_413_and_the_caller_sees_response_size_too_large",
        "sizes",
        &[],
    ));
    let pid = emu.invoke(b"pid").text();
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
    assert_eq!(emu.invoke(b"pid").text(), pid);
}

#[test]
fn a_timeout_kills_the_runtime_and_the_next_invocation_starts_a_fresh_one() {
    child();
    let emu = Emu::serve(&role(
        "a_timeout_kills_the_runtime_and_the_next_invocation_starts_a_fresh_one",
        "sleepy",
        &["--timeout", "2"],
    ));
    let first = emu.invoke(b"pid").text();
    let started = Instant::now();
    let reply = emu.invoke(b"sleep");
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
    let second = emu.invoke(b"pid");
    assert_eq!(second.status, 200);
    assert_ne!(second.text(), first, "a fresh runtime answers");
    assert_eq!(
        emu.stderr().matches("Init Duration: ").count(),
        2,
        "two cold starts"
    );
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
    let reply = emu.invoke(b"now it starts");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "now it starts")
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
    let first = emu.invoke(b"pid").text();
    let reply = emu.invoke(b"exit");
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
    let second = emu.invoke(b"pid");
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
        assert_eq!(emu.invoke(&vec![b'e'; size]).text(), expected);
    }
    // And the library's echo gets a large event through whole.
    let emu = Emu::serve(&args(&["--", &example("echo")]));
    let event: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
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
        emu.invoke(b"first").text(),
        "wrong-id:400 next-while-open:403 late-init-error:403"
    );
    // Posted chunked, with a chunk extension and a trailer.
    assert_eq!(
        emu.invoke(b"second").text(),
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

    let mut fail = vec!["--invoke".to_owned(), "fail".to_owned()];
    fail.extend(role(
        "invoke_once_prints_the_response_on_stdout",
        "echo-or-fail",
        &[],
    ));
    let output = run_emu(&fail);
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
// Bad input

#[test]
fn bad_input_gives_one_clear_line_and_a_non_zero_exit() {
    let echo = example("echo");
    assert_one_line_refusal(
        &run_emu(&args(&["--frobnicate", "--", &echo])),
        "unknown option --frobnicate",
    );
    assert_one_line_refusal(
        &run_emu(&args(&["--bench", "many", "--", &echo])),
        "--bench expects a whole number",
    );
    assert_one_line_refusal(&run_emu(&args(&["--port", "8080"])), "no bootstrap given");
    assert_one_line_refusal(
        &run_emu(&args(&["--env", "AWS_LAMBDA_RUNTIME_API=x", "--", &echo])),
        "--env cannot set AWS_LAMBDA_RUNTIME_API",
    );
    for mode in [&["--invoke", "{}"][..], &["--bench", "1"], &["--port", "0"]] {
        let mut list = args(mode);
        list.extend(args(&["--", "/nonexistent/bootstrap"]));
        assert_one_line_refusal(
            &run_emu(&list),
            "cannot start /nonexistent/bootstrap: No such file or directory",
        );
    }
    let not_executable = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    assert_one_line_refusal(
        &run_emu(&args(&[
            "--invoke",
            "{}",
            "--",
            &not_executable.to_string_lossy(),
        ])),
        "Permission denied",
    );
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_one_line_refusal(
        &run_emu(&args(&["--port", &port, "--", &echo])),
        &format!("cannot listen on 127.0.0.1:{port}: the port is already in use"),
    );
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tinylambda-emu-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

//! `tinylambda-exec` end to end: real bash and perl handlers, executables and a local web
//! server, behind the real binary, against the scripted fake Runtime API in `support`.
//!
//! Each test re-runs this test binary as the bootstrap child (as the other integration
//! tests do), which then replaces itself with `tinylambda-exec` (`exec`, same process and
//! environment), so the server sees exactly what a deployed `bootstrap` would send.

mod exec_support;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, fs, thread};

use support::{Outcome, Request, Step, accepted, assert_response, child, event, json, serve_with};

const EXEC: &str = env!("CARGO_BIN_EXE_tinylambda-exec");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/exec");
const SEED_REPLY: &[u8] = br#"{"statusCode": 200, "body": "Hello World"}"#;
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";
const TRACE: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";

/// In the bootstrap child: become `tinylambda-exec` (through [`support::RUNNER`] when that
/// is set), keeping the process and environment.
fn become_exec() -> ! {
    let error = support::through_runner(EXEC).exec();
    panic!("exec {EXEC}: {error}");
}

/// Runs `tinylambda-exec` (as test `test`'s child) with `vars` against `steps`.
fn run(test: &str, vars: &[(&str, &str)], steps: Vec<Step>) -> Outcome {
    serve_with(test, steps, |cmd, port| {
        cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
        for (name, value) in vars {
            cmd.env(name, value);
        }
    })
}

/// A fresh directory of handler files for `test`; `(name, mode, text)` each.
fn task_root(test: &str, files: &[(&str, u32, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("exec")
        .join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for (name, mode, text) in files {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
    }
    dir
}

/// An invocation, then the 202 for its result.
fn invocation(id: &str, body: &[u8]) -> [Step; 2] {
    [Step::Reply(event(id, body, &[])), Step::Reply(accepted())]
}

/// A `/next` reply with only the request id, `headers`, and the body.
fn bare_event(id: &str, body: &[u8], headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n"
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A deadline `ms` from now, as `Lambda-Runtime-Deadline-Ms` carries it.
fn due_in(ms: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now.as_millis() as u64 + ms).to_string()
}

fn steps<const N: usize>(invocations: [[Step; 2]; N]) -> Vec<Step> {
    invocations.into_iter().flatten().collect()
}

/// Asserts `post` is the `/error` for `id` with this type, and returns its message.
fn error_message(post: &Request, id: &str, error_type: &str) -> String {
    assert_eq!(
        post.path,
        format!("/2018-06-01/runtime/invocation/{id}/error"),
        "expected an error for {id}, got {}",
        post.text()
    );
    assert_eq!(
        post.header("Lambda-Runtime-Function-Error-Type"),
        Some(error_type),
        "{}",
        post.text()
    );
    assert_eq!(json_string(&post.text(), "errorType"), error_type);
    json_string(&post.text(), "errorMessage")
}

/// The string value of `field` in a flat JSON object.
fn json_string(json: &str, field: &str) -> String {
    let key = format!("\"{field}\":\"");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("{field} in {json}"))
        + key.len();
    let mut out = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next().unwrap() {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    panic!("unterminated {field} in {json}");
}

/// The `"name": value` number in a JSON reply.
fn json_number(json: &[u8], name: &str) -> u64 {
    let text = String::from_utf8_lossy(json);
    let key = format!("\"{name}\": ");
    let start = text
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {text}"))
        + key.len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn assert_init_error(out: &Outcome, error_type: &str, message: &str) {
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let post = &out.requests[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/2018-06-01/runtime/init/error")
    );
    assert_eq!(
        post.header("Lambda-Runtime-Function-Error-Type"),
        Some(error_type)
    );
    let text = json_string(&post.text(), "errorMessage");
    assert!(text.contains(message), "{message:?} not in {text:?}");
    assert!(!out.stderr.contains("panicked"), "no panic: {}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Per-call mode

#[test]
fn the_seed_bash_handler_answers_unchanged_and_its_stderr_reaches_the_log() {
    if child() {
        become_exec()
    }
    let out = run(
        "the_seed_bash_handler_answers_unchanged_and_its_stderr_reaches_the_log",
        &[
            ("_HANDLER", "function.handler"),
            ("LAMBDA_TASK_ROOT", EXAMPLES),
        ],
        steps([
            invocation("a", br#"{"hello":"world"}"#),
            invocation("b", br#"{"path":"/x","n":2}"#),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts.len(), 2);
    assert_response(posts[0], "a", SEED_REPLY);
    assert_response(posts[1], "b", SEED_REPLY);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines.contains(&r#"{"hello":"world"}"#), "{lines:?}");
    assert!(lines.contains(&r#"{"path":"/x","n":2}"#), "{lines:?}");
    assert!(out.requests.iter().all(|r| r.conn == 0), "one connection");
}

#[test]
fn a_perl_handler_gets_the_event_and_what_it_returns_is_the_response() {
    if child() {
        become_exec()
    }
    let out = run(
        "a_perl_handler_gets_the_event_and_what_it_returns_is_the_response",
        &[
            ("_HANDLER", "lambda_script.handler"),
            ("LAMBDA_TASK_ROOT", EXAMPLES),
        ],
        steps([invocation("p", br#"{"request":"Hey perl lambda!!"}"#)]),
    );
    out.assert_ran_to_the_end();
    let reply = out.posts()[0].text();
    assert!(reply.starts_with('{') && reply.ends_with('}'), "{reply}");
    assert!(
        reply.contains(r#""request":"Hey perl lambda!!""#),
        "{reply}"
    );
    assert!(
        reply.contains(r#""reply":"Hello from Perl on tinylambda-exec""#),
        "{reply}"
    );
}

#[test]
fn an_executable_gets_the_event_on_stdin_and_the_context_in_its_environment() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "an_executable_gets_the_event_on_stdin_and_the_context_in_its_environment",
        &[(
            "context",
            0o755,
            "#!/bin/sh\nprintf '%s|%s|%s|%s|' \"$LAMBDA_REQUEST_ID\" \"$LAMBDA_DEADLINE_MS\" \
             \"$LAMBDA_INVOKED_FUNCTION_ARN\" \"${_X_AMZN_TRACE_ID-none}\"\ncat\necho\n",
        )],
    );
    let binary = b"bytes \x00\xff\xfe and a newline\n";
    let out = run(
        "an_executable_gets_the_event_on_stdin_and_the_context_in_its_environment",
        &[
            ("_HANDLER", "context"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        vec![
            Step::Reply(event("e1", binary, &[])),
            Step::Reply(accepted()),
            Step::Reply(bare_event("e2", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let mut expected = format!("e1|4102444800000|{ARN}|{TRACE}|").into_bytes();
    expected.extend_from_slice(binary);
    expected.push(b'\n');
    assert_response(posts[0], "e1", &expected);
    assert_response(posts[1], "e2", b"e2|||none|{}\n");
}

#[test]
fn a_failing_handler_reports_its_exit_status_and_the_end_of_its_stderr() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_failing_handler_reports_its_exit_status_and_the_end_of_its_stderr",
        &[(
            "fail.sh",
            0o644,
            r#"handler () {
  case $1 in
    ok) echo fine; return ;;
    segv) echo "about to crash" >&2; kill -SEGV $$ ;;
  esac
  i=0; while [ $i -lt 500 ]; do echo "noise line $i" >&2; i=$((i + 1)); done
  echo "cannot handle $1" >&2
  return 3
}
"#,
        )],
    );
    let out = run(
        "a_failing_handler_reports_its_exit_status_and_the_end_of_its_stderr",
        &[
            ("_HANDLER", "fail.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([
            invocation("bad", b"{\"x\":1}"),
            invocation("crash", b"segv"),
            invocation("good", b"ok"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let message = error_message(posts[0], "bad", "Runtime.ExitError");
    assert!(message.starts_with("exit status 3: "), "{message}");
    assert!(
        message.ends_with("noise line 499\ncannot handle {\"x\":1}"),
        "{message}"
    );
    assert!(
        !message.contains("noise line 0\n"),
        "only the tail: {message}"
    );
    assert!(message.len() < 4200);
    let message = error_message(posts[1], "crash", "Runtime.ExitError");
    assert_eq!(message, "killed by signal 11: about to crash");
    assert_response(posts[2], "good", b"fine");
    assert!(
        out.stderr.contains("noise line 0\n"),
        "the whole stderr is logged"
    );
}

#[test]
fn a_one_mib_event_reaches_a_shell_function_as_its_argument_and_on_stdin() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_one_mib_event_reaches_a_shell_function_as_its_argument_and_on_stdin",
        &[(
            "size.sh",
            0o644,
            "handler () {\n  input=$(cat)\n  [ \"$input\" = \"$1\" ] && printf '%s bytes' \"${#1}\"\n}\n",
        )],
    );
    let small = vec![b'a'; 100 * 1024]; // fits in one argument
    let large: Vec<u8> = (0..1 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let out = run(
        "a_one_mib_event_reaches_a_shell_function_as_its_argument_and_on_stdin",
        &[
            ("_HANDLER", "size.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([invocation("small", &small), invocation("large", &large)]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "small", b"102400 bytes");
    assert_response(posts[1], "large", b"1048576 bytes");
}

#[test]
fn a_one_mib_event_goes_through_an_executable_byte_for_byte() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_one_mib_event_goes_through_an_executable_byte_for_byte",
        &[("echo", 0o755, "#!/bin/sh\nexec cat\n")],
    );
    let large: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 256) as u8).collect();
    let out = run(
        "a_one_mib_event_goes_through_an_executable_byte_for_byte",
        &[
            ("_HANDLER", "echo"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([invocation("large", &large)]),
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "large", &large);
}

#[test]
fn a_handler_that_ignores_stdin_still_answers_a_large_event() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_handler_that_ignores_stdin_still_answers_a_large_event",
        &[
            ("ignore", 0o755, "#!/bin/sh\necho ignored\n"),
            ("quiet.sh", 0o644, "handler () { echo \"quiet\"; }\n"),
        ],
    );
    let large = vec![b'x'; 4 << 20];
    let out = run(
        "a_handler_that_ignores_stdin_still_answers_a_large_event",
        &[
            ("_HANDLER", "ignore"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([invocation("i1", &large), invocation("i2", b"{}")]),
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "i1", b"ignored\n");
    assert_response(out.posts()[1], "i2", b"ignored\n");
    // A shell function given a large event through the pipe, which it never reads.
    let out = run(
        "a_handler_that_ignores_stdin_still_answers_a_large_event",
        &[
            ("_HANDLER", "quiet.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([invocation("q1", &large)]),
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "q1", b"quiet");
}

#[test]
fn output_over_six_mib_is_reported_and_the_next_invocation_runs() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "output_over_six_mib_is_reported_and_the_next_invocation_runs",
        &[(
            "print",
            0o755,
            "#!/bin/sh\nhead -c \"$(cat)\" /dev/zero | tr '\\0' a\n",
        )],
    );
    let out = run(
        "output_over_six_mib_is_reported_and_the_next_invocation_runs",
        &[
            ("_HANDLER", "print"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([
            invocation("five", b"5000000"),
            invocation("seven", b"7340032"),
            invocation("two", b"2"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "five", &vec![b'a'; 5_000_000]);
    let message = error_message(posts[1], "seven", "Function.ResponseSizeTooLarge");
    assert_eq!(
        message,
        "the response is 7340032 bytes, over Lambda's limit of 6291556"
    );
    assert_response(posts[2], "two", b"aa");
}

#[test]
fn stderr_larger_than_a_pipe_does_not_block_the_handler() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "stderr_larger_than_a_pipe_does_not_block_the_handler",
        &[(
            "chatty",
            0o755,
            "#!/usr/bin/perl\nprint STDERR \"log line $_\\n\" for 1 .. 20000;\nprint \"done\";\n",
        )],
    );
    let out = run(
        "stderr_larger_than_a_pipe_does_not_block_the_handler",
        &[
            ("_HANDLER", "chatty"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        steps([invocation("c", b"{}")]),
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "c", b"done");
    let logged: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("log line "))
        .collect();
    assert_eq!(logged.len(), 20000, "every line, whole");
    assert_eq!(logged[19999], "log line 20000");
}

#[test]
fn a_handler_outliving_the_deadline_is_killed_with_its_children() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_handler_outliving_the_deadline_is_killed_with_its_children",
        &[(
            "slow",
            0o755,
            "#!/bin/sh\n[ \"$(cat)\" = fast ] && exec echo fast\n\
             sleep 30 &\necho $! > \"$LAMBDA_TASK_ROOT/sleeper\"\necho \"waiting for $!\" >&2\nwait\n",
        )],
    );
    let started = Instant::now();
    let out = run(
        "a_handler_outliving_the_deadline_is_killed_with_its_children",
        &[
            ("_HANDLER", "slow"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        vec![
            Step::Reply(bare_event(
                "slow",
                b"slow",
                &[("Lambda-Runtime-Deadline-Ms", &due_in(1500))],
            )),
            Step::Reply(accepted()),
            // cargo lambda's deadline, long past: no deadline at all, not "kill at once".
            Step::Reply(bare_event(
                "past",
                b"fast",
                &[("Lambda-Runtime-Deadline-Ms", "600000")],
            )),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the 30 s sleep was not waited for"
    );
    let posts = out.posts();
    let message = error_message(posts[0], "slow", "Runtime.Timeout");
    assert!(
        message.starts_with("still running 50 ms before the deadline: killed: waiting for"),
        "{message}"
    );
    assert_response(posts[1], "past", b"fast\n");
    let sleeper: u32 = fs::read_to_string(root.join("sleeper"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed with the group: it ends within moments (a process may take a while to exit).
    exec_support::wait_until(
        Duration::from_secs(5),
        "the handler's own child is gone too",
        || exec_support::ended(sleeper),
    );
}

/// A shell file whose last top-level command fails (a debug switch left off), and one that
/// also sets `-e` at the top: neither status is the function's.
const LAST_FAILS_SH: &str = "handler () { echo \"ok: $1\"; }\n[ -n \"$DEBUG\" ] && set -x\n";
const STRICT_SH: &str =
    "set -e\nhandler () { echo \"strict: $1\"; }\n[ -n \"$DEBUG\" ] && set -x\n";
/// A Perl file without the final `1;` that `require` insists on.
const NO_TRUE_PL: &str =
    "use strict;\nuse warnings;\nsub handler { my ($event) = @_; return \"perl: $event\" }\n";

#[test]
fn files_whose_last_top_level_statement_is_false_load_in_both_modes() {
    if child() {
        become_exec()
    }
    let test = "files_whose_last_top_level_statement_is_false_load_in_both_modes";
    let root = task_root(
        test,
        &[
            ("last.sh", 0o644, LAST_FAILS_SH),
            ("strict.sh", 0o644, STRICT_SH),
            ("plain.pl", 0o644, NO_TRUE_PL),
        ],
    );
    for persistent in ["0", "1"] {
        for (handler, reply) in [
            ("last.handler", "ok: e"),
            ("strict.handler", "strict: e"),
            ("plain.handler", "perl: e"),
        ] {
            let out = run(
                test,
                &[
                    ("_HANDLER", handler),
                    ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
                    ("TINYLAMBDA_PERSISTENT", persistent),
                ],
                steps([invocation("a", b"e"), invocation("b", b"e")]),
            );
            out.assert_ran_to_the_end();
            for (post, id) in out.posts().into_iter().zip(["a", "b"]) {
                assert!(
                    post.body == reply.as_bytes(),
                    "{handler}, persistent={persistent}: {} (log: {})",
                    post.text(),
                    out.stderr
                );
                assert!(post.path.ends_with(&format!("/{id}/response")));
            }
        }
    }
}

#[test]
fn a_file_that_does_not_compile_is_an_init_error_in_both_modes() {
    if child() {
        become_exec()
    }
    let test = "a_file_that_does_not_compile_is_an_init_error_in_both_modes";
    let root = task_root(
        test,
        &[
            (
                "unclosed.pl",
                0o644,
                "use strict;\nsub handler {\n  return \"x\";\n",
            ),
            (
                "needs.pl",
                0o644,
                "use No::Such::Module;\nsub handler { 1 }\n1;\n",
            ),
            ("unclosed.sh", 0o644, "handler () {\n  echo hi\n"),
        ],
    );
    for persistent in ["0", "1"] {
        for (handler, message) in [
            (
                "unclosed.handler",
                "unclosed.sh: line 3: syntax error: unexpected end of file",
            ),
            ("needs.handler", "Can't locate No/Such/Module.pm in @INC"),
        ] {
            let out = run(
                test,
                &[
                    ("_HANDLER", handler),
                    ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
                    ("TINYLAMBDA_PERSISTENT", persistent),
                ],
                vec![Step::Reply(accepted())],
            );
            assert_init_error(&out, "Runtime.UserCodeSyntaxError", message);
        }
    }
    // The Perl file alone (a .sh of the same name would be chosen first).
    fs::remove_file(root.join("unclosed.sh")).unwrap();
    let out = run(
        test,
        &[
            ("_HANDLER", "unclosed.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        vec![Step::Reply(accepted())],
    );
    assert_init_error(
        &out,
        "Runtime.UserCodeSyntaxError",
        "unclosed.pl line 3, at EOF",
    );
}

// ---------------------------------------------------------------------------------------
// Persistent mode

/// A bash function and a Perl sub that count their calls in a global: one process for
/// several invocations shows in the count and the pid.
const COUNTER_SH: &str = r#"count=0
handler () {
  count=$((count + 1))
  case $1 in
    exit) exit 4 ;;
    fail) echo "refusing $1" >&2; return 5 ;;
    stdin) exec 3>/dev/null; cat ;; # neither touches the protocol stream
    hang) echo "hanging" >&2; sleep 30 ;;
  esac
  printf '{"pid": %d, "count": %d, "id": "%s", "trace": "%s", "event": %s}\n' \
    $$ "$count" "$LAMBDA_REQUEST_ID" "${_X_AMZN_TRACE_ID-unset}" "$1"
}
"#;

const COUNTER_PL: &str = r#"use strict; use warnings;
my $count = 0;
sub handler {
    my ($event) = @_;
    $count++;
    die "refusing $event\n" if $event eq 'fail';
    return sprintf('{"pid": %d, "count": %d, "id": "%s", "trace": "%s", "event": %s}',
        $$, $count, $ENV{LAMBDA_REQUEST_ID}, $ENV{_X_AMZN_TRACE_ID} // 'unset', $event);
}
1;
"#;

fn counted(post: &Request) -> (u64, u64) {
    (
        json_number(&post.body, "pid"),
        json_number(&post.body, "count"),
    )
}

#[test]
fn persistent_mode_serves_invocations_from_one_shell_process_with_their_context() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "persistent_mode_serves_invocations_from_one_shell_process_with_their_context",
        &[("counter.sh", 0o644, COUNTER_SH)],
    );
    // A multibyte locale (bash must count bytes, not characters) and the C locale.
    for locale in ["C.UTF-8", "C"] {
        let out = run(
            "persistent_mode_serves_invocations_from_one_shell_process_with_their_context",
            &[
                ("_HANDLER", "counter.handler"),
                ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
                ("TINYLAMBDA_PERSISTENT", "1"),
                ("LC_ALL", locale),
            ],
            vec![
                Step::Reply(event("r1", br#"{"n":1}"#, &[])),
                Step::Reply(accepted()),
                Step::Reply(bare_event("r2", "{\"s\":\"é ü\"}".as_bytes(), &[])),
                Step::Reply(accepted()),
                Step::Reply(event("r3", b"stdin", &[])),
                Step::Reply(accepted()),
                Step::Reply(event("r4", b"[4]", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        let pid = json_number(&posts[0].body, "pid");
        for (i, (post, id)) in posts.iter().zip(["r1", "r2", "r3", "r4"]).enumerate() {
            assert_eq!(
                counted(post),
                (pid, i as u64 + 1),
                "{locale}: {}",
                post.text()
            );
            assert!(
                post.text().contains(&format!("\"id\": \"{id}\"")),
                "{}",
                post.text()
            );
        }
        assert!(posts[0].text().contains(&format!("\"trace\": \"{TRACE}\"")));
        assert!(
            posts[1].text().contains("\"trace\": \"unset\""),
            "no stale trace id"
        );
        assert!(
            posts[1].text().contains("\"event\": {\"s\":\"é ü\"}"),
            "{locale}: UTF-8 intact: {}",
            posts[1].text()
        );
        assert!(
            posts[3].text().ends_with("\"event\": [4]}"),
            "trailing newline trimmed"
        );
    }
}

#[test]
fn persistent_mode_serves_invocations_from_one_perl_process() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "persistent_mode_serves_invocations_from_one_perl_process",
        &[("counter.pl", 0o644, COUNTER_PL)],
    );
    let out = run(
        "persistent_mode_serves_invocations_from_one_perl_process",
        &[
            ("_HANDLER", "counter.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        steps([
            invocation("p1", b"1"),
            invocation("p2", b"fail"),
            invocation("p3", b"3"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let pid = json_number(&posts[0].body, "pid");
    assert_eq!(counted(posts[0]), (pid, 1));
    let message = error_message(posts[1], "p2", "Runtime.ExitError");
    assert_eq!(message, "exit status 255: refusing fail");
    assert_eq!(
        counted(posts[2]),
        (pid, 3),
        "a die does not end the process"
    );
    assert!(posts[2].text().contains("\"id\": \"p3\""));
}

#[test]
fn persistent_mode_runs_the_seed_handler_unchanged() {
    if child() {
        become_exec()
    }
    let out = run(
        "persistent_mode_runs_the_seed_handler_unchanged",
        &[
            ("_HANDLER", "function.handler"),
            ("LAMBDA_TASK_ROOT", EXAMPLES),
            ("TINYLAMBDA_PERSISTENT", "true"),
        ],
        steps([invocation("s1", br#"{"a":1}"#), invocation("s2", b"")]),
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "s1", SEED_REPLY);
    assert_response(out.posts()[1], "s2", SEED_REPLY);
    assert!(
        out.stderr.lines().any(|l| l == r#"{"a":1}"#),
        "{}",
        out.stderr
    );
}

#[test]
fn a_persistent_handler_that_fails_exits_or_hangs_is_reported_and_replaced() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_persistent_handler_that_fails_exits_or_hangs_is_reported_and_replaced",
        &[("counter.sh", 0o644, COUNTER_SH)],
    );
    let out = run(
        "a_persistent_handler_that_fails_exits_or_hangs_is_reported_and_replaced",
        &[
            ("_HANDLER", "counter.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        steps([
            invocation("one", b"1"),
            invocation("fail", b"fail"),
            invocation("three", b"3"),
            invocation("exit", b"exit"),
            invocation("five", b"5"),
            [
                Step::Reply(bare_event(
                    "hang",
                    b"hang",
                    &[("Lambda-Runtime-Deadline-Ms", &due_in(2500))],
                )),
                Step::Reply(accepted()),
            ],
            invocation("seven", b"7"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let (first, _) = counted(posts[0]);
    assert_eq!(
        error_message(posts[1], "fail", "Runtime.ExitError"),
        "exit status 5: refusing fail"
    );
    assert_eq!(counted(posts[2]), (first, 3), "a failure keeps the process");
    assert_eq!(
        error_message(posts[3], "exit", "Runtime.ExitError"),
        "the handler process ended during the invocation (exit status 4)"
    );
    let (second, count) = counted(posts[4]);
    assert_ne!(second, first, "a new process after the exit");
    assert_eq!(count, 1);
    assert_eq!(
        error_message(posts[5], "hang", "Runtime.Timeout"),
        "still running 50 ms before the deadline: killed: hanging"
    );
    let (third, count) = counted(posts[6]);
    assert!(
        third != second && count == 1,
        "a new process after the kill"
    );
}

#[test]
fn the_documented_persistent_examples_speak_the_protocol() {
    if child() {
        become_exec()
    }
    for example in ["persistent.sh", "persistent.pl"] {
        let out = run(
            "the_documented_persistent_examples_speak_the_protocol",
            &[
                ("_HANDLER", example),
                ("LAMBDA_TASK_ROOT", EXAMPLES),
                ("TINYLAMBDA_PERSISTENT", "1"),
            ],
            steps([
                invocation("x1", br#"{"a":1}"#),
                invocation("x2", b""),
                invocation("x3", "[\"ü\"]".as_bytes()),
            ]),
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        let pid = json_number(&posts[0].body, "pid");
        assert_eq!(counted(posts[0]), (pid, 1), "{example}");
        assert!(
            posts[0].text().ends_with(r#""event": {"a":1}}"#),
            "{example}"
        );
        assert_eq!(
            error_message(posts[1], "x2", "Function.EmptyEvent"),
            "empty event"
        );
        assert_eq!(counted(posts[2]), (pid, 3), "{example}");
        assert!(
            posts[2].text().ends_with("\"event\": [\"ü\"]}"),
            "{example}"
        );
    }
}

#[test]
fn a_persistent_process_that_ended_between_invocations_is_started_again() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_persistent_process_that_ended_between_invocations_is_started_again",
        &[(
            "once",
            0o755,
            "#!/bin/bash\nexport LC_ALL=C\nwhile read -r n c; do\n  read -r -N \"$c\" context\n  \
             read -r -N \"$n\" event\n  printf '{\"pid\": %d, \"count\": 1}\\0\\n' $$\n  \
             [ \"$event\" = bye ] && exit 0\ndone\n",
        )],
    );
    let out = run(
        "a_persistent_process_that_ended_between_invocations_is_started_again",
        &[
            ("_HANDLER", "once"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        vec![
            Step::Reply(event("b1", b"bye", &[])),
            // Hold the next invocation back until the process has surely ended.
            Step::ReplyPause(accepted(), Duration::from_millis(300)),
            Step::Reply(event("b2", b"hello", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let (first, _) = counted(posts[0]);
    let (second, _) = counted(posts[1]);
    assert_ne!(
        first, second,
        "a new process answered the second invocation"
    );
    assert!(
        out.stderr
            .contains("the handler process had ended (exit status 0); starting it again"),
        "{}",
        out.stderr
    );
}

/// A persistent executable that answers an event of 100,000 bytes or more from its header
/// line, without reading it: a size guard written in a hurry.
const GUARD: &str = r#"#!/bin/bash
export LC_ALL=C
while read -r n c; do
  if [ "${#n}" -gt 5 ]; then printf 'too large for %s\0Function.TooLarge\n' $$; continue; fi
  read -r -N "$((n + c))" frame || exit
  printf '%s %s\0\n' $$ "${frame:c}"
done
"#;

#[test]
fn a_persistent_handler_that_replies_before_reading_its_event_is_restarted_in_step() {
    if child() {
        become_exec()
    }
    let test = "a_persistent_handler_that_replies_before_reading_its_event_is_restarted_in_step";
    let root = task_root(test, &[("guard", 0o755, GUARD)]);
    // 300 KB of lines that read like frame headers, as any unread rest would be taken.
    let large = "200000 0\n".repeat(300_000 / 9);
    let out = run(
        test,
        &[
            ("_HANDLER", "guard"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        steps([
            invocation("big", large.as_bytes()),
            invocation("two", b"two"),
            invocation("three", b"three"),
            invocation("four", b"four"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let message = error_message(posts[0], "big", "Function.TooLarge");
    let first: u64 = message
        .strip_prefix("too large for ")
        .unwrap()
        .parse()
        .unwrap();
    let mut pids = Vec::new();
    for (post, id) in posts[1..].iter().zip(["two", "three", "four"]) {
        let text = post.text();
        let (pid, event) = text
            .split_once(' ')
            .unwrap_or_else(|| panic!("{id}: {text}"));
        assert_eq!(event, id, "{id} gets its own reply: {text}");
        pids.push(pid.parse::<u64>().unwrap());
    }
    assert!(pids[0] != first, "a new process after the unread event");
    assert!(
        pids.iter().all(|&p| p == pids[0]),
        "then one process: {pids:?}"
    );
    assert!(
        out.stderr
            .contains("the handler replied before reading all of its frame"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_persistent_handler_that_leaves_its_frame_unread_is_restarted_before_the_next_one() {
    if child() {
        become_exec()
    }
    let test = "a_persistent_handler_that_leaves_its_frame_unread_is_restarted_before_the_next_one";
    // Answers from the header line, then stops reading.
    let root = task_root(
        test,
        &[(
            "header",
            0o755,
            "#!/bin/bash\nread -r n c\nprintf 'n=%s\\0\\n' \"$n\"\nexec sleep 30\n",
        )],
    );
    let out = run(
        test,
        &[
            ("_HANDLER", "header"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        vec![
            Step::Reply(event("a", b"aaa", &[])),
            Step::Reply(accepted()),
            Step::Reply(bare_event(
                "b",
                b"bbbb",
                &[("Lambda-Runtime-Deadline-Ms", &due_in(3000))],
            )),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "a", b"n=3");
    assert_response(posts[1], "b", b"n=4");
}

#[test]
fn a_persistent_handler_that_writes_more_than_its_reply_is_restarted_in_step() {
    if child() {
        become_exec()
    }
    let test = "a_persistent_handler_that_writes_more_than_its_reply_is_restarted_in_step";
    let root = task_root(
        test,
        &[(
            "twice",
            0o755,
            // Perl, for one write per syswrite (bash's printf writes at each NUL).
            "#!/usr/bin/perl\nbinmode STDIN; binmode STDOUT;\n\
             while (defined(my $head = <STDIN>)) {\n  my ($n, $c) = split ' ', $head;\n  \
             read(STDIN, my $frame, $n + $c);\n  my $event = substr($frame, $c);\n  \
             if ($event eq 'double') { syswrite STDOUT, \"$$ one\\0\\n$$ two\\0\\n\" }\n  \
             elsif ($event eq 'late') { syswrite STDOUT, \"$$ first\\0\\n\"; \
             select(undef, undef, undef, 0.02); syswrite STDOUT, \"$$ late\\0\\n\" }\n  \
             else { syswrite STDOUT, \"$$ $event\\0\\n\" }\n}\n",
        )],
    );
    let out = run(
        test,
        &[
            ("_HANDLER", "twice"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        vec![
            Step::Reply(event("i1", b"double", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("i2", b"x", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("i3", b"late", &[])),
            // The late line is written 20 ms after the reply: well before the next event.
            Step::ReplyPause(accepted(), Duration::from_millis(500)),
            Step::Reply(event("i4", b"y", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let words: Vec<(String, String)> = posts
        .iter()
        .map(|p| {
            let text = p.text();
            let (pid, word) = text.split_once(' ').unwrap_or_else(|| panic!("{text}"));
            (pid.to_owned(), word.to_owned())
        })
        .collect();
    let said: Vec<&str> = words.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(said, ["one", "x", "first", "y"], "each its own reply");
    assert_ne!(words[0].0, words[1].0, "replaced after the double reply");
    assert_eq!(words[1].0, words[2].0);
    assert_ne!(words[2].0, words[3].0, "replaced after the late line");
    assert!(
        out.stderr
            .contains("bytes after its reply; it was stopped and starts again")
            && out
                .stderr
                .contains("bytes after its last reply; it was stopped"),
        "{}",
        out.stderr
    );
}

#[test]
fn persistent_replies_may_hold_nul_bytes_in_the_counted_form() {
    if child() {
        become_exec()
    }
    let test = "persistent_replies_may_hold_nul_bytes_in_the_counted_form";
    let root = task_root(
        test,
        &[
            (
                "nul.pl",
                0o644,
                "sub handler { return \"a\\0b\" . $_[0] }\n",
            ),
            (
                "counted",
                0o755,
                "#!/bin/bash\nexport LC_ALL=C\nwhile read -r n c; do\n  read -r -N \"$((n + c))\" frame\n  \
                 case ${frame:c} in\n    bad) printf '\\0=7 Function.Bad\\nno\\0good' ;;\n    \
                 *) printf '\\0=3\\nx\\0y' ;;\n  esac\ndone\n",
            ),
        ],
    );
    let out = run(
        test,
        &[
            ("_HANDLER", "nul.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        steps([invocation("p1", b"1"), invocation("p2", b"\n2\0")]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "p1", b"a\0b1");
    assert_response(posts[1], "p2", b"a\0b\n2\0");
    let out = run(
        test,
        &[
            ("_HANDLER", "counted"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        steps([
            invocation("c1", b"{}"),
            invocation("c2", b"bad"),
            invocation("c3", b"{}"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "c1", b"x\0y");
    assert_eq!(error_message(posts[1], "c2", "Function.Bad"), "no\u{0}good");
    assert_response(posts[2], "c3", b"x\0y");
    assert!(!out.stderr.contains("starting it again"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Web adapter

/// A small HTTP/1.1 server: for each POST it answers with what it received, and with 500
/// for the body `"fail"`; chunked for `"chunked"`. Counts connections.
fn serve_http(listener: TcpListener, name: &'static str, conns: Arc<AtomicUsize>) {
    for (n, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        conns.fetch_add(1, Ordering::SeqCst);
        thread::spawn(move || answer_requests(stream, name, n));
    }
}

fn answer_requests(stream: TcpStream, name: &str, conn: usize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut id = String::new();
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (header, value) = line.split_once(": ").unwrap();
            match header.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap(),
                "lambda-runtime-aws-request-id" => id = value.to_owned(),
                "content-type" => content_type = value.to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        let path = request_line.split(' ').nth(1).unwrap_or_default();
        let reply = format!(
            r#"{{"server": "{name}", "conn": {conn}, "path": "{path}", "id": "{id}", "type": "{content_type}", "body": {body}}}"#
        );
        if body == "\"close\"" {
            // Answer, then close without saying so, as a server's idle timeout does.
            let _ = writer.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            );
            return;
        }
        let response = match body.as_str() {
            "\"fail\"" => {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 15\r\n\r\nserver exploded"
                    .to_owned()
            }
            "\"chunked\"" => format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{reply}\r\n0\r\n\r\n",
                reply.len()
            ),
            _ => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
                reply.len()
            ),
        };
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn the_web_adapter_posts_each_event_to_the_local_server_over_a_kept_alive_connection() {
    if child() {
        become_exec()
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(AtomicUsize::new(0));
    {
        let conns = conns.clone();
        thread::spawn(move || serve_http(listener, "in-test", conns));
    }
    let url = format!("http://127.0.0.1:{port}/events");
    let out = run(
        "the_web_adapter_posts_each_event_to_the_local_server_over_a_kept_alive_connection",
        &[("TINYLAMBDA_WEB_URL", &url), ("_HANDLER", "ignored")],
        steps([
            invocation("w1", br#"{"a":1}"#),
            invocation("w2", br#""chunked""#),
            invocation("w3", br#""fail""#),
            invocation("w4", b"[4]"),
            // The server closes after this reply: the next event comes once the close has
            // surely arrived (one that crosses it in flight is not sent again, see below).
            [
                Step::Reply(event("w5", br#""close""#, &[])),
                Step::ReplyPause(accepted(), Duration::from_millis(200)),
            ],
            invocation("w6", b"[6]"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    let reply = |id: &str, body: &str| {
        format!(
            r#"{{"server": "in-test", "conn": 0, "path": "/events", "id": "{id}", "type": "application/json", "body": {body}}}"#
        )
    };
    assert_response(posts[0], "w1", reply("w1", r#"{"a":1}"#).as_bytes());
    assert_response(posts[1], "w2", reply("w2", r#""chunked""#).as_bytes());
    assert_eq!(
        error_message(posts[2], "w3", "Function.HttpStatus"),
        format!("{url} answered 500: server exploded")
    );
    assert_response(posts[3], "w4", reply("w4", "[4]").as_bytes());
    assert_eq!(
        posts[5].body,
        reply("w6", "[6]")
            .replace("\"conn\": 0", "\"conn\": 1")
            .as_bytes()
    );
    assert_eq!(
        conns.load(Ordering::SeqCst),
        2,
        "one kept-alive connection, replaced once the server closed it"
    );
}

#[test]
fn the_web_adapters_deadline_covers_the_whole_request_not_each_read_or_write() {
    if child() {
        become_exec()
    }
    let (port, seen) = exec_support::Misbehaving::start();
    let url = format!("http://127.0.0.1:{port}/");
    let large = vec![b'7'; 6 << 20];
    let started = Instant::now();
    let out = run(
        "the_web_adapters_deadline_covers_the_whole_request_not_each_read_or_write",
        &[("TINYLAMBDA_WEB_URL", &url)],
        vec![
            // A chunk every 800 ms: each read is short, the reply as a whole is not.
            Step::Reply(bare_event(
                "drip",
                br#""drip""#,
                &[("Lambda-Runtime-Deadline-Ms", &due_in(1500))],
            )),
            Step::Reply(accepted()),
            // 16 KiB read every 500 ms: each write is short, the request as a whole is not.
            // (Due 1.5 s after the first one ends: a deadline already past when an
            // invocation starts counts as none, as emulators send such.)
            Step::Reply(bare_event(
                "slow",
                &large,
                &[("Lambda-Runtime-Deadline-Ms", &due_in(3000))],
            )),
            Step::Reply(accepted()),
            Step::Reply(bare_event("after", b"[3]", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    for (post, id) in posts.iter().zip(["drip", "slow"]) {
        assert_eq!(
            error_message(post, id, "Runtime.Timeout"),
            format!("{url}: no reply before the deadline")
        );
    }
    assert_response(posts[2], "after", b"got [3]");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "each ended at its deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(seen.lock().unwrap()[0], r#""drip""#);
}

#[test]
fn the_web_adapter_never_sends_an_event_twice() {
    if child() {
        become_exec()
    }
    let (port, seen) = exec_support::Misbehaving::start();
    let url = format!("http://127.0.0.1:{port}/");
    let out = run(
        "the_web_adapter_never_sends_an_event_twice",
        &[("TINYLAMBDA_WEB_URL", &url)],
        steps([
            invocation("one", b"[1]"),
            // Read whole on the kept-alive connection, then reset: it may have been acted on.
            invocation("reset", br#""reset""#),
            invocation("three", b"[3]"),
        ]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "one", b"got [1]");
    let message = error_message(posts[1], "reset", "Runtime.WebUnavailable");
    assert!(message.starts_with(&format!("POST {url}: ")), "{message}");
    assert_response(posts[2], "three", b"got [3]");
    assert_eq!(
        *seen.lock().unwrap(),
        ["[1]", r#""reset""#, "[3]"],
        "each event reached the server once"
    );
}

/// Set (only) for the server process that `TINYLAMBDA_WEB_START` starts in the next test.
const SERVER_PORT: &str = "TINYLAMBDA_TEST_WEB_PORT";

#[test]
fn the_web_adapter_starts_the_server_and_waits_for_its_port() {
    if let Ok(port) = env::var(SERVER_PORT) {
        // The server process: listen only after a while, as a real server starting up,
        // and go away when the bootstrap that started it does.
        let parent = std::os::unix::process::parent_id();
        thread::sleep(Duration::from_millis(300));
        let listener = TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
        thread::spawn(move || serve_http(listener, "started", Arc::default()));
        while std::os::unix::process::parent_id() == parent {
            thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    if child() {
        become_exec()
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let me = env::current_exe().unwrap();
    let runner = env::var(support::RUNNER).map_or(String::new(), |r| format!("'{r}' "));
    let start = format!(
        "{SERVER_PORT}={port} exec {runner}'{}' the_web_adapter_starts_the_server_and_waits_for_its_port \
         --exact --test-threads=1 >/dev/null 2>&1",
        me.display()
    );
    let out = run(
        "the_web_adapter_starts_the_server_and_waits_for_its_port",
        &[
            ("TINYLAMBDA_WEB_URL", &format!("http://localhost:{port}")),
            ("TINYLAMBDA_WEB_START", &start),
            ("TINYLAMBDA_WEB_WAIT_MS", "5000"),
        ],
        steps([invocation("s1", b"1"), invocation("s2", b"2")]),
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert!(
        posts[0]
            .text()
            .starts_with(r#"{"server": "started", "conn": 0, "path": "/""#),
        "{}",
        posts[0].text()
    );
    assert!(posts[1].text().contains(r#""conn": 0"#), "kept alive");
}

/// Set (only) for the server process of the next test.
const LIFETIME_PORT: &str = "TINYLAMBDA_TEST_LIFETIME_PORT";

#[test]
fn the_web_server_runs_in_the_task_root_and_ends_with_the_runtime_however_it_ends() {
    if let Ok(port) = env::var(LIFETIME_PORT) {
        exec_support::lifetime_server(&port);
    }
    if child() {
        become_exec()
    }
    let test = "the_web_server_runs_in_the_task_root_and_ends_with_the_runtime_however_it_ends";
    let root = task_root(test, &[]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let me = env::current_exe().unwrap();
    let runner = env::var(support::RUNNER).map_or(String::new(), |r| format!("'{r}' "));
    // A process beside the server in its group, then the server itself (its own process,
    // through exec): both must go.
    let start = format!(
        "sleep 60 >/dev/null 2>&1 & GRANDCHILD=$! {LIFETIME_PORT}={port} exec {runner}'{}' {test} \
         --exact --test-threads=1 >/dev/null 2>&1",
        me.display()
    );
    let vars = [
        ("TINYLAMBDA_WEB_URL", format!("http://127.0.0.1:{port}/")),
        ("TINYLAMBDA_WEB_START", start),
        ("LAMBDA_TASK_ROOT", root.to_str().unwrap().to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    // The same port each time: a server left over would answer in place of the new one,
    // whose own bind would fail.
    for ending in ["exit", "SIGTERM", "SIGKILL"] {
        let last = match ending {
            "exit" => vec![],
            "SIGTERM" => vec![Step::SigTerm],
            _ => vec![Step::Reply(event("kill", br#""kill-runtime""#, &[]))],
        };
        let out = run(
            test,
            &vars,
            [invocation("a", b"{}").to_vec(), last].concat(),
        );
        match ending {
            "exit" => out.assert_ran_to_the_end(),
            _ => assert_eq!(out.code, None, "{ending}: {}", out.stderr),
        }
        let reply = out.posts()[0].text();
        assert!(
            reply.ends_with(&format!(r#""cwd": "{}"}}"#, root.display())),
            "{ending}: started in LAMBDA_TASK_ROOT: {reply}"
        );
        let pid = json_number(reply.as_bytes(), "pid") as u32;
        let grandchild = json_number(reply.as_bytes(), "grandchild") as u32;
        let limit = Duration::from_secs(5);
        exec_support::wait_until(limit, &format!("{ending}: the server ended"), || {
            exec_support::ended(pid)
        });
        exec_support::wait_until(limit, &format!("{ending}: its group ended"), || {
            exec_support::ended(grandchild)
        });
        exec_support::wait_until(limit, &format!("{ending}: its port is free"), || {
            exec_support::closed(port)
        });
    }
}

#[test]
fn a_web_server_that_never_listens_is_an_init_error() {
    if child() {
        become_exec()
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = run(
        "a_web_server_that_never_listens_is_an_init_error",
        &[
            ("TINYLAMBDA_WEB_URL", &url),
            ("TINYLAMBDA_WEB_START", "echo starting >&2; exit 3"),
        ],
        vec![Step::Reply(accepted())],
    );
    assert_init_error(&out, "Runtime.StartError", "ended (exit status 3) before");
    assert!(
        out.stderr.contains("starting"),
        "the server's output is logged"
    );
    let started = Instant::now();
    let out = run(
        "a_web_server_that_never_listens_is_an_init_error",
        &[
            ("TINYLAMBDA_WEB_URL", &url),
            ("TINYLAMBDA_WEB_START", "sleep 30"),
            ("TINYLAMBDA_WEB_WAIT_MS", "300"),
        ],
        vec![Step::Reply(accepted())],
    );
    assert_init_error(
        &out,
        "Runtime.StartTimeout",
        "did not accept connections within 300 ms",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sleep was killed"
    );
}

// ---------------------------------------------------------------------------------------
// Init errors

#[test]
fn a_missing_or_unrunnable_handler_is_an_init_error() {
    if child() {
        become_exec()
    }
    let root = task_root(
        "a_missing_or_unrunnable_handler_is_an_init_error",
        &[("app.py", 0o644, "print('hi')\n"), ("plain", 0o644, "")],
    );
    let root = root.to_str().unwrap();
    let cases = [
        (
            "function.handler",
            "Runtime.NoSuchHandler",
            format!(
                "no {root}/function.sh or {root}/function.pl, and no executable {root}/function.handler"
            ),
        ),
        (
            "app.handler",
            "Runtime.NoSuchHandler",
            format!("{root}/app.py: unknown extension"),
        ),
        (
            "plain",
            "Runtime.NoSuchHandler",
            format!("{root}/plain is not executable"),
        ),
    ];
    for (handler, error_type, message) in cases {
        let out = run(
            "a_missing_or_unrunnable_handler_is_an_init_error",
            &[("_HANDLER", handler), ("LAMBDA_TASK_ROOT", root)],
            vec![Step::Reply(accepted())],
        );
        assert_init_error(&out, error_type, &message);
        assert!(out.stderr.contains(&message), "logged too: {}", out.stderr);
    }
    let out = run(
        "a_missing_or_unrunnable_handler_is_an_init_error",
        &[
            ("_HANDLER", "app.handler"),
            ("LAMBDA_TASK_ROOT", root),
            ("TINYLAMBDA_PERSISTENT", "maybe"),
        ],
        vec![Step::Reply(accepted())],
    );
    assert_init_error(
        &out,
        "Runtime.ConfigInvalid",
        "TINYLAMBDA_PERSISTENT=maybe: expected 1 or 0",
    );
}

// ---------------------------------------------------------------------------------------
// Command line

/// Runs `tinylambda-exec ARGS` outside Lambda (no `AWS_LAMBDA_RUNTIME_API`): exit code,
/// stdout and stderr.
fn exec_with_args(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = support::as_bootstrap(support::through_runner(EXEC));
    cmd.args(args).stdout(std::process::Stdio::piped());
    let (code, stdout, stderr) = support::run_child_output(cmd, Duration::from_secs(30));
    (code, String::from_utf8(stdout).unwrap(), stderr)
}

#[test]
fn help_and_version_answer_without_a_runtime_api() {
    for flag in ["--help", "-h"] {
        let (code, stdout, stderr) = exec_with_args(&[flag]);
        assert_eq!(code, Some(0), "{flag}: {stderr}");
        assert!(stdout.starts_with("tinylambda-exec "), "{flag}: {stdout}");
        for topic in ["_HANDLER", "TINYLAMBDA_PERSISTENT", "TINYLAMBDA_WEB_URL"] {
            assert!(stdout.contains(topic), "{flag} mentions {topic}: {stdout}");
        }
        assert!(stderr.is_empty(), "{flag}: {stderr}");
    }
    let (code, stdout, stderr) = exec_with_args(&["--version"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("tinylambda-exec {}\n", env!("CARGO_PKG_VERSION"))
    );
    let (code, stdout, stderr) = exec_with_args(&["--port", "9000"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(
        stderr,
        "tinylambda-exec: unexpected argument --port (it takes none on Lambda; see --help)"
    );
}

// ---------------------------------------------------------------------------------------
// Through tinylambda-emu: the Runtime API of the emulator rather than a script

const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");

/// What a run of the emulator gave: exit code, stdout, stderr.
struct EmuRun {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `tinylambda-emu ARGS -- tinylambda-exec` with `LAMBDA_TASK_ROOT` = `root` and the
/// extra `--env` values, killed if it outlives [`EMU_LIMIT`]. Under a test runner (an arm64
/// build under qemu), both start through it.
fn through_emu(root: &Path, env: &[&str], args: &[&str]) -> EmuRun {
    let mut cmd = support::through_runner(EMU);
    cmd.arg("--env")
        .arg(format!("LAMBDA_TASK_ROOT={}", root.display()));
    for var in env {
        cmd.args(["--env", var]);
    }
    cmd.args(args).arg("--");
    if let Some(runner) = env::var_os(support::RUNNER) {
        cmd.arg(runner);
    }
    cmd.arg(EXEC)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (code, stdout, stderr) = support::run_child_output(cmd, EMU_LIMIT);
    EmuRun {
        code,
        stdout,
        stderr,
    }
}

/// How long one emulator run in these tests may take.
const EMU_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn under_the_emulator_the_seed_and_perl_handlers_answer_and_failures_reach_the_caller() {
    let examples = Path::new(EXAMPLES);
    let out = through_emu(examples, &[], &["--invoke", r#"{"hello":"emu"}"#]);
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(0), "{stderr}");
    assert_eq!(out.stdout, SEED_REPLY);
    assert!(
        stderr.lines().any(|l| l == r#"{"hello":"emu"}"#),
        "the handler's stderr is in the log: {stderr}"
    );

    let out = through_emu(
        examples,
        &["_HANDLER=lambda_script.handler"],
        &["--invoke", r#"{"n":1}"#],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // Perl's hash order varies from run to run: both keys, in either order.
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.starts_with('{')
            && reply.contains(r#""n":1"#)
            && reply.contains(r#""reply":"Hello from Perl on tinylambda-exec""#),
        "{reply}"
    );

    let root = task_root(
        "under_the_emulator_failures",
        &[(
            "fail.sh",
            0o644,
            "handler () { echo \"no good: $1\" >&2; return 4; }\n",
        )],
    );
    let out = through_emu(&root, &["_HANDLER=fail.handler"], &["--invoke", "{}"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(r#""errorType":"Runtime.ExitError""#)
            && stderr.contains(r#""errorMessage":"exit status 4: no good: {}""#),
        "{stderr}"
    );
}

#[test]
fn under_the_emulator_persistent_mode_serves_every_invocation_from_one_process() {
    // The seed handler shape, also recording which process answered.
    let root = task_root(
        "under_the_emulator_persistent",
        &[(
            "function.sh",
            0o644,
            "handler () {\n  echo $$ >> \"$LAMBDA_TASK_ROOT/pids\"\n  echo \"$1\"\n}\n",
        )],
    );
    let pids = |root: &Path| {
        let text = fs::read_to_string(root.join("pids")).unwrap_or_default();
        let all: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut distinct = all.clone();
        distinct.sort();
        distinct.dedup();
        (all.len(), distinct.len())
    };
    for (persistent, processes) in [("1", 1), ("0", 40)] {
        let _ = fs::remove_file(root.join("pids"));
        let out = through_emu(
            &root,
            &[&format!("TINYLAMBDA_PERSISTENT={persistent}")],
            &["--bench", "40", "--json"],
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"invocations\":40"));
        // Per call, each invocation is a bash of its own; persistent, one bash serves all
        // (the warm-up invocation before the measured ones included).
        let (calls, distinct) = pids(&root);
        assert!(calls >= 40, "{calls} calls recorded");
        if persistent == "1" {
            assert_eq!(distinct, processes, "persistent: one process");
        } else {
            assert_eq!(distinct, calls, "per call: a process each");
        }
    }
}

#[test]
fn the_readme_shows_the_exec_examples_that_are_tested() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for example in [
        "function.sh",
        "lambda_script.pl",
        "persistent.sh",
        "persistent.pl",
    ] {
        let text = fs::read_to_string(Path::new(EXAMPLES).join(example)).unwrap();
        assert!(
            readme.contains(&text),
            "README.md must show examples/exec/{example} exactly as tested"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The function's log in Lambda's formats (AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL)

/// A handler that writes to stderr: a plain line, a JSON object (with spaces around it), a
/// line of awkward characters, one that is not UTF-8, a line of 100 KiB (two-byte
/// characters in it), and a last line without a line break; then answers `ok EVENT`.
const LOGGING_SH: &str = r#"LONG=$(printf 'é0123456789abcdef%.0s' {1..5700})
handler () {
  echo "plain line for $LAMBDA_REQUEST_ID" >&2
  echo '  {"level":"WARN","message":"disk \"full\"","n":[1,2.5e3,{"ok":true}]} ' >&2
  printf 'say "hi" \\ path\\to\ttab\001 é 漢字 😀\n' >&2
  printf 'bad \xff byte\n' >&2
  printf '%s\n' "$LONG" >&2
  printf 'no line break at the end' >&2
  echo "ok $1"
}
"#;

/// The JSON line [`LOGGING_SH`] writes, as it writes it.
const LOGGED_JSON: &str =
    r#"  {"level":"WARN","message":"disk \"full\"","n":[1,2.5e3,{"ok":true}]} "#;

/// The awkward line [`LOGGING_SH`] writes.
const AWKWARD: &str = "say \"hi\" \\ path\\to\ttab\u{1} é 漢字 😀";

/// The 100 KiB line [`LOGGING_SH`] writes.
fn long_line() -> String {
    "é0123456789abcdef".repeat(5700)
}

/// Every stderr line of `out`, each parsed strictly as one JSON object.
fn json_lines(out: &Outcome) -> Vec<json::Value> {
    assert!(!out.stderr.is_empty(), "stderr was not all UTF-8, or empty");
    out.stderr
        .lines()
        .map(|line| {
            let value = json::parse(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert!(matches!(value, json::Value::Object(_)), "{line}");
            value
        })
        .collect()
}

/// The messages of the `INFO` records about invocation `id`, checking each record's shape:
/// `timestamp`, `level`, `requestId`, `message`, and `tenantId` when `tenant` is given.
fn wrapped(records: &[json::Value], id: &str, tenant: Option<&str>) -> Vec<String> {
    let mine: Vec<&json::Value> = records
        .iter()
        .filter(|r| r.str("requestId") == Some(id))
        .collect();
    for record in &mine {
        assert_eq!(record.str("level"), Some("INFO"), "{record:?}");
        assert_eq!(record.str("tenantId"), tenant, "{record:?}");
        // The parser's keys come sorted.
        let keys = match tenant {
            Some(_) => vec!["level", "message", "requestId", "tenantId", "timestamp"],
            None => vec!["level", "message", "requestId", "timestamp"],
        };
        assert_eq!(record.keys(), keys, "{record:?}");
        let stamp = record.str("timestamp").unwrap();
        assert!(
            stamp.len() == 24 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
            "{stamp}"
        );
    }
    mine.iter()
        .map(|r| r.str("message").unwrap().to_owned())
        .collect()
}

/// Asserts `messages` are what [`LOGGING_SH`] wrote for `id`, the long line in pieces.
fn assert_logging_sh_messages(messages: &[String], id: &str) {
    assert!(messages.len() > 5, "{id}: {messages:?}");
    assert_eq!(messages[0], format!("plain line for {id}"));
    assert_eq!(messages[1], AWKWARD);
    assert_eq!(messages[2], "bad \u{fffd} byte", "not UTF-8: replaced");
    let last = messages.len() - 1;
    assert_eq!(messages[last], "no line break at the end");
    assert!(last - 3 >= 25, "100 KiB in records of 4 KiB: {}", last - 3);
    assert_eq!(
        messages[3..last].concat(),
        long_line(),
        "{id}: the long line"
    );
}

#[test]
fn in_json_format_plain_stderr_lines_become_info_records_and_json_lines_pass_untouched() {
    if child() {
        become_exec()
    }
    let test =
        "in_json_format_plain_stderr_lines_become_info_records_and_json_lines_pass_untouched";
    let root = task_root(test, &[("logging.sh", 0o644, LOGGING_SH)]);
    let out = run(
        test,
        &[
            ("_HANDLER", "logging.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
        vec![
            Step::Reply(event(
                "j1",
                b"one",
                &[("Lambda-Runtime-Aws-Tenant-Id", "tenant-7")],
            )),
            Step::Reply(accepted()),
            Step::Reply(event("j2", b"two", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "j1", b"ok one");
    assert_response(posts[1], "j2", b"ok two");
    let records = json_lines(&out);
    assert_logging_sh_messages(&wrapped(&records, "j1", Some("tenant-7")), "j1");
    assert_logging_sh_messages(&wrapped(&records, "j2", None), "j2");
    // The JSON line, byte for byte, once per invocation, between the records.
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i] == LOGGED_JSON)
        .collect();
    assert_eq!(at.len(), 2, "{}", out.stderr);
    for (i, id) in at.into_iter().zip(["j1", "j2"]) {
        assert_eq!(
            records[i - 1].str("message"),
            Some(format!("plain line for {id}").as_str())
        );
        assert_eq!(records[i + 1].str("message"), Some(AWKWARD));
    }
    // Each record in one write of at most 4,096 bytes.
    assert!(lines.iter().all(|l| l.len() < 4096));
    // The runtime's own lines are records too: the end of the script is fatal.
    assert_eq!(records.last().unwrap().str("level"), Some("FATAL"));
}

#[test]
fn in_json_format_a_level_above_info_drops_wrapped_lines_and_keeps_json_ones() {
    if child() {
        become_exec()
    }
    let test = "in_json_format_a_level_above_info_drops_wrapped_lines_and_keeps_json_ones";
    let root = task_root(test, &[("logging.sh", 0o644, LOGGING_SH)]);
    for (level, wrapped_kept) in [("WARN", false), ("error", false), ("DEBUG", true)] {
        let out = run(
            test,
            &[
                ("_HANDLER", "logging.handler"),
                ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
                ("AWS_LAMBDA_LOG_FORMAT", "json"),
                ("AWS_LAMBDA_LOG_LEVEL", level),
            ],
            steps([invocation("l1", b"x")]),
        );
        out.assert_ran_to_the_end();
        assert_response(out.posts()[0], "l1", b"ok x");
        let records = json_lines(&out);
        let json_lines = out.stderr.lines().filter(|l| *l == LOGGED_JSON).count();
        assert_eq!(json_lines, 1, "{level}: Lambda filters JSON lines itself");
        let info = records
            .iter()
            .filter(|r| r.str("level") == Some("INFO"))
            .count();
        if wrapped_kept {
            assert_logging_sh_messages(&wrapped(&records, "l1", None), "l1");
        } else {
            assert_eq!(info, 0, "{level}: {}", out.stderr);
        }
    }
}

/// Set for the bootstrap child of the next test: the file its stderr goes to, so that the
/// test sees every byte (the captured stderr is text).
const STDERR_FILE: &str = "TINYLAMBDA_TEST_STDERR_FILE";

#[test]
fn in_text_format_the_handlers_stderr_reaches_the_log_byte_for_byte() {
    if child() {
        let file = fs::File::create(env::var(STDERR_FILE).unwrap()).unwrap();
        let error = support::through_runner(EXEC).stderr(file).exec();
        panic!("exec {EXEC}: {error}");
    }
    let test = "in_text_format_the_handlers_stderr_reaches_the_log_byte_for_byte";
    let root = task_root(test, &[("logging.sh", 0o644, LOGGING_SH)]);
    let log = root.join("stderr");
    // Unset, `Text`, and `Text` with a level: the level does not apply to text.
    for format in [None, Some(("Text", "INFO")), Some(("text", "FATAL"))] {
        let mut vars = vec![
            ("_HANDLER", "logging.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            (STDERR_FILE, log.to_str().unwrap()),
        ];
        if let Some((format, level)) = format {
            vars.extend([
                ("AWS_LAMBDA_LOG_FORMAT", format),
                ("AWS_LAMBDA_LOG_LEVEL", level),
            ]);
        }
        let out = run(test, &vars, steps([invocation("t1", b"x")]));
        assert_eq!(out.code, Some(1), "{format:?}");
        assert_response(out.posts()[0], "t1", b"ok x");
        let bytes = fs::read(&log).unwrap();
        let mut lines = bytes.split(|&b| b == b'\n');
        let expected: [&[u8]; 4] = [
            b"plain line for t1",
            LOGGED_JSON.as_bytes(),
            AWKWARD.as_bytes(),
            b"bad \xff byte",
        ];
        for want in expected {
            assert_eq!(
                lines.next().unwrap(),
                want,
                "{format:?}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // The long line as the relay has always forwarded it: whole, or in pieces of over
        // 16 KiB, each ended with a line break.
        let long = long_line();
        let mut joined = Vec::new();
        while joined.len() < long.len() {
            let piece = lines.next().unwrap();
            joined.extend_from_slice(piece);
            assert!(joined.len() == long.len() || piece.len() > 16 * 1024);
        }
        assert_eq!(joined, long.as_bytes());
        assert_eq!(lines.next().unwrap(), b"no line break at the end");
        let rest: Vec<&[u8]> = lines.filter(|l| !l.is_empty()).collect();
        assert_eq!(rest.len(), 1, "{format:?}: the runtime's last line only");
        assert!(rest[0].starts_with(b"tinylambda: GET /next returned 500"));
    }
}

/// A persistent bash function that logs a line and a partial line per invocation.
const PERSISTENT_LOGGING_SH: &str = r#"handler () {
  echo "line for $LAMBDA_REQUEST_ID" >&2
  echo '{"message":"json for '"$LAMBDA_REQUEST_ID"'"}' >&2
  printf 'partial for %s' "$LAMBDA_REQUEST_ID" >&2
  echo "ok $1"
}
"#;

#[test]
fn in_json_format_persistent_handlers_log_records_of_each_invocation_and_exec_its_warnings() {
    if child() {
        become_exec()
    }
    let test =
        "in_json_format_persistent_handlers_log_records_of_each_invocation_and_exec_its_warnings";
    let root = task_root(
        test,
        &[
            ("logging.sh", 0o644, PERSISTENT_LOGGING_SH),
            ("guard", 0o755, GUARD),
        ],
    );
    let out = run(
        test,
        &[
            ("_HANDLER", "logging.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
        steps([invocation("p1", b"a"), invocation("p2", b"b")]),
    );
    out.assert_ran_to_the_end();
    assert_response(out.posts()[0], "p1", b"ok a");
    assert_response(out.posts()[1], "p2", b"ok b");
    let records = json_lines(&out);
    for id in ["p1", "p2"] {
        // The partial line is not held back until the next invocation.
        assert_eq!(
            wrapped(&records, id, None),
            [format!("line for {id}"), format!("partial for {id}")]
        );
        let json = format!(r#"{{"message":"json for {id}"}}"#);
        assert!(out.stderr.lines().any(|l| l == json), "{}", out.stderr);
    }

    // tinylambda-exec's own lines are records too: a handler that replies before reading
    // its frame is replaced, with a warning.
    let large = "200000 0\n".repeat(300_000 / 9);
    let out = run(
        test,
        &[
            ("_HANDLER", "guard"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
        steps([invocation("big", large.as_bytes())]),
    );
    out.assert_ran_to_the_end();
    let records = json_lines(&out);
    let warning = records
        .iter()
        .find(|r| {
            r.str("message")
                .is_some_and(|m| m.starts_with("tinylambda-exec: the handler replied before"))
        })
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert_eq!(warning.str("level"), Some("WARN"));
}

/// Set (only) for the server process of the next test.
const LOGGING_PORT: &str = "TINYLAMBDA_TEST_LOGGING_PORT";

#[test]
fn in_json_format_the_web_servers_output_becomes_records_of_the_invocation() {
    if let Ok(port) = env::var(LOGGING_PORT) {
        exec_support::logging_server(&port);
    }
    if child() {
        become_exec()
    }
    let test = "in_json_format_the_web_servers_output_becomes_records_of_the_invocation";
    let me = env::current_exe().unwrap();
    let runner = env::var(support::RUNNER).map_or(String::new(), |r| format!("'{r}' "));
    for json in [true, false] {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let start = format!(
            "{LOGGING_PORT}={port} exec {runner}'{}' {test} --exact --test-threads=1 --nocapture",
            me.display()
        );
        let url = format!("http://127.0.0.1:{port}/");
        let mut vars = vec![
            ("TINYLAMBDA_WEB_URL", url.as_str()),
            ("TINYLAMBDA_WEB_START", start.as_str()),
        ];
        if json {
            vars.push(("AWS_LAMBDA_LOG_FORMAT", "JSON"));
        }
        let out = run(
            test,
            &vars,
            steps([invocation("w1", b"[1]"), invocation("w2", b"[2]")]),
        );
        out.assert_ran_to_the_end();
        assert_response(out.posts()[0], "w1", b"ok w1");
        assert_response(out.posts()[1], "w2", b"ok w2");
        for id in ["w1", "w2"] {
            let json_line = format!(r#"{{"level":"WARN","message":"stderr of {id}"}}"#);
            assert!(out.stderr.lines().any(|l| l == json_line), "{}", out.stderr);
        }
        if !json {
            // Text: the server writes to the runtime's streams itself (stdout is not
            // captured here).
            assert!(out.stderr.lines().any(|l| l == "plain stderr of w1"));
            assert!(!out.stderr.contains("\"timestamp\""), "{}", out.stderr);
            continue;
        }
        let records = json_lines(&out);
        for (id, body) in [("w1", "[1]"), ("w2", "[2]")] {
            // What the server wrote before it answered belongs to its invocation, from
            // stdout and stderr alike.
            assert_eq!(
                wrapped(&records, id, None),
                [
                    format!("stdout: {body} for {id}"),
                    format!("plain stderr of {id}")
                ],
                "{}",
                out.stderr
            );
        }
        // Before the first invocation: no request id. (The test harness running the
        // server writes to the same stdout, with no line break before `starting`.)
        let starting = records
            .iter()
            .find(|r| r.str("message").is_some_and(|m| m.ends_with("starting")))
            .unwrap_or_else(|| panic!("{}", out.stderr));
        assert_eq!(starting.str("level"), Some("INFO"));
        assert_eq!(starting.get("requestId"), None);
    }
}

#[test]
fn a_persistent_shell_handler_with_no_context_values_answers_only_what_it_prints() {
    if child() {
        become_exec()
    }
    let test = "a_persistent_shell_handler_with_no_context_values_answers_only_what_it_prints";
    let root = task_root(
        test,
        &[("f.sh", 0o644, "handler () { printf '%s' \"got $1\"; }\n")],
    );
    // A request id that is not a plain word and no other context: nothing to export, and
    // `export` without names would list the whole environment (secrets included) into the
    // reply.
    let out = run(
        test,
        &[
            ("_HANDLER", "f.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("TINYLAMBDA_PERSISTENT", "1"),
        ],
        vec![
            Step::Reply(bare_event("id*1", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    assert_response(out.posts()[0], "id*1", b"got {}");
}

#[test]
fn a_shell_handler_that_turns_on_extended_patterns_passes_the_syntax_check_and_runs() {
    if child() {
        become_exec()
    }
    let test = "a_shell_handler_that_turns_on_extended_patterns_passes_the_syntax_check_and_runs";
    // `bash -n` parses without running the `shopt`: the check must know the patterns.
    let root = task_root(
        test,
        &[(
            "glob.sh",
            0o644,
            "shopt -s extglob\nhandler () {\n  case \"$1\" in\n    +([0-9])) echo number;;\n    *) echo other;;\n  esac\n}\n",
        )],
    );
    let out = run(
        test,
        &[
            ("_HANDLER", "glob.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        vec![
            Step::Reply(event("n", b"123", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("w", b"abc", &[])),
            Step::Reply(accepted()),
        ],
    );
    let posts = out.posts();
    assert_response(posts[0], "n", b"number");
    assert_response(posts[1], "w", b"other");
}

#[test]
fn a_handler_whose_command_left_the_process_group_still_times_out_before_the_deadline() {
    if child() {
        become_exec()
    }
    let test = "a_handler_whose_command_left_the_process_group_still_times_out_before_the_deadline";
    // `timeout` runs its command in a process group of its own, out of reach of the kill
    // of the handler's group, and holding the handler's stdout and stderr open.
    let root = task_root(
        test,
        &[(
            "tmo.sh",
            0o644,
            "handler () {\n  timeout 30 sh -c 'echo $$ > \"$LAMBDA_TASK_ROOT/sleeper\"; exec sleep 29'\n  echo done\n}\n",
        )],
    );
    let deadline = due_in(1500);
    let out = run(
        test,
        &[
            ("_HANDLER", "tmo.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        vec![
            Step::Reply(bare_event(
                "slow",
                b"first",
                &[("Lambda-Runtime-Deadline-Ms", &deadline)],
            )),
            Step::Reply(accepted()),
        ],
    );
    if let Ok(pid) = fs::read_to_string(root.join("sleeper")) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    let posts = out.posts();
    error_message(posts[0], "slow", "Runtime.Timeout");
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline.parse().unwrap());
    assert!(
        posts[0].received < deadline,
        "the /error arrived {:?} after the deadline, when Lambda has timed the invocation out itself",
        posts[0]
            .received
            .duration_since(deadline)
            .unwrap_or_default()
    );
}

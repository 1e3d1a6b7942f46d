//! Start-up: configuration errors and the init path. Each bad configuration must give one
//! actionable line on stderr, a non-zero exit, and no panic or backtrace.

mod support;

use support::{Step, accepted, bootstrap_command, child, event, run_child, serve, serve_with};
use tinylambda::{Context, Error};

fn echo(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

/// Runs the child with `AWS_LAMBDA_RUNTIME_API` set to `value` (or unset for `None`) and no
/// server, and returns its exit code and stderr.
fn start_with(test: &str, value: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = bootstrap_command(test);
    if let Some(value) = value {
        cmd.env("AWS_LAMBDA_RUNTIME_API", value);
    }
    run_child(cmd)
}

fn assert_one_clean_line(stderr: &str, expected: &str) {
    assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr:?}");
    assert!(stderr.starts_with("tinylambda: "), "{stderr:?}");
    assert!(
        stderr.contains(expected),
        "{expected:?} missing from {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr:?}"
    );
}

#[test]
fn missing_runtime_api_variable_is_named_in_one_line() {
    if child() {
        tinylambda::run(echo)
    }
    let (code, stderr) = start_with("missing_runtime_api_variable_is_named_in_one_line", None);
    assert_eq!(code, Some(1));
    assert_one_clean_line(&stderr, "AWS_LAMBDA_RUNTIME_API is not set");
}

#[test]
fn malformed_runtime_api_values_are_refused_with_the_reason() {
    if child() {
        tinylambda::run(echo)
    }
    for (value, reason) in [
        ("", "AWS_LAMBDA_RUNTIME_API= is empty"),
        ("   ", "is empty"),
        (
            "https://127.0.0.1:9001",
            "uses https://, but the Runtime API is plain http",
        ),
        ("ftp://127.0.0.1:9001", "has a scheme other than http://"),
        ("127.0.0.1:99999", "has an invalid port"),
        ("user@127.0.0.1:9001", "has no valid host"),
        ("127.0.0.1:9001/a b", "has a path with spaces"),
    ] {
        let (code, stderr) = start_with(
            "malformed_runtime_api_values_are_refused_with_the_reason",
            Some(value),
        );
        assert_eq!(code, Some(1), "{value:?}");
        assert_one_clean_line(&stderr, reason);
    }
}

#[test]
fn unreachable_runtime_api_ends_the_process_after_bounded_retries() {
    if child() {
        tinylambda::run(echo)
    }
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = std::time::Instant::now();
    let (code, stderr) = start_with(
        "unreachable_runtime_api_ends_the_process_after_bounded_retries",
        Some(&format!("127.0.0.1:{port}")),
    );
    let took = start.elapsed();
    assert_eq!(code, Some(1));
    assert_one_clean_line(
        &stderr,
        &format!("cannot connect to AWS_LAMBDA_RUNTIME_API at 127.0.0.1:{port}"),
    );
    assert!(stderr.contains("connection refused"), "{stderr}");
    // Retries for 0.63 s in all (never a busy loop, never forever); allow for slow machines.
    assert!(took.as_millis() >= 600, "gave up too early: {took:?}");
}

#[test]
fn api_that_comes_up_late_is_still_reached() {
    if child() {
        tinylambda::run(echo)
    }
    // The first /next is answered, then the API "restarts": the runtime's connection
    // attempts meet a closed port for 0.2 s before it is back.
    let out = serve(
        "api_that_comes_up_late_is_still_reached",
        vec![
            Step::Reply(event("a", b"1", &[])),
            Step::ReplyPause(accepted(), std::time::Duration::from_millis(200)),
            Step::Reply(event("b", b"2", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert_eq!(out.posts().len(), 2);
}

#[test]
fn failed_init_posts_init_error_and_exits() {
    if child() {
        let _never: u32 = tinylambda::init(|| -> Result<u32, Error> {
            Err(Error::new(
                "Runtime.ConfigInvalid",
                "TABLE_NAME is not set \"here\"",
            ))
        });
        unreachable!("init must not return after a failure");
    }
    let out = serve(
        "failed_init_posts_init_error_and_exits",
        vec![Step::Reply(accepted())],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.requests.len(), 1, "{:?}", out.requests);
    let init = &out.requests[0];
    assert_eq!(
        (init.method.as_str(), init.path.as_str()),
        ("POST", "/2018-06-01/runtime/init/error")
    );
    assert_eq!(
        init.header("Lambda-Runtime-Function-Error-Type"),
        Some("Runtime.ConfigInvalid")
    );
    assert_eq!(init.header("Content-Type"), Some("application/json"));
    assert_eq!(
        init.text(),
        "{\"errorMessage\":\"TABLE_NAME is not set \\\"here\\\"\",\"errorType\":\"Runtime.ConfigInvalid\",\"stackTrace\":[]}"
    );
    assert!(
        out.stderr
            .contains("init failed: Runtime.ConfigInvalid: TABLE_NAME is not set"),
        "{}",
        out.stderr
    );
}

#[test]
fn failed_init_exits_non_zero_even_if_the_api_refuses_the_report() {
    if child() {
        tinylambda::init(|| -> Result<(), &str> { Err("cannot open the model file") });
        unreachable!();
    }
    let out = serve(
        "failed_init_exits_non_zero_even_if_the_api_refuses_the_report",
        vec![Step::Reply(support::status(403, "InvalidStateTransition"))],
    );
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.requests[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Runtime.InitError"),
        "an error of the default type is reported as Lambda's init errors are"
    );
    assert!(out.stderr.contains("returned 403"), "{}", out.stderr);
}

#[test]
fn successful_init_hands_its_value_to_the_handler() {
    if child() {
        let greeting =
            tinylambda::init(|| -> Result<String, Error> { Ok("hello from init".to_owned()) });
        tinylambda::run(move |_: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(greeting.clone().into_bytes())
        })
    }
    let out = serve_with(
        "successful_init_hands_its_value_to_the_handler",
        vec![Step::Reply(event("i", b"", &[])), Step::Reply(accepted())],
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
        },
    );
    out.assert_ran_to_the_end();
    assert_eq!(out.posts()[0].text(), "hello from init");
    assert!(out.requests[0].is_next(), "no /init/error on success");
}

#[test]
fn max_concurrency_above_one_is_logged_once() {
    if child() {
        tinylambda::run(echo)
    }
    let out = serve_with(
        "max_concurrency_above_one_is_logged_once",
        vec![Step::Reply(event("m", b"x", &[])), Step::Reply(accepted())],
        |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_MAX_CONCURRENCY", "4");
        },
    );
    out.assert_ran_to_the_end();
    assert_eq!(
        out.stderr.matches("AWS_LAMBDA_MAX_CONCURRENCY").count(),
        1,
        "{}",
        out.stderr
    );
}

/// Without the `resolve` feature, a host name other than `localhost` is refused at once: no
/// name lookup, no retries (`cargo test` without `--all-features` runs this one).
#[cfg(not(feature = "resolve"))]
#[test]
fn a_host_name_is_refused_without_the_resolve_feature() {
    if child() {
        tinylambda::run(echo)
    }
    let (code, stderr) = start_with(
        "a_host_name_is_refused_without_the_resolve_feature",
        Some("runtime-api.invalid:9001"),
    );
    assert_eq!(code, Some(1));
    assert_one_clean_line(
        &stderr,
        "AWS_LAMBDA_RUNTIME_API host runtime-api.invalid needs the `resolve` feature (or use an IP address)",
    );
}

/// With the `resolve` feature, a host name is looked up (`.invalid` never resolves, so the
/// lookup's failure is what the line reports).
#[cfg(feature = "resolve")]
#[test]
fn a_host_name_is_looked_up_with_the_resolve_feature() {
    if child() {
        tinylambda::run(echo)
    }
    let (code, stderr) = start_with(
        "a_host_name_is_looked_up_with_the_resolve_feature",
        Some("runtime-api.invalid:9001"),
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(
            "tinylambda: cannot connect to AWS_LAMBDA_RUNTIME_API at runtime-api.invalid:9001: \
             the host name did not resolve"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A value that is not a host name at all is malformed, whatever the features: it says so,
/// rather than that it needs a name lookup.
#[test]
fn a_host_that_is_no_name_at_all_is_reported_malformed() {
    if child() {
        tinylambda::run(echo)
    }
    let (code, stderr) = start_with(
        "a_host_that_is_no_name_at_all_is_reported_malformed",
        Some("garbage!!"),
    );
    assert_eq!(code, Some(1));
    assert_one_clean_line(
        &stderr,
        "AWS_LAMBDA_RUNTIME_API=garbage!! has no valid host (expected host:port)",
    );
}

//! `tinylambda-emu --log-format json|text --log-level LEVEL`: the runtime gets Lambda's
//! `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`; in JSON format the emulator's
//! platform lines are Lambda's JSON records (`platform.start`, `platform.runtimeDone`,
//! `platform.report`), each parsed here with the strict parser of `support`; text format
//! keeps the `START`/`END`/`REPORT` lines; bad values are usage errors.
//!
//! Real emulator, this test binary re-run as the bootstrap, 127.0.0.1 only; every wait is
//! bounded.

use std::collections::BTreeMap;

use tinylambda::{Context, Error};

mod emu_support;
mod support;

use emu_support::*;
use support::json::{self, Value};

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Some(role) = my_role() else {
        return;
    };
    match role.as_str() {
        // `"fail"`: a function error; `"sleep"`: past the timeout; else the two variables.
        "logging" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            match unword(event) {
                b"fail" => Err(Error::new("Function.Nope", "asked to fail")),
                b"sleep" => {
                    std::thread::sleep(LIMIT);
                    Ok(Vec::new())
                }
                _ => {
                    let var = |key| std::env::var(key).unwrap_or_else(|_| "unset".into());
                    Ok(format!(
                        "format={} level={}",
                        var("AWS_LAMBDA_LOG_FORMAT"),
                        var("AWS_LAMBDA_LOG_LEVEL")
                    )
                    .into_bytes())
                }
            }
        }),
        other => panic!("unknown role {other}"),
    }
}

/// The platform records in a log: every line that holds one, parsed strictly from where it
/// starts to the end of the line (a record that does not parse fails the test), grouped by
/// request id, in order. (The bootstrap writes to the same log, and the re-run test
/// harness starts a line with `test NAME ... ` that the first record may end.)
fn records(log: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in log
        .lines()
        .filter_map(|l| l.find("{\"time\"").map(|at| &l[at..]))
    {
        let record = json::parse(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let id = record
            .get("record")
            .and_then(|r| r.str("requestId"))
            .unwrap_or_else(|| panic!("no requestId: {line}"))
            .to_owned();
        by_id.entry(id).or_default().push(record);
    }
    by_id
}

/// Whether `time` is ISO 8601 in UTC with milliseconds: `2026-12-02T15:04:05.123Z`.
fn is_iso_millis(time: &str) -> bool {
    let b = time.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The number at `key` of `metrics`, as written.
fn number<'v>(metrics: &'v Value, key: &str) -> Option<&'v str> {
    match metrics.get(key)? {
        Value::Number(n) => Some(n),
        _ => None,
    }
}

#[test]
fn json_format_sets_the_variables_and_writes_lambdas_platform_records() {
    child();
    let emu = Emu::serve(&role(
        "json_format_sets_the_variables_and_writes_lambdas_platform_records",
        "logging",
        &[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--timeout",
            "1",
        ],
    ));
    let ok = emu.invoke(&word("hello"));
    assert_eq!(ok.text(), "format=JSON level=DEBUG");
    let failed = emu.invoke(&word("fail"));
    assert_eq!(failed.error_type(), "Function.Nope");
    let timed_out = emu.invoke(&word("sleep"));
    assert_eq!(timed_out.error_type(), "Sandbox.Timedout");
    // The runtime's next /next ends the second invocation; the third ends at its timeout.
    let log = emu.wait_log("\"type\":\"platform.report\"", 3);
    assert!(
        !log.contains("START RequestId:") && !log.contains("REPORT RequestId:"),
        "no text platform lines in JSON format: {log}"
    );
    let by_id = records(&log);
    let ids: Vec<String> = [&ok, &failed, &timed_out]
        .iter()
        .map(|r| r.header("X-Amzn-RequestId").expect("request id"))
        .collect();
    for (i, (id, (status, error_type))) in ids
        .iter()
        .zip([
            ("success", None),
            ("error", Some("Function.Nope")),
            ("timeout", None),
        ])
        .enumerate()
    {
        let records = &by_id[id];
        let types: Vec<&str> = records.iter().filter_map(|r| r.str("type")).collect();
        assert_eq!(
            types,
            ["platform.start", "platform.runtimeDone", "platform.report"],
            "{id}: {log}"
        );
        for r in records {
            assert!(is_iso_millis(r.str("time").unwrap()), "{r:?}");
        }
        let start = records[0].get("record").unwrap();
        assert_eq!(start.keys(), ["requestId", "version"]);
        assert_eq!(start.str("version"), Some("$LATEST"));

        let done = records[1].get("record").unwrap();
        assert_eq!(done.str("status"), Some(status), "{id}");
        assert_eq!(done.str("errorType"), error_type, "{id}");
        let metrics = done.get("metrics").expect("runtimeDone metrics");
        assert!(number(metrics, "durationMs").is_some(), "{metrics:?}");
        if status == "success" {
            assert_eq!(
                number(metrics, "producedBytes"),
                Some(ok.body.len().to_string().as_str())
            );
        }

        let report = records[2].get("record").unwrap();
        assert_eq!(report.str("status"), Some(status), "{id}");
        assert_eq!(report.str("errorType"), error_type, "{id}");
        let metrics = report.get("metrics").expect("report metrics");
        assert_eq!(number(metrics, "memorySizeMB"), Some("128"));
        let duration: f64 = number(metrics, "durationMs").unwrap().parse().unwrap();
        let billed: u64 = number(metrics, "billedDurationMs")
            .unwrap()
            .parse()
            .unwrap();
        assert!(billed as f64 >= duration && billed >= 1, "{metrics:?}");
        if status == "timeout" {
            assert!(duration >= 1000.0, "the timeout's duration: {duration}");
        }
        let used: u64 = number(metrics, "maxMemoryUsedMB").unwrap().parse().unwrap();
        assert!(used >= 1, "{metrics:?}");
        // initDurationMs on a cold start only: the first invocation's runtime; the timeout
        // killed nothing before the third, which runs on the same runtime as the second.
        assert_eq!(
            number(metrics, "initDurationMs").is_some(),
            i == 0,
            "{id}: {metrics:?}"
        );
    }
}

#[test]
fn text_format_keeps_the_text_lines_and_no_flag_sets_no_variable() {
    child();
    let test = "text_format_keeps_the_text_lines_and_no_flag_sets_no_variable";
    let emu = Emu::serve(&role(test, "logging", &["--log-format", "text"]));
    assert_eq!(emu.invoke(&word("hello")).text(), "format=Text level=unset");
    let log = emu.wait_log("REPORT RequestId: ", 1);
    assert!(log.contains("START RequestId: ") && log.contains("END RequestId: "));
    assert!(!log.contains("{\"time\""), "{log}");

    let emu = Emu::serve(&role(test, "logging", &[]));
    assert_eq!(
        emu.invoke(&word("hello")).text(),
        "format=unset level=unset"
    );
    emu.wait_log("REPORT RequestId: ", 1);
}

#[test]
fn bad_log_flags_are_usage_errors() {
    let echo = example("echo");
    for (list, expected) in [
        (
            &["--log-format", "xml", "--", &echo][..],
            "--log-format expects json or text",
        ),
        (
            &["--log-format", "json", "--log-level", "loud", "--", &echo],
            "--log-level expects TRACE, DEBUG, INFO, WARN, ERROR or FATAL",
        ),
        (
            &["--log-level", "warn", "--", &echo],
            "--log-level needs --log-format json",
        ),
        (
            &["--env", "AWS_LAMBDA_LOG_FORMAT=JSON", "--", &echo],
            "--env cannot set AWS_LAMBDA_LOG_FORMAT",
        ),
        (
            &["--env", "AWS_LAMBDA_LOG_LEVEL=INFO", "--", &echo],
            "--env cannot set AWS_LAMBDA_LOG_LEVEL",
        ),
    ] {
        let output = run_emu(&args(list));
        assert_one_line_refusal(&output, expected);
        assert_eq!(output.status.code(), Some(2), "{list:?}");
    }
}

//! Lambda's logging controls: `AWS_LAMBDA_LOG_FORMAT` (`Text`, `JSON`) and
//! `AWS_LAMBDA_LOG_LEVEL`, for the runtime's own lines and for handlers' records
//! (`Context::log`, `tinylambda::log`). Every JSON line is checked with the strict parser in
//! `support::json`.

mod support;

use support::json::{self, Value};
use support::{Outcome, Step, accepted, child, event, refusal, serve_with};
use tinylambda::{Context, Error, Level};

/// Runs `test`'s bootstrap against `steps` with the two variables set as given.
fn serve_logging(
    test: &str,
    format: Option<&str>,
    level: Option<&str>,
    steps: Vec<Step>,
) -> Outcome {
    serve_with(test, steps, |cmd, port| {
        cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
        if let Some(format) = format {
            cmd.env("AWS_LAMBDA_LOG_FORMAT", format);
        }
        if let Some(level) = level {
            cmd.env("AWS_LAMBDA_LOG_LEVEL", level);
        }
    })
}

/// Every stderr line, each parsed strictly as one JSON object.
fn records(out: &Outcome) -> Vec<Value> {
    out.stderr
        .lines()
        .map(|line| {
            let value = json::parse(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert!(matches!(value, Value::Object(_)), "{line}");
            value
        })
        .collect()
}

/// The message that exercises escaping: quotes, backslashes, control characters, text
/// that is not ASCII.
const AWKWARD: &str = "say \"hi\" \\ path\\to\ttab\nnew line\u{1} é 漢字 😀";

/// Logs at every level what the event asks: `awkward`, `long` (100 KiB), or the event.
fn logging(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
    match event {
        b"awkward" => ctx.info(AWKWARD),
        b"long" => ctx.info(&"0123456789abcdef".repeat(6400)),
        _ => {
            let text = std::str::from_utf8(event)?;
            for level in Level::ALL {
                ctx.log(level, text);
            }
        }
    }
    Ok(event.to_vec())
}

#[test]
fn json_records_carry_the_invocation_and_escape_every_message_strictly() {
    if child() {
        tinylambda::log(Level::Info, "starting up");
        tinylambda::run(logging)
    }
    let out = serve_logging(
        "json_records_carry_the_invocation_and_escape_every_message_strictly",
        Some("JSON"),
        Some("TRACE"),
        vec![
            Step::Reply(event(
                "a1",
                b"awkward",
                &[("Lambda-Runtime-Aws-Tenant-Id", "t-9")],
            )),
            Step::Reply(accepted()),
            Step::Reply(event("a2", b"long", &[])),
            Step::Reply(accepted()),
        ],
    );
    assert_eq!(out.code, Some(1));
    let records = records(&out);
    // Init code's record has no request id.
    assert_eq!(records[0].str("message"), Some("starting up"));
    assert_eq!(records[0].get("requestId"), None);
    let awkward = &records[1];
    assert_eq!(awkward.str("message"), Some(AWKWARD));
    assert_eq!(awkward.str("level"), Some("INFO"));
    assert_eq!(awkward.str("requestId"), Some("a1"));
    assert_eq!(awkward.str("tenantId"), Some("t-9"));
    let stamp = awkward.str("timestamp").unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{stamp}"
    );
    // 100 KiB goes out in whole records of at most 4,096 bytes, which put back together
    // give the message.
    let long: Vec<&Value> = records
        .iter()
        .filter(|r| r.str("requestId") == Some("a2"))
        .collect();
    assert!(long.len() >= 26, "{} records", long.len());
    let joined: String = long.iter().map(|r| r.str("message").unwrap()).collect();
    assert_eq!(joined, "0123456789abcdef".repeat(6400));
    assert!(out.stderr.lines().all(|l| l.len() < 4096));
    // The runtime's own last line: the end of the script is a fatal condition.
    let last = records.last().unwrap();
    assert_eq!(last.str("level"), Some("FATAL"));
    assert!(
        last.str("message")
            .unwrap()
            .contains("GET /next returned 500")
    );
}

#[test]
fn the_runtimes_own_lines_are_json_with_a_level_that_says_what_they_are() {
    if child() {
        tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            Ok(vec![b'x'; std::str::from_utf8(event)?.parse()?])
        })
    }
    let out = serve_logging(
        "the_runtimes_own_lines_are_json_with_a_level_that_says_what_they_are",
        Some("json"),
        None,
        vec![
            Step::Reply(event(
                "late",
                b"5000000",
                &[("Lambda-Runtime-Aws-Tenant-Id", "t")],
            )),
            Step::Refuse {
                read: 0,
                reply: Some(refusal(410, "Invoke timeout")),
            },
        ],
    );
    let records = records(&out);
    let refused = records
        .iter()
        .find(|r| r.str("message").is_some_and(|m| m.contains("returned 410")))
        .expect("the refusal's line");
    assert_eq!(
        refused.str("level"),
        Some("WARN"),
        "a refused result is a warning"
    );
    assert_eq!(refused.str("requestId"), Some("late"));
    assert_eq!(refused.str("tenantId"), Some("t"));
    assert_eq!(records.last().unwrap().str("level"), Some("FATAL"));
}

#[test]
fn records_below_the_level_are_not_written_in_either_format() {
    if child() {
        tinylambda::run(logging)
    }
    for format in ["JSON", "Text"] {
        let out = serve_logging(
            "records_below_the_level_are_not_written_in_either_format",
            Some(format),
            Some("warn"),
            vec![
                Step::Reply(event("w", b"every level", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        let written: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("every level"))
            .collect();
        assert_eq!(
            written.len(),
            3,
            "WARN, ERROR, FATAL in {format}: {written:?}"
        );
        for (line, level) in written.iter().zip(["WARN", "ERROR", "FATAL"]) {
            assert!(line.contains(level), "{line}");
        }
    }
}

#[test]
fn text_records_are_the_managed_runtimes_lines_and_the_runtimes_own_stay_as_they_were() {
    if child() {
        tinylambda::run(logging)
    }
    let out = serve_logging(
        "text_records_are_the_managed_runtimes_lines_and_the_runtimes_own_stay_as_they_were",
        None,
        None,
        vec![
            Step::Reply(event("t1", b"awkward", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let line = out.stderr.lines().next().unwrap();
    let fields: Vec<&str> = line.splitn(4, '\t').collect();
    assert_eq!(fields.len(), 4, "{line:?}");
    assert_eq!(fields[0].len(), 24, "timestamp {:?}", fields[0]);
    assert_eq!(&fields[1..3], ["t1", "INFO"]);
    // One log event: the line break is a carriage return, nothing else changed.
    assert_eq!(fields[3], AWKWARD.replace('\n', "\r"));
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("tinylambda: GET /next returned 500")),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_values_mean_text_and_info_with_one_warning_each() {
    if child() {
        tinylambda::run(logging)
    }
    let out = serve_logging(
        "unknown_values_mean_text_and_info_with_one_warning_each",
        Some("xml"),
        Some("verbose"),
        vec![
            Step::Reply(event("u", b"every level", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("AWS_LAMBDA_LOG_FORMAT=xml"))
            .count(),
        1,
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("AWS_LAMBDA_LOG_LEVEL=verbose"))
            .count(),
        1
    );
    let written: Vec<&&str> = lines.iter().filter(|l| l.contains("every level")).collect();
    assert_eq!(written.len(), 4, "INFO and above, as text: {written:?}");
    assert!(written.iter().all(|l| l.split('\t').count() == 4));
}

/// Reads one request (head, and a `Content-Length` body) from `conn`.
#[cfg(feature = "concurrent")]
fn read_request(conn: &mut std::net::TcpStream) {
    use std::io::Read;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).expect("read a request"),
            1,
            "closed early"
        );
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    conn.read_exact(&mut vec![0; length])
        .expect("read the body");
}

#[cfg(feature = "concurrent")]
#[test]
fn records_from_concurrent_loops_never_interleave() {
    if child() {
        tinylambda::run_concurrent(|event: &[u8], ctx: &Context| -> Result<Vec<u8>, Error> {
            let fill = std::str::from_utf8(event)?;
            for _ in 0..200 {
                ctx.info(&fill.repeat(3000));
            }
            Ok(event.to_vec())
        })
    }
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;
    // A server for two loops at once: it answers both `/next` requests together, so the
    // two handlers log at the same time.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            read_request(&mut conn);
            conns.push(conn);
        }
        for (conn, fill) in conns.iter_mut().zip(["a", "b"]) {
            conn.write_all(&event(fill, fill.as_bytes(), &[])).unwrap();
        }
        for conn in &mut conns {
            read_request(conn);
            conn.write_all(&accepted()).unwrap();
        }
        // The first loop back at `/next` ends the run: a 500 ends the process.
        read_request(&mut conns[0]);
        conns[0]
            .write_all(&support::status(500, "end of script"))
            .unwrap();
    });
    let mut cmd = support::bootstrap_command("records_from_concurrent_loops_never_interleave");
    cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON");
    let (code, stderr) = support::run_child(cmd);
    server.join().expect("server");
    assert_eq!(code, Some(1), "{stderr}");
    let out = Outcome {
        code,
        stderr,
        requests: Vec::new(),
    };
    let mut counts = [0, 0];
    for record in records(&out) {
        match record.str("message") {
            Some(m) if m == "a".repeat(3000) => counts[0] += 1,
            Some(m) if m == "b".repeat(3000) => counts[1] += 1,
            _ => {}
        }
    }
    assert_eq!(
        counts,
        [200, 200],
        "every record whole, none mixed with another"
    );
}

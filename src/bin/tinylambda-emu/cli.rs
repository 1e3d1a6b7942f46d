//! The command line.

use std::ffi::OsString;
use std::time::Duration;

#[cfg(test)]
use crate::logging::{Level, LogFormat};
use crate::logging::{Logging, parse_format, parse_level};
use crate::request::MAX_REQUEST;

/// The largest `--concurrency` (each waiting `/next` holds a thread).
const MAX_CONCURRENCY: usize = 1024;

/// `--help`.
pub const HELP: &str = "\
tinylambda-emu: a local AWS Lambda for any custom-runtime bootstrap

Usage:
  tinylambda-emu [OPTIONS] -- BOOTSTRAP [ARGS]...                  serve the invoke endpoint
  tinylambda-emu --invoke EVENT [OPTIONS] -- BOOTSTRAP [ARGS]...   invoke once, print the response
  tinylambda-emu --bench N [OPTIONS] -- BOOTSTRAP [ARGS]...        N invocations, then measurements

The bootstrap runs in its directory (LAMBDA_TASK_ROOT, Lambda's /var/task) with the
environment Lambda gives a provided.al2023 runtime, its AWS_LAMBDA_RUNTIME_API pointing at
this emulator (Runtime API and Extensions API). A bootstrap in the current directory is
./bootstrap: a name without a slash is looked up on PATH. Everything the runtime starts
ends with it, whatever its process group.
Serving, callers invoke it through the Invoke API (the payload must be JSON, as Lambda's
Invoke API requires; so must --invoke's event)
  curl -d '{\"hello\":\"world\"}' http://127.0.0.1:8080/2015-03-31/functions/function/invocations
and any other path is the function's URL: the request becomes Lambda's function URL event
(payload format 2.0) and the result the HTTP response (statusCode, headers, cookies, body;
a function error or a timeout is 502)
  curl -i 'http://127.0.0.1:8080/hello?name=ada'

Streamed responses (Lambda-Runtime-Function-Response-Mode: streaming) reach the caller
chunk by chunk as the runtime writes them (--invoke: stdout as they arrive), up to
200 MiB; an error after the first byte ends the stream with the trailers
Lambda-Runtime-Function-Error-Type and Lambda-Runtime-Function-Error-Body (base64).
Through the Invoke API a function URL stream is passed through as written (JSON prelude,
8 NUL bytes, body); through the function URL its prelude gives the status, headers and
cookies.

When an extension has registered (e.g. tinylambda's on_shutdown), stopping the emulator
(Ctrl-C, SIGTERM, the end of --invoke or --bench) sends the runtime SIGTERM and gives it
500 ms (2 s with a SHUTDOWN subscriber) before SIGKILL, as Lambda does; a second Ctrl-C
kills at once. Without one, the runtime is killed at once.

Options:
  --port PORT       port of the invoke endpoint on 127.0.0.1 (default 8080; 0: any free port)
  --invoke EVENT    invoke once with EVENT (JSON text, @FILE, or @- for stdin); the response
                    goes to stdout (exit 0), a function error to stderr (exit 1)
  --bench N         run N invocations one after another and report cold start, latency,
                    CPU per invocation (the bootstrap's whole process tree) and peak RSS
  --payload BYTES   event size for --bench (default 64; a JSON document of exactly BYTES)
  --json            with --bench: print one JSON object on stdout instead of the table
  --timeout SECS    function timeout (default 3): an invocation that overruns it fails with
                    Sandbox.Timedout and the runtime is killed (with everything it started)
                    and started again for the next one
  --concurrency N   serve up to N invocations at once, as Lambda Managed Instances do: the
                    runtime gets AWS_LAMBDA_MAX_CONCURRENCY=N and may hold N GET /next (one
                    more gets 403); an invocation beyond N gets 429 at once, and a timeout
                    fails only its own invocation (default: one at a time, queued, variable
                    unset; not with --bench)
  --log-format FMT  json or text: the runtime gets AWS_LAMBDA_LOG_FORMAT=JSON (and
                    AWS_LAMBDA_LOG_LEVEL) or Text, as Lambda's logging configuration sets
                    them; in json, the START, END and REPORT lines are Lambda's JSON
                    records platform.start, platform.runtimeDone and platform.report
                    (default: neither variable set, text lines)
  --log-level LEVEL with --log-format json: AWS_LAMBDA_LOG_LEVEL, one of TRACE, DEBUG,
                    INFO, WARN, ERROR, FATAL (default INFO)
  --env KEY=VALUE   set a variable in the bootstrap's environment (repeatable); overrides
                    the defaults, e.g. --env AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024
  -h, --help        this text
  -V, --version     the version

Exit status: 0; 1 when --invoke's function failed, or the bootstrap could not start, or the
port is in use; 2 for a usage error (an unknown option, a bad value, no bootstrap).
";

/// What the emulator is asked to do.
#[derive(Debug, PartialEq)]
pub enum Mode {
    /// Serve the invoke endpoint on this port.
    Serve { port: u16 },
    /// Invoke once with this event argument (text, `@FILE` or `@-`).
    Invoke { event: String },
    /// Benchmark: `n` invocations of `payload`-byte events.
    Bench { n: u64, payload: usize, json: bool },
}

/// The parsed command line.
#[derive(Debug)]
pub struct Options {
    /// What to do.
    pub mode: Mode,
    /// The function timeout.
    pub timeout: Duration,
    /// `--concurrency N`, if given.
    pub concurrency: Option<usize>,
    /// `--env` pairs, in order.
    pub env: Vec<(OsString, OsString)>,
    /// `--log-format` and `--log-level`.
    pub logging: Logging,
    /// The bootstrap.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// The result of parsing: run, or print help or the version.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these options.
    Run(Options),
    /// Print [`HELP`].
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments after the program name. Errors are one line, for
/// `tinylambda-emu: {error}`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut port = None;
    let mut invoke = None;
    let mut bench = None;
    let mut payload = None;
    let mut json = false;
    let mut timeout = Duration::from_secs(3);
    let mut concurrency = None;
    let mut env = Vec::new();
    let mut log_format = None;
    let mut log_level = None;
    let mut command = Vec::new();

    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(format!(
                "unexpected argument {arg:?} (options come before `--`)"
            ));
        };
        if text == "--" {
            command.extend(args.by_ref());
            break;
        }
        if !text.starts_with('-') || text == "-" {
            // The bootstrap, without `--`.
            command.push(arg);
            command.extend(args.by_ref());
            break;
        }
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{name} needs a value (see --help)")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--port" => port = Some(number::<u16>("--port", &value("--port")?)?),
            "--invoke" => invoke = Some(value("--invoke")?),
            "--bench" => {
                let n = number::<u64>("--bench", &value("--bench")?)?;
                if n == 0 {
                    return Err("--bench needs at least 1 invocation".into());
                }
                bench = Some(n);
            }
            "--payload" => {
                let bytes = number::<usize>("--payload", &value("--payload")?)?;
                if bytes > MAX_REQUEST {
                    return Err(format!(
                        "--payload must be at most {MAX_REQUEST} bytes (Lambda's limit on a request)"
                    ));
                }
                payload = Some(bytes);
            }
            "--json" => json = true,
            "--timeout" => timeout = seconds(&value("--timeout")?)?,
            "--concurrency" => {
                let n = number::<usize>("--concurrency", &value("--concurrency")?)?;
                if !(1..=MAX_CONCURRENCY).contains(&n) {
                    return Err(format!(
                        "--concurrency must be from 1 to {MAX_CONCURRENCY}, got {n}"
                    ));
                }
                concurrency = Some(n);
            }
            "--log-format" => log_format = Some(parse_format(&value("--log-format")?)?),
            "--log-level" => log_level = Some(parse_level(&value("--log-level")?)?),
            "--env" => {
                let pair = value("--env")?;
                match pair.split_once('=') {
                    Some((key, v)) if !key.is_empty() => env.push((key.into(), v.into())),
                    _ => return Err(format!("--env expects KEY=VALUE, got {pair:?}")),
                }
            }
            _ => return Err(format!("unknown option {flag} (see --help)")),
        }
    }

    let mut command = command.into_iter();
    let Some(program) = command.next() else {
        return Err("no bootstrap given: tinylambda-emu [OPTIONS] -- ./bootstrap [ARGS]...".into());
    };
    let mode = match (invoke, bench) {
        (Some(_), Some(_)) => return Err("--invoke and --bench cannot be used together".into()),
        (Some(event), None) => Mode::Invoke { event },
        (None, Some(n)) => Mode::Bench {
            n,
            payload: payload.unwrap_or(64),
            json,
        },
        (None, None) => Mode::Serve {
            port: port.unwrap_or(8080),
        },
    };
    if !matches!(mode, Mode::Bench { .. }) {
        if json {
            return Err("--json only applies to --bench".into());
        }
        if payload.is_some() {
            return Err("--payload only applies to --bench".into());
        }
    }
    if concurrency.is_some() && matches!(mode, Mode::Bench { .. }) {
        return Err(
            "--concurrency does not apply to --bench (it runs one invocation after another)".into(),
        );
    }
    if port.is_some() && !matches!(mode, Mode::Serve { .. }) {
        return Err("--port only applies when serving (not with --invoke or --bench)".into());
    }
    let logging = Logging::new(log_format, log_level)?;
    Ok(Parsed::Run(Options {
        mode,
        timeout,
        concurrency,
        env,
        logging,
        program,
        args: command.collect(),
    }))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} expects a whole number, got {text:?}"))
}

/// Seconds, possibly fractional, more than 0 and at most a day.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "--timeout expects seconds above 0 (at most 86400), got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Run(options) => Ok(options),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn the_contract_forms_parse() {
        let o = run(&[
            "--bench",
            "10000",
            "--payload",
            "4096",
            "--json",
            "--timeout",
            "0.5",
            "--env",
            "A=b=c",
            "--",
            "./bootstrap",
            "x",
        ])
        .unwrap();
        assert_eq!(
            o.mode,
            Mode::Bench {
                n: 10_000,
                payload: 4096,
                json: true
            }
        );
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert_eq!(o.env, vec![("A".into(), "b=c".into())]);
        assert_eq!(
            (o.program.as_os_str(), o.args.len()),
            (std::ffi::OsStr::new("./bootstrap"), 1)
        );

        let o = run(&["--invoke", r#"{"hello":"world"}"#, "--", "./bootstrap"]).unwrap();
        assert_eq!(
            o.mode,
            Mode::Invoke {
                event: r#"{"hello":"world"}"#.into()
            }
        );

        let o = run(&["--port=0", "./bootstrap", "--not-ours"]).unwrap();
        assert_eq!(o.mode, Mode::Serve { port: 0 });
        assert_eq!(o.concurrency, None);
        assert_eq!(o.args, vec![OsString::from("--not-ours")]);
        let o = run(&["--concurrency", "3", "--", "./bootstrap"]).unwrap();
        assert_eq!(o.concurrency, Some(3));
        assert_eq!(o.logging, Logging::default());
        let o = run(&["--log-format=JSON", "--log-level", "warn", "--", "b"]).unwrap();
        assert_eq!(
            o.logging,
            Logging {
                format: Some(LogFormat::Json),
                level: Some(Level::Warn)
            }
        );
        assert_eq!(run(&["--", "b"]).unwrap().mode, Mode::Serve { port: 8080 });
    }

    #[test]
    fn mistakes_are_one_line_each() {
        for (args, expected) in [
            (
                &["--frobnicate", "--", "b"][..],
                "unknown option --frobnicate",
            ),
            (&["--bench"], "--bench needs a value"),
            (
                &["--bench", "x", "--", "b"],
                "--bench expects a whole number",
            ),
            (&["--bench", "0", "--", "b"], "at least 1"),
            (&["--timeout", "0", "--", "b"], "--timeout expects seconds"),
            (&["--env", "nokey", "--", "b"], "--env expects KEY=VALUE"),
            (&["--json", "--", "b"], "--json only applies to --bench"),
            (
                &["--bench", "1", "--invoke", "{}", "--", "b"],
                "cannot be used together",
            ),
            (
                &["--bench", "1", "--port", "1", "--", "b"],
                "--port only applies",
            ),
            (
                &["--payload", "99999999", "--bench", "1", "--", "b"],
                "at most 6291456",
            ),
            (&["--port", "1"], "no bootstrap given"),
            (
                &["--concurrency", "0", "--", "b"],
                "--concurrency must be from 1 to 1024",
            ),
            (
                &["--concurrency", "2", "--bench", "1", "--", "b"],
                "--concurrency does not apply to --bench",
            ),
            (
                &["--log-format", "yaml", "--", "b"],
                "--log-format expects json or text",
            ),
            (
                &["--log-level", "INFO", "--", "b"],
                "--log-level needs --log-format json",
            ),
        ] {
            let e = run(args).unwrap_err();
            assert!(e.contains(expected) && !e.contains('\n'), "{args:?}: {e}");
        }
    }
}

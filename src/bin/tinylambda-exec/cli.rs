//! The command line: on Lambda there is none, so `--help` and `--version` are answered and
//! anything else is refused, before the environment is looked at.

use std::io::Write;

/// What `--help` prints.
const HELP: &str = "\
tinylambda-exec is an AWS Lambda bootstrap (provided.al2023) for shell functions, Perl
subs, any executable, or a local web server. Deploy it as `bootstrap`; Lambda starts it
with no arguments and AWS_LAMBDA_RUNTIME_API set.

Usage: tinylambda-exec [--help | --version]

What runs, from $LAMBDA_TASK_ROOT:
  _HANDLER=function.handler  bash sources function.sh and calls handler \"$EVENT\";
                             its stdout is the response
  _HANDLER=script.handler    perl loads script.pl and calls handler($event); what it
                             returns is the response
  _HANDLER=name              the executable `name` gets the event on stdin; its stdout
                             is the response

Settings (environment):
  TINYLAMBDA_PERSISTENT=1    start the handler once and feed it every event
  TINYLAMBDA_WEB_URL=URL     POST each event to a local server (http://127.0.0.1:8080/)
  TINYLAMBDA_WEB_START=CMD   start that server at init: /bin/sh -c CMD in $LAMBDA_TASK_ROOT
  TINYLAMBDA_WEB_WAIT_MS=N   wait at most N ms for its port (default 8000)
  TINYLAMBDA_BASH, TINYLAMBDA_PERL   the interpreters (default: bash, perl from PATH)

The handler's stderr is the function's log. With AWS_LAMBDA_LOG_FORMAT=JSON (Lambda's
logging controls), each line that is not a JSON object becomes an INFO record of the
invocation, and AWS_LAMBDA_LOG_LEVEL above INFO drops those; JSON lines pass as they are.

Try it locally: tinylambda-emu --invoke '{\"a\":1}' -- ./bootstrap
";

/// Answers `--help`/`-h` and `--version`/`-V` and exits; exits with status 2 on any other
/// argument. Returns when there are none, as on Lambda.
pub(crate) fn handle_args() {
    let Some(arg) = std::env::args_os().nth(1) else {
        return;
    };
    let (out, code): (&[&[u8]], i32) = match arg.as_encoded_bytes() {
        b"--help" | b"-h" => (&[HELP.as_bytes()], 0),
        b"--version" | b"-V" => (
            &[
                b"tinylambda-exec ",
                env!("CARGO_PKG_VERSION").as_bytes(),
                b"\n",
            ],
            0,
        ),
        other => {
            crate::log::plain(&[
                b"unexpected argument ",
                other,
                b" (it takes none on Lambda; see --help)",
            ]);
            std::process::exit(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = out.iter().try_for_each(|part| stdout.write_all(part));
    std::process::exit(if written.and_then(|()| stdout.flush()).is_ok() {
        code
    } else {
        1
    });
}

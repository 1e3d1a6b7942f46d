//! `tinylambda-exec`: a `bootstrap` for `provided.al2023` that runs shell functions, Perl
//! subs, any executable, or a local web server, with the Runtime API side in Rust (no
//! curl, no shell loop).
//!
//! What runs is chosen once at init:
//!
//! - `_HANDLER=function.handler` with `$LAMBDA_TASK_ROOT/function.sh`: the file is sourced
//!   by bash and the function called with the event as `$1` (and on stdin); its stdout,
//!   without trailing newlines, is the response.
//! - `_HANDLER=lambda_script.handler` with `lambda_script.pl`: the file is loaded by perl
//!   (`do`) and the sub called with the event; what it returns (without trailing newlines)
//!   is the response.
//! - Either file is checked at init (`bash -n`, `perl -c`, see `check.rs`).
//! - `_HANDLER=name` where `$LAMBDA_TASK_ROOT/name` is executable: it runs with the event on
//!   stdin, and its stdout is the response, byte for byte.
//! - `TINYLAMBDA_PERSISTENT=1`: the handler process starts once and serves every
//!   invocation over the framed protocol described in `frame.rs` (the `.sh` and `.pl`
//!   glue speaks it for you).
//! - `TINYLAMBDA_WEB_URL=http://127.0.0.1:8080/path`: each event is POSTed there over a
//!   kept-alive connection and the reply's body is the response; `TINYLAMBDA_WEB_START`
//!   is a command (run with `/bin/sh -c` in `LAMBDA_TASK_ROOT`) that starts the server at
//!   init, in a process group that ends with us (`server.rs`), and
//!   `TINYLAMBDA_WEB_WAIT_MS` (default 8000) bounds the wait for its port.
//!
//! The child learns its invocation from `LAMBDA_REQUEST_ID`, `LAMBDA_DEADLINE_MS`,
//! `LAMBDA_INVOKED_FUNCTION_ARN` and `_X_AMZN_TRACE_ID`. Its stderr is forwarded to ours
//! line by line (`relay.rs`): as it is in text log format, as JSON objects or `INFO` records
//! of the invocation in JSON format (`forward.rs`; the web server's output too, through
//! `server_log.rs`). A child still running 50 ms before the deadline is killed with its whole
//! process group. `TINYLAMBDA_BASH` and `TINYLAMBDA_PERL` name the interpreters (default:
//! `bash` and `perl` from `PATH`). The error types are listed in `failure.rs`. On the command
//! line it takes only `--help` and `--version` (`cli.rs`).

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod check;
mod child;
mod cli;
mod deadline;
mod failure;
mod forward;
mod frame;
mod handler;
mod http;
mod json_object;
mod log;
mod oneshot;
mod output;
mod persistent;
mod pump;
mod relay;
mod resolve;
mod scripts;
mod server;
mod server_log;
mod settings;
mod spec;
#[allow(unsafe_code)]
mod sys;
mod timed;
mod vars;
mod web;

use handler::Handler;

fn main() {
    cli::handle_args();
    // Checked before anything is started, so a misplaced bootstrap leaves no child behind.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        log::log(
            tinylambda::Level::Fatal,
            &[b"AWS_LAMBDA_RUNTIME_API is not set (not on Lambda or an emulator?)"],
        );
        std::process::exit(1);
    }
    let mut handler = tinylambda::init(Handler::from_env);
    tinylambda::run(move |event, ctx| handler.invoke(event, ctx));
}

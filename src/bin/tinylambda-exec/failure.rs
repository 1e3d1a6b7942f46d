//! The error types tinylambda-exec reports, and their messages.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use tinylambda::Error;

use crate::deadline::MARGIN_MS;
use crate::log::decimal;

/// `/init/error`: `_HANDLER` names no file that can run (missing, not executable, or an
/// extension other than `.sh` and `.pl`).
pub(crate) const NO_SUCH_HANDLER: &str = "Runtime.NoSuchHandler";
/// `/init/error`: the `.sh` or `.pl` file does not compile (`bash -n` or `perl -c` failed:
/// a syntax error, or a module it uses is missing); the type Lambda's own runtimes report
/// for a handler that does not parse.
pub(crate) const SYNTAX_ERROR: &str = "Runtime.UserCodeSyntaxError";
/// `/init/error`: a `TINYLAMBDA_*` variable has a value that cannot be used.
pub(crate) const CONFIG_INVALID: &str = "Runtime.ConfigInvalid";
/// `/init/error` (or `/error` when a restart fails): the interpreter is missing, or the
/// handler or web server could not be started, or exited before it was ready.
pub(crate) const START_ERROR: &str = "Runtime.StartError";
/// `/init/error`: the web server's port did not accept connections in time.
pub(crate) const START_TIMEOUT: &str = "Runtime.StartTimeout";
/// The handler exited with a non-zero status or was killed by a signal (a persistent
/// handler: ended during the invocation, or replied with a numeric status).
pub(crate) const EXIT_ERROR: &str = "Runtime.ExitError";
/// The handler was still running shortly before the deadline and was killed.
pub(crate) const TIMEOUT: &str = "Runtime.Timeout";
/// The response is over Lambda's 6 MB limit (the type Lambda itself reports for it).
pub(crate) const TOO_LARGE: &str = "Function.ResponseSizeTooLarge";
/// A persistent handler wrote something that is not a reply; it is stopped and restarted.
pub(crate) const PROTOCOL_ERROR: &str = "Runtime.ProtocolError";
/// The web adapter could not reach the local server or read its reply.
pub(crate) const WEB_UNAVAILABLE: &str = "Runtime.WebUnavailable";
/// The local server answered with a status other than 2xx.
pub(crate) const HTTP_STATUS: &str = "Function.HttpStatus";

/// An error of `error_type` whose message is the parts joined (invalid UTF-8 replaced).
pub(crate) fn error(error_type: &str, parts: &[&[u8]]) -> Error {
    Error::new(error_type, &String::from_utf8_lossy(&parts.concat()))
}

/// `exit status 3`, `killed by signal 9`.
pub(crate) fn status_text(status: Option<ExitStatus>) -> Vec<u8> {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => [&b"exit status "[..], &decimal(code as u64)].concat(),
            (None, Some(signal)) => [&b"killed by signal "[..], &decimal(signal as u64)].concat(),
            (None, None) => b"ended".to_vec(),
        },
        None => b"ended (status unknown)".to_vec(),
    }
}

/// `parts`, then `: ` and the end of the child's stderr when there is any.
fn with_tail(error_type: &str, parts: &[&[u8]], tail: &str) -> Error {
    if tail.is_empty() {
        error(error_type, parts)
    } else {
        error(error_type, &[&parts.concat(), b": ", tail.as_bytes()])
    }
}

/// A handler that exited unsuccessfully.
pub(crate) fn exited(status: Option<ExitStatus>, tail: &str) -> Error {
    with_tail(EXIT_ERROR, &[&status_text(status)], tail)
}

/// A persistent handler that ended in the middle of an invocation.
pub(crate) fn ended(status: Option<ExitStatus>, tail: &str) -> Error {
    with_tail(
        EXIT_ERROR,
        &[
            b"the handler process ended during the invocation (",
            &status_text(status),
            b")",
        ],
        tail,
    )
}

/// A handler killed at the deadline.
pub(crate) fn timed_out(tail: &str) -> Error {
    with_tail(
        TIMEOUT,
        &[
            b"still running ",
            &decimal(MARGIN_MS),
            b" ms before the deadline: killed",
        ],
        tail,
    )
}

/// A response over the limit, of `size` bytes when that is known.
pub(crate) fn too_large(size: Option<u64>) -> Error {
    let limit = decimal(crate::output::MAX_RESPONSE as u64);
    match size {
        Some(size) => error(
            TOO_LARGE,
            &[
                b"the response is ",
                &decimal(size),
                b" bytes, over Lambda's limit of ",
                &limit,
            ],
        ),
        None => error(
            TOO_LARGE,
            &[
                b"the response is over Lambda's limit of ",
                &limit,
                b" bytes",
            ],
        ),
    }
}

/// A persistent handler's failure reply: `status` is a number (exit-status-like) or the
/// error type; `body` the message.
pub(crate) fn reported(status: &[u8], body: &[u8], tail: &str) -> Error {
    if status.iter().all(u8::is_ascii_digit) {
        return with_tail(EXIT_ERROR, &[b"exit status ", status], tail);
    }
    let error_type = String::from_utf8_lossy(status);
    let body = body.trim_ascii();
    if !body.is_empty() {
        error(&error_type, &[body])
    } else if !tail.is_empty() {
        error(&error_type, &[tail.as_bytes()])
    } else {
        error(&error_type, &[b"the handler reported ", status])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_read_like_the_shell() {
        assert_eq!(
            status_text(Some(ExitStatus::from_raw(3 << 8))),
            b"exit status 3"
        );
        assert_eq!(
            status_text(Some(ExitStatus::from_raw(9))),
            b"killed by signal 9"
        );
        let e = exited(Some(ExitStatus::from_raw(1 << 8)), "boom");
        assert_eq!(
            (e.error_type(), e.message()),
            (EXIT_ERROR, "exit status 1: boom")
        );
        assert_eq!(
            exited(Some(ExitStatus::from_raw(1 << 8)), "").message(),
            "exit status 1"
        );
    }

    #[test]
    fn reported_failures_take_their_type_and_message() {
        let e = reported(b"Function.BadInput", b"no name\n", "log");
        assert_eq!(
            (e.error_type(), e.message()),
            ("Function.BadInput", "no name")
        );
        let e = reported(b"Function.BadInput", b"", "the log");
        assert_eq!(e.message(), "the log");
        let e = reported(b"255", b"partial", "died: x");
        assert_eq!(
            (e.error_type(), e.message()),
            (EXIT_ERROR, "exit status 255: died: x")
        );
    }
}

//! The smallest and fastest way to run Rust on AWS Lambda's custom runtimes
//! (`provided.al2023`): no dependencies, one keep-alive connection, zero-copy parsing, with
//! or without std.
//!
//! A handler is a plain function from the event's bytes to the response's bytes:
//!
//! ```no_run
//! use tinylambda::{Context, Error};
//!
//! fn handler(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
//!     Ok(event.to_vec())
//! }
//!
//! fn main() {
//!     tinylambda::run(handler);
//! }
//! ```
//!
//! [`run`] talks to the Lambda Runtime API over one HTTP/1.1 keep-alive connection: per
//! invocation, one write and (usually) one read for `GET /next`, the handler, then one write
//! and one read for the `POST`. The event is handed to the handler where it landed in a
//! reused receive buffer, and [`Context`] borrows the invocation's headers from the same
//! buffer: for events under 64 KiB the loop allocates nothing.
//!
//! # Errors and panics
//! A handler's `Err` becomes `POST /error` with `{"errorMessage","errorType","stackTrace":[]}`
//! (see [`Error`]). Set-up that can fail goes through [`init`], which reports to
//! `/runtime/init/error` and exits. A handler panic in an unwinding build (the default
//! `release` profile) is caught and reported as [`PANIC_ERROR_TYPE`]; the loop goes on. With
//! `panic = "abort"` (the `tiny` profile) a panic ends the process after the panic message
//! is printed: Lambda then fails the invocation with `Runtime.ExitError` and starts a fresh
//! runtime for the next one.
//!
//! # Fatal conditions
//! The process exits with status 1 and one line on stderr when `AWS_LAMBDA_RUNTIME_API` is
//! missing or malformed, when the API cannot be reached (after 0.63 s of retries), when a
//! POST is answered with a 5xx, when `/next` answers 500 or 403, when `/next` fails twice in
//! a row on the connection level, when `/next` answers anything else that is not an
//! invocation five more times (with backoff), and when it sends an invocation that cannot
//! be answered (no request id, or an unsafe one). Lambda restarts the runtime in every case.
//!
//! # Without std
//! The crate is `#![no_std]` with `alloc` when its default `std` feature is off
//! (`default-features = false`): the whole runtime (transport, parser, status matrix,
//! context, errors, init errors, and the `streaming`, `graceful-shutdown` and `concurrent`
//! features) then runs on the C library, Linux only. A binary without std ends with
//! [`main!`]`(handler)`, which defines its C `main`, panic handler and allocator (see
//! [`nostd`]). What std adds: catching handler panics, `std::io::Write` for `Stream`, the
//! `From` conversions of std's errors, std's environment lock for `_X_AMZN_TRACE_ID`, the
//! `resolve` feature, and targets other than Linux (through std's portable facilities, so
//! a handler's unit tests run on a laptop).
//!
//! # Modules
//! [`parse`], [`request`] and [`endpoint`] are the `core`-only building blocks (no
//! allocation), public so they can be tested and fuzzed on their own.

#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod bytes;
mod config;
mod conn;
mod context;
pub mod endpoint;
mod error;
pub mod json;
mod log;
mod log_line;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod nostd;
pub mod parse;
pub mod request;
mod runtime;
#[cfg(feature = "graceful-shutdown")]
mod shutdown;
#[cfg(feature = "streaming")]
mod stream;
#[allow(unsafe_code)]
mod sys;

extern crate alloc;

use alloc::vec::Vec;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub use config::Config;
pub use context::Context;
pub use error::{DEFAULT_ERROR_TYPE, Error};
pub use log::LogFormat;
pub use log_line::Level;
pub use parse::Header;
pub use runtime::{MAX_EVENT_BYTES, PANIC_ERROR_TYPE};
#[cfg(feature = "graceful-shutdown")]
pub use shutdown::{EXTENSION_NAME, on_shutdown};
#[cfg(feature = "streaming")]
pub use stream::{DEFAULT_STREAM_CONTENT_TYPE, HTTP_INTEGRATION_CONTENT_TYPE, Stream, StreamError};

/// Runs `handler` for every invocation, forever.
///
/// Reads `AWS_LAMBDA_RUNTIME_API` and the function's configuration once, then loops:
/// `GET /next`, set `_X_AMZN_TRACE_ID`, call the handler, `POST` its result to `/response`
/// or its error to `/error`. It returns only by ending the process, on the fatal conditions
/// listed in the [crate documentation](crate#fatal-conditions).
///
/// The handler may be a function or a closure (`FnMut`, so it can keep state across
/// invocations), and its error any type that converts into [`Error`], such as
/// `Box<dyn std::error::Error>`.
///
/// With std, `_X_AMZN_TRACE_ID` is set through `std::env::set_var` on the loop thread, under
/// std's environment lock: any thread may read it through `std::env` meanwhile. Code that
/// reads the environment outside std (C code calling `getenv`) on another thread while the
/// loop runs is the one thing that races with it (as with any `set_var`).
///
/// Cost: one dynamic call per invocation (the loop is compiled once, not per handler).
pub fn run<F, E>(mut handler: F) -> !
where
    F: FnMut(&[u8], &Context<'_>) -> Result<Vec<u8>, E>,
    E: Into<Error>,
{
    runtime::Runtime::from_env().run(&mut |event, ctx| handler(event, ctx).map_err(Into::into))
}

/// Runs `handler` for every invocation, forever, streaming its response: like [`run`], but
/// the handler writes to a [`Stream`] and every write reaches the caller at once.
///
/// The response is a chunked `POST /response` in Lambda's `streaming` mode (for function URLs
/// with `InvokeMode: RESPONSE_STREAM`, and `InvokeWithResponseStream`). A handler error
/// before the first write goes to `/error` as with [`run`]; after it, the stream ends with the
/// error in HTTP trailers. The connection is closed after each streamed response.
///
/// ```no_run
/// tinylambda::run_streaming(|_event, _ctx, out| -> Result<(), tinylambda::Error> {
///     out.http_response(200, &[("content-type", "text/plain")], &[])?;
///     for i in 0..3 {
///         writeln!(out, "line {i}")?; // each piece reaches the caller at once
///     }
///     Ok(())
/// });
/// ```
///
/// Behind the `streaming` Cargo feature, so that functions that do not stream do not pay a
/// byte for it.
#[cfg(feature = "streaming")]
pub fn run_streaming<F, E>(mut handler: F) -> !
where
    F: FnMut(&[u8], &Context<'_>, &mut Stream<'_>) -> Result<(), E>,
    E: Into<Error>,
{
    runtime::Runtime::from_env()
        .run_streaming(&mut |event, ctx, out| handler(event, ctx, out).map_err(Into::into))
}

/// Runs `handler` on as many invocations at once as Lambda allows: `AWS_LAMBDA_MAX_CONCURRENCY`
/// loops (Lambda Managed Instances), each on its own thread with its own connection; one
/// loop, like [`run`], when the variable is absent or 1.
///
/// The handler is shared by the loops, so it is `Fn + Sync` (keep state in atomics or
/// behind a lock), and `'static` (it owns what it uses: this function never returns). With
/// more than one loop `_X_AMZN_TRACE_ID` is not set, since one environment cannot hold each
/// invocation's trace id: use [`Context::trace_id`].
///
/// Behind the `concurrent` Cargo feature, so that functions that do not use it do not pay a
/// byte for it.
#[cfg(feature = "concurrent")]
pub fn run_concurrent<F, E>(handler: F) -> !
where
    F: Fn(&[u8], &Context<'_>) -> Result<Vec<u8>, E> + Sync + 'static,
    E: Into<Error>,
{
    // Never freed: the loops run until the process exits.
    let handler = alloc::boxed::Box::leak(alloc::boxed::Box::new(
        move |event: &[u8], ctx: &Context<'_>| handler(event, ctx).map_err(Into::into),
    ));
    runtime::Runtime::run_concurrent(handler)
}

/// Writes `message` to the function's log at `level`, with no request id: for init code and
/// threads of your own (in a handler, [`Context::log`] adds the invocation's ids).
///
/// The format and the least level are Lambda's logging controls, read once from
/// `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`: in JSON, one object per line,
/// `{"timestamp":"2026-12-02T15:04:05.123Z","level":"INFO","message":"…"}`; in text,
/// `TIMESTAMP\t\tLEVEL\tmessage` (the request id's place left empty). Below the level
/// nothing is written, read or allocated.
///
/// Cost: no allocation and no `core::fmt`; one `write` per line of at most 4,096 bytes (the
/// most a pipe takes whole, so lines from several threads never interleave). A longer
/// message is written as several lines, cut at character boundaries, each a whole record.
pub fn log(level: Level, message: &str) {
    log::record(level, None, message);
}

/// Writes `message` to the function's log at `level` for the invocation `request_id` (and
/// its tenant): what [`Context::log`] does, for code that has the ids but no `Context`,
/// such as a runtime relaying another process's output.
pub fn log_for(level: Level, request_id: &str, tenant_id: Option<&str>, message: &str) {
    let about = log::About {
        request_id,
        tenant_id,
    };
    log::record(level, Some(about), message);
}

/// The format of the function's log, as `AWS_LAMBDA_LOG_FORMAT` sets it (read once).
pub fn log_format() -> LogFormat {
    log::settings().0
}

/// The least level written to the function's log, as `AWS_LAMBDA_LOG_LEVEL` sets it (read
/// once; `INFO` when unset or unknown).
pub fn log_level() -> Level {
    log::settings().1
}

/// The error type an [`init`] failure is reported with when it has the default type
/// ([`DEFAULT_ERROR_TYPE`], as from `?` on a std error or a string): Lambda's init errors
/// are `Runtime.<Reason>`. An error with a type of its own keeps it.
pub const INIT_ERROR_TYPE: &str = "Runtime.InitError";

/// Runs fallible set-up before [`run`]: returns what `setup` returns, or, when it fails,
/// reports the error to `/runtime/init/error` (the first invocation then fails with it)
/// and exits with status 1. An error of the default type is reported as
/// [`INIT_ERROR_TYPE`].
///
/// ```no_run
/// use tinylambda::{Context, Error};
///
/// fn main() {
///     let greeting = tinylambda::init(|| -> Result<String, Error> {
///         let name = std::env::var("GREETING").map_err(|_| Error::new(
///             "Runtime.ConfigInvalid",
///             "set GREETING in the function's environment",
///         ))?;
///         Ok(name)
///     });
///     tinylambda::run(move |_event: &[u8], _ctx: &Context| -> Result<Vec<u8>, Error> {
///         Ok(greeting.clone().into_bytes())
///     });
/// }
/// ```
///
/// Cost: nothing when `setup` succeeds; on failure, one connection and one POST.
pub fn init<T, E: Into<Error>>(setup: impl FnOnce() -> Result<T, E>) -> T {
    match setup() {
        Ok(value) => value,
        Err(error) => init_failed(&error.into()),
    }
}

#[inline(never)]
fn init_failed(error: &Error) -> ! {
    let renamed;
    let error = if error.error_type() == DEFAULT_ERROR_TYPE {
        renamed = Error::new(INIT_ERROR_TYPE, error.message());
        &renamed
    } else {
        error
    };
    log::line(
        Level::Fatal,
        None,
        b"init failed: \x01: \x02",
        &[error.error_type().as_bytes(), error.message().as_bytes()],
    );
    runtime::Runtime::from_env().report_init_error(error);
    sys::exit(1)
}

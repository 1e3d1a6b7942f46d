//! The loop: `/next` → handler → `/response` or `/error`, and the reaction to every status
//! the Runtime API can answer with.

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

#[cfg(feature = "concurrent")]
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::conn::{Conn, Failure, Recv, Why};
use crate::context::Context;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::json;
use crate::log::{self, About, DESCRIBED, excerpt, fatal};
use crate::log_line::Level;
use crate::parse::{self, Header};
use crate::request::{self, Post, PostHead, cut};
#[cfg(feature = "streaming")]
use crate::stream::Stream;
use crate::sys::env::{self, TraceEnv};

/// The largest event accepted from `/next`: 16 MiB, well above Lambda's 6,291,556-byte
/// limit. A larger event is reported to `/error` as `Runtime.EventTooLarge`.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Replies to POSTs are small status documents; anything larger is not read.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// `errorMessage`s longer than this are cut (at a character boundary) so that an error
/// document never comes near Lambda's payload limit.
const MAX_ERROR_MESSAGE: usize = 64 * 1024;

/// The `errorType` of a handler panic caught in an unwinding build.
pub const PANIC_ERROR_TYPE: &str = "Function.Panic";

/// `/next` answers that mean "nothing yet" rather than "stop" (cargo lambda's 204, a
/// timeout layer's 408, overload): retried this many times in a row, with backoff.
const MAX_NEXT_RETRIES: u32 = 5;

/// A streaming handler, behind one pointer.
#[cfg(feature = "streaming")]
pub(crate) type StreamHandler<'h> =
    dyn FnMut(&[u8], &Context<'_>, &mut Stream<'_>) -> Result<(), Error> + 'h;

/// A handler shared by concurrent loops.
#[cfg(feature = "concurrent")]
pub(crate) type ConcurrentHandler = dyn Fn(&[u8], &Context<'_>) -> Result<Vec<u8>, Error> + Sync;

/// The handler, behind one pointer so the loop is compiled once.
pub(crate) type Handler<'h> = dyn FnMut(&[u8], &Context<'_>) -> Result<Vec<u8>, Error> + 'h;

/// Everything the loop owns, allocated once at start.
pub(crate) struct Runtime {
    conn: Conn,
    recv: Recv,
    config: Config,
    trace: TraceEnv,
    /// Error documents.
    out: Vec<u8>,
    /// The open invocation's ids, for log lines.
    ids: Ids,
}

/// The open invocation's request id and tenant id, copied from its `/next` head (which the
/// POST's reply is read over), for the log lines about it.
struct Ids {
    request: String,
    tenant: String,
    has_tenant: bool,
}

impl Ids {
    /// Copies the ids of the invocation `ctx` describes.
    fn open(&mut self, ctx: &Context<'_>) {
        self.request.clear();
        self.request.push_str(ctx.request_id());
        self.tenant.clear();
        self.has_tenant = false;
        if let Some(tenant) = ctx.tenant_id() {
            self.tenant.push_str(tenant);
            self.has_tenant = true;
        }
    }

    fn about(&self) -> Option<About<'_>> {
        Some(About {
            request_id: &self.request,
            tenant_id: self.has_tenant.then_some(&self.tenant[..]),
        })
    }
}

impl Runtime {
    /// Reads `AWS_LAMBDA_RUNTIME_API` and the function's configuration. A missing or
    /// malformed endpoint ends the process with one line on stderr.
    pub(crate) fn from_env() -> Runtime {
        // The log settings first: the lines below follow them.
        let config = Config::from_env();
        log::configure(&config);
        let mut value = String::new();
        if !env::var_into(c"AWS_LAMBDA_RUNTIME_API", &mut value) {
            fatal(
                b"AWS_LAMBDA_RUNTIME_API is not set (not on Lambda or an emulator?), or not UTF-8",
                &[],
            )
        }
        let endpoint = match Endpoint::parse(&value) {
            Ok(endpoint) => endpoint,
            Err(e) => fatal(
                b"AWS_LAMBDA_RUNTIME_API=\x01 \x02",
                &[value.as_bytes(), e.as_str().as_bytes()],
            ),
        };
        Runtime {
            conn: Conn::new(&endpoint),
            recv: Recv::new(),
            config,
            trace: TraceEnv::new(),
            out: Vec::new(),
            ids: Ids {
                request: String::new(),
                tenant: String::new(),
                has_tenant: false,
            },
        }
    }

    /// Serves invocations until a fatal condition ends the process.
    pub(crate) fn run(&mut self, handler: &mut Handler<'_>) -> ! {
        self.one_at_a_time(b"AWS_LAMBDA_MAX_CONCURRENCY > 1: run serves one at a time");
        loop {
            self.invoke(handler);
        }
    }

    /// Warns with `line`, for a loop serving one invocation at a time, when Lambda allows
    /// more (`AWS_LAMBDA_MAX_CONCURRENCY` > 1): only `run_concurrent` serves them at once.
    #[inline(always)]
    fn one_at_a_time(&self, line: &[u8]) {
        if self.config.max_concurrency() > 1 {
            log::line(Level::Warn, None, line, &[]);
        }
    }

    /// Serves invocations on `AWS_LAMBDA_MAX_CONCURRENCY` loops at once (at least one), each
    /// on its own thread with its own connection, so there are never more `/next` requests
    /// in flight than Lambda allows. With more than one loop `_X_AMZN_TRACE_ID` is not set
    /// (one environment cannot hold each invocation's trace id; use `Context::trace_id`).
    #[cfg(feature = "concurrent")]
    pub(crate) fn run_concurrent(handler: &'static ConcurrentHandler) -> ! {
        let mut first = Runtime::from_env();
        let loops = first.config.max_concurrency();
        for _ in 1..loops {
            let started = crate::sys::thread::spawn(Box::new(move || {
                let mut runtime = Runtime::from_env();
                runtime.trace.disable();
                loop {
                    runtime.invoke(&mut |event, ctx| handler(event, ctx));
                }
            }));
            if !started {
                log::line(
                    Level::Warn,
                    None,
                    b"cannot start more concurrent loops: serving with fewer",
                    &[],
                );
                break;
            }
        }
        if loops > 1 {
            first.trace.disable();
        }
        loop {
            first.invoke(&mut |event, ctx| handler(event, ctx));
        }
    }

    /// One invocation: fetch it, run the handler, post exactly one result.
    #[inline(never)]
    fn invoke(&mut self, handler: &mut Handler<'_>) {
        let event = self.next();
        let Runtime {
            conn,
            recv,
            config,
            trace,
            out,
            ids,
        } = self;
        let buf = &recv.buf[..];
        let Some(ctx) = Context::from_head(buf, &recv.head, config) else {
            fatal(b"no request id", &[]);
        };
        ids.open(&ctx);

        let result = match event {
            Ok(()) => {
                trace.set(ctx.trace_id());
                let event = buf.get(recv.body.clone()).unwrap_or_default();
                catching_panics(|| handler(event, &ctx))
            }
            Err(why) => Err(unreadable_event(&why)),
        };

        let (post, body) = match &result {
            Ok(response) => (Post::Response(ctx.request_id()), &response[..]),
            Err(e) => {
                out.clear();
                json::push_error(out, e.error_type(), cut(e.message(), MAX_ERROR_MESSAGE));
                (Post::Error(ctx.request_id()), &out[..])
            }
        };
        conn.prepare_post(&PostHead {
            post,
            content_type: "application/json",
            content_length: body.len(),
            invocation_id: invocation_id(recv),
            error_type: result.as_ref().err().map(Error::error_type),
        });
        send(conn, recv, body, ids.about());
    }

    /// Serves invocations with a streaming handler until a fatal condition ends the process.
    #[cfg(feature = "streaming")]
    pub(crate) fn run_streaming(&mut self, handler: &mut StreamHandler<'_>) -> ! {
        self.one_at_a_time(b"AWS_LAMBDA_MAX_CONCURRENCY > 1: run_streaming serves one at a time");
        loop {
            self.invoke_streaming(handler);
        }
    }

    /// One streamed invocation: the handler writes to a [`Stream`]; an error before its
    /// first write becomes `/error`, one after it the stream's trailers. The connection is
    /// closed after the stream.
    #[cfg(feature = "streaming")]
    fn invoke_streaming(&mut self, handler: &mut StreamHandler<'_>) {
        let event = self.next();
        let Runtime {
            conn,
            recv,
            config,
            trace,
            out,
            ids,
        } = self;
        let buf = &recv.buf[..];
        let Some(ctx) = Context::from_head(buf, &recv.head, config) else {
            fatal(b"no request id", &[]);
        };
        ids.open(&ctx);
        let mut stream = Stream::new(conn, ctx.request_id(), invocation_id(recv));
        let result = match event {
            Ok(()) => {
                trace.set(ctx.trace_id());
                let event = buf.get(recv.body.clone()).unwrap_or_default();
                catching_panics(|| handler(event, &ctx, &mut stream))
            }
            Err(why) => Err(unreadable_event(&why)),
        };
        if let (false, Err(error)) = (stream.started(), &result) {
            drop(stream);
            out.clear();
            json::push_error(
                out,
                error.error_type(),
                cut(error.message(), MAX_ERROR_MESSAGE),
            );
            conn.prepare_post(&PostHead {
                post: Post::Error(ctx.request_id()),
                content_type: "application/json",
                content_length: out.len(),
                invocation_id: invocation_id(recv),
                error_type: Some(error.error_type()),
            });
            return send(conn, recv, out, ids.about());
        }
        let broke = stream.finish(result.as_ref().err(), out);
        // Read the reply even when the stream broke off: a refusal (410 for an invocation
        // that has timed out, 413, 500) arrives before the server reads the stream.
        let reply = conn.end_stream(recv, MAX_REPLY_BYTES);
        if let (Some(why), Err(_)) = (broke, reply) {
            log::line(
                Level::Warn,
                ids.about(),
                b"streamed response for \x01 broke off: \x02",
                &[ids.request.as_bytes(), why.describe(&mut [0; DESCRIBED])],
            );
        }
        conclude(reply, recv, ids.about());
    }

    /// `GET /next` until an invocation arrives, with its head in `recv.head` and its event
    /// at `recv.body`; or why the event could not be read (it is then reported to `/error`).
    fn next(&mut self) -> Result<(), Why> {
        let mut retried = false;
        let mut waits = 0;
        loop {
            let event = match self.conn.exchange(&mut self.recv, None, MAX_EVENT_BYTES) {
                Ok(()) => Ok(()),
                Err(Failure::Broken { head: true, why }) => Err(why),
                Err(
                    Failure::Unsent { reused: true, .. } | Failure::NoReply { reused: true, .. },
                ) if !retried => {
                    // A keep-alive connection can die while the process is frozen between
                    // invocations; a fresh one is the fix.
                    retried = true;
                    continue;
                }
                Err(
                    Failure::Unsent { why, .. }
                    | Failure::NoReply { why, .. }
                    | Failure::Broken { why, .. },
                ) => fail(b"GET /next", why, retried),
            };
            let head = &self.recv.head;
            let status = head.status;
            let id = head
                .header(Header::RequestId)
                .map(|s| s.get(&self.recv.buf));
            let body = if event.is_ok() { self.recv.body() } else { b"" };
            let (problem, detail): (&[u8], &[u8]) = match (status, id) {
                // Only a 200 is an invocation: another 2xx (cargo lambda's 204, which
                // carries a request id) hands out nothing to answer.
                (200, Some(id)) if request::valid_request_id(id) => return event,
                (200, Some(id)) => (b" with an unsafe request id: ", id),
                // 500: the Runtime API failed (Lambda restarts the runtime); 403: this
                // runtime may not ask (the environment is going away).
                (403 | 500, _) => (b": ", body),
                // A 200 is an invocation: without an id it cannot be answered.
                (200, None) => (b" with no request id", b""),
                // Anything else (204 or another 2xx, 404, 408, 429, 502...) may be passing:
                // asked again a few times, with backoff, first.
                _ if waits < MAX_NEXT_RETRIES && event.is_ok() => {
                    waits += 1;
                    crate::sys::sleep_ms(10 << waits);
                    continue;
                }
                _ => (b": ", body),
            };
            fatal(
                b"GET /next returned \x01\x02\x03",
                &[
                    request::decimal(u64::from(status), &mut [0; 20]),
                    problem,
                    excerpt(detail),
                ],
            );
        }
    }

    /// Posts `/runtime/init/error` for `error`; the caller exits afterwards.
    pub(crate) fn report_init_error(&mut self, error: &Error) {
        self.out.clear();
        json::push_error(
            &mut self.out,
            error.error_type(),
            cut(error.message(), MAX_ERROR_MESSAGE),
        );
        self.conn.prepare_post(&PostHead {
            post: Post::InitError,
            content_type: "application/json",
            content_length: self.out.len(),
            invocation_id: None,
            error_type: Some(error.error_type()),
        });
        send(&mut self.conn, &mut self.recv, &self.out, None);
    }
}

/// Sends the prepared POST (about the invocation `about`, or init) with `body` and reacts to the reply (see
/// [`conclude`]). A POST of which not one byte could be written into a reused connection
/// (the server had closed it) is sent once more on a fresh one; once any byte of it has
/// gone out it is never sent again, since the server may have it. A reused connection is
/// checked before each POST (one system call), so one the server closed while the handler
/// ran is replaced first.
fn send(conn: &mut Conn, recv: &mut Recv, body: &[u8], about: Option<About<'_>>) {
    let mut retried = false;
    loop {
        match conn.exchange(recv, Some(body), MAX_REPLY_BYTES) {
            Err(Failure::Unsent { reused: true, .. }) if !retried => retried = true,
            Err(Failure::Unsent { why, .. }) => fail(b"POST", why, retried),
            result => return conclude(result, recv, about),
        }
    }
}

/// Reacts to how the POST about the invocation `about` (or init) ended, whether its request went out whole or
/// was cut short by a server that answered first: a reply's status counts (see [`react`]),
/// even when the reply broke off after its head; without a reply there is nothing to react
/// to, so it is logged and the loop goes on.
fn conclude(result: Result<(), Failure>, recv: &Recv, about: Option<About<'_>>) {
    let (head, why) = match result {
        Ok(()) => return react(recv, about),
        Err(Failure::Broken { head, why }) => (head, why),
        Err(Failure::Unsent { why, .. } | Failure::NoReply { why, .. }) => {
            return log::line(
                Level::Warn,
                about,
                b"POST for \x01 got no reply (\x02); not re-sent",
                &[label(about), why.describe(&mut [0; DESCRIBED])],
            );
        }
    };
    log::line(
        Level::Warn,
        about,
        b"POST for \x01: the reply broke off: \x02",
        &[label(about), why.describe(&mut [0; DESCRIBED])],
    );
    if head {
        react(recv, about);
    }
}

/// What a POST is for, in log lines: its invocation's request id, or `init`.
fn label(about: Option<About<'_>>) -> &[u8] {
    about.map_or(b"init", |a| a.request_id.as_bytes())
}

/// Reacts to the status of the reply to a POST for invocation `id` (in `recv`): any 2xx is
/// done; 413, 400, 403, 410 and other 4xx are logged and never re-posted (after a 413
/// Lambda has already failed the invocation with `Function.ResponseSizeTooLarge` and
/// refuses an `/error`); 5xx ends the process.
fn react(recv: &Recv, about: Option<About<'_>>) {
    let status = recv.head.status;
    if (200..300).contains(&status) {
        return;
    }
    let exit = status >= 500;
    // A refused result is a warning; a server error ends the process.
    log::line(
        if exit { Level::Fatal } else { Level::Warn },
        about,
        b"POST for \x01 returned \x02 (\x03): \x04",
        &[
            label(about),
            request::decimal(u64::from(status), &mut [0; 20]),
            if exit { b"exiting" } else { b"not retried" },
            excerpt(recv.body()),
        ],
    );
    if exit {
        crate::sys::exit(1);
    }
}

/// The `Lambda-Runtime-Invocation-Id` of the invocation in `recv`, byte for byte, to echo
/// unchanged (even when it is not UTF-8, which [`Context::invocation_id`] leaves out).
fn invocation_id(recv: &Recv) -> Option<&[u8]> {
    Some(recv.head.header(Header::InvocationId)?.get(&recv.buf))
}

/// Ends the process after a request got no usable reply.
#[inline(always)]
fn fail(what: &[u8], why: Why, retried: bool) -> ! {
    let twice: &[u8] = if retried { b" twice" } else { b"" };
    fatal(
        b"\x01 failed\x02: \x03",
        &[what, twice, why.describe(&mut [0; DESCRIBED])],
    )
}

/// The error reported for an invocation whose event did not arrive whole.
fn unreadable_event(why: &Why) -> Error {
    if let Why::Parse(parse::Error::BodyTooLarge) = why {
        return Error::of(
            "Runtime.EventTooLarge",
            "the event is over the 16 MiB limit".into(),
        );
    }
    // Every description is ASCII (fixed texts and digits), so nothing is lost to UTF-8.
    let mut message = String::from("the event could not be read: ");
    message.push_str(crate::sys::utf8(why.describe(&mut [0; DESCRIBED])).unwrap_or_default());
    Error::of("Runtime.InvalidEvent", message)
}

/// Calls `handler`; with std, a panic that unwinds out of it becomes a [`PANIC_ERROR_TYPE`]
/// error (without std a panic ends the process: see `main!`).
#[inline(always)]
fn catching_panics<T>(handler: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    #[cfg(feature = "std")]
    {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(handler))
            .unwrap_or_else(|payload| Err(panic_error(payload.as_ref())))
    }
    #[cfg(not(feature = "std"))]
    {
        handler()
    }
}

/// The error reported for a handler panic caught in an unwinding build.
#[cfg(feature = "std")]
fn panic_error(payload: &(dyn std::any::Any + Send)) -> Error {
    Error::of(
        PANIC_ERROR_TYPE,
        ["handler panicked: ", payload_text(payload)].concat(),
    )
}

/// The message of a panic payload (`&str` or `String`, as `panic!` makes).
#[cfg(feature = "std")]
fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a non-string panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "std")]
    fn panic_payloads_give_their_message() {
        assert_eq!(payload_text(&"static"), "static");
        assert_eq!(payload_text(&String::from("owned")), "owned");
        assert_eq!(payload_text(&42u8), "(a non-string panic payload)");
    }

    #[test]
    fn unreadable_events_name_the_cause() {
        let e = unreadable_event(&Why::Parse(parse::Error::BodyTooLarge));
        assert_eq!(e.error_type(), "Runtime.EventTooLarge");
        let e = unreadable_event(&Why::Closed);
        assert_eq!(
            (e.error_type(), e.message()),
            (
                "Runtime.InvalidEvent",
                "the event could not be read: connection closed"
            )
        );
        let e = unreadable_event(&Why::Parse(parse::Error::ChunkSize));
        assert_eq!(
            e.message(),
            "the event could not be read: malformed chunk-size line"
        );
    }
}

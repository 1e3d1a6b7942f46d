//! The loop: `/next` → handler → `/response` or `/error`, and the reaction to every status
//! the Runtime API can answer with.

use std::any::Any;
use std::env::{self, VarError};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::config::Config;
use crate::conn::{Conn, Failure, Recv, Reply, Why};
use crate::context::Context;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::json;
use crate::log::{excerpt, fatal, io_error, log};
use crate::parse::{self, Header};
use crate::request::{self, Post, PostHead};
use crate::trace_env::TraceEnv;

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
    /// The current request id, for log lines.
    id: Vec<u8>,
}

impl Runtime {
    /// Reads `AWS_LAMBDA_RUNTIME_API` and the function's configuration. A missing or
    /// malformed endpoint ends the process with one line on stderr.
    pub(crate) fn from_env() -> Runtime {
        const VAR: &[u8] = b"AWS_LAMBDA_RUNTIME_API";
        let value = match env::var("AWS_LAMBDA_RUNTIME_API") {
            Ok(value) => value,
            Err(VarError::NotPresent) => fatal(&[
                VAR,
                b" is not set: this program is a Lambda bootstrap; run it on Lambda \
                  (runtime provided.al2023) or under a Runtime API emulator",
            ]),
            Err(VarError::NotUnicode(_)) => fatal(&[VAR, b" is not valid UTF-8"]),
        };
        let endpoint = match Endpoint::parse(&value) {
            Ok(endpoint) => endpoint,
            Err(e) => fatal(&[VAR, b"=", value.as_bytes(), b" ", e.as_str().as_bytes()]),
        };
        let conn = match Conn::new(&endpoint) {
            Ok(conn) => conn,
            Err(e) => fatal(&[
                b"cannot resolve the host in ",
                VAR,
                b"=",
                value.as_bytes(),
                b": ",
                &io_error(&e, &mut [0; 20]).concat(),
            ]),
        };
        Runtime {
            conn,
            recv: Recv::new(),
            config: Config::from_env(),
            trace: TraceEnv::new(),
            out: Vec::new(),
            id: Vec::new(),
        }
    }

    /// Serves invocations until a fatal condition ends the process.
    pub(crate) fn run(&mut self, handler: &mut Handler<'_>) -> ! {
        if self.config.max_concurrency() > 1 {
            log(&[
                b"AWS_LAMBDA_MAX_CONCURRENCY is ",
                request::decimal(u64::from(self.config.max_concurrency()), &mut [0; 20]),
                b" but tinylambda::run serves one invocation at a time",
            ]);
        }
        loop {
            self.invoke(handler);
        }
    }

    /// One invocation: fetch it, run the handler, post exactly one result.
    fn invoke(&mut self, handler: &mut Handler<'_>) {
        let Some(reply) = self.next() else {
            return;
        };
        let Runtime {
            conn,
            recv,
            config,
            trace,
            out,
            id,
        } = self;
        let buf = &recv.buf[..];
        let Some(ctx) = Context::from_head(buf, &reply.head, config) else {
            fatal(&[b"GET /next returned no usable Lambda-Runtime-Aws-Request-Id"]);
        };
        id.clear();
        id.extend_from_slice(ctx.request_id().as_bytes());
        trace.set(ctx.trace_id());
        let event = buf.get(reply.body.clone()).unwrap_or_default();

        let outcome = panic::catch_unwind(AssertUnwindSafe(|| handler(event, &ctx)));

        let panic_message;
        let (error_type, message) = match &outcome {
            Ok(Ok(response)) => {
                conn.prepare_post(&PostHead {
                    post: Post::Response(ctx.request_id()),
                    content_type: "application/json",
                    content_length: response.len(),
                    invocation_id: ctx.invocation_id(),
                    error_type: None,
                });
                send(conn, recv, response, b"POST /response", id);
                return;
            }
            Ok(Err(e)) => (e.error_type(), e.message()),
            Err(payload) => {
                panic_message = ["handler panicked: ", payload_text(payload.as_ref())].concat();
                (PANIC_ERROR_TYPE, panic_message.as_str())
            }
        };
        out.clear();
        json::push_error(out, error_type, cut(message, MAX_ERROR_MESSAGE));
        conn.prepare_post(&PostHead {
            post: Post::Error(ctx.request_id()),
            content_type: "application/json",
            content_length: out.len(),
            invocation_id: ctx.invocation_id(),
            error_type: Some(error_type),
        });
        send(conn, recv, out, b"POST /error", id);
    }

    /// `GET /next` until an invocation arrives. `None` when the invocation could not be
    /// read and has been reported to `/error` instead.
    fn next(&mut self) -> Option<Reply> {
        let mut retried = false;
        let mut waits = 0;
        loop {
            let why = match self.conn.exchange(&mut self.recv, None, MAX_EVENT_BYTES) {
                Ok(reply) => {
                    let status = reply.head.status;
                    let id = reply.head.header(Header::RequestId);
                    match (status, id) {
                        (200..=299, Some(id)) => {
                            if !request::valid_request_id(id.get(&self.recv.buf)) {
                                fatal(&[
                                    b"GET /next returned a request id that is empty, longer than \
                                      256 bytes, or holds a space, control character or '/': ",
                                    excerpt(id.get(&self.recv.buf)),
                                ]);
                            }
                            return Some(reply);
                        }
                        (200, None) => fatal(&[
                            b"GET /next returned 200 without Lambda-Runtime-Aws-Request-Id",
                        ]),
                        (200..=299 | 408 | 429 | 502..=504, _) if waits < MAX_NEXT_RETRIES => {
                            waits += 1;
                            std::thread::sleep(Duration::from_millis(10 << waits));
                            continue;
                        }
                        _ => fatal(&[
                            b"GET /next returned ",
                            request::decimal(u64::from(status), &mut [0; 20]),
                            if waits > 0 {
                                b" again; exiting: "
                            } else {
                                b"; exiting: "
                            },
                            excerpt(self.recv.buf.get(reply.body).unwrap_or_default()),
                        ]),
                    }
                }
                Err(Failure::NoReply { reused: true, .. }) if !retried => {
                    // A keep-alive connection can die while the process is frozen between
                    // invocations; a fresh one is the fix.
                    retried = true;
                    continue;
                }
                Err(Failure::Broken {
                    head: Some(head),
                    why,
                }) if (200..=299).contains(&head.status) => {
                    self.report_unreadable_event(&head, &why);
                    return None;
                }
                Err(Failure::Connect(e)) => connect_failed(&e),
                Err(Failure::NoReply { why, .. } | Failure::Broken { why, .. }) => why,
            };
            let mut digits = [0; 20];
            fatal(&[
                b"GET /next failed",
                if retried {
                    b" again on a fresh connection: "
                } else {
                    b": "
                },
                &why_text(&why, &mut digits).concat(),
            ]);
        }
    }

    /// Posts `/error` for an invocation whose event broke off or was malformed: the head
    /// (with the request id) arrived, the body did not.
    fn report_unreadable_event(&mut self, head: &parse::Head, why: &Why) {
        let Runtime {
            conn,
            recv,
            config,
            out,
            id,
            ..
        } = self;
        let buf = &recv.buf[..];
        let Some(ctx) = Context::from_head(buf, head, config) else {
            fatal(&[b"GET /next failed and returned no request id"]);
        };
        if !request::valid_request_id(ctx.request_id().as_bytes()) {
            fatal(&[b"GET /next failed and returned an unusable request id"]);
        }
        let mut digits = [0; 20];
        let (error_type, message) = match why {
            Why::Parse(parse::Error::BodyTooLarge) => (
                "Runtime.EventTooLarge",
                "the event is larger than tinylambda's 16 MiB limit".to_owned(),
            ),
            why => (
                "Runtime.InvalidEvent",
                String::from_utf8_lossy(
                    &[
                        b"the event could not be read: " as &[u8],
                        &why_text(why, &mut digits).concat(),
                    ]
                    .concat(),
                )
                .into_owned(),
            ),
        };
        log(&[
            b"invocation ",
            ctx.request_id().as_bytes(),
            b": ",
            message.as_bytes(),
        ]);
        id.clear();
        id.extend_from_slice(ctx.request_id().as_bytes());
        out.clear();
        json::push_error(out, error_type, &message);
        conn.prepare_post(&PostHead {
            post: Post::Error(ctx.request_id()),
            content_type: "application/json",
            content_length: out.len(),
            invocation_id: ctx.invocation_id(),
            error_type: Some(error_type),
        });
        send(conn, recv, out, b"POST /error", id);
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
        send(
            &mut self.conn,
            &mut self.recv,
            &self.out,
            b"POST /runtime/init/error",
            b"init",
        );
    }
}

/// Sends the prepared POST with `body` and reacts to the reply: any 2xx is done; 413, 400,
/// 403, 410 and other 4xx are logged and never re-posted; 5xx ends the process. A POST
/// that got no reply at all on a reused connection is sent once more on a fresh one (a
/// duplicate is refused by Lambda with 403, which beats losing the result).
fn send(conn: &mut Conn, recv: &mut Recv, body: &[u8], what: &[u8], id: &[u8]) {
    let mut retried = false;
    loop {
        let mut digits = [0; 20];
        let reply = match conn.exchange(recv, Some(body), MAX_REPLY_BYTES) {
            Ok(reply) => reply,
            Err(Failure::NoReply { reused: true, .. }) if !retried => {
                retried = true;
                continue;
            }
            Err(Failure::Broken { why, .. }) => {
                log(&[
                    what,
                    b" for ",
                    id,
                    b": the reply broke off (",
                    &why_text(&why, &mut digits).concat(),
                    b"); going on",
                ]);
                return;
            }
            Err(Failure::Connect(e)) => connect_failed(&e),
            Err(Failure::NoReply { why, .. }) => fatal(&[
                what,
                b" for ",
                id,
                b" got no reply",
                if retried { b" twice: " } else { b": " },
                &why_text(&why, &mut digits).concat(),
            ]),
        };
        let status = reply.head.status;
        let detail = excerpt(recv.buf.get(reply.body).unwrap_or_default());
        let code = request::decimal(u64::from(status), &mut digits);
        match status {
            200..=299 => {}
            413 => log(&[
                what,
                b" for ",
                id,
                b" returned 413: too large for Lambda, which fails the invocation \
                  (Function.ResponseSizeTooLarge); not sending /error: ",
                detail,
            ]),
            500..=599 => fatal(&[
                what,
                b" for ",
                id,
                b" returned ",
                code,
                b"; exiting: ",
                detail,
            ]),
            _ => log(&[
                what,
                b" for ",
                id,
                b" returned ",
                code,
                b"; not retrying: ",
                detail,
            ]),
        }
        return;
    }
}

fn connect_failed(e: &std::io::Error) -> ! {
    fatal(&[
        b"cannot connect to AWS_LAMBDA_RUNTIME_API: ",
        &io_error(e, &mut [0; 20]).concat(),
    ])
}

/// The cause of a failed exchange, as text pieces for a log line.
fn why_text<'d>(why: &Why, digits: &'d mut [u8; 20]) -> [&'d [u8]; 3] {
    match why {
        Why::Io(e) => io_error(e, digits),
        Why::Closed => [b"the connection was closed", b"", b""],
        Why::Parse(e) => [e.as_str().as_bytes(), b"", b""],
        Why::Interim => [b"too many 1xx responses", b"", b""],
    }
}

/// The message of a panic payload (`&str` or `String`, as `panic!` makes).
fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a non-string panic payload)"
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_character_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn panic_payloads_give_their_message() {
        assert_eq!(payload_text(&"static"), "static");
        assert_eq!(payload_text(&String::from("owned")), "owned");
        assert_eq!(payload_text(&42u8), "(a non-string panic payload)");
    }
}

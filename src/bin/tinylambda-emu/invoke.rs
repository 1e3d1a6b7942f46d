//! The caller side: Lambda's invoke endpoint as the AWS emulator serves it
//! (`POST /2015-03-31/functions/function/invocations`), and the invocation `--invoke` makes.
//! Every other path on the port is the function's URL ([`crate::function_url`]).
//!
//! A caller gets 200 with the function's response and `Content-Type`, or 200 with the error
//! document and `X-Amz-Function-Error: Unhandled`. What a request may carry is
//! [`crate::request`]'s rules, the same for `--invoke`: `DryRun` gets 204 (without a
//! `Content-Length`, which HTTP forbids on a 204), events over 6,291,456 bytes 413, a
//! client context that is not a JSON object 400. Callers may keep their connection open;
//! several callers are served in order of arrival, as many at once as the runtime takes;
//! under `--concurrency N` an invocation beyond N gets 429 `TooManyRequestsException` at
//! once (`API_Invoke.html`: "TooManyRequestsException ... HTTP Status Code: 429").
//!
//! A response to a caller, or one piece of a stream, must be written within
//! [`CALLER_STALL`]: a caller that stops reading is then dropped, and the invocation goes on
//! without it (its outcome is logged all the same).
//!
//! # Streamed responses
//! When the runtime streams its response, the caller gets it as Lambda's data plane relays
//! a stream: 200 with the runtime's `Content-Type`, `Transfer-Encoding: chunked` and
//! `Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body`, each
//! piece as one chunk the moment it arrives, then the last chunk. A stream that fails after
//! its head (the runtime's error trailers, a timeout: `Sandbox.Timedout`, a stream over
//! 200 MiB: `Function.ResponseSizeTooLarge`, a runtime that went away:
//! `Runtime.TruncatedResponse`) ends with those two trailers: the error type, and the
//! base64 of the error document, passed on as the runtime sent it. (`InvokeWithResponseStream`
//! puts the same in its `InvokeComplete` event as `ErrorCode` and `ErrorDetails`; this
//! endpoint speaks plain HTTP, whose trailers are the place for it.) Streams are not held
//! to the 6 MiB limit of buffered responses.
//!
//! A function URL response (`application/vnd.awslambda.http-integration-response`: a JSON
//! prelude with `statusCode`, `headers` and `cookies`, 8 NUL bytes, then the body) is passed
//! through as it is, prelude included, the way `InvokeWithResponseStream` hands it to an
//! SDK: this endpoint is the Invoke API, not a function URL, and a test can check the
//! prelude the function wrote.

use std::io::{self, Read};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{Body, Conn, Head, ReadError};
use crate::ids::RequestId;
use crate::request::{self, Headers, MAX_REQUEST, Refusal, Request};
use crate::sandbox::{Outcome, Piece, Sandbox, Stream, StreamError};

/// How long writing one response, or one piece of a stream, to a caller may take before
/// the caller is dropped.
pub const CALLER_STALL: Duration = Duration::from_secs(2);

/// How a streamed response ended, as its caller saw it.
#[derive(Debug)]
pub struct Relayed {
    /// The error it ended with, if any.
    pub error: Option<StreamError>,
    /// From the event being written to the end of the stream being read, if it ended.
    pub latency: Option<Duration>,
    /// Whether every piece was taken by the receiver (false: it gave up).
    pub delivered: bool,
}

/// Receives a streamed response, handing each piece of data to `write` as soon as it
/// arrives (`write` returns false when its receiver has gone: the rest is then dropped),
/// until the stream ends (the sandbox ends it on its deadline).
pub fn relay(stream: Stream, mut write: impl FnMut(&[u8]) -> bool) -> Relayed {
    loop {
        match stream.next() {
            Piece::Data(data) => {
                if !write(&data) {
                    return Relayed {
                        error: None,
                        latency: None,
                        delivered: false,
                    }; // dropping the stream tells the runtime's side
                }
            }
            Piece::End(end) => {
                return Relayed {
                    error: end.error,
                    latency: Some(end.latency),
                    delivered: true,
                };
            }
        }
    }
}

/// Binds the invoke endpoint on 127.0.0.1:`port` (0: any free port).
pub fn listen(port: u16) -> Result<TcpListener, String> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "the port is already in use (choose another with --port)".to_owned()
            }
            _ => e.to_string(),
        };
        format!("cannot listen on 127.0.0.1:{port}: {why}")
    })
}

/// Serves callers on `listener` forever, a thread per connection.
pub fn serve(sandbox: &Arc<Sandbox>, listener: TcpListener) -> Result<(), String> {
    for stream in listener.incoming() {
        let stream = stream.map_err(|e| format!("accepting a caller failed: {e}"))?;
        let sandbox = sandbox.clone();
        std::thread::Builder::new()
            .name("caller".into())
            .spawn(move || {
                let mut conn = Conn::new(stream);
                conn.set_write_limit(CALLER_STALL);
                caller(&sandbox, conn);
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
    }
    Ok(())
}

/// `--invoke`'s event: the text itself, `@FILE`, or `@-` for stdin, checked against the
/// same rules as a caller's (a refusal is one line: `RequestTooLargeException: …`,
/// `InvalidRequestContentException: …`).
pub fn read_event(arg: &str) -> Result<Vec<u8>, String> {
    let limit = MAX_REQUEST as u64 + 1;
    let event = match arg.strip_prefix('@') {
        Some("-") => {
            let mut event = Vec::new();
            io::stdin()
                .take(limit)
                .read_to_end(&mut event)
                .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
            event
        }
        Some(path) => {
            let mut event = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(limit).read_to_end(&mut event))
                .map_err(|e| format!("cannot read the event file {path}: {e}"))?;
            event
        }
        None => arg.as_bytes().to_vec(),
    };
    request::check_event(&event).map_err(|refusal| refusal_line(&refusal))?;
    Ok(event)
}

/// A refusal as `--invoke` reports it.
fn refusal_line(refusal: &Refusal) -> String {
    format!("{}: {}", refusal.error_type, refusal.message)
}

/// One invocation of `event`, as `--invoke` makes it (no headers: the rules of
/// [`crate::request`] with none): its id and outcome.
pub fn once(sandbox: &Sandbox, event: Vec<u8>) -> Result<(RequestId, Outcome), String> {
    let request = Request::read(&Headers::default()).map_err(|r| refusal_line(&r))?;
    let id = sandbox.new_id();
    let outcome = sandbox
        .submit(request.invocation(id, event.into(), true))
        .map_err(|_| "TooManyRequestsException: Rate Exceeded.".to_owned())?;
    Ok((id, outcome))
}

const JSON: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];

/// The prefix of every Invoke API path.
const INVOKE_API: &[u8] = b"/2015-03-31/";

fn caller(sandbox: &Sandbox, mut conn: Conn) {
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(why)) => {
                let _ = conn
                    .head("400 Bad Request", JSON)
                    .send(&user_error(why), true);
                return;
            }
            Err(ReadError::Unsupported) => {
                let _ = conn.head("501 Not Implemented", JSON).send(
                    &user_error("only chunked Transfer-Encoding is supported"),
                    true,
                );
                return;
            }
        };
        if !request(sandbox, &mut conn, &head) || !head.keep_alive {
            return;
        }
    }
}

/// Handles one request; false when the connection is to be closed.
fn request(sandbox: &Sandbox, conn: &mut Conn, head: &Head) -> bool {
    if !conn.target(head).starts_with(INVOKE_API) {
        return crate::function_url::serve(sandbox, conn, head);
    }
    let name = {
        let target = conn.target(head);
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        path.strip_prefix(b"/2015-03-31/functions/")
            .and_then(|rest| rest.strip_suffix(b"/invocations"))
            .map(|name| String::from_utf8_lossy(name).into_owned())
    };
    let function = &sandbox.function().name;
    let Some(name) = name else {
        return refuse(
            conn,
            head,
            &Refusal {
                status: "404 Not Found",
                error_type: "ResourceNotFoundException",
                message: "unknown Invoke API path: invoke POST /2015-03-31/functions/function/invocations (any path outside /2015-03-31/ is the function URL)"
                    .into(),
            },
        );
    };
    if name != "function" && name != *function {
        let message = format!(
            "Function not found: {name} (this emulator runs \"function\", also known as {function:?})"
        );
        let refusal = Refusal {
            status: "404 Not Found",
            error_type: "ResourceNotFoundException",
            message,
        };
        return refuse(conn, head, &refusal);
    }
    if conn.method(head) != b"POST" {
        let refusal = Refusal {
            status: "405 Method Not Allowed",
            error_type: "InvalidRequestContentException",
            message: "invoke with POST".into(),
        };
        return refuse(conn, head, &refusal);
    }
    let headers = Headers {
        invocation_type: conn.header(head, "X-Amz-Invocation-Type"),
        client_context: conn.header(head, "X-Amz-Client-Context"),
        content_type: conn.header(head, "Content-Type"),
        trace_id: conn.header(head, "X-Amzn-Trace-Id"),
        tenant_id: conn.header(head, "X-Amz-Tenant-Id"),
    };
    let request = match Request::read(&headers) {
        Ok(request) => request,
        Err(refusal) => return refuse(conn, head, &refusal),
    };
    let body = match conn.read_body(head, MAX_REQUEST) {
        Ok(Body::Complete(body)) => body,
        Ok(Body::TooLarge) => {
            let _ = send_refusal(conn, &request::too_large(), true);
            conn.drain_and_close();
            return false;
        }
        Err(ReadError::Bad(why)) => {
            bad_request(conn, why);
            return false;
        }
        Err(ReadError::Io | ReadError::Unsupported) => return false,
    };
    if let Err(refusal) = request::check_event(&conn.bytes()[body.clone()]) {
        return send_refusal(conn, &refusal, false).is_ok();
    }
    if request.dry_run {
        return conn.head("204 No Content", &[]).send_no_content().is_ok();
    }
    let id = sandbox.new_id();
    let invocation = request.invocation(id, conn.bytes()[body].into(), true);
    let outcome = match sandbox.submit(invocation) {
        Ok(outcome) => outcome,
        Err(_) => return throttled(sandbox, conn),
    };
    let version = sandbox.function().version.as_bytes();
    let sent = match outcome {
        Outcome::Stream(stream) => return relay_to_caller(sandbox, conn, id, stream),
        Outcome::Response {
            body, content_type, ..
        } => {
            let content_type = content_type.as_deref().unwrap_or("application/json");
            conn.head(
                "200 OK",
                &[
                    ("Content-Type", content_type.as_bytes()),
                    ("X-Amzn-RequestId", id.as_bytes()),
                    ("X-Amz-Executed-Version", version),
                ],
            )
            .send(&body, false)
        }
        Outcome::Error { document } => conn
            .head(
                "200 OK",
                &[
                    ("Content-Type", b"application/json"),
                    ("X-Amzn-RequestId", id.as_bytes()),
                    ("X-Amz-Executed-Version", version),
                    ("X-Amz-Function-Error", b"Unhandled"),
                ],
            )
            .send(&document, false),
    };
    sent.is_ok()
}

/// The names of the trailers that carry a stream's error.
const ERROR_TRAILERS: &[u8] =
    b"Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body";

/// Sends a streamed response to its caller chunk by chunk (see the module docs); false
/// when the connection is to be closed.
fn relay_to_caller(sandbox: &Sandbox, conn: &mut Conn, id: RequestId, stream: Stream) -> bool {
    let content_type = stream
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let started = conn
        .head(
            "200 OK",
            &[
                ("Content-Type", content_type.as_bytes()),
                ("X-Amzn-RequestId", id.as_bytes()),
                (
                    "X-Amz-Executed-Version",
                    sandbox.function().version.as_bytes(),
                ),
                ("Transfer-Encoding", b"chunked"),
                ("Trailer", ERROR_TRAILERS),
            ],
        )
        .send_head()
        .is_ok();
    let mut open = started;
    let relayed = relay(stream, |data| {
        open = open && conn.send_chunk(data).is_ok();
        open
    });
    if !relayed.delivered {
        return false;
    }
    let ended = match &relayed.error {
        None => conn.end_chunks(&[]),
        Some(error) => conn.end_chunks(&[
            (
                "Lambda-Runtime-Function-Error-Type",
                error.error_type.as_bytes(),
            ),
            ("Lambda-Runtime-Function-Error-Body", error.body.as_bytes()),
        ]),
    };
    open && ended.is_ok()
}

/// `{"Type":"User","message":…}`, the shape of Lambda's API errors.
fn user_error(message: &str) -> Vec<u8> {
    let mut out = br#"{"Type":"User","message":"#.to_vec();
    crate::json::push_string(&mut out, message);
    out.push(b'}');
    out
}

/// 429 `TooManyRequestsException`: N invocations are in flight (`--concurrency N`); false
/// to close.
pub fn throttled(sandbox: &Sandbox, conn: &mut Conn) -> bool {
    let refusal = Refusal {
        status: "429 Too Many Requests",
        error_type: "TooManyRequestsException",
        message: format!(
            "Rate Exceeded: {} invocations are in flight (--concurrency)",
            sandbox.concurrency()
        ),
    };
    send_refusal(conn, &refusal, false).is_ok()
}

/// 400 for a request that could not be read (`why`), with `Connection: close`.
pub fn bad_request(conn: &mut Conn, why: &str) {
    let _ = conn
        .head("400 Bad Request", JSON)
        .send(&user_error(why), true);
}

/// Sends `refusal` (`close`: with `Connection: close`).
pub fn send_refusal(conn: &mut Conn, refusal: &Refusal, close: bool) -> io::Result<()> {
    conn.head(
        refusal.status,
        &[
            ("Content-Type", b"application/json"),
            ("X-Amzn-ErrorType", refusal.error_type.as_bytes()),
        ],
    )
    .send(&user_error(&refusal.message), close)
}

/// Answers `refusal` (after reading the request's body); false to close.
fn refuse(conn: &mut Conn, head: &Head, refusal: &Refusal) -> bool {
    let readable = matches!(conn.read_body(head, MAX_REQUEST), Ok(Body::Complete(_)));
    let sent = send_refusal(conn, refusal, !readable);
    if !readable {
        conn.drain_and_close();
    }
    readable && sent.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_from_text_or_files_within_the_limit() {
        assert_eq!(read_event(r#"{"a":1}"#).unwrap(), br#"{"a":1}"#);
        let e = read_event("@/nonexistent/event.json").unwrap_err();
        assert!(
            e.starts_with("cannot read the event file /nonexistent/event.json: "),
            "{e}"
        );
        let big = "x".repeat(MAX_REQUEST + 1);
        assert_eq!(
            read_event(&big).unwrap_err(),
            "RequestTooLargeException: Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        );
    }
}

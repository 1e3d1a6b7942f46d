//! The Runtime API (`/2018-06-01/runtime/...`) and the Extensions API
//! (`/2020-01-01/extension/...`) one runtime generation talks to: a listener on an
//! ephemeral 127.0.0.1 port, a thread per connection (a shell bootstrap opens one per
//! request, a compiled one keeps one open), and the answers of Lambda's API: the event on
//! `GET /next` (chunked above 2048 bytes, as Go's server sends it), 202 `{"status":"OK"}`,
//! 400 `InvalidRequestID`, 403 `InvalidStateTransition`, 413 `RequestEntityTooLarge`.
//! Requests may carry their bodies with `Content-Length` or chunked (aws-lambda-go posts
//! chunked), and may ask for `100 Continue`.
//!
//! A `/response` with `Lambda-Runtime-Function-Response-Mode: streaming` is read piece by
//! piece and each piece is handed to the caller at once (through the stream's
//! [`crate::sandbox::Pipe`]); its trailers `Lambda-Runtime-Function-Error-Type` and
//! `Lambda-Runtime-Function-Error-Body` end the stream with that error. A stream over
//! [`MAX_STREAM`] bytes ends with `Function.ResponseSizeTooLarge` and a 413 to the runtime;
//! one whose connection breaks off ends with `Runtime.TruncatedResponse`. Any other value
//! of that header gets 400 `InvalidFunctionResponseMode` and fails the invocation with
//! `Runtime.InvalidResponseModeHeader` (AWS's emulator,
//! `internal/lambda/rapi/handler/invocationresponse.go`). Under Managed Instances, a post
//! for an invocation that timed out gets 410 `InvokeTimeout`
//! (`internal/lambda-managed-instances/rapi/rendering/render_error.go`).
//!
//! Every connection is counted by the sandbox while it is open, so that when the runtime
//! ends, what it sent before it ended is read before its invocations are failed.
//!
//! Extensions: `POST /extension/register` answers 200 with `Lambda-Extension-Identifier`
//! and the function's name, version and handler; `GET /extension/event/next` waits for the
//! extension's next event (for one registered for no events, until the runtime is
//! stopped). Refusals are 403 with Lambda's `Extension.*` error types.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::http::{Body, Conn, Head, ReadError, decimal, peer_closed, push_hex};
use crate::json::error_document;
use crate::sandbox::{
    ConnectionGuard, Delivery, ExtensionNext, ExtensionRefusal, MAX_RESPONSE, MAX_STREAM, Next,
    Posted, Probe, Refusal, Registered, Sandbox, StreamError,
};

/// The only `Lambda-Runtime-Function-Response-Mode` there is.
const STREAMING: &[u8] = b"streaming";

/// The largest piece of a stream handed to the caller at once.
const MAX_PIECE: usize = 64 * 1024;

/// Go sends a body with `Content-Length` when it fits its 2048-byte buffer, chunked above.
const CHUNKED_ABOVE: usize = 2048;

/// Request ids longer than this cannot be ours.
const MAX_ID: usize = 128;

/// What a request asks for.
enum Route {
    Next,
    /// `/response` (`error == false`) or `/error` for the id at this range of the target.
    Post {
        id: IdBuf,
        error: bool,
    },
    InitError,
    /// `POST /2020-01-01/extension/register`.
    Register,
    /// `GET /2020-01-01/extension/event/next`.
    ExtensionNext,
    /// A runtime path with the wrong method.
    WrongMethod,
    NotFound,
}

/// A request id copied out of the request head (the buffer may move while the body is
/// read).
struct IdBuf {
    bytes: [u8; MAX_ID],
    len: usize,
}

impl IdBuf {
    fn get(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Serves generation `generation`'s Runtime API on `listener` from a thread of its own,
/// until the generation ends (the sandbox then connects once to wake it).
pub fn serve(sandbox: Weak<Sandbox>, generation: u64, listener: TcpListener) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("runtime-api-{generation}"))
        .spawn(move || {
            for stream in listener.incoming() {
                let Some(sandbox) = sandbox.upgrade() else {
                    return;
                };
                let Ok(stream) = stream else {
                    // Out of file descriptors, say: do not spin.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let peer = stream.peer_addr().map_or(0, |a| a.port());
                let Some(guard) = sandbox.connection(generation, peer) else {
                    return; // the generation has ended
                };
                let conn = Conn::new(stream);
                let spawned = std::thread::Builder::new()
                    .name(format!("runtime-conn-{generation}"))
                    .spawn(move || connection(&sandbox, generation, conn, guard));
                if spawned.is_err() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })?;
    Ok(())
}

/// Serves the requests of one connection until it closes or its runtime is replaced; the
/// sandbox counts it until then (`_open`).
fn connection(sandbox: &Arc<Sandbox>, generation: u64, mut conn: Conn, _open: ConnectionGuard) {
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(why)) => {
                let _ = conn
                    .head("400 Bad Request", JSON)
                    .send(&error_document("InvalidRequest", why), true);
                return;
            }
            Err(ReadError::Unsupported) => {
                let _ = conn.head("501 Not Implemented", JSON).send(
                    &error_document(
                        "InvalidRequest",
                        "only chunked Transfer-Encoding is supported",
                    ),
                    true,
                );
                return;
            }
        };
        if !sandbox.is_current(generation) {
            return; // from a runtime that has been replaced
        }
        let route = route(conn.method(&head), conn.target(&head));
        let keep = match route {
            Route::Next => next(sandbox, generation, &mut conn, &head),
            Route::Post { id, error } => {
                post(sandbox, generation, &mut conn, &head, id.get(), error)
            }
            Route::InitError => init_error(sandbox, generation, &mut conn, &head),
            Route::Register => register(sandbox, generation, &mut conn, &head),
            Route::ExtensionNext => extension_next(sandbox, generation, &mut conn, &head),
            Route::WrongMethod => reply(
                &mut conn,
                &head,
                "405 Method Not Allowed",
                TEXT,
                b"405 method not allowed\n",
            ),
            Route::NotFound => reply(
                &mut conn,
                &head,
                "404 Not Found",
                TEXT,
                b"404 page not found\n",
            ),
        };
        if !keep || !head.keep_alive {
            return;
        }
    }
}

const JSON: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];
const TEXT: &[(&str, &[u8])] = &[("Content-Type", b"text/plain; charset=utf-8")];

/// Which endpoint `target` names (query strings are ignored).
fn route(method: &[u8], target: &[u8]) -> Route {
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (route, wanted): (Route, &[u8]) = match path {
        b"/2020-01-01/extension/register" => (Route::Register, b"POST"),
        b"/2020-01-01/extension/event/next" => (Route::ExtensionNext, b"GET"),
        _ => return runtime_route(method, path),
    };
    if method == wanted {
        route
    } else {
        Route::WrongMethod
    }
}

/// Which Runtime API endpoint `path` names.
fn runtime_route(method: &[u8], path: &[u8]) -> Route {
    let Some(rest) = path.strip_prefix(b"/2018-06-01/runtime/") else {
        return Route::NotFound;
    };
    let (route, wanted): (Route, &[u8]) = if rest == b"invocation/next" {
        (Route::Next, b"GET")
    } else if rest == b"init/error" {
        (Route::InitError, b"POST")
    } else if let Some(tail) = rest.strip_prefix(b"invocation/") {
        let (id, error) = if let Some(id) = tail.strip_suffix(b"/response") {
            (id, false)
        } else if let Some(id) = tail.strip_suffix(b"/error") {
            (id, true)
        } else {
            return Route::NotFound;
        };
        if id.is_empty() || id.contains(&b'/') {
            return Route::NotFound;
        }
        let mut buf = IdBuf {
            bytes: [0; MAX_ID],
            len: id.len().min(MAX_ID),
        };
        buf.bytes[..buf.len].copy_from_slice(&id[..buf.len]);
        if id.len() > MAX_ID {
            buf.len = 0; // matches no invocation: 400
        }
        (Route::Post { id: buf, error }, b"POST")
    } else {
        return Route::NotFound;
    };
    if method == wanted {
        route
    } else {
        Route::WrongMethod
    }
}

/// `GET /next`: waits for an invocation and sends it.
fn next(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head) -> bool {
    if !matches!(conn.read_body(head, MAX_RESPONSE), Ok(Body::Complete(_))) {
        return false;
    }
    let probe = if sandbox.concurrency() > 1 {
        conn.probe()
            .map(|stream| Probe(Box::new(move || peer_closed(&stream))))
    } else {
        None
    };
    match sandbox.next(generation, probe) {
        Next::Stale => false,
        Next::Refused(why) => conn
            .head("403 Forbidden", JSON)
            .send(&error_document("InvalidStateTransition", &why), false)
            .is_ok(),
        Next::Event(delivery) => send_event(conn, sandbox, &delivery).is_ok(),
        Next::Wait => false,
    }
}

/// The `/next` response: Lambda's headers, then the event with `Content-Length`, or as one
/// chunk when it is over 2048 bytes.
fn send_event(conn: &mut Conn, sandbox: &Sandbox, d: &Delivery) -> io::Result<()> {
    let content_type = d.content_type.as_deref().unwrap_or("application/json");
    conn.head(
        "200 OK",
        &[
            ("Content-Type", content_type.as_bytes()),
            ("Lambda-Runtime-Aws-Request-Id", d.id.as_bytes()),
            (
                "Lambda-Runtime-Deadline-Ms",
                decimal(d.deadline_ms, &mut [0; 20]),
            ),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                sandbox.function().arn.as_bytes(),
            ),
            ("Lambda-Runtime-Trace-Id", d.trace_id.as_bytes()),
        ],
    );
    if let Some(context) = &d.client_context {
        conn.push_header("Lambda-Runtime-Client-Context", context.as_bytes());
    }
    if let Some(tenant) = &d.tenant_id {
        conn.push_header("Lambda-Runtime-Aws-Tenant-Id", tenant.as_bytes());
    }
    if d.event.len() > CHUNKED_ABOVE {
        let mut line = Vec::with_capacity(40);
        line.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        push_hex(&mut line, d.event.len() as u64);
        line.extend_from_slice(b"\r\n");
        conn.push_raw(&line);
        conn.send_parts(&[&d.event, b"\r\n0\r\n\r\n"])
    } else {
        conn.send(&d.event, false)
    }
}

/// `POST /invocation/{id}/response` and `/error`.
fn post(
    sandbox: &Sandbox,
    generation: u64,
    conn: &mut Conn,
    head: &Head,
    id: &[u8],
    error: bool,
) -> bool {
    if let Err(refusal) = sandbox.check_post(generation, id) {
        return skip_body(conn, head) && refuse(conn, refusal);
    }
    match conn.header(head, "Lambda-Runtime-Function-Response-Mode") {
        Some(STREAMING) if !error => return stream(sandbox, generation, conn, head, id),
        Some(_) if !error => return bad_mode(sandbox, generation, conn, head, id),
        _ => {}
    }
    let body = match conn.read_body(head, MAX_RESPONSE) {
        Ok(Body::Complete(body)) => body,
        Ok(Body::TooLarge) => {
            let _ = sandbox.complete(generation, id, Posted::TooLarge, Instant::now());
            too_large(conn, MAX_RESPONSE as u64);
            return false;
        }
        Err(ReadError::Bad(why)) => return bad_body(conn, why),
        Err(ReadError::Io | ReadError::Unsupported) => return false,
    };
    let done = Instant::now();
    let bytes = &conn.bytes()[body];
    let posted = if error {
        Posted::Error(
            bytes,
            conn.header(head, "Lambda-Runtime-Function-Error-Type"),
        )
    } else {
        Posted::Response(bytes, conn.header(head, "Content-Type"))
    };
    match sandbox.complete(generation, id, posted, done) {
        Ok(()) => accepted(conn),
        Err(refusal) => refuse(conn, refusal),
    }
}

/// A `/response` with a response mode other than `streaming`: 400, and the invocation
/// fails (AWS's emulator, `internal/lambda/rapi/handler/invocationresponse.go`).
fn bad_mode(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head, id: &[u8]) -> bool {
    if !skip_body(conn, head) {
        return false;
    }
    match sandbox.complete(generation, id, Posted::BadMode, Instant::now()) {
        Ok(()) => conn
            .head("400 Bad Request", JSON)
            .send(
                &error_document(
                    "InvalidFunctionResponseMode",
                    "Invalid function response mode",
                ),
                false,
            )
            .is_ok(),
        Err(refusal) => refuse(conn, refusal),
    }
}

/// How relaying a streamed response ended, before the invocation is told.
enum StreamResult {
    /// The last chunk (and trailers) arrived.
    Ended,
    /// The stream went over [`MAX_STREAM`].
    TooLarge,
    /// The runtime's request was malformed.
    Bad(&'static str),
    /// The connection broke off.
    Broken,
}

/// A `/response` in streaming mode: every piece goes to the caller as it arrives (the
/// runtime waits while the stream's pipe is full; what a caller that has gone would have
/// got is read and dropped), and the end, with the error trailers if any, ends the
/// invocation.
fn stream(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head, id: &[u8]) -> bool {
    let content_type = conn
        .header(head, "Content-Type")
        .map(|c| String::from_utf8_lossy(c).into_owned());
    let pipe = match sandbox.start_stream(generation, id, content_type) {
        Ok(pipe) => pipe,
        Err(refusal) => return skip_body(conn, head) && refuse(conn, refusal),
    };
    let mut sent = 0u64;
    let (result, error) = match conn.pieces(head) {
        Err(ReadError::Bad(why)) => (StreamResult::Bad(why), None),
        Err(_) => (StreamResult::Broken, None),
        Ok(mut pieces) => {
            let result = loop {
                match conn.read_piece(&mut pieces, MAX_PIECE) {
                    Ok(Some(range)) => {
                        sent += range.len() as u64;
                        if sent > MAX_STREAM {
                            break StreamResult::TooLarge;
                        }
                        // Dropped when the caller has gone or the stream was ended.
                        pipe.push(conn.bytes()[range].to_vec());
                    }
                    Ok(None) => break StreamResult::Ended,
                    Err(ReadError::Bad(why)) => break StreamResult::Bad(why),
                    Err(_) => break StreamResult::Broken,
                }
            };
            let error = pieces
                .trailer("Lambda-Runtime-Function-Error-Type")
                .filter(|t| !t.is_empty())
                .map(|error_type| {
                    StreamError::of_trailers(
                        error_type,
                        pieces.trailer("Lambda-Runtime-Function-Error-Body"),
                    )
                });
            (result, error)
        }
    };
    let done = Instant::now();
    let error = match result {
        StreamResult::Ended => error,
        StreamResult::TooLarge => Some(StreamError::of_document(&error_document(
            "Function.ResponseSizeTooLarge",
            &format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_STREAM} bytes)."
            ),
        ))),
        // The emulator stopped the runtime (a timeout): its caller knows.
        StreamResult::Bad(_) | StreamResult::Broken if !sandbox.is_current(generation) => {
            return false;
        }
        StreamResult::Bad(why) => Some(truncated(sent, why)),
        StreamResult::Broken => Some(truncated(sent, "the connection closed")),
    };
    if let Err(refusal) = sandbox.finish_stream(generation, id, error, sent, done) {
        return refuse(conn, refusal);
    }
    match result {
        StreamResult::Ended => accepted(conn),
        StreamResult::TooLarge => {
            too_large(conn, MAX_STREAM);
            false
        }
        StreamResult::Bad(why) => bad_body(conn, why),
        StreamResult::Broken => false,
    }
}

/// The error of a stream that broke off after `sent` bytes.
fn truncated(sent: u64, why: &str) -> StreamError {
    StreamError::of_document(&error_document(
        "Runtime.TruncatedResponse",
        &format!("the streamed response broke off after {sent} bytes: {why}"),
    ))
}

/// Reads a request body of at most [`MAX_RESPONSE`] bytes; when that fails, answers (413,
/// 400) and gives whether the connection may stay open.
fn whole_body(conn: &mut Conn, head: &Head) -> Result<std::ops::Range<usize>, bool> {
    match conn.read_body(head, MAX_RESPONSE) {
        Ok(Body::Complete(body)) => Ok(body),
        Ok(Body::TooLarge) => {
            too_large(conn, MAX_RESPONSE as u64);
            Err(false)
        }
        Err(ReadError::Bad(why)) => Err(bad_body(conn, why)),
        Err(ReadError::Io | ReadError::Unsupported) => Err(false),
    }
}

/// 200 with a JSON `body` and one more header.
fn json_with(conn: &mut Conn, name: &str, value: &[u8], body: &[u8]) -> bool {
    conn.head(
        "200 OK",
        &[("Content-Type", b"application/json"), (name, value)],
    )
    .send(body, false)
    .is_ok()
}

/// `POST /2020-01-01/extension/register`.
fn register(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head) -> bool {
    let body = match whole_body(conn, head) {
        Ok(body) => body,
        Err(keep) => return keep,
    };
    let name = conn
        .header(head, "Lambda-Extension-Name")
        .map(<[u8]>::to_vec);
    let answer = sandbox.register(generation, name.as_deref(), &conn.bytes()[body]);
    match answer {
        Registered::Ok { id, body } => {
            json_with(conn, "Lambda-Extension-Identifier", id.as_bytes(), &body)
        }
        Registered::Refused(refusal) => extension_refusal(conn, &refusal),
        Registered::Stale => false,
    }
}

/// `GET /2020-01-01/extension/event/next`.
fn extension_next(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head) -> bool {
    if !matches!(conn.read_body(head, MAX_RESPONSE), Ok(Body::Complete(_))) {
        return false;
    }
    let id = conn
        .header(head, "Lambda-Extension-Identifier")
        .map(<[u8]>::to_vec);
    match sandbox.extension_next(generation, id.as_deref()) {
        ExtensionNext::Event(event, event_id) => json_with(
            conn,
            "Lambda-Extension-Event-Identifier",
            event_id.as_bytes(),
            &event,
        ),
        ExtensionNext::Refused(refusal) => extension_refusal(conn, &refusal),
        ExtensionNext::Stale | ExtensionNext::Wait => false,
    }
}

/// A refused Extensions API request.
fn extension_refusal(conn: &mut Conn, refusal: &ExtensionRefusal) -> bool {
    conn.head(refusal.status, JSON)
        .send(&error_document(refusal.error_type, &refusal.message), false)
        .is_ok()
}

/// `POST /runtime/init/error`.
fn init_error(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head) -> bool {
    let body = match whole_body(conn, head) {
        Ok(body) => body,
        Err(keep) => return keep,
    };
    let document = if body.is_empty() {
        let error_type = conn
            .header(head, "Lambda-Runtime-Function-Error-Type")
            .map_or("Runtime.Unknown".into(), String::from_utf8_lossy);
        error_document(&error_type, "")
    } else {
        conn.bytes()[body].to_vec()
    };
    match sandbox.init_error(generation, document) {
        Ok(()) => accepted(conn),
        Err(refusal) => refuse(conn, refusal),
    }
}

fn accepted(conn: &mut Conn) -> bool {
    conn.head("202 Accepted", JSON)
        .send(br#"{"status":"OK"}"#, false)
        .is_ok()
}

/// Answers a refusal; false when the connection is to be closed.
fn refuse(conn: &mut Conn, refusal: Refusal) -> bool {
    let sent = match refusal {
        Refusal::Stale => return false,
        Refusal::WrongId => conn.head("400 Bad Request", JSON).send(
            &error_document("InvalidRequestID", "Invalid request ID"),
            false,
        ),
        Refusal::WrongState(why) => conn
            .head("403 Forbidden", JSON)
            .send(&error_document("InvalidStateTransition", why), false),
        Refusal::Gone => conn
            .head("410 Gone", JSON)
            .send(&error_document("InvokeTimeout", "Invoke timeout"), false),
    };
    sent.is_ok()
}

/// 413 for a body over Lambda's `limit`, then the connection is drained and closed.
fn too_large(conn: &mut Conn, limit: u64) {
    let message = format!("Exceeded maximum allowed payload size ({limit} bytes).");
    let _ = conn
        .head("413 Request Entity Too Large", JSON)
        .send(&error_document("RequestEntityTooLarge", &message), true);
    conn.drain_and_close();
}

/// 400 for a body that is malformed or cut short; the connection closes.
fn bad_body(conn: &mut Conn, why: &str) -> bool {
    let _ = conn
        .head("400 Bad Request", JSON)
        .send(&error_document("TruncatedHTTPRequest", why), true);
    false
}

/// Reads and forgets the body of a request that is answered without it.
fn skip_body(conn: &mut Conn, head: &Head) -> bool {
    match conn.read_body(head, MAX_RESPONSE) {
        Ok(Body::Complete(_)) => true,
        Ok(Body::TooLarge) => {
            too_large(conn, MAX_RESPONSE as u64);
            false
        }
        Err(ReadError::Bad(why)) => bad_body(conn, why),
        Err(_) => false,
    }
}

/// Answers with a fixed body after skipping the request's own.
fn reply(
    conn: &mut Conn,
    head: &Head,
    status: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> bool {
    skip_body(conn, head) && conn.head(status, headers).send(body, false).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_runtime_api() {
        assert!(matches!(
            route(b"GET", b"/2018-06-01/runtime/invocation/next"),
            Route::Next
        ));
        assert!(matches!(
            route(b"POST", b"/2018-06-01/runtime/init/error"),
            Route::InitError
        ));
        match route(b"POST", b"/2018-06-01/runtime/invocation/abc-1/response") {
            Route::Post { id, error: false } => assert_eq!(id.get(), b"abc-1"),
            _ => panic!("response route"),
        }
        match route(b"POST", b"/2018-06-01/runtime/invocation/abc-1/error?x=1") {
            Route::Post { id, error: true } => assert_eq!(id.get(), b"abc-1"),
            _ => panic!("error route"),
        }
        assert!(matches!(
            route(b"POST", b"/2018-06-01/runtime/invocation/next"),
            Route::WrongMethod
        ));
        assert!(matches!(
            route(b"GET", b"/2018-06-01/runtime/invocation/a/b/response"),
            Route::NotFound
        ));
        assert!(matches!(route(b"GET", b"/"), Route::NotFound));
        assert!(matches!(
            route(b"POST", b"/2020-01-01/extension/register"),
            Route::Register
        ));
        assert!(matches!(
            route(b"GET", b"/2020-01-01/extension/event/next?x"),
            Route::ExtensionNext
        ));
        assert!(matches!(
            route(b"GET", b"/2020-01-01/extension/register"),
            Route::WrongMethod
        ));
    }
}

//! The Runtime API (`/2018-06-01/runtime/...`) one runtime generation talks to: a listener
//! on an ephemeral 127.0.0.1 port, a thread per connection (a shell bootstrap opens one per
//! request, a compiled one keeps one open), and the answers of Lambda's API: the event on
//! `GET /next` (chunked above 2048 bytes, as Go's server sends it), 202 `{"status":"OK"}`,
//! 400 `InvalidRequestID`, 403 `InvalidStateTransition`, 413 `RequestEntityTooLarge`.
//! Requests may carry their bodies with `Content-Length` or chunked (aws-lambda-go posts
//! chunked), and may ask for `100 Continue`.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::http::{Body, Conn, Head, ReadError, decimal, push_hex};
use crate::json::error_document;
use crate::sandbox::{Delivery, MAX_PAYLOAD, Next, Posted, Refusal, Sandbox};

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
                if !sandbox.is_current(generation) {
                    return;
                }
                let Ok(stream) = stream else {
                    // Out of file descriptors, say: do not spin.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let conn = Conn::new(stream);
                let spawned = std::thread::Builder::new()
                    .name(format!("runtime-conn-{generation}"))
                    .spawn(move || connection(&sandbox, generation, conn));
                if spawned.is_err() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })?;
    Ok(())
}

/// Serves the requests of one connection until it closes or its runtime is replaced.
fn connection(sandbox: &Arc<Sandbox>, generation: u64, mut conn: Conn) {
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
    if !matches!(conn.read_body(head, MAX_PAYLOAD), Ok(Body::Complete(_))) {
        return false;
    }
    match sandbox.next(generation) {
        Next::Stale => false,
        Next::Refused(why) => refuse(conn, Refusal::WrongState(why)),
        Next::Event(delivery) => send_event(conn, sandbox, &delivery).is_ok(),
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
    let body = match conn.read_body(head, MAX_PAYLOAD) {
        Ok(Body::Complete(body)) => body,
        Ok(Body::TooLarge) => {
            let _ = sandbox.complete(generation, id, Posted::TooLarge, Instant::now());
            too_large(conn);
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

/// `POST /runtime/init/error`.
fn init_error(sandbox: &Sandbox, generation: u64, conn: &mut Conn, head: &Head) -> bool {
    let body = match conn.read_body(head, MAX_PAYLOAD) {
        Ok(Body::Complete(body)) => body,
        Ok(Body::TooLarge) => {
            too_large(conn);
            return false;
        }
        Err(ReadError::Bad(why)) => return bad_body(conn, why),
        Err(ReadError::Io | ReadError::Unsupported) => return false,
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
    };
    sent.is_ok()
}

/// 413 for a body over Lambda's limit, then the connection is drained and closed.
fn too_large(conn: &mut Conn) {
    let message = format!("Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).");
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
    match conn.read_body(head, MAX_PAYLOAD) {
        Ok(Body::Complete(_)) => true,
        Ok(Body::TooLarge) => {
            too_large(conn);
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
    }
}

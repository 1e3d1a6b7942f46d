//! The caller side: Lambda's invoke endpoint as the AWS emulator serves it
//! (`POST /2015-03-31/functions/function/invocations`), and the invocation `--invoke` makes.
//!
//! A caller gets 200 with the function's response and `Content-Type`, or 200 with the error
//! document and `X-Amz-Function-Error: Unhandled`. `X-Amz-Invocation-Type: DryRun` gets 204;
//! `Event` (asynchronous) is not emulated and gets 400. `X-Amzn-Trace-Id` is passed to the
//! runtime as its trace id, and `X-Amz-Client-Context` (base64 JSON) decoded as its client
//! context. Events over 6,291,556 bytes get 413. Callers may keep their connection open;
//! several callers are served in order of arrival, as many at once as the runtime takes
//! (`--concurrency`).
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

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::http::{Body, Conn, Head, ReadError};
use crate::ids::RequestId;
use crate::sandbox::{Invocation, MAX_PAYLOAD, Outcome, Piece, Sandbox, Stream, StreamError};

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

/// Receives the streamed response of invocation `id`, handing each piece of data to
/// `write` as soon as it arrives (`write` returns false when its receiver has gone: the
/// rest is then dropped), until the stream ends or its deadline passes (the runtime is then
/// killed and the stream ends with `Sandbox.Timedout`).
pub fn relay(
    sandbox: &Sandbox,
    id: RequestId,
    stream: Stream,
    mut write: impl FnMut(&[u8]) -> bool,
) -> Relayed {
    let mut relayed = Relayed {
        error: None,
        latency: None,
        delivered: true,
    };
    let mut deadline = Some(stream.deadline);
    loop {
        let received = match deadline {
            Some(at) => stream
                .pieces
                .recv_timeout(at.saturating_duration_since(Instant::now())),
            None => stream
                .pieces
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Piece::Data(data)) => {
                if !write(&data) {
                    relayed.delivered = false;
                    return relayed; // dropping the receiver tells the runtime's side
                }
            }
            Ok(Piece::End(end)) => {
                relayed.error = end.error;
                relayed.latency = Some(end.latency);
                return relayed;
            }
            Err(RecvTimeoutError::Timeout) => match sandbox.stream_overran(id) {
                Some(document) => {
                    relayed.error = Some(StreamError::of_document(&document));
                    return relayed;
                }
                // It ended just now: its end is on its way.
                None => deadline = None,
            },
            Err(RecvTimeoutError::Disconnected) => {
                relayed.error = Some(StreamError::of_document(&crate::json::error_document(
                    "Runtime.TruncatedResponse",
                    "the streamed response broke off",
                )));
                return relayed;
            }
        }
    }
}

/// The most `X-Amz-Client-Context` Lambda accepts, in base64 characters.
const MAX_CLIENT_CONTEXT: usize = 3583;

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
            .spawn(move || caller(&sandbox, Conn::new(stream)))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
    }
    Ok(())
}

/// One invocation of `event`, as `--invoke` makes it: its id and outcome.
pub fn once(sandbox: &Sandbox, event: Vec<u8>) -> (RequestId, Outcome) {
    let id = sandbox.new_id();
    let outcome = sandbox.submit(Invocation {
        id,
        event: event.into(),
        content_type: None,
        trace_id: None,
        client_context: None,
        keep_body: true,
    });
    (id, outcome)
}

/// The event `--invoke` was given: the text itself, `@FILE`, or `@-` for stdin.
pub fn read_event(arg: &str) -> Result<Vec<u8>, String> {
    match arg.strip_prefix('@') {
        Some("-") => {
            let mut event = Vec::new();
            io::Read::read_to_end(&mut io::stdin(), &mut event)
                .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
            Ok(event)
        }
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read the event file {path}: {e}"))
        }
        None => Ok(arg.as_bytes().to_vec()),
    }
}

const JSON: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];

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
            "404 Not Found",
            "ResourceNotFoundException",
            "unknown path: invoke POST /2015-03-31/functions/function/invocations",
        );
    };
    if name != "function" && name != *function {
        let message = format!(
            "Function not found: {name} (this emulator runs \"function\", also known as {function:?})"
        );
        return refuse(
            conn,
            head,
            "404 Not Found",
            "ResourceNotFoundException",
            &message,
        );
    }
    if conn.method(head) != b"POST" {
        return refuse(
            conn,
            head,
            "405 Method Not Allowed",
            "InvalidRequestContentException",
            "invoke with POST",
        );
    }
    let invocation_type = conn
        .header(head, "X-Amz-Invocation-Type")
        .map(|t| String::from_utf8_lossy(t).into_owned());
    let dry_run = match invocation_type.as_deref() {
        None | Some("RequestResponse") => false,
        Some("DryRun") => true,
        Some(other) => {
            let message = format!(
                "X-Amz-Invocation-Type {other:?} is not emulated: use RequestResponse or DryRun"
            );
            return refuse(
                conn,
                head,
                "400 Bad Request",
                "InvalidParameterValueException",
                &message,
            );
        }
    };
    let client_context = match conn.header(head, "X-Amz-Client-Context") {
        None => None,
        Some(encoded) => match decode_client_context(encoded) {
            Some(context) => Some(context),
            None => {
                let message = "Client context must be a valid Base64-encoded JSON object of at most 3583 characters.";
                return refuse(
                    conn,
                    head,
                    "400 Bad Request",
                    "InvalidRequestContentException",
                    message,
                );
            }
        },
    };
    let header = |name| {
        conn.header(head, name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let (content_type, trace_id) = (header("Content-Type"), header("X-Amzn-Trace-Id"));
    let body = match conn.read_body(head, MAX_PAYLOAD) {
        Ok(Body::Complete(body)) => body,
        Ok(Body::TooLarge) => {
            let message = format!(
                "Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
            );
            let _ = conn
                .head(
                    "413 Request Entity Too Large",
                    &[
                        ("Content-Type", b"application/json"),
                        ("X-Amzn-ErrorType", b"RequestTooLargeException"),
                    ],
                )
                .send(&user_error(&message), true);
            conn.drain_and_close();
            return false;
        }
        Err(ReadError::Bad(why)) => {
            let _ = conn
                .head("400 Bad Request", JSON)
                .send(&user_error(why), true);
            return false;
        }
        Err(ReadError::Io | ReadError::Unsupported) => return false,
    };
    if dry_run {
        return conn.head("204 No Content", &[]).send(b"", false).is_ok();
    }
    let id = sandbox.new_id();
    let outcome = sandbox.submit(Invocation {
        id,
        event: conn.bytes()[body].into(),
        content_type,
        trace_id,
        client_context,
        keep_body: true,
    });
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
    let relayed = relay(sandbox, id, stream, |data| {
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

/// Answers an API error (after reading the request's body); false to close.
fn refuse(conn: &mut Conn, head: &Head, status: &str, error_type: &str, message: &str) -> bool {
    let readable = matches!(conn.read_body(head, MAX_PAYLOAD), Ok(Body::Complete(_)));
    let sent = conn
        .head(
            status,
            &[
                ("Content-Type", b"application/json"),
                ("X-Amzn-ErrorType", error_type.as_bytes()),
            ],
        )
        .send(&user_error(message), !readable);
    if !readable {
        conn.drain_and_close();
    }
    readable && sent.is_ok()
}

/// Decodes `X-Amz-Client-Context`: standard base64 (padding optional) of UTF-8 text.
fn decode_client_context(encoded: &[u8]) -> Option<String> {
    if encoded.len() > MAX_CLIENT_CONTEXT {
        return None;
    }
    String::from_utf8(crate::json::from_base64(encoded)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_context_is_decoded_from_base64() {
        assert_eq!(
            decode_client_context(b"eyJjdXN0b20iOnsiayI6InYifX0=").as_deref(),
            Some(r#"{"custom":{"k":"v"}}"#)
        );
        assert_eq!(
            decode_client_context(b"eyJhIjoxfQ").as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(decode_client_context(b"not base64!"), None);
    }

    #[test]
    fn events_come_from_text_or_files() {
        assert_eq!(read_event(r#"{"a":1}"#).unwrap(), br#"{"a":1}"#);
        let e = read_event("@/nonexistent/event.json").unwrap_err();
        assert!(
            e.starts_with("cannot read the event file /nonexistent/event.json: "),
            "{e}"
        );
    }
}

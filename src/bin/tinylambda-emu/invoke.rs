//! The caller side: Lambda's invoke endpoint as the AWS emulator serves it
//! (`POST /2015-03-31/functions/function/invocations`), and the invocation `--invoke` makes.
//!
//! A caller gets 200 with the function's response and `Content-Type`, or 200 with the error
//! document and `X-Amz-Function-Error: Unhandled`. `X-Amz-Invocation-Type: DryRun` gets 204;
//! `Event` (asynchronous) is not emulated and gets 400. `X-Amzn-Trace-Id` is passed to the
//! runtime as its trace id, and `X-Amz-Client-Context` (base64 JSON) decoded as its client
//! context. Events over 6,291,556 bytes get 413. Callers may keep their connection open;
//! several callers are served one invocation at a time, in order of arrival.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use crate::http::{Body, Conn, Head, ReadError};
use crate::sandbox::{Invocation, MAX_PAYLOAD, Outcome, Sandbox};

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

/// One invocation of `event`, as `--invoke` makes it.
pub fn once(sandbox: &Sandbox, event: Vec<u8>) -> Outcome {
    sandbox.submit(Invocation {
        id: sandbox.new_id(),
        event: event.into(),
        content_type: None,
        trace_id: None,
        client_context: None,
        keep_body: true,
    })
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
    let sent = match &outcome {
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
            .send(body, false)
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
            .send(document, false),
    };
    sent.is_ok()
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

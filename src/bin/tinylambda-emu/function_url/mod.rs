//! The function URL front door: every request to the invoke port whose path is not under
//! `/2015-03-31/` (the Invoke API) is a request to the function's URL, any method, path,
//! query, headers, cookies and body, as `https://{url-id}.lambda-url.{region}.on.aws/…`
//! would receive it (`urls-invocation.html`).
//!
//! - The request becomes a payload format 2.0 event ([`event`]) and invokes the function,
//!   under the same rules as any invocation (the event at most 6 MiB: 413
//!   `RequestTooLargeException`; the timeout; one at a time or `--concurrency N`).
//! - A buffered result becomes the caller's response ([`response`]); a streamed one with
//!   the function URL prelude (`application/vnd.awslambda.http-integration-response`: JSON
//!   prelude, 8 NUL bytes, body) gives its status, headers and cookies, then its body chunk
//!   by chunk as the runtime writes it; any other stream is 200 with the runtime's
//!   `Content-Type`, chunk by chunk.
//! - A function error (the runtime's `/error`, an exit, a response over the limit) and a
//!   timeout give the caller 502 `Internal Server Error`; so does a malformed response. The
//!   status is the one a gateway gives when the function behind it fails: function URL
//!   metrics count function errors and timeouts among the 5XX answers
//!   (`urls-monitoring.html`, `Url5xxCount`: "server-side errors, such as function errors
//!   and timeouts"), and 502 is the gateway status for a function that fails or answers in
//!   the wrong format (`services-apigateway-errors.html`). The caller gets no error detail,
//!   as on Lambda; the emulator's log line says what the function reported, as
//!   CloudWatch would.
//! - A stream that fails after its head has gone out (an error trailer, the timeout) cannot
//!   change its status: the connection is closed without the last chunk, so that the
//!   caller sees a cut-off response rather than a whole one, and the log line says why.
//!
//! Every response carries `X-Amzn-RequestId`, the invocation's request id.

pub mod event;
pub mod response;
pub mod stream;

use crate::clock::unix_millis;
use crate::function::ACCOUNT_ID;
use crate::http::{Body, Conn, Head, ReadError, status_line};
use crate::ids::RequestId;
use crate::invoke::{bad_request, send_refusal, throttled};
use crate::json::error_type_of;
use crate::request::{self, MAX_REQUEST, Request};
use crate::sandbox::{Outcome, Sandbox};
use event::{Origin, UrlRequest};
use response::UrlResponse;

/// Answers one function URL request whose head was just read; false when the connection
/// is to be closed.
pub fn serve(sandbox: &Sandbox, conn: &mut Conn, head: &Head) -> bool {
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
    let id = sandbox.new_id();
    let function = sandbox.function();
    let method = String::from_utf8_lossy(conn.method(head)).into_owned();
    let event = event::build(
        &UrlRequest {
            method: &method,
            target: conn.target(head),
            http10: head.http10,
            fields: conn.fields(head).collect(),
            body: &conn.bytes()[body],
            source_ip: conn.peer().map(|peer| peer.ip()),
        },
        &Origin {
            request_id: id.as_str(),
            account_id: ACCOUNT_ID,
            url_id: &function.url_id,
            region: &function.region,
            time_ms: unix_millis(),
        },
    );
    if let Err(refusal) = request::check_size(event.len()) {
        return send_refusal(conn, &refusal, false).is_ok();
    }
    let invocation = Request {
        trace_id: conn
            .header(head, "X-Amzn-Trace-Id")
            .map(|t| String::from_utf8_lossy(t).into_owned()),
        ..Request::default()
    }
    .invocation(id, event.into(), true);
    let head_only = method == "HEAD";
    match sandbox.submit(invocation) {
        Err(_) => throttled(sandbox, conn),
        Ok(Outcome::Response { body, .. }) => match response::interpret(&body) {
            Ok(response) => send(conn, id, &response, head_only),
            Err(why) => {
                say!(
                    "tinylambda-emu: {} function URL: 502, the function's response is malformed: {why}",
                    id.as_str()
                );
                bad_gateway(conn, id, head_only)
            }
        },
        Ok(Outcome::Error { document }) => {
            say!(
                "tinylambda-emu: {} function URL: 502, the function failed with {}: {}",
                id.as_str(),
                error_type_of(&document).unwrap_or_else(|| "an error".into()),
                String::from_utf8_lossy(&document)
            );
            bad_gateway(conn, id, head_only)
        }
        Ok(Outcome::Stream(pieces)) => stream::relay(conn, id, pieces, head_only),
    }
}

/// Starts the head of `response` (status, `X-Amzn-RequestId`, its headers, a `Set-Cookie`
/// per cookie), to be ended by the caller.
fn start_head(conn: &mut Conn, id: RequestId, response: &UrlResponse) {
    conn.head(
        &status_line(response.status),
        &[("X-Amzn-RequestId", id.as_bytes())],
    );
    for (name, value) in &response.headers {
        conn.push_header(name, value.as_bytes());
    }
    for cookie in &response.cookies {
        conn.push_header("Set-Cookie", cookie.as_bytes());
    }
}

/// Whether a response with `status` has no body (RFC 9110 §15.3.5, §15.4.5).
fn bodiless(status: u16) -> bool {
    status == 204 || status == 304
}

/// Sends a buffered `response` (its head only, for `HEAD`); false to close.
fn send(conn: &mut Conn, id: RequestId, response: &UrlResponse, head_only: bool) -> bool {
    start_head(conn, id, response);
    let sent = if bodiless(response.status) {
        conn.send_no_content()
    } else if head_only {
        conn.send_head_only(response.body.len())
    } else {
        conn.send(&response.body, false)
    };
    sent.is_ok()
}

/// 502 `Internal Server Error`: the function failed, timed out or answered in the wrong
/// format; false to close.
fn bad_gateway(conn: &mut Conn, id: RequestId, head_only: bool) -> bool {
    let response = UrlResponse {
        status: 502,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        cookies: Vec::new(),
        body: b"Internal Server Error".to_vec(),
    };
    send(conn, id, &response, head_only)
}

//! What a caller may ask, the same whichever way it comes in: the invoke endpoint's request
//! ([`crate::invoke`]) and `--invoke`'s event go through these rules, so the two answer
//! alike.
//!
//! - The event is at most [`MAX_REQUEST`] bytes: a larger one gets 413
//!   `RequestTooLargeException`.
//! - The event is JSON (RFC 8259, strictly), or empty (a call without a payload): anything
//!   else gets 400 `InvalidRequestContentException`, "Could not parse request body into
//!   json", as Lambda's Invoke API answers a payload that is not JSON (`API_Invoke.html`
//!   lists that error, for a body that does not parse as JSON, with status 400;
//!   `nodejs-exceptions.html`, "How it works": Lambda checks that the event is valid JSON
//!   before it reaches a function instance). An empty payload is passed on empty, as AWS's
//!   emulator passes it.
//! - `X-Amz-Invocation-Type`: `RequestResponse` (the default) or `DryRun` (checked, not
//!   run); `Event` is not emulated (400 `InvalidParameterValueException`).
//! - `X-Amz-Client-Context`: base64 (padding optional) of at most 3,583 characters, of a
//!   JSON object, passed to the runtime as `Lambda-Runtime-Client-Context` (the decoded
//!   JSON, as Lambda and AWS's emulator pass it: `internal/lambda/rie/handlers.go`);
//!   anything else gets 400 `InvalidRequestContentException`.
//! - `Content-Type`, `X-Amzn-Trace-Id` and `X-Amz-Tenant-Id` are passed to the runtime
//!   (`Content-Type`, `Lambda-Runtime-Trace-Id`, `Lambda-Runtime-Aws-Tenant-Id`: AWS's
//!   emulator, `internal/lambda/rie/handlers.go` and `rapi/rendering/rendering.go`).

use std::sync::Arc;

use crate::ids::RequestId;
use crate::json::{from_base64, is_object, validate};
use crate::sandbox::Invocation;

/// Lambda's limit on a synchronous invocation's request: 6 MiB, 6,291,456 bytes. The
/// quotas page gives "6 MB each for request and response (synchronous)"
/// (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>), and the
/// Invoke API refuses more with 413 `RequestTooLargeException`, "Request must be smaller
/// than 6291456 bytes for the InvokeFunction operation" (the error users quote). The
/// 6,291,556 bytes (6 MiB + 100) of AWS's emulator are the Runtime API's limit on a
/// *response* ([`crate::sandbox::MAX_RESPONSE`]), not on a request.
pub const MAX_REQUEST: usize = 6 * 1024 * 1024;

/// The most `X-Amz-Client-Context` Lambda accepts, in base64 characters
/// (`API_Invoke.html`: "Up to 3,583 bytes of base64-encoded data").
const MAX_CLIENT_CONTEXT: usize = 3583;

/// A refused request: its status line, `X-Amzn-ErrorType` and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status line, e.g. `400 Bad Request`.
    pub status: &'static str,
    /// `X-Amzn-ErrorType`.
    pub error_type: &'static str,
    /// The message.
    pub message: String,
}

impl Refusal {
    fn new(status: &'static str, error_type: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            error_type,
            message: message.into(),
        }
    }
}

/// 413 for an event over [`MAX_REQUEST`].
pub fn too_large() -> Refusal {
    Refusal::new(
        "413 Request Entity Too Large",
        "RequestTooLargeException",
        format!(
            "Request must be smaller than {MAX_REQUEST} bytes for the InvokeFunction operation"
        ),
    )
}

/// Refuses an event of `len` bytes over [`MAX_REQUEST`].
pub fn check_size(len: usize) -> Result<(), Refusal> {
    if len > MAX_REQUEST {
        return Err(too_large());
    }
    Ok(())
}

/// Refuses an event that is over [`MAX_REQUEST`], or that is neither JSON nor empty.
pub fn check_event(event: &[u8]) -> Result<(), Refusal> {
    check_size(event.len())?;
    if event.is_empty() {
        return Ok(());
    }
    validate(event).map_err(|why| {
        Refusal::new(
            "400 Bad Request",
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {why}"),
        )
    })
}

/// The caller's headers that matter (`None`: absent; `--invoke` has none).
#[derive(Debug, Default)]
pub struct Headers<'a> {
    /// `X-Amz-Invocation-Type`.
    pub invocation_type: Option<&'a [u8]>,
    /// `X-Amz-Client-Context`.
    pub client_context: Option<&'a [u8]>,
    /// `Content-Type`.
    pub content_type: Option<&'a [u8]>,
    /// `X-Amzn-Trace-Id`.
    pub trace_id: Option<&'a [u8]>,
    /// `X-Amz-Tenant-Id`.
    pub tenant_id: Option<&'a [u8]>,
}

/// A request that passed the rules, without its event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `DryRun`: checked, not run (204).
    pub dry_run: bool,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `X-Amzn-Trace-Id`.
    pub trace_id: Option<String>,
    /// The client context: a JSON object.
    pub client_context: Option<String>,
    /// `X-Amz-Tenant-Id`.
    pub tenant_id: Option<String>,
}

impl Request {
    /// Checks `headers` against the rules (see the module docs).
    pub fn read(headers: &Headers<'_>) -> Result<Request, Refusal> {
        let text = |value: Option<&[u8]>| value.map(|v| String::from_utf8_lossy(v).into_owned());
        let dry_run = match headers.invocation_type {
            None | Some(b"RequestResponse") => false,
            Some(b"DryRun") => true,
            Some(other) => {
                return Err(Refusal::new(
                    "400 Bad Request",
                    "InvalidParameterValueException",
                    format!(
                        "X-Amz-Invocation-Type {:?} is not emulated: use RequestResponse or DryRun",
                        String::from_utf8_lossy(other)
                    ),
                ));
            }
        };
        let client_context = match headers.client_context {
            None => None,
            Some(encoded) => Some(client_context(encoded).ok_or_else(|| {
                Refusal::new(
                    "400 Bad Request",
                    "InvalidRequestContentException",
                    "Client context must be a valid Base64-encoded JSON object of at most 3583 characters.",
                )
            })?),
        };
        Ok(Request {
            dry_run,
            content_type: text(headers.content_type),
            trace_id: text(headers.trace_id),
            client_context,
            tenant_id: text(headers.tenant_id.filter(|t| !t.is_empty())),
        })
    }

    /// The invocation `id` of `event` (whose size was checked), keeping its response body
    /// if `keep_body`.
    pub fn invocation(self, id: RequestId, event: Arc<[u8]>, keep_body: bool) -> Invocation {
        Invocation {
            id,
            event,
            content_type: self.content_type,
            trace_id: self.trace_id,
            client_context: self.client_context,
            tenant_id: self.tenant_id,
            keep_body,
        }
    }
}

/// Decodes `X-Amz-Client-Context`: standard base64 (padding optional) of a JSON object;
/// the object, without the whitespace around it.
fn client_context(encoded: &[u8]) -> Option<String> {
    if encoded.len() > MAX_CLIENT_CONTEXT {
        return None;
    }
    let decoded = String::from_utf8(from_base64(encoded)?).ok()?;
    is_object(decoded.as_bytes()).then(|| decoded.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_contexts_are_base64_json_objects() {
        assert_eq!(
            client_context(b"eyJjdXN0b20iOnsiayI6InYifX0=").as_deref(),
            Some(r#"{"custom":{"k":"v"}}"#)
        );
        assert_eq!(client_context(b"eyJhIjoxfQ").as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(client_context(b"not base64!"), None);
        // "[1]" and "{}\r\nX: y"
        assert_eq!(client_context(b"WzFd"), None);
        assert_eq!(client_context(b"e30NClg6IHk="), None);
        // "{}\r\n\r\n": an object followed by whitespace.
        assert_eq!(client_context(b"e30NCg0K").as_deref(), Some("{}"));
        assert_eq!(client_context(&[b'A'; MAX_CLIENT_CONTEXT + 1]), None);
    }

    #[test]
    fn requests_follow_the_invoke_apis_rules() {
        assert_eq!(Request::read(&Headers::default()), Ok(Request::default()));
        let dry = Headers {
            invocation_type: Some(b"DryRun"),
            tenant_id: Some(b"t-1"),
            ..Headers::default()
        };
        let request = Request::read(&dry).unwrap();
        assert!(request.dry_run);
        assert_eq!(request.tenant_id.as_deref(), Some("t-1"));
        let event = Headers {
            invocation_type: Some(b"Event"),
            ..Headers::default()
        };
        assert_eq!(
            Request::read(&event).unwrap_err().error_type,
            "InvalidParameterValueException"
        );
        let bad = Headers {
            client_context: Some(b"WzFd"),
            ..Headers::default()
        };
        assert_eq!(
            Request::read(&bad).unwrap_err().error_type,
            "InvalidRequestContentException"
        );
        assert!(check_size(MAX_REQUEST).is_ok());
        assert_eq!(check_size(MAX_REQUEST + 1), Err(too_large()));
        assert!(too_large().message.contains("smaller than 6291456 bytes"));
        assert_eq!(check_event(b""), Ok(()));
        assert_eq!(check_event(b" [1, {}] "), Ok(()));
        let refusal = check_event(b"not json").unwrap_err();
        assert_eq!(
            (refusal.status, refusal.error_type, refusal.message.as_str()),
            (
                "400 Bad Request",
                "InvalidRequestContentException",
                "Could not parse request body into json: expected true, false or null at byte 0"
            )
        );
        assert_eq!(check_event(&vec![b' '; MAX_REQUEST + 1]), Err(too_large()));
    }
}

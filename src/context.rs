//! What a handler knows about its invocation, borrowed from the `/next` response.

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use crate::config::Config;
use crate::parse::{HEADERS, Head, Header, parse_decimal};

/// One invocation's details: the `Lambda-Runtime-*` headers of its `/next` response,
/// borrowed from the receive buffer (no copies), and the function's [`Config`].
///
/// Only the request id is always present; every other header is optional (emulators leave
/// some out) and returns `None` when missing or not UTF-8. Values are read (and checked to
/// be UTF-8) only when asked for.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    request_id: &'a str,
    headers: Headers<'a>,
    config: &'a Config,
}

/// Where a [`Context`]'s header values come from.
#[derive(Clone, Copy, Debug)]
enum Headers<'a> {
    /// The `/next` response's head and the buffer it was parsed from.
    Head(&'a Head, &'a [u8]),
    /// Values set with [`Context::with`] (tests).
    Set([Option<&'a str>; HEADERS]),
}

impl<'a> Context<'a> {
    /// A context with this request id and no optional headers, for calling a handler in
    /// tests. Add headers with [`Context::with`].
    pub fn new(request_id: &'a str, config: &'a Config) -> Self {
        Context {
            request_id,
            headers: Headers::Set([None; HEADERS]),
            config,
        }
    }

    /// This context with `header` set to `value` (for tests).
    #[must_use]
    pub fn with(mut self, header: Header, value: &'a str) -> Self {
        let mut values = Header::ALL.map(|header| self.value(header));
        if let Some(slot) = values.get_mut(header as usize) {
            *slot = Some(value);
        }
        self.headers = Headers::Set(values);
        self
    }

    /// Builds the context from a parsed `/next` head and the buffer it was parsed from.
    /// `None` when the request id is missing or not UTF-8.
    pub(crate) fn from_head(buf: &'a [u8], head: &'a Head, config: &'a Config) -> Option<Self> {
        Some(Context {
            request_id: crate::sys::utf8(head.header(Header::RequestId)?.get(buf))?,
            headers: Headers::Head(head, buf),
            config,
        })
    }

    fn value(&self, header: Header) -> Option<&'a str> {
        match self.headers {
            Headers::Head(head, buf) => crate::sys::utf8(head.header(header)?.get(buf)),
            Headers::Set(values) => values.get(header as usize).copied().flatten(),
        }
    }

    /// `Lambda-Runtime-Aws-Request-Id`: the invocation's id, as in the `START` log line.
    pub fn request_id(&self) -> &'a str {
        self.request_id
    }

    /// `Lambda-Runtime-Deadline-Ms`: when the invocation times out, in milliseconds since
    /// the Unix epoch; `None` when missing or not a number.
    pub fn deadline_ms(&self) -> Option<u64> {
        parse_decimal(self.value(Header::DeadlineMs)?.as_bytes())
    }

    /// Milliseconds left before the deadline, 0 once it has passed (emulators may send a
    /// deadline in the past); `None` without a deadline. Reads the clock (no system call on
    /// Linux).
    pub fn remaining_ms(&self) -> Option<u64> {
        let deadline = self.deadline_ms()?;
        Some(deadline.saturating_sub(crate::sys::now_ms()))
    }

    /// `Lambda-Runtime-Invoked-Function-Arn`: the ARN of the function, version or alias
    /// invoked.
    pub fn invoked_function_arn(&self) -> Option<&'a str> {
        self.value(Header::InvokedFunctionArn)
    }

    /// `Lambda-Runtime-Trace-Id`: the X-Ray tracing header (also in `_X_AMZN_TRACE_ID`
    /// while the handler runs).
    pub fn trace_id(&self) -> Option<&'a str> {
        self.value(Header::TraceId)
    }

    /// `Lambda-Runtime-Client-Context`: the mobile SDK's client context, as sent (JSON on
    /// Lambda, base64 under `cargo lambda`).
    pub fn client_context(&self) -> Option<&'a str> {
        self.value(Header::ClientContext)
    }

    /// `Lambda-Runtime-Cognito-Identity`: the Cognito identity JSON, as sent.
    pub fn cognito_identity(&self) -> Option<&'a str> {
        self.value(Header::CognitoIdentity)
    }

    /// `Lambda-Runtime-Aws-Tenant-Id`: the tenant of a tenant-isolated function.
    pub fn tenant_id(&self) -> Option<&'a str> {
        self.value(Header::TenantId)
    }

    /// `Lambda-Runtime-Invocation-Id`: the per-attempt id the runtime echoes on
    /// `/response` and `/error`.
    pub fn invocation_id(&self) -> Option<&'a str> {
        self.value(Header::InvocationId)
    }

    /// `Content-Type` of the event (`application/json` on Lambda).
    pub fn content_type(&self) -> Option<&'a str> {
        self.value(Header::ContentType)
    }

    /// Writes `message` to the function's log at `level`, about this invocation: in JSON
    /// (`AWS_LAMBDA_LOG_FORMAT=JSON`) one object per line with `timestamp`, `level`,
    /// `requestId`, `tenantId` (when the invocation has one) and `message`, which Lambda
    /// filters by level; in text `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage`, the line managed
    /// runtimes write (line breaks in the message become carriage returns, so it stays one
    /// log event). Below `AWS_LAMBDA_LOG_LEVEL` (default `INFO`) nothing is written, read or
    /// allocated.
    ///
    /// Cost: no allocation, no `core::fmt`, one `write` per line of at most 4,096 bytes; a
    /// longer message is written as several lines, each a whole record (see
    /// [`crate::log`]).
    pub fn log(&self, level: crate::Level, message: &str) {
        crate::log_for(level, self.request_id, self.tenant_id(), message);
    }

    /// [`Context::log`] at `TRACE`.
    pub fn trace(&self, message: &str) {
        self.log(crate::Level::Trace, message);
    }

    /// [`Context::log`] at `DEBUG`.
    pub fn debug(&self, message: &str) {
        self.log(crate::Level::Debug, message);
    }

    /// [`Context::log`] at `INFO`.
    pub fn info(&self, message: &str) {
        self.log(crate::Level::Info, message);
    }

    /// [`Context::log`] at `WARN`.
    pub fn warn(&self, message: &str) {
        self.log(crate::Level::Warn, message);
    }

    /// [`Context::log`] at `ERROR`.
    pub fn error(&self, message: &str) {
        self.log(crate::Level::Error, message);
    }

    /// The function's configuration.
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// `AWS_LAMBDA_FUNCTION_NAME` (see [`Config`]).
    pub fn function_name(&self) -> &'a str {
        self.config.function_name()
    }

    /// `AWS_LAMBDA_FUNCTION_VERSION` (see [`Config`]).
    pub fn function_version(&self) -> &'a str {
        self.config.function_version()
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB (see [`Config`]).
    pub fn memory_mb(&self) -> u32 {
        self.config.memory_mb()
    }

    /// `AWS_LAMBDA_LOG_GROUP_NAME` (see [`Config`]).
    pub fn log_group(&self) -> &'a str {
        self.config.log_group()
    }

    /// `AWS_LAMBDA_LOG_STREAM_NAME` (see [`Config`]).
    pub fn log_stream(&self) -> &'a str {
        self.config.log_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Status, parse_head};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn parsed(raw: &[u8]) -> Head {
        match parse_head(raw) {
            Ok(Status::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn context_borrows_every_header_from_the_head() {
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\n\
Lambda-Runtime-Deadline-Ms: 1542409706888\r\nLambda-Runtime-Invoked-Function-Arn: arn:x\r\n\
Lambda-Runtime-Trace-Id: Root=1\r\nLambda-Runtime-Client-Context: {\"c\":1}\r\n\
Lambda-Runtime-Cognito-Identity: {\"i\":2}\r\nLambda-Runtime-Aws-Tenant-Id: t\r\n\
Lambda-Runtime-Invocation-Id: inv\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n";
        let config = Config::default();
        let head = parsed(raw);
        let ctx = Context::from_head(raw, &head, &config).unwrap();
        assert_eq!(ctx.request_id(), "r1");
        assert_eq!(ctx.deadline_ms(), Some(1_542_409_706_888));
        assert_eq!(ctx.remaining_ms(), Some(0), "2018 is in the past");
        assert_eq!(ctx.invoked_function_arn(), Some("arn:x"));
        assert_eq!(ctx.trace_id(), Some("Root=1"));
        assert_eq!(ctx.client_context(), Some("{\"c\":1}"));
        assert_eq!(ctx.cognito_identity(), Some("{\"i\":2}"));
        assert_eq!(ctx.tenant_id(), Some("t"));
        assert_eq!(ctx.invocation_id(), Some("inv"));
        assert_eq!(ctx.content_type(), Some("text/plain"));
        let id_ptr = ctx.request_id().as_ptr() as usize;
        assert!((raw.as_ptr() as usize..raw.as_ptr() as usize + raw.len()).contains(&id_ptr));
    }

    #[test]
    fn missing_optional_headers_are_none() {
        let raw =
            b"HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: r2\r\nContent-Length: 0\r\n\r\n";
        let config = Config::default();
        let head = parsed(raw);
        let ctx = Context::from_head(raw, &head, &config).unwrap();
        assert_eq!(ctx.deadline_ms(), None);
        assert_eq!(ctx.remaining_ms(), None);
        assert_eq!(ctx.invoked_function_arn(), None);
        assert_eq!(ctx.trace_id(), None);
        assert_eq!(ctx.invocation_id(), None);
    }

    #[test]
    fn with_overrides_one_header_and_keeps_the_others() {
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r3\r\n\
Lambda-Runtime-Trace-Id: Root=1\r\nLambda-Runtime-Deadline-Ms: 5\r\nContent-Length: 0\r\n\r\n";
        let config = Config::default();
        let head = parsed(raw);
        let ctx = Context::from_head(raw, &head, &config)
            .unwrap()
            .with(Header::DeadlineMs, "7");
        assert_eq!(
            (ctx.request_id(), ctx.trace_id(), ctx.deadline_ms()),
            ("r3", Some("Root=1"), Some(7))
        );
    }

    #[test]
    fn missing_request_id_gives_no_context() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(Context::from_head(raw, &parsed(raw), &Config::default()).is_none());
    }

    #[test]
    fn cargo_lambda_deadline_in_the_past_leaves_zero_ms() {
        let config = Config::default();
        let ctx = Context::new("r", &config).with(Header::DeadlineMs, "600000");
        assert_eq!(ctx.remaining_ms(), Some(0));
    }

    #[test]
    fn future_deadline_leaves_time() {
        let config = Config::default();
        let soon = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000;
        let soon = soon.to_string();
        let ctx = Context::new("r", &config).with(Header::DeadlineMs, &soon);
        let left = ctx.remaining_ms().unwrap();
        assert!((50_000..=60_000).contains(&left), "{left}");
    }

    #[test]
    fn unparsable_deadline_is_none() {
        let config = Config::default();
        let ctx = Context::new("r", &config).with(Header::DeadlineMs, "soon");
        assert_eq!((ctx.deadline_ms(), ctx.remaining_ms()), (None, None));
    }

    #[test]
    fn non_utf8_optional_header_is_none() {
        let raw = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r\r\n\
Lambda-Runtime-Client-Context: \xff\xfe\r\nContent-Length: 0\r\n\r\n";
        let config = Config::default();
        let head = parsed(raw);
        let ctx = Context::from_head(raw, &head, &config).unwrap();
        assert_eq!(ctx.client_context(), None);
    }
}

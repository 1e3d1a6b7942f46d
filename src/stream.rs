//! Streamed responses: the writer a [`crate::run_streaming`] handler gets.
//!
//! The response is a chunked `POST /response` in `streaming` mode. Its head goes out with
//! the first chunk, so a handler can still choose the content type, or fail into `/error`,
//! until it writes its first byte. Every write is one chunk, sent at once in one `writev`.
//! None of this is linked into a function that only uses [`crate::run`].

// Bytes here go to the network: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::conn::{Conn, Why};
use crate::error::Error;
use crate::json;
use crate::request;

/// The `Content-Type` of a streamed response unless the handler sets one.
pub const DEFAULT_STREAM_CONTENT_TYPE: &str = "application/octet-stream";

/// The `Content-Type` of a function URL response with a status, headers and cookies
/// (see [`Stream::http_response`]).
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// The response of a streaming handler: write to it and each write reaches the caller at
/// once, as one HTTP chunk. Streams may be larger than buffered responses (up to 200 MB on
/// Lambda).
///
/// [`Stream::write_all`] and `write!`/`writeln!` (through [`Stream::write_fmt`]) work with
/// and without std, and `?` turns their [`StreamError`] into an [`Error`]. With the `std`
/// feature a `Stream` is also a `std::io::Write` (wrap it in a `std::io::BufWriter` to send
/// fewer, larger chunks).
///
/// If the handler fails before its first write, the invocation gets a normal `/error`; if
/// it fails after, the stream ends with the error in HTTP trailers
/// (`Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body`, the
/// base64 of the error document), never mixed into the body.
pub struct Stream<'a> {
    conn: &'a mut Conn,
    request_id: &'a str,
    invocation_id: Option<&'a [u8]>,
    content_type: Option<String>,
    started: bool,
    failed: Option<Why>,
    written: u64,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(
        conn: &'a mut Conn,
        request_id: &'a str,
        invocation_id: Option<&'a [u8]>,
    ) -> Self {
        Stream {
            conn,
            request_id,
            invocation_id,
            content_type: None,
            started: false,
            failed: None,
            written: 0,
        }
    }

    /// Sets the response's `Content-Type` (default [`DEFAULT_STREAM_CONTENT_TYPE`]).
    ///
    /// # Errors
    /// [`StreamError::Started`] after the first write, when the head has gone out;
    /// [`StreamError::ControlCharacter`] for a value with control characters (CR or LF
    /// would split the request head).
    pub fn set_content_type(&mut self, content_type: &str) -> Result<(), StreamError> {
        if self.started {
            return Err(StreamError::Started);
        }
        if content_type.bytes().any(|b| b < b' ' || b == 0x7f) {
            return Err(StreamError::ControlCharacter);
        }
        self.content_type = Some(content_type.to_owned());
        Ok(())
    }

    /// Starts a function URL (HTTP integration) response: sets the content type to
    /// [`HTTP_INTEGRATION_CONTENT_TYPE`], writes the JSON prelude with the status code,
    /// headers and cookies as one chunk, then the 8 NUL bytes that end it as another. Write
    /// the body after it.
    ///
    /// # Errors
    /// After the first write, or when the connection fails.
    pub fn http_response(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        cookies: &[&str],
    ) -> Result<(), StreamError> {
        self.set_content_type(HTTP_INTEGRATION_CONTENT_TYPE)?;
        let mut prelude = Vec::new();
        json::push_http_prelude(&mut prelude, status, headers, cookies);
        self.write_all(&prelude)?;
        self.write_all(&[0; 8])
    }

    /// Sends `buf` as one chunk, at once. An empty `buf` sends nothing (an empty chunk would
    /// end the stream).
    ///
    /// # Errors
    /// [`StreamError::Broken`] when the connection to the Runtime API failed; every later
    /// write fails the same way (the runtime reads the server's reply, if one came, after
    /// the handler returns).
    pub fn write_all(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut size = [0u8; 18];
        let line = request::chunk_size_line(buf.len(), &mut size);
        self.send(&[line, buf, b"\r\n"])?;
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Writes formatted text (what `write!` and `writeln!` call), one chunk per piece of
    /// the format. Links `core::fmt`.
    ///
    /// # Errors
    /// As [`Stream::write_all`].
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), StreamError> {
        /// Forwards each piece to the stream, keeping the error `fmt` cannot carry.
        struct Pieces<'s, 'a> {
            stream: &'s mut Stream<'a>,
            error: Option<StreamError>,
        }
        impl fmt::Write for Pieces<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.stream.write_all(s.as_bytes()).map_err(|e| {
                    self.error = Some(e);
                    fmt::Error
                })
            }
        }
        let mut pieces = Pieces {
            stream: self,
            error: None,
        };
        match fmt::write(&mut pieces, args) {
            Ok(()) => Ok(()),
            // A `Display` implementation that failed on its own counts as a broken write.
            Err(fmt::Error) => Err(pieces.error.unwrap_or(StreamError::Broken(0))),
        }
    }

    /// How many body bytes have been sent.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether the response has started (its head has gone out with a first chunk).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Sends `parts` as the next piece of the chunked body, with the head first if the
    /// response has not started.
    fn send(&mut self, parts: &[&[u8]]) -> Result<(), StreamError> {
        if let Some(why) = self.failed {
            return Err(StreamError::from(why));
        }
        if !self.started {
            let content_type = self
                .content_type
                .as_deref()
                .unwrap_or(DEFAULT_STREAM_CONTENT_TYPE);
            self.conn
                .prepare_stream(self.request_id, content_type, self.invocation_id);
        }
        let with_head = !self.started;
        self.started = true;
        self.conn.send_parts(with_head, parts).map_err(|why| {
            self.failed = Some(why);
            StreamError::from(why)
        })
    }

    /// Ends the stream: the last chunk, or, for `error`, the last chunk and the error
    /// trailers. `scratch` is a reused buffer. Starts the response first if nothing was
    /// written (an empty stream). Returns why the connection failed, if it did.
    pub(crate) fn finish(mut self, error: Option<&Error>, scratch: &mut Vec<u8>) -> Option<Why> {
        let result = match error {
            None => self.send(&[b"0\r\n\r\n"]),
            Some(error) => {
                scratch.clear();
                json::push_error(
                    scratch,
                    error.error_type(),
                    request::cut(error.message(), MAX_TRAILER_MESSAGE),
                );
                let mut encoded = Vec::with_capacity(scratch.len() * 4 / 3 + 4);
                json::push_base64(&mut encoded, scratch);
                // The fixed text of the trailer section plus the (cut) error type.
                let mut trailers = vec![0; encoded.len() + request::MAX_ERROR_TYPE + 128];
                match request::write_error_trailers(&mut trailers, error.error_type(), &encoded) {
                    Some(n) => {
                        trailers.truncate(n);
                        self.send(&[&trailers])
                    }
                    None => self.send(&[b"0\r\n\r\n"]),
                }
            }
        };
        result.err().map(|_| self.failed.unwrap_or(Why::Closed))
    }
}

/// Error messages in trailers are cut shorter than in `/error` bodies: header sections are
/// limited in size by servers (Go's default is 1 MiB).
const MAX_TRAILER_MESSAGE: usize = 16 * 1024;

/// Why a [`Stream`] write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The connection to the Runtime API failed, with this OS error number (0 when the
    /// server closed it). The runtime reads the server's reply, if one came (a refusal such
    /// as 410 for an invocation that has timed out), after the handler returns.
    Broken(i32),
    /// The response has started: its content type can no longer be set.
    Started,
    /// A content type cannot hold control characters.
    ControlCharacter,
}

impl StreamError {
    /// What went wrong, in a few words.
    pub const fn as_str(self) -> &'static str {
        match self {
            StreamError::Broken(_) => "the Runtime API connection broke off",
            StreamError::Started => "the response has started: set its content type before writing",
            StreamError::ControlCharacter => "a content type cannot hold control characters",
        }
    }
}

impl From<Why> for StreamError {
    fn from(why: Why) -> Self {
        match why {
            Why::Io(code) => StreamError::Broken(code),
            _ => StreamError::Broken(0),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for StreamError {}

impl From<StreamError> for Error {
    /// A [`crate::DEFAULT_ERROR_TYPE`] error with the stream error's text.
    fn from(error: StreamError) -> Self {
        Error::from(error.as_str())
    }
}

#[cfg(feature = "std")]
impl From<StreamError> for std::io::Error {
    fn from(error: StreamError) -> Self {
        use std::io::ErrorKind;
        match error {
            StreamError::Broken(code) if code != 0 => std::io::Error::from_raw_os_error(code),
            StreamError::Broken(_) => std::io::Error::new(ErrorKind::BrokenPipe, error.as_str()),
            StreamError::Started => std::io::Error::other(error.as_str()),
            StreamError::ControlCharacter => {
                std::io::Error::new(ErrorKind::InvalidInput, error.as_str())
            }
        }
    }
}

/// With std, a stream is a writer like any other: `std::io::copy` into it, or wrap it in a
/// `BufWriter`.
#[cfg(feature = "std")]
impl std::io::Write for Stream<'_> {
    /// Sends `buf` as one chunk, at once (see [`Stream::write_all`]).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Stream::write_all(self, buf)?;
        Ok(buf.len())
    }

    /// Nothing to do: every write has already been sent.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

//! What a caller gets back: an [`Outcome`], and for a streamed response a [`Stream`] that
//! it reads piece by piece.
//!
//! A stream travels through a [`Pipe`]: the Runtime API connection pushes the pieces the
//! runtime sends, the caller takes them, and the sandbox may end it at any moment (its
//! timer, when the deadline passes). The pipe holds at most [`PIPE_BYTES`]: beyond that
//! the runtime waits for the caller; a caller that has gone (or was dropped for not
//! reading) takes nothing more, and what the runtime still sends is thrown away, so a
//! caller can slow a runtime down but never stop it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::json::{base64, error_document, error_type_of, from_base64};

/// The most a stream holds between the runtime and its caller, in bytes.
pub const PIPE_BYTES: usize = 1024 * 1024;

/// What an invocation ended with.
#[derive(Debug)]
pub enum Outcome {
    /// The runtime posted `/response`.
    Response {
        /// The body (empty unless the invocation asked to keep it).
        body: Vec<u8>,
        /// The runtime's `Content-Type`.
        content_type: Option<String>,
        /// From the event being written to the response being read.
        latency: Duration,
    },
    /// The function failed: the runtime posted `/error` or `/runtime/init/error`, or the
    /// emulator failed it (timeout, exit, response too large). The caller sees
    /// `X-Amz-Function-Error: Unhandled` and this document.
    Error {
        /// The error document (JSON).
        document: Vec<u8>,
    },
    /// The runtime has started a streamed response: its pieces follow as they arrive.
    Stream(Stream),
}

impl Outcome {
    /// An emulator-made failure: `error_type` and `message`.
    pub fn error(error_type: &str, message: &str) -> Outcome {
        Outcome::Error {
            document: error_document(error_type, message),
        }
    }
}

/// A streamed response on its way to its caller; dropping it tells the runtime's side that
/// the caller has gone.
#[derive(Debug)]
pub struct Stream {
    /// The runtime's `Content-Type`.
    pub content_type: Option<String>,
    pipe: Arc<Pipe>,
}

impl Stream {
    /// The caller's end of `pipe`.
    pub fn new(content_type: Option<String>, pipe: Arc<Pipe>) -> Stream {
        Stream { content_type, pipe }
    }

    /// The next piece, waiting for it: data as the runtime sent it, then the end.
    pub fn next(&self) -> Piece {
        self.pipe.take()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.pipe.close_reader();
    }
}

/// One piece of a streamed response.
#[derive(Debug)]
pub enum Piece {
    /// Body bytes, as the runtime sent them.
    Data(Vec<u8>),
    /// The end of the stream.
    End(StreamEnd),
}

/// How a streamed response ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEnd {
    /// The error it ended with (the runtime's trailers, or the emulator's), if any.
    pub error: Option<StreamError>,
    /// From the event being written to the end of the stream being read.
    pub latency: Duration,
}

/// An error at the end of a stream, as the trailers `Lambda-Runtime-Function-Error-Type`
/// and `Lambda-Runtime-Function-Error-Body` carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    /// The error type.
    pub error_type: String,
    /// The base64 of the error document, as the runtime sent it.
    pub body: String,
}

impl StreamError {
    /// The error of an emulator-made error `document`.
    pub fn of_document(document: &[u8]) -> StreamError {
        StreamError {
            error_type: error_type_of(document).unwrap_or_else(|| "Runtime.Unknown".into()),
            body: base64(document),
        }
    }

    /// The error of a runtime's trailers: its type, and its body if it sent one (else a
    /// document made of the type, as for an `/error` without a body).
    pub fn of_trailers(error_type: &[u8], body: Option<&[u8]>) -> StreamError {
        let error_type = String::from_utf8_lossy(error_type).into_owned();
        let body = match body {
            Some(body) if !body.is_empty() => String::from_utf8_lossy(body).into_owned(),
            _ => base64(&error_document(&error_type, "")),
        };
        StreamError { error_type, body }
    }

    /// The error document, decoded from the body (the body itself if it is not base64).
    pub fn document(&self) -> Vec<u8> {
        from_base64(self.body.as_bytes()).unwrap_or_else(|| self.body.clone().into_bytes())
    }
}

/// A bounded pipe from the runtime's connection to the caller (see the module docs).
#[derive(Debug, Default)]
pub struct Pipe {
    state: Mutex<PipeState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct PipeState {
    pieces: VecDeque<Vec<u8>>,
    bytes: usize,
    end: Option<StreamEnd>,
    /// The caller has gone.
    reader_gone: bool,
}

impl Pipe {
    /// An empty pipe.
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe::default())
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `data` to the caller, waiting while the pipe is full. False when it is thrown
    /// away instead: the caller has gone, or the stream has already ended.
    pub fn push(&self, data: Vec<u8>) -> bool {
        let mut state = self.lock();
        loop {
            if state.reader_gone || state.end.is_some() {
                return false;
            }
            if state.bytes < PIPE_BYTES || state.pieces.is_empty() {
                break;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.bytes += data.len();
        state.pieces.push_back(data);
        self.changed.notify_all();
        true
    }

    /// Ends the stream with `end`, after the data already in the pipe. Only the first end
    /// counts; whether this one did.
    pub fn end(&self, end: StreamEnd) -> bool {
        let mut state = self.lock();
        if state.end.is_some() {
            return false;
        }
        state.end = Some(end);
        self.changed.notify_all();
        true
    }

    /// The next piece for the caller, waiting for it.
    fn take(&self) -> Piece {
        let mut state = self.lock();
        loop {
            if let Some(data) = state.pieces.pop_front() {
                state.bytes -= data.len();
                self.changed.notify_all();
                return Piece::Data(data);
            }
            if let Some(end) = &state.end {
                return Piece::End(end.clone());
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The caller has gone: what is in the pipe is dropped, and so is anything pushed later.
    fn close_reader(&self) {
        let mut state = self.lock();
        state.reader_gone = true;
        state.pieces.clear();
        state.bytes = 0;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end() -> StreamEnd {
        StreamEnd {
            error: None,
            latency: Duration::from_millis(1),
        }
    }

    #[test]
    fn pieces_come_in_order_then_the_first_end() {
        let pipe = Pipe::new();
        let stream = Stream::new(None, pipe.clone());
        assert!(pipe.push(b"a".to_vec()) && pipe.push(b"b".to_vec()));
        assert!(pipe.end(end()));
        let late = StreamEnd {
            error: Some(StreamError::of_document(b"{}")),
            latency: Duration::ZERO,
        };
        assert!(!pipe.end(late), "only the first end counts");
        assert!(!pipe.push(b"after the end".to_vec()));
        assert!(matches!(stream.next(), Piece::Data(d) if d == b"a"));
        assert!(matches!(stream.next(), Piece::Data(d) if d == b"b"));
        assert!(matches!(stream.next(), Piece::End(e) if e == end()));
    }

    #[test]
    fn a_full_pipe_holds_the_writer_until_the_caller_takes_or_leaves() {
        let pipe = Pipe::new();
        let stream = Stream::new(None, pipe.clone());
        assert!(pipe.push(vec![0; PIPE_BYTES]));
        let writer = {
            let pipe = pipe.clone();
            std::thread::spawn(move || pipe.push(b"waits".to_vec()))
        };
        assert!(matches!(stream.next(), Piece::Data(d) if d.len() == PIPE_BYTES));
        assert!(writer.join().unwrap(), "taken once there was room");
        assert!(pipe.push(vec![0; PIPE_BYTES]));
        let writer = {
            let pipe = pipe.clone();
            std::thread::spawn(move || pipe.push(b"dropped".to_vec()))
        };
        drop(stream);
        assert!(!writer.join().unwrap(), "thrown away once the caller left");
    }

    #[test]
    fn an_end_frees_a_waiting_writer() {
        let pipe = Pipe::new();
        let _stream = Stream::new(None, pipe.clone());
        assert!(pipe.push(vec![0; PIPE_BYTES]));
        let writer = {
            let pipe = pipe.clone();
            std::thread::spawn(move || pipe.push(b"late".to_vec()))
        };
        std::thread::sleep(Duration::from_millis(10));
        assert!(pipe.end(end()));
        assert!(!writer.join().unwrap());
        assert!(!pipe.end(end()), "ended already");
    }
}

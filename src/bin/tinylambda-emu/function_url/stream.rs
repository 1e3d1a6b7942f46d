//! A streamed response on its way to a function URL's caller: the prelude read (when the
//! stream has one), the head sent, then each piece as one chunk the moment it arrives.
//!
//! A stream of type `application/vnd.awslambda.http-integration-response` starts with a
//! JSON prelude and 8 NUL bytes (`runtimes-custom.html`, response streaming; the runtime
//! may send them as one piece or several, and the body may follow in the same piece). The
//! prelude must end within [`MAX_PRELUDE`] bytes; a stream that ends, fails or goes on
//! without one is a malformed response: 502.

use super::response::{UrlResponse, prelude};
use super::{bad_gateway, bodiless, send, start_head};
use crate::http::Conn;
use crate::ids::RequestId;
use crate::sandbox::{Piece, Stream, StreamError};

/// The content type of a stream with a function URL prelude.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// The most a prelude may take before its 8 NUL bytes (the emulator's own bound, the size
/// of the longest request head it reads).
pub const MAX_PRELUDE: usize = 64 * 1024;

/// What the start of a stream gave.
enum Start {
    /// The response head, and the body bytes that came with the prelude.
    Head(UrlResponse, Vec<u8>),
    /// No head can be made: why.
    Malformed(String),
    /// The stream ended with this error before its head.
    Failed(StreamError),
}

/// Sends the streamed response `stream` of invocation `id` (only its head, for `HEAD`);
/// false when the connection is to be closed.
pub fn relay(conn: &mut Conn, id: RequestId, stream: Stream, head_only: bool) -> bool {
    let integration = stream.content_type.as_deref().is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case(HTTP_INTEGRATION)
    });
    let start = if integration {
        read_prelude(&stream)
    } else {
        let content_type = stream
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        Start::Head(
            UrlResponse {
                status: 200,
                headers: vec![("Content-Type".into(), content_type)],
                cookies: Vec::new(),
                body: Vec::new(),
            },
            Vec::new(),
        )
    };
    let (response, first) = match start {
        Start::Head(response, first) => (response, first),
        Start::Malformed(why) => {
            say!(
                "tinylambda-emu: {} function URL: 502, the streamed response is malformed: {why}",
                id.as_str()
            );
            return bad_gateway(conn, id, head_only);
        }
        Start::Failed(error) => {
            say!(
                "tinylambda-emu: {} function URL: 502, the function failed with {}: {}",
                id.as_str(),
                error.error_type,
                String::from_utf8_lossy(&error.document())
            );
            return bad_gateway(conn, id, head_only);
        }
    };
    if head_only || bodiless(response.status) {
        // No body goes out: what the runtime still streams is thrown away.
        return send(conn, id, &response, true);
    }
    start_head(conn, id, &response);
    conn.push_header("Transfer-Encoding", b"chunked");
    if conn.send_head().is_err() || conn.send_chunk(&first).is_err() {
        return false;
    }
    loop {
        match stream.next() {
            Piece::Data(data) => {
                if conn.send_chunk(&data).is_err() {
                    return false; // dropping the stream tells the runtime's side
                }
            }
            Piece::End(end) => match end.error {
                None => return conn.end_chunks(&[]).is_ok(),
                Some(error) => {
                    say!(
                        "tinylambda-emu: {} function URL: the stream failed after its head with {}: the connection is closed without the last chunk",
                        id.as_str(),
                        error.error_type
                    );
                    return false;
                }
            },
        }
    }
}

/// Reads the stream up to the end of its prelude.
fn read_prelude(stream: &Stream) -> Start {
    const DELIMITER: [u8; 8] = [0; 8];
    let mut seen = Vec::new();
    loop {
        match stream.next() {
            Piece::Data(data) => {
                let from = seen.len().saturating_sub(DELIMITER.len() - 1);
                seen.extend_from_slice(&data);
                if let Some(at) = seen[from..]
                    .windows(DELIMITER.len())
                    .position(|w| w == DELIMITER)
                    .map(|i| from + i)
                {
                    if at > MAX_PRELUDE {
                        return Start::Malformed(format!(
                            "the prelude is longer than {MAX_PRELUDE} bytes"
                        ));
                    }
                    return match prelude(&seen[..at]) {
                        Ok(response) => {
                            Start::Head(response, seen[at + DELIMITER.len()..].to_vec())
                        }
                        Err(why) => Start::Malformed(why),
                    };
                }
                if seen.len() > MAX_PRELUDE {
                    return Start::Malformed(format!(
                        "no 8 NUL bytes after a prelude within its first {MAX_PRELUDE} bytes"
                    ));
                }
            }
            Piece::End(end) => {
                return match end.error {
                    Some(error) => Start::Failed(error),
                    None => Start::Malformed(
                        "the stream ended before its prelude and 8 NUL bytes did".into(),
                    ),
                };
            }
        }
    }
}

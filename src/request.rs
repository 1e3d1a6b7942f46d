//! Writing Runtime API request heads into a caller-owned buffer, `core` only.
//!
//! Every request is a head the caller sends followed by an optional body the caller already
//! holds, so the two go out together in one vectored write without copying the body.
//! Nothing here allocates: each function returns the head's length, or `None` when the
//! buffer is too small (grow it and call again).

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

/// The `User-Agent` sent on every request.
pub const USER_AGENT: &str = concat!("tinylambda/", env!("CARGO_PKG_VERSION"));

/// The longest request id accepted from `/next`; real ids are 36-byte UUIDs.
pub const MAX_REQUEST_ID: usize = 256;

/// The longest `Lambda-Runtime-Function-Error-Type` value sent; longer types are cut.
pub const MAX_ERROR_TYPE: usize = 256;

/// Which POST a head is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Post<'a> {
    /// `/runtime/invocation/{id}/response`
    Response(&'a str),
    /// `/runtime/invocation/{id}/error`
    Error(&'a str),
    /// `/runtime/init/error`
    InitError,
}

/// Everything a POST head carries besides the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostHead<'a> {
    /// The endpoint and, for invocations, the request id.
    pub post: Post<'a>,
    /// The `Content-Type` of the body.
    pub content_type: &'a str,
    /// The exact body length.
    pub content_length: usize,
    /// The `Lambda-Runtime-Invocation-Id` to echo, byte for byte, exactly when `/next`
    /// carried one (a header value as parsed: it holds no CR or LF).
    pub invocation_id: Option<&'a [u8]>,
    /// The `Lambda-Runtime-Function-Error-Type`, for errors. Control characters (CR and LF
    /// included) are dropped and it is cut to [`MAX_ERROR_TYPE`] bytes.
    pub error_type: Option<&'a str>,
}

/// Whether `id` is usable as a request id: 1 to [`MAX_REQUEST_ID`] bytes of visible ASCII
/// other than `/`, and not only dots (so it can neither split a header nor change the
/// path: `.` and `..` are path segments a server or proxy may resolve away).
pub fn valid_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id.iter().all(|&b| b.is_ascii_graphic() && b != b'/')
        && id.iter().any(|&b| b != b'.')
}

/// `Host` and `User-Agent` (the authority is argument 1): every request's.
macro_rules! common {
    () => {
        concat!(
            "Host: \x01\r\nUser-Agent: tinylambda/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        )
    };
}

/// Writes `GET {prefix}/2018-06-01/runtime/invocation/next` into `buf`.
pub fn write_next(buf: &mut [u8], prefix: &str, authority: &str) -> Option<usize> {
    let mut w = Cursor::new(buf);
    w.fill(
        concat!(
            "GET \x02/2018-06-01/runtime/invocation/next HTTP/1.1\r\n",
            common!(),
            "\r\n"
        )
        .as_bytes(),
        &[authority.as_bytes(), prefix.as_bytes()],
    );
    w.finish()
}

/// Writes the head of a POST to `/response`, `/error` or `/init/error` into `buf`.
///
/// The request id is percent-encoded where it holds characters that are not plain path
/// characters; check it with [`valid_request_id`] first.
pub fn write_post(
    buf: &mut [u8],
    prefix: &str,
    authority: &str,
    head: &PostHead<'_>,
) -> Option<usize> {
    let mut w = Cursor::new(buf);
    match head.post {
        Post::Response(id) | Post::Error(id) => {
            w.fill(
                b"POST \x01/2018-06-01/runtime/invocation/",
                &[prefix.as_bytes()],
            );
            w.put_path_segment(id.as_bytes());
            w.put(if matches!(head.post, Post::Response(_)) {
                b"/response"
            } else {
                b"/error"
            });
        }
        Post::InitError => w.fill(
            b"POST \x01/2018-06-01/runtime/init/error",
            &[prefix.as_bytes()],
        ),
    }
    w.fill(
        concat!(
            " HTTP/1.1\r\n",
            common!(),
            "Content-Type: \x02\r\nContent-Length: \x03\r\n"
        )
        .as_bytes(),
        &[
            authority.as_bytes(),
            head.content_type.as_bytes(),
            decimal(head.content_length as u64, &mut [0; 20]),
        ],
    );
    if let Some(id) = head.invocation_id {
        w.fill(b"Lambda-Runtime-Invocation-Id: \x01\r\n", &[id]);
    }
    if let Some(error_type) = head.error_type {
        w.put(b"Lambda-Runtime-Function-Error-Type: ");
        w.put_visible(cut(error_type, MAX_ERROR_TYPE));
        w.put(b"\r\n");
    }
    w.put(b"\r\n");
    w.finish()
}

/// The trailers a streamed response may end with, announced in its head.
#[cfg(feature = "streaming")]
pub const STREAM_TRAILERS: &str =
    "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body";

/// Writes the head of a streamed `/response` for `request_id` into `buf`: chunked, in
/// `streaming` mode, announcing the error trailers ([`STREAM_TRAILERS`]). Control
/// characters in `content_type` are dropped (no header can be injected through it).
#[cfg(feature = "streaming")]
pub fn write_stream_head(
    buf: &mut [u8],
    prefix: &str,
    authority: &str,
    request_id: &str,
    content_type: &str,
    invocation_id: Option<&[u8]>,
) -> Option<usize> {
    let mut w = Cursor::new(buf);
    w.fill(
        b"POST \x01/2018-06-01/runtime/invocation/",
        &[prefix.as_bytes()],
    );
    w.put_path_segment(request_id.as_bytes());
    w.fill(
        concat!("/response HTTP/1.1\r\n", common!(), "Content-Type: ").as_bytes(),
        &[authority.as_bytes()],
    );
    w.put_visible(content_type);
    w.fill(
        b"\r\nLambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\nTrailer: \x01\r\n",
        &[STREAM_TRAILERS.as_bytes()],
    );
    if let Some(id) = invocation_id {
        w.fill(b"Lambda-Runtime-Invocation-Id: \x01\r\n", &[id]);
    }
    w.put(b"\r\n");
    w.finish()
}

/// Writes the chunk-size line for a chunk of `len` bytes (`{len:x}\r\n`) and returns it.
#[cfg(feature = "streaming")]
pub fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> &[u8] {
    let mut digits = 0;
    let mut rest = len;
    loop {
        digits += 1;
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    for (i, slot) in out.iter_mut().take(digits).enumerate() {
        *slot = hex(((len >> (4 * (digits - 1 - i))) & 15) as u8);
    }
    crate::bytes::copy(out.get_mut(digits..).unwrap_or_default(), b"\r\n");
    out.get(..digits + 2).unwrap_or_default()
}

/// Writes the end of a streamed response that failed after its first bytes: the last chunk
/// and the trailers `Lambda-Runtime-Function-Error-Type` (control characters dropped, cut
/// to [`MAX_ERROR_TYPE`] bytes) and `Lambda-Runtime-Function-Error-Body` (the base64 of the
/// error document, which the caller passes in).
#[cfg(feature = "streaming")]
pub fn write_error_trailers(
    buf: &mut [u8],
    error_type: &str,
    error_body_base64: &[u8],
) -> Option<usize> {
    let mut w = Cursor::new(buf);
    w.put(b"0\r\nLambda-Runtime-Function-Error-Type: ");
    w.put_visible(cut(error_type, MAX_ERROR_TYPE));
    w.put(b"\r\nLambda-Runtime-Function-Error-Body: ");
    w.put(error_body_base64);
    w.put(b"\r\n\r\n");
    w.finish()
}

/// Writes `POST {prefix}/2020-01-01/extension/register` for an extension called `name`
/// with a JSON body of `body_len` bytes into `buf`.
#[cfg(feature = "graceful-shutdown")]
pub fn write_extension_register(
    buf: &mut [u8],
    prefix: &str,
    authority: &str,
    name: &str,
    body_len: usize,
) -> Option<usize> {
    let mut w = Cursor::new(buf);
    w.fill(
        concat!(
            "POST \x02/2020-01-01/extension/register HTTP/1.1\r\n",
            common!(),
            "Lambda-Extension-Name: \x03\r\nContent-Type: application/json\r\n",
            "Content-Length: \x04\r\n\r\n"
        )
        .as_bytes(),
        &[
            authority.as_bytes(),
            prefix.as_bytes(),
            name.as_bytes(),
            decimal(body_len as u64, &mut [0; 20]),
        ],
    );
    w.finish()
}

/// Writes `GET {prefix}/2020-01-01/extension/event/next` for the extension registered as
/// `identifier` into `buf`.
#[cfg(feature = "graceful-shutdown")]
pub fn write_extension_next(
    buf: &mut [u8],
    prefix: &str,
    authority: &str,
    identifier: &str,
) -> Option<usize> {
    let mut w = Cursor::new(buf);
    w.fill(
        concat!(
            "GET \x02/2020-01-01/extension/event/next HTTP/1.1\r\n",
            common!(),
            "Lambda-Extension-Identifier: \x03\r\n\r\n"
        )
        .as_bytes(),
        &[
            authority.as_bytes(),
            prefix.as_bytes(),
            identifier.as_bytes(),
        ],
    );
    w.finish()
}

/// Writes `n` in decimal at the end of `out` and returns the digits.
pub fn decimal(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut len = 0;
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    out.get(20 - len..).unwrap_or_default()
}

/// The upper-case hex digit for `n` (0 to 15).
pub fn hex(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'A' + n - 10 }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Appends to a fixed buffer and remembers whether anything did not fit.
struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> Cursor<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Cursor {
            buf,
            len: 0,
            overflow: false,
        }
    }

    // Called from many places: one shared copy is much smaller than each inlined.
    #[inline(never)]
    fn put(&mut self, bytes: &[u8]) {
        let copied = crate::bytes::copy(self.buf.get_mut(self.len..).unwrap_or_default(), bytes);
        self.len += copied;
        self.overflow |= copied < bytes.len();
    }

    /// `template` with its `args` (see [`crate::bytes::expand`]).
    #[inline(never)]
    fn fill(&mut self, template: &[u8], args: &[&[u8]]) {
        let (len, whole) = crate::bytes::expand(
            self.buf.get_mut(self.len..).unwrap_or_default(),
            template,
            args,
        );
        self.len += len;
        self.overflow |= !whole;
    }

    /// `text` without its control characters (CR and LF among them), so a header value
    /// taken from elsewhere can neither end its line nor start another header.
    fn put_visible(&mut self, text: &str) {
        for b in text.bytes() {
            if b >= b' ' && b != 0x7f {
                self.put(&[b]);
            }
        }
    }

    /// Writes `segment` with every byte outside RFC 3986 `pchar` (minus `%`) as `%XX`.
    fn put_path_segment(&mut self, segment: &[u8]) {
        for &b in segment {
            let plain = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')'
                )
                || matches!(b, b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@');
            if plain {
                self.put(&[b]);
            } else {
                self.put(&[b'%', hex(b >> 4), hex(b & 15)]);
            }
        }
    }

    fn finish(self) -> Option<usize> {
        if self.overflow { None } else { Some(self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(prefix: &str, authority: &str) -> String {
        let mut buf = [0u8; 512];
        let n = write_next(&mut buf, prefix, authority).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn post(head: PostHead<'_>) -> String {
        let mut buf = [0u8; 1024];
        let n = write_post(&mut buf, "/.rt", "[::1]:9000", &head).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn response(id: &str) -> PostHead<'_> {
        PostHead {
            post: Post::Response(id),
            content_type: "application/json",
            content_length: 17,
            invocation_id: None,
            error_type: None,
        }
    }

    #[test]
    fn next_request_is_a_bare_get_with_host_and_user_agent() {
        assert_eq!(
            next("", "127.0.0.1:9001"),
            format!(
                "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\
                 User-Agent: {USER_AGENT}\r\n\r\n"
            )
        );
    }

    #[test]
    fn next_request_keeps_the_path_prefix() {
        assert!(next("/.rt/_", "[::]:9000").starts_with(
            "GET /.rt/_/2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: [::]:9000\r\n"
        ));
    }

    #[test]
    fn response_head_has_exact_length_and_no_expect() {
        let head = post(response("8476a536-e9f4-11e8-9739-2dfe598c3fcd"));
        assert_eq!(
            head,
            format!(
                "POST /.rt/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response HTTP/1.1\r\n\
                 Host: [::1]:9000\r\nUser-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\n\
                 Content-Length: 17\r\n\r\n"
            )
        );
        assert!(!head.to_ascii_lowercase().contains("expect"));
    }

    #[test]
    fn invocation_id_is_echoed_only_when_given() {
        let with = post(PostHead {
            invocation_id: Some(b"inv-7"),
            ..response("id")
        });
        assert!(with.contains("\r\nLambda-Runtime-Invocation-Id: inv-7\r\n"));
        assert!(!post(response("id")).contains("Invocation-Id"));
    }

    #[test]
    fn error_head_carries_the_error_type_without_line_breaks() {
        let head = post(PostHead {
            post: Post::Error("id"),
            error_type: Some("Function.Bad\r\nX-Injected: 1"),
            ..response("id")
        });
        assert!(head.starts_with("POST /.rt/2018-06-01/runtime/invocation/id/error HTTP/1.1\r\n"));
        assert!(
            head.contains("\r\nLambda-Runtime-Function-Error-Type: Function.BadX-Injected: 1\r\n")
        );
        assert!(!head.contains("\r\nX-Injected"));
    }

    #[test]
    fn long_error_type_is_cut() {
        let long = "Function.".to_string() + &"A".repeat(1000);
        let head = post(PostHead {
            post: Post::Error("id"),
            error_type: Some(&long),
            ..response("id")
        });
        let line = head
            .lines()
            .find(|l| l.starts_with("Lambda-Runtime-Function-Error-Type"))
            .unwrap();
        assert_eq!(
            line.len(),
            "Lambda-Runtime-Function-Error-Type: ".len() + MAX_ERROR_TYPE
        );
    }

    #[test]
    fn init_error_goes_to_the_init_path() {
        let head = post(PostHead {
            post: Post::InitError,
            error_type: Some("Runtime.InitError"),
            ..response("")
        });
        assert!(head.starts_with("POST /.rt/2018-06-01/runtime/init/error HTTP/1.1\r\n"));
    }

    #[test]
    fn unusual_request_id_characters_are_percent_encoded() {
        let head = post(response("a?b#c%d\u{e9}"));
        assert!(
            head.starts_with(
                "POST /.rt/2018-06-01/runtime/invocation/a%3Fb%23c%25d%C3%A9/response "
            )
        );
    }

    #[test]
    fn request_ids_that_could_inject_are_invalid() {
        for bad in [
            &b""[..],
            b"a b",
            b"a\rb",
            b"a\nb",
            b"a/b",
            b"a\x00",
            b"a\x7f",
            b"\t",
            b".",
            b"..",
            b"...",
        ] {
            assert!(!valid_request_id(bad), "{bad:?}");
        }
        assert!(!valid_request_id(&[b'a'; MAX_REQUEST_ID + 1]));
        assert!(valid_request_id(&[b'a'; MAX_REQUEST_ID]));
        assert!(valid_request_id(b"8476a536-e9f4-11e8-9739-2dfe598c3fcd"));
        assert!(valid_request_id(b"a?b#c%d~!@"));
        assert!(
            valid_request_id(b".a."),
            "dots with something else are a name"
        );
        assert!(!valid_request_id("caf\u{e9}".as_bytes()), "not ASCII");
        assert!(!valid_request_id(b"caf\xe9"), "not UTF-8");
    }

    #[test]
    fn small_buffer_reports_overflow_instead_of_panicking() {
        let mut buf = [0u8; 10];
        assert_eq!(write_next(&mut buf, "", "127.0.0.1:9001"), None);
        assert_eq!(write_post(&mut buf, "", "h", &response("id")), None);
        let mut exact = vec![0u8; next("", "h:1").len()];
        assert_eq!(write_next(&mut exact, "", "h:1"), Some(exact.len()));
    }

    #[cfg(feature = "graceful-shutdown")]
    #[test]
    fn extension_requests_name_the_extension_and_its_identifier() {
        let mut buf = [0u8; 512];
        let n =
            write_extension_register(&mut buf, "/.rt", "h:1", "tinylambda-graceful-shutdown", 13)
                .unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!(
                "POST /.rt/2020-01-01/extension/register HTTP/1.1\r\nHost: h:1\r\nUser-Agent: {USER_AGENT}\r\n\
                 Lambda-Extension-Name: tinylambda-graceful-shutdown\r\nContent-Type: application/json\r\n\
                 Content-Length: 13\r\n\r\n"
            )
        );
        let n = write_extension_next(&mut buf, "", "h:1", "0b3b7f2a").unwrap();
        assert!(
            std::str::from_utf8(&buf[..n])
                .unwrap()
                .starts_with("GET /2020-01-01/extension/event/next HTTP/1.1\r\n")
        );
        assert!(
            std::str::from_utf8(&buf[..n])
                .unwrap()
                .ends_with("Lambda-Extension-Identifier: 0b3b7f2a\r\n\r\n")
        );
    }

    #[cfg(feature = "streaming")]
    #[test]
    fn stream_head_is_chunked_streaming_and_announces_the_trailers() {
        let mut buf = [0u8; 1024];
        let n =
            write_stream_head(&mut buf, "/.rt", "h:1", "id-1", "text/plain", Some(b"inv")).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!(
                "POST /.rt/2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nHost: h:1\r\n\
                 User-Agent: {USER_AGENT}\r\nContent-Type: text/plain\r\n\
                 Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\
                 Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\
                 Lambda-Runtime-Invocation-Id: inv\r\n\r\n"
            )
        );
        let n = write_stream_head(&mut buf, "", "h:1", "id", "a/b", None).unwrap();
        assert!(
            !std::str::from_utf8(&buf[..n])
                .unwrap()
                .contains("Invocation-Id")
        );
        assert!(
            !std::str::from_utf8(&buf[..n])
                .unwrap()
                .contains("Content-Length")
        );
        let n = write_stream_head(&mut buf, "", "h:1", "id", "a/b\r\nX-Injected: 1", None).unwrap();
        let head = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            head.contains("Content-Type: a/bX-Injected: 1\r\n"),
            "no header can be injected through the content type: {head}"
        );
    }

    #[cfg(feature = "streaming")]
    #[test]
    fn chunk_size_lines_are_hex() {
        for (len, line) in [
            (0, "0\r\n"),
            (1, "1\r\n"),
            (15, "F\r\n"),
            (16, "10\r\n"),
            (6_291_556, "600064\r\n"),
            (usize::MAX, "FFFFFFFFFFFFFFFF\r\n"),
        ] {
            assert_eq!(chunk_size_line(len, &mut [0; 18]), line.as_bytes(), "{len}");
        }
    }

    #[cfg(feature = "streaming")]
    #[test]
    fn error_trailers_end_the_stream_without_line_breaks_in_values() {
        let mut buf = [0u8; 256];
        let n = write_error_trailers(&mut buf, "Function.Bad\r\nX: y", b"eyJ9").unwrap();
        assert_eq!(
            &buf[..n],
            b"0\r\nLambda-Runtime-Function-Error-Type: Function.BadX: y\r\nLambda-Runtime-Function-Error-Body: eyJ9\r\n\r\n"
        );
    }

    #[test]
    fn cut_respects_character_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn hex_digits_are_upper_case() {
        let all: Vec<u8> = (0..16).map(hex).collect();
        assert_eq!(all, b"0123456789ABCDEF");
    }

    #[test]
    fn decimal_writes_every_magnitude() {
        for n in [0u64, 7, 10, 99, 100, 6_291_556, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}

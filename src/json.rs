//! The error document Lambda expects on `/error` and `/init/error`.
//!
//! `{"errorMessage":"…","errorType":"…","stackTrace":[]}`, written into a reused buffer.
//! Quotes and backslashes are escaped, every control character becomes `\u00XX` (hex in upper case), and all
//! other UTF-8 is kept as it is.

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use alloc::vec::Vec;

/// Appends the Lambda error document for `error_type` and `message` to `out`.
pub fn push_error(out: &mut Vec<u8>, error_type: &str, message: &str) {
    out.extend_from_slice(b"{\"errorMessage\":");
    push_string(out, message);
    out.extend_from_slice(b",\"errorType\":");
    push_string(out, error_type);
    out.extend_from_slice(b",\"stackTrace\":[]}");
}

/// Appends the prelude of an HTTP-integration streamed response (function URLs):
/// `{"statusCode":…,"headers":{…},"cookies":[…]}`.
#[cfg(feature = "streaming")]
pub fn push_http_prelude(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    cookies: &[&str],
) {
    out.extend_from_slice(b"{\"statusCode\":");
    out.extend_from_slice(crate::request::decimal(u64::from(status), &mut [0; 20]));
    out.extend_from_slice(b",\"headers\":{");
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_string(out, name);
        out.push(b':');
        push_string(out, value);
    }
    out.extend_from_slice(b"},\"cookies\":[");
    for (i, cookie) in cookies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_string(out, cookie);
    }
    out.extend_from_slice(b"]}");
}

/// Appends `data` in standard base64 with padding (RFC 4648).
#[cfg(feature = "streaming")]
pub fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| {
        ALPHABET
            .get(((n >> shift) & 63) as usize)
            .copied()
            .unwrap_or(b'=')
    };
    for group in data.chunks(3) {
        let bytes = [group.first(), group.get(1), group.get(2)].map(|b| b.copied().unwrap_or(0));
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if group.len() > 1 { sextet(n, 6) } else { b'=' });
        out.push(if group.len() > 2 { sextet(n, 0) } else { b'=' });
    }
}

/// Appends `s` as a JSON string literal, quotes included (escaped by [`escape_into`]).
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"\"");
    let mut rest = s;
    let mut chunk = [0u8; 256];
    while !rest.is_empty() {
        let (read, written) = escape_into(rest, &mut chunk);
        out.extend_from_slice(chunk.get(..written).unwrap_or_default());
        rest = rest.get(read..).unwrap_or_default();
    }
    out.extend_from_slice(b"\"");
}

/// Writes as much of `s` as fits in `dst`, JSON-escaped (without quotes), whole characters
/// and whole escapes only; returns how many bytes of `s` that took and how many it wrote.
/// Quotes and backslashes get a backslash, every control character becomes `\u00XX` (hex in
/// upper case), all other UTF-8 is kept as it is. `dst` needs 6 bytes for any progress.
pub fn escape_into(s: &str, dst: &mut [u8]) -> (usize, usize) {
    use crate::request::hex;
    let src = s.as_bytes();
    let (mut read, mut written) = (0, 0);
    while let Some(&b) = src.get(read) {
        let escaped = [b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 15)];
        let (out, len): (&[u8], usize) = match b {
            b'"' | b'\\' => (&[b'\\', b][..], 1),
            0..=0x1f => (&escaped[..], 1),
            // A character's first byte says how long it is (`s` is UTF-8).
            _ => {
                let len = match b {
                    0xf0.. => 4,
                    0xe0.. => 3,
                    0xc0.. => 2,
                    _ => 1,
                };
                (src.get(read..read + len).unwrap_or_default(), len)
            }
        };
        let Some(slot) = dst.get_mut(written..written + out.len()) else {
            break;
        };
        crate::bytes::copy(slot, out);
        written += out.len();
        read += len;
    }
    (read, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(error_type: &str, message: &str) -> String {
        let mut out = Vec::new();
        push_error(&mut out, error_type, message);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn error_document_has_the_three_fields_in_order() {
        assert_eq!(
            error("Function.Error", "boom"),
            r#"{"errorMessage":"boom","errorType":"Function.Error","stackTrace":[]}"#
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(
            error("T", r#"a "b" \c\"#),
            r#"{"errorMessage":"a \"b\" \\c\\","errorType":"T","stackTrace":[]}"#
        );
    }

    #[test]
    fn control_characters_become_unicode_escapes() {
        assert_eq!(
            error("T", "l1\nl2\r\t\u{0}\u{1f}\u{7f}"),
            "{\"errorMessage\":\"l1\\u000Al2\\u000D\\u0009\\u0000\\u001F\u{7f}\",\"errorType\":\"T\",\"stackTrace\":[]}"
        );
    }

    #[test]
    fn utf8_is_kept_as_is() {
        assert_eq!(
            error("Function.Fehler", "Größe ≠ 日本 🦀"),
            "{\"errorMessage\":\"Größe ≠ 日本 🦀\",\"errorType\":\"Function.Fehler\",\"stackTrace\":[]}"
        );
    }

    #[cfg(feature = "streaming")]
    #[test]
    fn http_prelude_is_the_json_function_urls_expect() {
        let mut out = Vec::new();
        push_http_prelude(
            &mut out,
            201,
            &[("content-type", "text/html"), ("x-a", "\"q\"")],
            &["a=1", "b=2; Secure"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"statusCode":201,"headers":{"content-type":"text/html","x-a":"\"q\""},"cookies":["a=1","b=2; Secure"]}"#
        );
        let mut empty = Vec::new();
        push_http_prelude(&mut empty, 200, &[], &[]);
        assert_eq!(empty, br#"{"statusCode":200,"headers":{},"cookies":[]}"#);
    }

    #[cfg(feature = "streaming")]
    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            push_base64(&mut out, input.as_bytes());
            assert_eq!(out, encoded.as_bytes(), "{input:?}");
        }
        let mut out = Vec::new();
        push_base64(&mut out, &[0xff, 0xfe, 0xfd, 0x00]);
        assert_eq!(out, b"//79AA==");
    }

    #[test]
    fn empty_strings_are_empty_literals() {
        assert_eq!(
            error("", ""),
            r#"{"errorMessage":"","errorType":"","stackTrace":[]}"#
        );
    }

    #[test]
    fn error_type_is_escaped_too() {
        assert_eq!(
            error("a\"b\n", "m"),
            r#"{"errorMessage":"m","errorType":"a\"b\u000A","stackTrace":[]}"#
        );
    }
}

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

/// Appends the Lambda error document for `error_type` and `message` to `out`.
pub fn push_error(out: &mut Vec<u8>, error_type: &str, message: &str) {
    out.extend_from_slice(b"{\"errorMessage\":");
    push_string(out, message);
    out.extend_from_slice(b",\"errorType\":");
    push_string(out, error_type);
    out.extend_from_slice(b",\"stackTrace\":[]}");
}

/// Appends `s` as a JSON string literal, quotes included.
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    use crate::request::hex;
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < b' ')
    {
        let (plain, special) = rest.split_at_checked(i).unwrap_or_default();
        out.extend_from_slice(plain);
        let Some((&b, tail)) = special.split_first() else {
            break;
        };
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 15)]),
        }
        rest = tail;
    }
    out.extend_from_slice(rest);
    out.push(b'"');
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

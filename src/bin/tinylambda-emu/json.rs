//! The little JSON the emulator writes: error documents and a flat object of numbers.

/// `{"errorMessage":…,"errorType":…}`, the shape of Lambda's and the Runtime API's errors.
pub fn error_document(error_type: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + error_type.len() + 32);
    out.extend_from_slice(b"{\"errorMessage\":");
    push_string(&mut out, message);
    out.extend_from_slice(b",\"errorType\":");
    push_string(&mut out, error_type);
    out.push(b'}');
    out
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped.
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The value of `"errorType"` in a JSON error document, if it is a plain string (enough to
/// name an error in a log line; not a general JSON parser).
pub fn error_type_of(document: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(document).ok()?;
    let after = &text[text.find("\"errorType\"")? + "\"errorType\"".len()..];
    let value = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = value.find(['"', '\\'])?;
    Some(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_escape_what_json_requires() {
        let doc = error_document("Function.Bad", "a \"quoted\"\\ line\nand\u{1}");
        assert_eq!(
            String::from_utf8(doc).unwrap(),
            r#"{"errorMessage":"a \"quoted\"\\ line\nand\u0001","errorType":"Function.Bad"}"#
        );
    }

    #[test]
    fn error_type_is_found_in_documents() {
        assert_eq!(
            error_type_of(br#"{"errorMessage":"x","errorType" : "Runtime.ExitError"}"#),
            Some("Runtime.ExitError")
        );
        assert_eq!(error_type_of(b"not json"), None);
    }
}

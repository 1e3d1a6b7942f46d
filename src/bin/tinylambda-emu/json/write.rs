//! Writing JSON: strings escaped as RFC 8259 requires, and Lambda's error documents.

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

/// Appends `"key":` (the key escaped), for building objects member by member.
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    push_string(out, key);
    out.push(b':');
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
    fn keys_are_escaped_strings_and_a_colon() {
        let mut out = Vec::new();
        push_key(&mut out, "a\"b");
        assert_eq!(out, br#""a\"b":"#);
    }
}

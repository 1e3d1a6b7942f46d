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

/// Appends `s` as a JSON string: the library's escaping (quotes, backslashes and control
/// characters escaped), the one the runtime writes its error documents with.
pub use tinylambda::json::push_string;

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
            r#"{"errorMessage":"a \"quoted\"\\ line\u000Aand\u0001","errorType":"Function.Bad"}"#
        );
    }

    #[test]
    fn keys_are_escaped_strings_and_a_colon() {
        let mut out = Vec::new();
        push_key(&mut out, "a\"b");
        assert_eq!(out, br#""a\"b":"#);
    }
}

//! The little JSON the emulator writes and reads: error documents, flat objects, the
//! `"events"` list of an extension's registration, whether a client context is a JSON
//! object, and the base64 that carries error documents in stream trailers and client
//! contexts in headers.

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

/// Whether `text` is one JSON object (RFC 8259), whitespace around it allowed: what Lambda
/// accepts as a client context. Nesting deeper than 64 levels is refused.
pub fn is_object(text: &[u8]) -> bool {
    let mut at = skip_space(text, 0);
    if text.get(at) != Some(&b'{') {
        return false;
    }
    match value(text, at, 0) {
        Some(end) => {
            at = skip_space(text, end);
            at == text.len()
        }
        None => false,
    }
}

/// The most nested arrays and objects [`is_object`] follows.
const MAX_DEPTH: usize = 64;

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while matches!(text.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The end of the JSON value at `at` (after leading whitespace), if it is one.
fn value(text: &[u8], at: usize, depth: usize) -> Option<usize> {
    let at = skip_space(text, at);
    match *text.get(at)? {
        b'{' => container(text, at, depth, b'}', true),
        b'[' => container(text, at, depth, b']', false),
        b'"' => string(text, at),
        b't' => literal(text, at, b"true"),
        b'f' => literal(text, at, b"false"),
        b'n' => literal(text, at, b"null"),
        b'-' | b'0'..=b'9' => number(text, at),
        _ => None,
    }
}

/// An object (`keyed`) or an array starting at `at`, ending with `close`.
fn container(text: &[u8], at: usize, depth: usize, close: u8, keyed: bool) -> Option<usize> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let mut at = skip_space(text, at + 1);
    if text.get(at) == Some(&close) {
        return Some(at + 1);
    }
    loop {
        if keyed {
            at = string(text, at)?;
            at = skip_space(text, at);
            if text.get(at) != Some(&b':') {
                return None;
            }
            at += 1;
        }
        at = skip_space(text, value(text, at, depth + 1)?);
        match text.get(at)? {
            b',' => at = skip_space(text, at + 1),
            &c if c == close => return Some(at + 1),
            _ => return None,
        }
    }
}

/// A string starting at `at` (its opening quote): escapes checked, no raw control
/// characters.
fn string(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let mut at = at + 1;
    loop {
        match *text.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => {
                at += 1;
                match *text.get(at)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 1,
                    b'u' => {
                        let hex = text.get(at + 1..at + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        at += 5;
                    }
                    _ => return None,
                }
            }
            0..=0x1f => return None,
            _ => at += 1,
        }
    }
}

fn literal(text: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    text.get(at..at + word.len())
        .filter(|w| *w == word)
        .map(|_| at + word.len())
}

/// A number, as RFC 8259 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number(text: &[u8], at: usize) -> Option<usize> {
    let digits = |mut at: usize| {
        let start = at;
        while text.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        (at > start).then_some(at)
    };
    let mut at = at;
    if text.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match text.get(at)? {
        b'0' => at + 1,
        b'1'..=b'9' => digits(at)?,
        _ => return None,
    };
    if text.get(at) == Some(&b'.') {
        at = digits(at + 1)?;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        at = digits(at)?;
    }
    Some(at)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` for any other character.
pub fn from_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in encoded.iter().take_while(|&&c| c != b'=') {
        let v = BASE64.iter().position(|&d| d == c)?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The strings of the array `"key": [...]` in a JSON object (enough for an extension's
/// `{"events":["INVOKE","SHUTDOWN"]}`; strings with escapes are refused). `Ok(None)` when
/// the key is absent; `Err` when the document or the array is malformed.
pub fn string_array(document: &[u8], key: &str) -> Result<Option<Vec<String>>, &'static str> {
    let text = std::str::from_utf8(document).map_err(|_| "the body is not UTF-8")?;
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return Err("the body is not a JSON object");
    }
    let quoted = format!("\"{key}\"");
    let Some(at) = text.find(&quoted) else {
        return Ok(None);
    };
    let after = text[at + quoted.len()..].trim_start();
    let mut rest = after
        .strip_prefix(':')
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('['))
        .ok_or("the value is not an array")?
        .trim_start();
    let mut items = Vec::new();
    loop {
        if rest.starts_with(']') {
            return Ok(Some(items));
        }
        let body = rest.strip_prefix('"').ok_or("an item is not a string")?;
        let end = body.find(['"', '\\']).ok_or("an unterminated string")?;
        if body[end..].starts_with('\\') {
            return Err("an item has an escape");
        }
        items.push(body[..end].to_owned());
        rest = body[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.starts_with(']') {
            return Err("items are not separated by commas");
        }
    }
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

    #[test]
    fn base64_round_trips_with_padding() {
        for (plain, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"{\"errorType\":\"x\"}", "eyJlcnJvclR5cGUiOiJ4In0="),
        ] {
            assert_eq!(base64(plain), encoded);
            assert_eq!(from_base64(encoded.as_bytes()).as_deref(), Some(plain));
        }
        assert_eq!(from_base64(b"Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(from_base64(b"not base64!"), None);
    }

    #[test]
    fn only_json_objects_are_objects() {
        for object in [
            &b"{}"[..],
            b" {\r\n} \n",
            br#"{"custom":{"k":"v"},"env":{"a":[1,-2.5e3,true,false,null,"\u00e9\n"]}}"#,
            br#"{"a":0,"b":-0.0,"c":1E+2}"#,
        ] {
            assert!(is_object(object), "{}", String::from_utf8_lossy(object));
        }
        for not in [
            &b""[..],
            b"[]",
            b"\"x\"",
            b"1",
            b"{}\r\nLambda-Runtime-Aws-Request-Id: injected",
            b"{} {}",
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":01}",
            b"{\"a\":1,}",
            b"{a:1}",
            b"{\"a\":\"raw\nline\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":tru}",
        ] {
            assert!(!is_object(not), "{}", String::from_utf8_lossy(not));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(!is_object(deep.as_bytes()), "too deep");
    }

    #[test]
    fn event_lists_are_read_from_registrations() {
        assert_eq!(
            string_array(br#"{"events": ["INVOKE" , "SHUTDOWN"]}"#, "events"),
            Ok(Some(vec!["INVOKE".into(), "SHUTDOWN".into()]))
        );
        assert_eq!(
            string_array(br#"{"events":[]}"#, "events"),
            Ok(Some(vec![]))
        );
        assert_eq!(string_array(b"{}", "events"), Ok(None));
        assert!(string_array(b"events", "events").is_err());
        assert!(string_array(br#"{"events":"INVOKE"}"#, "events").is_err());
        assert!(string_array(br#"{"events":["A" "B"]}"#, "events").is_err());
    }
}

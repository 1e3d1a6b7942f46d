//! The Lambda error document (`json::push_error`, `json::push_string`) and the other places an
//! error type or request id reaches the wire, on arbitrary strings.
//!
//! The input is split at its first 0xFF byte (never part of UTF-8) into the error type and
//! the message, each read as UTF-8 with invalid sequences replaced; without a 0xFF byte the
//! type is empty and the whole input is the message.
//!
//! Properties:
//! - `push_error` appends (what was in the buffer stays) a document that a strict RFC 8259
//!   parser (below: no trailing commas, no raw control characters, valid escapes and
//!   surrogate pairs, valid UTF-8) reads as exactly
//!   `{"errorMessage": message, "errorType": error_type, "stackTrace": []}`, with both
//!   strings recovered exactly; its length is at most 6 bytes per input byte plus the
//!   fixed skeleton;
//! - `push_string` alone gives a JSON string literal of exactly the input;
//! - the `/error` POST head with that error type and a request id made from the message is
//!   well formed: CRLF lines only, no control characters, the error type without controls and
//!   cut to `MAX_ERROR_TYPE` bytes at a character boundary, and a request target whose
//!   percent-decoding gives back the request id;

use tinylambda::json::{push_error, push_string};
use tinylambda::request::{
    MAX_ERROR_TYPE, MAX_REQUEST_ID, Post, PostHead, valid_request_id, write_post,
};

/// A JSON value, as the strict parser reads it. Object members keep their order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Splits the fuzz input into (error type, message).
pub fn split_input(data: &[u8]) -> (String, String) {
    match data.iter().position(|&b| b == 0xff) {
        Some(at) => (
            String::from_utf8_lossy(&data[..at]).into_owned(),
            String::from_utf8_lossy(&data[at + 1..]).into_owned(),
        ),
        None => (String::new(), String::from_utf8_lossy(data).into_owned()),
    }
}

/// Checks every property on the input and returns the error document.
pub fn check(data: &[u8]) -> Vec<u8> {
    let (error_type, message) = split_input(data);
    check_document(&error_type, &message)
}

/// The properties of the error document for `error_type` and `message`; returns it.
pub fn check_document(error_type: &str, message: &str) -> Vec<u8> {
    let before = b"{\"previous\":1}\n";
    let mut out = before.to_vec();
    push_error(&mut out, error_type, message);
    assert_eq!(
        &out[..before.len()],
        before,
        "push_error changed the buffer"
    );
    let doc = out.split_off(before.len());
    let expected = Json::Object(vec![
        ("errorMessage".into(), Json::String(message.into())),
        ("errorType".into(), Json::String(error_type.into())),
        ("stackTrace".into(), Json::Array(Vec::new())),
    ]);
    assert_eq!(parse(&doc), Ok(expected), "document {doc:?}");
    let skeleton = br#"{"errorMessage":"","errorType":"","stackTrace":[]}"#.len();
    assert!(doc.len() <= skeleton + 6 * (error_type.len() + message.len()));

    for s in [error_type, message] {
        let mut literal = Vec::new();
        push_string(&mut literal, s);
        assert_eq!(parse(&literal), Ok(Json::String(s.into())), "{literal:?}");
    }

    check_post_head(error_type, message, doc.len());
    doc
}

/// The error type as it must appear in a header: controls dropped, cut to
/// `MAX_ERROR_TYPE` bytes at a character boundary first.
fn header_value(error_type: &str) -> Vec<u8> {
    let mut end = error_type.len().min(MAX_ERROR_TYPE);
    while !error_type.is_char_boundary(end) {
        end -= 1;
    }
    error_type.as_bytes()[..end]
        .iter()
        .copied()
        .filter(|&b| b >= b' ' && b != 0x7f)
        .collect()
}

/// Checks the `/error` POST head for `error_type`, with a request id made from `message`.
fn check_post_head(error_type: &str, message: &str, content_length: usize) {
    let mut id: String = message
        .chars()
        .filter(|&c| c.is_ascii_graphic() && c != '/')
        .take(MAX_REQUEST_ID)
        .collect();
    if id.is_empty() {
        id.push('0');
    }
    assert!(valid_request_id(id.as_bytes()), "{id:?}");
    let head = PostHead {
        post: Post::Error(&id),
        content_type: "application/json",
        content_length,
        invocation_id: None,
        error_type: Some(error_type),
    };
    let mut buf = vec![0; 1024 + 3 * id.len() + error_type.len()];
    let len = write_post(&mut buf, "/.rt", "127.0.0.1:9001", &head).expect("buffer large enough");
    let raw = &buf[..len];
    let lines = crlf_lines(raw);

    let request_line: Vec<&[u8]> = lines[0].split(|&b| b == b' ').collect();
    assert_eq!(request_line.len(), 3, "request line {:?}", lines[0]);
    let target = request_line[1];
    let segment = target
        .strip_prefix(b"/.rt/2018-06-01/runtime/invocation/")
        .and_then(|t| t.strip_suffix(b"/error"))
        .unwrap_or_else(|| panic!("target {target:?}"));
    assert_eq!(percent_decode(segment), id.as_bytes(), "path segment");

    let name = b"Lambda-Runtime-Function-Error-Type: ";
    let values: Vec<&[u8]> = lines
        .iter()
        .filter_map(|line| line.strip_prefix(&name[..]))
        .collect();
    assert_eq!(values, [&header_value(error_type)[..]], "error type header");
    let length = format!("Content-Length: {content_length}");
    assert!(lines.contains(&length.as_bytes()), "{raw:?}");
}

/// The lines of a head that ends in a blank line, asserting CRLF line ends and no control
/// characters.
fn crlf_lines(raw: &[u8]) -> Vec<&[u8]> {
    let mut rest = raw
        .strip_suffix(b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank line at the end of {raw:?}"));
    let mut lines = Vec::new();
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let line = rest[..nl]
            .strip_suffix(b"\r")
            .unwrap_or_else(|| panic!("bare LF in {raw:?}"));
        lines.push(line);
        rest = &rest[nl + 1..];
    }
    lines.push(rest);
    for line in &lines {
        assert!(
            line.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)),
            "control character in {line:?}"
        );
    }
    lines
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(&s[i + 1..i + 3]).expect("two hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Parses `bytes` as one JSON text (RFC 8259), strictly: valid UTF-8, no trailing data.
///
/// # Errors
/// A description of the first thing that is not JSON.
pub fn parse(bytes: &[u8]) -> Result<Json, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut p = Parser { s: bytes, pos: 0 };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != bytes.len() {
        return Err(format!("trailing data at {}", p.pos));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<u8, String> {
        let b = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(b)
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        match self.next()? {
            got if got == b => Ok(()),
            got => Err(format!(
                "expected {:?}, got {:?} at {}",
                b as char,
                got as char,
                self.pos - 1
            )),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 128 {
            return Err("nested too deeply".into());
        }
        match self.peek().ok_or("unexpected end")? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Json::String),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            b => Err(format!("unexpected {:?} at {}", b as char, self.pos)),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at {}", self.pos))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(format!("bad number at {start}")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(format!("bad exponent at {start}"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?;
        Ok(Json::Number(text.to_owned()))
    }

    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.next()? {
                b',' => {}
                b']' => return Ok(Json::Array(items)),
                b => return Err(format!("unexpected {:?} in array", b as char)),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            members.push((key, self.value(depth + 1)?));
            self.skip_ws();
            match self.next()? {
                b',' => {}
                b'}' => return Ok(Json::Object(members)),
                b => return Err(format!("unexpected {:?} in object", b as char)),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or("short \\u escape")?;
        let text = std::str::from_utf8(digits).map_err(|e| e.to_string())?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("bad \\u escape at {}", self.pos));
        }
        self.pos += 4;
        u32::from_str_radix(text, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            // Unescaped text runs to the next quote, backslash or control character.
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            // The input is valid UTF-8 and the run ends at an ASCII byte: a whole string.
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?);
            match self.next()? {
                b'"' => return Ok(out),
                b'\\' => {}
                b => return Err(format!("raw control character {b:#04x} in a string")),
            }
            let c = match self.next()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let unit = self.hex4()?;
                    let code = match unit {
                        0xd800..=0xdbff => {
                            if !self.s[self.pos..].starts_with(b"\\u") {
                                return Err("lone high surrogate".into());
                            }
                            self.pos += 2;
                            let low = self.hex4()?;
                            if !(0xdc00..=0xdfff).contains(&low) {
                                return Err("high surrogate without low".into());
                            }
                            0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                        }
                        0xdc00..=0xdfff => return Err("lone low surrogate".into()),
                        _ => unit,
                    };
                    char::from_u32(code).ok_or("invalid code point")?
                }
                b => return Err(format!("bad escape \\{}", b as char)),
            };
            out.push(c);
        }
    }
}

//! Reading JSON strictly: RFC 8259 and nothing more. The text is UTF-8; no comments,
//! trailing commas, leading zeros, raw control characters in strings or lone surrogate
//! escapes; nothing but whitespace around the value.
//!
//! [`validate`] and [`members`] walk a text of any size and nesting without recursion (a
//! 6 MiB payload of `[` costs a 6 MiB stack of bytes on the heap, never the thread's
//! stack). [`Value::parse`] builds a tree, for the small values the emulator reads (a
//! function URL response's `headers`, `cookies` and `body`, a stream's prelude), and
//! refuses nesting deeper than [`MAX_DEPTH`].

use std::fmt;
use std::ops::Range;

/// The deepest nesting [`Value::parse`] follows.
pub const MAX_DEPTH: usize = 128;

/// An object's members: each name (decoded) and the range of its value's text, in order.
pub type Members = Vec<(String, Range<usize>)>;

/// Why a text is not JSON, and at which byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The byte offset where reading stopped.
    pub at: usize,
    /// What was wrong there.
    pub why: &'static str,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.why, self.at)
    }
}

fn invalid(at: usize, why: &'static str) -> Invalid {
    Invalid { at, why }
}

/// Checks that `text` is exactly one JSON value, with only whitespace around it.
pub fn validate(text: &[u8]) -> Result<(), Invalid> {
    utf8(text)?;
    let end = skip_value(text, 0)?;
    end_of_text(text, end)
}

/// The members of the JSON object `text`: each name (decoded) and the range of its value's
/// text, in order. `Ok(None)` when `text` is JSON but not an object; `Err` when it is not
/// JSON.
pub fn members(text: &[u8]) -> Result<Option<Members>, Invalid> {
    utf8(text)?;
    let mut at = space(text, 0);
    if text.get(at) != Some(&b'{') {
        let end = skip_value(text, at)?;
        end_of_text(text, end)?;
        return Ok(None);
    }
    let mut members = Vec::new();
    at = space(text, at + 1);
    if text.get(at) == Some(&b'}') {
        end_of_text(text, at + 1)?;
        return Ok(Some(members));
    }
    loop {
        let key_end = string_end(text, at)?;
        let name = decode_string(text, at, key_end)?;
        at = colon(text, key_end)?;
        let start = space(text, at);
        let end = skip_value(text, start)?;
        members.push((name, start..end));
        at = space(text, end);
        match text.get(at) {
            Some(b',') => at = space(text, at + 1),
            Some(b'}') => {
                end_of_text(text, at + 1)?;
                return Ok(Some(members));
            }
            Some(_) => return Err(invalid(at, "expected , or }")),
            None => return Err(invalid(at, "the text ends inside an object")),
        }
    }
}

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written (checked against the grammar).
    Number(String),
    /// A string, decoded.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object's members, in order (a repeated name appears twice).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// Parses `text` as exactly one JSON value, nested at most [`MAX_DEPTH`] deep.
    pub fn parse(text: &[u8]) -> Result<Value, Invalid> {
        utf8(text)?;
        let (value, end) = parse_value(text, space(text, 0), 0)?;
        end_of_text(text, end)?;
        Ok(value)
    }

    /// The value of member `name` of an object (the last one, when the name repeats, as
    /// JavaScript and Jackson read it).
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(n, _)| n == name).map(|m| &m.1),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a whole number without fraction or exponent that fits a
    /// `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

fn parse_value(text: &[u8], at: usize, depth: usize) -> Result<(Value, usize), Invalid> {
    let container = |close: u8| -> Result<(Value, usize), Invalid> {
        if depth >= MAX_DEPTH {
            return Err(invalid(at, "nested too deeply"));
        }
        let keyed = close == b'}';
        let mut items = Vec::new();
        let mut members = Vec::new();
        let mut at = space(text, at + 1);
        if text.get(at) == Some(&close) {
            at += 1;
        } else {
            loop {
                let name = if keyed {
                    let key_end = string_end(text, at)?;
                    let name = decode_string(text, at, key_end)?;
                    at = space(text, colon(text, key_end)?);
                    Some(name)
                } else {
                    None
                };
                let (value, end) = parse_value(text, at, depth + 1)?;
                match name {
                    Some(name) => members.push((name, value)),
                    None => items.push(value),
                }
                at = space(text, end);
                match text.get(at) {
                    Some(b',') => at = space(text, at + 1),
                    Some(&c) if c == close => {
                        at += 1;
                        break;
                    }
                    Some(_) if keyed => return Err(invalid(at, "expected , or }")),
                    Some(_) => return Err(invalid(at, "expected , or ]")),
                    None => return Err(invalid(at, "the text ends inside a container")),
                }
            }
        }
        Ok(if keyed {
            (Value::Object(members), at)
        } else {
            (Value::Array(items), at)
        })
    };
    match text.get(at) {
        Some(b'{') => container(b'}'),
        Some(b'[') => container(b']'),
        Some(b'"') => {
            let end = string_end(text, at)?;
            Ok((Value::String(decode_string(text, at, end)?), end))
        }
        Some(b't') => Ok((Value::Bool(true), literal(text, at, b"true")?)),
        Some(b'f') => Ok((Value::Bool(false), literal(text, at, b"false")?)),
        Some(b'n') => Ok((Value::Null, literal(text, at, b"null")?)),
        Some(b'-' | b'0'..=b'9') => {
            let end = number_end(text, at)?;
            let number = String::from_utf8_lossy(&text[at..end]).into_owned();
            Ok((Value::Number(number), end))
        }
        Some(_) => Err(invalid(at, "expected a value")),
        None => Err(invalid(at, "the text ends where a value should be")),
    }
}

fn utf8(text: &[u8]) -> Result<(), Invalid> {
    std::str::from_utf8(text)
        .map(drop)
        .map_err(|e| invalid(e.valid_up_to(), "not UTF-8"))
}

fn end_of_text(text: &[u8], end: usize) -> Result<(), Invalid> {
    let end = space(text, end);
    if end == text.len() {
        Ok(())
    } else {
        Err(invalid(end, "text after the value"))
    }
}

fn space(text: &[u8], mut at: usize) -> usize {
    while matches!(text.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// After an object's key ending at `at`: the whitespace and the colon; returns the
/// position after the colon.
fn colon(text: &[u8], at: usize) -> Result<usize, Invalid> {
    let at = space(text, at);
    if text.get(at) == Some(&b':') {
        Ok(at + 1)
    } else {
        Err(invalid(at, "expected : after a name"))
    }
}

/// The end of the value starting at `at` (after whitespace), walking nested containers
/// with a stack of their kinds instead of recursion.
fn skip_value(text: &[u8], at: usize) -> Result<usize, Invalid> {
    // true: an object, false: an array.
    let mut open: Vec<bool> = Vec::new();
    let mut at = space(text, at);
    loop {
        // A value starts at `at`.
        match text.get(at) {
            Some(b'{') => {
                at = space(text, at + 1);
                if text.get(at) == Some(&b'}') {
                    at += 1;
                } else {
                    open.push(true);
                    at = space(text, colon(text, string_end(text, at)?)?);
                    continue;
                }
            }
            Some(b'[') => {
                at = space(text, at + 1);
                if text.get(at) == Some(&b']') {
                    at += 1;
                } else {
                    open.push(false);
                    continue;
                }
            }
            Some(b'"') => at = string_end(text, at)?,
            Some(b't') => at = literal(text, at, b"true")?,
            Some(b'f') => at = literal(text, at, b"false")?,
            Some(b'n') => at = literal(text, at, b"null")?,
            Some(b'-' | b'0'..=b'9') => at = number_end(text, at)?,
            Some(_) => return Err(invalid(at, "expected a value")),
            None => return Err(invalid(at, "the text ends where a value should be")),
        }
        // A value ended at `at`: close what it ends, or go on to the next one.
        loop {
            let Some(&object) = open.last() else {
                return Ok(at);
            };
            at = space(text, at);
            match text.get(at) {
                Some(b',') => {
                    at = space(text, at + 1);
                    if object {
                        at = space(text, colon(text, string_end(text, at)?)?);
                    }
                    break;
                }
                Some(b'}') if object => {
                    open.pop();
                    at += 1;
                }
                Some(b']') if !object => {
                    open.pop();
                    at += 1;
                }
                Some(_) if object => return Err(invalid(at, "expected , or }")),
                Some(_) => return Err(invalid(at, "expected , or ]")),
                None => return Err(invalid(at, "the text ends inside a container")),
            }
        }
    }
}

fn literal(text: &[u8], at: usize, word: &[u8]) -> Result<usize, Invalid> {
    if text.get(at..at + word.len()) == Some(word) {
        Ok(at + word.len())
    } else {
        Err(invalid(at, "expected true, false or null"))
    }
}

/// The end of a number, as RFC 8259 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE]
/// [+-]? [0-9]+)?`.
fn number_end(text: &[u8], at: usize) -> Result<usize, Invalid> {
    let digits = |at: usize| {
        let mut end = at;
        while text.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end > at {
            Ok(end)
        } else {
            Err(invalid(at, "expected a digit"))
        }
    };
    let mut at = at;
    if text.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match text.get(at) {
        Some(b'0') => at + 1,
        _ => digits(at)?,
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
    Ok(at)
}

/// Four hex digits at `at`, as a number.
fn hex4(text: &[u8], at: usize) -> Result<u32, Invalid> {
    let digits = text
        .get(at..at + 4)
        .ok_or(invalid(at, "a \\u escape needs four hex digits"))?;
    digits.iter().try_fold(0u32, |n, &d| {
        let d = char::from(d)
            .to_digit(16)
            .ok_or(invalid(at, "a \\u escape needs four hex digits"))?;
        Ok(n * 16 + d)
    })
}

/// The end of the string whose opening quote is at `at` (after its closing quote).
fn string_end(text: &[u8], at: usize) -> Result<usize, Invalid> {
    if text.get(at) != Some(&b'"') {
        return Err(invalid(at, "expected a string"));
    }
    let mut at = at + 1;
    loop {
        match text.get(at) {
            None => return Err(invalid(at, "the text ends inside a string")),
            Some(b'"') => return Ok(at + 1),
            Some(b'\\') => at = escape(text, at)?.1,
            Some(0..=0x1f) => return Err(invalid(at, "a control character in a string")),
            Some(_) => at += 1,
        }
    }
}

/// The character of the escape at `at` (its backslash) and the position after it. A high
/// surrogate must be followed by an escaped low one; a lone surrogate is refused.
fn escape(text: &[u8], at: usize) -> Result<(char, usize), Invalid> {
    let simple = match text.get(at + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let unit = hex4(text, at + 2)?;
            return match unit {
                0xd800..=0xdbff => {
                    if text.get(at + 6..at + 8) != Some(&b"\\u"[..]) {
                        return Err(invalid(at, "a lone surrogate escape"));
                    }
                    let low = hex4(text, at + 8)?;
                    if !(0xdc00..=0xdfff).contains(&low) {
                        return Err(invalid(at, "a lone surrogate escape"));
                    }
                    let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    let c = char::from_u32(code).ok_or(invalid(at, "a lone surrogate escape"))?;
                    Ok((c, at + 12))
                }
                0xdc00..=0xdfff => Err(invalid(at, "a lone surrogate escape")),
                _ => {
                    let c = char::from_u32(unit).ok_or(invalid(at, "an invalid \\u escape"))?;
                    Ok((c, at + 6))
                }
            };
        }
        _ => return Err(invalid(at, "an invalid escape")),
    };
    Ok((simple, at + 2))
}

/// The decoded string whose quotes are at `start` and `end - 1` (already checked by
/// [`string_end`]).
fn decode_string(text: &[u8], start: usize, end: usize) -> Result<String, Invalid> {
    let mut out = String::with_capacity(end - start);
    let mut at = start + 1;
    let last = end - 1;
    while at < last {
        let run = text[at..last]
            .iter()
            .position(|&b| b == b'\\')
            .map_or(last, |i| at + i);
        // The text is UTF-8 and a backslash never splits a character.
        out.push_str(std::str::from_utf8(&text[at..run]).map_err(|_| invalid(at, "not UTF-8"))?);
        at = run;
        if at < last {
            let (c, next) = escape(text, at)?;
            out.push(c);
            at = next;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_texts_are_accepted_and_everything_else_is_not() {
        for ok in [
            &b"{}"[..],
            b" {\r\n} \n",
            b"[]",
            b"\"x\"",
            b"-0.5e+3",
            b"null",
            br#"{"custom":{"k":"v"},"env":{"a":[1,-2.5e3,true,false,null,"\u00e9\n\ud83d\ude00"]}}"#,
            "\"é and 😀 raw\"".as_bytes(),
        ] {
            assert_eq!(validate(ok), Ok(()), "{}", String::from_utf8_lossy(ok));
            assert!(Value::parse(ok).is_ok(), "{}", String::from_utf8_lossy(ok));
        }
        for (not, why) in [
            (&b""[..], "the text ends where a value should be"),
            (b"not json", "expected true, false or null"),
            (b"{} {}", "text after the value"),
            (b"{\"a\":1", "the text ends inside a container"),
            (b"{\"a\" 1}", "expected : after a name"),
            (b"{\"a\":01}", "expected , or }"),
            (b"[1,]", "expected a value"),
            (b"{a:1}", "expected a string"),
            (b"\"raw\nline\"", "a control character in a string"),
            (b"\"\\x\"", "an invalid escape"),
            (b"\"\\ud800\"", "a lone surrogate escape"),
            (b"\"\\udc00\"", "a lone surrogate escape"),
            (b"\"\\u12\"", "a \\u escape needs four hex digits"),
            (b"1.", "expected a digit"),
            (b"-", "expected a digit"),
            (b"\"\xff\"", "not UTF-8"),
            (b"[1 2]", "expected , or ]"),
        ] {
            let e = validate(not).unwrap_err();
            assert_eq!(e.why, why, "{}", String::from_utf8_lossy(not));
            assert_eq!(Value::parse(not).unwrap_err().why, why);
        }
        assert_eq!(
            validate(b"[1, 2 x").unwrap_err().to_string(),
            "expected , or ] at byte 6"
        );
    }

    #[test]
    fn any_nesting_is_validated_without_recursion() {
        let n = 1_000_000;
        let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(validate(deep.as_bytes()), Ok(()));
        let open = "[{\"a\":".repeat(n);
        assert!(validate(open.as_bytes()).is_err());
        // The tree parser refuses what it would have to recurse into too deeply.
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            Value::parse(deep.as_bytes()).unwrap_err().why,
            "nested too deeply"
        );
    }

    #[test]
    fn the_three_readers_agree_on_every_small_text() {
        // Random texts over JSON's own characters (and a few that are not): the walker, the
        // member reader and the tree parser accept the same ones and never panic.
        const ALPHABET: &[u8] = b"{}[]\",:0123456789.eE+- tfnrulas\\/\x01\xc3\xa9";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            let len = (next() % 14) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let valid = validate(&text).is_ok();
            assert_eq!(Value::parse(&text).is_ok(), valid, "{text:?}");
            let object = text.iter().find(|b| !b" \t\r\n".contains(b)) == Some(&b'{');
            match members(&text) {
                Ok(Some(_)) => assert!(valid && object, "{text:?}"),
                Ok(None) => assert!(valid && !object, "{text:?}"),
                Err(_) => assert!(!valid, "{text:?}"),
            }
            accepted += usize::from(valid);
        }
        assert!(
            accepted > 1000,
            "the texts reach valid JSON often enough: {accepted}"
        );
    }

    #[test]
    fn members_give_each_name_and_the_text_of_its_value() {
        let text = br#"{ "statusCode" : 201, "body":"a\"b", "x":[{"deep":[[[]]]}] ,"body":"last"}"#;
        let found = members(text).unwrap().unwrap();
        let got: Vec<(&str, &[u8])> = found
            .iter()
            .map(|(name, range)| (name.as_str(), &text[range.clone()]))
            .collect();
        assert_eq!(
            got,
            [
                ("statusCode", &b"201"[..]),
                ("body", br#""a\"b""#),
                ("x", br#"[{"deep":[[[]]]}]"#),
                ("body", br#""last""#),
            ]
        );
        assert_eq!(members(b"[1]").unwrap(), None);
        assert_eq!(members(b" {} ").unwrap(), Some(vec![]));
        assert!(members(b"{\"a\":1,}").is_err());
        assert!(members(b"{\"a\":1} x").is_err());
    }

    #[test]
    fn values_decode_strings_and_read_numbers_and_members() {
        let v = Value::parse(
            br#"{"s":"tab\there \u00e9 \ud83d\ude00 \/","n":404,"f":4.5,"s":"again","a":[null,true]}"#,
        )
        .unwrap();
        assert_eq!(v.get("s").and_then(Value::as_str), Some("again"));
        assert_eq!(v.get("n").and_then(Value::as_u64), Some(404));
        assert_eq!(v.get("f").and_then(Value::as_u64), None);
        assert_eq!(
            v.get("a"),
            Some(&Value::Array(vec![Value::Null, Value::Bool(true)]))
        );
        match &v {
            Value::Object(m) => assert_eq!(m[0].1.as_str(), Some("tab\there \u{e9} \u{1f600} /")),
            other => panic!("{other:?}"),
        }
        assert_eq!(v.get("missing"), None);
    }
}

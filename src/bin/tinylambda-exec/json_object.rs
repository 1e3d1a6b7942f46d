//! Whether a log line is already a JSON object, so that in JSON format it goes to the log as
//! it is: a strict, allocation-free check of RFC 8259's grammar, one pass over the line.
//!
//! A line passes when it is exactly one JSON text whose value is an object: UTF-8, JSON
//! whitespace at most around it, no trailing commas, comments, single quotes, bare words,
//! leading zeros, `NaN`, raw control characters in strings or unknown escapes, and no lone
//! UTF-16 surrogate in a `\u` escape (RFC 8259's grammar allows one, but it names no
//! character and strict parsers such as serde_json refuse it). Repeated names in an object
//! pass: the grammar allows them, and checking would cost a set per object. Containers
//! nested deeper than [`MAX_DEPTH`] make a line fail (serde_json's limit): it is then
//! wrapped like any other text, which is still valid JSON.

/// The deepest nesting of objects and arrays a line may have (the line's object counts,
/// and so does an empty container).
pub(crate) const MAX_DEPTH: u32 = 128;

/// Whether `line` (without its line break) is one JSON object (see the module
/// documentation).
pub(crate) fn is_object(line: &[u8]) -> bool {
    let mut p = Parser { bytes: line, at: 0 };
    p.space();
    // Most lines are plain text: settled by their first and last bytes.
    let last = line.iter().rev().find(|b| !is_space(**b));
    if p.peek() != Some(b'{') || last != Some(&b'}') || std::str::from_utf8(line).is_err() {
        return false;
    }
    if !p.value() {
        return false;
    }
    p.space();
    p.at == line.len()
}

/// JSON whitespace: space, tab, line feed, carriage return.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A cursor over the line.
struct Parser<'a> {
    /// The line.
    bytes: &'a [u8],
    /// Where the next byte is.
    at: usize,
}

impl Parser<'_> {
    /// The next byte, not consumed.
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The next byte, consumed.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// Consumes `b` if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        if found {
            self.at += 1;
        }
        found
    }

    /// Skips JSON whitespace.
    fn space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.at += 1;
        }
    }

    /// One value, containers included, without recursion: `open` holds a bit per open
    /// container (1 for an object), the innermost in bit `depth - 1`.
    fn value(&mut self) -> bool {
        let mut open: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value starts here: a container that opens (its first value comes next), or
            // a whole value.
            self.space();
            let opened = match self.next() {
                Some(b'{' | b'[') if depth == MAX_DEPTH => return false,
                Some(b'{') => {
                    self.space();
                    if self.eat(b'}') {
                        false
                    } else if self.member_name() {
                        open |= 1 << depth;
                        depth += 1;
                        true
                    } else {
                        return false;
                    }
                }
                Some(b'[') => {
                    self.space();
                    if self.eat(b']') {
                        false
                    } else {
                        open &= !(1 << depth);
                        depth += 1;
                        true
                    }
                }
                Some(first) if self.scalar(first) => false,
                _ => return false,
            };
            if opened {
                continue;
            }
            // A value ended: close containers, or go on to the next value after a comma.
            loop {
                let Some(inner) = depth.checked_sub(1) else {
                    return true;
                };
                let object = open >> inner & 1 == 1;
                self.space();
                match self.next() {
                    Some(b',') if !object || self.member_name() => break,
                    Some(b'}') if object => depth = inner,
                    Some(b']') if !object => depth = inner,
                    _ => return false,
                }
            }
        }
    }

    /// The rest of a string, literal or number whose first byte was `first`.
    fn scalar(&mut self, first: u8) -> bool {
        match first {
            b'"' => self.string_rest(),
            b't' => self.word(b"rue"),
            b'f' => self.word(b"alse"),
            b'n' => self.word(b"ull"),
            b'-' | b'0'..=b'9' => {
                self.at -= 1;
                self.number()
            }
            _ => false,
        }
    }

    /// `"name"` and `:`, with whitespace between and after.
    fn member_name(&mut self) -> bool {
        self.space();
        if !self.eat(b'"') || !self.string_rest() {
            return false;
        }
        self.space();
        self.eat(b':')
    }

    /// The rest of a literal after its first letter.
    fn word(&mut self, rest: &[u8]) -> bool {
        let found = self
            .bytes
            .get(self.at..)
            .is_some_and(|b| b.starts_with(rest));
        if found {
            self.at += rest.len();
        }
        found
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> bool {
        self.eat(b'-');
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return false,
        }
        if self.eat(b'.') && !self.some_digits() {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !self.some_digits() {
                return false;
            }
        }
        true
    }

    /// Any number of digits.
    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// At least one digit.
    fn some_digits(&mut self) -> bool {
        let start = self.at;
        self.digits();
        self.at > start
    }

    /// A string after its opening quote, through its closing one. The line is UTF-8
    /// (checked first), so bytes over 0x7f are parts of characters.
    fn string_rest(&mut self) -> bool {
        loop {
            match self.next() {
                Some(b'"') => return true,
                Some(b'\\') => {
                    if !self.escape() {
                        return false;
                    }
                }
                Some(0..=0x1f) | None => return false,
                Some(_) => {}
            }
        }
    }

    /// An escape after its backslash; a `\u` high surrogate must be followed by a `\u` low
    /// one, and a low one must not come alone.
    fn escape(&mut self) -> bool {
        match self.next() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
            Some(b'u') => match self.hex4() {
                Some(0xD800..=0xDBFF) => {
                    self.eat(b'\\')
                        && self.eat(b'u')
                        && matches!(self.hex4(), Some(0xDC00..=0xDFFF))
                }
                Some(0xDC00..=0xDFFF) | None => false,
                Some(_) => true,
            },
            _ => false,
        }
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Option<u16> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let mut value = 0u16;
        for &d in digits {
            let nibble = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return None,
            };
            value = value << 4 | u16::from(nibble);
        }
        self.at += 4;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass() {
        for line in [
            r#"{}"#,
            r#"{"level":"WARN","message":"disk 91% full"}"#,
            r#"  { "a" : [ 1 , -0.5e+3 , 2E-7, 0, true , false , null , { } , [ ] ] }	"#,
            "{\"a\":1}\r",
            r#"{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00 é 漢字 😀"}"#,
            r#"{"a":{"b":{"c":[[["deep"]]]}}}"#,
            r#"{"same":1,"same":2}"#,
        ] {
            assert!(is_object(line.as_bytes()), "{line}");
        }
        let deepest = "[".repeat(127) + &"]".repeat(127);
        assert!(is_object(format!("{{\"a\":{deepest}}}").as_bytes()));
    }

    #[test]
    fn everything_else_fails() {
        for line in [
            "",
            "plain text",
            "[1,2]",
            r#""a string""#,
            "42",
            "{",
            "}",
            "{not json}",
            "{a:1}",
            "{'a':1}",
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":NaN}"#,
            r#"{"a":tru}"#,
            r#"{"a":True}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"unterminated}",
            "{\"a\":1} // comment",
            "\u{feff}{}",
            "{\"a\":[1}",
            "{\"a\":{\"b\":1]}",
        ] {
            assert!(!is_object(line.as_bytes()), "{line}");
        }
        assert!(!is_object(b"{\"a\":\"\xff\"}"), "not UTF-8");
        let too_deep = "[".repeat(128) + &"]".repeat(128);
        assert!(!is_object(format!("{{\"a\":{too_deep}}}").as_bytes()));
        // Very deep input is refused without recursion (no stack overflow).
        assert!(!is_object("{\"a\":".repeat(100_000).as_bytes()));
    }
}

//! A function URL handler without a JSON library: it reads the path and the query from the
//! event (Lambda's payload format 2.0) and answers with a `statusCode`/`headers`/`body`
//! object. `GET /hello?name=ada` answers `Hello, ada!`; any other path is a 404.
//!
//! ```sh
//! tinylambda-emu -- target/debug/examples/url &
//! curl -i 'http://127.0.0.1:8080/hello?name=ada'
//! ```

use tinylambda::{Context, Error};

fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
    let event = std::str::from_utf8(event)?;
    // `rawPath` and `rawQueryString` come before any query parameter or header in the
    // event, so the first `"rawPath":` is the member itself.
    let path = string_member(event, "rawPath").unwrap_or_default();
    let query = string_member(event, "rawQueryString").unwrap_or_default();
    let (status, body) = if path == "/hello" {
        let name = query_parameter(&query, "name").unwrap_or_else(|| "world".into());
        (200, format!("Hello, {name}!\n"))
    } else {
        (404, format!("No page at {path}\n"))
    };
    let mut response = format!(
        r#"{{"statusCode":{status},"headers":{{"content-type":"text/plain; charset=utf-8"}},"body":"#
    );
    push_json_string(&mut response, &body);
    response.push('}');
    Ok(response.into_bytes())
}

/// The string value of the first `"key":` in `json`, its escapes decoded (`\uXXXX`
/// included; a surrogate pair as one character).
fn string_member(json: &str, key: &str) -> Option<String> {
    let after = &json[json.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let mut chars = after.trim_start().strip_prefix('"')?.chars();
    let mut out = String::new();
    let mut high = None;
    loop {
        let c = match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let unit = u32::from_str_radix(&hex, 16).ok()?;
                    if (0xd800..0xdc00).contains(&unit) {
                        high = Some(unit);
                        continue;
                    }
                    let code = match high.take() {
                        Some(h) => 0x10000 + ((h - 0xd800) << 10) + (unit - 0xdc00),
                        None => unit,
                    };
                    char::from_u32(code)?
                }
                other => other, // \" \\ \/
            },
            c => c,
        };
        out.push(c);
    }
}

/// The value of `key` in a query string, percent-decoded (the event's
/// `queryStringParameters` has it too; the raw query is simpler to read by hand).
fn query_parameter(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `text` as a JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn main() {
    tinylambda::run(handler);
}

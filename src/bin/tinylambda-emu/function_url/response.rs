//! What a function's result becomes for a function URL's caller (`urls-invocation.html`,
//! "Response payload format"):
//!
//! - A JSON object with `statusCode`: that status, its `headers`, each of its `cookies` as
//!   a `Set-Cookie` header, and its `body`, decoded from base64 when `isBase64Encoded` is
//!   true.
//! - Any other result (JSON without `statusCode`, or not JSON at all): 200,
//!   `content-type: application/json`, the result as it is (Lambda "infers the response
//!   format": status 200, JSON content type, the result as the body).
//!
//! A result that has a `statusCode` but does not make a response (a status outside
//! 200–599 or not a whole number, headers that are not an object of strings, numbers or
//! booleans, a header name that is not an HTTP token, cookies that are not strings, a body
//! that is not a string, or not base64 when it says it is) is malformed: the caller gets
//! 502, as a gateway answers a response in the wrong format
//! (`services-apigateway-errors.html`: "returns a response in the wrong format, API Gateway
//! returns a 502"). The emulator's own choices where Lambda documents nothing: numbers and
//! booleans in `headers` are written as their JSON text; a repeated member counts once,
//! the last one (as JavaScript reads it); `content-length`, `transfer-encoding` and
//! `connection` from the function are dropped (the emulator frames the response itself);
//! no `content-type` is added to a response that has none.
//!
//! The prelude of a streamed response (`application/vnd.awslambda.http-integration-response`)
//! is read the same way, its `statusCode` defaulting to 200.

use crate::json::{Value, from_base64, members};

/// A response for a function URL's caller.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlResponse {
    /// The status code.
    pub status: u16,
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
    /// One `Set-Cookie` each.
    pub cookies: Vec<String>,
    /// The body (empty for a prelude: the stream carries it).
    pub body: Vec<u8>,
}

/// The header fields the emulator writes itself, whatever the function says.
const FRAMING: &[&str] = &["content-length", "transfer-encoding", "connection"];

/// The response for a function's buffered `result`, or why it is malformed.
pub fn interpret(result: &[u8]) -> Result<UrlResponse, String> {
    let has_status = match members(result) {
        Ok(Some(members)) => members.iter().any(|(name, _)| name == "statusCode"),
        Ok(None) | Err(_) => false,
    };
    if !has_status {
        return Ok(UrlResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            cookies: Vec::new(),
            body: result.to_vec(),
        });
    }
    let object = Value::parse(result).map_err(|e| format!("the result is too deep: {e}"))?;
    let mut response = head(&object, None)?;
    let base64_encoded = match object.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isBase64Encoded is not a boolean".into()),
    };
    response.body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(body)) if base64_encoded => from_base64(body.as_bytes())
            .ok_or("the body is not base64, and isBase64Encoded is true")?,
        Some(Value::String(body)) => body.clone().into_bytes(),
        Some(_) => return Err("the body is not a string".into()),
    };
    Ok(response)
}

/// The response head of a streamed response's `prelude` (the JSON before the 8 NUL
/// bytes), or why it is malformed.
pub fn prelude(prelude: &[u8]) -> Result<UrlResponse, String> {
    let object = Value::parse(prelude).map_err(|e| format!("the prelude is not JSON: {e}"))?;
    if !matches!(object, Value::Object(_)) {
        return Err("the prelude is not a JSON object".into());
    }
    head(&object, Some(200))
}

/// Status, headers and cookies of a result or prelude `object`; `default` when it has no
/// `statusCode`.
fn head(object: &Value, default: Option<u16>) -> Result<UrlResponse, String> {
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => default.ok_or("statusCode is missing")?,
        Some(code) => code
            .as_u64()
            .filter(|c| (200..=599).contains(c))
            .and_then(|c| u16::try_from(c).ok())
            .ok_or("statusCode is not a whole number from 200 to 599")?,
    };
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (name, value) in fields {
                if !is_token(name) {
                    return Err(format!("the header name {name:?} is not an HTTP token"));
                }
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.clone(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(format!("the header {name} is not a string")),
                };
                let lower = name.to_ascii_lowercase();
                if FRAMING.contains(&lower.as_str()) {
                    continue;
                }
                // A repeated name counts once: the last one.
                headers.retain(|(n, _): &(String, String)| !n.eq_ignore_ascii_case(name));
                headers.push((name.clone(), value));
            }
        }
        Some(_) => return Err("headers is not an object".into()),
    }
    let cookies = match object.get("cookies") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("a cookie is not a string")?,
        Some(_) => return Err("cookies is not an array".into()),
    };
    Ok(UrlResponse {
        status,
        headers,
        cookies,
        body: Vec::new(),
    })
}

/// Whether `name` is an HTTP field name (RFC 9110 §5.1: a token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_status_code_makes_the_response() {
        let r = interpret(
            br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Count":3,"X-Ok":true,"Content-Length":"99"},"cookies":["a=1; Max-Age=60","b=2"],"body":"made"}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(
            r.headers,
            fields(&[
                ("Content-Type", "text/plain"),
                ("X-Count", "3"),
                ("X-Ok", "true")
            ])
        );
        assert_eq!(r.cookies, ["a=1; Max-Age=60", "b=2"]);
        assert_eq!(r.body, b"made");
        // hello.rs's answer.
        let r = interpret(br#"{"statusCode": 200, "body": "Hello World"}"#).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"Hello World"[..]));
        assert!(r.headers.is_empty() && r.cookies.is_empty());
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let r =
            interpret(br#"{"statusCode":200,"body":"AP+Afw==","isBase64Encoded":true}"#).unwrap();
        assert_eq!(r.body, [0, 0xff, 0x80, 0x7f]);
        let r =
            interpret(br#"{"statusCode":200,"body":"AP+Afw==","isBase64Encoded":false}"#).unwrap();
        assert_eq!(r.body, b"AP+Afw==");
    }

    #[test]
    fn other_results_are_200_json_as_they_are() {
        for result in [
            &br#"{"message":"hi"}"#[..],
            b"\"Hello, world!\"",
            b"[1,2]",
            b"not json at all",
            b"",
            br#"{"statusCode":200"#,
        ] {
            let r = interpret(result).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.headers, fields(&[("content-type", "application/json")]));
            assert_eq!(r.body, result);
        }
    }

    #[test]
    fn malformed_responses_say_why() {
        for (result, why) in [
            (
                &br#"{"statusCode":"200"}"#[..],
                "statusCode is not a whole number",
            ),
            (br#"{"statusCode":99}"#, "statusCode is not a whole number"),
            (br#"{"statusCode":600}"#, "statusCode is not a whole number"),
            (
                br#"{"statusCode":200.5}"#,
                "statusCode is not a whole number",
            ),
            (
                br#"{"statusCode":200,"headers":[]}"#,
                "headers is not an object",
            ),
            (
                br#"{"statusCode":200,"headers":{"a b":"c"}}"#,
                "is not an HTTP token",
            ),
            (
                br#"{"statusCode":200,"headers":{"a":{}}}"#,
                "the header a is not a string",
            ),
            (
                br#"{"statusCode":200,"cookies":"a=1"}"#,
                "cookies is not an array",
            ),
            (
                br#"{"statusCode":200,"cookies":[1]}"#,
                "a cookie is not a string",
            ),
            (
                br#"{"statusCode":200,"body":{"a":1}}"#,
                "the body is not a string",
            ),
            (
                br#"{"statusCode":200,"body":"!!","isBase64Encoded":true}"#,
                "not base64",
            ),
            (
                br#"{"statusCode":200,"isBase64Encoded":"yes"}"#,
                "not a boolean",
            ),
        ] {
            let e = interpret(result).unwrap_err();
            assert!(e.contains(why), "{}: {e}", String::from_utf8_lossy(result));
        }
    }

    #[test]
    fn preludes_give_the_head_with_200_by_default() {
        let r = prelude(
            br#"{"statusCode":404,"headers":{"content-type":"text/plain"},"cookies":["v=1"]}"#,
        )
        .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.headers, fields(&[("content-type", "text/plain")]));
        assert_eq!(r.cookies, ["v=1"]);
        assert_eq!(prelude(b"{}").unwrap().status, 200);
        assert!(prelude(b"[]").is_err());
        assert!(prelude(b"{").is_err());
    }
}

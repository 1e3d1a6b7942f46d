//! The event a function URL request becomes: Lambda's payload format 2.0
//! (`urls-invocation.html`, "Request payload format", which follows API Gateway's HTTP API
//! format 2.0: `http-api-develop-integrations-lambda.html`).
//!
//! - `rawPath` and `requestContext.http.path`: the path as the caller sent it;
//!   `rawQueryString`: what follows the `?`, as sent (empty when there is none).
//! - `headers`: each name lower-cased, repeated ones joined by commas (format 2.0 has no
//!   multi-value fields). `cookie` headers are not among them: each cookie of every
//!   `cookie` header is an item of `cookies` instead. Hop-by-hop fields (`connection`,
//!   `transfer-encoding`, `expect`, …: RFC 9110 §7.6.1) stay with the connection they
//!   describe, as a proxy keeps them.
//! - `queryStringParameters`: each `key=value` of the query, percent-decoded, repeated keys
//!   joined by commas (format 2.0 joins them so); `+` is left as it is.
//! - `body`: absent when the request has none; the text itself when it is text (no
//!   `Content-Type`, `text/*`, or a JSON, XML, JavaScript or form type) and UTF-8; else the
//!   base64 of the bytes, with `isBase64Encoded: true`.
//! - `requestContext`: the account, the URL id as `apiId` and `domainPrefix`, the URL's
//!   domain, `http` (method, path, protocol, source IP, `User-Agent`), the invocation's
//!   request id, `$default` route and stage, the time in Common Log Format and in epoch
//!   milliseconds. Fields Lambda sets to null or leaves out for a URL without IAM auth
//!   (`authorizer`, `authentication`, `pathParameters`, `stageVariables`) are left out.

use std::net::IpAddr;

use crate::clock::clf;
use crate::json::{base64, push_key, push_string};

/// A function URL request, as the event is built from it.
pub struct UrlRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The request target (path and query).
    pub target: &'a [u8],
    /// Whether the request was HTTP/1.0.
    pub http10: bool,
    /// Every header field, in order.
    pub fields: Vec<(&'a [u8], &'a [u8])>,
    /// The body.
    pub body: &'a [u8],
    /// The caller's address.
    pub source_ip: Option<IpAddr>,
}

/// What the event says about where it comes from.
pub struct Origin<'a> {
    /// The invocation's request id.
    pub request_id: &'a str,
    /// The account id.
    pub account_id: &'a str,
    /// The function URL's id.
    pub url_id: &'a str,
    /// The function's region.
    pub region: &'a str,
    /// When the request arrived, in epoch milliseconds.
    pub time_ms: u64,
}

/// Header fields that describe one connection, never passed on by a proxy.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// The payload format 2.0 event of `request`.
pub fn build(request: &UrlRequest<'_>, origin: &Origin<'_>) -> Vec<u8> {
    let (path, query) = split_target(request.target);
    let path = String::from_utf8_lossy(path);
    let query = String::from_utf8_lossy(query);
    let headers = headers(&request.fields);
    let cookies = cookies(&request.fields);
    let user_agent = headers
        .iter()
        .find(|(name, _)| name == "user-agent")
        .map_or("", |(_, value)| value.as_str());

    let mut out = Vec::with_capacity(1024 + request.body.len() * 4 / 3);
    out.extend_from_slice(br#"{"version":"2.0","routeKey":"$default","#);
    push_key(&mut out, "rawPath");
    push_string(&mut out, &path);
    out.push(b',');
    push_key(&mut out, "rawQueryString");
    push_string(&mut out, &query);
    if !cookies.is_empty() {
        out.extend_from_slice(br#","cookies":["#);
        for (i, cookie) in cookies.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_string(&mut out, cookie);
        }
        out.push(b']');
    }
    out.extend_from_slice(br#","headers":"#);
    push_object(&mut out, &headers);
    let parameters = query_parameters(&query);
    if !parameters.is_empty() {
        out.extend_from_slice(br#","queryStringParameters":"#);
        push_object(&mut out, &parameters);
    }
    out.extend_from_slice(br#","requestContext":{"#);
    push_key(&mut out, "accountId");
    push_string(&mut out, origin.account_id);
    out.extend_from_slice(br#","apiId":"#);
    push_string(&mut out, origin.url_id);
    out.extend_from_slice(br#","domainName":"#);
    push_string(
        &mut out,
        &format!("{}.lambda-url.{}.on.aws", origin.url_id, origin.region),
    );
    out.extend_from_slice(br#","domainPrefix":"#);
    push_string(&mut out, origin.url_id);
    out.extend_from_slice(br#","http":{"method":"#);
    push_string(&mut out, request.method);
    out.extend_from_slice(br#","path":"#);
    push_string(&mut out, &path);
    out.extend_from_slice(br#","protocol":"#);
    push_string(
        &mut out,
        if request.http10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
    );
    out.extend_from_slice(br#","sourceIp":"#);
    push_string(
        &mut out,
        &request
            .source_ip
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string()),
    );
    out.extend_from_slice(br#","userAgent":"#);
    push_string(&mut out, user_agent);
    out.extend_from_slice(br#"},"requestId":"#);
    push_string(&mut out, origin.request_id);
    out.extend_from_slice(br#","routeKey":"$default","stage":"$default","time":"#);
    push_string(&mut out, &clf(origin.time_ms / 1000));
    out.extend_from_slice(br#","timeEpoch":"#);
    out.extend_from_slice(origin.time_ms.to_string().as_bytes());
    out.push(b'}');
    let base64_encoded = !request.body.is_empty() && !is_text(&request.fields, request.body);
    if !request.body.is_empty() {
        out.extend_from_slice(br#","body":"#);
        match std::str::from_utf8(request.body) {
            Ok(text) if !base64_encoded => push_string(&mut out, text),
            _ => push_string(&mut out, &base64(request.body)),
        }
    }
    out.extend_from_slice(br#","isBase64Encoded":"#);
    out.extend_from_slice(if base64_encoded { b"true" } else { b"false" });
    out.push(b'}');
    out
}

/// The path and the query of a request target (an absolute-form target loses its scheme
/// and authority).
fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let mut target = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            let slash = rest
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(rest.len());
            target = &rest[slash..];
        }
    }
    match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &[]),
    }
}

/// The headers, lower-cased, repeats joined by commas, in order of first appearance;
/// without `cookie` and the hop-by-hop fields.
fn headers(fields: &[(&[u8], &[u8])]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in fields {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name == "cookie" || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => out.push((name, value.into_owned())),
        }
    }
    out
}

/// Every cookie of every `cookie` header, in order.
fn cookies(fields: &[(&[u8], &[u8])]) -> Vec<String> {
    fields
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, value)| value.split(|&b| b == b';'))
        .map(|cookie| String::from_utf8_lossy(cookie).trim().to_owned())
        .filter(|cookie| !cookie.is_empty())
        .collect()
}

/// The query's parameters: percent-decoded, repeated keys' values joined by commas, in
/// order of first appearance.
fn query_parameters(query: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (percent_decode(key), percent_decode(value));
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => out.push((key, value)),
        }
    }
    out
}

/// `%XX` sequences decoded (a `%` not followed by two hex digits stays as it is); bytes
/// that do not make UTF-8 become U+FFFD.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |i: usize| bytes.get(i).and_then(|&b| char::from(b).to_digit(16));
        match (bytes[at], hex(at + 1), hex(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                at += 3;
            }
            (b, _, _) => {
                out.push(b);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the body goes into the event as text: UTF-8, and no `Content-Type` or a
/// textual one.
fn is_text(fields: &[(&[u8], &[u8])], body: &[u8]) -> bool {
    let content_type = fields
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"content-type"))
        .map(|(_, value)| String::from_utf8_lossy(value).to_ascii_lowercase());
    let textual = match content_type {
        None => true,
        Some(content_type) => {
            let essence = content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            essence.starts_with("text/")
                || essence.ends_with("+json")
                || essence.ends_with("+xml")
                || matches!(
                    essence.as_str(),
                    "application/json"
                        | "application/xml"
                        | "application/javascript"
                        | "application/x-www-form-urlencoded"
                )
        }
    };
    textual && std::str::from_utf8(body).is_ok()
}

/// Appends `{"k":"v",…}`.
fn push_object(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.push(b'{');
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_key(out, key);
        push_string(out, value);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Value, from_base64};

    fn origin() -> Origin<'static> {
        Origin {
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            account_id: "123456789012",
            url_id: "abcdef0123456789abcdef0123456789",
            region: "eu-west-1",
            time_ms: 1_583_348_638_390,
        }
    }

    fn event(request: &UrlRequest<'_>) -> Value {
        let bytes = build(request, &origin());
        Value::parse(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }

    fn text<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
        path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
    }

    #[test]
    fn a_get_with_a_query_cookies_and_repeated_headers() {
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"127.0.0.1:8080"),
            (b"User-Agent", b"curl/8"),
            (b"X-Multi", b"a"),
            (b"Cookie", b"a=1; b=2"),
            (b"x-multi", b"b, c"),
            (b"Cookie", b"c=3"),
            (b"Connection", b"keep-alive"),
        ];
        let request = UrlRequest {
            method: "GET",
            target: b"/hello/w%C3%B6rld?name=ada&tag=x&tag=y%20z&plus=a+b&flag&&=e",
            http10: false,
            fields,
            body: b"",
            source_ip: Some("127.0.0.1".parse().unwrap()),
        };
        let v = event(&request);
        assert_eq!(text(&v, &["version"]), Some("2.0"));
        assert_eq!(text(&v, &["routeKey"]), Some("$default"));
        assert_eq!(text(&v, &["rawPath"]), Some("/hello/w%C3%B6rld"));
        assert_eq!(
            text(&v, &["rawQueryString"]),
            Some("name=ada&tag=x&tag=y%20z&plus=a+b&flag&&=e")
        );
        let parameters = v.get("queryStringParameters").unwrap();
        for (key, value) in [
            ("name", "ada"),
            ("tag", "x,y z"),
            ("plus", "a+b"),
            ("flag", ""),
            ("", "e"),
        ] {
            assert_eq!(
                parameters.get(key).and_then(Value::as_str),
                Some(value),
                "{key}"
            );
        }
        assert_eq!(
            v.get("cookies"),
            Some(&Value::Array(
                ["a=1", "b=2", "c=3"]
                    .map(|c| Value::String(c.into()))
                    .to_vec()
            ))
        );
        assert_eq!(text(&v, &["headers", "x-multi"]), Some("a,b, c"));
        assert_eq!(text(&v, &["headers", "host"]), Some("127.0.0.1:8080"));
        assert_eq!(v.get("headers").unwrap().get("cookie"), None);
        assert_eq!(v.get("headers").unwrap().get("connection"), None);
        assert_eq!(v.get("body"), None);
        assert_eq!(v.get("isBase64Encoded"), Some(&Value::Bool(false)));
        for (path, expected) in [
            (&["requestContext", "http", "method"][..], "GET"),
            (&["requestContext", "http", "path"], "/hello/w%C3%B6rld"),
            (&["requestContext", "http", "protocol"], "HTTP/1.1"),
            (&["requestContext", "http", "sourceIp"], "127.0.0.1"),
            (&["requestContext", "http", "userAgent"], "curl/8"),
            (&["requestContext", "accountId"], "123456789012"),
            (
                &["requestContext", "apiId"],
                "abcdef0123456789abcdef0123456789",
            ),
            (
                &["requestContext", "domainName"],
                "abcdef0123456789abcdef0123456789.lambda-url.eu-west-1.on.aws",
            ),
            (
                &["requestContext", "domainPrefix"],
                "abcdef0123456789abcdef0123456789",
            ),
            (
                &["requestContext", "requestId"],
                "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            ),
            (&["requestContext", "routeKey"], "$default"),
            (&["requestContext", "stage"], "$default"),
            (&["requestContext", "time"], "04/Mar/2020:19:03:58 +0000"),
        ] {
            assert_eq!(text(&v, path), Some(expected), "{path:?}");
        }
        assert_eq!(
            v.get("requestContext")
                .and_then(|c| c.get("timeEpoch"))
                .and_then(Value::as_u64),
            Some(1_583_348_638_390)
        );
    }

    #[test]
    fn text_bodies_stay_text_and_others_are_base64() {
        let post = |content_type: Option<&'static [u8]>, body: &'static [u8]| {
            let mut fields: Vec<(&[u8], &[u8])> = vec![(b"Host", b"x")];
            if let Some(content_type) = content_type {
                fields.push((b"Content-Type", content_type));
            }
            event(&UrlRequest {
                method: "POST",
                target: b"/",
                http10: true,
                fields,
                body,
                source_ip: None,
            })
        };
        for (content_type, body) in [
            (None, &b"plain \"quoted\"\n"[..]),
            (Some(&b"application/json; charset=utf-8"[..]), br#"{"a":1}"#),
            (Some(b"text/html"), "<p>é</p>".as_bytes()),
            (Some(b"application/vnd.api+json"), b"{}"),
            (Some(b"application/x-www-form-urlencoded"), b"a=1&b=2"),
        ] {
            let v = post(content_type, body);
            assert_eq!(v.get("isBase64Encoded"), Some(&Value::Bool(false)));
            assert_eq!(
                v.get("body").and_then(Value::as_str).map(str::as_bytes),
                Some(body)
            );
        }
        for (content_type, body) in [
            (
                Some(&b"application/octet-stream"[..]),
                &b"text, but said binary"[..],
            ),
            (Some(b"image/png"), &[0x89, b'P', b'N', b'G', 0, 0xff]),
            (None, &[0xff, 0xfe, 0]),
            (Some(b"text/plain"), &[b'a', 0xc3]),
        ] {
            let v = post(content_type, body);
            assert_eq!(v.get("isBase64Encoded"), Some(&Value::Bool(true)));
            let encoded = v.get("body").and_then(Value::as_str).unwrap();
            assert_eq!(from_base64(encoded.as_bytes()).as_deref(), Some(body));
        }
        let v = post(None, b"x");
        assert_eq!(
            text(&v, &["requestContext", "http", "protocol"]),
            Some("HTTP/1.0")
        );
        assert_eq!(text(&v, &["requestContext", "http", "userAgent"]), Some(""));
    }

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target(b"/a/b?c=d?e"), (&b"/a/b"[..], &b"c=d?e"[..]));
        assert_eq!(split_target(b"/"), (&b"/"[..], &b""[..]));
        assert_eq!(
            split_target(b"http://example.com:8080/x?y"),
            (&b"/x"[..], &b"y"[..])
        );
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}

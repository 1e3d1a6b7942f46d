//! `Endpoint::parse`, the `AWS_LAMBDA_RUNTIME_API` parser, on arbitrary strings.
//!
//! Properties:
//! - no panic, whatever the string (the input bytes, read as UTF-8 with invalid sequences
//!   replaced);
//! - on `Ok`: `host`, `authority` and `prefix` are slices of the input itself (borrowed,
//!   not copied), in that order; the host is non-empty visible ASCII without `@`, `[` or
//!   `]`; the authority is the host (bracketed when it was) with `:port` exactly when a port
//!   was written, and the port is never 0 (80 when none is written); the prefix is empty or
//!   starts with `/`, has no trailing `/` and no whitespace, control, `?` or `#`;
//! - the canonical forms `http://{authority}{prefix}`, `{authority}{prefix}` and
//!   `HTTP://{authority}{prefix}/` parse to the same endpoint;
//! - surrounding whitespace changes nothing, for `Ok` and `Err` alike;
//! - the `GET /next` request written from the endpoint is one well-formed request line and
//!   headers: no line break or space can be smuggled in through the value.

use tinylambda::endpoint::{Endpoint, EndpointError};
use tinylambda::request::write_next;

/// Checks every property on `data` read as a string, and returns the parse result.
pub fn check(data: &[u8]) -> Result<(String, u16, String, String), EndpointError> {
    let value = String::from_utf8_lossy(data);
    let parsed = Endpoint::parse(&value);
    let padded = format!(" \t{value}\r\n ");
    assert_eq!(Endpoint::parse(&padded), parsed, "surrounding whitespace");
    let endpoint = parsed?;
    check_endpoint(&value, &endpoint);
    Ok((
        endpoint.host.to_owned(),
        endpoint.port,
        endpoint.authority.to_owned(),
        endpoint.prefix.to_owned(),
    ))
}

fn check_endpoint(value: &str, e: &Endpoint<'_>) {
    let host = offset(value, e.host);
    let authority = offset(value, e.authority);
    assert!(
        authority <= host && host + e.host.len() <= authority + e.authority.len(),
        "host {:?} not inside authority {:?}",
        e.host,
        e.authority
    );
    // An empty prefix is a substring of anything, wherever it points.
    if !e.prefix.is_empty() {
        let prefix = offset(value, e.prefix);
        assert!(
            authority + e.authority.len() <= prefix,
            "prefix {:?} before the authority",
            e.prefix
        );
    }

    assert!(!e.host.is_empty(), "empty host");
    assert!(
        e.host
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"@[]".contains(&b)),
        "host {:?}",
        e.host
    );
    assert_ne!(e.port, 0);
    let bracketed = format!("[{}]", e.host);
    let host_part = if e.authority.starts_with('[') {
        bracketed.as_str()
    } else {
        e.host
    };
    match e.authority.strip_prefix(host_part) {
        Some("") => assert_eq!(e.port, 80, "no port written"),
        Some(port) => {
            let digits = port.strip_prefix(':').unwrap_or("x");
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "port {port:?}");
            assert_eq!(digits.parse::<u16>().ok(), Some(e.port), "port {port:?}");
        }
        None => panic!("authority {:?} for host {:?}", e.authority, e.host),
    }

    assert!(
        e.prefix.is_empty() || e.prefix.starts_with('/'),
        "prefix {:?}",
        e.prefix
    );
    assert!(!e.prefix.ends_with('/'), "prefix {:?}", e.prefix);
    assert!(
        e.prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#'),
        "prefix {:?}",
        e.prefix
    );

    for canonical in [
        format!("http://{}{}", e.authority, e.prefix),
        format!("{}{}", e.authority, e.prefix),
        format!("HTTP://{}{}/", e.authority, e.prefix),
    ] {
        assert_eq!(Endpoint::parse(&canonical).as_ref(), Ok(e), "{canonical:?}");
    }

    let mut buf = vec![0; 256 + value.len() * 2];
    let len = write_next(&mut buf, e.prefix, e.authority).expect("the buffer is large enough");
    let request = &buf[..len];
    assert!(request.ends_with(b"\r\n\r\n"), "{request:?}");
    let head = &request[..len - 4];
    let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').collect();
    for line in &lines[..lines.len() - 1] {
        assert!(line.ends_with(b"\r"), "bare LF in {request:?}");
    }
    for line in &lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            line.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)),
            "control character in {request:?}"
        );
    }
    let request_line: Vec<&[u8]> = lines[0]
        .strip_suffix(b"\r")
        .unwrap_or(lines[0])
        .split(|&b| b == b' ')
        .collect();
    let target = format!("{}/2018-06-01/runtime/invocation/next", e.prefix);
    assert_eq!(
        request_line,
        [&b"GET"[..], target.as_bytes(), b"HTTP/1.1"],
        "request line"
    );
    let host_header = format!("Host: {}", e.authority);
    assert!(
        lines
            .iter()
            .any(|l| l.strip_suffix(b"\r") == Some(host_header.as_bytes())),
        "no {host_header:?} in {request:?}"
    );
}

/// Where `part` starts in `whole`, asserting that it is a slice of `whole` (the parser
/// borrows, it does not copy).
fn offset(whole: &str, part: &str) -> usize {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    assert!(
        at >= start && at + part.len() <= start + whole.len(),
        "{part:?} is not a slice of {whole:?}"
    );
    at - start
}

//! `parse_head` and `head_end` on arbitrary bytes.
//!
//! Properties:
//! - no panic, whatever the bytes;
//! - the outcome agrees with `head_end`: `Complete` exactly when a blank line ends the head
//!   within `MAX_HEAD` bytes and the head is well formed, `Partial` only while no blank line
//!   has arrived and the input is at most `MAX_HEAD` bytes, `HeadTooLarge` only past it;
//! - on `Complete(head)`: `head.len` is `head_end`'s answer (so within the input and within
//!   `MAX_HEAD`), the status is 100 to 999 and the one on the status line, every header
//!   `Span` lies inside the head and holds exactly the trimmed value of the first line of
//!   that name (compared with a naive line-by-line reading), and the framing and keep-alive
//!   follow from the `Content-Length`, `Transfer-Encoding` and `Connection` lines;
//! - split delivery: every prefix gives `Partial` before the head's end (or `HeadTooLarge`
//!   past `MAX_HEAD`) and exactly the whole input's result from the head's end on, for a
//!   split point derived from the input and the points just before the end;
//! - resumed scanning, as the transport does it: `head_end` started 3 bytes before the end
//!   of a prefix that had no blank line finds the same end as a scan from 0.

use tinylambda::parse::{Error, Framing, Head, Header, MAX_HEAD, Status, head_end, parse_head};

use super::{Rng, is_field_byte, trim_ows};

/// What `parse_head` returns.
pub type Outcome = Result<Status<Head>, Error>;

/// Checks every property on `data` and returns `parse_head(data)`.
pub fn check(data: &[u8]) -> Outcome {
    let whole = parse_head(data);
    let end = head_end(data, 0);
    if let Some(end) = end {
        let blank = data.get(..end).unwrap_or_default();
        assert!(
            blank.ends_with(b"\n\n") || blank.ends_with(b"\n\r\n"),
            "head_end {end} is not after a blank line"
        );
    }
    match whole {
        Ok(Status::Complete(head)) => check_head(data, &head, end),
        Ok(Status::Partial) => assert!(
            end.is_none() && data.len() <= MAX_HEAD,
            "Partial with head_end {end:?} and {} bytes",
            data.len()
        ),
        Err(Error::HeadTooLarge) => assert!(
            end.map_or(data.len() > MAX_HEAD, |end| end > MAX_HEAD),
            "HeadTooLarge with head_end {end:?} and {} bytes",
            data.len()
        ),
        Err(e) => assert!(
            end.is_some_and(|end| end <= MAX_HEAD),
            "{e:?} before a complete head (head_end {end:?})"
        ),
    }

    let mut rng = Rng::from_input(data);
    let mut splits = vec![rng.below(data.len() + 1), data.len()];
    if let Some(end) = end {
        splits.extend((0..4).filter_map(|back| end.checked_sub(back)));
    }
    if data.len() > MAX_HEAD {
        splits.extend([MAX_HEAD, MAX_HEAD + 1]);
    }
    for split in splits {
        check_prefix(data, split, end, whole);
    }
    whole
}

/// `parse_head` on the first `split` bytes, as if only they had arrived.
fn check_prefix(data: &[u8], split: usize, end: Option<usize>, whole: Outcome) {
    let Some(prefix) = data.get(..split) else {
        return;
    };
    let expected = match end {
        Some(end) if split >= end => whole,
        _ if split > MAX_HEAD => Err(Error::HeadTooLarge),
        _ => Ok(Status::Partial),
    };
    assert_eq!(parse_head(prefix), expected, "prefix of {split} bytes");
    if let Some(end) = end.filter(|&end| split < end) {
        assert_eq!(
            head_end(data, split.saturating_sub(3)),
            Some(end),
            "head_end resumed 3 bytes before {split}"
        );
    }
}

/// The properties of a complete head.
fn check_head(data: &[u8], head: &Head, end: Option<usize>) {
    assert_eq!(Some(head.len), end, "head.len is not head_end");
    assert!(head.len <= data.len() && head.len <= MAX_HEAD);
    assert!((100..=999).contains(&head.status));
    let raw = data.get(..head.len).unwrap_or_default();
    assert_eq!(
        raw.get(9..12),
        Some(head.status.to_string().as_bytes()),
        "status"
    );

    let lines = field_lines(raw);
    for header in Header::ALL {
        let span = head.header(header);
        if let Some(span) = span {
            assert!(
                span.start <= span.end && span.end as usize <= head.len,
                "{header:?} span {span:?} outside a head of {} bytes",
                head.len
            );
            let value = span.get(data);
            assert_eq!(value.len(), (span.end - span.start) as usize);
            assert_eq!(trim_ows(value), value, "{header:?} keeps whitespace");
            assert!(value.iter().all(|&b| is_field_byte(b)), "{header:?}");
        }
        if let Some(name) = wire_name(header) {
            assert_eq!(
                span.map(|s| s.get(data)),
                first_value(&lines, name),
                "{header:?}"
            );
        }
    }

    let lengths: Vec<&[u8]> = values(&lines, "content-length").collect();
    let encodings: Vec<&[u8]> = values(&lines, "transfer-encoding").collect();
    match head.framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            assert!(!lengths.is_empty() && encodings.is_empty());
            for length in &lengths {
                let digits = std::str::from_utf8(length).unwrap_or("x");
                assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{digits}");
                assert_eq!(digits.parse::<u64>().ok(), Some(n), "{digits}");
            }
        }
        Framing::Chunked => {
            assert!(lengths.is_empty());
            assert!(matches!(&encodings[..], [te] if te.eq_ignore_ascii_case(b"chunked")));
        }
        Framing::UntilClose => assert!(lengths.is_empty() && encodings.is_empty()),
    }
    let no_body = matches!(head.status, 100..=199 | 204 | 304);
    assert_eq!(
        head.framing == Framing::Empty,
        no_body,
        "framing of {}",
        head.status
    );

    let option = |wanted: &str| {
        values(&lines, "connection").any(|v| {
            v.split(|&b| b == b',')
                .any(|o| trim_ows(o).eq_ignore_ascii_case(wanted.as_bytes()))
        })
    };
    let http_1_1 = raw.get(..8) == Some(b"HTTP/1.1");
    let keep_alive = !option("close")
        && (http_1_1 || option("keep-alive"))
        && head.framing != Framing::UntilClose;
    assert_eq!(head.keep_alive, keep_alive, "keep-alive");
}

/// The lowercase name a header is sent under, for the naive reading. `None` for headers this
/// check does not know yet (the enum is non-exhaustive).
pub fn wire_name(header: Header) -> Option<&'static str> {
    Some(match header {
        Header::RequestId => "lambda-runtime-aws-request-id",
        Header::DeadlineMs => "lambda-runtime-deadline-ms",
        Header::InvokedFunctionArn => "lambda-runtime-invoked-function-arn",
        Header::TraceId => "lambda-runtime-trace-id",
        Header::ClientContext => "lambda-runtime-client-context",
        Header::CognitoIdentity => "lambda-runtime-cognito-identity",
        Header::TenantId => "lambda-runtime-aws-tenant-id",
        Header::InvocationId => "lambda-runtime-invocation-id",
        Header::ContentType => "content-type",
        _ => return None,
    })
}

/// The header lines of a complete head, without line breaks: everything between the status
/// line and the blank line.
fn field_lines(head: &[u8]) -> Vec<&[u8]> {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect()
}

/// The trimmed values of the lines named `name` (any case), in order.
fn values<'a>(lines: &[&'a [u8]], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    lines.iter().filter_map(move |line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (line_name, value) = line.split_at(colon);
        line_name
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| trim_ows(value.get(1..).unwrap_or_default()))
    })
}

fn first_value<'a>(lines: &[&'a [u8]], name: &'a str) -> Option<&'a [u8]> {
    values(lines, name).next()
}

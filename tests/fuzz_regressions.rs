//! The fuzz targets' properties in plain `cargo test`.
//!
//! `fuzz/src/checks/` holds the properties each fuzz target asserts (see the module docs
//! there); this file includes those modules unchanged and replays, through exactly the same
//! checks, the committed seed corpora (`fuzz/corpus/<target>/seed-*`) and the inputs below:
//! ones libFuzzer found that reach rarely-taken paths, minimized, each with the outcome it
//! must have. Only tinylambda's public API is used.

#[path = "../fuzz/src/checks/mod.rs"]
mod checks;

use std::fs;
use std::path::Path;

use checks::chunked::Outcome;
use tinylambda::endpoint::EndpointError;
use tinylambda::parse::{Error, Framing, MAX_HEAD, MAX_LINE, Status};

/// Runs `check` on every committed seed of `target`; returns how many there were.
fn replay_seeds(target: &str, check: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let is_seed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"));
        if is_seed {
            let data = fs::read(&path).unwrap();
            check(&data);
            seeds += 1;
        }
    }
    assert!(seeds > 0, "no seeds in {}", dir.display());
    seeds
}

#[test]
fn parse_head_seeds_hold_every_property() {
    replay_seeds("parse_head", |data| {
        assert!(matches!(checks::head::check(data), Ok(Status::Complete(_))));
    });
}

#[test]
fn chunked_seeds_hold_every_property() {
    replay_seeds("chunked", |data| {
        assert!(matches!(
            checks::chunked::at_once(data, u64::MAX),
            Outcome::Body { .. }
        ));
        checks::chunked::check(data);
    });
}

#[test]
fn endpoint_seeds_hold_every_property() {
    replay_seeds("endpoint", |data| {
        let _ = checks::endpoint::check(data);
    });
}

#[test]
fn json_error_seeds_hold_every_property() {
    replay_seeds("json_error", |data| {
        checks::json::check(data);
    });
}

/// A head's outcome in brief: status, framing and keep-alive, or `Partial`, or the error.
#[derive(Debug, PartialEq)]
enum HeadIs {
    Complete(u16, Framing, bool),
    Partial,
    Err(Error),
}

fn head_is(data: &[u8]) -> HeadIs {
    match checks::head::check(data) {
        Ok(Status::Complete(h)) => HeadIs::Complete(h.status, h.framing, h.keep_alive),
        Ok(Status::Partial) => HeadIs::Partial,
        Err(e) => HeadIs::Err(e),
    }
}

#[test]
fn heads_hold_every_property() {
    use HeadIs::*;
    let cases: &[(&str, &[u8], HeadIs)] = &[
        ("blank line alone", b"\n\n", Err(Error::StatusLine)),
        ("crlf blank line alone", b"\r\n\r\n", Err(Error::StatusLine)),
        (
            "lf then crlf ends the head",
            b"HTTP/1.1 204 \n\r\nx",
            Complete(204, Framing::Empty, true),
        ),
        (
            "crlf then lf ends the head",
            b"HTTP/1.1 200 OK\r\n\ntail",
            Complete(200, Framing::UntilClose, false),
        ),
        (
            "cr before the final lf is not a blank line",
            b"HTTP/1.1 200 OK\r\n\r",
            Partial,
        ),
        (
            "leading zeros in content-length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n",
            Complete(200, Framing::Length(7), true),
        ),
        (
            "transfer-encoding in upper case",
            b"HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n",
            Complete(200, Framing::Chunked, true),
        ),
        (
            "cr doubled before lf",
            b"HTTP/1.1 200 OK\r\nX:\r\r\n\r\n",
            Err(Error::HeaderValue),
        ),
        (
            "connection close in upper case",
            b"HTTP/1.1 200 OK\r\nConnection: CLOSE\r\nContent-Length: 0\r\n\r\n",
            Complete(200, Framing::Length(0), false),
        ),
        (
            "connection close with keep-alive",
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive,close\r\nContent-Length: 0\r\n\r\n",
            Complete(200, Framing::Length(0), false),
        ),
        (
            "http/1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nconnection:\tKeep-Alive \r\nContent-Length: 1\r\n\r\nx",
            Complete(200, Framing::Length(1), true),
        ),
        (
            "status 999",
            b"HTTP/1.1 999 \r\n\r\n",
            Complete(999, Framing::UntilClose, false),
        ),
        (
            "304 ignores chunked",
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            Complete(304, Framing::Empty, true),
        ),
        (
            "empty header value",
            b"HTTP/1.1 200 OK\r\nLambda-Runtime-Trace-Id: \t \r\nContent-Length: 0\r\n\r\n",
            Complete(200, Framing::Length(0), true),
        ),
    ];
    for (name, data, expected) in cases {
        assert_eq!(&head_is(data), expected, "{name}");
    }
}

#[test]
fn heads_at_the_64_kib_limit_hold_every_property() {
    let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ".to_vec();
    head.resize(MAX_HEAD - 4, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        head_is(&head),
        HeadIs::Complete(200, Framing::Length(0), true)
    );
    // One byte more, and the blank line ends past the limit.
    head.insert(20, b'a');
    assert_eq!(head_is(&head), HeadIs::Err(Error::HeadTooLarge));
    // No blank line yet: partial up to the limit, too large past it.
    head.truncate(MAX_HEAD - 1);
    assert_eq!(head_is(&head), HeadIs::Partial);
    head.push(b'a');
    assert_eq!(head_is(&head), HeadIs::Partial);
    head.push(b'a');
    assert_eq!(head_is(&head), HeadIs::Err(Error::HeadTooLarge));
}

fn body(body: &[u8], rest: &[u8]) -> Outcome {
    Outcome::Body {
        body: body.to_vec(),
        rest: rest.to_vec(),
    }
}

#[test]
fn chunked_bodies_hold_every_property() {
    const ANY: u64 = u64::MAX;
    let cases: &[(&str, &[u8], u64, Outcome)] = &[
        ("empty body", b"0\r\n\r\n", ANY, body(b"", b"")),
        ("bare lf everywhere", b"0\n\n", 0, body(b"", b"")),
        (
            "next response follows",
            b"1\r\nx\r\n0\r\n\r\nHTTP/1.1",
            ANY,
            body(b"x", b"HTTP/1.1"),
        ),
        (
            "whitespace after the size",
            b"5 \t\r\nhello\r\n0\r\n\r\n",
            5,
            body(b"hello", b""),
        ),
        ("empty extension", b"0;\r\n\r\n", ANY, body(b"", b"")),
        (
            "trailer with empty value",
            b"5\r\nhello\r\n0\r\nT:\r\n\r\n",
            ANY,
            body(b"hello", b""),
        ),
        (
            "cr after data, then nothing",
            b"5\r\nhello\r",
            ANY,
            Outcome::Partial,
        ),
        (
            "cr after data, then junk",
            b"5\r\nhello\rx",
            ANY,
            Outcome::Err(Error::ChunkData),
        ),
        (
            "no digits",
            b";\r\n\r\n",
            ANY,
            Outcome::Err(Error::ChunkSize),
        ),
        (
            "17 hex digits overflow",
            b"10000000000000000\r\n",
            ANY,
            Outcome::Err(Error::ChunkSize),
        ),
        (
            "second chunk over the limit",
            b"5\r\nhello\r\n6\r\n",
            10,
            Outcome::Err(Error::BodyTooLarge),
        ),
        (
            "body of exactly the limit",
            b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
            10,
            body(b"helloworld", b""),
        ),
        (
            "trailer line without colon",
            b"0\r\nnope\r\n\r\n",
            ANY,
            Outcome::Err(Error::Trailer),
        ),
    ];
    for (name, data, limit, expected) in cases {
        assert_eq!(
            &checks::chunked::check_decoding(data, *limit),
            expected,
            "{name}"
        );
        checks::chunked::check(data);
    }
}

#[test]
fn chunk_lines_and_trailers_at_their_limits_hold_every_property() {
    // A chunk-size line of exactly MAX_LINE bytes with its CRLF, then one byte more.
    let mut line = b"1;".to_vec();
    line.resize(MAX_LINE - 2, b'x');
    line.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
    assert_eq!(checks::chunked::check_decoding(&line, 1), body(b"z", b""));
    line.insert(3, b'x');
    assert_eq!(
        checks::chunked::check_decoding(&line, 1),
        Outcome::Err(Error::ChunkSize)
    );
    // A trailer section of exactly MAX_HEAD bytes, then one byte more.
    let mut trailers = b"0\r\nX: ".to_vec();
    trailers.resize(MAX_HEAD - 4 + 3, b'v');
    trailers.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        checks::chunked::check_decoding(&trailers, 0),
        body(b"", b"")
    );
    trailers.insert(6, b'v');
    assert_eq!(
        checks::chunked::check_decoding(&trailers, 0),
        Outcome::Err(Error::HeadTooLarge)
    );
}

#[test]
fn chunked_encodings_round_trip() {
    // Recipes: a plan byte (trailers, last-chunk style, what follows), trailer fields, then
    // (length byte, style byte, data) per chunk. See fuzz/src/checks/chunked.rs.
    let recipes: &[(&str, &[u8], usize)] = &[
        ("nothing", b"", 0),
        ("one byte, CRLF", b"\x00\x00\x00x", 1),
        ("bare LF and an extension", b"\x00\x03\xc4\x05abcdef;=x", 4),
        (
            "three trailers, then a last chunk followed by another",
            b"\xc3\x03\x03Namev\x01l\x00\x00X\x01\x02a\x7fb\t\x07\x4112345678",
            8,
        ),
        (
            "a long chunk in pieces",
            b"\x80\xf1\x02\x10................................",
            32,
        ),
    ];
    for (name, recipe, payload) in recipes {
        let encoded = checks::chunked::encode(recipe);
        assert_eq!(encoded.payload.len(), *payload, "{name}: {encoded:?}");
        checks::chunked::check_round_trip(recipe);
    }
}

type Parsed = Result<(String, u16, String, String), EndpointError>;

fn ok(host: &str, port: u16, authority: &str, prefix: &str) -> Parsed {
    Ok((host.into(), port, authority.into(), prefix.into()))
}

#[test]
fn endpoints_hold_every_property() {
    let cases: &[(&str, Parsed)] = &[
        ("[::1]", ok("::1", 80, "[::1]", "")),
        ("[:]:5", ok(":", 5, "[:]:5", "")),
        ("a:00080", ok("a", 80, "a:00080", "")),
        ("a//b/", ok("a", 80, "a", "//b")),
        (
            "127.0.0.1:9001/.rt//",
            ok("127.0.0.1", 9001, "127.0.0.1:9001", "/.rt"),
        ),
        ("HtTp://x:1/", ok("x", 1, "x:1", "")),
        ("http:/a", Err(EndpointError::Port)),
        ("a:065535", Err(EndpointError::Port)),
        ("[::1]:", Err(EndpointError::Port)),
        ("http://", Err(EndpointError::Host)),
        ("\u{a0}127.0.0.1:9001", Err(EndpointError::Host)),
        ("a:9001/\u{e9}", Err(EndpointError::Path)),
        ("\t\r\n \x0c", Err(EndpointError::Empty)),
    ];
    for (value, expected) in cases {
        assert_eq!(
            &checks::endpoint::check(value.as_bytes()),
            expected,
            "{value:?}"
        );
    }
}

#[test]
fn error_documents_hold_every_property() {
    // Over MAX_ERROR_TYPE bytes, with the cut falling inside a two-byte character.
    let long_type = format!("a{}", "\u{e9}".repeat(200));
    let cases: &[(&str, &str)] = &[
        ("", "\u{0}\u{1}\u{1f} \u{7f}"),
        ("\"\\", "\\u0000 is not an escape here"),
        (
            "Function.Error",
            "\u{fffd}\u{10ffff}\u{1f980}\u{2028}\u{2029}</script>",
        ),
        ("a\r\nInjected: yes", "\r\n\r\nHTTP/1.1 200 OK"),
        (long_type.as_str(), "long type"),
    ];
    for (error_type, message) in cases {
        let doc = checks::json::check_document(error_type, message);
        assert!(doc.iter().all(|&b| b >= b' '), "{doc:?}");
    }
    let mut input = b"Type\xff".to_vec();
    input.extend_from_slice(b"invalid \xc3 UTF-8");
    let doc = checks::json::check(&input);
    let text = String::from_utf8(doc).unwrap();
    assert!(text.contains("invalid \u{fffd} UTF-8"), "{text}");
}

#[test]
fn the_json_checker_is_strict() {
    use checks::json::{Json, parse};
    for bad in [
        &br#"{"a":1,}"#[..],
        b"[1,]",
        b"\"\\u00\"",
        b"\"a\nb\"",
        b"\"\\ud800\"",
        b"\"\\udc00\\ud800\"",
        b"\"\\ud800\\u0041\"",
        b"01",
        b"1.",
        b".5",
        b"+1",
        b"\"\\x\"",
        b"{}x",
        b"\"\xff\"",
        br#"{"a" 1}"#,
        b"[",
        b"",
        b"tru",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(parse(&[b'['; 200]).is_err(), "depth");
    assert_eq!(
        parse(br#" {"a" : [1, -0.5e+3, true, false, null, "\u00e9\ud83e\udd80\/\t"]} "#),
        Ok(Json::Object(vec![(
            "a".into(),
            Json::Array(vec![
                Json::Number("1".into()),
                Json::Number("-0.5e+3".into()),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::String("\u{e9}\u{1f980}/\t".into()),
            ])
        )]))
    );
}

/// Heads libFuzzer built from the seeds in its first 10-minute run, the smallest of their kind
/// (by outcome, framing and line ends), byte for byte.
#[test]
fn heads_found_by_the_fuzzer_hold_every_property() {
    use HeadIs::*;
    let cases: &[(&[u8], HeadIs)] = &[
        (b"T", Partial),
        (b"\n\n0", Err(Error::StatusLine)),
        (b"HTTP/1.0 200\r\n\x98:0\r\n\r\n", Err(Error::HeaderName)),
        (b"HTTP/1.1 200 OK\nla:\x0f13MGT\n\r\n", Err(Error::HeaderValue)),
        (b"HTTP/1.1 200 i'lose\ncontent-length:\n\nok", Err(Error::ContentLength)),
        (b"HTTP/1.1 200 ue\r\ntransfer-encoding:e\r\n\n", Err(Error::TransferEncoding)),
        (b"HTTP/1.1 199 c\r\nlambda-runtime-trace-id:1\n\nok", Complete(199, Framing::Empty, true)),
        (b"HTTP/1.1 200 \ncontent-length: 0\r\ne: \n\r\n", Complete(200, Framing::Length(0), true)),
        (b"HTTP/1.1 200 OK\x9d\ncontent-length: 02\n\nok", Complete(200, Framing::Length(2), true)),
        (
            b"HTTP/1.0 200 Olose\ncontent-length: 88888888877777764\n\n\n",
            Complete(200, Framing::Length(88888888877777764), false),
        ),
        (
            b"HTTP/1.1 200 OK\nlambda-runtime-aws-request-id: \x95\x9d\x9c\xf5\x9ce\ncontent-length: 2\n\nok",
            Complete(200, Framing::Length(2), true),
        ),
        (
            b"HTTP/1.1 400 \x8b&: Sa524\nTransfer-Encoding: chunked\r\n\n\r242\rxxxxx",
            Complete(400, Framing::Chunked, true),
        ),
        (
            b"HTTP/1.1 500 In0ternng\xc8\xf2.1 200 O-$r clos\nlambda-runtime-aws-request-id: \t: \xff\xcc\n\n",
            Complete(500, Framing::UntilClose, false),
        ),
    ];
    for (data, expected) in cases {
        assert_eq!(
            &head_is(data),
            expected,
            "{:?}",
            String::from_utf8_lossy(data)
        );
    }
}

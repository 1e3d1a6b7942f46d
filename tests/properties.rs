//! Properties of the parser, checked on thousands of generated responses with a small
//! deterministic generator (no crates): random header case and whitespace, unknown headers,
//! chunk sizes, chunk extensions, trailers, split points, trailing garbage, truncation and
//! byte flips. The parser either returns exactly what was encoded or an `Err`, and never
//! panics. Each property prints its seed on failure so the case can be replayed.
//!
//! Under Miri (`cargo +nightly miri test --test properties`), which interprets every
//! instruction and checks each memory access, each property runs its first cases only: the
//! same generator and seeds, one in `TINYLAMBDA_MIRI_DIVISOR` of them (default 400, about a
//! minute here; `TINYLAMBDA_MIRI_DIVISOR=100` is the fuller run, about four).

use tinylambda::parse::{Chunked, Framing, Header, Status, head_end, parse_head};

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A header value: visible ASCII and spaces inside, no surrounding whitespace.
    fn value(&mut self) -> String {
        let len = 1 + self.below(40);
        let mut v: String = (0..len)
            .map(|_| (b'!' + self.below(94) as u8) as char)
            .collect();
        if len > 2 && self.chance(30) {
            v.insert(len / 2, ' ');
        }
        v
    }

    fn mixed_case(&mut self, name: &str) -> String {
        name.chars()
            .map(|c| {
                if self.chance(50) {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    fn whitespace(&mut self) -> &'static str {
        [" ", "", "\t", "  ", " \t "][self.below(5)]
    }
}

const LAMBDA_HEADERS: [(Header, &str); 8] = [
    (Header::RequestId, "Lambda-Runtime-Aws-Request-Id"),
    (Header::DeadlineMs, "Lambda-Runtime-Deadline-Ms"),
    (
        Header::InvokedFunctionArn,
        "Lambda-Runtime-Invoked-Function-Arn",
    ),
    (Header::TraceId, "Lambda-Runtime-Trace-Id"),
    (Header::ClientContext, "Lambda-Runtime-Client-Context"),
    (Header::CognitoIdentity, "Lambda-Runtime-Cognito-Identity"),
    (Header::TenantId, "Lambda-Runtime-Aws-Tenant-Id"),
    (Header::InvocationId, "Lambda-Runtime-Invocation-Id"),
];

/// How many of a property's `n` cases to run: all of them, or one in
/// `TINYLAMBDA_MIRI_DIVISOR` (default 400) under Miri.
fn cases(n: u64) -> u64 {
    if !cfg!(miri) {
        return n;
    }
    let divisor = std::env::var("TINYLAMBDA_MIRI_DIVISOR")
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|&d| d > 0)
        .unwrap_or(400);
    (n / divisor).max(4)
}

/// A generated response and what parsing it must give.
struct Case {
    bytes: Vec<u8>,
    status: u16,
    chunked: bool,
    close: bool,
    headers: Vec<(Header, String)>,
    body: Vec<u8>,
}

fn chunk_encode(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let max = if rng.chance(20) { 5000 } else { 64 };
        let size = (1 + rng.below(max)).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        let hex = format!("{size:x}");
        let hex = if rng.chance(30) {
            hex.to_uppercase()
        } else {
            hex
        };
        let zeros = "0".repeat(if rng.chance(10) { rng.below(4) } else { 0 });
        out.extend_from_slice(zeros.as_bytes());
        out.extend_from_slice(hex.as_bytes());
        if rng.chance(25) {
            let ext = [";a", ";name=value", " ; q=\"x y;z\"", ";k=v;flag", "\t;e"][rng.below(5)];
            out.extend_from_slice(ext.as_bytes());
        }
        out.extend_from_slice(if rng.chance(10) { b"\n" } else { b"\r\n" });
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    out.extend_from_slice(b"0");
    if rng.chance(20) {
        out.extend_from_slice(b";last");
    }
    out.extend_from_slice(b"\r\n");
    for _ in 0..rng.below(3) {
        let value = rng.value();
        out.extend_from_slice(format!("X-Trailer-{}: {value}\r\n", rng.below(100)).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn generate(rng: &mut Rng) -> Case {
    let status = [200u16, 202, 200, 400, 413, 500][rng.below(6)];
    let chunked = rng.chance(50);
    let close = rng.chance(15);
    let body_len = match rng.below(10) {
        0 => 0,
        1 => 2049 + rng.below(10_000),
        _ => rng.below(300),
    };
    let body = rng.bytes(body_len);
    let mut lines = vec![format!(
        "HTTP/1.1 {status} {}",
        ["OK", "Accepted", "", "Whatever It Is"][rng.below(4)]
    )];
    let mut headers = Vec::new();
    for (header, name) in LAMBDA_HEADERS {
        if header == Header::RequestId || rng.chance(60) {
            let value = rng.value();
            let (a, b) = (rng.whitespace(), rng.whitespace());
            lines.push(format!("{}:{a}{value}{b}", rng.mixed_case(name)));
            headers.push((header, value));
        }
        if rng.chance(30) {
            lines.push(format!("X-Unknown-{}: {}", rng.below(1000), rng.value()));
        }
    }
    if close {
        lines.push(format!(
            "{}: {}",
            rng.mixed_case("Connection"),
            ["close", "Close", "foo, close"][rng.below(3)]
        ));
    }
    let mut bytes = Vec::new();
    if chunked {
        lines.push(format!(
            "{}: {}",
            rng.mixed_case("Transfer-Encoding"),
            rng.mixed_case("chunked")
        ));
    } else {
        lines.push(format!(
            "{}:{}{}",
            rng.mixed_case("Content-Length"),
            rng.whitespace(),
            body.len()
        ));
    }
    let eol: &[u8] = if rng.chance(10) { b"\n" } else { b"\r\n" };
    for line in &lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(eol);
    }
    bytes.extend_from_slice(eol);
    if chunked {
        let encoded = chunk_encode(rng, &body);
        bytes.extend_from_slice(&encoded);
    } else {
        bytes.extend_from_slice(&body);
    }
    Case {
        bytes,
        status,
        chunked,
        close,
        headers,
        body,
    }
}

/// What a complete parse gave.
#[derive(Debug, PartialEq)]
struct Parsed {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    headers: Vec<(Header, Vec<u8>)>,
    body: Vec<u8>,
    consumed: usize,
}

/// Parses `bytes` as a transport would: appending pieces of the given sizes (cycled),
/// finding the head incrementally, then decoding the body with compaction between reads.
/// `Ok(None)` when the bytes end before the response does.
fn parse_in_pieces(
    bytes: &[u8],
    pieces: &[usize],
) -> Result<Option<Parsed>, tinylambda::parse::Error> {
    let mut buf: Vec<u8> = Vec::new();
    let mut sent = 0;
    let mut sizes = pieces.iter().cycle();
    let mut more = |buf: &mut Vec<u8>| -> bool {
        if sent == bytes.len() {
            return false;
        }
        let n = (*sizes.next().unwrap()).clamp(1, bytes.len() - sent);
        buf.extend_from_slice(&bytes[sent..sent + n]);
        sent += n;
        true
    };
    let mut scan = 0;
    let head = loop {
        if let Some(end) = head_end(&buf, scan) {
            match parse_head(&buf[..end])? {
                Status::Complete(head) => {
                    assert_eq!(head.len, end, "head length is where the blank line ends");
                    break head;
                }
                Status::Partial => unreachable!("a whole head cannot be partial"),
            }
        }
        scan = buf.len().saturating_sub(3);
        if !more(&mut buf) {
            return Ok(None);
        }
    };
    let headers: Vec<(Header, Vec<u8>)> = Header::ALL
        .iter()
        .filter_map(|&h| {
            let span = head.header(h)?;
            assert!(span.end as usize <= head.len, "spans lie within the head");
            Some((h, span.get(&buf).to_vec()))
        })
        .collect();
    let (body, consumed) = match head.framing {
        Framing::Length(n) => {
            let end = head.len + n as usize;
            while buf.len() < end {
                if !more(&mut buf) {
                    return Ok(None);
                }
            }
            (buf[head.len..end].to_vec(), end)
        }
        Framing::Chunked => {
            let mut decoder = Chunked::new(1 << 24);
            let mut raw = buf.split_off(head.len);
            // Bytes dropped by compaction: `consumed` counts in the compacted buffer.
            let mut compacted = 0;
            loop {
                if let Status::Complete(b) = decoder.decode(&mut raw)? {
                    assert!(b.start <= b.end && b.end <= b.consumed && b.consumed <= raw.len());
                    break (
                        raw[b.start..b.end].to_vec(),
                        head.len + b.consumed + compacted,
                    );
                }
                let keep = decoder.compact(&mut raw);
                compacted += raw.len() - keep;
                raw.truncate(keep);
                buf.truncate(head.len);
                buf.extend_from_slice(&raw);
                if !more(&mut buf) {
                    return Ok(None);
                }
                raw = buf.split_off(head.len);
            }
        }
        Framing::Empty | Framing::UntilClose => (Vec::new(), head.len),
    };
    Ok(Some(Parsed {
        status: head.status,
        framing: head.framing,
        keep_alive: head.keep_alive,
        headers,
        body,
        consumed,
    }))
}

fn pieces(rng: &mut Rng) -> Vec<usize> {
    match rng.below(4) {
        0 => vec![usize::MAX],
        1 => vec![1],
        2 => vec![1 + rng.below(7)],
        _ => (0..1 + rng.below(5)).map(|_| 1 + rng.below(3000)).collect(),
    }
}

#[test]
fn generated_responses_parse_to_exactly_what_was_encoded() {
    for seed in 1..=cases(3000) {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let case = generate(&mut rng);
        let split = pieces(&mut rng);
        let parsed = parse_in_pieces(&case.bytes, &split)
            .unwrap_or_else(|e| panic!("seed {seed}: valid response rejected: {e}"))
            .unwrap_or_else(|| panic!("seed {seed}: valid response seen as incomplete"));
        assert_eq!(parsed.status, case.status, "seed {seed}");
        assert_eq!(parsed.body, case.body, "seed {seed}: body");
        assert_eq!(parsed.consumed, case.bytes.len(), "seed {seed}: consumed");
        assert_eq!(parsed.keep_alive, !case.close, "seed {seed}: keep-alive");
        assert_eq!(
            parsed.framing == Framing::Chunked,
            case.chunked,
            "seed {seed}: framing"
        );
        let expected: Vec<(Header, Vec<u8>)> = case
            .headers
            .iter()
            .map(|(h, v)| (*h, v.clone().into_bytes()))
            .collect();
        let mut got: Vec<(Header, Vec<u8>)> = parsed
            .headers
            .into_iter()
            .filter(|(h, _)| *h != Header::ContentType)
            .collect();
        got.sort_by_key(|(h, _)| *h as usize);
        let mut want = expected;
        want.sort_by_key(|(h, _)| *h as usize);
        assert_eq!(got, want, "seed {seed}: header values");
    }
}

#[test]
fn split_points_never_change_the_result() {
    for seed in 1..=cases(500) {
        let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1);
        let case = generate(&mut rng);
        let whole = parse_in_pieces(&case.bytes, &[usize::MAX]).expect("whole");
        for _ in 0..8 {
            let split = pieces(&mut rng);
            assert_eq!(
                parse_in_pieces(&case.bytes, &split).expect("pieces"),
                whole,
                "seed {seed}, pieces {split:?}"
            );
        }
    }
}

#[test]
fn truncated_responses_are_incomplete_never_wrong() {
    for seed in 1..=cases(400) {
        let mut rng = Rng(seed.wrapping_mul(0x94d0_49bb_1331_11eb) | 1);
        let case = generate(&mut rng);
        for _ in 0..10 {
            let cut = rng.below(case.bytes.len());
            let result = parse_in_pieces(&case.bytes[..cut], &pieces(&mut rng));
            assert!(
                matches!(result, Ok(None)),
                "seed {seed}: prefix of {cut} of {} bytes gave {result:?}",
                case.bytes.len()
            );
        }
    }
}

#[test]
fn trailing_garbage_is_left_unconsumed() {
    for seed in 1..=cases(500) {
        let mut rng = Rng(seed.wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1);
        let case = generate(&mut rng);
        let mut bytes = case.bytes.clone();
        let garbage = 1 + rng.below(100);
        bytes.extend_from_slice(&rng.bytes(garbage));
        let parsed = parse_in_pieces(&bytes, &pieces(&mut rng))
            .expect("valid")
            .expect("complete");
        assert_eq!(parsed.body, case.body, "seed {seed}");
        assert_eq!(
            parsed.consumed,
            case.bytes.len(),
            "seed {seed}: garbage must not be consumed"
        );
    }
}

#[test]
fn flipped_bytes_give_an_error_or_a_consistent_parse_never_a_panic() {
    for seed in 1..=cases(3000) {
        let mut rng = Rng(seed.wrapping_mul(0x2127_599b_f432_5c37) | 1);
        let mut bytes = generate(&mut rng).bytes;
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            bytes[at] = match rng.below(4) {
                0 => b'\r',
                1 => b'\n',
                2 => b':',
                _ => rng.next() as u8,
            };
        }
        // Any outcome but a panic is fine; a complete parse must stay within the input.
        if let Ok(Some(parsed)) = parse_in_pieces(&bytes, &pieces(&mut rng)) {
            assert!(parsed.consumed <= bytes.len(), "seed {seed}");
            assert!(parsed.body.len() <= bytes.len(), "seed {seed}");
        }
    }
}

#[test]
fn random_bytes_never_panic_the_head_parser_or_the_decoder() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..cases(20_000) {
        let len = rng.below(200);
        let mut bytes = rng.bytes(len);
        if rng.chance(50) {
            bytes.splice(0..0, b"HTTP/1.1 200 OK\r\n".iter().copied());
        }
        if rng.chance(50) {
            bytes.extend_from_slice(b"\r\n\r\n");
        }
        if let Ok(Status::Complete(head)) = parse_head(&bytes) {
            assert!(head.len <= bytes.len());
        }
        let mut raw = bytes.clone();
        if let Ok(Status::Complete(b)) = Chunked::new(1 << 20).decode(&mut raw) {
            assert!(b.start <= b.end && b.end <= raw.len() && b.consumed <= raw.len());
        }
    }
}

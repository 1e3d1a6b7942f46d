#!/usr/bin/env python3
"""Writes the seed corpora, fuzz/corpus/<target>/seed-*, from real Runtime API traffic.

The `cargo lambda watch --only-lambda-apis` responses follow captures from cargo-lambda
1.9.2: the /next and POST replies byte for byte (header names, order and case kept; only
ids and dates vary), the 408 and 500 replies with the status line, framing and body that
were recorded. The
Lambda service and its emulator (RIE) are Go net/http servers: their responses are built
the way net/http writes them (canonical header names in sorted order, Content-Length up to
2048 bytes of body and chunked above), with the headers and values of the Runtime API docs.
Run from anywhere: python3 fuzz/seeds/make.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")

UUID = b"8476a536-e9f4-11e8-9739-2dfe598c3fcd"
TRACE = b"Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
ARN = b"arn:aws:lambda:us-east-2:123456789012:function:custom-runtime"
DATE = b"Sat, 21 Nov 2026 13:53:13 GMT"


def chunk(data, ext=b""):
    return b"%x%s\r\n%s\r\n" % (len(data), ext, data)


def chunked(*parts, trailers=b""):
    return b"".join(chunk(p) for p in parts) + b"0\r\n" + trailers + b"\r\n"


EVENT = b'{"a":"xx"}'
BIG = b'{"records":[' + b",".join(b'{"id":%d,"body":"0123456789abcdef"}' % i for i in range(60)) + b"]}"

# cargo lambda watch --only-lambda-apis: lower-case names, no content-type, constant deadline.
CARGO_LAMBDA_NEXT = (
    b"HTTP/1.1 200 OK\r\n"
    b"lambda-runtime-aws-request-id: 09befa13-5ed8-4988-b046-e8bb624315f7\r\n"
    b"lambda-runtime-deadline-ms: 600000\r\n"
    b"lambda-runtime-invoked-function-arn: function-arn\r\n"
    b"lambda-runtime-trace-id: Root=1-6b01a249-348044f9cc4185f6a491f27c;Parent=d0c67a7c370b1c4d;Sampled=1\r\n"
    b"vary: origin, access-control-request-method, access-control-request-headers\r\n"
    b"access-control-allow-credentials: true\r\n"
    b"content-length: 10\r\n"
    b"date: " + DATE + b"\r\n"
    b"\r\n" + EVENT
)
CARGO_LAMBDA_NEXT_CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"lambda-runtime-aws-request-id: 81e64682-35ca-41e4-a15c-794a113504b6\r\n"
    b"lambda-runtime-deadline-ms: 600000\r\n"
    b"lambda-runtime-invoked-function-arn: function-arn\r\n"
    b"lambda-runtime-trace-id: Root=1-6b01a2c2-b27017f34c88e8ef99d2d426;Parent=7cccdff6c579bc32;Sampled=1\r\n"
    b"lambda-runtime-client-context: eyJjdXN0b20iOnsiayI6InYifX0=\r\n"
    b"vary: origin, access-control-request-method, access-control-request-headers\r\n"
    b"access-control-allow-credentials: true\r\n"
    b"transfer-encoding: chunked\r\n"
    b"date: " + DATE + b"\r\n"
    b"\r\n" + chunked(BIG[:7], BIG[7:900], BIG[900:907], BIG[907:])
)
CARGO_LAMBDA_POSTED = (
    b"HTTP/1.1 200 OK\r\n"
    b"vary: origin, access-control-request-method, access-control-request-headers\r\n"
    b"access-control-allow-credentials: true\r\n"
    b"content-length: 0\r\n"
    b"date: " + DATE + b"\r\n\r\n"
)
CARGO_LAMBDA_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\ndate: " + DATE + b"\r\n\r\n"
GONE_BODY = b'{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}'
CARGO_LAMBDA_GONE = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: %d\r\n\r\n" % len(GONE_BODY) + GONE_BODY
)

# The Lambda service and RIE (Go net/http): canonical names in sorted order, Content-Length
# up to 2048 bytes of body, chunked above.
def go_next(body, extra=b""):
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/json\r\n"
        b"Date: " + DATE + b"\r\n"
        b"Lambda-Runtime-Aws-Request-Id: " + UUID + b"\r\n"
        + extra +
        b"Lambda-Runtime-Deadline-Ms: 1542409706888\r\n"
        b"Lambda-Runtime-Invoked-Function-Arn: " + ARN + b"\r\n"
        b"Lambda-Runtime-Trace-Id: " + TRACE + b"\r\n"
    )
    if len(body) <= 2048:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body)


GO_BIG = b'"' + b"x" * 2047 + b'"'  # 2049 bytes: Go switches to chunked
GO_EXTRA = (
    b"Lambda-Runtime-Aws-Tenant-Id: tenant-42\r\n"
    b'Lambda-Runtime-Client-Context: {"custom":{"k":"v"},"env":{"platform":"x"}}\r\n'
    b'Lambda-Runtime-Cognito-Identity: {"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}\r\n'
)
ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nDate: " + DATE + b"\r\n"
    b"Content-Length: 16\r\n\r\n" + b'{"status":"OK"}\n'
)


def go_error(code, reason, error_type, message):
    body = b'{"errorMessage":"%s","errorType":"%s"}\n' % (message, error_type)
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nDate: " % (code, reason) + DATE + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


HEADS = {
    "cargo-lambda-next": CARGO_LAMBDA_NEXT,
    "cargo-lambda-next-chunked": CARGO_LAMBDA_NEXT_CHUNKED,
    "cargo-lambda-posted": CARGO_LAMBDA_POSTED,
    "cargo-lambda-408": CARGO_LAMBDA_TIMEOUT,
    "cargo-lambda-500": CARGO_LAMBDA_GONE,
    "cargo-lambda-http10": b"HTTP/1.0 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    "go-next": go_next(b'{"hello":"world"}'),
    "go-next-chunked": go_next(GO_BIG),
    "go-next-optional-headers": go_next(EVENT, GO_EXTRA),
    "go-next-invocation-id": go_next(EVENT, b"Lambda-Runtime-Invocation-Id: 3f1c2a9e-nonce\r\n"),
    "go-202": ACCEPTED,
    "go-400": go_error(400, b"Bad Request", b"InvalidRequestID", b"Invalid request ID"),
    "go-403": go_error(403, b"Forbidden", b"InvalidStateTransition", b"State transition is not allowed"),
    "go-410": go_error(410, b"Gone", b"InvokeTimeout", b"Invoke timed out"),
    "go-413": go_error(413, b"Request Entity Too Large", b"RequestEntityTooLarge",
                       b"Exceeded maximum allowed payload size (6291556 bytes)."),
    "go-500": go_error(500, b"Internal Server Error", b"Runtime.Unknown", b"Non-recoverable state"),
    "continue-then-next": b"HTTP/1.1 100 Continue\r\n\r\n" + go_next(EVENT),
    "no-content": b"HTTP/1.1 204 No Content\r\nDate: " + DATE + b"\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nlambda-runtime-aws-request-id: abc\nconnection: keep-alive, close\ncontent-length: 2\n\nok",
    "until-close": b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: x\r\n\r\nbody until close",
}

# Chunked bodies, as they follow the head: Go's (one chunk per Write), cargo lambda's (one
# chunk per socket read, here [7, 4000, 7, 986] scaled down), extensions, trailers.
STREAM_TRAILERS = (
    b"Lambda-Runtime-Function-Error-Type: Function.Error\r\n"
    b"Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJib29tIn0=\r\n"
)
CHUNKED = {
    "go-single-chunk": chunked(GO_BIG),
    "go-two-writes": chunked(EVENT, b'{"more":true}'),
    "cargo-lambda-reads": chunked(BIG[:7], BIG[7:400], BIG[400:407], BIG[407:]),
    "empty": b"0\r\n\r\n",
    "extensions": b"5;name=value\r\nhello\r\n1 ; quoted = \"a \\\" b\" ; flag\r\n \r\n6\r\nworld!\r\n0\r\n\r\n",
    "trailers": chunked(EVENT, trailers=STREAM_TRAILERS),
    "upper-hex-leading-zeros": b"000A\r\n0123456789\r\n00b\r\nabcdefghijk\r\n0000\r\n\r\n",
    "bare-lf": b"4\nabcd\n0\n\n",
    "next-response-follows": chunked(b"x") + b"HTTP/1.1 200 OK\r\n",
}

ENDPOINTS = {
    "aws": "127.0.0.1:9001",
    "cargo-lambda": "http://127.0.0.1:9000/.rt",
    "cargo-lambda-default": "http://[::]:9000/.rt/_",
    "ipv6-loopback": "[::1]:9001",
    "path-prefix": "localhost:9001/foo",
    "trailing-slash": "HTTP://localhost:9001/foo/",
    "whitespace": "  127.0.0.1:9200/.rt\n",
    "no-port": "http://runtime.local",
    "https": "https://127.0.0.1:9001",
    "bad-port": "127.0.0.1:65536",
    "query": "127.0.0.1:9001/a?b",
}

# error type, 0xFF, message.
ERRORS = {
    "plain": ("Function.Error", "boom"),
    "quotes": ("Function.Error", 'a "quoted" \\path\\ and a /slash/'),
    "newlines": ("Runtime.HandlerPanic", "panicked at src/main.rs:3:5:\nexplicit panic\r\n\tnote: run with RUST_BACKTRACE=1"),
    "controls": ("T\u0000\u001f", "nul \u0000 bell \u0007 esc \u001b del \u007f"),
    "unicode": ("Function.Fehler", "Größe ≠ 日本 🦀 \u2028 \u2029 \ufeff"),
    "empty": ("", ""),
    "type-with-newline": ("Bad\r\nInjected: header", "m"),
    "json-in-message": ("Function.Error", '{"errorMessage":"nested","stackTrace":["a"]}'),
}


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


for name, data in HEADS.items():
    write("parse_head", name, data)
for name, data in CHUNKED.items():
    write("chunked", name, data)
for name, value in ENDPOINTS.items():
    write("endpoint", name, value.encode())
for name, (error_type, message) in ERRORS.items():
    write("json_error", name, error_type.encode() + b"\xff" + message.encode())

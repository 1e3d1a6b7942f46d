//! Time to first byte of a 10 MiB response, streamed (`run_streaming`) versus buffered
//! (`run`), against an in-process fake Runtime API on 127.0.0.1.
//!
//! `cargo bench --features streaming --bench stream`. The bench binary is also the
//! bootstrap: re-run with `STREAM_BENCH_MODE=buffered|streamed`, it serves a handler that
//! produces the same 10 MiB in 160 pieces of 64 KiB, each piece costing some computation
//! (as rendering or a database cursor would). The fake API measures, per invocation, the
//! time from writing the event to the first body byte of the response, and to the last.
//! Interleaved rounds; medians; the ratio is what carries across machines.
//!
//! Environment: `STREAM_ROUNDS` (default 5), `STREAM_N` (invocations per mode and round,
//! default 10).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tinylambda::{Context, Error, Stream};

const PIECES: usize = 160;
const PIECE: usize = 64 * 1024;

/// One piece of the response: deterministic bytes that take some work to compute.
fn piece(index: usize, out: &mut [u8]) {
    let mut state = index as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    for byte in out.iter_mut() {
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
        }
        *byte = b'a' + (state % 26) as u8;
    }
}

fn buffered(_: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    let mut body = vec![0; PIECES * PIECE];
    for (i, chunk) in body.chunks_mut(PIECE).enumerate() {
        piece(i, chunk);
    }
    Ok(body)
}

fn streamed(_: &[u8], _: &Context, out: &mut Stream) -> Result<(), Error> {
    let mut chunk = vec![0; PIECE];
    for i in 0..PIECES {
        piece(i, &mut chunk);
        out.write_all(&chunk)?;
    }
    Ok(())
}

fn main() {
    match std::env::var("STREAM_BENCH_MODE").as_deref() {
        Ok("buffered") => tinylambda::run(buffered),
        Ok("streamed") => tinylambda::run_streaming(streamed),
        _ => {}
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env_number("STREAM_ROUNDS", 5);
    let n = env_number("STREAM_N", 10);
    let modes = ["buffered", "streamed"];
    let mut first = [Vec::new(), Vec::new()];
    let mut last = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (m, mode) in modes.iter().enumerate() {
            for (ttfb, total) in drive(mode, n) {
                first[m].push(ttfb);
                last[m].push(total);
            }
        }
    }
    println!(
        "\n10 MiB responses (160 pieces of 64 KiB), {n} invocations x {rounds} rounds per mode, medians\n"
    );
    println!("| handler | time to first byte | vs buffered | time to last byte | vs buffered |");
    println!("|---|---|---|---|---|");
    let (base_first, base_last) = (median(&first[0]), median(&last[0]));
    for (m, mode) in modes.iter().enumerate() {
        let (f, l) = (median(&first[m]), median(&last[m]));
        println!(
            "| {mode} (`{}`) | {:.2} ms | {:.3}x | {:.2} ms | {:.2}x |",
            if m == 0 { "run" } else { "run_streaming" },
            f * 1e3,
            f / base_first,
            l * 1e3,
            l / base_last
        );
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `n` invocations of the bootstrap in `mode`; returns (first byte, last byte) times.
fn drive(mode: &str, n: usize) -> Vec<(f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env_clear()
        .env("STREAM_BENCH_MODE", mode)
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn bootstrap");
    let mut times = Vec::new();
    let mut conn = accept(&listener);
    for i in 0..n {
        let mut request = Reader::new(&mut conn);
        let (next, _) = request.head();
        assert!(next.starts_with("GET "), "{next}");
        let event = format!(
            "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: stream-{i}\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        let start = Instant::now();
        conn.write_all(event.as_bytes()).expect("event");
        // The POST may come on a new connection (a streamed response closes its own).
        let mut reader = Reader::new(&mut conn);
        let (line, headers) = reader.head();
        assert!(line.starts_with("POST "), "{line}");
        let (first, size) = reader.body(&headers, start);
        let total = start.elapsed().as_secs_f64();
        assert_eq!(size, PIECES * PIECE, "response size");
        conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}")
            .expect("reply");
        times.push((first, total));
        if mode == "streamed" {
            conn = accept(&listener);
        }
    }
    let mut reader = Reader::new(&mut conn);
    reader.head();
    let _ = conn.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    times
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (conn, _) = listener.accept().expect("accept");
    conn.set_nodelay(true).expect("nodelay");
    conn
}

/// Reads a request from a connection, keeping what it has read.
struct Reader<'c> {
    conn: &'c mut TcpStream,
    buf: Vec<u8>,
    at: usize,
}

impl<'c> Reader<'c> {
    fn new(conn: &'c mut TcpStream) -> Self {
        Reader {
            conn,
            buf: Vec::with_capacity(1 << 20),
            at: 0,
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 1 << 16];
        let n = self.conn.read(&mut chunk).expect("read");
        assert!(n > 0, "bootstrap closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf[self.at..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.at..self.at + end]).into_owned();
                self.at += end + 2;
                return line;
            }
            self.fill();
        }
    }

    /// The request line and the header lines.
    fn head(&mut self) -> (String, Vec<String>) {
        let first = self.line();
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return (first, headers);
            }
            headers.push(line.to_ascii_lowercase());
        }
    }

    /// Reads the whole body; returns when its first byte arrived (seconds after `start`)
    /// and its size.
    fn body(&mut self, headers: &[String], start: Instant) -> (f64, usize) {
        while self.at == self.buf.len() {
            self.fill();
        }
        let first = start.elapsed().as_secs_f64();
        if let Some(length) = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length: "))
        {
            let length: usize = length.parse().expect("length");
            while self.buf.len() < self.at + length {
                self.fill();
            }
            return (first, length);
        }
        let mut size = 0;
        loop {
            let chunk = usize::from_str_radix(&self.line(), 16).expect("chunk size");
            if chunk == 0 {
                while !self.line().is_empty() {}
                return (first, size);
            }
            while self.buf.len() < self.at + chunk + 2 {
                self.fill();
            }
            self.at += chunk + 2;
            size += chunk;
        }
    }
}

//! What the `tinylambda-emu` test files share: the emulator started as a server or run to
//! its end, a keep-alive caller, the raw Runtime API calls a hand-written bootstrap makes,
//! and waits that are always bounded.
//!
//! A test that needs a bootstrap of its own passes [`role`]'s arguments to the emulator: the
//! emulator then runs the test binary again, filtered to that test, with
//! [`ROLE`] set, and the test file's own `child()` (the first line of every such test) turns
//! the process into that bootstrap.
//!
//! A test never samples a log or a process state once: it waits for it, up to [`LIMIT`]
//! ([`wait_until`], [`Emu::wait_log`]), so that a loaded machine makes it slower, not red.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The emulator binary cargo built for these tests.
pub const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");
/// Set in a bootstrap child's environment: the role it plays.
pub const ROLE: &str = "TINYLAMBDA_EMU_TEST_ROLE";
/// How long any one wait in these tests may take.
pub const LIMIT: Duration = Duration::from_secs(60);
/// The invoke endpoint.
pub const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";
/// `SIGTERM`.
pub const SIGTERM: i32 = 15;

unsafe extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: a plain system call with integer arguments.
    unsafe { kill(pid as i32, signal) };
}

// ---------------------------------------------------------------------------------------
// Bootstraps

/// An example cargo builds for `cargo test`, next to this test binary's directory.
pub fn example(name: &str) -> String {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: cargo test builds the examples",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// Emulator arguments that run this test binary as a bootstrap playing `name`, filtered to
/// `test` (the calling test), after `options`.
pub fn role(test: &str, name: &str, options: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let mut args: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "--env",
            &format!("{ROLE}={name}"),
            "--env",
            "RUST_BACKTRACE=0",
            "--",
            &exe.to_string_lossy(),
            test,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from),
    );
    args
}

/// Emulator arguments that invoke once with `event` this test binary playing `name` (see
/// [`role`]).
pub fn invoke_role(event: &str, test: &str, name: &str, options: &[&str]) -> Vec<String> {
    let mut args = vec!["--invoke".to_owned(), event.to_owned()];
    args.extend(role(test, name, options));
    args
}

/// The role this process plays, when it is a bootstrap child.
pub fn my_role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// The event a test sends to tell a role what to do: `text` as a JSON string (Lambda's
/// Invoke API takes only JSON: `"pid"`, `"sleep"`).
pub fn word(text: &str) -> Vec<u8> {
    format!("\"{text}\"").into_bytes()
}

/// What a role was asked: the text of an event made by [`word`] (the event itself when it
/// is not a JSON string).
pub fn unword(event: &[u8]) -> &[u8] {
    event
        .strip_prefix(b"\"")
        .and_then(|e| e.strip_suffix(b"\""))
        .unwrap_or(event)
}

/// A JSON string event of exactly `len` bytes (at least 2): quotes around `fill` bytes.
pub fn json_of_len(len: usize, fill: u8) -> Vec<u8> {
    let mut event = vec![fill; len];
    event[0] = b'"';
    event[len - 1] = b'"';
    event
}

/// Writes `line` and a line break on stderr with one `write`, so that the emulator's own
/// lines (which share stderr) never land inside it, as they can inside an `eprintln!`.
pub fn log_line(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Owned strings of `list`.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// The raw Runtime API, for runtimes that break the rules on purpose

/// One request on a fresh connection to the Runtime API (`Connection: close`), returning
/// the status, the head and the body as received (not de-chunked).
pub fn api(method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    api_at(method, &format!("/2018-06-01/runtime/{path}"), extra, body)
}

/// [`api`] for any path of the emulator's APIs (the Extensions API's, say).
pub fn api_at(method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = api_send(method, path, extra, body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head[9..12].parse().expect("status");
    (status, head, raw[split..].to_vec())
}

/// Writes one request to the Runtime API on a fresh connection and returns the connection
/// without reading the answer.
pub fn api_send(method: &str, path: &str, extra: &str, body: &[u8]) -> TcpStream {
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let mut stream = TcpStream::connect(&address).expect("connect to the Runtime API");
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{extra}");
    let framing = if extra.contains("Transfer-Encoding") {
        String::from("\r\n")
    } else {
        format!("Content-Length: {}\r\n\r\n", body.len())
    };
    let mut request = head.into_bytes();
    request.extend_from_slice(framing.as_bytes());
    request.extend_from_slice(body);
    stream.write_all(&request).expect("write");
    stream
}

/// `GET /next` on a fresh connection: the request id and the event's head and body.
pub fn next_event() -> (String, String, Vec<u8>) {
    let (_, head, body) = api("GET", "invocation/next", "", b"");
    let id = header_value(&head, "Lambda-Runtime-Aws-Request-Id").expect("request id");
    let body = if header_value(&head, "Transfer-Encoding").is_some() {
        dechunk(&body)
    } else {
        body
    };
    (id, head, body)
}

/// The value of header `name` in a raw head.
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Decodes a complete chunked body (the emulator's framing: hex sizes, CRLF).
pub fn dechunk(raw: &[u8]) -> Vec<u8> {
    let decoded = crate::support::decode_chunked(raw);
    assert!(decoded.used.is_some(), "incomplete chunked body");
    decoded.chunks.concat()
}

/// Decodes standard base64 (an error body trailer).
pub fn from_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes().take_while(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Standard base64 with padding (a client context).
pub fn to_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The emulator, driven from the test

/// A serving emulator on an ephemeral port; stopped with SIGTERM when dropped.
pub struct Emu {
    /// The emulator process.
    pub child: Child,
    /// Its invoke endpoint's port.
    pub port: u16,
    stderr: Arc<Mutex<String>>,
    /// The thread that gathers stderr; it ends when every writer has closed it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Emu {
    /// Starts the emulator with `args` on any free port and waits until it listens.
    pub fn serve(args: &[String]) -> Emu {
        Emu::serve_in(args, None)
    }

    /// [`Emu::serve`] with the working directory `dir`.
    pub fn serve_in(args: &[String], dir: Option<&Path>) -> Emu {
        let mut command = Command::new(EMU);
        command
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().expect("start tinylambda-emu");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let log = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                // The bootstrap writes to the same stderr: the line may not start with it.
                const MARKER: &str = "tinylambda-emu: listening on http://127.0.0.1:";
                if let Some(at) = line.find(MARKER) {
                    let rest = &line[at + MARKER.len()..];
                    let port = rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = port_tx.send(port);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = match port_rx.recv_timeout(LIMIT) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                panic!("the emulator did not start: {}", stderr.lock().unwrap());
            }
        };
        Emu {
            child,
            port,
            stderr,
            reader: Some(reader),
        }
    }

    /// Sends the emulator SIGTERM and waits (up to [`LIMIT`]) for it to exit and for all of
    /// its stderr; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        send_signal(self.child.id(), SIGTERM);
        let deadline = Instant::now() + LIMIT;
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code(),
                _ if Instant::now() > deadline => panic!("the emulator did not stop"),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        code
    }

    /// A new keep-alive connection to the invoke endpoint.
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// One invocation on a new connection.
    pub fn invoke(&self, event: &[u8]) -> Reply {
        self.client().post(INVOKE_PATH, &[], event)
    }

    /// Everything the emulator (and its bootstraps) wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (up to [`LIMIT`]) until stderr holds `needle` at least `times` times; returns
    /// stderr then. Fails the test with the whole log if it never does.
    pub fn wait_log(&self, needle: &str, times: usize) -> String {
        let mut log = String::new();
        let seen = wait_until(LIMIT, || {
            log = self.stderr();
            log.matches(needle).count() >= times
        });
        assert!(seen, "{times} × {needle:?} never appeared in:\n{log}");
        log
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM: the emulator stops its bootstrap, then exits.
        send_signal(self.child.id(), SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a caller got back.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The raw head.
    pub head: String,
    /// The body, de-chunked if it was chunked.
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Reply {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(&self.head, name)
    }

    /// The value of trailer `name`.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `errorType` of an error document body.
    pub fn error_type(&self) -> String {
        let text = self.text();
        let after = text.split("\"errorType\":\"").nth(1).unwrap_or_default();
        after.split('"').next().unwrap_or_default().to_owned()
    }
}

/// A keep-alive HTTP/1.1 client for the invoke endpoint.
pub struct Client {
    /// The connection.
    pub stream: TcpStream,
    /// Bytes received and not used yet.
    raw: Vec<u8>,
}

impl Client {
    /// Connects to the invoke endpoint on `port`; reads wait up to [`LIMIT`].
    pub fn connect(port: u16) -> Client {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).expect("connect to the invoke endpoint");
        stream.set_read_timeout(Some(LIMIT)).expect("timeout");
        Client {
            stream,
            raw: Vec::new(),
        }
    }

    /// POSTs and reads the reply.
    pub fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send("POST", path, headers, body)
    }

    /// Sends a request and reads the reply.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.request(method, path, headers, body);
        self.read_reply()
    }

    /// Sends a request without waiting for its reply.
    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).expect("write head");
        // The emulator may refuse an oversized body before reading it all.
        let _ = self.stream.write_all(body);
    }

    /// Reads once more (up to [`LIMIT`]); `what` names what was awaited, for the failure.
    fn fill(&mut self, what: &str) {
        let mut buf = [0u8; 64 * 1024];
        let n = self.stream.read(&mut buf).expect(what);
        assert!(
            n > 0,
            "connection closed before {what}: {}",
            String::from_utf8_lossy(&self.raw)
        );
        self.raw.extend_from_slice(&buf[..n]);
    }

    /// Reads until `needle` has arrived (raw bytes: framing included), leaving it unread.
    pub fn wait_for(&mut self, needle: &[u8]) {
        while !self.raw.windows(needle.len()).any(|w| w == needle) {
            self.fill("the awaited bytes");
        }
    }

    /// Reads the reply to a `HEAD` request: a head, and no body whatever its framing says.
    pub fn read_head_reply(&mut self) -> Reply {
        let end = loop {
            if let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill("a reply's head");
        };
        let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
        self.raw.drain(..end);
        Reply {
            status: head[9..12].parse().expect("status"),
            head,
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// Reads one whole reply (a chunked one to its trailers).
    pub fn read_reply(&mut self) -> Reply {
        let end = loop {
            if let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill("a reply");
        };
        let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
        let (body, trailers, used) = if header_value(&head, "Transfer-Encoding").is_some() {
            loop {
                let decoded = crate::support::decode_chunked(&self.raw[end..]);
                if let Some(used) = decoded.used {
                    break (decoded.chunks.concat(), decoded.trailers, end + used);
                }
                self.fill("the rest of a chunked body");
            }
        } else {
            let length: usize = header_value(&head, "Content-Length")
                .map_or(0, |v| v.parse().expect("Content-Length"));
            while self.raw.len() < end + length {
                self.fill("the rest of a body");
            }
            (
                self.raw[end..end + length].to_vec(),
                Vec::new(),
                end + length,
            )
        };
        self.raw.drain(..used);
        Reply {
            status: head[9..12].parse().expect("status"),
            head,
            body,
            trailers,
        }
    }
}

/// Runs the emulator to its end (killed after [`LIMIT`]).
pub fn run_emu(args: &[String]) -> Output {
    run_emu_in(args, None, None)
}

/// [`run_emu`] in the working directory `dir`, with `stdin` as its standard input.
pub fn run_emu_in(args: &[String], dir: Option<&Path>, stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(EMU);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().expect("start tinylambda-emu");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output().expect("wait");
        let _ = done_tx.send(());
        output
    });
    if done_rx.recv_timeout(LIMIT).is_err() {
        send_signal(pid, SIGTERM);
    }
    waiter.join().expect("waiter")
}

/// Checks that the emulator refused with exactly one `tinylambda-emu: ` line holding
/// `expected`, and a non-zero exit code.
pub fn assert_one_line_refusal(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        output.status.code().is_some(),
        "ended by a signal: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr:?}");
    assert!(stderr.starts_with("tinylambda-emu: "), "{stderr:?}");
    assert!(
        stderr.contains(expected),
        "{expected:?} missing from {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Bounded waits and process states

/// Polls `done` every 5 ms until it holds or `limit` has passed; whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The state letter and parent of process `pid` from `/proc/PID/stat`, if it exists.
pub fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether process `pid` is running (it exists and is not a zombie).
pub fn running(pid: u32) -> bool {
    proc_state(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Waits (up to [`LIMIT`]) until process `pid` has ended; whether it did.
pub fn ended(pid: u32) -> bool {
    wait_until(LIMIT, || !running(pid))
}

/// Waits (up to [`LIMIT`]) until process `pid` is gone, reaped too; whether it is.
pub fn gone(pid: &str) -> bool {
    wait_until(LIMIT, || !Path::new(&format!("/proc/{pid}")).exists())
}

/// The zombies whose parent is `parent`.
pub fn zombies_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_state(pid) == Some(('Z', parent)))
        .collect()
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tinylambda-emu-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

//! A scripted fake Lambda Runtime API on 127.0.0.1, std only, and a way to run a test's own
//! handler as the bootstrap process talking to it.
//!
//! A test calls [`child`] first: in the child process it runs the bootstrap (the test's
//! handler under `tinylambda::run`) and never returns. In the test process it does
//! nothing; the test then calls [`serve`] with a script of [`Step`]s, one per request the
//! runtime is expected to make. The server answers each request as scripted and records
//! it; once the script is used up it answers everything with 500, which makes the runtime
//! exit. [`serve`] returns the child's exit code, its stderr and every request, so the test
//! can assert exactly what the server received.
//!
//! The bootstrap can also be any program ([`serve_command`]): `tests/arm64.rs` runs the
//! arm64 builds of the examples under `qemu-aarch64-static` this way. And with
//! [`RUNNER`] set, every bootstrap child starts through that program, which lets the whole
//! suite run as an arm64 build under emulation (see `.ci/run`).

#![allow(dead_code)] // each test file uses a different part

pub mod json;
pub mod nostd;

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set in the environment of a bootstrap child.
const CHILD: &str = "TINYLAMBDA_TEST_CHILD";

/// When set, the program every bootstrap child (and `tests/exec.rs`'s `tinylambda-exec`) is
/// started through, as `RUNNER PROGRAM ARGS...`: `qemu-aarch64-static` runs the suite built
/// with `--target aarch64-unknown-linux-musl` (cargo's own runner set to the same program)
/// on an x86_64 machine, where the kernel cannot start an arm64 binary by itself.
pub const RUNNER: &str = "TINYLAMBDA_TEST_RUNNER";

/// How long a child may run before the test fails.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// How long the server waits for a request before giving up.
const IO_LIMIT: Duration = Duration::from_secs(30);

/// Whether this process is a bootstrap child. A test starts with
/// `if support::child() { tinylambda::run(handler) }`.
pub fn child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Which accepted connection it came on, from 0.
    pub conn: usize,
    pub method: String,
    pub path: String,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (decoded, when it was chunked).
    pub body: Vec<u8>,
    /// The sizes of the data chunks, when the body was chunked.
    pub chunks: Vec<usize>,
    /// The trailer fields after a chunked body.
    pub trailers: Vec<(String, String)>,
    /// When the whole request had arrived.
    pub received: std::time::SystemTime,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is `GET {prefix}/2018-06-01/runtime/invocation/next`.
    pub fn is_next(&self) -> bool {
        self.method == "GET" && self.path.ends_with("/2018-06-01/runtime/invocation/next")
    }

    /// The first value of a trailer field, by case-insensitive name.
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
}

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Step {
    /// Reply with these bytes and keep the connection.
    Reply(Vec<u8>),
    /// Reply with these bytes, then close the connection (whatever the reply says).
    ReplyClose(Vec<u8>),
    /// Reply with these bytes one at a time.
    Dribble(Vec<u8>),
    /// Close the connection without replying.
    Hangup,
    /// Send these bytes (a reply cut short), then close.
    Cut(Vec<u8>),
    /// Reply with these bytes, close the connection, and accept no new one for this long
    /// (an API that restarts).
    ReplyPause(Vec<u8>, Duration),
    /// Reply with these bytes, then reset the connection (RST, as a connection killed while
    /// the process was frozen).
    ReplyReset(Vec<u8>),
    /// Reset the connection without replying.
    Reset,
    /// Send this head, then chunks without end until the client stops reading (at most
    /// 64 MiB).
    Endless(Vec<u8>),
    /// Leave the request unanswered and its connection open (a long poll that never
    /// returns, like `/extension/event/next`), and take the next request from a new
    /// connection.
    Park,
    /// Send SIGTERM to the bootstrap instead of replying.
    SigTerm,
    /// Read a chunked request, creating the file `signal` as soon as its first data chunk
    /// has arrived (before the rest), then reply with these bytes.
    ReplyWhenStreamed {
        signal: std::path::PathBuf,
        reply: Vec<u8>,
    },
    /// Refuse a request the way Go's `net/http` (Lambda's Runtime API) does: read its head
    /// and at most `read` bytes of its body, send `reply` (or nothing, for `None`: a reset
    /// that destroys the reply), shut the sending side, wait half a second as Go does, then
    /// close with the rest of the body unread, which resets the connection. The request is
    /// recorded with the body bytes read.
    Refuse { read: usize, reply: Option<Vec<u8>> },
}

/// What happened when a bootstrap ran against the script.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code (None if killed by a signal).
    pub code: Option<i32>,
    pub stderr: String,
    pub requests: Vec<Request>,
}

impl Outcome {
    /// Asserts that no invocation was answered twice (no path posted twice).
    pub fn assert_answered_at_most_once(&self) {
        let mut seen = std::collections::HashMap::new();
        for post in self.posts() {
            *seen.entry(post.path.clone()).or_insert(0) += 1;
        }
        for (path, n) in seen {
            assert_eq!(n, 1, "{path} posted {n} times");
        }
    }

    /// The requests other than `GET /next`.
    pub fn posts(&self) -> Vec<&Request> {
        self.requests.iter().filter(|r| !r.is_next()).collect()
    }

    /// Asserts the process ended because the script ran out (the server's final 500 on
    /// `/next`), which is how a test that went as planned ends.
    pub fn assert_ran_to_the_end(&self) {
        assert_eq!(self.code, Some(1), "stderr: {}", self.stderr);
        assert!(
            self.stderr.contains("GET /next returned 500"),
            "expected the end-of-script 500, stderr: {}",
            self.stderr
        );
    }
}

/// Runs `test` (the name of the calling test function) as a bootstrap child against a
/// server following `steps`, with `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT`.
pub fn serve(test: &str, steps: Vec<Step>) -> Outcome {
    serve_with(test, steps, |cmd, port| {
        cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
    })
}

/// Like [`serve`], with `setup` choosing the child's environment (given the server's port).
pub fn serve_with(test: &str, steps: Vec<Step>, setup: impl FnOnce(&mut Command, u16)) -> Outcome {
    serve_command(bootstrap_command(test), steps, setup)
}

/// Runs `cmd` (made with [`as_bootstrap`] or [`bootstrap_command`]) as the bootstrap
/// against a server following `steps`, `setup` choosing its environment (given the
/// server's port).
pub fn serve_command(
    mut cmd: Command,
    steps: Vec<Step>,
    setup: impl FnOnce(&mut Command, u16),
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let done = Arc::new(AtomicBool::new(false));
    let child = Arc::new(AtomicU32::new(0));
    let server = {
        let (done, child) = (done.clone(), child.clone());
        std::thread::spawn(move || Server::new(listener, done, child).run(steps))
    };
    setup(&mut cmd, port);
    let (code, _, stderr) = run_child_telling(cmd, &child, CHILD_LIMIT);
    done.store(true, Ordering::SeqCst);
    let requests = server.join().expect("server thread");
    Outcome {
        code,
        stderr,
        requests,
    }
}

/// The command that runs `test` as a bootstrap child, with an environment cleared of
/// anything Lambda-related.
pub fn bootstrap_command(test: &str) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = as_bootstrap(through_runner(exe));
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0");
    cmd
}

/// `program`, started through [`RUNNER`] when that is set.
pub fn through_runner(program: impl AsRef<OsStr>) -> Command {
    match std::env::var_os(RUNNER) {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// `cmd` made ready to run as a bootstrap: no stdin, stdout discarded, stderr captured, and
/// an environment cleared of anything Lambda-related.
pub fn as_bootstrap(mut cmd: Command) -> Command {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("AWS_")
            || key.starts_with("_X_AMZN")
            || key == "_HANDLER"
            || key.starts_with("LAMBDA_")
        {
            cmd.env_remove(&*key);
        }
    }
    cmd
}

/// Runs a child to its end (killing it after [`CHILD_LIMIT`]) and returns its exit code
/// and stderr.
pub fn run_child(cmd: Command) -> (Option<i32>, String) {
    let (code, _, stderr) = run_child_telling(cmd, &AtomicU32::new(0), CHILD_LIMIT);
    (code, stderr)
}

/// Runs a child to its end (killing it after `limit`) and returns its exit code, stdout (when
/// `cmd` pipes it) and stderr.
pub fn run_child_output(cmd: Command, limit: Duration) -> (Option<i32>, Vec<u8>, String) {
    run_child_telling(cmd, &AtomicU32::new(0), limit)
}

/// [`run_child_output`], storing the child's process id in `pid` once it runs.
fn run_child_telling(
    mut cmd: Command,
    pid: &AtomicU32,
    limit: Duration,
) -> (Option<i32>, Vec<u8>, String) {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    pid.store(child.id(), Ordering::SeqCst);
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let stdout_pipe = child.stdout.take();
    let stdout_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = stdout_pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child still running after {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = reader.join().expect("stderr reader");
    let stdout = stdout_reader.join().expect("stdout reader");
    // Drop libtest's own lines, keep what the bootstrap wrote.
    let stderr = stderr
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("running ") && !l.starts_with("test "))
        .collect::<Vec<_>>()
        .join("\n");
    (status.code(), stdout, stderr)
}

struct Server {
    listener: TcpListener,
    done: Arc<AtomicBool>,
    conn: Option<TcpStream>,
    conns: usize,
    pending: Vec<u8>,
    requests: Vec<Request>,
    /// A file to create when the first chunk of the request being read arrives.
    signal: Option<std::path::PathBuf>,
    /// Connections left open by [`Step::Park`].
    parked: Vec<TcpStream>,
    /// The bootstrap's process id, once it is running.
    child: Arc<AtomicU32>,
}

impl Server {
    fn new(listener: TcpListener, done: Arc<AtomicBool>, child: Arc<AtomicU32>) -> Self {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        Server {
            listener,
            done,
            conn: None,
            conns: 0,
            pending: Vec::new(),
            requests: Vec::new(),
            signal: None,
            parked: Vec::new(),
            child,
        }
    }

    /// Serves the script, then answers 500 (closing) to whatever comes, until the child
    /// is gone.
    fn run(mut self, steps: Vec<Step>) -> Vec<Request> {
        for step in steps {
            if let Step::ReplyWhenStreamed { signal, .. } = &step {
                self.signal = Some(signal.clone());
            }
            if let Step::Refuse { read, reply } = step {
                if !self.refuse(read, reply.as_deref()) {
                    return self.requests;
                }
                continue;
            }
            if !self.read_request() {
                return self.requests;
            }
            let conn = self.conn.as_mut().expect("connection");
            match step {
                Step::Reply(bytes) => {
                    let _ = conn.write_all(&bytes);
                }
                Step::ReplyClose(bytes) => {
                    let _ = conn.write_all(&bytes);
                    self.close();
                }
                Step::Dribble(bytes) => {
                    for b in bytes {
                        let _ = conn.write_all(&[b]);
                        let _ = conn.flush();
                    }
                }
                Step::Hangup => self.close(),
                Step::Cut(bytes) => {
                    let _ = conn.write_all(&bytes);
                    self.close();
                }
                Step::ReplyReset(bytes) => {
                    let _ = conn.write_all(&bytes);
                    self.reset();
                }
                Step::Reset => self.reset(),
                Step::ReplyWhenStreamed { reply, .. } => {
                    let _ = conn.write_all(&reply);
                }
                Step::Refuse { .. } => unreachable!("handled above"),
                Step::Park => {
                    if let Some(conn) = self.conn.take() {
                        self.parked.push(conn);
                    }
                    self.pending.clear();
                }
                Step::SigTerm => terminate(self.child.load(Ordering::SeqCst)),
                Step::Endless(head) => {
                    let _ = conn.write_all(&head);
                    let chunk = [b"10000\r\n".as_slice(), &[b'e'; 0x10000], b"\r\n"].concat();
                    for _ in 0..1024 {
                        if conn.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    self.close();
                }
                Step::ReplyPause(bytes, pause) => {
                    let _ = conn.write_all(&bytes);
                    self.close();
                    std::thread::sleep(pause);
                }
            }
        }
        // End of script: every further request gets a 500, which the runtime must obey.
        for _ in 0..4 {
            if !self.read_request() {
                break;
            }
            if let Some(conn) = self.conn.as_mut() {
                let _ = conn.write_all(&status(500, "end of script"));
            }
            self.close();
        }
        self.requests
    }

    /// [`Step::Refuse`]: answers the next request before reading its body (beyond `read`
    /// bytes), then closes with the rest unread. False when the child is gone.
    fn refuse(&mut self, read: usize, reply: Option<&[u8]>) -> bool {
        let deadline = Instant::now() + IO_LIMIT;
        let end = loop {
            if self.conn.is_none() && !self.accept(deadline) {
                return false;
            }
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let end = end + 4;
                if self.pending.len() >= end + read {
                    break end;
                }
            }
            if !self.read_more(deadline) {
                return false;
            }
        };
        let mut request = parse_head(&self.pending[..end]);
        request.body = self.pending[end..end + read].to_vec();
        request.conn = self.conns - 1;
        self.requests.push(request);
        let conn = self.conn.take().expect("connection");
        match reply {
            Some(reply) => {
                let _ = (&conn).write_all(reply);
                let _ = conn.shutdown(Shutdown::Write);
                // Go's rstAvoidanceDelay: the reply has time to arrive before the reset.
                std::thread::sleep(Duration::from_millis(500));
            }
            None => linger_zero(&conn),
        }
        // Closed with unread bytes in its receive queue: the kernel sends RST.
        drop(conn);
        self.pending.clear();
        true
    }

    /// Reads what has arrived on the connection into `pending` (closing it at its end).
    /// False when the child is gone or the deadline passed.
    fn read_more(&mut self, deadline: Instant) -> bool {
        let mut buf = [0u8; 64 * 1024];
        let conn = self.conn.as_mut().expect("connection");
        match conn.read(&mut buf) {
            Ok(0) => self.close(),
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if self.done.load(Ordering::SeqCst) || Instant::now() > deadline {
                    return false;
                }
            }
            Err(_) => self.close(),
        }
        true
    }

    /// Closes the connection with a TCP reset: SO_LINGER with a zero timeout, then close.
    fn reset(&mut self) {
        if let Some(conn) = self.conn.take() {
            linger_zero(&conn);
            drop(conn);
        }
        self.pending.clear();
    }

    fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        self.pending.clear();
    }

    /// Reads the next request, accepting a connection when there is none or the current
    /// one ends. False when the child is gone.
    fn read_request(&mut self) -> bool {
        let deadline = Instant::now() + IO_LIMIT;
        loop {
            if self.conn.is_none() && !self.accept(deadline) {
                return false;
            }
            if let Some(request) = self.parse_pending() {
                self.requests.push(request);
                return true;
            }
            if !self.read_more(deadline) {
                return false;
            }
        }
    }

    fn accept(&mut self, deadline: Instant) -> bool {
        loop {
            match self.listener.accept() {
                Ok((conn, _)) => {
                    conn.set_nonblocking(false).expect("blocking");
                    conn.set_read_timeout(Some(Duration::from_millis(50)))
                        .expect("timeout");
                    conn.set_nodelay(true).expect("nodelay");
                    self.conn = Some(conn);
                    self.conns += 1;
                    self.pending.clear();
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if self.done.load(Ordering::SeqCst) || Instant::now() > deadline {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// A whole request from the bytes read so far, if they hold one.
    fn parse_pending(&mut self) -> Option<Request> {
        let end = self.pending.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let Request {
            method,
            path,
            headers,
            ..
        } = parse_head(&self.pending[..end]);
        let chunked = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let (body, chunks, trailers, used) = if chunked {
            let decoded = decode_chunked(&self.pending[end..]);
            if !decoded.chunks.is_empty() {
                if let Some(signal) = self.signal.take() {
                    std::fs::write(signal, b"first chunk arrived").expect("signal file");
                }
            }
            let used = decoded.used?;
            let sizes = decoded.chunks.iter().map(Vec::len).collect();
            (decoded.chunks.concat(), sizes, decoded.trailers, used)
        } else {
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().expect("numeric Content-Length"));
            if self.pending.len() < end + length {
                return None;
            }
            (
                self.pending[end..end + length].to_vec(),
                Vec::new(),
                Vec::new(),
                length,
            )
        };
        self.pending.drain(..end + used);
        Some(Request {
            conn: self.conns - 1,
            method,
            path,
            headers,
            body,
            chunks,
            trailers,
            received: std::time::SystemTime::now(),
        })
    }
}

/// The request line and headers of a request head (`head` ends with the blank line); the
/// rest of the request is left empty.
fn parse_head(head: &[u8]) -> Request {
    // Lossy: a header echoed byte for byte may not be UTF-8 (shown as U+FFFD here).
    let head = String::from_utf8_lossy(&head[..head.len() - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().expect("request line").split(' ');
    let method = first.next().expect("method").to_owned();
    let path = first.next().expect("path").to_owned();
    assert_eq!(first.next(), Some("HTTP/1.1"), "request line of {head:?}");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header colon");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    Request {
        conn: 0,
        method,
        path,
        headers,
        body: Vec::new(),
        chunks: Vec::new(),
        trailers: Vec::new(),
        received: std::time::SystemTime::now(),
    }
}

/// Sends SIGTERM to process `pid`.
fn terminate(pid: u32) {
    unsafe extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    assert!(pid != 0, "no child to signal");
    // SAFETY: kill(2) with a real process id and SIGTERM; no memory is involved.
    let rc = unsafe { kill(pid as i32, 15) };
    assert_eq!(rc, 0, "kill({pid}, SIGTERM)");
}

/// What has arrived of a chunked body.
pub struct Decoded {
    /// The data of each chunk, in order.
    pub chunks: Vec<Vec<u8>>,
    /// The trailer fields (name, value).
    pub trailers: Vec<(String, String)>,
    /// The bytes the whole body used, once it is complete.
    pub used: Option<usize>,
}

/// Decodes the chunked body at the start of `bytes`, as far as it has arrived. Strict: this
/// checks what the runtime sends (CRLF line ends, hex sizes, no extensions); the emulator's
/// tests check what it sends callers with it too.
pub fn decode_chunked(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded {
        chunks: Vec::new(),
        trailers: Vec::new(),
        used: None,
    };
    let mut at = 0;
    loop {
        let Some(nl) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
            return decoded;
        };
        let line = std::str::from_utf8(&bytes[at..at + nl]).expect("UTF-8 chunk-size line");
        let size =
            usize::from_str_radix(line, 16).unwrap_or_else(|_| panic!("chunk-size line {line:?}"));
        at += nl + 2;
        if size == 0 {
            break;
        }
        if bytes.len() < at + size + 2 {
            return decoded;
        }
        decoded.chunks.push(bytes[at..at + size].to_vec());
        assert_eq!(
            &bytes[at + size..at + size + 2],
            b"\r\n",
            "chunk data ends with CRLF"
        );
        at += size + 2;
    }
    loop {
        let Some(nl) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
            return decoded;
        };
        let line = std::str::from_utf8(&bytes[at..at + nl]).expect("UTF-8 trailer");
        at += nl + 2;
        if line.is_empty() {
            decoded.used = Some(at);
            return decoded;
        }
        let (name, value) = line.split_once(':').expect("trailer colon");
        decoded
            .trailers
            .push((name.to_owned(), value.trim().to_owned()));
    }
}

/// Sets SO_LINGER to {on, 0 s}, so that closing `conn` sends RST instead of FIN. std has no
/// stable way to do this, so it declares `setsockopt` itself.
pub fn linger_zero(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        seconds: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        onoff: 1,
        seconds: 0,
    };
    // SAFETY: a valid socket and a pointer to a live, correctly sized struct linger.
    let rc = unsafe {
        setsockopt(
            conn.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            size_of::<Linger>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}

/// A `/next` response with `Content-Length`, the usual headers and `extra` ones.
pub fn event(id: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = next_head(id, extra);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// A `/next` response with a chunked body cut into `sizes` (cycled), the first chunk with
/// an extension, and a trailer, the way a Go server sends events over 2048 bytes.
pub fn chunked_event(id: &str, body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = next_head(id, &[]);
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    out.extend_from_slice(&chunked(body, sizes));
    out
}

/// `body` in chunked encoding: chunks of `sizes` (cycled), an extension on the first, a
/// trailer at the end.
pub fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    for (i, &size) in sizes.iter().cycle().enumerate() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        let ext = if i == 0 { ";name=\"value\"" } else { "" };
        out.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    out.extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
    out
}

fn next_head(id: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
         Lambda-Runtime-Deadline-Ms: 4102444800000\r\n\
         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\n\
         Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\
         Date: Sat, 21 Nov 2026 12:00:00 GMT\r\n"
    )
    .into_bytes();
    for (name, value) in extra {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out
}

/// `202 Accepted` with `{"status":"OK"}`, as Lambda answers `/response` and `/error`.
pub fn accepted() -> Vec<u8> {
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}"
        .to_vec()
}

/// A response with this status and a small JSON error body.
pub fn status(code: u16, message: &str) -> Vec<u8> {
    let body = format!("{{\"errorMessage\":\"{message}\",\"errorType\":\"Test\"}}");
    format!(
        "HTTP/1.1 {code} Status\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A reply with this status and a small JSON error body that closes the connection, as
/// Go's `net/http` answers a request whose body it will not read.
pub fn refusal(code: u16, message: &str) -> Vec<u8> {
    let body = format!("{{\"errorMessage\":\"{message}\",\"errorType\":\"Test\"}}");
    format!(
        "HTTP/1.1 {code} Status\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Asserts that `post` is the buffered `/response` of invocation `id` with exactly `body`
/// (messages show at most 300 bytes of it), its exact `Content-Length`, and neither
/// `Expect` nor `Transfer-Encoding`.
pub fn assert_response(post: &Request, id: &str, body: &[u8]) {
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        (
            "POST",
            format!("/2018-06-01/runtime/invocation/{id}/response").as_str()
        ),
        "expected the response for {id}, got {}",
        String::from_utf8_lossy(&post.body[..post.body.len().min(300)])
    );
    assert!(
        post.body == body,
        "response for {id}: {} bytes, {:?}, expected {} bytes",
        post.body.len(),
        String::from_utf8_lossy(&post.body[..post.body.len().min(300)]),
        body.len()
    );
    assert_eq!(
        post.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(post.header("Expect"), None);
    assert_eq!(post.header("Transfer-Encoding"), None);
}

/// The reply to `POST /2020-01-01/extension/register` for an extension given the identifier
/// `id`.
pub fn registered(id: &str) -> Vec<u8> {
    let body =
        "{\"functionName\":\"test\",\"functionVersion\":\"$LATEST\",\"handler\":\"bootstrap\"}";
    format!(
        "HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: {id}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether the toolchain that runs the tests has the standard library for `target`.
pub fn target_installed(target: &str) -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    std::path::Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

/// Reads one request (head and Content-Length body) from `conn`, for tests that play the
/// Runtime API by hand on several connections at once: (request line, body).
pub fn read_request(conn: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse().unwrap());
            while buf.len() < end + 4 + length {
                let n = conn.read(&mut byte).unwrap();
                assert!(n > 0, "closed mid-body");
                buf.extend_from_slice(&byte[..n]);
            }
            let line = head.lines().next().unwrap().to_owned();
            return (line, buf[end + 4..end + 4 + length].to_vec());
        }
        let n = conn.read(&mut byte).unwrap();
        assert!(n > 0, "closed mid-head");
        buf.extend_from_slice(&byte[..n]);
    }
}

/// For tests that play the Runtime API by hand, one connection per loop: reads the `/next`
/// each loop has sent on its connection, answers the first with a 500, which ends the
/// process, and returns the stderr of the bootstrap `runner` ran, once it has exited with
/// status 1.
pub fn end_with_500(
    conns: &mut [TcpStream],
    runner: std::thread::JoinHandle<(Option<i32>, String)>,
) -> String {
    for conn in conns.iter_mut() {
        let (line, _) = read_request(conn);
        assert!(
            line.starts_with("GET /2018-06-01/runtime/invocation/next "),
            "{line}"
        );
    }
    if let Some(first) = conns.first_mut() {
        first.write_all(&status(500, "end of test")).unwrap();
    }
    let (code, stderr) = runner.join().unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("GET /next returned 500"), "{stderr}");
    stderr
}

/// The connection of the next loop of a bootstrap to `listener`, with `limit` as its read
/// timeout, for tests that play the Runtime API by hand; panics when none comes within
/// `limit` (a bootstrap that died or hangs before it connects).
pub fn accept_loop(listener: &TcpListener, limit: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + limit;
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < until, "no connection in {limit:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(limit)).unwrap();
    conn
}

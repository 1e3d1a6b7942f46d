//! Helpers of `tests/exec.rs` beyond the fake Runtime API in `support`: a local web server
//! that misbehaves on cue (for the web adapter), waiting for a process state or a port with
//! a bound, and a TCP reset.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Waits until `ready` returns true, checking every 10 ms, for at most `limit`; panics with
/// `what` (and the last value `ready` saw, as text) if it never does.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match ready() {
            Ok(()) => return,
            Err(seen) if start.elapsed() > limit => {
                panic!("{what}: not so after {limit:?} (last seen: {seen})")
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// `Ok` when process `pid` has ended (gone, or a zombie nobody reaped yet); else its state.
pub fn ended(pid: u32) -> Result<(), String> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => Ok(()),
        Ok(stat) if stat.contains(") Z ") => Ok(()),
        Ok(stat) => Err(stat),
    }
}

/// `Ok` when nothing accepts connections on 127.0.0.1:`port`.
pub fn closed(port: u16) -> Result<(), String> {
    match TcpStream::connect(("127.0.0.1", port)) {
        Err(_) => Ok(()),
        Ok(_) => Err(format!("something still listens on port {port}")),
    }
}

/// Closes `conn` with a TCP reset (SO_LINGER on, 0 s) instead of a FIN.
pub fn reset(conn: TcpStream) {
    crate::support::linger_zero(&conn);
    drop(conn);
}

/// Every request body (or, over 1 MiB, how much of it arrived) a [`Misbehaving`] server read, in
/// order.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A local HTTP/1.1 server for the web adapter's failure paths, chosen by the request:
///
/// - body `"drip"`: a chunked reply, one chunk every 800 ms, five in all;
/// - body `"reset"`: the whole request is read (and counted), then the connection is reset
///   without a reply;
/// - a body over 1 MiB: read 16 KiB at a time, 500 ms apart;
/// - anything else: `200` with `got BODY`, kept alive.
pub struct Misbehaving;

impl Misbehaving {
    /// Serves on a fresh port of 127.0.0.1 from a thread; its port and what it saw.
    pub fn start() -> (u16, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Seen::default();
        let log = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = log.clone();
                thread::spawn(move || serve(conn, &log));
            }
        });
        (port, seen)
    }
}

/// Reads a request's head; its `Content-Length` (0 without one), or `None` when the
/// connection ends first.
fn read_head(reader: &mut impl BufRead) -> Option<usize> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        match line.trim_end().split_once(": ") {
            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                length = value.parse().unwrap();
            }
            Some(_) => {}
            None => return Some(length),
        }
    }
}

fn serve(conn: TcpStream, seen: &Seen) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    while let Some(length) = read_head(&mut reader) {
        let mut body = vec![0; length];
        if length > 1 << 20 {
            let mut at = 0;
            while at < length {
                let n = (length - at).min(16 * 1024);
                if reader.read_exact(&mut body[at..at + n]).is_err() {
                    seen.lock().unwrap().push(format!("{at} of {length} bytes"));
                    return;
                }
                at += n;
                thread::sleep(Duration::from_millis(500));
            }
            seen.lock().unwrap().push(format!("{length} bytes"));
        } else {
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
        }
        match &body[..] {
            b"\"reset\"" => return reset(conn),
            b"\"drip\"" => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                for _ in 0..5 {
                    thread::sleep(Duration::from_millis(800));
                    if conn.write_all(b"5\r\ndrip \r\n").is_err() {
                        return;
                    }
                }
                let _ = conn.write_all(b"0\r\n\r\n");
            }
            _ => {
                let reply = [b"got ".as_slice(), &body[..body.len().min(64)]].concat();
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", reply.len());
                if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    }
}

/// A web server run as a process of its own (by `TINYLAMBDA_WEB_START`), listening on
/// 127.0.0.1:`port` until killed; it never exits by itself. Each POST gets
/// `{"pid": P, "grandchild": G, "cwd": "DIR"}`: its process id, `$GRANDCHILD` (a process the
/// start command left running beside it) and its working directory. The body
/// `"kill-runtime"` gets no answer: the server sends SIGKILL to its parent, the runtime.
pub fn lifetime_server(port: &str) -> ! {
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    let grandchild = std::env::var("GRANDCHILD").unwrap_or_default();
    let cwd = std::env::current_dir().unwrap();
    for conn in listener.incoming().flatten() {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        while let Some(length) = read_head(&mut reader) {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            if body == b"\"kill-runtime\"" {
                unsafe extern "C" {
                    fn kill(pid: i32, signal: i32) -> i32;
                }
                // SAFETY: kill(2) with a process id and SIGKILL; no memory is involved.
                unsafe { kill(std::os::unix::process::parent_id() as i32, 9) };
                continue;
            }
            let reply = format!(
                r#"{{"pid": {}, "grandchild": {grandchild}, "cwd": "{}"}}"#,
                std::process::id(),
                cwd.display()
            );
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", reply.len());
            if conn.write_all(head.as_bytes()).is_err() || conn.write_all(reply.as_bytes()).is_err()
            {
                break;
            }
        }
    }
    unreachable!("incoming() never ends");
}

/// A web server run as a process of its own (by `TINYLAMBDA_WEB_START`) that logs, listening
/// on 127.0.0.1:`port` until killed: `starting` on stdout before it listens; for each POST,
/// before it answers `ok ID`, the line `stdout: BODY for ID` on stdout, then
/// `{"level":"WARN","message":"stderr of ID"}` and `plain stderr of ID` on stderr (`ID` the
/// request's `Lambda-Runtime-Aws-Request-Id`), each line in one write.
pub fn logging_server(port: &str) -> ! {
    let line = |out: &mut dyn Write, text: String| {
        out.write_all(format!("{text}\n").as_bytes()).unwrap();
        out.flush().unwrap();
    };
    // Before it listens: written before the runtime can finish its init.
    line(&mut std::io::stdout(), "starting".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    for conn in listener.incoming().flatten() {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        while let Some((length, id)) = read_head_and_id(&mut reader) {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            let body = String::from_utf8_lossy(&body);
            line(&mut std::io::stdout(), format!("stdout: {body} for {id}"));
            let mut stderr = std::io::stderr();
            line(
                &mut stderr,
                format!(r#"{{"level":"WARN","message":"stderr of {id}"}}"#),
            );
            line(&mut stderr, format!("plain stderr of {id}"));
            let reply = format!("ok {id}");
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", reply.len());
            if conn.write_all(head.as_bytes()).is_err() || conn.write_all(reply.as_bytes()).is_err()
            {
                break;
            }
        }
    }
    unreachable!("incoming() never ends");
}

/// Reads a request's head: its `Content-Length` (0 without one) and its
/// `Lambda-Runtime-Aws-Request-Id` (empty without one), or `None` when the connection ends
/// first.
fn read_head_and_id(reader: &mut impl BufRead) -> Option<(usize, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let (mut length, mut id) = (0, String::new());
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        match line.trim_end().split_once(": ") {
            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                length = value.parse().unwrap();
            }
            Some((name, value)) if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") => {
                id = value.to_owned();
            }
            Some(_) => {}
            None => return Some((length, id)),
        }
    }
}

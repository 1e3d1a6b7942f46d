//! The runtime against a real Runtime API emulator written by others: `cargo lambda watch
//! --only-lambda-apis` (from `pip install cargo-lambda`, which ships the binary).
//!
//! The emulator is found as `$TINYLAMBDA_CARGO_LAMBDA` or as `cargo-lambda` on `PATH`.
//! Without it these tests print that they were skipped and why, and pass; with
//! `TINYLAMBDA_REQUIRE_CARGO_LAMBDA=1` (set by `.ci/run`) a missing emulator fails them.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::child;
use tinylambda::parse::{Chunked, Framing, Status, parse_head};
use tinylambda::{Context, Error};

/// The cargo-lambda binary, or `None` (after saying why) when the test should be skipped.
fn cargo_lambda(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("TINYLAMBDA_CARGO_LAMBDA")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("cargo-lambda"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("TINYLAMBDA_REQUIRE_CARGO_LAMBDA").is_none(),
            "TINYLAMBDA_REQUIRE_CARGO_LAMBDA is set but cargo-lambda was not found \
             (pip install cargo-lambda, or set TINYLAMBDA_CARGO_LAMBDA)"
        );
        // Straight to stderr: libtest would swallow eprintln! from a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: cargo-lambda not found (pip install cargo-lambda to run it)"
        );
    }
    found
}

/// A running `cargo lambda watch --only-lambda-apis` on 127.0.0.1, stopped on drop along
/// with the bootstrap it serves.
struct Emulator {
    process: Child,
    bootstrap: Option<Child>,
    port: u16,
    _dir: TempDir,
}

impl Emulator {
    fn start(cargo_lambda: &Path, test: &str) -> Emulator {
        // cargo lambda wants a Cargo package to watch, even when it builds nothing.
        let dir = TempDir::new(test);
        std::fs::create_dir_all(dir.0.join("src")).unwrap();
        std::fs::write(
            dir.0.join("Cargo.toml"),
            "[package]\nname = \"stub\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::write(dir.0.join("src/main.rs"), "fn main() {}\n").unwrap();
        for _ in 0..5 {
            let port = free_port();
            let mut process = Command::new(cargo_lambda)
                .args([
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "--ignore-changes",
                    "--manifest-path",
                ])
                .arg(dir.0.join("Cargo.toml"))
                .args([
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                    &port.to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start cargo-lambda");
            // Ready when the port accepts a connection (a bare connect queues nothing). It
            // exits quietly when the port is taken: then try another.
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if process.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    std::thread::sleep(Duration::from_millis(200));
                    if process.try_wait().unwrap().is_none() {
                        return Emulator {
                            process,
                            bootstrap: None,
                            port,
                            _dir: dir,
                        };
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = process.kill();
            let _ = process.wait();
        }
        panic!("cargo lambda watch did not start");
    }

    /// Starts `cmd` as the function, pointed at the emulator the way cargo lambda says.
    fn run_bootstrap(&mut self, mut cmd: Command) {
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{}/.rt", self.port),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        self.bootstrap = Some(cmd.spawn().expect("start bootstrap"));
    }

    /// Invokes the function with `event` and returns the status and the body.
    fn invoke(&self, event: &[u8]) -> (u16, Vec<u8>) {
        let mut conn =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to cargo lambda");
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let head = format!(
            "POST /2015-03-31/functions/_/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            event.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(event).unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).expect("read invoke reply");
        let Ok(Status::Complete(head)) = parse_head(&raw) else {
            panic!("bad reply head: {raw:?}")
        };
        let body = match head.framing {
            Framing::Chunked => {
                let mut rest = raw[head.len..].to_vec();
                let Ok(Status::Complete(b)) = Chunked::new(1 << 30).decode(&mut rest) else {
                    panic!("bad chunked reply")
                };
                rest[b.start..b.end].to_vec()
            }
            Framing::Length(n) => raw[head.len..head.len + n as usize].to_vec(),
            _ => raw[head.len..].to_vec(),
        };
        (head.status, body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for process in self.bootstrap.iter_mut().chain([&mut self.process]) {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tinylambda-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `echo` example, which `cargo test` builds next to the test binaries.
fn echo_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("echo");
    assert!(
        path.is_file(),
        "{} missing: cargo test builds the examples",
        path.display()
    );
    path
}

/// An event of `len` bytes whose content depends on `seed`.
fn event(len: usize, seed: usize) -> Vec<u8> {
    let mut out = format!("{{\"n\":{seed},\"pad\":\"").into_bytes();
    while out.len() + 2 < len {
        out.push(b'a' + ((out.len() * 7 + seed) % 26) as u8);
    }
    out.extend_from_slice(b"\"}");
    out.truncate(len.max(2));
    out
}

/// Runs `echo` under cargo lambda and checks a hundred invocations of three sizes come back
/// byte for byte.
fn answers_a_hundred_invocations(cargo_lambda: &Path, echo: &Path, name: &str) {
    let mut emu = Emulator::start(cargo_lambda, name);
    emu.run_bootstrap(Command::new(echo));
    let sizes = [10, 3 * 1024, 1024 * 1024];
    for i in 0..100 {
        let body = event(sizes[i % 3], i);
        let (status, reply) = emu.invoke(&body);
        assert_eq!(status, 200, "invocation {i}");
        assert!(
            reply == body,
            "invocation {i}: {} bytes back for {}",
            reply.len(),
            body.len()
        );
    }
}

#[test]
fn echo_example_answers_a_hundred_invocations_byte_for_byte() {
    let Some(cargo_lambda) =
        cargo_lambda("echo_example_answers_a_hundred_invocations_byte_for_byte")
    else {
        return;
    };
    answers_a_hundred_invocations(&cargo_lambda, &echo_example(), "echo");
}

#[test]
fn the_echo_without_std_answers_a_hundred_invocations_byte_for_byte() {
    let test = "the_echo_without_std_answers_a_hundred_invocations_byte_for_byte";
    let Some(cargo_lambda) = cargo_lambda(test) else {
        return;
    };
    let Some(nostd) = support::nostd::binaries(test, support::nostd::TARGET) else {
        return;
    };
    answers_a_hundred_invocations(&cargo_lambda, &nostd.echo, "nostd-echo");
}

#[test]
fn handler_error_reaches_the_caller_as_the_error_document() {
    if child() {
        tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            if event.starts_with(b"\"fail") {
                Err(Error::new(
                    "Function.Refused",
                    "the event said \"fail\"\nso I did",
                ))
            } else {
                Ok(event.to_vec())
            }
        })
    }
    let Some(cargo_lambda) = cargo_lambda("handler_error_reaches_the_caller_as_the_error_document")
    else {
        return;
    };
    let mut emu = Emulator::start(&cargo_lambda, "error");
    let mut bootstrap =
        support::bootstrap_command("handler_error_reaches_the_caller_as_the_error_document");
    bootstrap.stderr(Stdio::inherit());
    emu.run_bootstrap(bootstrap);
    let (status, body) = emu.invoke(b"\"fail please\"");
    assert_eq!(status, 500, "cargo lambda turns /error into a 500");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "{\"errorMessage\":\"the event said \\\"fail\\\"\\u000Aso I did\",\"errorType\":\"Function.Refused\",\"stackTrace\":[]}"
    );
    let (status, body) = emu.invoke(b"\"fine\"");
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"\"fine\""[..]),
        "the loop goes on after an error"
    );
}

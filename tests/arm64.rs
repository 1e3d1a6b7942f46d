//! The arm64 (Graviton) bootstraps as they are deployed: the `echo` example, the echo
//! without std (`examples/nostd`, built by `support::nostd`) and `tinylambda-exec`, built
//! with `--profile tiny --target aarch64-unknown-linux-musl` (linked by rust-lld, see
//! `.cargo/config.toml`) and run under `qemu-aarch64-static`, against the
//! scripted fake Runtime API in `support` and through `tinylambda-emu`, which runs natively
//! and starts `qemu-aarch64-static BOOTSTRAP` as its bootstrap. Under emulation only
//! correctness counts: nothing here is timed.
//!
//! Needs the target (`rustup target add aarch64-unknown-linux-musl`) and QEMU's user-mode
//! emulator (`apt-get install qemu-user-static`). Without them each test says why it is
//! skipped and passes, unless `TINYLAMBDA_REQUIRE_ARM64` is set (`.ci/run` sets it), which
//! makes a missing piece a failure. The binaries are built once per run, into
//! `target/tmp/arm64` (a target directory of their own, so that this build does not wait
//! for the lock `cargo test` holds on its own).

mod support;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use support::{
    Outcome, Step, accepted, as_bootstrap, assert_response, chunked_event, event, run_child,
    run_child_output, serve_command, status,
};

const TARGET: &str = "aarch64-unknown-linux-musl";
const REQUIRE: &str = "TINYLAMBDA_REQUIRE_ARM64";
const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");
const EXEC_EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/exec");
/// What the seed bash handler (`examples/exec/function.sh`) answers.
const SEED_REPLY: &[u8] = br#"{"statusCode": 200, "body": "Hello World"}"#;
/// The Runtime API's limit on an event or a response: 6 MiB + 100 bytes.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 100;
/// Lambda's limit on an invocation's request (what tinylambda-emu takes): 6 MiB.
const MAX_REQUEST: usize = 6 * 1024 * 1024;
/// How long the arm64 build may take (a first build on a busy machine included).
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// How long one run of the emulator may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The emulator and the arm64 binaries it runs.
struct Arm64 {
    qemu: PathBuf,
    echo: PathBuf,
    /// The echo without std (`examples/nostd`).
    nostd_echo: PathBuf,
    /// The no_std probe on tinylambda's own heap (`tests/nostd-probe`).
    nostd_probe_heap: PathBuf,
    exec: PathBuf,
}

enum Prepared {
    Ready(Arm64),
    /// This machine cannot build or run arm64 binaries: why, and what to install.
    Missing(String),
}

/// The arm64 binaries and their emulator, or `None` after saying why the calling `test` is
/// skipped. Panics when they are missing and [`REQUIRE`] is set, or when the build fails.
fn arm64(test: &str) -> Option<&'static Arm64> {
    static PREPARED: OnceLock<Prepared> = OnceLock::new();
    match PREPARED.get_or_init(prepare) {
        Prepared::Ready(arm64) => Some(arm64),
        Prepared::Missing(why) => {
            assert!(
                env::var_os(REQUIRE).is_none(),
                "{REQUIRE} is set, but {why}"
            );
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn prepare() -> Prepared {
    let Some(qemu) = ["qemu-aarch64-static", "qemu-aarch64"]
        .iter()
        .find_map(|name| on_path(name))
    else {
        return Prepared::Missing(
            "qemu-aarch64-static is not installed (apt-get install qemu-user-static)".into(),
        );
    };
    if !support::target_installed(TARGET) {
        return Prepared::Missing(format!(
            "the {TARGET} target is not installed (rustup target add {TARGET})"
        ));
    }
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("arm64");
    let mut build = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--profile", "tiny", "--target", TARGET])
        .args([
            "--example",
            "echo",
            "--bin",
            "tinylambda-exec",
            "--target-dir",
        ])
        .arg(&target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (code, _, stderr) = run_child_output(build, BUILD_LIMIT);
    assert_eq!(code, Some(0), "the arm64 build failed: {stderr}");
    let out = target_dir.join(TARGET).join("tiny");
    let Some(nostd) = support::nostd::binaries("arm64", TARGET) else {
        return Prepared::Missing(format!("the no_std echo could not be built for {TARGET}"));
    };
    Prepared::Ready(Arm64 {
        qemu,
        echo: out.join("examples/echo"),
        nostd_echo: nostd.echo.clone(),
        nostd_probe_heap: nostd.probe_heap.clone(),
        exec: out.join("tinylambda-exec"),
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

impl Arm64 {
    /// The two echoes: the `echo` example (std) and the one without std.
    fn echoes(&self) -> [&PathBuf; 2] {
        [&self.echo, &self.nostd_echo]
    }

    /// `qemu-aarch64-static BINARY`, ready to be a bootstrap.
    fn bootstrap(&self, binary: &Path) -> Command {
        let mut cmd = Command::new(&self.qemu);
        cmd.arg(binary);
        as_bootstrap(cmd)
    }

    /// Runs `binary` under emulation against a server following `steps`, with `vars`.
    fn serve(&self, binary: &Path, vars: &[(&str, &str)], steps: Vec<Step>) -> Outcome {
        serve_command(self.bootstrap(binary), steps, |cmd, port| {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
            cmd.envs(vars.iter().copied());
        })
    }

    /// `tinylambda-emu --invoke EVENT OPTIONS -- qemu-aarch64-static BINARY`: the exit code,
    /// stdout and stderr.
    fn emu_invoke(
        &self,
        binary: &Path,
        event: &str,
        options: &[&str],
    ) -> (Option<i32>, Vec<u8>, String) {
        let mut cmd = Command::new(EMU);
        cmd.args(["--invoke", event])
            .args(options)
            .arg("--")
            .arg(&self.qemu)
            .arg(binary)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_child_output(cmd, RUN_LIMIT)
    }
}

/// A fresh directory for `test`'s files.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("arm64-tests")
        .join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A failing shell handler (`fail.handler`): prints to stderr and returns 3, except for the
/// event `ok`.
fn failing_handler(test: &str) -> PathBuf {
    let dir = scratch(test);
    fs::write(
        dir.join("fail.sh"),
        "handler () {\n  if [ \"$1\" = ok ]; then echo fine; return; fi\n  \
         echo \"cannot handle $1\" >&2\n  return 3\n}\n",
    )
    .unwrap();
    dir
}

/// The machine (`e_machine`) of an ELF file, and whether it asks for a program interpreter
/// (a dynamic loader, which Lambda's `provided.al2023` would have to supply).
fn elf_machine_and_interpreter(path: &Path) -> (u16, bool) {
    let data = fs::read(path).unwrap();
    assert_eq!(
        &data[..5],
        b"\x7fELF\x02",
        "{} is a 64-bit ELF",
        path.display()
    );
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    let phoff = u64::from_le_bytes(data[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    const PT_INTERP: u32 = 3;
    let interpreter = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP);
    (u16_at(18), interpreter)
}

// ---------------------------------------------------------------------------------------
// The binaries

#[test]
fn the_arm64_bootstraps_are_static_aarch64_executables() {
    let Some(arm64) = arm64("the_arm64_bootstraps_are_static_aarch64_executables") else {
        return;
    };
    const EM_AARCH64: u16 = 183;
    for binary in [&arm64.echo, &arm64.nostd_echo, &arm64.exec] {
        assert_eq!(
            elf_machine_and_interpreter(binary),
            (EM_AARCH64, false),
            "{} is an arm64 executable that needs no loader or libc",
            binary.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The echo example against the fake Runtime API

#[test]
fn the_arm64_echo_answers_each_invocation_by_its_id_over_one_connection() {
    let Some(arm64) = arm64("the_arm64_echo_answers_each_invocation_by_its_id_over_one_connection")
    else {
        return;
    };
    for echo in arm64.echoes() {
        // (request id, event, extra headers on /next)
        type Invocation<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a str)]);
        let events: [Invocation; 3] = [
            (
                "id-0",
                br#"{"hello":"arm64"}"#,
                &[("Lambda-Runtime-Invocation-Id", "nonce-0")],
            ),
            ("id-1", b"", &[]),
            ("2f1c-aa", b"\x00\xff binary \xc3", &[]),
        ];
        let mut steps = Vec::new();
        for (id, body, extra) in events {
            steps.push(Step::Reply(event(id, body, extra)));
            steps.push(Step::Reply(accepted()));
        }
        let out = arm64.serve(echo, &[], steps);
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_eq!(posts.len(), 3, "{:?}", out.requests);
        for (post, (id, body, _)) in posts.iter().zip(events) {
            assert_response(post, id, body);
        }
        assert_eq!(
            posts[0].header("Lambda-Runtime-Invocation-Id"),
            Some("nonce-0"),
            "echoed when /next carried it"
        );
        assert_eq!(posts[1].header("Lambda-Runtime-Invocation-Id"), None);
        assert!(
            out.requests[0]
                .header("User-Agent")
                .is_some_and(|ua| ua.starts_with("tinylambda/")),
            "{:?}",
            out.requests[0]
        );
        assert!(
            out.requests.iter().all(|r| r.conn == 0),
            "one keep-alive connection for everything"
        );
    }
}

#[test]
fn the_arm64_echo_decodes_chunked_events_and_reconnects_after_connection_close() {
    let Some(arm64) =
        arm64("the_arm64_echo_decodes_chunked_events_and_reconnects_after_connection_close")
    else {
        return;
    };
    for echo in arm64.echoes() {
        let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let closing = |bytes: Vec<u8>| {
            let text = String::from_utf8(bytes).unwrap();
            Step::ReplyClose(
                text.replacen("\r\n", "\r\nConnection: close\r\n", 1)
                    .into_bytes(),
            )
        };
        let out = arm64.serve(
            echo,
            &[],
            vec![
                Step::Reply(chunked_event("c0", &big, &[2049, 1])),
                Step::Reply(accepted()),
                Step::Dribble(chunked_event("c1", b"dribbled, chunked", &[1, 7, 300])),
                Step::Reply(accepted()),
                closing(event("k0", b"closed after the event", &[])),
                closing(accepted()),
                Step::Reply(event("k1", b"on a fresh connection", &[])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_eq!(posts.len(), 4, "{:?}", out.requests);
        assert_response(posts[0], "c0", &big);
        assert_response(posts[1], "c1", b"dribbled, chunked");
        assert_response(posts[2], "k0", b"closed after the event");
        assert_response(posts[3], "k1", b"on a fresh connection");
        let conns: Vec<usize> = out.requests.iter().map(|r| r.conn).collect();
        assert_eq!(
            &conns[..8],
            &[0, 0, 0, 0, 0, 1, 2, 2],
            "a new connection after each Connection: close, then kept"
        );
    }
}

#[test]
fn the_arm64_heap_serves_four_loops_at_once() {
    let Some(arm64) = arm64("the_arm64_heap_serves_four_loops_at_once") else {
        return;
    };
    // Its lock is the C library's spin lock on arm64: four threads take it at once.
    support::nostd::assert_heap_under_loops(arm64.bootstrap(&arm64.nostd_probe_heap), 4, 6);
}

#[test]
fn the_arm64_echo_round_trips_six_mib_events_in_both_framings() {
    let Some(arm64) = arm64("the_arm64_echo_round_trips_six_mib_events_in_both_framings") else {
        return;
    };
    for echo in arm64.echoes() {
        let big: Vec<u8> = (0..MAX_PAYLOAD).map(|i| (i % 253) as u8).collect();
        let out = arm64.serve(
            echo,
            &[],
            vec![
                Step::Reply(event("big-length", &big, &[])),
                Step::Reply(accepted()),
                Step::Reply(chunked_event("big-chunked", &big, &[65536, 1, 1 << 20])),
                Step::Reply(accepted()),
            ],
        );
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_response(posts[0], "big-length", &big);
        assert_response(posts[1], "big-chunked", &big);
    }
}

#[test]
fn the_arm64_echo_reports_a_broken_event_and_obeys_the_apis_errors() {
    let Some(arm64) = arm64("the_arm64_echo_reports_a_broken_event_and_obeys_the_apis_errors")
    else {
        return;
    };
    for echo in arm64.echoes() {
        // Content-Length promises 100 bytes; 10 arrive, then the server closes.
        let mut cut =
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: short\r\nContent-Length: 100\r\n\r\n"
            .to_vec();
        cut.extend_from_slice(b"0123456789");
        let out = arm64.serve(
            echo,
            &[],
            vec![
                Step::Cut(cut),
                Step::Reply(accepted()),
                Step::Reply(event("refused", b"too big for Lambda", &[])),
                Step::Reply(status(413, "Exceeded maximum allowed payload size")),
                Step::Reply(event("after", b"still serving", &[])),
                Step::Reply(accepted()),
            ],
        );
        // The script ends with a 500 on /next, which ends the process with status 1.
        out.assert_ran_to_the_end();
        let posts = out.posts();
        assert_eq!(posts.len(), 3, "no /error after the 413: {posts:?}");
        assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/short/error");
        assert_eq!(
            posts[0].header("Lambda-Runtime-Function-Error-Type"),
            Some("Runtime.InvalidEvent")
        );
        assert_response(posts[1], "refused", b"too big for Lambda");
        assert_response(posts[2], "after", b"still serving");
        assert!(
            out.stderr.contains("POST for refused returned 413"),
            "{}",
            out.stderr
        );

        // No Runtime API at all: one line naming the variable, status 1.
        let (code, stderr) = run_child(arm64.bootstrap(echo));
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(
            stderr.starts_with("tinylambda: ")
                && stderr.contains("AWS_LAMBDA_RUNTIME_API is not set"),
            "{stderr:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// tinylambda-exec against the fake Runtime API

#[test]
fn the_arm64_exec_runs_the_seed_bash_handler_and_reports_a_failing_one() {
    let test = "the_arm64_exec_runs_the_seed_bash_handler_and_reports_a_failing_one";
    let Some(arm64) = arm64(test) else {
        return;
    };
    let out = arm64.serve(
        &arm64.exec,
        &[
            ("_HANDLER", "function.handler"),
            ("LAMBDA_TASK_ROOT", EXEC_EXAMPLES),
        ],
        vec![
            Step::Reply(event("a", br#"{"hello":"world"}"#, &[])),
            Step::Reply(accepted()),
            Step::Reply(chunked_event("b", &[b'x'; 3000], &[1000])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_response(posts[0], "a", SEED_REPLY);
    assert_response(posts[1], "b", SEED_REPLY);
    assert!(
        out.stderr.lines().any(|l| l == r#"{"hello":"world"}"#),
        "the handler's stderr reaches the log: {}",
        out.stderr
    );

    let root = failing_handler(test);
    let out = arm64.serve(
        &arm64.exec,
        &[
            ("_HANDLER", "fail.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ],
        vec![
            Step::Reply(event("bad", b"{\"x\":1}", &[])),
            Step::Reply(accepted()),
            Step::Reply(event("good", b"ok", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let posts = out.posts();
    assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/bad/error");
    assert_eq!(
        posts[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Runtime.ExitError")
    );
    let error = posts[0].text();
    assert!(
        error.contains("exit status 3: cannot handle {\\\"x\\\":1}"),
        "{error}"
    );
    assert_response(posts[1], "good", b"fine");
}

// ---------------------------------------------------------------------------------------
// Through tinylambda-emu (native) starting `qemu-aarch64-static BOOTSTRAP`

#[test]
fn the_arm64_echo_answers_through_tinylambda_emu_up_to_lambdas_limit() {
    let test = "the_arm64_echo_answers_through_tinylambda_emu_up_to_lambdas_limit";
    let Some(arm64) = arm64(test) else {
        return;
    };
    for echo in arm64.echoes() {
        let (code, stdout, stderr) = arm64.emu_invoke(echo, r#"{"hello":"arm64"}"#, &[]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(stdout, br#"{"hello":"arm64"}"#);
        assert!(stderr.contains("START RequestId: "), "{stderr}");

        // The largest event Lambda takes, which the emulator sends chunked (as Lambda does
        // above 2048 bytes) and the response of the same size.
        let dir = scratch(test);
        let file = dir.join("event.json");
        // A JSON string: the emulator takes only JSON, as Lambda's Invoke API does.
        let mut big: Vec<u8> = (0..MAX_REQUEST).map(|i| b'a' + (i % 26) as u8).collect();
        big[0] = b'"';
        big[MAX_REQUEST - 1] = b'"';
        fs::write(&file, &big).unwrap();
        let (code, stdout, stderr) = arm64.emu_invoke(echo, &format!("@{}", file.display()), &[]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout == big, "{} bytes back", stdout.len());
    }
}

#[test]
fn the_arm64_exec_answers_and_fails_through_tinylambda_emu() {
    let test = "the_arm64_exec_answers_and_fails_through_tinylambda_emu";
    let Some(arm64) = arm64(test) else {
        return;
    };
    let task_root = format!("LAMBDA_TASK_ROOT={EXEC_EXAMPLES}");
    let (code, stdout, stderr) = arm64.emu_invoke(
        &arm64.exec,
        r#"{"hello":"world"}"#,
        &["--env", "_HANDLER=function.handler", "--env", &task_root],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim_ascii_end(), SEED_REPLY);

    let root = failing_handler(test);
    let task_root = format!("LAMBDA_TASK_ROOT={}", root.display());
    let (code, stdout, stderr) = arm64.emu_invoke(
        &arm64.exec,
        "{}",
        &["--env", "_HANDLER=fail.handler", "--env", &task_root],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{}", String::from_utf8_lossy(&stdout));
    assert!(
        stderr.contains("the function failed with Runtime.ExitError"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot handle {}"), "{stderr}");
}

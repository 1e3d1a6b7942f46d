//! Graceful shutdown against the fake Runtime API (`cargo test --features graceful-shutdown`):
//! the no-op extension registers before the first `/next`, parks on `/event/next`, and
//! SIGTERM runs the callback and ends the process with status 0.
#![cfg(feature = "graceful-shutdown")]

mod support;

use support::{Step, accepted, child, event, registered, serve};
use tinylambda::{Context, Error};

fn echo(event: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

/// The extension's identifier the fake Extensions API hands out.
const EXTENSION_ID: &str = "4f2b1a9c-0000-4000-8000-00000000beef";

/// Serves `test`'s bootstrap through registration (the extension's `/event/next` left
/// waiting), one invocation with `event_body`, and then SIGTERM while it waits on `/next`.
fn serve_until_sigterm(test: &str, event_body: &[u8]) -> support::Outcome {
    serve(
        test,
        vec![
            Step::Reply(registered(EXTENSION_ID)),
            Step::Park,
            Step::Reply(event("a", event_body, &[])),
            Step::Reply(accepted()),
            Step::SigTerm,
        ],
    )
}

#[test]
#[cfg_attr(
    tinylambda_portable,
    ignore = "SIGTERM is handled on Linux only, not by the portable fallback"
)]
fn sigterm_runs_the_callback_and_exits_zero() {
    if child() {
        tinylambda::on_shutdown(|| {
            // The test reads stderr: proof the callback ran, in order, before the exit.
            eprintln!("callback: flushed and closed");
        });
        tinylambda::run(echo)
    }
    let id = EXTENSION_ID;
    let out = serve_until_sigterm("sigterm_runs_the_callback_and_exits_zero", b"work");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("callback: flushed and closed"),
        "{}",
        out.stderr
    );
    let register = &out.requests[0];
    assert_eq!(
        (register.method.as_str(), register.path.as_str()),
        ("POST", "/2020-01-01/extension/register")
    );
    assert_eq!(
        register.header("Lambda-Extension-Name"),
        Some("tinylambda-graceful-shutdown")
    );
    assert_eq!(register.body, b"{\"events\":[]}");
    let next_event = &out.requests[1];
    assert_eq!(
        (next_event.method.as_str(), next_event.path.as_str()),
        ("GET", "/2020-01-01/extension/event/next")
    );
    assert_eq!(next_event.header("Lambda-Extension-Identifier"), Some(id));
    assert_eq!(
        next_event.conn, register.conn,
        "the extension keeps its own connection"
    );
    let runtime: Vec<&support::Request> = out.requests[2..].iter().collect();
    assert!(
        runtime[0].is_next() && runtime[0].conn != register.conn,
        "the runtime has a connection of its own"
    );
    assert_eq!(runtime[1].body, b"work", "invocations go on as usual");
    assert!(
        runtime[2].is_next(),
        "SIGTERM arrived while the runtime waited on /next"
    );
}

#[test]
#[cfg_attr(
    tinylambda_portable,
    ignore = "SIGTERM is handled on Linux only, not by the portable fallback"
)]
fn a_callback_that_panics_still_ends_the_process_with_status_zero() {
    if child() {
        tinylambda::on_shutdown(|| panic!("the callback gave up"));
        tinylambda::run(echo)
    }
    let out = serve_until_sigterm(
        "a_callback_that_panics_still_ends_the_process_with_status_zero",
        b"x",
    );
    // With std the panic is reported and the exit is the documented one; without std the
    // panic ends the process as any panic does there (the panic handler of the program).
    if cfg!(feature = "std") {
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    assert!(
        out.stderr.contains("the callback gave up"),
        "{}",
        out.stderr
    );
}

#[test]
fn without_an_extensions_api_the_function_runs_on_without_sigterm() {
    if child() {
        tinylambda::on_shutdown(|| eprintln!("never"));
        tinylambda::run(echo)
    }
    let out = serve(
        "without_an_extensions_api_the_function_runs_on_without_sigterm",
        vec![
            Step::Reply(support::status(404, "no such route")),
            Step::Reply(event("a", b"x", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    assert!(
        out.stderr
            .contains("graceful shutdown unavailable: the extension register call returned 404"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.posts()
            .iter()
            .filter(|r| r.path.ends_with("/response"))
            .count(),
        1
    );
}

#[test]
fn without_an_extensions_api_sigterm_still_ends_the_process() {
    if child() {
        tinylambda::on_shutdown(|| eprintln!("never"));
        tinylambda::run(echo)
    }
    let out = serve(
        "without_an_extensions_api_sigterm_still_ends_the_process",
        vec![
            Step::Reply(support::status(404, "no such route")),
            Step::Reply(event("a", b"x", &[])),
            Step::Reply(accepted()),
            Step::SigTerm,
        ],
    );
    // No handler was left behind to swallow the signal: its default action ends the
    // process (as a Ctrl-C or an emulator's reload expects), and the callback never runs.
    assert_eq!(out.code, None, "killed by the signal: {}", out.stderr);
    assert!(!out.stderr.contains("never"), "{}", out.stderr);
}

/// `setrlimit(RLIMIT_AS)` to the address space in use now plus `room` bytes (`None`:
/// unlimited), so that a thread's stack cannot be had.
fn limit_address_space(room: Option<u64>) {
    #[repr(C)]
    struct Rlimit {
        cur: u64,
        max: u64,
    }
    unsafe extern "C" {
        fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
    }
    const RLIMIT_AS: i32 = 9;
    let in_use = || -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim();
        kib.parse::<u64>().unwrap() * 1024
    };
    let cur = room.map_or(u64::MAX, |room| in_use() + room);
    let limit = Rlimit { cur, max: u64::MAX };
    // SAFETY: a valid limit for a valid resource.
    assert_eq!(unsafe { setrlimit(RLIMIT_AS, &limit) }, 0);
}

#[test]
#[cfg_attr(
    tinylambda_portable,
    ignore = "SIGTERM is handled on Linux only, not by the portable fallback"
)]
fn when_the_waiting_thread_cannot_start_sigterm_still_ends_the_process() {
    if child() {
        // 1 MiB of address space to spare: enough for the register call, not for the
        // waiting thread's stack.
        limit_address_space(Some(1 << 20));
        tinylambda::on_shutdown(|| eprintln!("never"));
        limit_address_space(None);
        tinylambda::run(echo)
    }
    if std::env::var_os(support::RUNNER).is_some() {
        // An emulator such as qemu-aarch64-static keeps the guest's address-space limit to
        // itself: the thread would start, and there would be nothing to test.
        eprintln!("SKIPPED: a thread cannot be kept from starting under an emulator");
        return;
    }
    let out = serve_until_sigterm(
        "when_the_waiting_thread_cannot_start_sigterm_still_ends_the_process",
        b"x",
    );
    assert!(
        out.stderr.contains("cannot start its thread"),
        "{}",
        out.stderr
    );
    // No handler was left behind with nobody to act on what it hears: the signal's default
    // action ends the process.
    assert_eq!(out.code, None, "killed by the signal: {}", out.stderr);
    assert!(!out.stderr.contains("never"), "{}", out.stderr);
}

/// What this process's descriptors beyond stdin, stdout and stderr are (`pipe:[…]`,
/// `socket:[…]`, a path), as listed for `pid` (`self` or a number) in `/proc`.
fn descriptors(pid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
    {
        let Ok(entry) = entry else { continue };
        let fd: u32 = entry.file_name().to_string_lossy().parse().unwrap_or(0);
        if fd > 2 {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                found.push(target.to_string_lossy().into_owned());
            }
        }
    }
    found
}

/// The descriptors the bootstrap had before the runtime started (inherited from the test).
static BEFORE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// The descriptors a child process started by the handler inherited from the runtime: those
/// of a shell, less what the bootstrap had before the runtime started, one per line.
fn inherited_descriptors(_: &[u8], _: &Context) -> Result<Vec<u8>, Error> {
    let mut shell = std::process::Command::new("sh")
        .args(["-c", "echo ready; read line"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Looked at once the shell runs its script: while the program loader is still at work
    // it has files of its own open (the C library, say).
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(shell.stdout.as_mut().ok_or("no stdout")?, &mut ready)
        .map_err(|e| e.to_string())?;
    let before = BEFORE.get().cloned().unwrap_or_default();
    let from_runtime: Vec<String> = descriptors(&shell.id().to_string())
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    drop(shell.stdin.take());
    shell.wait().map_err(|e| e.to_string())?;
    Ok(from_runtime.join("\n").into_bytes())
}

#[test]
fn processes_the_handler_starts_inherit_neither_the_signal_pipe_nor_the_sockets() {
    if child() {
        BEFORE.get_or_init(|| descriptors("self"));
        tinylambda::on_shutdown(|| {});
        tinylambda::run(inherited_descriptors)
    }
    let out = serve(
        "processes_the_handler_starts_inherit_neither_the_signal_pipe_nor_the_sockets",
        vec![
            Step::Reply(registered("4f2b1a9c-0000-4000-8000-00000000cafe")),
            Step::Park,
            Step::Reply(event("a", b"{}", &[])),
            Step::Reply(accepted()),
        ],
    );
    out.assert_ran_to_the_end();
    let response = out
        .requests
        .iter()
        .find(|r| r.path.ends_with("/a/response"))
        .expect("the response");
    assert_eq!(
        response.text(),
        "",
        "descriptors of the runtime a child process inherited"
    );
}

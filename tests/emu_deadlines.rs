//! `tinylambda-emu`'s time limits hold whatever the caller and the runtime do: a caller that
//! goes away or stops reading a stream, a runtime that never comes back to `/next`, one that
//! exits right after posting, and, with `--concurrency N` (Lambda Managed Instances), one
//! invocation's timeout or an invocation beyond N.
//!
//! Real emulator, real bootstraps (this test binary re-run in a role), real sockets on
//! 127.0.0.1; every wait is bounded.

use std::io::Write;
#[cfg(feature = "streaming")]
use std::net::Shutdown;
#[cfg(any(feature = "streaming", feature = "concurrent"))]
use std::path::Path;
use std::time::Duration;
#[cfg(any(feature = "streaming", feature = "concurrent"))]
use std::time::Instant;

#[allow(unused_imports)]
use tinylambda::{Context, Error};

mod emu_support;
mod support;

use emu_support::*;

/// How long a check that fails on a runtime left running waits before it fails: well past
/// every timeout these tests set, well below [`LIMIT`].
const BOUND: Duration = Duration::from_secs(20);

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Some(role) = my_role() else {
        return;
    };
    match role.as_str() {
        #[cfg(feature = "streaming")]
        "streamer" => streamer(),
        "no-next" => no_next_runtime(),
        "post-and-exit" => post_and_exit_runtime(),
        #[cfg(feature = "concurrent")]
        "managed" => managed_runtime(),
        other => panic!("unknown role {other}"),
    }
}

/// Waits (up to [`LIMIT`]) for file `path` to exist; whether it does.
#[cfg(any(feature = "streaming", feature = "concurrent"))]
fn file_appears(path: &Path) -> bool {
    wait_until(LIMIT, || path.exists())
}

/// A streaming handler. Events: `pid` streams the process id; `gated` streams a line,
/// waits for `$MARKER`, streams five more 20 ms apart, then hangs; `endless` streams 64 KiB
/// pieces until it is stopped; `big` streams 32 MiB and ends.
#[cfg(feature = "streaming")]
fn streamer() -> ! {
    tinylambda::run_streaming(
        |event: &[u8], _: &Context, out: &mut tinylambda::Stream| -> Result<(), Error> {
            match unword(event) {
                b"gated" => {
                    out.write_all(b"first chunk\n")?;
                    let marker = std::env::var("MARKER").unwrap_or_default();
                    file_appears(Path::new(&marker));
                    for _ in 0..5 {
                        out.write_all(b"more\n")?;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    std::thread::sleep(LIMIT);
                    Ok(())
                }
                b"endless" => {
                    let block = vec![b'e'; 64 * 1024];
                    loop {
                        out.write_all(&block)?;
                    }
                }
                b"big" => {
                    let block = vec![b'b'; 64 * 1024];
                    for _ in 0..512 {
                        out.write_all(&block)?;
                    }
                    Ok(())
                }
                _ => Ok(out.write_all(std::process::id().to_string().as_bytes())?),
            }
        },
    )
}

/// Answers its first event with its pid, then never asks for another.
fn no_next_runtime() -> ! {
    let (id, _, _) = next_event();
    let pid = std::process::id().to_string();
    api(
        "POST",
        &format!("invocation/{id}/response"),
        "",
        pid.as_bytes(),
    );
    std::thread::sleep(LIMIT);
    std::process::exit(0)
}

/// Posts the event back as the response and exits at once, without waiting for the answer.
fn post_and_exit_runtime() -> ! {
    let (id, _, event) = next_event();
    let path = format!("/2018-06-01/runtime/invocation/{id}/response");
    let mut stream = api_send("POST", &path, "", &event);
    let _ = stream.flush();
    std::process::exit(0)
}

/// Under `--concurrency 2`. Events: `hang` writes `$DIR/started-hang` and sleeps; `gated:X`
/// writes `$DIR/started-X`, waits for `$DIR/go-X` and answers its pid; `pid` answers its pid.
#[cfg(feature = "concurrent")]
fn managed_runtime() -> ! {
    tinylambda::run_concurrent(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
        let dir = std::path::PathBuf::from(std::env::var("DIR").unwrap_or_default());
        let event = String::from_utf8_lossy(unword(event)).into_owned();
        let pid = std::process::id().to_string().into_bytes();
        if event == "hang" {
            std::fs::write(dir.join("started-hang"), b"").map_err(|e| e.to_string())?;
            std::thread::sleep(LIMIT);
        } else if let Some(name) = event.strip_prefix("gated:") {
            std::fs::write(dir.join(format!("started-{name}")), b"").map_err(|e| e.to_string())?;
            file_appears(&dir.join(format!("go-{name}")));
        }
        Ok(pid)
    })
}

// ---------------------------------------------------------------------------------------
// Streams: the timer, not the caller, owns the deadline

#[cfg(feature = "streaming")]
#[test]
fn a_stream_whose_caller_went_away_still_ends_at_the_timeout() {
    child();
    let test = "a_stream_whose_caller_went_away_still_ends_at_the_timeout";
    let dir = temp_dir("caller-gone");
    let marker = dir.join("caller-gone");
    let emu = Emu::serve(&role(
        test,
        "streamer",
        &[
            "--timeout",
            "2",
            "--env",
            &format!("MARKER={}", marker.display()),
        ],
    ));
    let pid: u32 = emu.invoke(&word("pid")).text().parse().expect("pid");
    let mut caller = emu.client();
    caller.request("POST", INVOKE_PATH, &[], &word("gated"));
    caller.wait_for(b"first chunk\n");
    // The caller leaves; the runtime writes on (into a closed connection), then hangs.
    let _ = caller.stream.shutdown(Shutdown::Both);
    drop(caller);
    std::fs::write(&marker, b"").expect("marker");

    assert!(
        wait_until(BOUND, || !running(pid)),
        "the runtime {pid} still runs long after its 2 s timeout: nothing enforced it"
    );
    let log = emu.wait_log("Status: timeout", 1);
    assert!(log.contains("Task timed out after 2.00 seconds"), "{log}");
    let mut next = emu.client();
    next.stream.set_read_timeout(Some(BOUND)).unwrap();
    let reply = next.post(INVOKE_PATH, &[], &word("pid"));
    assert_eq!(reply.status, 200);
    assert_ne!(reply.text(), pid.to_string(), "a fresh runtime answers");
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(feature = "streaming")]
#[test]
fn a_stream_times_out_even_when_its_caller_stops_reading() {
    child();
    let test = "a_stream_times_out_even_when_its_caller_stops_reading";
    let emu = Emu::serve(&role(test, "streamer", &["--timeout", "2"]));
    let pid: u32 = emu.invoke(&word("pid")).text().parse().expect("pid");
    // This caller asks for an endless stream and never reads a byte of it.
    let mut stalled = emu.client();
    stalled.request("POST", INVOKE_PATH, &[], &word("endless"));

    assert!(
        wait_until(BOUND, || !running(pid)),
        "the runtime {pid} still streams long after its 2 s timeout"
    );
    let mut next = emu.client();
    next.stream.set_read_timeout(Some(BOUND)).unwrap();
    let reply = next.post(INVOKE_PATH, &[], &word("pid"));
    assert_eq!(reply.status, 200);
    assert_ne!(reply.text(), pid.to_string());
    emu.wait_log("Status: timeout", 1);
    drop(stalled);
}

#[cfg(feature = "streaming")]
#[test]
fn a_caller_that_stops_reading_does_not_stall_the_runtime() {
    child();
    let test = "a_caller_that_stops_reading_does_not_stall_the_runtime";
    // The timeout is far away: the runtime must finish its 32 MiB long before it.
    let emu = Emu::serve(&role(test, "streamer", &["--timeout", "40"]));
    let pid = emu.invoke(&word("pid")).text();
    let mut stalled = emu.client();
    stalled.request("POST", INVOKE_PATH, &[], &word("big"));
    stalled.wait_for(b"bbbb");

    // The emulator gives up on the stalled caller, the runtime streams to its end and
    // takes the next invocation: the same process, well before the timeout.
    let started = Instant::now();
    let mut next = emu.client();
    next.stream.set_read_timeout(Some(BOUND)).unwrap();
    let reply = next.post(INVOKE_PATH, &[], &word("pid"));
    assert_eq!((reply.status, reply.text()), (200, pid.clone()));
    assert!(started.elapsed() < BOUND);
    // The stream's outcome is kept: its REPORT has no error status.
    let log = emu.wait_log("REPORT RequestId: ", 3);
    assert!(!log.contains("Status: "), "{log}");
    drop(stalled);
}

// ---------------------------------------------------------------------------------------
// A runtime that does not come back to /next

#[test]
fn an_invocation_queued_behind_a_runtime_that_never_asks_again_still_ends() {
    child();
    let test = "an_invocation_queued_behind_a_runtime_that_never_asks_again_still_ends";
    let emu = Emu::serve(&role(test, "no-next", &["--timeout", "2"]));
    let first = emu.invoke(&word("first"));
    assert_eq!(first.status, 200);
    let pid = first.text();
    // The runtime answered but never asks for the next event: on Lambda the invocation
    // lasts until it does, so its timeout ends the runtime, and the next caller gets a
    // fresh one instead of waiting forever.
    let mut second = emu.client();
    second.stream.set_read_timeout(Some(BOUND)).unwrap();
    let reply = second.post(INVOKE_PATH, &[], &word("second"));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_ne!(reply.text(), pid);
    assert!(ended(pid.parse().expect("pid")));
    let log = emu.wait_log("Status: timeout", 1);
    assert!(log.contains("Task timed out after 2.00 seconds"), "{log}");
}

// ---------------------------------------------------------------------------------------
// A runtime that posts and exits

#[test]
fn a_response_posted_just_before_the_runtime_exits_counts() {
    child();
    let test = "a_response_posted_just_before_the_runtime_exits_counts";
    let emu = Emu::serve(&role(test, "post-and-exit", &[]));
    for i in 0..20 {
        let event = format!("\"event {i}\"");
        let reply = emu.invoke(event.as_bytes());
        assert_eq!(
            (
                reply.status,
                reply.header("X-Amz-Function-Error"),
                reply.text()
            ),
            (200, None, event),
            "invocation {i}: the response reached the API before the exit"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Lambda Managed Instances (--concurrency N)

#[cfg(feature = "concurrent")]
#[test]
fn with_concurrency_a_timeout_fails_only_that_invocation() {
    child();
    let test = "with_concurrency_a_timeout_fails_only_that_invocation";
    let dir = temp_dir("managed-timeout");
    let emu = Emu::serve(&role(
        test,
        "managed",
        &[
            "--concurrency",
            "2",
            "--timeout",
            "2",
            "--env",
            &format!("DIR={}", dir.display()),
        ],
    ));
    let port = emu.port;
    let pid = emu.invoke(&word("pid")).text();
    let hung =
        std::thread::spawn(move || Client::connect(port).post(INVOKE_PATH, &[], &word("hang")));
    assert!(file_appears(&dir.join("started-hang")));
    // One second later, so that this one's deadline is a second after the hung one's.
    std::thread::sleep(Duration::from_secs(1));
    let other =
        std::thread::spawn(move || Client::connect(port).post(INVOKE_PATH, &[], &word("gated:b")));
    assert!(file_appears(&dir.join("started-b")));

    let hung = hung.join().unwrap();
    assert_eq!(hung.error_type(), "Sandbox.Timedout", "{hung:?}");
    std::fs::write(dir.join("go-b"), b"").unwrap();
    let other = other.join().unwrap();
    assert_eq!(
        (
            other.status,
            other.header("X-Amz-Function-Error"),
            other.text()
        ),
        (200, None, pid.clone()),
        "the other invocation in flight is not failed by the timeout"
    );
    // The environment keeps running.
    assert_eq!(emu.invoke(&word("pid")).text(), pid);
    assert!(!emu.stderr().contains("the runtime ended"));
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(feature = "concurrent")]
#[test]
fn with_concurrency_invocations_beyond_n_are_throttled_at_once() {
    child();
    let test = "with_concurrency_invocations_beyond_n_are_throttled_at_once";
    let dir = temp_dir("managed-throttle");
    let emu = Emu::serve(&role(
        test,
        "managed",
        &[
            "--concurrency",
            "2",
            "--timeout",
            "30",
            "--env",
            &format!("DIR={}", dir.display()),
        ],
    ));
    let port = emu.port;
    let gated: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let event = word(&format!("gated:{name}"));
            std::thread::spawn(move || Client::connect(port).post(INVOKE_PATH, &[], &event))
        })
        .collect();
    assert!(file_appears(&dir.join("started-a")) && file_appears(&dir.join("started-b")));

    let started = Instant::now();
    let mut third = emu.client();
    third.stream.set_read_timeout(Some(BOUND)).unwrap();
    let reply = third.post(INVOKE_PATH, &[], &word("pid"));
    assert_eq!(
        (reply.status, reply.header("X-Amzn-ErrorType").as_deref()),
        (429, Some("TooManyRequestsException")),
        "{reply:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once"
    );

    for name in ["a", "b"] {
        std::fs::write(dir.join(format!("go-{name}")), b"").unwrap();
    }
    for reply in gated {
        assert_eq!(reply.join().unwrap().status, 200);
    }
    assert_eq!(emu.invoke(&word("pid")).status, 200);
    let _ = std::fs::remove_dir_all(dir);
}

//! `tinylambda-emu` owns every process a runtime starts: it reaps each one (it is their
//! subreaper), and when it stops a runtime, or when the runtime ends, or when it exits
//! itself, it ends all of them, process groups of their own included (a web server that
//! `tinylambda-exec` starts, say).
//!
//! Real emulator, this test binary re-run as the bootstrap, `/bin/sh` and `sleep` as the
//! processes it starts; every wait is bounded.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tinylambda::{Context, Error};

mod emu_support;
mod support;

use emu_support::*;

/// How long a check that fails on processes left behind waits before it fails.
const BOUND: Duration = Duration::from_secs(20);

/// In a bootstrap child, becomes the bootstrap of its role and never returns.
fn child() {
    let Some(role) = my_role() else {
        return;
    };
    match role.as_str() {
        "starter" => tinylambda::run(|event: &[u8], _: &Context| -> Result<Vec<u8>, Error> {
            match unword(event) {
                // A shell in a process group of its own leaves a short job behind and
                // tells its pid: the job's parent is gone, so the emulator inherits it.
                b"orphan" => {
                    let output = Command::new("/bin/sh")
                        .args(["-c", "sleep 0.05 </dev/null >/dev/null 2>&1 & echo $!"])
                        .process_group(0)
                        .stdin(Stdio::null())
                        .output()
                        .map_err(|e| e.to_string())?;
                    Ok(output.stdout.trim_ascii().to_vec())
                }
                // A long-lived server in a process group of its own, not waited for (and
                // not holding the emulator's stderr).
                b"server" => {
                    let server = Command::new("sleep")
                        .arg("60")
                        .process_group(0)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .map_err(|e| e.to_string())?;
                    Ok(server.id().to_string().into_bytes())
                }
                b"hang" => {
                    std::thread::sleep(LIMIT);
                    Ok(Vec::new())
                }
                b"exit" => std::process::exit(0),
                _ => Ok(std::process::id().to_string().into_bytes()),
            }
        }),
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn every_process_the_runtime_leaves_behind_is_reaped() {
    child();
    let emu = Emu::serve(&role(
        "every_process_the_runtime_leaves_behind_is_reaped",
        "starter",
        &[],
    ));
    let orphans: Vec<String> = (0..10)
        .map(|_| emu.invoke(&word("orphan")).text())
        .collect();
    let emulator = emu.child.id();
    for orphan in &orphans {
        assert!(
            wait_until(BOUND, || !Path::new(&format!("/proc/{orphan}")).exists()),
            "{orphan} was never reaped; the emulator's zombies: {:?}",
            zombies_of(emulator)
        );
    }
}

#[test]
fn a_server_in_its_own_process_group_ends_when_the_emulator_stops_the_runtime() {
    child();
    let emu = Emu::serve(&role(
        "a_server_in_its_own_process_group_ends_when_the_emulator_stops_the_runtime",
        "starter",
        &["--timeout", "1"],
    ));
    let server: u32 = emu.invoke(&word("server")).text().parse().expect("pid");
    assert!(running(server));
    let reply = emu.invoke(&word("hang"));
    assert_eq!(reply.error_type(), "Sandbox.Timedout");
    assert!(
        wait_until(BOUND, || !running(server)),
        "the server {server} outlived the runtime the emulator stopped"
    );
}

#[test]
fn a_server_in_its_own_process_group_ends_with_the_runtime() {
    child();
    let emu = Emu::serve(&role(
        "a_server_in_its_own_process_group_ends_with_the_runtime",
        "starter",
        &[],
    ));
    let server: u32 = emu.invoke(&word("server")).text().parse().expect("pid");
    let reply = emu.invoke(&word("exit"));
    assert_eq!(reply.error_type(), "Runtime.ExitError");
    assert!(
        wait_until(BOUND, || !running(server)),
        "the server {server} outlived the runtime that started it"
    );
}

#[test]
fn a_server_in_its_own_process_group_ends_with_the_emulator() {
    child();
    let test = "a_server_in_its_own_process_group_ends_with_the_emulator";
    let mut emu = Emu::serve(&role(test, "starter", &[]));
    let server: u32 = emu.invoke(&word("server")).text().parse().expect("pid");
    emu.terminate();
    assert!(
        wait_until(BOUND, || !running(server)),
        "the server {server} outlived the emulator"
    );

    // The same at the end of --invoke.
    let output = run_emu(&invoke_role(r#""server""#, test, "starter", &[]));
    assert_eq!(output.status.code(), Some(0));
    let server: u32 = String::from_utf8_lossy(&output.stdout)
        .parse()
        .expect("pid");
    assert!(
        wait_until(BOUND, || !running(server)),
        "the server {server} outlived tinylambda-emu --invoke"
    );
}

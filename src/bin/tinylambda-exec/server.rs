//! The web server `TINYLAMBDA_WEB_START` starts: a process group of its own that ends
//! with us, however we end.
//!
//! - Our normal end and our errors: the group is killed ([`Server::stop`]) whenever we give
//!   the server up, and otherwise by the two mechanisms below, which also cover the ends
//!   nothing of ours runs at.
//! - Any end at all, SIGKILL included: the kernel sends the server's first process SIGKILL
//!   as our main thread ends (`PR_SET_PDEATHSIG`, kept across the `exec` of `sh -c`'s last
//!   command, so usually the server itself).
//! - Whatever else the command started in the group: a watcher in the same group, `sh`
//!   blocked reading a pipe whose only writer is us, kills the whole group (itself
//!   included) when the pipe reports its end, which happens as we end, however we end.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use tinylambda::{Error, Level};

use crate::failure::{START_ERROR, error};
use crate::log::log;
use crate::server_log::ServerLog;
use crate::sys;

/// The watcher: wait for the end of stdin (our end closing), then kill the process group.
const WATCHER: &str = "read -r _ ; kill -s KILL 0";

/// A running web server and the watcher of its group.
pub(crate) struct Server {
    /// `TINYLAMBDA_WEB_START`, for messages and restarts.
    pub(crate) command: String,
    process: Child,
    /// The watcher and our end of its stdin (never written: only its closing counts).
    watcher: Option<(Child, ChildStdin)>,
}

impl Server {
    /// Runs `command` with `/bin/sh -c` in `dir` (`LAMBDA_TASK_ROOT`), in a process group of
    /// its own, its output going to the function's log: to our streams directly, or in JSON
    /// format through `log`.
    ///
    /// # Errors
    /// `Runtime.StartError` when it cannot be started.
    pub(crate) fn start(command: &str, dir: &Path, log: &mut ServerLog) -> Result<Server, Error> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(dir)
            .process_group(0)
            .stdin(Stdio::null());
        if let Some((stdout, stderr)) = log.streams() {
            cmd.stdout(stdout).stderr(stderr);
        }
        sys::die_with_this_thread(&mut cmd);
        let process = cmd.spawn().map_err(|e| {
            error(
                START_ERROR,
                &[
                    b"TINYLAMBDA_WEB_START (",
                    command.as_bytes(),
                    b") in ",
                    dir.as_os_str().as_bytes(),
                    b": ",
                    e.to_string().as_bytes(),
                ],
            )
        })?;
        let watcher = watch(process.id());
        Ok(Server {
            command: command.to_owned(),
            process,
            watcher,
        })
    }

    /// How the server's first process ended, if it has.
    pub(crate) fn ended(&mut self) -> Option<ExitStatus> {
        self.process.try_wait().ok().flatten()
    }

    /// Kills the server's whole process group (the watcher too) and reaps what we started.
    pub(crate) fn stop(mut self) {
        sys::kill_group(self.process.id());
        let _ = self.process.wait();
        if let Some((mut watcher, stdin)) = self.watcher.take() {
            drop(stdin);
            let _ = watcher.wait();
        }
    }
}

/// Starts the watcher of the group `pgid`; `None` (logged) when it cannot join it, as when
/// the server made a session of its own.
fn watch(pgid: u32) -> Option<(Child, ChildStdin)> {
    let started = Command::new("/bin/sh")
        .args(["-c", WATCHER])
        .process_group(i32::try_from(pgid).ok()?)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        Ok(mut watcher) => {
            let stdin = watcher.stdin.take()?;
            Some((watcher, stdin))
        }
        Err(e) => {
            log(
                Level::Warn,
                &[
                    b"cannot watch the web server's process group (",
                    e.to_string().as_bytes(),
                    b"): what it starts beside itself may outlive us",
                ],
            );
            None
        }
    }
}

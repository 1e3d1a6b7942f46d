//! A child process in its own process group, with pipes to its stdin, stdout and stderr.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use crate::sys;

/// A running (or exited, not yet reaped) child and the pipes we still hold.
pub(crate) struct Child {
    process: std::process::Child,
    /// Our end of its stdin (non-blocking), until we close it.
    pub(crate) stdin: Option<ChildStdin>,
    /// Its stdout, until the end of the stream.
    pub(crate) stdout: Option<ChildStdout>,
    /// Its stderr, until the end of the stream.
    pub(crate) stderr: Option<ChildStderr>,
    /// Readable once it exits (`None` on kernels before 5.3).
    pub(crate) pidfd: Option<OwnedFd>,
    /// Whether the pidfd said it exited.
    pub(crate) exited: bool,
}

impl Child {
    /// Starts `cmd` as the leader of a new process group, with all three streams piped.
    pub(crate) fn spawn(cmd: &mut Command) -> io::Result<Child> {
        let mut process = cmd
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = process.stdin.take();
        if let Some(stdin) = &stdin {
            if let Err(e) = sys::set_nonblocking(stdin.as_raw_fd()) {
                sys::kill_group(process.id());
                let _ = process.wait();
                return Err(e);
            }
        }
        Ok(Child {
            pidfd: sys::pidfd(process.id()),
            stdin,
            stdout: process.stdout.take(),
            stderr: process.stderr.take(),
            exited: false,
            process,
        })
    }

    /// Kills the child and everything else in its process group (SIGKILL).
    pub(crate) fn kill(&self) {
        sys::kill_group(self.process.id());
    }

    /// Closes our ends of the pipes and waits for the child to end; `None` if waiting
    /// failed (it cannot, for a child of ours).
    pub(crate) fn reap(mut self) -> Option<ExitStatus> {
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        self.process.wait().ok()
    }
}

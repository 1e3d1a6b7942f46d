//! The runtime's processes, one generation after another: started (a Runtime API listener
//! of its own, then the bootstrap in the function's task root) and ended (every process it
//! started killed, its listener woken). The two never overlap: one lock orders them, so a
//! kill never meets the next generation's processes.

use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use super::Sandbox;
use crate::function::{Function, RUNTIME_API};
use crate::process::{self, Spawned, tree};

/// Serves generation `generation`'s Runtime API on `listener` (see `crate::server`).
pub type ServeApi = fn(Weak<Sandbox>, u64, TcpListener) -> io::Result<()>;

/// Why a runtime could not be started, and its listener if it was opened.
#[derive(Debug)]
pub struct LaunchFailure {
    /// One line.
    pub why: String,
    /// The listener, to wake so that its thread ends.
    pub api: Option<SocketAddr>,
}

/// Starts and ends the runtime's processes.
pub struct Launcher {
    program: OsString,
    args: Vec<OsString>,
    serve_api: ServeApi,
    /// Held while a generation is started or ended.
    busy: Mutex<()>,
}

impl Launcher {
    /// Starts `program args`, its Runtime API served by `serve_api`.
    pub fn new(program: OsString, args: Vec<OsString>, serve_api: ServeApi) -> Launcher {
        Launcher {
            program,
            args,
            serve_api,
            busy: Mutex::new(()),
        }
    }

    /// Starts generation `generation` of `function`'s runtime: opens its Runtime API
    /// (`listening` is told the address; false: the generation was stopped meanwhile),
    /// then spawns the bootstrap (`spawned` is told its pid before the reaper can reap it;
    /// a generation stopped meanwhile has a kill pending, which waits for this to end).
    pub fn launch(
        &self,
        function: &Function,
        sandbox: Weak<Sandbox>,
        generation: u64,
        listening: impl FnOnce(SocketAddr) -> bool,
        spawned: impl FnOnce(Spawned),
    ) -> Result<(), LaunchFailure> {
        let _busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let opened = TcpListener::bind("127.0.0.1:0").and_then(|l| Ok((l.local_addr()?, l)));
        let (api, listener) = match opened {
            Ok(opened) => opened,
            Err(e) => return fail(format!("cannot open a port for the Runtime API: {e}"), None),
        };
        if !listening(api) {
            return Ok(()); // stopped already; nothing serves the listener
        }
        if let Err(e) = (self.serve_api)(sandbox, generation, listener) {
            return fail(format!("cannot start the Runtime API thread: {e}"), None);
        }
        let dir = Path::new(&function.task_root);
        let program = program_path(&self.program);
        // (A bootstrap that is missing is reported as such by the spawn.)
        if !dir.is_dir() && Path::new(&program).exists() {
            return fail(
                format!(
                    "cannot start {}: its task root {} (LAMBDA_TASK_ROOT) is not a directory",
                    self.program.to_string_lossy(),
                    dir.display()
                ),
                Some(api),
            );
        }
        let mut env = function.env.clone();
        env.push((RUNTIME_API.into(), api.to_string().into()));
        match process::spawn(&program, &self.args, &env, dir, spawned) {
            Ok(()) => Ok(()),
            Err(e) => fail(self.explain(&e), Some(api)),
        }
    }

    /// The one line for a bootstrap that cannot be started.
    fn explain(&self, e: &io::Error) -> String {
        let name = self.program.to_string_lossy();
        let bare = !name.contains('/');
        if e.kind() == io::ErrorKind::NotFound && bare && Path::new(&self.program).exists() {
            return format!(
                "cannot start {name}: it is not on PATH (a name without a slash is looked up there), but it is in the current directory: write ./{name}"
            );
        }
        if e.kind() == io::ErrorKind::NotFound && bare {
            return format!("cannot start {name}: not found on PATH ({e})");
        }
        format!("cannot start {name}: {e}")
    }

    /// Ends a generation: kills every process the runtime started, in any process group,
    /// then wakes its listener `api` with a connection, whose local port is returned: once
    /// the listener has accepted it, it has accepted every connection made before.
    pub fn kill(&self, api: Option<SocketAddr>) -> Option<u16> {
        let _busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        tree::kill_all();
        api.and_then(wake)
    }
}

/// `program` as the emulator sees it: a path with a slash is made absolute (the bootstrap
/// runs in its task root, not in the emulator's directory); a bare name is looked up on
/// `PATH`.
fn program_path(program: &OsString) -> OsString {
    let path = Path::new(program);
    if path.is_absolute() || !program.to_string_lossy().contains('/') {
        return program.clone();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path).into_os_string(),
        Err(_) => program.clone(),
    }
}

fn fail(why: String, api: Option<SocketAddr>) -> Result<(), LaunchFailure> {
    Err(LaunchFailure { why, api })
}

/// Connects to a listener once, so that its thread wakes from `accept`; the local port of
/// that connection.
pub fn wake(api: SocketAddr) -> Option<u16> {
    let stream = TcpStream::connect_timeout(&api, Duration::from_millis(100)).ok()?;
    stream.local_addr().ok().map(|a| a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_bootstraps_are_made_absolute_and_bare_names_are_left_for_path() {
        assert_eq!(
            program_path(&"bootstrap".into()),
            OsString::from("bootstrap")
        );
        assert_eq!(program_path(&"/abs/b".into()), OsString::from("/abs/b"));
        let made = program_path(&"fn/bootstrap".into());
        assert!(
            Path::new(&made).is_absolute() && made.to_string_lossy().ends_with("/fn/bootstrap")
        );
    }
}

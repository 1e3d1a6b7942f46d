//! The reaper: one thread that reaps every child of the emulator, whatever its process group
//! (the emulator is their subreaper: see [`super`]), sums what they used, and reports each
//! end to the sandbox.
//!
//! It looks at a finished child with `waitid(P_ALL, WNOWAIT)` (which leaves it a zombie),
//! then reaps it with `wait4` under [`spawning`]'s lock: std's `Command::spawn` reaps a
//! child whose `exec` failed itself, and must find it there.

use std::ffi::{c_int, c_uint};
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::{Exit, Rusage, Usage};

/// What the reaper saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaped {
    /// Child `pid` ended so, and is reaped.
    Exited {
        /// Its process id.
        pid: i32,
        /// How it ended.
        exit: Exit,
    },
    /// The emulator has no child left: every process the runtime started is gone.
    NoChildren,
}

/// `siginfo_t` on 64-bit Linux, as far as `waitid` fills it for a child: the union starts
/// at offset 16 (pointer-aligned), `si_pid` first.
#[repr(C)]
struct SigInfo {
    signo: c_int,
    errno: c_int,
    code: c_int,
    _pad: c_int,
    pid: c_int,
    _rest: [u8; 108],
}

unsafe extern "C" {
    fn waitid(idtype: c_int, id: c_uint, info: *mut SigInfo, options: c_int) -> c_int;
    fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
}

const P_ALL: c_int = 0;
const WNOHANG: c_int = 1;
const WEXITED: c_int = 4;
const WNOWAIT: c_int = 0x0100_0000;
const ECHILD: i32 = 10;

struct Reaper {
    state: Mutex<State>,
    /// Signalled when a child is spawned.
    spawned: Condvar,
    /// Signalled when the emulator has no child left.
    idle: Condvar,
}

struct State {
    /// Children spawned so far.
    spawned: u64,
    /// Whether the last look found no child.
    idle: bool,
    /// What every reaped process used.
    usage: Usage,
}

static REAPER: Reaper = Reaper {
    state: Mutex::new(State {
        spawned: 0,
        idle: true,
        usage: Usage {
            cpu: Duration::ZERO,
            peak_rss_kib: 0,
            inherited_kib: 0,
        },
    }),
    spawned: Condvar::new(),
    idle: Condvar::new(),
};

/// Held while a child is spawned.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Whether the reaper thread was started.
static STARTED: OnceLock<()> = OnceLock::new();

fn state() -> MutexGuard<'static, State> {
    REAPER.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the reaper thread (once per process; later calls do nothing): `report` gets every
/// [`Reaped`] event, on the reaper's thread.
pub fn start(report: impl Fn(Reaped) + Send + 'static) -> io::Result<()> {
    let mut result = Ok(());
    STARTED.get_or_init(|| {
        result = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap_forever(&report))
            .map(drop);
    });
    result
}

/// To be held while a child is spawned (see the module docs).
pub fn spawning() -> MutexGuard<'static, ()> {
    SPAWNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells the reaper a child was spawned, while the emulator's own peak resident set was
/// `inherited_kib` (the most the child can have inherited into its `ru_maxrss`).
pub fn spawned(inherited_kib: u64) {
    let mut state = state();
    state.spawned += 1;
    state.idle = false;
    state.usage.inherited_kib = state.usage.inherited_kib.max(inherited_kib);
    REAPER.spawned.notify_all();
}

/// What every process reaped so far used (see [`super`] for the method).
pub fn usage() -> Usage {
    state().usage
}

/// Waits until the emulator has no child left, up to `limit`; whether it has none.
pub fn wait_idle(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut state = state();
    while !state.idle {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        state = REAPER
            .idle
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    true
}

fn reap_forever(report: &dyn Fn(Reaped)) -> ! {
    loop {
        let seen = state().spawned;
        let mut info = SigInfo {
            signo: 0,
            errno: 0,
            code: 0,
            _pad: 0,
            pid: 0,
            _rest: [0; 108],
        };
        // SAFETY: `info` is a live, correctly sized siginfo_t.
        let rc = unsafe { waitid(P_ALL, 0, &mut info, WEXITED | WNOWAIT) };
        if rc != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(ECHILD) {
                wait_for_a_child(seen, report);
            } else if error.kind() != io::ErrorKind::Interrupted {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        let pid = info.pid;
        let mut status = 0;
        let mut ru = Rusage::default();
        let reaped = {
            let _spawning = spawning();
            // SAFETY: both pointers are to live, correctly sized locals.
            unsafe { wait4(pid, &mut status, WNOHANG, &mut ru) }
        };
        if reaped == pid && pid > 0 {
            state().usage.add(&ru);
            report(Reaped::Exited {
                pid,
                exit: Exit::from_status(status),
            });
        }
    }
}

/// No child: says so once, then waits until one is spawned after `seen`.
fn wait_for_a_child(seen: u64, report: &dyn Fn(Reaped)) {
    let mut state = state();
    if state.spawned != seen {
        return;
    }
    let was_idle = state.idle;
    state.idle = true;
    REAPER.idle.notify_all();
    if !was_idle {
        drop(state);
        report(Reaped::NoChildren);
        state = self::state();
    }
    while state.spawned == seen {
        state = REAPER
            .spawned
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siginfo_has_the_kernels_size_and_pid_offset() {
        assert_eq!(size_of::<SigInfo>(), 128);
        assert_eq!(std::mem::offset_of!(SigInfo, pid), 16);
    }
}

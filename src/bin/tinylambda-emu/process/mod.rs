//! The bootstrap's processes: started in the function's task root and in a process group of
//! their own ([`spawn`]), reaped one and all ([`reaper`]), ended one and all ([`tree`]),
//! and measured.
//!
//! # Every process the runtime starts belongs to the emulator
//! The emulator makes itself a *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`), so every
//! process the bootstrap starts (a shell's `curl`, a web server `tinylambda-exec` starts in a
//! session of its own, a job left in the background) that outlives its parent is handed to
//! the emulator rather than to `init`. The emulator starts nothing but bootstraps, so its
//! descendants are exactly what the runtime started, whatever process group or session
//! they moved to:
//!
//! - [`reaper`] waits for *every* child (not only the bootstrap's process group), so no
//!   orphan stays a zombie;
//! - [`tree::kill_all`] ends every descendant when the emulator stops a runtime, when the
//!   runtime ends, and when the emulator exits. Only a SIGKILL of the emulator itself, which
//!   nothing can catch, leaves them behind.
//!
//! # How CPU time and memory are measured
//! - **Total CPU of a finished tree**: the reaper `wait4`s every process, and `wait4` returns
//!   each process's user and system time *including the processes it waited for itself* (the
//!   kernel's `RUSAGE_BOTH`), in microseconds, so the sum is the CPU time of the whole tree
//!   from spawn to death, to the microsecond ([`reaper::usage`]).
//! - **CPU of a live tree** ([`tree::sample`]), for the start of a measurement: for every live
//!   descendant, its own CPU clock (`clock_getcpuclockid` + `clock_gettime`: nanoseconds, all
//!   its threads, live and exited) plus the CPU of the children it has already reaped
//!   (`cutime` + `cstime` in `/proc/PID/stat`: clock ticks, 10 ms). A bootstrap that starts
//!   no processes (a compiled runtime) has no tick part, so its start reading is exact; a
//!   shell bootstrap's is short by less than one tick per live process.
//!
//! So `--bench` measures (total at the end) − (live reading at the start): with the start
//! taken while the runtime waits in its first `/next` and the end while it waits in the
//! `/next` after the last invocation, the difference is exactly N invocation cycles, at
//! microsecond resolution (0.05 µs per invocation at N = 10,000 for a compiled runtime;
//! under 10 ms / N for a shell one, e.g. 50 µs of about 20 ms at N = 200).
//! - **Peak RSS**: the largest resident-set high-water mark of any single process of the
//!   tree (not a sum), gathered in two ways, because `ru_maxrss` alone lies:
//!
//!   Linux keeps a process's `ru_maxrss` in its `signal_struct`, which survives `exec`, and
//!   at `exec` it folds in the high-water mark of the memory the process had *before* it.
//!   std's `Command` starts the bootstrap with `posix_spawn` (a `vfork`-style clone that
//!   shares the emulator's memory until the `exec`), so that memory is the emulator's own,
//!   and every bootstrap's `ru_maxrss` is at least the emulator's peak RSS (about 2 MB): a
//!   static C loop and a static musl echo, whose real `VmHWM` is a few hundred KiB, both
//!   reported some 2,300 KiB. The same happens one level down: a `curl` forked by bash
//!   starts its `ru_maxrss` from bash's resident set at the fork.
//!
//!   1. **Live processes** ([`tree::sample`], taken by `--bench` while the runtime waits in
//!      its last `/next`): `VmHWM` from `/proc/PID/status`, the high-water mark of the
//!      memory the process has *now*, which `exec` starts afresh. This is the truth for
//!      every process still running at the end.
//!   2. **Reaped processes** (the reaper's `wait4`, once the tree is killed): `ru_maxrss`
//!      is `max(inherited, own peak, peak of every child it reaped itself)`. The inherited
//!      part is bounded by the emulator's own `VmHWM` read just after the spawn (the
//!      emulator's memory at the `exec` cannot have been larger than its high-water mark
//!      after it), so a reaped figure *above* that bound is the process's own peak or its
//!      children's, and is counted; one at or below it is dropped, since it cannot be told
//!      from the inherited part. This is how processes that a shell started and reaped
//!      itself (`curl`) still count: through the shell's `ru_maxrss` when it is reaped.
//!
//!   The figure is the larger of the two. Its limits: a process that ended before the end
//!   of the measurement, whose own peak was at or below the emulator's peak at spawn time,
//!   is not seen (it could not be told from what it inherited; it was smaller than the
//!   emulator, about 2 MB); a child forked by a shell starts its own `ru_maxrss` from the
//!   shell's resident set, so a tiny child of a big shell reads as the shell (which is
//!   counted anyway).

pub mod reaper;
pub mod tree;

use std::ffi::{OsStr, OsString, c_int, c_long, c_ulong};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// `struct timeval` on 64-bit Linux.
#[repr(C)]
#[derive(Default)]
struct Timeval {
    sec: c_long,
    usec: c_long,
}

/// `struct rusage` on 64-bit Linux: two timevals, then 14 longs, `ru_maxrss` (KiB) first.
#[repr(C)]
#[derive(Default)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: c_long,
    rest: [c_long; 13],
}

unsafe extern "C" {
    fn kill(pid: c_int, signal: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn signal(signal: c_int, handler: usize) -> usize;
    fn _exit(code: c_int) -> !;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn read(fd: c_int, buf: *mut u8, len: usize) -> isize;
    fn write(fd: c_int, buf: *const u8, len: usize) -> isize;
}

const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGKILL: c_int = 9;
const SIGTERM: c_int = 15;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const O_CLOEXEC: c_int = 0o2_000_000;

/// What the processes of one bootstrap tree used, summed (CPU) or maximised (RSS).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// The largest `ru_maxrss` of a reaped process of the tree that is above what it could
    /// have inherited from the emulator (see the module docs), in KiB; 0 if none was.
    pub peak_rss_kib: u64,
    /// The emulator's own `VmHWM` just after a spawn, in KiB: the most a process of the
    /// tree can have inherited into its `ru_maxrss`.
    inherited_kib: u64,
}

impl Usage {
    fn add(&mut self, ru: &Rusage) {
        self.cpu += timeval(&ru.utime) + timeval(&ru.stime);
        let maxrss = ru.maxrss.max(0) as u64;
        if maxrss > self.inherited_kib {
            self.peak_rss_kib = self.peak_rss_kib.max(maxrss);
        }
    }
}

fn timeval(t: &Timeval) -> Duration {
    Duration::from_secs(t.sec.max(0) as u64) + Duration::from_micros(t.usec.max(0) as u64)
}

/// How a bootstrap process ended, from its `wait4` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` with this code.
    Code(i32),
    /// A signal ended it; `core` tells whether it dumped core.
    Signal {
        /// The signal's number.
        number: i32,
        /// Whether it dumped core.
        core: bool,
    },
}

impl Exit {
    fn from_status(status: c_int) -> Exit {
        let signal = status & 0x7f;
        if signal == 0 {
            Exit::Code((status >> 8) & 0xff)
        } else {
            Exit::Signal {
                number: signal,
                core: status & 0x80 != 0,
            }
        }
    }

    /// Go's wording, which is what Lambda prints: `exit status 1`, `signal: killed`.
    pub fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exit status {code}"),
            Exit::Signal { number, core } => {
                let name = match number {
                    1 => "hangup".to_owned(),
                    2 => "interrupt".to_owned(),
                    4 => "illegal instruction".to_owned(),
                    6 => "aborted".to_owned(),
                    7 => "bus error".to_owned(),
                    8 => "floating point exception".to_owned(),
                    9 => "killed".to_owned(),
                    11 => "segmentation fault".to_owned(),
                    13 => "broken pipe".to_owned(),
                    15 => "terminated".to_owned(),
                    n => format!("signal {n}"),
                };
                let core = if core { " (core dumped)" } else { "" };
                format!("signal: {name}{core}")
            }
        }
    }
}

/// A started bootstrap: its pid (also its process group id) and when it was started.
#[derive(Clone, Copy, Debug)]
pub struct Spawned {
    /// The process id, which is also the id of its process group.
    pub pid: i32,
    /// Taken just before the `spawn` call.
    pub started: Instant,
}

/// The bootstrap's process group, for the signal handler's last resort (see [`prepare`]),
/// or 0 for none.
static CURRENT_GROUP: AtomicI32 = AtomicI32::new(0);

/// The write end of the pipe that hands a stop signal to the thread of [`on_stop`], or -1.
static STOP_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Prepares the emulator process: becomes a child subreaper (see the module docs) and makes
/// SIGINT, SIGTERM and SIGHUP stop the runtime before exiting, so that nothing it started
/// outlives the emulator: through [`on_stop`]'s thread once it is set, else by killing the
/// bootstrap's process group from the signal handler (all a handler can do).
pub fn prepare() {
    // SAFETY: plain system calls with integer arguments; the handler only calls the
    // async-signal-safe `write`, `kill` and `_exit` and reads atomics.
    unsafe {
        prctl(PR_SET_CHILD_SUBREAPER, 1 as c_ulong);
        let handler = on_stop_signal as extern "C" fn(c_int) as usize;
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, handler);
        }
    }
}

extern "C" fn on_stop_signal(sig: c_int) {
    let pipe = STOP_PIPE.load(Ordering::SeqCst);
    if pipe >= 0 {
        let byte = sig as u8;
        // SAFETY: `write` is async-signal-safe; a one-byte buffer on the stack.
        if unsafe { write(pipe, &byte, 1) } == 1 {
            return;
        }
    }
    let group = CURRENT_GROUP.load(Ordering::SeqCst);
    // SAFETY: `kill` and `_exit` are async-signal-safe.
    unsafe {
        if group > 0 {
            kill(-group, SIGKILL);
        }
        _exit(128 + sig);
    }
}

/// From now on, the first SIGINT, SIGTERM or SIGHUP runs `stop` with the signal's number
/// on a thread of its own (outside the signal handler, so it may lock, wait and print);
/// `stop` is expected to end the process. A second signal kills every process the runtime
/// started and exits at once.
pub fn on_stop(stop: impl FnOnce(i32) + Send + 'static) -> io::Result<()> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors; close-on-exec keeps them from the
    // bootstrap.
    if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    std::thread::Builder::new()
        .name("stop-signal".into())
        .spawn(move || {
            let mut stop = Some(stop);
            let mut byte = 0u8;
            loop {
                // SAFETY: a one-byte buffer on the stack; the descriptor is ours.
                match unsafe { read(read_end, &mut byte, 1) } {
                    1 => {
                        let signal = i32::from(byte);
                        match stop.take() {
                            Some(stop) => {
                                let started = std::thread::Builder::new()
                                    .name("stop".into())
                                    .spawn(move || stop(signal));
                                if started.is_err() {
                                    kill_all_and_exit(signal);
                                }
                            }
                            None => kill_all_and_exit(signal),
                        }
                    }
                    0 => return,
                    _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                    _ => return,
                }
            }
        })?;
    STOP_PIPE.store(write_end, Ordering::SeqCst);
    Ok(())
}

/// A second stop signal: everything the runtime started is killed at once.
fn kill_all_and_exit(signal: i32) -> ! {
    tree::kill_all();
    std::process::exit(128 + signal)
}

/// Starts `program` with `args` and the extra environment `env` (on top of the emulator's
/// own), in the directory `dir`, in a new process group, stdin from `/dev/null`, stdout to
/// the emulator's stderr (so that `--invoke` and `--bench --json` keep stdout for their
/// result) and stderr shared. `record` is given it before the reaper can reap it; the
/// reaper is then told a child exists.
pub fn spawn(
    program: &OsStr,
    args: &[OsString],
    env: &[(OsString, OsString)],
    dir: &Path,
    record: impl FnOnce(Spawned),
) -> io::Result<()> {
    let stdout = io::stderr().as_fd().try_clone_to_owned()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit());
    let started = Instant::now();
    {
        // std reaps a child whose exec failed itself: the reaper must not take it first;
        // and it must not take this one before its pid is recorded.
        let _spawning = reaper::spawning();
        let child = command.spawn()?;
        // The Child handle is dropped without waiting: the reaper reaps it.
        let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
        CURRENT_GROUP.store(pid, Ordering::SeqCst);
        record(Spawned { pid, started });
    }
    // Read after the spawn: the emulator's memory at the bootstrap's exec was at most this.
    reaper::spawned(tree::peak_rss_kib_of("self").unwrap_or(0));
    Ok(())
}

/// Sends SIGTERM to the process `pid` alone (the runtime, at a graceful shutdown).
pub fn terminate(pid: i32) {
    if pid > 0 {
        // SAFETY: a plain system call.
        unsafe { kill(pid, SIGTERM) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaped_peaks_count_only_above_what_could_be_inherited() {
        let mut usage = Usage {
            inherited_kib: 2_300,
            ..Usage::default()
        };
        let rusage = |maxrss| Rusage {
            maxrss,
            ..Rusage::default()
        };
        usage.add(&rusage(2_296)); // a small static bootstrap: all of it inherited
        assert_eq!(usage.peak_rss_kib, 0);
        usage.add(&rusage(9_000)); // a shell that reaped a curl of 9 MB
        usage.add(&rusage(2_301));
        assert_eq!(usage.peak_rss_kib, 9_000);
    }

    #[test]
    fn exits_are_worded_like_go() {
        assert_eq!(Exit::from_status(3 << 8).describe(), "exit status 3");
        assert_eq!(Exit::from_status(9).describe(), "signal: killed");
        assert_eq!(
            Exit::from_status(6 | 0x80).describe(),
            "signal: aborted (core dumped)"
        );
    }
}

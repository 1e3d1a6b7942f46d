//! The bootstrap process: started in a process group of its own, killed as a whole group,
//! reaped, and measured.
//!
//! # How CPU time and memory are measured
//! The emulator makes itself a *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`), so every
//! process the bootstrap starts (a shell's `curl`, `grep`, `mktemp`…) that outlives its
//! parent is handed to the emulator rather than to `init`. The bootstrap gets a process group
//! of its own; killing the group kills the whole tree.
//!
//! - **Total CPU of a finished tree**: a watcher thread `wait4`s the bootstrap, then every
//!   remaining process of its group, until none is left. `wait4` returns each process's user
//!   and system time *including the processes it waited for itself* (the kernel's
//!   `RUSAGE_BOTH`), in microseconds, so the sum is the CPU time of the whole tree from
//!   spawn to death, to the microsecond.
//! - **CPU of a live tree** ([`tree_sample`]), for the start of a measurement: for every live
//!   process of the group (found in `/proc/*/stat` by process group), its own CPU clock
//!   (`clock_getcpuclockid` + `clock_gettime`: nanoseconds, all its threads, live and
//!   exited) plus the CPU of the children it has already reaped (`cutime` + `cstime` in
//!   `/proc/PID/stat`: clock ticks, 10 ms). A bootstrap that starts no processes (a compiled
//!   runtime) has no tick part, so its start reading is exact; a shell bootstrap's is short
//!   by less than one tick per live process.
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
//!   1. **Live processes** ([`tree_sample`], taken by `--bench` while the runtime waits in
//!      its last `/next`): `VmHWM` from `/proc/PID/status`, the high-water mark of the
//!      memory the process has *now*, which `exec` starts afresh. This is the truth for
//!      every process still running at the end.
//!   2. **Reaped processes** (the watcher's `wait4`, once the tree is killed): `ru_maxrss`
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
//!   counted anyway); processes that left the bootstrap's process group are not seen at
//!   all.

use std::ffi::{OsStr, OsString, c_int, c_long, c_ulong};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
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

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
#[derive(Default)]
struct Timespec {
    sec: c_long,
    nsec: c_long,
}

unsafe extern "C" {
    fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
    fn kill(pid: c_int, signal: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn clock_getcpuclockid(pid: c_int, clock: *mut c_int) -> c_int;
    fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
    fn sysconf(name: c_int) -> c_long;
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
const SC_CLK_TCK: c_int = 2;
const ECHILD: i32 = 10;

/// What the processes of one bootstrap tree used, summed (CPU) or maximised (RSS).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// The largest `ru_maxrss` of a reaped process of the tree that is above what it could
    /// have inherited from the emulator (see the module docs), in KiB; 0 if none was.
    pub peak_rss_kib: u64,
    /// The emulator's own `VmHWM` just after the spawn, in KiB: the most a process of the
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
    Signal { number: i32, core: bool },
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
    /// The emulator's own `VmHWM` just after the spawn, in KiB (0 if `/proc` cannot be
    /// read): the bound on what the bootstrap inherited into its `ru_maxrss`.
    pub inherited_kib: u64,
}

/// The process group to kill if the emulator itself is told to stop (SIGINT, SIGTERM,
/// SIGHUP): the current bootstrap's, or 0 for none.
static CURRENT_GROUP: AtomicI32 = AtomicI32::new(0);

/// The write end of the pipe that hands a stop signal to the thread of [`on_stop`], or -1.
static STOP_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Set by the first stop signal: a second one does not wait for the graceful stop.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Prepares the emulator process: becomes a child subreaper (see the module docs) and makes
/// SIGINT, SIGTERM and SIGHUP stop the current bootstrap before exiting, so that no
/// bootstrap outlives the emulator: through [`on_stop`]'s callback once it is set (a
/// graceful stop), else (and on a second signal) by killing its process group at once.
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
    if pipe >= 0 && !STOPPING.swap(true, Ordering::SeqCst) {
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
/// `stop` is expected to end the process. A second signal kills the bootstrap's group and
/// exits at once.
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
            let mut byte = 0u8;
            loop {
                // SAFETY: a one-byte buffer on the stack; the descriptor is ours.
                match unsafe { read(read_end, &mut byte, 1) } {
                    1 => return stop(i32::from(byte)),
                    0 => return,
                    _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                    _ => return,
                }
            }
        })?;
    STOP_PIPE.store(write_end, Ordering::SeqCst);
    Ok(())
}

/// Starts `program` with `args` and the extra environment `env` (on top of the emulator's
/// own), in a new process group, stdin from `/dev/null`, stdout to the emulator's stderr
/// (so that `--invoke` and `--bench --json` keep stdout for their result) and stderr shared.
pub fn spawn(
    program: &OsStr,
    args: &[OsString],
    env: &[(OsString, OsString)],
) -> io::Result<Spawned> {
    let stdout = io::stderr().as_fd().try_clone_to_owned()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let child = command.spawn()?;
    // The Child handle is dropped without waiting: the watcher thread reaps with wait4.
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    CURRENT_GROUP.store(pid, Ordering::SeqCst);
    // Read after the spawn: the emulator's memory at the bootstrap's exec was at most this.
    let inherited_kib = peak_rss_kib_of("self").unwrap_or(0);
    Ok(Spawned {
        pid,
        started,
        inherited_kib,
    })
}

/// Kills every process of the group `pgid` with SIGKILL (nothing happens if none is left).
pub fn kill_group(pgid: i32) {
    if pgid <= 0 {
        return;
    }
    let _ = CURRENT_GROUP.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    // SAFETY: a plain system call; a negative pid names a process group.
    unsafe { kill(-pgid, SIGKILL) };
}

/// Sends SIGTERM to the process `pid` alone (the runtime, at a graceful shutdown).
pub fn terminate(pid: i32) {
    if pid > 0 {
        // SAFETY: a plain system call.
        unsafe { kill(pid, SIGTERM) };
    }
}

/// Whether any process of the group `pgid` is left (a zombie not reaped yet counts).
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    pgid > 0 && unsafe { kill(-pgid, 0) } == 0
}

/// Kills the current bootstrap's process group, if there is one (before the emulator exits).
pub fn kill_current() {
    kill_group(CURRENT_GROUP.load(Ordering::SeqCst));
}

/// Starts the thread that reaps the bootstrap `spawned`: it calls `on_exit` as soon as the
/// bootstrap itself has ended, then reaps every other process of its group until none is
/// left, and returns what the whole tree used.
pub fn watch(
    spawned: Spawned,
    on_exit: impl FnOnce(Exit) + Send + 'static,
) -> io::Result<JoinHandle<Usage>> {
    let pid = spawned.pid;
    std::thread::Builder::new()
        .name(format!("watch-{pid}"))
        .spawn(move || {
            let mut usage = Usage {
                inherited_kib: spawned.inherited_kib,
                ..Usage::default()
            };
            match reap(pid, &mut usage) {
                Some(status) => on_exit(Exit::from_status(status)),
                None => on_exit(Exit::Code(-1)),
            }
            // The rest of the group: children the bootstrap left behind, handed to us
            // because we are their subreaper.
            while reap(-pid, &mut usage).is_some() {}
            usage
        })
}

/// `wait4(pid)` until it reaps something (retrying on EINTR); None once there is nothing
/// left to wait for.
fn reap(pid: c_int, usage: &mut Usage) -> Option<c_int> {
    loop {
        let mut status = 0;
        let mut ru = Rusage::default();
        // SAFETY: both pointers are to live, correctly sized locals.
        let rc = unsafe { wait4(pid, &mut status, 0, &mut ru) };
        if rc > 0 {
            usage.add(&ru);
            return Some(status);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted || error.raw_os_error() == Some(ECHILD) {
            return None;
        }
    }
}

/// A reading of the live processes of one process group.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeSample {
    /// The CPU time used so far by the live processes of the group and by the children
    /// they have reaped (see the module docs for the resolution).
    pub cpu: Duration,
    /// The largest `VmHWM` of a live process of the group, in KiB (0 if none could be read).
    pub peak_rss_kib: u64,
}

/// Reads the CPU time and peak resident sets of the live processes of group `pgid` from
/// `/proc` (see the module docs).
pub fn tree_sample(pgid: i32) -> io::Result<TreeSample> {
    // SAFETY: sysconf with a valid name has no other effect.
    let ticks_per_sec = unsafe { sysconf(SC_CLK_TCK) }.max(1) as u64;
    let mut sample = TreeSample::default();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may end between the listing and this read: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(fields) = StatFields::parse(&stat) else {
            continue;
        };
        if fields.pgrp != pgid {
            continue;
        }
        let own =
            process_cpu(pid).unwrap_or_else(|| ticks(fields.utime + fields.stime, ticks_per_sec));
        sample.cpu += own + ticks(fields.cutime + fields.cstime, ticks_per_sec);
        // A zombie has no memory and no VmHWM line: it is counted when it is reaped.
        if let Some(kib) = peak_rss_kib(pid) {
            sample.peak_rss_kib = sample.peak_rss_kib.max(kib);
        }
    }
    Ok(sample)
}

fn ticks(n: u64, per_sec: u64) -> Duration {
    Duration::from_nanos(n.saturating_mul(1_000_000_000) / per_sec)
}

/// The CPU clock of process `pid` (all its threads), in nanoseconds.
fn process_cpu(pid: i32) -> Option<Duration> {
    let mut clock = 0;
    let mut time = Timespec::default();
    // SAFETY: pointers to live locals; the clock id comes from the kernel.
    let ok = unsafe {
        clock_getcpuclockid(pid, &mut clock) == 0 && clock_gettime(clock, &mut time) == 0
    };
    ok.then(|| {
        Duration::new(
            time.sec.max(0) as u64,
            time.nsec.clamp(0, 999_999_999) as u32,
        )
    })
}

/// The fields of `/proc/PID/stat` that [`tree_sample`] reads.
struct StatFields {
    pgrp: i32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl StatFields {
    /// Parses the line; the command name (field 2) may hold spaces and parentheses, so
    /// fields are counted from the last `)`.
    fn parse(stat: &str) -> Option<StatFields> {
        let rest = &stat[stat.rfind(')')? + 1..];
        // rest: " state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        //        utime stime cutime cstime ..." (fields 3 onwards).
        let fields: Vec<&str> = rest.split_ascii_whitespace().take(15).collect();
        let number = |i: usize| fields.get(i).and_then(|s| s.parse::<u64>().ok());
        Some(StatFields {
            pgrp: fields.get(2)?.parse().ok()?,
            utime: number(11)?,
            stime: number(12)?,
            cutime: number(13)?,
            cstime: number(14)?,
        })
    }
}

/// The peak resident set (`VmHWM`) of process `pid` in KiB, if it is still alive (and not
/// a zombie).
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    peak_rss_kib_of(&pid.to_string())
}

/// `VmHWM` of `/proc/{which}/status` in KiB (`which`: a pid, or `self`).
fn peak_rss_kib_of(which: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{which}/status")).ok()?;
    vm_hwm_kib(&status)
}

/// The `VmHWM:` value of a `/proc/PID/status` text, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194304 100 0 0 0 7 3 40 2 20 0 1 0";
        let f = StatFields::parse(line).expect("parses");
        assert_eq!(
            (f.pgrp, f.utime, f.stime, f.cutime, f.cstime),
            (1234, 7, 3, 40, 2)
        );
    }

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
    fn vm_hwm_is_read_from_proc_status() {
        let status = "Name:\techo\nVmPeak:\t    9000 kB\nVmHWM:\t     412 kB\nVmRSS:\t 400 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(412));
        assert_eq!(vm_hwm_kib("Name:\tzombie\nState:\tZ (zombie)\n"), None);
        assert!(peak_rss_kib_of("self").is_some_and(|kib| kib > 0));
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

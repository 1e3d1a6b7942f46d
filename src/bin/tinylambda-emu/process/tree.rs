//! The emulator's descendants, as `/proc` lists them: every process the runtime started,
//! whatever process group or session it moved to (see [`super`]). Ended all at once
//! ([`kill_all`]) and measured while they run ([`sample`]).

use std::ffi::{c_int, c_long};
use std::io;
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn kill(pid: c_int, signal: c_int) -> c_int;
    fn clock_getcpuclockid(pid: c_int, clock: *mut c_int) -> c_int;
    fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
    fn sysconf(name: c_int) -> c_long;
}

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
#[derive(Default)]
struct Timespec {
    sec: c_long,
    nsec: c_long,
}

const SIGKILL: c_int = 9;
const SC_CLK_TCK: c_int = 2;

/// How long [`kill_all`] keeps looking for processes that were being forked as it killed.
const KILL_LIMIT: Duration = Duration::from_secs(2);

/// A live descendant.
struct Descendant {
    pid: i32,
    stat: StatFields,
}

/// Every live (not zombie) descendant of the emulator.
fn descendants() -> io::Result<Vec<Descendant>> {
    let me = std::process::id() as i32;
    let mut all = Vec::new();
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
        if let Some(stat) = StatFields::parse(&stat) {
            all.push(Descendant { pid, stat });
        }
    }
    // Walk down from the emulator: parents before children is not guaranteed by the
    // listing, so repeat until nothing more joins.
    let mut family = vec![me];
    let mut grew = true;
    while grew {
        grew = false;
        for d in &all {
            if !family.contains(&d.pid) && family.contains(&d.stat.ppid) {
                family.push(d.pid);
                grew = true;
            }
        }
    }
    Ok(all
        .into_iter()
        .filter(|d| d.pid != me && family.contains(&d.pid) && d.stat.is_live())
        .collect())
}

/// Kills (SIGKILL) every process the runtime started, in any process group, and keeps
/// looking until none runs (a process forking as it is killed leaves a child to the next
/// look), for up to 2 s. Whether none runs. Zombies are left to the reaper.
pub fn kill_all() -> bool {
    let deadline = Instant::now() + KILL_LIMIT;
    loop {
        let live = descendants().unwrap_or_default();
        if live.is_empty() {
            return true;
        }
        for d in &live {
            // SAFETY: a plain system call.
            unsafe { kill(d.pid, SIGKILL) };
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A reading of the live descendants.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeSample {
    /// The CPU time used so far by the live descendants and by the children they have
    /// reaped (see [`super`] for the resolution).
    pub cpu: Duration,
    /// The largest `VmHWM` of a live descendant, in KiB (0 if none could be read).
    pub peak_rss_kib: u64,
}

/// Reads the CPU time and peak resident sets of every live descendant from `/proc` (see
/// [`super`]).
pub fn sample() -> io::Result<TreeSample> {
    // SAFETY: sysconf with a valid name has no other effect.
    let ticks_per_sec = unsafe { sysconf(SC_CLK_TCK) }.max(1) as u64;
    let mut sample = TreeSample::default();
    for d in descendants()? {
        let f = &d.stat;
        let own = process_cpu(d.pid).unwrap_or_else(|| ticks(f.utime + f.stime, ticks_per_sec));
        sample.cpu += own + ticks(f.cutime + f.cstime, ticks_per_sec);
        if let Some(kib) = peak_rss_kib(d.pid) {
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

/// The fields of `/proc/PID/stat` the emulator reads.
struct StatFields {
    state: char,
    ppid: i32,
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
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            utime: number(11)?,
            stime: number(12)?,
            cutime: number(13)?,
            cstime: number(14)?,
        })
    }

    /// Not a zombie (`Z`) nor dead (`X`).
    fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The peak resident set (`VmHWM`) of process `pid` in KiB, if it is still alive (and not
/// a zombie).
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    peak_rss_kib_of(&pid.to_string())
}

/// `VmHWM` of `/proc/{which}/status` in KiB (`which`: a pid, or `self`).
pub fn peak_rss_kib_of(which: &str) -> Option<u64> {
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
            (f.state, f.ppid, f.utime, f.stime, f.cutime, f.cstime),
            ('S', 1, 7, 3, 40, 2)
        );
        assert!(f.is_live());
        let zombie = StatFields::parse("9 (sh) Z 8 9 9 0 -1 0 0 0 0 0 0 0 0 0").expect("parses");
        assert!(!zombie.is_live());
    }

    #[test]
    fn vm_hwm_is_read_from_proc_status() {
        let status = "Name:\techo\nVmPeak:\t    9000 kB\nVmHWM:\t     412 kB\nVmRSS:\t 400 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(412));
        assert_eq!(vm_hwm_kib("Name:\tzombie\nState:\tZ (zombie)\n"), None);
        assert!(peak_rss_kib_of("self").is_some_and(|kib| kib > 0));
    }
}

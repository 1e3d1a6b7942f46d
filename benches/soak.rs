//! Soak: a million invocations of one warm runtime, watching for what a long-lived Lambda
//! environment would suffer from: memory that grows, file descriptors that leak, latency
//! that drifts.
//!
//! `cargo bench --bench soak` builds the echo example (`tiny` static musl, as deployed;
//! `SOAK_BUILD=release` for the glibc `release` build, `SOAK_BUILD=nostd` for the echo
//! without std), starts it under
//! `tinylambda-emu` in its serve mode (`--port 0`), and drives the emulator's invoke endpoint
//! (`POST /2015-03-31/functions/function/invocations`) over one keep-alive connection from
//! 127.0.0.1, one invocation after another, checking every response byte for byte against
//! its event. The bootstrap is the emulator's child process, found in `/proc`; its memory
//! (`VmRSS`, and the peak `VmHWM`, from `/proc/PID/status`) and its open file descriptors
//! (`/proc/PID/fd`) are read after 10,000 invocations, at the end of every window of a tenth
//! of the run, and at the end. Latency is from the request written to the response read, so
//! it includes the emulator's two hops.
//!
//! The run fails (exit status 1) if an invocation fails, if the bootstrap was restarted, or
//! if its resident set grew by 64 KiB or more from invocation 10,000 to the last one. The
//! report is printed as markdown and written to `benches/SOAK.md` with the machine and the
//! date.
//!
//! Environment (defaults in brackets): `SOAK_N` [1000000] invocations, `SOAK_PAYLOAD` [64]
//! event bytes (at least 32), `SOAK_BUILD` [tiny-musl] which echo (`tiny-musl`, `release`,
//! `nostd`). The default run takes a few minutes; `SOAK_N=20000` is a quick
//! check.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{env_number, first_line, machine, thousands, today};

const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");
/// Where the first memory reading is taken (or at the end of a shorter run).
const BASELINE: u64 = 10_000;
/// The most the resident set may grow from the baseline to the end.
const GROWTH_LIMIT_KIB: u64 = 64;
/// The longest any one invocation (or the start) may take before the run is abandoned.
const STEP_LIMIT: Duration = Duration::from_secs(30);
const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`, as test runners ask
    }
    let n = env_number("SOAK_N", 1_000_000);
    let payload = env_number("SOAK_PAYLOAD", 64).max(32) as usize;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match soak(root, n, payload) {
        Ok((report, passed)) => {
            println!("{report}");
            let path = root.join("benches/SOAK.md");
            match std::fs::write(&path, &report) {
                Ok(()) => eprintln!("soak: wrote {}", path.display()),
                Err(e) => eprintln!("soak: cannot write {}: {e}", path.display()),
            }
            if !passed {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    }
}

/// What `/proc` says about the bootstrap at one point of the run.
#[derive(Clone, Copy, Debug)]
struct Reading {
    /// Invocations completed when it was taken.
    at: u64,
    rss_kib: u64,
    hwm_kib: u64,
    fds: usize,
}

/// Latency of one window of invocations, and the reading at its end.
struct Window {
    first: u64,
    last: u64,
    p50_ns: u32,
    p99_ns: u32,
    p999_ns: u32,
    max_ns: u32,
    end: Reading,
}

/// Runs the soak; returns the report and whether every requirement held.
fn soak(root: &Path, n: u64, payload: usize) -> Result<(String, bool), String> {
    let build = Build::from_env()?;
    let echo = build_echo(root, build)?;
    eprintln!("soak: {n} invocations of {payload}-byte events through tinylambda-emu");
    let emu = Emulator::start(&echo)?;
    let bootstrap = emu.bootstrap()?;
    let started = bootstrap_start_time(bootstrap)?;

    let mut conn = TcpStream::connect(emu.address.as_str())
        .map_err(|e| format!("cannot connect to the emulator at {}: {e}", emu.address))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(STEP_LIMIT))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(STEP_LIMIT))
        .map_err(|e| e.to_string())?;

    let mut request = format!(
        "POST {INVOKE_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {payload}\r\n\r\n",
        emu.address
    )
    .into_bytes();
    let event_at = request.len();
    request.extend_from_slice(&event(0, payload));
    // Where the invocation number sits in the event: `{"n":"0000000000",…`.
    let number_at = event_at + 6;

    let window = (n / 10).max(1);
    let baseline_at = BASELINE.min(n);
    let mut first = None;
    let mut baseline = None;
    let mut windows = Vec::new();
    let mut latencies: Vec<u32> = Vec::with_capacity(window as usize);
    let mut reader = Reader::default();
    let run_start = Instant::now();
    for i in 1..=n {
        write_number(&mut request[number_at..number_at + 10], i);
        let sent = Instant::now();
        conn.write_all(&request)
            .map_err(|e| format!("invocation {i}: cannot send: {e}"))?;
        let body = reader
            .response(&mut conn)
            .map_err(|e| format!("invocation {i}: {e}"))?;
        let took = sent.elapsed();
        if body != &request[event_at..] {
            return Err(format!(
                "invocation {i}: the response is not the event: {:?}",
                String::from_utf8_lossy(body)
            ));
        }
        latencies.push(u32::try_from(took.as_nanos()).unwrap_or(u32::MAX));

        if i == 1 {
            first = Some(read_proc(bootstrap, i)?);
        }
        if i == baseline_at {
            baseline = Some(read_proc(bootstrap, i)?);
        }
        if i % window == 0 || i == n {
            let end = read_proc(bootstrap, i)?;
            latencies.sort_unstable();
            windows.push(Window {
                first: i + 1 - latencies.len() as u64,
                last: i,
                p50_ns: percentile(&latencies, 50.0),
                p99_ns: percentile(&latencies, 99.0),
                p999_ns: percentile(&latencies, 99.9),
                max_ns: latencies.last().copied().unwrap_or(0),
                end,
            });
            latencies.clear();
            eprintln!(
                "soak: {i}/{n}, VmRSS {} KiB, {:.0} s",
                end.rss_kib,
                run_start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = run_start.elapsed();
    let end = read_proc(bootstrap, n)?;
    let fd_targets = fd_targets(bootstrap);
    let same_process = bootstrap_start_time(bootstrap).ok() == Some(started);
    drop(conn);
    let log = emu.stop();

    let first = first.ok_or("no first reading")?;
    let baseline = baseline.ok_or("no baseline reading")?;
    let growth = end.rss_kib as i64 - baseline.rss_kib as i64;
    let passed = same_process && growth < GROWTH_LIMIT_KIB as i64 && log.unexpected.is_empty();
    let report = report(&Summary {
        build,
        n,
        payload,
        elapsed,
        first,
        baseline,
        end,
        growth,
        fd_targets,
        same_process,
        windows,
        log,
    });
    Ok((report, passed))
}

// ---------------------------------------------------------------------------------------
// The bootstrap and the emulator

/// Which echo bootstrap is soaked (`SOAK_BUILD`).
#[derive(Clone, Copy)]
enum Build {
    /// The echo example, `tiny` static musl: the deployment the README recommends.
    TinyMusl,
    /// The echo example, `release` (glibc, dynamic).
    Release,
    /// The echo without std (`examples/nostd`), `tiny` static musl.
    NoStd,
}

impl Build {
    fn from_env() -> Result<Build, String> {
        match std::env::var("SOAK_BUILD").as_deref() {
            Err(_) | Ok("tiny-musl") => Ok(Build::TinyMusl),
            Ok("release") => Ok(Build::Release),
            Ok("nostd") => Ok(Build::NoStd),
            Ok(other) => Err(format!(
                "SOAK_BUILD={other}: use tiny-musl (the default), release or nostd"
            )),
        }
    }

    /// How the report names it.
    fn describe(self) -> &'static str {
        match self {
            Build::TinyMusl => "The echo example (`tiny` static musl)",
            Build::Release => "The echo example (`release`, glibc)",
            Build::NoStd => "The echo without std (`examples/nostd`, `tiny` static musl)",
        }
    }
}

/// Builds the echo bootstrap under `target/soak`; returns its path.
fn build_echo(root: &Path, build: Build) -> Result<PathBuf, String> {
    const MUSL: &str = "x86_64-unknown-linux-musl";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = root.join("target/soak");
    let manifest = root.join("examples/nostd/Cargo.toml");
    let (args, path): (Vec<&str>, PathBuf) = match build {
        Build::TinyMusl => (
            vec!["--profile", "tiny", "--target", MUSL, "--example", "echo"],
            target.join(MUSL).join("tiny/examples/echo"),
        ),
        Build::Release => (
            vec!["--release", "--example", "echo"],
            target.join("release/examples/echo"),
        ),
        Build::NoStd => (
            vec![
                "--profile",
                "tiny",
                "--target",
                MUSL,
                "--manifest-path",
                manifest.to_str().unwrap_or_default(),
            ],
            target.join(MUSL).join("tiny/echo"),
        ),
    };
    eprintln!("soak: building: {}", build.describe());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet"])
        .args(&args)
        .arg("--target-dir")
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the echo failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(path)
}

/// What the emulator printed besides its `START`/`END`/`REPORT` lines.
#[derive(Default)]
struct Log {
    reports: u64,
    /// Other lines (restarts, errors, the runtime's own output), the first few.
    unexpected: Vec<String>,
}

/// `tinylambda-emu` serving the echo bootstrap; stopped when dropped.
struct Emulator {
    child: Child,
    address: String,
    log: Arc<Mutex<Log>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Emulator {
    fn start(bootstrap: &Path) -> Result<Emulator, String> {
        let mut child = Command::new(EMU)
            .args(["--port", "0", "--timeout", "10", "--"])
            .arg(bootstrap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {EMU}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let log = Arc::new(Mutex::new(Log::default()));
        let (tx, rx) = mpsc::channel();
        let drain = {
            let log = log.clone();
            std::thread::spawn(move || drain(stderr, &tx, &log))
        };
        let mut emu = Emulator {
            child,
            address: String::new(),
            log,
            drain: Some(drain),
        };
        emu.address = rx
            .recv_timeout(STEP_LIMIT)
            .map_err(|_| "the emulator did not start listening")?;
        Ok(emu)
    }

    /// The bootstrap's pid: the emulator's child process.
    fn bootstrap(&self) -> Result<u32, String> {
        let deadline = Instant::now() + STEP_LIMIT;
        while Instant::now() < deadline {
            if let Some(pid) = child_of(self.child.id()) {
                return Ok(pid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("the emulator started no bootstrap process".into())
    }

    /// Stops the emulator (SIGTERM, then SIGKILL after 5 s) and returns its log.
    fn stop(mut self) -> Log {
        self.terminate();
        // The drain ends when the last writer of the pipe (the emulator, or a bootstrap it
        // failed to kill) is gone; it is not waited for longer than that takes normally.
        if let Some(drain) = self.drain.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !drain.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if drain.is_finished() {
                let _ = drain.join();
            }
        }
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn terminate(&mut self) {
        unsafe extern "C" {
            fn kill(pid: i32, signal: i32) -> i32;
        }
        const SIGTERM: i32 = 15;
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: a plain system call on the pid of our own child, not yet reaped.
            unsafe { kill(pid, SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Reads the emulator's stderr to its end: sends the invoke address once it is announced,
/// counts `REPORT` lines and keeps the first few unexpected ones.
fn drain(stderr: impl Read, address: &mpsc::Sender<String>, log: &Mutex<Log>) {
    let mut reader = BufReader::with_capacity(1 << 16, stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if text.starts_with("REPORT ") {
            log.reports += 1;
        } else if text.starts_with("START ") || text.starts_with("END ") {
        } else if let Some(rest) = text.split_once("listening on http://") {
            let authority = rest.1.split('/').next().unwrap_or_default();
            let _ = address.send(authority.to_owned());
        } else if log.unexpected.len() < 20 {
            log.unexpected.push(text.to_owned());
        }
    }
}

/// The first process whose parent is `parent`, from `/proc/*/stat`.
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat_field(&stat, 4)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
}

/// Field `n` (1-based, as in proc(5)) of a `/proc/PID/stat` line; the command name, which
/// may hold spaces and parentheses, is skipped by looking for the last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    after_name.split_whitespace().nth(n.checked_sub(3)?)
}

/// The bootstrap's start time (field 22 of its stat), to tell a restarted process from the
/// one that was measured.
fn bootstrap_start_time(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("the bootstrap (pid {pid}) is gone: {e}"))?;
    stat_field(&stat, 22)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("unreadable /proc/{pid}/stat"))
}

/// `VmRSS`, `VmHWM` and the number of open file descriptors of `pid`.
fn read_proc(pid: u32, at: u64) -> Result<Reading, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("after {at} invocations the bootstrap (pid {pid}) is gone: {e}"))?;
    let kib = |name: &str| {
        status.lines().find_map(|l| {
            l.strip_prefix(name)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("cannot list /proc/{pid}/fd: {e}"))?
        .count();
    Ok(Reading {
        at,
        rss_kib: kib("VmRSS:").ok_or("no VmRSS")?,
        hwm_kib: kib("VmHWM:").ok_or("no VmHWM")?,
        fds,
    })
}

/// What each open descriptor of `pid` is, e.g. `3: socket`; those this process has open too
/// (the same pipe or file under the same number: passed down to the emulator and on to the
/// bootstrap) are marked.
fn fd_targets(pid: u32) -> Vec<String> {
    let ours = open_fds(std::process::id());
    open_fds(pid)
        .into_iter()
        .map(|(fd, target)| {
            // `socket:[1234]` and `pipe:[5678]`: the inode says nothing to a reader.
            let kind = target.split(":[").next().unwrap_or_default();
            if kind != "socket" && ours.contains(&(fd, target.clone())) {
                format!("{fd}: {kind} (also open in the bench)")
            } else {
                format!("{fd}: {kind}")
            }
        })
        .collect()
}

/// The open descriptors of `pid` and what they point to, in order.
fn open_fds(pid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<(u32, String)> = dir
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds
}

// ---------------------------------------------------------------------------------------
// The caller side

/// A JSON event of exactly `len` bytes (at least 32) carrying the invocation number.
fn event(number: u64, len: usize) -> Vec<u8> {
    let mut event = b"{\"n\":\"0000000000\",\"pad\":\"".to_vec();
    write_number(&mut event[6..16], number);
    event.resize(len - 2, b'x');
    event.extend_from_slice(b"\"}");
    event
}

/// Writes `number` into `digits` as fixed-width decimal.
fn write_number(digits: &mut [u8], mut number: u64) {
    for d in digits.iter_mut().rev() {
        *d = b'0' + (number % 10) as u8;
        number /= 10;
    }
}

/// Reads responses from one keep-alive connection into a reused buffer.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
    /// Bytes of `buf` that belong to the previous response.
    used: usize,
}

impl Reader {
    /// Reads one response (`Content-Length` framed, as the emulator sends them) and returns
    /// its body; a status other than 200 or a function error is an error.
    fn response(&mut self, conn: &mut TcpStream) -> Result<&[u8], String> {
        self.buf.drain(..self.used);
        self.used = 0;
        let head_end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill(conn)?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        if !head.starts_with("HTTP/1.1 200 ") {
            return Err(format!("unexpected response: {head:?}"));
        }
        let mut length = None;
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("x-amz-function-error") {
                return Err(format!("the function failed: {head:?}"));
            }
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.ok_or_else(|| format!("no Content-Length in {head:?}"))?;
        while self.buf.len() < head_end + length {
            self.fill(conn)?;
        }
        self.used = head_end + length;
        Ok(&self.buf[head_end..self.used])
    }

    fn fill(&mut self, conn: &mut TcpStream) -> Result<(), String> {
        let mut chunk = [0; 16 * 1024];
        match conn.read(&mut chunk) {
            Ok(0) => Err("the emulator closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!("reading the response: {e}")),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// The report

struct Summary {
    build: Build,
    n: u64,
    payload: usize,
    elapsed: Duration,
    first: Reading,
    baseline: Reading,
    end: Reading,
    growth: i64,
    fd_targets: Vec<String>,
    same_process: bool,
    windows: Vec<Window>,
    log: Log,
}

fn report(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Soak: {} invocations of one warm runtime\n",
        thousands(s.n)
    );
    let _ = writeln!(
        out,
        "Generated by `cargo bench --bench soak` on {} (UTC). Machine: {}; {}.\n",
        today(),
        machine(),
        first_line("rustc", "-V")
    );
    let _ = writeln!(
        out,
        "{} under `tinylambda-emu` (serve mode), invoked {} times with {}-byte JSON events, one after another over one keep-alive connection to the \
         invoke endpoint on 127.0.0.1; every response compared byte for byte with its event. \
         {} in {:.0} s ({} invocations/s). Memory and descriptors are the bootstrap's, from \
         `/proc/PID/status` and `/proc/PID/fd`.\n",
        s.build.describe(),
        thousands(s.n),
        s.payload,
        if s.same_process {
            "One bootstrap process served them all"
        } else {
            "**The bootstrap process was replaced during the run**"
        },
        s.elapsed.as_secs_f64(),
        thousands((s.n as f64 / s.elapsed.as_secs_f64().max(1e-9)) as u64),
    );
    let _ = writeln!(
        out,
        "| bootstrap | after 1 | after {} | after {} | change from {} |",
        thousands(s.baseline.at),
        thousands(s.end.at),
        thousands(s.baseline.at)
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let row = |out: &mut String, name: &str, value: fn(&Reading) -> u64, unit: &str| {
        let (a, b, c) = (value(&s.first), value(&s.baseline), value(&s.end));
        let _ = writeln!(
            out,
            "| {name} | {}{unit} | {}{unit} | {}{unit} | {:+}{unit} |",
            thousands(a),
            thousands(b),
            thousands(c),
            c as i64 - b as i64
        );
    };
    row(&mut out, "resident set (`VmRSS`)", |r| r.rss_kib, " KiB");
    row(
        &mut out,
        "peak resident set (`VmHWM`)",
        |r| r.hwm_kib,
        " KiB",
    );
    row(&mut out, "open file descriptors", |r| r.fds as u64, "");
    let verdict = if s.growth < GROWTH_LIMIT_KIB as i64 {
        "within"
    } else {
        "**over**"
    };
    let _ = writeln!(
        out,
        "\nResident set growth from invocation {} to {}: {:+} KiB, {verdict} the {} KiB limit. \
         Descriptors open at the end: {}.\n",
        thousands(s.baseline.at),
        thousands(s.end.at),
        s.growth,
        GROWTH_LIMIT_KIB,
        s.fd_targets.join(", ")
    );
    let _ = writeln!(
        out,
        "Latency over time (request written to response read, through the emulator):\n"
    );
    let _ = writeln!(
        out,
        "| invocations | p50 | p99 | p99.9 | max | `VmRSS` at the end | `VmHWM` at the end | descriptors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for w in &s.windows {
        let _ = writeln!(
            out,
            "| {}–{} | {} | {} | {} | {} | {} KiB | {} KiB | {} |",
            thousands(w.first),
            thousands(w.last),
            micros(w.p50_ns),
            micros(w.p99_ns),
            micros(w.p999_ns),
            micros(w.max_ns),
            thousands(w.end.rss_kib),
            thousands(w.end.hwm_kib),
            w.end.fds
        );
    }
    if !s.log.unexpected.is_empty() {
        let _ = writeln!(out, "\nThe emulator logged (first lines):\n");
        for line in &s.log.unexpected {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(
        out,
        "\nReproduce: `cargo bench --bench soak` (shorter: `SOAK_N=20000 cargo bench --bench soak`)."
    );
    out
}

fn micros(ns: u32) -> String {
    let us = f64::from(ns) / 1e3;
    if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

//! The comparison users ask for: tinylambda's echo against the alternatives, each run
//! through `tinylambda-emu --bench` (the same emulator, the same measurements), in one
//! interleaved run, with every figure also given as a ratio to the C floor of the same run.
//!
//! `cargo bench --bench compare` builds the peers, runs `COMPARE_ROUNDS` rounds (in each:
//! every peer in turn, then `COMPARE_COLD` extra cold starts per peer, then every peer under
//! the "128 MB Lambda" CPU limit), prints a markdown report and writes it to
//! `benches/RESULTS.md` with the machine and the date. Figures are medians over the rounds.
//!
//! Peers: the C floor (`benches/peers/floor.c`, `cc -O2`, `cc -O2 -static`, and static
//! with musl, `musl-gcc -O2 -static`, when musl-tools is installed), tinylambda's echo
//! example (`release`, and `tiny` static musl when that target is installed), the echo
//! without std (`examples/nostd`, `tiny` static musl), the official `lambda_runtime` echo
//! (`benches/peers/official/`, its own Cargo project), `tinylambda-exec` (`tiny` static musl) running the shell peer's bash handler
//! per call and persistent, and the classic bash + curl bootstrap
//! (`benches/peers/bash-curl/`, when bash and curl are installed). A peer that cannot be
//! built or run has a row that says why.
//!
//! The "128 MB Lambda" estimate: Lambda gives a function CPU in proportion to its memory,
//! one vCPU at 1,769 MB, so 128 MB gets 128/1769 = 7.2% of one CPU. Each peer runs in a
//! cgroup limited to 7,236 µs of CPU per 100 ms (cgroup v2 `cpu.max`, or the cgroup v1 CPU
//! controller's `cpu.cfs_quota_us`/`cpu.cfs_period_us`, the same CFS bandwidth limit, where
//! v2's is not available); the emulator itself is not limited. Invocations are sent back to
//! back, so this is a sustained-load estimate. Where no cgroup can be written, the report
//! says so instead of giving figures.
//!
//! Environment (defaults in brackets): `COMPARE_ROUNDS` [5], `COMPARE_N` [10000]
//! invocations per run for compiled peers, `COMPARE_N_EXEC` [2000] for tinylambda-exec,
//! `COMPARE_N_BASH` [200] for bash + curl (about 20 ms of CPU each), and under the CPU
//! limit `COMPARE_N_THROTTLED` [1000], `COMPARE_N_THROTTLED_EXEC` [100] and
//! `COMPARE_N_THROTTLED_BASH` [30], `COMPARE_COLD` [5] extra cold starts per peer and round,
//! `COMPARE_PAYLOAD` [64] event bytes. The default run takes a few minutes once the peers
//! are built (the official runtime's first build takes about two).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::{env_number, first_line, machine, thousands, today};

const EMU: &str = env!("CARGO_BIN_EXE_tinylambda-emu");
const MUSL: &str = "x86_64-unknown-linux-musl";
/// 128 MB of 1,769 MB per vCPU, as µs of CPU per 100,000 µs period.
const QUOTA_US: u64 = 7_236;
const PERIOD_US: u64 = 100_000;
/// Longest one emulator run may take before it is stopped.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// What kind of peer a row is, which sets how many invocations one run has: a shell
/// starting processes per invocation costs thousands of times what a compiled loop does.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A compiled loop: microseconds per invocation.
    Compiled,
    /// `tinylambda-exec` with a bash handler: about a process start per invocation (or
    /// none, persistent).
    Exec,
    /// The bash + curl loop: several process starts per invocation.
    Shell,
}

struct Settings {
    rounds: usize,
    n: u64,
    n_exec: u64,
    n_bash: u64,
    n_throttled: u64,
    n_throttled_exec: u64,
    n_throttled_bash: u64,
    cold: usize,
    payload: u64,
}

/// One runtime under comparison.
struct Peer {
    name: String,
    /// The command, or why there is none.
    command: Result<Vec<String>, String>,
    /// The file that runs, and a note on what else it needs.
    size: Option<(u64, &'static str)>,
    /// Extra emulator options.
    options: Vec<String>,
    /// How it is stable under measurement: sets how many invocations a run has.
    kind: Kind,
    /// A short name the goals refer to it by.
    key: &'static str,
    /// Position in the report (the floor is 0).
    order: usize,
    samples: Samples,
}

#[derive(Default)]
struct Samples {
    cold_ms: Vec<f64>,
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
    cpu_us: Vec<f64>,
    rss_kib: Vec<f64>,
    throttled_p50_us: Vec<f64>,
    throttled_p99_us: Vec<f64>,
    /// The last failure, if a run failed.
    failed: Option<String>,
}

/// What one `tinylambda-emu --bench --json` run printed.
struct Run {
    cold_ms: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: f64,
    rss_kib: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`, as test runners ask
    }
    let settings = Settings {
        rounds: env_number("COMPARE_ROUNDS", 5) as usize,
        n: env_number("COMPARE_N", 10_000),
        n_exec: env_number("COMPARE_N_EXEC", 2_000),
        n_bash: env_number("COMPARE_N_BASH", 200),
        n_throttled: env_number("COMPARE_N_THROTTLED", 1_000),
        n_throttled_exec: env_number("COMPARE_N_THROTTLED_EXEC", 100),
        n_throttled_bash: env_number("COMPARE_N_THROTTLED_BASH", 30),
        cold: env_number("COMPARE_COLD", 5) as usize,
        payload: env_number("COMPARE_PAYLOAD", 64),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = root.join("target/compare");
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("compare: cannot create {}: {e}", work.display());
        std::process::exit(1);
    }
    let mut peers = build_peers(root, &work);
    let throttle = Throttle::set_up();
    if let Throttle::Unavailable(why) = &throttle {
        eprintln!("compare: no 128 MB estimate: {why}");
    }

    // One short run of each peer first, discarded: page cache, CPU frequency, first-run
    // effects.
    eprintln!("compare: warming up");
    for peer in &mut peers {
        let n = match peer.kind {
            Kind::Compiled => 500,
            Kind::Exec => 50,
            Kind::Shell => 5,
        };
        measure(peer, &work, n, settings.payload, None);
    }

    for round in 1..=settings.rounds {
        eprintln!("compare: round {round}/{}", settings.rounds);
        // Each round starts with a different peer, so that no peer always runs right after
        // the same one (or after the CPU-limited runs).
        peers.rotate_left(1);
        for peer in &mut peers {
            let n = settings.invocations(peer.kind, false);
            if let Some(run) = measure(peer, &work, n, settings.payload, None) {
                let s = &mut peer.samples;
                s.cold_ms.push(run.cold_ms);
                s.p50_us.push(run.p50_us);
                s.p99_us.push(run.p99_us);
                s.cpu_us.push(run.cpu_us);
                s.rss_kib.push(run.rss_kib);
            }
        }
        for _ in 0..settings.cold {
            for peer in &mut peers {
                if let Some(run) = measure(peer, &work, 1, settings.payload, None) {
                    peer.samples.cold_ms.push(run.cold_ms);
                }
            }
        }
        if let Throttle::Ready { procs, .. } = &throttle {
            for peer in &mut peers {
                let n = settings.invocations(peer.kind, true);
                if let Some(run) = measure(peer, &work, n, settings.payload, Some(procs)) {
                    peer.samples.throttled_p50_us.push(run.p50_us);
                    peer.samples.throttled_p99_us.push(run.p99_us);
                }
            }
        }
    }

    // Back to the build order, the floor first, for the report.
    peers.sort_by_key(|p| p.order);
    let report = report(root, &settings, &peers, &throttle);
    drop(throttle);
    println!("{report}");
    let results = root.join("benches/RESULTS.md");
    match std::fs::write(&results, &report) {
        Ok(()) => eprintln!("compare: wrote {}", results.display()),
        Err(e) => eprintln!("compare: cannot write {}: {e}", results.display()),
    }
}

impl Settings {
    /// Invocations per run for a peer of `kind`, with or without the CPU limit.
    fn invocations(&self, kind: Kind, throttled: bool) -> u64 {
        match (kind, throttled) {
            (Kind::Compiled, false) => self.n,
            (Kind::Compiled, true) => self.n_throttled,
            (Kind::Exec, false) => self.n_exec,
            (Kind::Exec, true) => self.n_throttled_exec,
            (Kind::Shell, false) => self.n_bash,
            (Kind::Shell, true) => self.n_throttled_bash,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Building the peers

fn build_peers(root: &Path, work: &Path) -> Vec<Peer> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let peers_dir = work.join("peers");
    let _ = std::fs::create_dir_all(&peers_dir);
    let mut peers = Vec::new();

    // The floor, dynamic like the `release` echo, and static like the `tiny` musl one.
    for (key, name, flags) in [
        (
            "floor",
            "C floor (`benches/peers/floor.c`, `cc -O2`)",
            &["-O2"][..],
        ),
        (
            "floor-static",
            "C floor, static (`cc -O2 -static`)",
            &["-O2", "-static"][..],
        ),
    ] {
        let out = peers_dir.join(key);
        let built = run_quietly(
            Command::new("cc")
                .args(flags)
                .arg("-o")
                .arg(&out)
                .arg(root.join("benches/peers/floor.c")),
        );
        peers.push(binary_peer(key, name, built.map(|()| out)));
    }
    // The floor for the no_std echo: static, on the same C library.
    let out = peers_dir.join("floor-musl");
    let built = match missing(&["musl-gcc"]) {
        Some(_) => Err("not built: musl-gcc is not installed (apt-get install musl-tools)".into()),
        None => run_quietly(
            Command::new("musl-gcc")
                .args(["-O2", "-static", "-o"])
                .arg(&out)
                .arg(root.join("benches/peers/floor.c")),
        )
        .map(|()| out),
    };
    peers.push(binary_peer(
        "floor-musl",
        "C floor, static musl (`musl-gcc -O2 -static`)",
        built,
    ));

    let build = |what: &[&str], args: &[&str], path: PathBuf| {
        run_quietly(
            Command::new(&cargo)
                .current_dir(root)
                .args(["build", "--quiet", "--target-dir"])
                .arg(&peers_dir)
                .args(what)
                .args(args),
        )
        .map(|()| path)
    };
    const ECHO: &[&str] = &["--example", "echo"];
    peers.push(binary_peer(
        "release",
        "tinylambda echo, `release`",
        build(
            ECHO,
            &["--release"],
            peers_dir.join("release/examples/echo"),
        ),
    ));
    let has_musl = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(MUSL));
    let tiny = |what: &[&str], path: &str| {
        if has_musl {
            build(
                what,
                &["--profile", "tiny", "--target", MUSL],
                peers_dir.join(format!("{MUSL}/tiny/{path}")),
            )
        } else {
            Err(format!(
                "not built: `rustup target add {MUSL}` to include it"
            ))
        }
    };
    peers.push(binary_peer(
        "tiny",
        "tinylambda echo, `tiny` static musl",
        tiny(ECHO, "examples/echo"),
    ));
    let nostd_manifest = root.join("examples/nostd/Cargo.toml");
    let nostd_manifest = nostd_manifest.to_string_lossy();
    peers.push(binary_peer(
        "nostd",
        "tinylambda echo without std, `tiny` static musl",
        tiny(&["--manifest-path", &nostd_manifest], "echo"),
    ));

    eprintln!("compare: building the official lambda_runtime echo (the first build takes minutes)");
    let official_target = root.join("target/official");
    let official = run_quietly(
        Command::new(&cargo)
            .args(["build", "--quiet", "--release", "--manifest-path"])
            .arg(root.join("benches/peers/official/Cargo.toml"))
            .arg("--target-dir")
            .arg(&official_target),
    )
    .map(|()| official_target.join("release/official-echo"));
    peers.push(binary_peer(
        "official",
        &format!(
            "official `lambda_runtime` {} echo, `release`",
            official_version(root)
        ),
        official,
    ));

    // The shell peers all run the same handler: the seed article's `handler` function,
    // returning the event instead of a fixed reply (benches/peers/bash-curl/function.sh).
    let shell_root = root.join("benches/peers/bash-curl");
    let task_root = format!("LAMBDA_TASK_ROOT={}", shell_root.display());
    let exec = match missing(&["bash"]) {
        Some(tool) => Err(format!("not run: {tool} is not installed")),
        None => tiny(&["--bin", "tinylambda-exec"], "tinylambda-exec"),
    };
    for (key, name, extra) in [
        (
            "exec",
            "tinylambda-exec + bash handler, a process per call",
            None,
        ),
        (
            "exec-persistent",
            "tinylambda-exec + bash handler, persistent",
            Some("TINYLAMBDA_PERSISTENT=1"),
        ),
    ] {
        let mut peer = binary_peer(key, name, exec.clone());
        peer.kind = Kind::Exec;
        peer.options = vec!["--env".into(), task_root.clone()];
        if let Some(var) = extra {
            peer.options.extend(["--env".into(), var.into()]);
        }
        peers.push(peer);
    }

    let script = shell_root.join("bootstrap");
    let tmp = work.join("bash-curl-tmp");
    peers.push(Peer {
        name: "bash + curl (`benches/peers/bash-curl/bootstrap`)".into(),
        command: match missing(&["bash", "curl"]) {
            Some(tool) => Err(format!("not run: {tool} is not installed")),
            None => Ok(vec![script.to_string_lossy().into_owned()]),
        },
        size: std::fs::metadata(&script)
            .ok()
            .map(|m| (m.len(), " (+ bash and curl from the OS)")),
        // The tutorials' loop leaves a mktemp file per invocation: keep them in a
        // directory that is emptied after each run.
        // Under the CPU limit the emulator starts `/bin/sh` (which then becomes the
        // script), so the task root where the handler file lives is given explicitly.
        options: vec![
            "--env".into(),
            format!("TMPDIR={}", tmp.display()),
            "--env".into(),
            task_root,
        ],
        kind: Kind::Shell,
        key: "bash",
        order: 0,
        samples: Samples::default(),
    });
    for (i, peer) in peers.iter_mut().enumerate() {
        peer.order = i;
    }
    peers
}

/// The first of `tools` that does not answer `--version`.
fn missing(tools: &[&'static str]) -> Option<&'static str> {
    tools.iter().copied().find(|tool| {
        !Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn binary_peer(key: &'static str, name: &str, built: Result<PathBuf, String>) -> Peer {
    let size = built
        .as_ref()
        .ok()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| (m.len(), ""));
    Peer {
        name: name.into(),
        command: built.map(|p| vec![p.to_string_lossy().into_owned()]),
        size,
        options: Vec::new(),
        kind: Kind::Compiled,
        key,
        order: 0,
        samples: Samples::default(),
    }
}

/// Runs a build command; on failure, the reason in one line.
fn run_quietly(cmd: &mut Command) -> Result<(), String> {
    let output = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("not built: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("error"))
        .or_else(|| stderr.lines().last())
        .unwrap_or("failed")
        .trim();
    Err(format!("not built: {line}"))
}

/// The `lambda_runtime` version the official peer's lockfile pins.
fn official_version(root: &Path) -> String {
    let lock =
        std::fs::read_to_string(root.join("benches/peers/official/Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"lambda_runtime\"" {
            if let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return version.trim_end_matches('"').to_owned();
            }
        }
    }
    String::new()
}

// ---------------------------------------------------------------------------------------
// Running

/// One `tinylambda-emu --bench n` run of `peer` (inside the CPU-limited cgroup whose
/// `cgroup.procs` is `cgroup` when given). A failure is kept in the peer's samples.
fn measure(
    peer: &mut Peer,
    work: &Path,
    n: u64,
    payload: u64,
    cgroup: Option<&PathBuf>,
) -> Option<Run> {
    let Ok(command) = &peer.command else {
        return None;
    };
    let tmp = work.join("bash-curl-tmp");
    if peer.kind == Kind::Shell {
        let _ = std::fs::create_dir_all(&tmp);
    }
    let log = work.join("last-run.log");
    let mut cmd = Command::new(EMU);
    cmd.args([
        "--bench",
        &n.to_string(),
        "--payload",
        &payload.to_string(),
        "--json",
        "--timeout",
        "60",
    ])
    .args(&peer.options)
    .arg("--");
    if let Some(procs) = cgroup {
        // The bootstrap moves itself into the cgroup, then becomes the peer: everything it
        // starts stays limited; the emulator is not.
        cmd.args(["/bin/sh", "-c", "echo 0 > \"$0\" && exec \"$@\""])
            .arg(procs);
    }
    cmd.args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    match std::fs::File::create(&log) {
        Ok(file) => cmd.stderr(file),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let result = run_bounded(cmd);
    if peer.kind == Kind::Shell {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let parsed = result.and_then(|stdout| {
        let number =
            |key: &str| json_number(&stdout, key).ok_or_else(|| format!("no {key} in {stdout:?}"));
        Ok(Run {
            cold_ms: number("cold_start_ms")?,
            p50_us: number("latency_p50_us")?,
            p99_us: number("latency_p99_us")?,
            cpu_us: number("cpu_us_per_invocation")?,
            rss_kib: number("peak_rss_kib")?,
        })
    });
    match parsed {
        Ok(run) => Some(run),
        Err(why) => {
            let last = std::fs::read_to_string(&log)
                .ok()
                .and_then(|l| {
                    l.lines()
                        .rev()
                        .find(|l| l.starts_with("tinylambda-emu: "))
                        .map(str::to_owned)
                })
                .unwrap_or(why);
            eprintln!("compare: {} failed: {last}", peer.name);
            peer.samples.failed = Some(last);
            None
        }
    }
}

/// Runs `cmd` to its end (SIGTERM after [`RUN_LIMIT`]; the emulator then kills its
/// bootstrap) and returns its stdout, or why it failed.
fn run_bounded(mut cmd: Command) -> Result<String, String> {
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start tinylambda-emu: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = tx.send(());
        output
    });
    if rx.recv_timeout(RUN_LIMIT).is_err() {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    let output = waiter
        .join()
        .map_err(|_| "waiting for tinylambda-emu failed".to_owned())?
        .map_err(|e| format!("waiting for tinylambda-emu failed: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("tinylambda-emu exited with {}", output.status))
    }
}

/// The number after `"key":` in a flat JSON object.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let after = json.split(&format!("\"{key}\":")).nth(1)?;
    after.split([',', '}']).next()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------
// The CPU limit

/// A cgroup limited to Lambda's 128 MB CPU share, removed when dropped.
enum Throttle {
    Ready {
        dir: PathBuf,
        procs: PathBuf,
        how: String,
    },
    Unavailable(String),
}

impl Throttle {
    /// Makes the cgroup `dir` and writes its limit files; on failure, removes it and says
    /// why.
    fn make(dir: &Path, limit: &[(&str, String)]) -> Result<PathBuf, String> {
        let made = std::fs::create_dir(dir).and_then(|()| {
            limit
                .iter()
                .try_for_each(|(file, value)| std::fs::write(dir.join(file), value))
        });
        match made {
            Ok(()) => Ok(dir.to_owned()),
            Err(e) => {
                let _ = std::fs::remove_dir(dir);
                Err(format!("cannot write the cgroup {}: {e}", dir.display()))
            }
        }
    }

    fn ready(dir: PathBuf, how: String) -> Throttle {
        Throttle::Ready {
            procs: dir.join("cgroup.procs"),
            how,
            dir,
        }
    }

    fn set_up() -> Throttle {
        let name = format!("tinylambda-compare-{}", std::process::id());
        let mut reasons = Vec::new();
        // cgroup v2: a unified hierarchy with the cpu controller.
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let root = Path::new(root);
            let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) else {
                continue;
            };
            if !controllers.split_whitespace().any(|c| c == "cpu") {
                reasons.push(format!(
                    "{} (cgroup v2) has no cpu controller",
                    root.display()
                ));
                continue;
            }
            let subtree =
                std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
            if !subtree.split_whitespace().any(|c| c == "cpu") {
                if let Err(e) = std::fs::write(root.join("cgroup.subtree_control"), "+cpu") {
                    reasons.push(format!("cannot enable cpu in {}: {e}", root.display()));
                    continue;
                }
            }
            let limit = [("cpu.max", format!("{QUOTA_US} {PERIOD_US}"))];
            match Throttle::make(&root.join(&name), &limit) {
                Ok(dir) => {
                    return Throttle::ready(
                        dir,
                        format!("cgroup v2, `cpu.max` = `{QUOTA_US} {PERIOD_US}`"),
                    );
                }
                Err(e) => reasons.push(e),
            }
        }
        // cgroup v1: the cpu controller's CFS bandwidth files.
        for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
            let root = Path::new(root);
            if !root.join("cpu.cfs_quota_us").exists() {
                continue;
            }
            let limit = [
                ("cpu.cfs_period_us", PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", QUOTA_US.to_string()),
            ];
            match Throttle::make(&root.join(&name), &limit) {
                Ok(dir) => {
                    let why = if reasons.is_empty() {
                        "no cgroup v2 cpu controller here".to_owned()
                    } else {
                        reasons.join("; ")
                    };
                    return Throttle::ready(
                        dir,
                        format!(
                            "cgroup v1 cpu controller, `cpu.cfs_quota_us` = {QUOTA_US}, \
                             `cpu.cfs_period_us` = {PERIOD_US} (the CFS bandwidth limit behind \
                             v2's `cpu.max`; {why})"
                        ),
                    );
                }
                Err(e) => reasons.push(e),
            }
        }
        if reasons.is_empty() {
            reasons
                .push("no cgroup v2 or v1 cpu controller is mounted under /sys/fs/cgroup".into());
        }
        Throttle::Unavailable(reasons.join("; "))
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        if let Throttle::Ready { dir, .. } = self {
            // Empty by now: every run's processes have been reaped.
            for _ in 0..50 {
                if std::fs::remove_dir(&*dir).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("compare: could not remove {}", dir.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// The report

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    })
}

/// A duration given in µs, in µs below 1 ms, else in ms.
fn time(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1_000.0)
    }
}

fn ratio(value: Option<f64>, floor: Option<f64>) -> String {
    match (value, floor) {
        (Some(v), Some(f)) if f > 0.0 => {
            let r = v / f;
            if r >= 100.0 {
                format!("{r:.0}x")
            } else {
                format!("{r:.2}x")
            }
        }
        _ => "—".into(),
    }
}

fn report(root: &Path, settings: &Settings, peers: &[Peer], throttle: &Throttle) -> String {
    let mut out = String::new();
    let by_key = |key: &str| peers.iter().find(|p| p.key == key);
    let Some(floor_peer) = by_key("floor") else {
        return "no C floor peer".into();
    };
    let floor = &floor_peer.samples;
    let floor_size = floor_peer.size.map(|(bytes, _)| bytes as f64);

    let _ = writeln!(out, "# Comparison: tinylambda and the alternatives\n");
    let _ = writeln!(
        out,
        "Generated by `cargo bench --bench compare` on {} (UTC). Machine: {}.\n",
        today(),
        machine()
    );
    let _ = writeln!(out, "Tools: {}.\n", tools(root));
    let _ = writeln!(
        out,
        "Each peer echoes {}-byte JSON events, run by `tinylambda-emu --bench` (the emulator is \
         this package's binary): {} invocations per run ({} for tinylambda-exec, {} for bash \
         + curl), {} interleaved \
         rounds, plus {} extra cold starts per peer and round; every figure is the median over \
         the rounds, and each is also given as a ratio to the C floor of the same run. Only \
         the ratios carry over to other machines.\n",
        settings.payload,
        settings.n,
        settings.n_exec,
        settings.n_bash,
        settings.rounds,
        settings.cold
    );
    let _ = writeln!(
        out,
        "| runtime | cold start | vs floor | latency p50 | vs floor | latency p99 | vs floor | CPU / invocation | vs floor | peak RSS | vs floor | binary | vs floor |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for peer in peers {
        let s = &peer.samples;
        let size = peer.size.map_or("—".into(), |(bytes, note)| {
            format!("{} B{note}", thousands(bytes))
        });
        if let Some(why) = row_failure(peer) {
            let _ = writeln!(
                out,
                "| {} | {why} | | | | | | | | | | {size} | {} |",
                peer.name,
                ratio(peer.size.map(|(b, _)| b as f64), floor_size)
            );
            continue;
        }
        let (cold, p50, p99, cpu, rss) = (
            median(&s.cold_ms),
            median(&s.p50_us),
            median(&s.p99_us),
            median(&s.cpu_us),
            median(&s.rss_kib),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            peer.name,
            cold.map_or("—".into(), |ms| time(ms * 1_000.0)),
            ratio(cold, median(&floor.cold_ms)),
            p50.map_or("—".into(), time),
            ratio(p50, median(&floor.p50_us)),
            p99.map_or("—".into(), time),
            ratio(p99, median(&floor.p99_us)),
            cpu.map_or("—".into(), time),
            ratio(cpu, median(&floor.cpu_us)),
            rss.map_or("—".into(), |k| format!("{} KiB", thousands(k as u64))),
            ratio(rss, median(&floor.rss_kib)),
            size,
            ratio(peer.size.map(|(b, _)| b as f64), floor_size),
        );
    }
    let _ = writeln!(
        out,
        "\nCold start: spawn to the first `GET /next` (Lambda's Init Duration without the \
         sandbox's own set-up). Latency: the event written to the response read. CPU: user + \
         system time of the bootstrap's whole process tree (bash's `curl`s included) from its \
         first `GET /next` to the one after the last invocation, divided by the invocations \
         (`wait4` rusage; see `src/bin/tinylambda-emu/process.rs`). Peak RSS: the largest \
         process of the tree. Binary: the file that ran, as built (deployment sizes are in \
         `size-report/REPORT.md`).\n"
    );

    let _ = writeln!(out, "## \"128 MB Lambda\" estimate\n");
    match throttle {
        Throttle::Unavailable(why) => {
            let _ = writeln!(
                out,
                "Not measured on this machine: {why}. No figures are given rather than guessed.\n"
            );
        }
        Throttle::Ready { how, .. } => {
            let _ = writeln!(
                out,
                "Each peer runs limited to 128/1769 of one CPU ({how}); the emulator is not \
                 limited. Invocations follow each other without pause ({} per run, {} for \
                 tinylambda-exec, {} for bash + curl), so this is the latency under sustained \
                 load at that CPU share.\n",
                settings.n_throttled, settings.n_throttled_exec, settings.n_throttled_bash
            );
            let _ = writeln!(
                out,
                "| runtime | latency p50 | vs floor | latency p99 | vs floor |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|");
            for peer in peers {
                let s = &peer.samples;
                let (p50, p99) = (median(&s.throttled_p50_us), median(&s.throttled_p99_us));
                if p50.is_none() {
                    let why = row_failure(peer).unwrap_or_else(|| "no run succeeded".into());
                    let _ = writeln!(out, "| {} | {why} | | | |", peer.name);
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    peer.name,
                    p50.map_or("—".into(), time),
                    ratio(p50, median(&floor.throttled_p50_us)),
                    p99.map_or("—".into(), time),
                    ratio(p99, median(&floor.throttled_p99_us)),
                );
            }
            out.push('\n');
        }
    }

    let _ = writeln!(out, "## Goals, from this run\n");
    let _ = writeln!(
        out,
        "Each tinylambda build against the C floor of the same linkage: `release` (glibc, \
         dynamic) against `cc -O2`, `tiny` static musl against `cc -O2 -static`.\n"
    );
    let measure = |key: &str, pick: fn(&Samples) -> &Vec<f64>| median(pick(&by_key(key)?.samples));
    let cpu = |key: &str| measure(key, |s| &s.cpu_us);
    let p50 = |key: &str| measure(key, |s| &s.p50_us);
    let cold = |key: &str| measure(key, |s| &s.cold_ms);
    let over = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let goal = |what: &str, value: Option<f64>, limit: f64, below: bool| {
        let verdict = match value {
            Some(v) if (below && v <= limit) || (!below && v >= limit) => "met",
            Some(_) => "not met",
            None => "not measured",
        };
        let shown = value.map_or("—".into(), |v| format!("{v:.2}x"));
        format!(
            "- {what}: {shown} (goal {} {limit}x): {verdict}\n",
            if below { "≤" } else { "≥" }
        )
    };
    for (key, floor, name) in [
        ("release", "floor", "`release`"),
        ("tiny", "floor-static", "`tiny` static musl"),
    ] {
        for (what, f, limit) in [
            ("CPU", &cpu as &dyn Fn(&str) -> Option<f64>, 1.3),
            ("latency p50", &p50, 1.3),
            ("cold start", &cold, 1.5),
        ] {
            out.push_str(&goal(
                &format!("tinylambda {name} {what} vs its floor"),
                over(f(key), f(floor)),
                limit,
                true,
            ));
        }
        out.push_str(&goal(
            &format!("official runtime CPU / tinylambda {name} CPU"),
            over(cpu("official"), cpu(key)),
            3.0,
            false,
        ));
        out.push_str(&goal(
            &format!("bash + curl CPU / tinylambda {name} CPU"),
            over(cpu("bash"), cpu(key)),
            200.0,
            false,
        ));
    }
    let _ = writeln!(
        out,
        "\nThe echo without std against the static musl C floor (the same C library, the same \
         start-up code):\n"
    );
    for (what, f) in [
        ("CPU", &cpu as &dyn Fn(&str) -> Option<f64>),
        ("latency p50", &p50),
        ("cold start", &cold),
    ] {
        out.push_str(&goal(
            &format!("tinylambda without std {what} vs its floor"),
            over(f("nostd"), f("floor-musl")),
            1.1,
            true,
        ));
    }
    let _ = writeln!(
        out,
        "\nFor shell users (no goal set): bash + curl uses {} the CPU per invocation of \
         tinylambda-exec starting the handler per call, and {} that of the persistent handler.",
        over(cpu("bash"), cpu("exec")).map_or("—".into(), |r| format!("{r:.1}x")),
        over(cpu("bash"), cpu("exec-persistent")).map_or("—".into(), |r| format!("{r:.1}x")),
    );
    let _ = writeln!(
        out,
        "\nReproduce: `cargo bench --bench compare` (needs `cc`; `rustup target add {MUSL}` for the \
         musl rows; musl-gcc (`apt-get install musl-tools`) for the static musl floor; bash and curl for their row; crates.io for the official row; a writable cgroup \
         for the 128 MB table; shorter: `COMPARE_ROUNDS=1 COMPARE_N=2000 cargo bench --bench compare`)."
    );
    out
}

fn row_failure(peer: &Peer) -> Option<String> {
    match (&peer.command, &peer.samples.failed) {
        (Err(why), _) => Some(why.clone()),
        (Ok(_), Some(why)) if peer.samples.p50_us.is_empty() => Some(format!("failed: {why}")),
        _ => None,
    }
}

fn tools(root: &Path) -> String {
    format!(
        "{}; {}; {}; {}; lambda_runtime {}",
        first_line("rustc", "-V"),
        first_line("cc", "--version"),
        first_line("curl", "--version"),
        first_line("bash", "--version"),
        official_version(root)
    )
}

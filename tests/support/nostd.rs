//! The bootstraps without std: the `echo` of `examples/nostd` and the probe of
//! `tests/nostd-probe` (the runtime built with `default-features = false`), built once per
//! test process as they are deployed (`--profile tiny`, static musl) into
//! `target/tmp/nostd`.
//!
//! The musl target has to be installed (`rustup target add x86_64-unknown-linux-musl`).
//! Without it each test says why it is skipped and passes, unless
//! `TINYLAMBDA_REQUIRE_NOSTD` is set (`.ci/run` sets it), which makes it a failure.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{accepted, event, read_request, run_child, run_child_output, target_installed};

/// What the no_std bootstraps are built for on this machine.
pub const TARGET: &str = "x86_64-unknown-linux-musl";
const REQUIRE: &str = "TINYLAMBDA_REQUIRE_NOSTD";
/// How long the build may take (a first build on a busy machine included).
const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// The no_std binaries.
pub struct NoStd {
    pub echo: PathBuf,
    pub probe: PathBuf,
    /// The probe on tinylambda's own heap (`tinylambda::heap!()`) instead of `malloc`.
    pub probe_heap: PathBuf,
}

/// The no_std binaries built for `target`, or `None` after saying why the calling `test` is
/// skipped. Panics when the target is missing and [`REQUIRE`] is set, or when a build fails.
pub fn binaries(test: &str, target: &str) -> Option<&'static NoStd> {
    static X86: OnceLock<Result<NoStd, String>> = OnceLock::new();
    static ARM: OnceLock<Result<NoStd, String>> = OnceLock::new();
    let cell = if target.starts_with("aarch64") {
        &ARM
    } else {
        &X86
    };
    match cell.get_or_init(|| build(target)) {
        Ok(built) => Some(built),
        Err(why) => {
            assert!(
                std::env::var_os(REQUIRE).is_none(),
                "{REQUIRE} is set, but {why}"
            );
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn build(target: &str) -> Result<NoStd, String> {
    if !target_installed(target) {
        return Err(format!(
            "the {target} target is not installed (rustup target add {target})"
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nostd");
    for manifest in ["examples/nostd/Cargo.toml", "tests/nostd-probe/Cargo.toml"] {
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .current_dir(root)
            .args(["build", "--quiet", "--profile", "tiny", "--target", target])
            .arg("--manifest-path")
            .arg(root.join(manifest))
            .arg("--target-dir")
            .arg(&target_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (code, _, stderr) = run_child_output(build, BUILD_LIMIT);
        assert_eq!(
            code,
            Some(0),
            "building {manifest} for {target} failed: {stderr}"
        );
    }
    let out = target_dir.join(target).join("tiny");
    Ok(NoStd {
        echo: out.join("echo"),
        probe: out.join("probe"),
        probe_heap: out.join("probe-heap"),
    })
}

/// Runs `bootstrap` (a probe, ready to be a bootstrap) with `loops` concurrent loops, each
/// on its own connection and thread of the test, for `rounds` invocations each: every other
/// one an event echoed back byte for byte, its size on either side of the heap's 128 KiB
/// line between blocks and mappings and different in every loop and round; the others
/// `churn`, which makes each handler allocate, check and free thousands of blocks while
/// the other loops do the same through the one heap. Then a 500 on one `/next` ends the
/// process as it should (status 1, and no heap failure on the way).
pub fn assert_heap_under_loops(mut bootstrap: Command, loops: usize, rounds: usize) {
    const SIZES: [usize; 6] = [17, 3_000, 60_000, 131_000, 140_000, 400_000];
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    bootstrap
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("PROBE_MODE", "concurrent")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", loops.to_string());
    let runner = std::thread::spawn(move || run_child(bootstrap));
    let servers: Vec<_> = (0..loops)
        .map(|l| {
            let mut conn = super::accept_loop(&listener, Duration::from_secs(60));
            std::thread::spawn(move || {
                for round in 0..rounds {
                    let (line, _) = read_request(&mut conn);
                    assert!(
                        line.starts_with("GET /2018-06-01/runtime/invocation/next "),
                        "{line}"
                    );
                    // Every other round the handler churns through the heap, the loops at
                    // about the same time; the others echo an event of their own size.
                    let (body, answer): (Vec<u8>, Vec<u8>) = if round % 2 == 1 {
                        (b"churn".to_vec(), b"churned".to_vec())
                    } else {
                        let size = SIZES[(l + round) % SIZES.len()] + 7 * round;
                        let body: Vec<u8> =
                            (0..size).map(|i| (i * 31 + l * 7 + round) as u8).collect();
                        (body.clone(), body)
                    };
                    let id = format!("h{l}-{round}");
                    conn.write_all(&event(&id, &body, &[])).unwrap();
                    let (line, posted) = read_request(&mut conn);
                    let expected = format!("POST /2018-06-01/runtime/invocation/{id}/response ");
                    assert!(line.starts_with(&expected), "{line}");
                    assert!(posted == answer, "{id}: {} bytes back", posted.len());
                    conn.write_all(&accepted()).unwrap();
                }
                conn
            })
        })
        .collect();
    let mut conns: Vec<_> = servers.into_iter().map(|s| s.join().unwrap()).collect();
    let stderr = super::end_with_500(&mut conns, runner);
    assert!(!stderr.contains("heap"), "{stderr}");
}

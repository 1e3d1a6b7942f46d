//! The bootstraps without std: the `echo` of `examples/nostd` and the probe of
//! `tests/nostd-probe` (the runtime built with `default-features = false`), built once per
//! test process as they are deployed (`--profile tiny`, static musl) into
//! `target/tmp/nostd`.
//!
//! The musl target has to be installed (`rustup target add x86_64-unknown-linux-musl`).
//! Without it each test says why it is skipped and passes, unless
//! `TINYLAMBDA_REQUIRE_NOSTD` is set (`.ci/run` sets it), which makes it a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{run_child_output, target_installed};

/// What the no_std bootstraps are built for on this machine.
pub const TARGET: &str = "x86_64-unknown-linux-musl";
const REQUIRE: &str = "TINYLAMBDA_REQUIRE_NOSTD";
/// How long the build may take (a first build on a busy machine included).
const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// The two no_std binaries.
pub struct NoStd {
    pub echo: PathBuf,
    pub probe: PathBuf,
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
    })
}

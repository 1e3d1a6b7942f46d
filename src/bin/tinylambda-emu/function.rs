//! The function's configuration and the environment Lambda gives its runtime.
//!
//! Defaults follow what a new `provided.al2023` function gets, with `--env KEY=VALUE` on top
//! (the last word): `AWS_LAMBDA_FUNCTION_NAME=function` (the name in the invoke path),
//! `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`,
//! `AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/{name}`,
//! `AWS_LAMBDA_LOG_STREAM_NAME={yyyy/mm/dd}/[{version}]{32 hex}`,
//! `AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`, `_HANDLER=function.handler` (what the AWS
//! shell-runtime tutorial uses; compiled bootstraps ignore it), `LAMBDA_TASK_ROOT` = the
//! bootstrap's directory (Lambda: `/var/task`, where the bootstrap is), and `AWS_REGION` /
//! `AWS_DEFAULT_REGION` = the emulator's own `AWS_REGION`, or `us-east-1`. The bootstrap
//! runs in its task root, as Lambda runs it in `/var/task` (`runtimes-custom.md`: "the
//! runtime ... can find the function's code in `LAMBDA_TASK_ROOT`";
//! `lambda-runtime-environment.md`).
//! `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` are set by `--log-format` and
//! `--log-level` ([`crate::logging`]), and only by them.
//! `AWS_LAMBDA_RUNTIME_API` is set per runtime start and cannot be overridden;
//! `AWS_LAMBDA_MAX_CONCURRENCY` is set by `--concurrency N` (as Lambda Managed Instances
//! set it), and only by it, so that the runtime never runs more loops than the emulator
//! accepts.
//! Everything else in the emulator's environment is passed on (credentials, `PATH`).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use crate::clock::{civil_date, unix_secs};
use crate::ids::Ids;
use crate::logging::{self, Logging};

/// What the emulator needs to know about the function it runs.
#[derive(Debug)]
pub struct Function {
    /// `AWS_LAMBDA_FUNCTION_NAME`; also the name accepted in the invoke path.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, for `REPORT` lines.
    pub memory_mb: u64,
    /// `arn:aws:lambda:{region}:123456789012:function:{name}`.
    pub arn: String,
    /// `AWS_REGION`.
    pub region: String,
    /// The id of the function's URL (`https://{url_id}.lambda-url.{region}.on.aws`): 32
    /// lowercase hex digits, the same on every run for the same name and region, as a
    /// function URL keeps its endpoint.
    pub url_id: String,
    /// `_HANDLER`, for extensions' registration answers.
    pub handler: String,
    /// The function timeout (`--timeout`).
    pub timeout: Duration,
    /// The runtime's environment, without `AWS_LAMBDA_RUNTIME_API`.
    pub env: Vec<(OsString, OsString)>,
    /// `LAMBDA_TASK_ROOT`, the directory the bootstrap runs in.
    pub task_root: OsString,
    /// `--log-format` and `--log-level`.
    pub logging: Logging,
}

/// The variable the emulator sets for each runtime start.
pub const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

/// The variable `--concurrency` sets.
pub const MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

impl Function {
    /// The configuration for `bootstrap` with `overrides` from `--env`, `concurrency`
    /// from `--concurrency` if it was given, and `logging` from `--log-format` and
    /// `--log-level`.
    pub fn new(
        bootstrap: &OsStr,
        overrides: &[(OsString, OsString)],
        timeout: Duration,
        concurrency: Option<usize>,
        logging: Logging,
    ) -> Result<Function, String> {
        let given = |key: &str| {
            overrides
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        if given(RUNTIME_API).is_some() {
            return Err(format!(
                "--env cannot set {RUNTIME_API}: the emulator sets it to its own Runtime API"
            ));
        }
        if given(MAX_CONCURRENCY).is_some() {
            return Err(format!(
                "--env cannot set {MAX_CONCURRENCY}: use --concurrency N, so that the emulator accepts N invocations at once"
            ));
        }
        for (var, flag) in [
            (logging::FORMAT_VAR, "--log-format"),
            (logging::LEVEL_VAR, "--log-level"),
        ] {
            if given(var).is_some() {
                return Err(format!(
                    "--env cannot set {var}: use {flag}, so that the emulator writes its lines the same way"
                ));
            }
        }
        let name = given("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "function".into());
        let version = given("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".into());
        let memory = given("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_else(|| "128".into());
        let handler = given("_HANDLER").unwrap_or_else(|| "function.handler".into());
        let memory_mb = memory.parse().map_err(|_| {
            format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a whole number of MB, got {memory:?}")
        })?;
        let region = given("AWS_REGION")
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        let (y, m, d) = civil_date(unix_secs());
        let stream = format!("{y:04}/{m:02}/{d:02}/[{version}]{}", Ids::new().hex(32));

        let mut env: Vec<(OsString, OsString)> = [
            ("AWS_LAMBDA_FUNCTION_NAME", name.as_str()),
            ("AWS_LAMBDA_FUNCTION_VERSION", version.as_str()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.as_str()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", &stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_REGION", &region),
            ("AWS_DEFAULT_REGION", &region),
            ("_HANDLER", "function.handler"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        env.push(("LAMBDA_TASK_ROOT".into(), task_root(bootstrap)));
        if let Some(n) = concurrency {
            env.push((MAX_CONCURRENCY.into(), n.to_string().into()));
        }
        env.extend(logging.env().into_iter().map(|(k, v)| (k.into(), v.into())));
        // --env comes last, so it wins (Command keeps the last value of a key).
        env.extend(overrides.iter().cloned());
        let task_root = env
            .iter()
            .rev()
            .find(|(k, _)| k == "LAMBDA_TASK_ROOT")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Ok(Function {
            arn: format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"),
            url_id: url_id(&region, &name),
            region,
            name,
            version,
            memory_mb,
            handler,
            timeout,
            env,
            task_root,
            logging,
        })
    }
}

/// The account id in the function's ARN and in function URL events.
pub const ACCOUNT_ID: &str = "123456789012";

/// A function URL id for `name` in `region`: two 64-bit FNV-1a hashes of them, in hex.
fn url_id(region: &str, name: &str) -> String {
    let fnv = |seed: u64| {
        format!("{region}:{name}").bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
}

/// The directory of the bootstrap when it is given as a path, else the current directory
/// (a bare name is looked up in `PATH`, like a shell would).
fn task_root(bootstrap: &OsStr) -> OsString {
    let path = Path::new(bootstrap);
    let cwd = std::env::current_dir().unwrap_or_default();
    if !bootstrap.to_string_lossy().contains('/') {
        return cwd.into_os_string();
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let absolute = cwd.join(dir);
    absolute.canonicalize().unwrap_or(absolute).into_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(f: &Function, key: &str) -> Option<String> {
        f.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    #[test]
    fn defaults_look_like_a_new_function() {
        let f = Function::new(
            OsStr::new("./bootstrap"),
            &[],
            Duration::from_secs(3),
            None,
            Logging::default(),
        )
        .unwrap();
        assert_eq!(f.name, "function");
        assert_eq!(
            env_of(&f, "AWS_LAMBDA_FUNCTION_VERSION").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(f.memory_mb, 128);
        assert_eq!(
            env_of(&f, "AWS_LAMBDA_LOG_GROUP_NAME").as_deref(),
            Some("/aws/lambda/function")
        );
        let stream = env_of(&f, "AWS_LAMBDA_LOG_STREAM_NAME").unwrap();
        assert!(
            stream.contains("/[$LATEST]") && stream.len() == 11 + 9 + 32,
            "{stream}"
        );
        assert!(f.arn.ends_with(":function:function"));
        assert_eq!(f.url_id.len(), 32);
        assert!(
            f.url_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let again = Function::new(
            OsStr::new("./other"),
            &[],
            Duration::from_secs(1),
            None,
            Logging::default(),
        )
        .unwrap();
        assert_eq!(again.url_id, f.url_id, "the same function, the same URL");
    }

    #[test]
    fn env_overrides_win_and_feed_the_configuration() {
        let overrides = vec![
            ("AWS_LAMBDA_FUNCTION_NAME".into(), "orders".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "1769".into()),
            ("_HANDLER".into(), "bootstrap".into()),
        ];
        let f = Function::new(
            OsStr::new("./b"),
            &overrides,
            Duration::from_secs(3),
            Some(4),
            Logging::default(),
        )
        .unwrap();
        assert_eq!((f.name.as_str(), f.memory_mb), ("orders", 1769));
        assert_eq!(env_of(&f, "_HANDLER").as_deref(), Some("bootstrap"));
        assert_eq!(f.handler, "bootstrap");
        assert_eq!(env_of(&f, MAX_CONCURRENCY).as_deref(), Some("4"));
        assert_eq!(
            env_of(&f, "AWS_LAMBDA_LOG_GROUP_NAME").as_deref(),
            Some("/aws/lambda/orders")
        );
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(Path::new(&f.task_root), cwd, "./b's directory");
        let moved = vec![("LAMBDA_TASK_ROOT".into(), "/var/task".into())];
        let f = Function::new(
            OsStr::new("./b"),
            &moved,
            Duration::from_secs(3),
            None,
            Logging::default(),
        )
        .unwrap();
        assert_eq!(
            f.task_root, "/var/task",
            "where the bootstrap runs follows --env"
        );
    }

    #[test]
    fn runtime_api_and_bad_memory_are_refused() {
        let api = vec![(RUNTIME_API.into(), "127.0.0.1:1".into())];
        assert!(
            Function::new(
                OsStr::new("b"),
                &api,
                Duration::from_secs(1),
                None,
                Logging::default()
            )
            .is_err()
        );
        let max = vec![(MAX_CONCURRENCY.into(), "4".into())];
        let e = Function::new(
            OsStr::new("b"),
            &max,
            Duration::from_secs(1),
            None,
            Logging::default(),
        )
        .err()
        .unwrap();
        assert!(e.contains("use --concurrency N"), "{e}");
        let memory = vec![("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "lots".into())];
        let e = Function::new(
            OsStr::new("b"),
            &memory,
            Duration::from_secs(1),
            None,
            Logging::default(),
        )
        .err()
        .unwrap();
        assert!(e.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "{e}");
    }
}

//! The function's configuration, read once from the environment Lambda sets.

use std::env;

/// The function's configuration from the environment, read once at start.
///
/// Missing or unparsable values fall back to defaults, never a panic: strings default to
/// empty, except the version (`$LATEST`); memory defaults to 128 MB (Lambda's default size)
/// and the concurrency to 1. Emulators set only some of these (`cargo lambda` sets no log
/// group or stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    function_name: String,
    function_version: String,
    memory_mb: u32,
    log_group: String,
    log_stream: String,
    handler: String,
    task_root: String,
    region: String,
    initialization_type: String,
    max_concurrency: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            function_name: String::new(),
            function_version: "$LATEST".to_owned(),
            memory_mb: 128,
            log_group: String::new(),
            log_stream: String::new(),
            handler: String::new(),
            task_root: String::new(),
            region: String::new(),
            initialization_type: String::new(),
            max_concurrency: 1,
        }
    }
}

impl Config {
    /// Reads `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_VERSION`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_LOG_GROUP_NAME`,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`, `_HANDLER`, `LAMBDA_TASK_ROOT`, `AWS_REGION`,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE` and `AWS_LAMBDA_MAX_CONCURRENCY`. Costs ten
    /// environment lookups and a few small allocations; [`crate::run`] does it once.
    pub fn from_env() -> Self {
        let d = Config::default();
        let text = |name: &str, default: String| env::var(name).unwrap_or(default);
        let number = |name: &str, default: u32| {
            env::var(name)
                .ok()
                .and_then(|v| crate::parse::parse_decimal(v.trim().as_bytes()))
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        Config {
            function_name: text("AWS_LAMBDA_FUNCTION_NAME", d.function_name),
            function_version: text("AWS_LAMBDA_FUNCTION_VERSION", d.function_version),
            memory_mb: number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", d.memory_mb),
            log_group: text("AWS_LAMBDA_LOG_GROUP_NAME", d.log_group),
            log_stream: text("AWS_LAMBDA_LOG_STREAM_NAME", d.log_stream),
            handler: text("_HANDLER", d.handler),
            task_root: text("LAMBDA_TASK_ROOT", d.task_root),
            region: text("AWS_REGION", d.region),
            initialization_type: text("AWS_LAMBDA_INITIALIZATION_TYPE", d.initialization_type),
            max_concurrency: number("AWS_LAMBDA_MAX_CONCURRENCY", d.max_concurrency),
        }
    }

    /// `AWS_LAMBDA_FUNCTION_NAME`, or empty.
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// `AWS_LAMBDA_FUNCTION_VERSION`, or `$LATEST`.
    pub fn function_version(&self) -> &str {
        &self.function_version
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB, or 128 when missing or not a positive number.
    pub fn memory_mb(&self) -> u32 {
        self.memory_mb
    }

    /// `AWS_LAMBDA_LOG_GROUP_NAME`, or empty.
    pub fn log_group(&self) -> &str {
        &self.log_group
    }

    /// `AWS_LAMBDA_LOG_STREAM_NAME`, or empty.
    pub fn log_stream(&self) -> &str {
        &self.log_stream
    }

    /// `_HANDLER`, the handler string configured for the function, or empty.
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// `LAMBDA_TASK_ROOT`, where the function's code is (`/var/task` on Lambda), or empty.
    pub fn task_root(&self) -> &str {
        &self.task_root
    }

    /// `AWS_REGION`, or empty.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `AWS_LAMBDA_INITIALIZATION_TYPE` (`on-demand`, `provisioned-concurrency`,
    /// `snap-start`), or empty.
    pub fn initialization_type(&self) -> &str {
        &self.initialization_type
    }

    /// `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances), or 1.
    pub fn max_concurrency(&self) -> u32 {
        self.max_concurrency
    }
}

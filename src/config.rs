//! The function's configuration, read once from the environment Lambda sets.

use alloc::string::String;
use core::ffi::CStr;

use crate::sys::env;

/// The environment variables behind [`Config`], in the order of its text fields (the last,
/// `AWS_LAMBDA_MAX_CONCURRENCY`, is kept only to be read as a number).
const VARS: [&CStr; FIELDS] = [
    c"AWS_LAMBDA_FUNCTION_NAME",
    c"AWS_LAMBDA_FUNCTION_VERSION",
    c"AWS_LAMBDA_LOG_GROUP_NAME",
    c"AWS_LAMBDA_LOG_STREAM_NAME",
    c"_HANDLER",
    c"LAMBDA_TASK_ROOT",
    c"AWS_REGION",
    c"AWS_LAMBDA_INITIALIZATION_TYPE",
    c"AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    c"AWS_LAMBDA_MAX_CONCURRENCY",
    c"AWS_LAMBDA_LOG_FORMAT",
    c"AWS_LAMBDA_LOG_LEVEL",
];
const FIELDS: usize = 12;

const NAME: usize = 0;
const VERSION: usize = 1;
const LOG_GROUP: usize = 2;
const LOG_STREAM: usize = 3;
const HANDLER: usize = 4;
const TASK_ROOT: usize = 5;
const REGION: usize = 6;
const INIT_TYPE: usize = 7;
const MEMORY: usize = 8;
const CONCURRENCY: usize = 9;
const LOG_FORMAT: usize = 10;
const LOG_LEVEL: usize = 11;

/// The span of a variable that is unset (or not UTF-8): it selects nothing.
const UNSET: (u32, u32) = (1, 0);

/// The function's configuration from the environment, read once at start.
///
/// Missing or unparsable values fall back to defaults, never a panic: strings default to
/// empty, except the version (`$LATEST`); memory defaults to 128 MB (Lambda's default size)
/// and the concurrency to 1. Emulators set only some of these (`cargo lambda` sets no log
/// group or stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The variables' values as they were at start, one after another: one allocation for
    /// all of them.
    text: String,
    /// Where each value is in `text`; [`UNSET`] for a variable that was unset or not UTF-8.
    spans: [(u32, u32); FIELDS],
    memory_mb: u32,
    max_concurrency: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            text: String::new(),
            spans: [UNSET; FIELDS],
            memory_mb: 128,
            max_concurrency: 1,
        }
    }
}

impl Config {
    /// Reads `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_VERSION`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_LOG_GROUP_NAME`,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`, `_HANDLER`, `LAMBDA_TASK_ROOT`, `AWS_REGION`,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`, `AWS_LAMBDA_MAX_CONCURRENCY`,
    /// `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`. Costs twelve environment lookups
    /// and one string for all the values; [`crate::run`] does it once.
    pub fn from_env() -> Self {
        let mut config = Config::default();
        for (span, name) in config.spans.iter_mut().zip(VARS) {
            let start = config.text.len() as u32;
            if env::var_into(name, &mut config.text) {
                *span = (start, config.text.len() as u32);
            }
        }
        config.memory_mb = positive(config.text(MEMORY, "")).unwrap_or(config.memory_mb);
        config.max_concurrency =
            positive(config.text(CONCURRENCY, "")).unwrap_or(config.max_concurrency);
        config
    }

    /// The text field `i`, or `default` when unset or not UTF-8.
    fn text(&self, i: usize, default: &'static str) -> &str {
        let (start, end) = self.spans.get(i).copied().unwrap_or(UNSET);
        self.text
            .get(start as usize..end as usize)
            .unwrap_or(default)
    }

    /// `AWS_LAMBDA_FUNCTION_NAME`, or empty.
    pub fn function_name(&self) -> &str {
        self.text(NAME, "")
    }

    /// `AWS_LAMBDA_FUNCTION_VERSION`, or `$LATEST`.
    pub fn function_version(&self) -> &str {
        self.text(VERSION, "$LATEST")
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB, or 128 when missing or not a positive number.
    pub fn memory_mb(&self) -> u32 {
        self.memory_mb
    }

    /// `AWS_LAMBDA_LOG_GROUP_NAME`, or empty.
    pub fn log_group(&self) -> &str {
        self.text(LOG_GROUP, "")
    }

    /// `AWS_LAMBDA_LOG_STREAM_NAME`, or empty.
    pub fn log_stream(&self) -> &str {
        self.text(LOG_STREAM, "")
    }

    /// `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`, Lambda's logging controls), or empty.
    pub fn log_format(&self) -> &str {
        self.text(LOG_FORMAT, "")
    }

    /// `AWS_LAMBDA_LOG_LEVEL` (`TRACE` to `FATAL`), or empty.
    pub fn log_level(&self) -> &str {
        self.text(LOG_LEVEL, "")
    }

    /// `_HANDLER`, the handler string configured for the function, or empty.
    pub fn handler(&self) -> &str {
        self.text(HANDLER, "")
    }

    /// `LAMBDA_TASK_ROOT`, where the function's code is (`/var/task` on Lambda), or empty.
    pub fn task_root(&self) -> &str {
        self.text(TASK_ROOT, "")
    }

    /// `AWS_REGION`, or empty.
    pub fn region(&self) -> &str {
        self.text(REGION, "")
    }

    /// `AWS_LAMBDA_INITIALIZATION_TYPE` (`on-demand`, `provisioned-concurrency`,
    /// `snap-start`), or empty.
    pub fn initialization_type(&self) -> &str {
        self.text(INIT_TYPE, "")
    }

    /// `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances), or 1.
    pub fn max_concurrency(&self) -> u32 {
        self.max_concurrency
    }
}

/// A positive decimal number that fits in u32, surrounding whitespace allowed.
fn positive(text: &str) -> Option<u32> {
    let n = crate::parse::parse_decimal(text.as_bytes().trim_ascii())?;
    u32::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_lambda_like() {
        let c = Config::default();
        assert_eq!(
            (c.function_name(), c.function_version(), c.memory_mb()),
            ("", "$LATEST", 128)
        );
        assert_eq!(
            (c.log_group(), c.log_stream(), c.max_concurrency()),
            ("", "", 1)
        );
    }

    #[test]
    fn every_text_field_has_its_variable() {
        assert_eq!(
            (VARS[NAME], VARS[MEMORY], VARS[CONCURRENCY]),
            (
                c"AWS_LAMBDA_FUNCTION_NAME",
                c"AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                c"AWS_LAMBDA_MAX_CONCURRENCY"
            )
        );
        assert_eq!(
            (VARS[VERSION], VARS[INIT_TYPE]),
            (
                c"AWS_LAMBDA_FUNCTION_VERSION",
                c"AWS_LAMBDA_INITIALIZATION_TYPE"
            )
        );
    }

    #[test]
    fn set_empty_and_unset_values_are_told_apart() {
        let config = Config {
            text: "my-fn".into(),
            spans: {
                let mut spans = [UNSET; FIELDS];
                spans[NAME] = (0, 5);
                spans[VERSION] = (5, 5);
                spans
            },
            ..Config::default()
        };
        assert_eq!(
            (config.function_name(), config.function_version()),
            ("my-fn", "")
        );
        assert_eq!(Config::default().function_version(), "$LATEST");
    }

    #[test]
    fn numbers_must_be_positive_decimals() {
        assert_eq!(positive(" 3008\n"), Some(3008));
        assert_eq!(positive("0"), None);
        assert_eq!(positive("-1"), None);
        assert_eq!(positive("1.5"), None);
        assert_eq!(positive("99999999999"), None);
        assert_eq!(positive(""), None);
    }
}

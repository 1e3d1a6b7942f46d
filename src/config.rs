//! The function's configuration, read once from the environment Lambda sets.

use alloc::string::String;

use crate::sys::env;

/// The environment variables behind [`Config`]'s text fields, in field order, separated by
/// spaces (one string rather than an array of them: no table of pointers to relocate).
const TEXT_VARS: &str = "AWS_LAMBDA_FUNCTION_NAME AWS_LAMBDA_FUNCTION_VERSION \
    AWS_LAMBDA_LOG_GROUP_NAME AWS_LAMBDA_LOG_STREAM_NAME _HANDLER LAMBDA_TASK_ROOT AWS_REGION \
    AWS_LAMBDA_INITIALIZATION_TYPE AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
const TEXT_FIELDS: usize = 9;

const NAME: usize = 0;
const VERSION: usize = 1;
const LOG_GROUP: usize = 2;
const LOG_STREAM: usize = 3;
const HANDLER: usize = 4;
const TASK_ROOT: usize = 5;
const REGION: usize = 6;
const INIT_TYPE: usize = 7;
const MEMORY: usize = 8;

/// The function's configuration from the environment, read once at start.
///
/// Missing or unparsable values fall back to defaults, never a panic: strings default to
/// empty, except the version (`$LATEST`); memory defaults to 128 MB (Lambda's default size)
/// and the concurrency to 1. Emulators set only some of these (`cargo lambda` sets no log
/// group or stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The variables as they were at start (`None` when unset or not UTF-8).
    text: [Option<String>; TEXT_FIELDS],
    memory_mb: u32,
    max_concurrency: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            text: Default::default(),
            memory_mb: 128,
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
        let mut config = Config::default();
        let names = TEXT_VARS.split_ascii_whitespace();
        for (value, name) in config.text.iter_mut().zip(names) {
            *value = env::var(name);
        }
        config.memory_mb = positive(config.text[MEMORY].as_ref()).unwrap_or(config.memory_mb);
        config.max_concurrency = positive(env::var("AWS_LAMBDA_MAX_CONCURRENCY").as_ref())
            .unwrap_or(config.max_concurrency);
        config
    }

    /// The text field `i`, or `default` when unset or not UTF-8.
    fn text(&self, i: usize, default: &'static str) -> &str {
        self.text[i].as_deref().unwrap_or(default)
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
fn positive(text: Option<&String>) -> Option<u32> {
    let n = crate::parse::parse_decimal(text?.as_bytes().trim_ascii())?;
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
        let names: Vec<&str> = TEXT_VARS.split_ascii_whitespace().collect();
        assert_eq!(names.len(), TEXT_FIELDS);
        assert_eq!(
            (names[NAME], names[MEMORY]),
            (
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
            )
        );
    }

    #[test]
    fn numbers_must_be_positive_decimals() {
        let positive = |text: &str| positive(Some(&text.into()));
        assert_eq!(positive(" 3008\n"), Some(3008));
        assert_eq!(positive("0"), None);
        assert_eq!(positive("-1"), None);
        assert_eq!(positive("1.5"), None);
        assert_eq!(positive("99999999999"), None);
        assert_eq!(positive(""), None);
        assert_eq!(super::positive(None), None);
    }
}

//! The configuration, read once from the environment: Lambda's `_HANDLER` and
//! `LAMBDA_TASK_ROOT`, and tinylambda-exec's own `TINYLAMBDA_*` variables.

use std::env::{self, VarError};
use std::path::PathBuf;

use tinylambda::Error;

use crate::failure::{CONFIG_INVALID, error};

/// How long the web adapter waits for the server's port by default: within Lambda's 10 s
/// init phase, with time to spare.
pub(crate) const DEFAULT_WAIT_MS: u64 = 8_000;

/// Everything tinylambda-exec reads from the environment.
pub(crate) struct Settings {
    /// `_HANDLER`.
    pub(crate) handler: String,
    /// `LAMBDA_TASK_ROOT`, or the current directory.
    pub(crate) task_root: PathBuf,
    /// `TINYLAMBDA_PERSISTENT`.
    pub(crate) persistent: bool,
    /// `TINYLAMBDA_BASH`, or `bash`.
    pub(crate) bash: String,
    /// `TINYLAMBDA_PERL`, or `perl`.
    pub(crate) perl: String,
    /// The web adapter, when `TINYLAMBDA_WEB_URL` is set.
    pub(crate) web: Option<WebSettings>,
}

/// The web adapter's configuration.
pub(crate) struct WebSettings {
    /// `TINYLAMBDA_WEB_URL`: where each event is POSTed.
    pub(crate) url: String,
    /// `TINYLAMBDA_WEB_START`: a command run once with `/bin/sh -c` at init.
    pub(crate) start: Option<String>,
    /// `TINYLAMBDA_WEB_WAIT_MS`: how long to wait for the port to accept connections.
    pub(crate) wait_ms: u64,
}

impl Settings {
    /// Reads the environment.
    ///
    /// # Errors
    /// `Runtime.ConfigInvalid` for a value that is not UTF-8, a `TINYLAMBDA_PERSISTENT`
    /// that is not a yes or a no, or a `TINYLAMBDA_WEB_WAIT_MS` that is not a number.
    pub(crate) fn from_env() -> Result<Settings, Error> {
        let web = match var("TINYLAMBDA_WEB_URL")? {
            Some(url) => Some(WebSettings {
                url,
                start: var("TINYLAMBDA_WEB_START")?,
                wait_ms: match var("TINYLAMBDA_WEB_WAIT_MS")? {
                    None => DEFAULT_WAIT_MS,
                    Some(ms) => tinylambda::parse::parse_decimal(ms.trim().as_bytes())
                        .ok_or_else(|| invalid("TINYLAMBDA_WEB_WAIT_MS", &ms, "milliseconds"))?,
                },
            }),
            None => None,
        };
        Ok(Settings {
            handler: var("_HANDLER")?.unwrap_or_default(),
            task_root: var("LAMBDA_TASK_ROOT")?.map_or_else(|| PathBuf::from("."), PathBuf::from),
            persistent: flag("TINYLAMBDA_PERSISTENT")?,
            bash: var("TINYLAMBDA_BASH")?.unwrap_or_else(|| "bash".into()),
            perl: var("TINYLAMBDA_PERL")?.unwrap_or_else(|| "perl".into()),
            web,
        })
    }
}

/// A variable's value; `None` when unset or empty.
fn var(name: &str) -> Result<Option<String>, Error> {
    match env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => {
            Err(error(CONFIG_INVALID, &[name.as_bytes(), b" is not UTF-8"]))
        }
    }
}

/// A yes/no variable: `1`, `true`, `yes`, `on`, or `0`, `false`, `no`, `off` (any case),
/// unset or empty for no.
fn flag(name: &str) -> Result<bool, Error> {
    let Some(value) = var(name)? else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(name, &value, "1 or 0")),
    }
}

fn invalid(name: &str, value: &str, expected: &str) -> Error {
    error(
        CONFIG_INVALID,
        &[
            name.as_bytes(),
            b"=",
            value.as_bytes(),
            b": expected ",
            expected.as_bytes(),
        ],
    )
}

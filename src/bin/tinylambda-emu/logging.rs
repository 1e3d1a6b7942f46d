//! Lambda's logging controls, as `--log-format` and `--log-level` set them
//! (`monitoring-cloudwatchlogs-logformat.html`, `monitoring-cloudwatchlogs-log-level.html`;
//! the API's `LoggingConfig`: `LogFormat` is `JSON` or `Text`, `ApplicationLogLevel` one of
//! `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`).
//!
//! - `--log-format json`: the runtime gets `AWS_LAMBDA_LOG_FORMAT=JSON` and
//!   `AWS_LAMBDA_LOG_LEVEL` (`--log-level`, default `INFO`, the default application log
//!   level), and the emulator writes its platform lines as JSON objects
//!   ([`crate::sandbox::report`]).
//! - `--log-format text`: `AWS_LAMBDA_LOG_FORMAT=Text`, no level, text lines as ever.
//! - Neither: no variable is set, text lines (a function with no logging configuration).
//! - `--log-level` without `--log-format json` is a usage error: Lambda filters by level
//!   only in JSON format ("To use log-level filtering, your function must be configured to
//!   use the JSON log format").

/// The variable `--log-format` sets.
pub const FORMAT_VAR: &str = "AWS_LAMBDA_LOG_FORMAT";

/// The variable `--log-level` sets.
pub const LEVEL_VAR: &str = "AWS_LAMBDA_LOG_LEVEL";

pub use tinylambda::{Level, LogFormat};

/// Parses `--log-format`'s value (`json` or `text`, any case).
pub fn parse_format(text: &str) -> Result<LogFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        _ => Err(format!("--log-format expects json or text, got {text:?}")),
    }
}

/// The value of `AWS_LAMBDA_LOG_FORMAT` for `format`.
pub fn format_value(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Text => "Text",
        LogFormat::Json => "JSON",
    }
}

/// Parses `--log-level`'s value (a level's name, any case).
pub fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text.as_bytes()).ok_or_else(|| {
        format!("--log-level expects TRACE, DEBUG, INFO, WARN, ERROR or FATAL, got {text:?}")
    })
}

/// The logging configuration of the function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Logging {
    /// `--log-format`, if given.
    pub format: Option<LogFormat>,
    /// The application log level (JSON format only).
    pub level: Option<Level>,
}

impl Logging {
    /// The configuration of `--log-format` and `--log-level`, checked together.
    pub fn new(format: Option<LogFormat>, level: Option<Level>) -> Result<Logging, String> {
        match (format, level) {
            (Some(LogFormat::Json), level) => Ok(Logging {
                format,
                level: Some(level.unwrap_or(Level::Info)),
            }),
            (_, Some(_)) => Err(
                "--log-level needs --log-format json (Lambda filters logs by level only in JSON format)"
                    .into(),
            ),
            (format, None) => Ok(Logging {
                format,
                level: None,
            }),
        }
    }

    /// The format the emulator's platform lines are written in.
    pub fn platform_format(self) -> LogFormat {
        self.format.unwrap_or(LogFormat::Text)
    }

    /// The variables the runtime gets.
    pub fn env(self) -> Vec<(&'static str, &'static str)> {
        let mut env = Vec::new();
        if let Some(format) = self.format {
            env.push((FORMAT_VAR, format_value(format)));
        }
        if let Some(level) = self.level {
            env.push((LEVEL_VAR, level.as_str()));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_levels_set_lambdas_variables() {
        let json = Logging::new(Some(parse_format("JSON").unwrap()), None).unwrap();
        assert_eq!(
            json.env(),
            [(FORMAT_VAR, "JSON"), (LEVEL_VAR, "INFO")],
            "INFO is the default level"
        );
        let debug = Logging::new(Some(LogFormat::Json), Some(parse_level("debug").unwrap()));
        assert_eq!(
            debug.unwrap().env(),
            [(FORMAT_VAR, "JSON"), (LEVEL_VAR, "DEBUG")]
        );
        let text = Logging::new(Some(parse_format("text").unwrap()), None).unwrap();
        assert_eq!(text.env(), [(FORMAT_VAR, "Text")]);
        assert_eq!(text.platform_format(), LogFormat::Text);
        assert!(Logging::default().env().is_empty());
        assert_eq!(Logging::default().platform_format(), LogFormat::Text);
    }

    #[test]
    fn bad_values_are_one_line_each() {
        for e in [
            parse_format("xml").unwrap_err(),
            parse_level("loud").unwrap_err(),
            Logging::new(None, Some(Level::Warn)).unwrap_err(),
            Logging::new(Some(LogFormat::Text), Some(Level::Warn)).unwrap_err(),
        ] {
            assert!(e.starts_with("--log-") && !e.contains('\n'), "{e}");
        }
    }
}

//! Lambda's platform lines for an invocation: `START` when the runtime gets the event, `END`
//! and `REPORT` when the invocation is over (`monitoring-cloudwatchlogs.html`), or in JSON
//! format (`--log-format json`) the records `platform.start`, `platform.runtimeDone` and
//! `platform.report` ([`super::platform_json`]). Built under the sandbox's lock as plain
//! values, written (with a `/proc` read for the memory figure) after it is released.

use std::time::Duration;

use super::platform_json;
use crate::clock::unix_millis;
use crate::ids::RequestId;
use crate::logging::LogFormat;
use crate::process::tree::peak_rss_kib;

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It succeeded, with a response of this many bytes.
    Success {
        /// The response's size (a stream's: every byte of it).
        produced: u64,
    },
    /// The function failed (`/error`, a response over the limit, the runtime ended), with
    /// this error type.
    Error(String),
    /// It ran past its deadline.
    Timeout,
}

impl Status {
    /// The status as Lambda's telemetry names it: `success`, `error` or `timeout` (AWS's
    /// emulator gives a function's error `error`, keeping `failure` for the platform's own:
    /// `internal/lambda/rapid/handlers.go` `handleReset`,
    /// `internal/lambda-managed-instances/interop/error_utils.go`).
    pub fn name(&self) -> &'static str {
        match self {
            Status::Success { .. } => "success",
            Status::Error(_) => "error",
            Status::Timeout => "timeout",
        }
    }
}

/// One `END` + `REPORT` pair, waiting to be written.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The invocation.
    pub id: RequestId,
    /// From the event being sent to the end of the invocation.
    pub duration: Duration,
    /// How it ended.
    pub status: Status,
    /// The function's memory size.
    pub memory_mb: u64,
    /// The runtime whose peak resident set to report, if it still runs.
    pub pid: Option<i32>,
    /// The runtime's init duration, on the first invocation of a runtime only.
    pub init: Option<Duration>,
}

impl Report {
    /// The lines, in `format` (`Max Memory Used` read now).
    pub fn lines(&self, format: LogFormat) -> String {
        let max_memory_mb = self
            .pid
            .and_then(peak_rss_kib)
            .map(|kib| kib.div_ceil(1024));
        match format {
            LogFormat::Text => self.text(max_memory_mb),
            LogFormat::Json => {
                let now = unix_millis();
                format!(
                    "{}\n{}",
                    platform_json::runtime_done(self, now),
                    platform_json::report(self, max_memory_mb, now)
                )
            }
        }
    }

    /// The billed duration: whole milliseconds, rounded up, at least 1.
    pub fn billed_ms(&self) -> u64 {
        (self.duration.as_secs_f64() * 1e3).ceil().max(1.0) as u64
    }

    /// `END` and `REPORT`, as Lambda writes them in text format.
    fn text(&self, max_memory_mb: Option<u64>) -> String {
        let ms = self.duration.as_secs_f64() * 1e3;
        let id = self.id.as_str();
        let mut line = format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
            self.billed_ms(),
            self.memory_mb,
        );
        if let Some(mb) = max_memory_mb {
            line.push_str(&format!("\tMax Memory Used: {mb} MB"));
        }
        if let Some(init) = self.init {
            line.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1e3
            ));
        }
        match self.status {
            Status::Success { .. } => {}
            Status::Error(_) => line.push_str("\tStatus: error"),
            Status::Timeout => line.push_str("\tStatus: timeout"),
        }
        line
    }
}

/// The `START` line of invocation `id` on function version `version`, in `format`.
pub fn start_line(id: &RequestId, version: &str, format: LogFormat) -> String {
    match format {
        LogFormat::Text => format!("START RequestId: {} Version: {version}", id.as_str()),
        LogFormat::Json => platform_json::start(id, version, unix_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Ids;

    #[test]
    fn report_lines_have_lambdas_fields() {
        let id = Ids::new().request_id();
        let report = Report {
            id,
            duration: Duration::from_micros(1_234_560),
            status: Status::Timeout,
            memory_mb: 128,
            pid: None,
            init: Some(Duration::from_millis(12)),
        };
        let lines = report.lines(LogFormat::Text);
        let expected = format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\tMemory Size: 128 MB\tInit Duration: 12.00 ms\tStatus: timeout",
            id = id.as_str()
        );
        assert_eq!(lines, expected);
        let quick = Report {
            duration: Duration::from_micros(10),
            status: Status::Success { produced: 2 },
            init: None,
            ..report
        };
        assert!(
            quick
                .lines(LogFormat::Text)
                .ends_with("Billed Duration: 1 ms\tMemory Size: 128 MB")
        );
        assert_eq!(
            start_line(&id, "$LATEST", LogFormat::Text),
            format!("START RequestId: {} Version: $LATEST", id.as_str())
        );
    }
}

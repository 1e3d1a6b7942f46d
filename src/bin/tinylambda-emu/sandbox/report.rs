//! Lambda's log lines for an invocation: `START` when the runtime gets the event, `END` and
//! `REPORT` when the invocation is over. Built under the sandbox's lock as plain values,
//! written (with a `/proc` read for the memory figure) after it is released.

use std::time::Duration;

use crate::ids::RequestId;
use crate::process::tree::peak_rss_kib;

/// How an invocation ended, for the `Status:` field of its `REPORT` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It succeeded: no `Status:` field.
    Success,
    /// The function failed (`/error`, a response over the limit, the runtime ended).
    Error,
    /// It ran past its deadline.
    Timeout,
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
    /// The two lines, as Lambda writes them (`Max Memory Used` read now).
    pub fn lines(&self) -> String {
        let ms = self.duration.as_secs_f64() * 1e3;
        let id = self.id.as_str();
        let mut line = format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
            ms.ceil().max(1.0) as u64,
            self.memory_mb,
        );
        if let Some(kib) = self.pid.and_then(peak_rss_kib) {
            line.push_str(&format!("\tMax Memory Used: {} MB", kib.div_ceil(1024)));
        }
        if let Some(init) = self.init {
            line.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1e3
            ));
        }
        match self.status {
            Status::Success => {}
            Status::Error => line.push_str("\tStatus: error"),
            Status::Timeout => line.push_str("\tStatus: timeout"),
        }
        line
    }
}

/// The `START` line of invocation `id` on function version `version`.
pub fn start_line(id: &RequestId, version: &str) -> String {
    format!("START RequestId: {} Version: {version}", id.as_str())
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
        let lines = report.lines();
        let expected = format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\tMemory Size: 128 MB\tInit Duration: 12.00 ms\tStatus: timeout",
            id = id.as_str()
        );
        assert_eq!(lines, expected);
        let quick = Report {
            duration: Duration::from_micros(10),
            status: Status::Success,
            init: None,
            ..report
        };
        assert!(
            quick
                .lines()
                .ends_with("Billed Duration: 1 ms\tMemory Size: 128 MB")
        );
    }
}

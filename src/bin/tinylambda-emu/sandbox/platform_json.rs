//! Lambda's platform lines in JSON format (`--log-format json`): one object per line,
//! `{"time":…,"type":…,"record":{…}}`, as Lambda writes its system logs when a function's
//! log format is JSON (`monitoring-cloudwatchlogs-logformat.html`), the records shaped as
//! the Telemetry API's events (`telemetry-schema-reference.html`):
//!
//! - `platform.start`: `requestId`, `version`;
//! - `platform.runtimeDone`: `requestId`, `status` (`success`, `error` with its
//!   `errorType`, `timeout`), `metrics` (`durationMs`, and `producedBytes` for a response);
//! - `platform.report`: `requestId`, `metrics` (`durationMs`, `billedDurationMs`,
//!   `memorySizeMB`, `maxMemoryUsedMB` when it could be read, `initDurationMs` on a cold
//!   start: the figures of the text `REPORT` line), `status`, `errorType`.
//!
//! `time` is ISO 8601 in UTC with milliseconds; durations have three decimals, as AWS's
//! emulator writes them (`internal/lambda-managed-instances/interop/events_api.go`,
//! `ReportDurationMs`). The optional `tracing` and `spans` are left out.

use std::time::Duration;

use super::report::{Report, Status};
use crate::clock::iso8601;
use crate::ids::RequestId;
use crate::json::{push_key, push_string};

/// `{"time":…,"type":…,"record":` with the record to follow, then `}` from [`end`].
fn begin(kind: &str, now_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"time\":");
    push_string(&mut out, &iso8601(now_ms));
    out.extend_from_slice(b",\"type\":");
    push_string(&mut out, kind);
    out.extend_from_slice(b",\"record\":{");
    out
}

fn end(mut out: Vec<u8>) -> String {
    out.extend_from_slice(b"}}");
    // Built from strings and digits only.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `"key":12.345`.
fn push_ms(out: &mut Vec<u8>, key: &str, duration: Duration) {
    push_key(out, key);
    out.extend_from_slice(format!("{:.3}", duration.as_secs_f64() * 1e3).as_bytes());
}

/// Appends `"key":n`.
fn push_number(out: &mut Vec<u8>, key: &str, n: u64) {
    push_key(out, key);
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Appends `"requestId":…`.
fn push_id(out: &mut Vec<u8>, id: &RequestId) {
    push_key(out, "requestId");
    push_string(out, id.as_str());
}

/// Appends `,"status":…` and, for an error, `,"errorType":…`.
fn push_status(out: &mut Vec<u8>, status: &Status) {
    out.push(b',');
    push_key(out, "status");
    push_string(out, status.name());
    if let Status::Error(error_type) = status {
        out.push(b',');
        push_key(out, "errorType");
        push_string(out, error_type);
    }
}

/// The `platform.start` line of invocation `id` on `version`.
pub fn start(id: &RequestId, version: &str, now_ms: u64) -> String {
    let mut out = begin("platform.start", now_ms);
    push_id(&mut out, id);
    out.push(b',');
    push_key(&mut out, "version");
    push_string(&mut out, version);
    end(out)
}

/// The `platform.runtimeDone` line of `report`.
pub fn runtime_done(report: &Report, now_ms: u64) -> String {
    let mut out = begin("platform.runtimeDone", now_ms);
    push_id(&mut out, &report.id);
    push_status(&mut out, &report.status);
    out.extend_from_slice(b",\"metrics\":{");
    push_ms(&mut out, "durationMs", report.duration);
    if let Status::Success { produced } = report.status {
        out.push(b',');
        push_number(&mut out, "producedBytes", produced);
    }
    out.push(b'}');
    end(out)
}

/// The `platform.report` line of `report`, with the runtime's peak memory if it was read.
pub fn report(report: &Report, max_memory_mb: Option<u64>, now_ms: u64) -> String {
    let mut out = begin("platform.report", now_ms);
    push_id(&mut out, &report.id);
    out.extend_from_slice(b",\"metrics\":{");
    push_ms(&mut out, "durationMs", report.duration);
    out.push(b',');
    push_number(&mut out, "billedDurationMs", report.billed_ms());
    out.push(b',');
    push_number(&mut out, "memorySizeMB", report.memory_mb);
    if let Some(mb) = max_memory_mb {
        out.push(b',');
        push_number(&mut out, "maxMemoryUsedMB", mb);
    }
    if let Some(init) = report.init {
        out.push(b',');
        push_ms(&mut out, "initDurationMs", init);
    }
    out.push(b'}');
    push_status(&mut out, &report.status);
    end(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Ids;

    #[test]
    fn records_have_the_telemetry_apis_shapes() {
        let id = Ids::new().request_id();
        let at = 1_796_223_845_123; // 2026-12-02T15:04:05.123Z
        assert_eq!(
            start(&id, "$LATEST", at),
            format!(
                r#"{{"time":"2026-12-02T15:04:05.123Z","type":"platform.start","record":{{"requestId":"{}","version":"$LATEST"}}}}"#,
                id.as_str()
            )
        );
        let r = Report {
            id,
            duration: Duration::from_micros(1_234_567),
            status: Status::Success { produced: 17 },
            memory_mb: 128,
            pid: None,
            init: Some(Duration::from_micros(12_500)),
        };
        assert_eq!(
            runtime_done(&r, at),
            format!(
                r#"{{"time":"2026-12-02T15:04:05.123Z","type":"platform.runtimeDone","record":{{"requestId":"{}","status":"success","metrics":{{"durationMs":1234.567,"producedBytes":17}}}}}}"#,
                id.as_str()
            )
        );
        assert_eq!(
            report(&r, Some(3), at),
            format!(
                r#"{{"time":"2026-12-02T15:04:05.123Z","type":"platform.report","record":{{"requestId":"{}","metrics":{{"durationMs":1234.567,"billedDurationMs":1235,"memorySizeMB":128,"maxMemoryUsedMB":3,"initDurationMs":12.500}},"status":"success"}}}}"#,
                id.as_str()
            )
        );
        let failed = Report {
            status: Status::Error("Function.\"Odd\"".into()),
            init: None,
            ..r
        };
        let line = runtime_done(&failed, at);
        assert!(
            line.contains(r#""status":"error","errorType":"Function.\"Odd\"","metrics":{"durationMs":1234.567}}"#),
            "{line}"
        );
        assert!(crate::json::validate(line.as_bytes()).is_ok());
        let line = report(&failed, None, at);
        assert!(
            line.ends_with(
                r#""memorySizeMB":128},"status":"error","errorType":"Function.\"Odd\""}}"#
            ),
            "{line}"
        );
    }
}

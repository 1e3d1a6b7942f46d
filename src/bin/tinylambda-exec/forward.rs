//! Where the relayed lines of a handler's log go, in the format Lambda's logging controls
//! set (`AWS_LAMBDA_LOG_FORMAT`, read once by the library):
//!
//! - Text: as they are, byte for byte.
//! - JSON: a line that is already a JSON object (see `json_object.rs`) as it is, byte for
//!   byte (Lambda filters it by its own `level` key, if it has one); any other line wrapped
//!   by the library into `{"timestamp","level":"INFO","requestId","tenantId","message"}`
//!   records of the invocation ([`tinylambda::log_for`]), its bytes that are not UTF-8
//!   replaced by U+FFFD. The library writes nothing below `AWS_LAMBDA_LOG_LEVEL`, so a
//!   level above `INFO` drops wrapped lines, never JSON ones.

use tinylambda::{Context, Level, LogFormat};

use crate::json_object;
use crate::log::write_stderr;

/// A relayed line longer than this is forwarded in pieces rather than held back; in JSON
/// format it is always wrapped, never taken for a JSON object.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// The invocation relayed lines are about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub(crate) request_id: String,
    /// `Lambda-Runtime-Aws-Tenant-Id`, when the invocation has one.
    pub(crate) tenant_id: Option<String>,
}

/// How a record is written: the message of a line that is not a JSON object, about the
/// open invocation if any.
pub(crate) type Record = fn(Option<&Invocation>, &str);

/// Sends relayed lines on in the configured format.
pub(crate) struct Forward {
    /// Where bytes go as they are: our stderr.
    raw: fn(&[u8]),
    /// JSON format: how a line that is not a JSON object is written. `None` in text format.
    record: Option<Record>,
    /// The invocation lines are about, since [`Forward::begin`].
    invocation: Option<Invocation>,
    /// Part of the current line already went out as pieces (it is too long).
    continued: bool,
}

impl Forward {
    /// Forwarding to our stderr in the function's log format.
    pub(crate) fn to_log() -> Forward {
        let record: Option<Record> = match tinylambda::log_format() {
            LogFormat::Json => Some(record),
            LogFormat::Text => None,
        };
        Forward::with(write_stderr, record)
    }

    /// Forwarding raw bytes to `raw` and, in JSON format (`record` given), records to
    /// `record`.
    pub(crate) fn with(raw: fn(&[u8]), record: Option<Record>) -> Forward {
        Forward {
            raw,
            record,
            invocation: None,
            continued: false,
        }
    }

    /// Whether lines are forwarded as they are (text format).
    pub(crate) fn is_text(&self) -> bool {
        self.record.is_none()
    }

    /// Makes the lines from now on about the invocation of `ctx`.
    pub(crate) fn begin(&mut self, ctx: &Context<'_>) {
        let invocation = self.invocation.get_or_insert_with(Invocation::default);
        invocation.request_id.clear();
        invocation.request_id.push_str(ctx.request_id());
        invocation.tenant_id = ctx.tenant_id().map(str::to_owned);
    }

    /// Forwards `lines`, whole lines each ending with a line break: in text format in one
    /// write, in JSON format one by one.
    pub(crate) fn lines(&mut self, lines: &[u8]) {
        let Some(record) = self.record else {
            return (self.raw)(lines);
        };
        for line in lines.split_inclusive(|&b| b == b'\n') {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            if !self.continued && text.len() <= MAX_LINE && json_object::is_object(text) {
                (self.raw)(line);
            } else {
                record(self.invocation.as_ref(), &String::from_utf8_lossy(text));
            }
            self.continued = false;
        }
    }

    /// The current line has ended (its stream, or the invocation, did) with nothing left
    /// to forward: the next bytes start a new line.
    pub(crate) fn line_ended(&mut self) {
        self.continued = false;
    }

    /// JSON format: forwards `piece`, the start of a line too long to hold (ending at a
    /// character boundary), as records; the rest of the line follows as records too.
    pub(crate) fn piece(&mut self, piece: &[u8]) {
        if let Some(record) = self.record {
            record(self.invocation.as_ref(), &String::from_utf8_lossy(piece));
            self.continued = true;
        }
    }
}

/// Writes `message` as an `INFO` record of `invocation` (with no request id outside one)
/// through the library, the one writer of records.
fn record(invocation: Option<&Invocation>, message: &str) {
    match invocation {
        Some(i) => tinylambda::log_for(Level::Info, &i.request_id, i.tenant_id.as_deref(), message),
        None => tinylambda::log(Level::Info, message),
    }
}

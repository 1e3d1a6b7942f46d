//! The echo that also logs: one `INFO` record per event (a `WARN` one for an empty event),
//! in the format and from the level Lambda's logging controls set (`AWS_LAMBDA_LOG_FORMAT`,
//! `AWS_LAMBDA_LOG_LEVEL`), with the invocation's request id. `size-report/run` prices the
//! logging API with it (its bytes over the echo's).

use tinylambda::{Context, Error, Level};

fn handler(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
    if event.is_empty() {
        ctx.warn("an empty event");
    } else {
        ctx.info("echoing the event");
    }
    Ok(event.to_vec())
}

fn main() {
    tinylambda::log(Level::Info, "echo with logs: starting");
    tinylambda::run(handler);
}

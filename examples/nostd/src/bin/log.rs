//! The echo without std that also logs: one `INFO` record per event (a `WARN` one for an
//! empty event), in the format and from the level Lambda's logging controls set. Built with
//! the echo (`--bin log`); `size-report/run` prices the logging API with it.

#![no_std]
#![no_main]
extern crate alloc;
use alloc::vec::Vec;
use tinylambda::{Context, Error};

fn handler(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
    if event.is_empty() {
        ctx.warn("an empty event");
    } else {
        ctx.info("echoing the event");
    }
    Ok(event.to_vec())
}

tinylambda::main!(handler);

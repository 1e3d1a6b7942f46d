//! Per-call mode: a fresh child per invocation, the event on its stdin (and, for a shell
//! function, as `$1`), the context in its environment, its stdout the response.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use tinylambda::{Context, Error};

use crate::deadline::Deadline;
use crate::failure;
use crate::output::Collected;
use crate::pump::{End, Input, Until, pump};
use crate::relay::Relay;
use crate::spec::Spec;
use crate::vars;

/// The longest single argument Linux accepts (`MAX_ARG_STRLEN`, 32 pages, less the NUL).
const MAX_ARG: usize = 32 * 4096 - 1;

/// A handler run once per invocation.
pub(crate) struct PerCall {
    spec: Spec,
    relay: Relay,
    out: Collected,
}

impl PerCall {
    /// Per-call mode for `spec`: nothing starts until the first invocation.
    pub(crate) fn new(spec: Spec) -> PerCall {
        PerCall {
            spec,
            relay: Relay::new(),
            out: Collected::default(),
        }
    }

    /// Runs one invocation.
    pub(crate) fn invoke(&mut self, event: &[u8], ctx: &Context<'_>) -> Result<Vec<u8>, Error> {
        let deadline = Deadline::of(ctx);
        let mut cmd = self.spec.command();
        if self.spec.event_arg && event.len() <= MAX_ARG && !event.contains(&0) {
            cmd.arg(OsStr::from_bytes(event));
        }
        vars::each(ctx, |i, value| {
            let name = vars::NAMES.get(i).copied().unwrap_or_default();
            match value {
                Some(value) => cmd.env(name, OsStr::from_bytes(value)),
                None => cmd.env_remove(name),
            };
        });
        let mut child = self.spec.spawn(&mut cmd)?;
        self.out.clear();
        let mut input = Input::new(event, b"", true);
        self.relay.begin(ctx);
        let end = pump(
            &mut child,
            &mut input,
            &mut self.out,
            &mut self.relay,
            deadline,
            Until::Exit,
        );
        let status = child.reap();
        self.relay.finish();
        let tail = self.relay.tail();
        if end == End::TimedOut {
            return Err(failure::timed_out(&tail));
        }
        if !status.is_some_and(|s| s.success()) {
            return Err(failure::exited(status, &tail));
        }
        if !self.out.fits() {
            return Err(failure::too_large(Some(self.out.total())));
        }
        Ok(self.out.response(self.spec.trim))
    }
}

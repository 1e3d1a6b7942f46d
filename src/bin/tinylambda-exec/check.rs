//! The init-time check that a `.sh` or `.pl` file compiles (`bash -n`, `perl -c`): a syntax
//! error, or a Perl module that is missing, is one `/init/error` rather than a failure of
//! every invocation.

use std::os::unix::ffi::OsStrExt;

use tinylambda::{Error, Level};

use crate::deadline::Deadline;
use crate::failure::{SYNTAX_ERROR, error, status_text};
use crate::log::{decimal, log};
use crate::pump::{Discard, End, Input, Until, pump};
use crate::relay::Relay;
use crate::spec::Spec;

/// How long the check may take. `perl -c` runs `BEGIN` blocks and loads the modules the
/// file uses; this leaves most of Lambda's 10 s init phase to the rest.
const CHECK_MS: u64 = 5_000;

/// Checks that the handler's file compiles; `Ok` for an executable, which is not checked.
/// A check that cannot start, or does not finish in time, is logged and passes: it is an
/// aid, and the handler's own start reports what is wrong.
///
/// # Errors
/// `Runtime.UserCodeSyntaxError`, with the end of the interpreter's messages.
pub(crate) fn compiles(spec: &Spec) -> Result<(), Error> {
    let Some((mut cmd, file)) = spec.check_command() else {
        return Ok(());
    };
    let file = file.as_os_str().as_bytes();
    let mut child = match spec.spawn(&mut cmd) {
        Ok(child) => child,
        Err(e) => {
            log(
                Level::Warn,
                &[
                    b"the syntax check of ",
                    file,
                    b" did not start: ",
                    e.message().as_bytes(),
                ],
            );
            return Ok(());
        }
    };
    let mut relay = Relay::quiet();
    let mut nothing = Input::new(b"", b"", true);
    let deadline = Deadline::after_ms(CHECK_MS);
    let end = pump(
        &mut child,
        &mut nothing,
        &mut Discard,
        &mut relay,
        deadline,
        Until::Exit,
    );
    let status = child.reap();
    relay.finish();
    if end == End::TimedOut {
        log(
            Level::Warn,
            &[
                b"the syntax check of ",
                file,
                b" took over ",
                &decimal(CHECK_MS),
                b" ms: skipped",
            ],
        );
        return Ok(());
    }
    if status.is_some_and(|s| s.success()) {
        return Ok(());
    }
    let tail = relay.tail();
    if tail.is_empty() {
        return Err(error(
            SYNTAX_ERROR,
            &[file, b" does not compile (", &status_text(status), b")"],
        ));
    }
    Err(error(SYNTAX_ERROR, &[tail.as_bytes()]))
}

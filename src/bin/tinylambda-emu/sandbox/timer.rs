//! The sandbox's one timer: a thread that sleeps until the earliest deadline of the state
//! (the init limit, each invocation's deadline, queued ones included, the end of a
//! shutdown's grace period or of an exit's drain) and ends what is due. It owns every
//! deadline: no caller enforces one, so nothing a caller does (going away, not reading a
//! stream) can stretch a time limit.

use std::io;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::Sandbox;
use super::state::Effects;

/// Starts the timer of `sandbox` (it runs as long as the process).
pub fn start(sandbox: Arc<Sandbox>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("timer".into())
        .spawn(move || run(&sandbox))
        .map(drop)
}

fn run(sandbox: &Sandbox) -> ! {
    let mut s = sandbox.lock();
    loop {
        let now = Instant::now();
        match s.next_deadline() {
            Some(at) if at <= now => {
                let mut fx = Effects::new();
                s.expire(now, &mut fx);
                sandbox.settle(&mut s, &fx);
                drop(s);
                sandbox.run(fx);
                s = sandbox.lock();
            }
            Some(at) => {
                s = sandbox
                    .changed
                    .wait_timeout(s, at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            None => s = sandbox.wait(s),
        }
    }
}

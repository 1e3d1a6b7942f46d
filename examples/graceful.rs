//! Echo with a shutdown hook: Lambda sends SIGTERM before it retires the environment, and
//! the hook gets up to 500 ms. Needs `--features graceful-shutdown`.

use tinylambda::{Context, Error};

fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

fn main() {
    tinylambda::on_shutdown(|| {
        eprintln!("shutting down: flush buffers and close connections here")
    });
    tinylambda::run(handler);
}

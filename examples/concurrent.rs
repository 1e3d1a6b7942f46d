//! Echo on as many invocations at once as AWS_LAMBDA_MAX_CONCURRENCY allows (Lambda
//! Managed Instances). Needs `--features concurrent`.

use std::sync::atomic::{AtomicU64, Ordering};

use tinylambda::{Context, Error};

static SERVED: AtomicU64 = AtomicU64::new(0);

fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
    SERVED.fetch_add(1, Ordering::Relaxed);
    Ok(event.to_vec())
}

fn main() {
    tinylambda::run_concurrent(handler);
}

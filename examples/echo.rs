//! Returns the event byte for byte: the benchmark subject.
//!
//! Build the Lambda bootstrap with
//! `cargo build --profile tiny --target x86_64-unknown-linux-musl --example echo`.

use tinylambda::{Context, Error};

fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

fn main() {
    tinylambda::run(handler);
}

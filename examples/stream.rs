//! A streamed function URL response: status, headers and a cookie, then the body in lines
//! that reach the caller as they are written. Needs `--features streaming`.

use tinylambda::{Context, Error, Stream};

fn handler(event: &[u8], _ctx: &Context, out: &mut Stream) -> Result<(), Error> {
    out.http_response(200, &[("content-type", "text/plain")], &["visited=1"])?;
    for i in 1..=3 {
        writeln!(out, "line {i} of 3")?;
    }
    out.write_all(event)?;
    Ok(())
}

fn main() {
    tinylambda::run_streaming(handler);
}

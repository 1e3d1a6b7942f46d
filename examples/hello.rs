//! The API Gateway proxy reply from the classic bash custom-runtime tutorial:
//! `{"statusCode": 200, "body": "Hello World"}`, whatever the event.

use tinylambda::{Context, Error};

fn handler(_event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
    Ok(br#"{"statusCode": 200, "body": "Hello World"}"#.to_vec())
}

fn main() {
    tinylambda::run(handler);
}

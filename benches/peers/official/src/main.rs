//! Returns the event unchanged, written the way the `lambda_runtime` documentation shows a
//! handler: an async function from `LambdaEvent<Value>` to `Value`, run by `lambda_runtime::run`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(echo)).await
}

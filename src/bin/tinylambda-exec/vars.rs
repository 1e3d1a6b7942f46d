//! The invocation's context as a child sees it: four values, as environment variables
//! (per-call), as the context words of a frame (persistent), or as request headers (web).

use tinylambda::Context;

/// The environment variable names, in order.
pub(crate) const NAMES: [&str; 4] = [
    "LAMBDA_REQUEST_ID",
    "LAMBDA_DEADLINE_MS",
    "LAMBDA_INVOKED_FUNCTION_ARN",
    "_X_AMZN_TRACE_ID",
];

/// The Runtime API headers they come from, in the same order (the web adapter forwards
/// them under these names).
pub(crate) const HEADERS: [&str; 4] = [
    "Lambda-Runtime-Aws-Request-Id",
    "Lambda-Runtime-Deadline-Ms",
    "Lambda-Runtime-Invoked-Function-Arn",
    "Lambda-Runtime-Trace-Id",
];

/// Calls `each(i, value)` for the four values in order: `None` for a value the invocation
/// does not have, or one that is not a single word of visible ASCII free of the glob
/// characters `*?[(` (so a value can never split a frame's context words or a header, and
/// `export $context` in a shell never expands one into file names). Real request ids,
/// ARNs, deadlines and X-Ray headers always pass.
pub(crate) fn each(ctx: &Context<'_>, mut each: impl FnMut(usize, Option<&[u8]>)) {
    let mut digits = [0; 20];
    let deadline = ctx
        .deadline_ms()
        .map(|ms| tinylambda::request::decimal(ms, &mut digits));
    let values = [
        Some(ctx.request_id().as_bytes()),
        deadline,
        ctx.invoked_function_arn().map(str::as_bytes),
        ctx.trace_id().map(str::as_bytes),
    ];
    for (i, value) in values.into_iter().enumerate() {
        each(i, value.filter(|v| is_word(v)));
    }
}

/// Non-empty visible ASCII, no spaces, no glob characters.
fn is_word(value: &[u8]) -> bool {
    !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_graphic() && !b"*?[(".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylambda::{Config, Header};

    #[test]
    fn values_come_in_order_and_odd_ones_are_left_out() {
        let config = Config::default();
        let ctx = Context::new("req-1", &config)
            .with(Header::DeadlineMs, "1700000000000")
            .with(Header::InvokedFunctionArn, "arn with space")
            .with(Header::TraceId, "Root=1;Sampled=1");
        let mut seen = Vec::new();
        each(&ctx, |i, v| seen.push((NAMES[i], v.map(<[u8]>::to_vec))));
        assert_eq!(
            seen,
            [
                ("LAMBDA_REQUEST_ID", Some(b"req-1".to_vec())),
                ("LAMBDA_DEADLINE_MS", Some(b"1700000000000".to_vec())),
                ("LAMBDA_INVOKED_FUNCTION_ARN", None),
                ("_X_AMZN_TRACE_ID", Some(b"Root=1;Sampled=1".to_vec())),
            ]
        );
        let ctx = Context::new("id*1", &config).with(Header::TraceId, "Root=[1]");
        let mut seen = Vec::new();
        each(&ctx, |_, v| seen.push(v.is_some()));
        assert_eq!(seen, [false, false, false, false], "no glob characters");
    }
}

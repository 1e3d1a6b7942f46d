//! A bootstrap without std for `tests/nostd.rs`. What it does depends on the event:
//!
//! - `panic`: panics with a formatted message; `panic-static`: with a fixed one;
//! - `error`: fails with `Function.Probe`;
//! - `churn`: allocates and frees thousands of blocks, checking them (`churned`, or
//!   `corrupt`);
//! - `trace`: answers `_X_AMZN_TRACE_ID` as the environment has it (`-` when unset);
//! - `context`: answers `request id|remaining ms > 0|function name|memory|invocation id`;
//! - `size:N`: answers N bytes of `x`;
//! - anything else: answers the event.
//!
//! and on its environment: `PROBE_INIT_FAIL` makes `tinylambda::init` fail;
//! `PROBE_SHUTDOWN` registers an `on_shutdown` callback that says so on stderr;
//! `PROBE_MODE=stream` serves with `run_streaming` (each event byte a chunk, then the
//! outcome above as the rest: an error after the first byte goes out as trailers);
//! `PROBE_MODE=concurrent` serves with `run_concurrent`.
//!
//! It writes out by hand the three pieces `tinylambda::main!` would define: the C `main`
//! and the panic handler (in `probe.rs`, shared with the `probe-heap` binary of `heap.rs`)
//! and the allocator (here: the C library's `malloc`).

#![no_std]
#![no_main]
extern crate alloc;

mod probe;

/// 3. The allocator.
#[global_allocator]
static ALLOCATOR: tinylambda::nostd::Malloc = tinylambda::nostd::Malloc;

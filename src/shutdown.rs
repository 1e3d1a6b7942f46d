//! Graceful shutdown: a no-op internal extension, so that Lambda sends SIGTERM before it
//! stops the execution environment, and the user's callback run on that signal.
//!
//! Lambda sends SIGTERM to the runtime only when an extension is registered; otherwise the
//! process is simply killed. An internal extension may register for no events at all: it
//! then only has to exist, parked on `/extension/event/next`. That gives the runtime
//! process up to 500 ms between SIGTERM and SIGKILL.

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use alloc::borrow::ToOwned;
use alloc::boxed::Box;

use crate::conn::{Conn, Recv};
use crate::endpoint::Endpoint;
use crate::log;
use crate::log_line::Level;
use crate::parse;
use crate::request;
use crate::sys;

/// The name the extension registers under (internal extensions may use any unique name).
pub const EXTENSION_NAME: &str = "tinylambda-graceful-shutdown";

/// The registration body: no events (internal extensions cannot have SHUTDOWN anyway).
const REGISTER_BODY: &[u8] = b"{\"events\":[]}";

/// Replies from the Extensions API are small.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Arranges for `callback` to run when Lambda shuts the function down: registers a no-op
/// internal extension (so that Lambda sends SIGTERM) and leaves its
/// `/extension/event/next` request waiting on a connection of its own (the extension has
/// no events to wait for), starts a thread that waits for the signal, and then installs
/// SIGTERM and SIGINT handlers. On the signal, `callback` runs on that thread and the
/// process exits with status 0 (with std, after a panic in `callback` too). Call it once,
/// before [`crate::run`] (extensions must register before the first `/next`).
///
/// `callback` has 500 ms on Lambda before the process is killed; keep it short (flush
/// buffers, close connections). It runs on its own thread while the main loop may be
/// blocked on `/next`, so it must not rely on state the handler holds locked.
///
/// When the extension cannot be registered (an emulator without the Extensions API, say),
/// or the thread cannot start, one line is logged and the function carries on with
/// SIGTERM's default action (the process ends).
///
/// Cost: one extra connection, one thread blocked in a system call, and one register call at
/// start; nothing per invocation.
pub fn on_shutdown<F: FnOnce() + Send + 'static>(callback: F) {
    // Registered first: without an extension, SIGTERM and SIGINT keep their default action
    // (ending the process), rather than going to handlers nobody would act on.
    let Some(conn) = register() else {
        return;
    };
    // The `/event/next` request stays in flight for the life of the process, whatever
    // follows: the extension is then "waiting", which is all Lambda asks of it. Its
    // connection stays open because it is never dropped.
    core::mem::forget(conn);
    // The thread that acts on the signal first, then the handler: a handler whose pipe
    // nobody reads would swallow the signal.
    let unavailable = |why: &[u8]| {
        log::line(
            Level::Warn,
            None,
            b"graceful shutdown unavailable: \x01",
            &[why],
        )
    };
    let Some(fd) = sys::signals::open() else {
        return unavailable(b"cannot install the SIGTERM handler");
    };
    let waiter = sys::thread::spawn(Box::new(move || {
        sys::signals::wait(fd);
        // With std a panic in the callback is reported (std's hook) and the exit below
        // still happens: the thread's entry is a C function, which a panic must not unwind
        // out of. Without std a panic ends the process through the program's handler.
        #[cfg(feature = "std")]
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
        #[cfg(not(feature = "std"))]
        callback();
        sys::exit(0)
    }));
    if !waiter {
        return unavailable(b"cannot start its thread");
    }
    if !sys::signals::handle() {
        // The thread waits on for a signal that will not come: harmless.
        unavailable(b"cannot install the SIGTERM handler");
    }
}

/// Registers the extension and sends its first `/event/next`; returns its connection.
/// `None` (after logging why) when that fails.
fn register() -> Option<Conn> {
    let mut value = alloc::string::String::new();
    if !sys::env::var_into(c"AWS_LAMBDA_RUNTIME_API", &mut value) {
        return None;
    }
    let endpoint = Endpoint::parse(&value).ok()?;
    let mut conn = Conn::new(&endpoint);
    let mut recv = Recv::new();
    conn.prepare_with(|buf, prefix, authority| {
        request::write_extension_register(
            buf,
            prefix,
            authority,
            EXTENSION_NAME,
            REGISTER_BODY.len(),
        )
    });
    if conn
        .exchange(&mut recv, Some(REGISTER_BODY), MAX_REPLY_BYTES)
        .is_err()
    {
        log::line(
            Level::Warn,
            None,
            b"graceful shutdown unavailable: the extension register call failed",
            &[],
        );
        return None;
    }
    let status = recv.head.status;
    let head = recv.buf.get(..recv.head.len).unwrap_or_default();
    let identifier = parse::find_header(head, "Lambda-Extension-Identifier")
        .and_then(sys::utf8)
        .filter(|id| (200..300).contains(&status) && request::valid_request_id(id.as_bytes()));
    let Some(identifier) = identifier else {
        log::line(
            Level::Warn,
            None,
            b"graceful shutdown unavailable: the extension register call returned \x01 without a usable Lambda-Extension-Identifier",
            &[request::decimal(u64::from(status), &mut [0; 20])],
        );
        return None;
    };
    let identifier = identifier.to_owned();
    conn.prepare_with(|buf, prefix, authority| {
        request::write_extension_next(buf, prefix, authority, &identifier)
    });
    if conn.send_prepared().is_err() {
        log::line(
            Level::Warn,
            None,
            b"graceful shutdown unavailable: the extension's /event/next could not be sent",
            &[],
        );
        return None;
    }
    Some(conn)
}

//! Everything of the probe but its allocator (see `main.rs` and `heap.rs`, the two
//! binaries built from it): the handlers, the C `main` and the panic handler.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::{CStr, c_char};
use tinylambda::{Context, Error, Stream};

unsafe extern "C" {
    fn getenv(name: *const c_char) -> *const c_char;
}

/// The environment variable `name`, if set and UTF-8.
fn var(name: &CStr) -> Option<String> {
    // SAFETY: `name` is NUL-terminated; the value is copied before the environment changes.
    let value = unsafe { getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: `getenv` returns a NUL-terminated string.
    let value = unsafe { CStr::from_ptr(value) };
    value.to_str().ok().map(String::from)
}

fn answer(event: &[u8], ctx: &Context) -> Result<Vec<u8>, Error> {
    match event {
        b"panic" => panic!("probe panicked on {}", "purpose"),
        b"panic-static" => panic!("a fixed panic message"),
        b"error" => Err(Error::new("Function.Probe", "asked to fail")),
        b"churn" => Ok(churn()),
        b"trace" => Ok(var(c"_X_AMZN_TRACE_ID")
            .unwrap_or_else(|| String::from("-"))
            .into_bytes()),
        b"context" => {
            let mut out = String::from(ctx.request_id());
            out.push('|');
            out.push_str(if ctx.remaining_ms().unwrap_or(0) > 0 {
                "time left"
            } else {
                "no time"
            });
            out.push('|');
            out.push_str(ctx.function_name());
            out.push('|');
            out.push_str(if ctx.memory_mb() == 256 { "256" } else { "?" });
            out.push('|');
            out.push_str(ctx.invocation_id().unwrap_or("-"));
            Ok(out.into_bytes())
        }
        _ => match event.strip_prefix(b"size:") {
            Some(n) => {
                let n: usize = core::str::from_utf8(n)?.parse()?;
                Ok(vec![b'x'; n])
            }
            None => Ok(event.to_vec()),
        },
    }
}

/// Allocates, grows, checks and frees thousands of blocks of many sizes (both sides of the
/// heap's 128 KiB line), keeping a few alive at a time, so that loops running it at once
/// contend for the allocator: `churned`, or `corrupt` when a block's contents changed while
/// it was alive.
fn churn() -> Vec<u8> {
    const SIZES: [usize; 7] = [16, 40, 100, 1_000, 5_000, 20_000, 140_000];
    let mut live: Vec<Vec<u8>> = Vec::new();
    for i in 0..5_000usize {
        let fill = (i % 251) as u8;
        let mut block = vec![fill; SIZES[i % SIZES.len()] + i % 13];
        block.push(fill);
        live.push(block);
        if live.len() > 16 {
            let old = live.swap_remove(i * 7 % live.len());
            if old.iter().any(|&b| b != old[0]) {
                return b"corrupt".to_vec();
            }
        }
    }
    b"churned".to_vec()
}

fn stream(event: &[u8], ctx: &Context, out: &mut Stream) -> Result<(), Error> {
    for byte in event.chunks(1).take(3) {
        out.write_all(byte)?;
    }
    let rest = answer(event, ctx)?;
    out.write_all(&rest)?;
    Ok(())
}

/// 1. The entry point the C runtime's start code calls.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    tinylambda::init(|| match var(c"PROBE_INIT_FAIL") {
        Some(_) => Err(Error::new("Runtime.ProbeInit", "PROBE_INIT_FAIL is set")),
        None => Ok(()),
    });
    if var(c"PROBE_SHUTDOWN").is_some() {
        tinylambda::on_shutdown(|| {
            let line = b"probe: shutdown callback ran\n";
            // SAFETY: write(2) of a live buffer to stderr.
            unsafe { write(2, line.as_ptr(), line.len()) };
        });
    }
    match var(c"PROBE_MODE").as_deref() {
        Some("stream") => tinylambda::run_streaming(stream),
        Some("concurrent") => tinylambda::run_concurrent(answer),
        _ => tinylambda::run(answer),
    }
}

unsafe extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// 2. The panic handler.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    tinylambda::nostd::report_panic(info)
}

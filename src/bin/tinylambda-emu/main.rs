//! `tinylambda-emu`: a local AWS Lambda for any custom-runtime bootstrap, std only.
//!
//! It starts the bootstrap with the environment Lambda gives a `provided.al2023` runtime,
//! serves it the Runtime API and the Extensions API, and serves callers the invoke endpoint
//! of the AWS emulator (`POST /2015-03-31/functions/function/invocations` on
//! 127.0.0.1:8080) and the function's URL (every other path on that port); or invokes once
//! (`--invoke`); or measures N invocations (`--bench`).
//! See `--help`.
//!
//! Beyond the basic loop: streamed responses reach the caller chunk by chunk (with Lambda's
//! error trailers, up to 200 MiB); extensions can register and wait for events, and when
//! one is registered the emulator's own end (SIGINT, SIGTERM, the end of `--invoke` or
//! `--bench`) gives the runtime SIGTERM and Lambda's grace period before SIGKILL;
//! `--concurrency N` serves N invocations at once, as Lambda Managed Instances do.
//!
//! Modules: [`cli`] (the command line), [`function`] (configuration and environment),
//! [`request`] (what a caller may ask, by HTTP or `--invoke`), [`sandbox`] (the runtime's
//! state machine, the invocation queue and deadlines, extensions, shutdown), [`server`]
//! (the Runtime and Extensions APIs), [`invoke`] (the caller side, streams included),
//! [`function_url`] (the function URL front door),
//! [`process`] (spawn, signal, kill, reap, rusage), [`mod@bench`], and the helpers
//! [`http`], [`ids`], [`clock`], [`json`], [`logging`].
//!
//! Linux only: it reads `/proc` and uses Linux process controls.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

/// Writes one line on stderr with a single `write`, so that it is never cut into by the
/// bootstrap's own output, which shares stderr.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say_line(format!($($arg)*))
    };
}

#[cfg(target_os = "linux")]
mod bench;
#[cfg(target_os = "linux")]
mod cli;
#[cfg(target_os = "linux")]
mod clock;
#[cfg(target_os = "linux")]
mod function;
#[cfg(target_os = "linux")]
mod function_url;
#[cfg(target_os = "linux")]
mod http;
#[cfg(target_os = "linux")]
mod ids;
#[cfg(target_os = "linux")]
mod invoke;
#[cfg(target_os = "linux")]
mod json;
#[cfg(target_os = "linux")]
mod logging;
#[cfg(target_os = "linux")]
mod process;
#[cfg(target_os = "linux")]
mod request;
#[cfg(target_os = "linux")]
mod sandbox;
#[cfg(target_os = "linux")]
mod server;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("tinylambda-emu: runs on Linux only (like Lambda)");
    std::process::exit(1);
}

#[cfg(target_os = "linux")]
fn main() {
    use std::io::Write;

    let options = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Parsed::Run(options)) => options,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::HELP);
            return;
        }
        Ok(cli::Parsed::Version) => {
            println!("tinylambda-emu {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(e) => fail(2, &e),
    };
    let function = function::Function::new(
        &options.program,
        &options.env,
        options.timeout,
        options.concurrency,
        options.logging,
    )
    .unwrap_or_else(|e| fail(2, &e));
    process::prepare();
    let log = !matches!(options.mode, cli::Mode::Bench { .. });
    let bootstrap = options.program.to_string_lossy().into_owned();
    let concurrency = options.concurrency.map_or(
        sandbox::Concurrency::OnDemand,
        sandbox::Concurrency::Managed,
    );
    let sandbox = sandbox::Sandbox::new(
        function,
        options.program,
        options.args,
        log,
        concurrency,
        server::serve,
    )
    .unwrap_or_else(|e| fail(1, &e));
    // SIGINT or SIGTERM to the emulator: Lambda's shutdown of the runtime, then exit.
    let on_signal = sandbox.clone();
    if let Err(e) = process::on_stop(move |signal| {
        on_signal.shutdown();
        std::process::exit(128 + signal)
    }) {
        fail(1, &format!("cannot prepare for signals: {e}"));
    }

    let code = match options.mode {
        cli::Mode::Serve { port } => {
            let listener = invoke::listen(port).unwrap_or_else(|e| fail(1, &e));
            if let Err(e) = sandbox.start() {
                fail(1, &e);
            }
            let address = listener
                .local_addr()
                .map_or_else(|_| format!("127.0.0.1:{port}"), |a| a.to_string());
            say!(
                "tinylambda-emu: listening on http://{address}/2015-03-31/functions/function/invocations (the Invoke API); any other path is the function URL, e.g. http://{address}/"
            );
            let result = invoke::serve(&sandbox, listener);
            sandbox.shutdown();
            match result {
                Ok(()) => 0,
                Err(e) => fail(1, &e),
            }
        }
        cli::Mode::Invoke { event } => {
            let event = invoke::read_event(&event).unwrap_or_else(|e| fail(1, &e));
            if let Err(e) = sandbox.start() {
                fail(1, &e);
            }
            let (_, outcome) = invoke::once(&sandbox, event).unwrap_or_else(|e| fail(1, &e));
            let code = match outcome {
                sandbox::Outcome::Response { body, .. } => {
                    let mut stdout = std::io::stdout().lock();
                    if stdout
                        .write_all(&body)
                        .and_then(|()| stdout.flush())
                        .is_err()
                    {
                        fail(1, "cannot write the response to stdout");
                    }
                    0
                }
                sandbox::Outcome::Error { document } => {
                    let error_type =
                        json::error_type_of(&document).unwrap_or_else(|| "an error".into());
                    say!(
                        "tinylambda-emu: the function failed with {error_type}: {}",
                        String::from_utf8_lossy(&document)
                    );
                    1
                }
                sandbox::Outcome::Stream(stream) => {
                    // Each piece goes to stdout as it arrives.
                    let mut stdout = std::io::stdout().lock();
                    let relayed = invoke::relay(stream, |data| {
                        stdout.write_all(data).and_then(|()| stdout.flush()).is_ok()
                    });
                    if !relayed.delivered {
                        fail(1, "cannot write the response to stdout");
                    }
                    match relayed.error {
                        None => 0,
                        Some(error) => {
                            say!(
                                "tinylambda-emu: the function failed mid-stream with {}: {}",
                                error.error_type,
                                String::from_utf8_lossy(&error.document())
                            );
                            1
                        }
                    }
                }
            };
            sandbox.shutdown();
            code
        }
        cli::Mode::Bench { n, payload, json } => match bench::run(&sandbox, n, payload) {
            Ok(report) => {
                if json {
                    println!("{}", report.json());
                } else {
                    print!("{}", report.table(&bootstrap));
                }
                0
            }
            Err(e) => fail(1, &e),
        },
    };
    std::process::exit(code);
}

/// Prints `tinylambda-emu: {message}` on stderr and exits with `code`, after killing
/// whatever the runtime started.
#[cfg(target_os = "linux")]
fn fail(code: i32, message: &str) -> ! {
    process::tree::kill_all();
    say!("tinylambda-emu: {message}");
    std::process::exit(code)
}

/// See `say!`.
#[cfg(target_os = "linux")]
fn say_line(mut line: String) {
    use std::io::Write;
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

//! `--bench N`: N invocations one after another, then what they cost.
//!
//! - **cold start**: from just before the bootstrap is spawned to its first `GET /next`
//!   having arrived (Lambda's Init Duration, without Lambda's own sandbox set-up).
//! - **latency p50/p99**: per invocation, from just before the event is written to the
//!   runtime to its `/response` body having been read.
//! - **CPU per invocation**: user + system time of the bootstrap's whole process tree
//!   between the first `GET /next` (start-up excluded) and the `GET /next` after the last
//!   invocation, divided by N: see [`crate::process`] for the method and its resolution.
//!   When an extension is registered, the runtime gets SIGTERM and time to shut down at
//!   the end; so that its shutdown is not counted, the end reading is then the live one
//!   taken while it waits in its last `/next` (the same resolution as the start reading).
//! - **peak RSS**: the largest resident-set high-water mark of any single process of the
//!   tree: `VmHWM` of the live ones while the runtime waits after the last invocation,
//!   and `ru_maxrss` of the reaped ones where it is above what a process can inherit from
//!   the emulator (see [`crate::process`] for why and for the limits).
//!
//! A streamed response counts from the event being written to its last piece being read.
//! Every invocation must succeed; the first failure ends the bench with its error.

use std::sync::Arc;
use std::time::Duration;

use crate::invoke::relay;
use crate::process::tree;
use crate::request::{Headers, Request};
use crate::sandbox::{Outcome, Sandbox};

/// What one bench run measured.
#[derive(Debug)]
pub struct Report {
    /// N.
    pub invocations: u64,
    /// The event size.
    pub payload_bytes: usize,
    /// Spawn to first `GET /next`.
    pub cold_start: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Process-tree CPU per invocation.
    pub cpu_per_invocation: Duration,
    /// Largest peak RSS in the tree.
    pub peak_rss_kib: u64,
}

/// Runs the bench on a sandbox that has not started yet.
pub fn run(sandbox: &Sandbox, n: u64, payload: usize) -> Result<Report, String> {
    sandbox.start()?;
    let ready = sandbox
        .wait_ready()
        .map_err(|e| format!("the runtime did not start: {e}"))?;
    let before = tree::sample()
        .map_err(|e| format!("cannot read the runtime's CPU time from /proc: {e}"))?
        .cpu;

    let event: Arc<[u8]> = event(payload).into();
    let mut latencies = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let step = (n / 10).max(1);
    for i in 1..=n {
        let id = sandbox.new_id();
        let invocation = Request::read(&Headers::default())
            .map_err(|r| r.message)?
            .invocation(id, event.clone(), false);
        let Ok(outcome) = sandbox.submit(invocation) else {
            sandbox.shutdown();
            return Err(format!("invocation {i} of {n} was throttled"));
        };
        let failure = match outcome {
            Outcome::Response { latency, .. } => {
                latencies.push(latency);
                None
            }
            Outcome::Error { document } => Some(document),
            Outcome::Stream(stream) => {
                let relayed = relay(stream, |_| true);
                match (relayed.error, relayed.latency) {
                    (None, Some(latency)) => {
                        latencies.push(latency);
                        None
                    }
                    (Some(error), _) => Some(error.document()),
                    (None, None) => Some(b"the stream did not end".to_vec()),
                }
            }
        };
        if let Some(document) = failure {
            sandbox.shutdown();
            return Err(format!(
                "invocation {i} of {n} failed: {}",
                String::from_utf8_lossy(&document)
            ));
        }
        if i % step == 0 || i == n {
            say!("tinylambda-emu: bench {i}/{n}");
        }
    }
    let after_last = sandbox.wait_ready();
    // The live processes' peaks, while the runtime waits in its last /next.
    let end = after_last
        .as_ref()
        .ok()
        .and_then(|_| tree::sample().ok())
        .unwrap_or_default();
    let graceful = sandbox.has_extensions();
    let usage = sandbox.shutdown();
    after_last
        .map_err(|e| format!("the runtime did not come back after the last invocation: {e}"))?;
    let cpu = if graceful { end.cpu } else { usage.cpu };

    latencies.sort_unstable();
    Ok(Report {
        invocations: n,
        payload_bytes: payload,
        cold_start: ready.init,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        cpu_per_invocation: cpu.saturating_sub(before) / u32::try_from(n).unwrap_or(u32::MAX),
        peak_rss_kib: usage.peak_rss_kib.max(end.peak_rss_kib),
    })
}

/// The value at quantile `q` of `sorted` (nearest rank, rounded).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

/// A JSON event of exactly `bytes` bytes, so any runtime (even one that parses JSON) can
/// echo it: `{"data":"abc…"}` from 11 bytes, a JSON string below that, `0` for 1 byte.
pub fn event(bytes: usize) -> Vec<u8> {
    let filler = |n: usize| (0..n).map(|i| b'a' + (i % 26) as u8);
    match bytes {
        0 => Vec::new(),
        1 => b"0".to_vec(),
        2..=10 => [b'"']
            .into_iter()
            .chain(filler(bytes - 2))
            .chain([b'"'])
            .collect(),
        _ => {
            let mut out = br#"{"data":""#.to_vec();
            out.extend(filler(bytes - 11));
            out.extend_from_slice(br#""}"#);
            out
        }
    }
}

impl Report {
    /// The one-line JSON object of `--bench --json`.
    pub fn json(&self) -> String {
        format!(
            "{{\"invocations\":{},\"payload_bytes\":{},\"cold_start_ms\":{:.3},\"latency_p50_us\":{:.3},\"latency_p99_us\":{:.3},\"cpu_us_per_invocation\":{:.3},\"peak_rss_kib\":{}}}",
            self.invocations,
            self.payload_bytes,
            self.cold_start.as_secs_f64() * 1e3,
            self.p50.as_secs_f64() * 1e6,
            self.p99.as_secs_f64() * 1e6,
            self.cpu_per_invocation.as_secs_f64() * 1e6,
            self.peak_rss_kib
        )
    }

    /// The human table.
    pub fn table(&self, bootstrap: &str) -> String {
        format!(
            "{n} invocations of {bootstrap}, {b}-byte events\n\
             \n\
             | measure | value |\n\
             |---|---|\n\
             | cold start (spawn to first GET /next) | {cold:.2} ms |\n\
             | latency p50 (event written to response read) | {p50:.1} µs |\n\
             | latency p99 | {p99:.1} µs |\n\
             | CPU per invocation (whole process tree) | {cpu:.1} µs |\n\
             | peak RSS (largest process of the tree) | {rss} KiB |\n",
            n = self.invocations,
            b = self.payload_bytes,
            cold = self.cold_start.as_secs_f64() * 1e3,
            p50 = self.p50.as_secs_f64() * 1e6,
            p99 = self.p99.as_secs_f64() * 1e6,
            cpu = self.cpu_per_invocation.as_secs_f64() * 1e6,
            rss = self.peak_rss_kib,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_of_exactly_the_size_asked() {
        for bytes in [0, 1, 2, 3, 10, 11, 12, 64, 2049, 100_000] {
            assert_eq!(event(bytes).len(), bytes);
        }
        assert_eq!(event(11), br#"{"data":""}"#);
        assert_eq!(event(14), br#"{"data":"abc"}"#);
        assert_eq!(event(4), br#""ab""#);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_micros(51));
        assert_eq!(percentile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}

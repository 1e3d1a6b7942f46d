//! Per-invocation cost of the echo bootstrap against the physical floor: a minimal C loop
//! doing the same socket calls (`benches/peers/floor.c`).
//!
//! `cargo bench --bench invoke` builds the peers, then drives each through an in-process
//! fake Runtime API on 127.0.0.1 in interleaved rounds. Per peer it reports the bootstrap's
//! CPU time per invocation (from `/proc/PID/schedstat`, nanoseconds, the whole process) and
//! the latency from the event being written to the response being read, each also as a
//! ratio to the floor measured in the same run. Only ratios mean anything across machines.
//!
//! Environment: `INVOKE_ROUNDS` (default 5), `INVOKE_N` (measured invocations per peer and
//! round, default 20000), `INVOKE_PAYLOAD` (event bytes, default 64; above 2048 the event
//! is sent chunked, as Lambda does).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP: usize = 500;

struct Peer {
    name: &'static str,
    path: PathBuf,
}

#[derive(Default)]
struct Samples {
    cpu_ns_per_invocation: Vec<f64>,
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`, as test runners ask
    }
    let rounds = env_number("INVOKE_ROUNDS", 5);
    let n = env_number("INVOKE_N", 20_000);
    let payload = env_number("INVOKE_PAYLOAD", 64);
    let peers = build_peers();
    let mut samples: Vec<Samples> = peers.iter().map(|_| Samples::default()).collect();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (peer, samples) in peers.iter().zip(&mut samples) {
            let (cpu, mut latencies) = drive(&peer.path, n, payload);
            latencies.sort_by(f64::total_cmp);
            samples.cpu_ns_per_invocation.push(cpu);
            samples.p50_us.push(percentile(&latencies, 0.50));
            samples.p99_us.push(percentile(&latencies, 0.99));
        }
    }
    let floor_cpu = median(&samples[0].cpu_ns_per_invocation);
    let floor_p50 = median(&samples[0].p50_us);
    let floor_p99 = median(&samples[0].p99_us);
    println!(
        "\n{n} invocations x {rounds} rounds per peer, {payload}-byte events, medians of rounds\n"
    );
    println!(
        "| bootstrap | CPU/invocation | vs floor | latency p50 | vs floor | latency p99 | vs floor |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (peer, s) in peers.iter().zip(&samples) {
        let (cpu, p50, p99) = (
            median(&s.cpu_ns_per_invocation),
            median(&s.p50_us),
            median(&s.p99_us),
        );
        println!(
            "| {} | {:.1} µs | {:.2}x | {:.1} µs | {:.2}x | {:.1} µs | {:.2}x |",
            peer.name,
            cpu / 1000.0,
            cpu / floor_cpu,
            p50,
            p50 / floor_p50,
            p99,
            p99 / floor_p99
        );
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Builds the floor with `cc -O2`, the echo example as `release` and as `tiny` static musl,
/// and the echo without std (`examples/nostd`) as `tiny` static musl, in a target directory
/// of its own (the outer cargo may hold the main one).
fn build_peers() -> Vec<Peer> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench-peers");
    std::fs::create_dir_all(&out).expect("create target/bench-peers");
    let floor = out.join("floor");
    run(Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&floor)
        .arg(root.join("benches/peers/floor.c")));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |args: &[&str]| {
        run(Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--quiet", "--example", "echo", "--target-dir"])
            .arg(&out)
            .args(args));
    };
    build(&["--release"]);
    let mut peers = vec![
        Peer {
            name: "C floor (cc -O2)",
            path: floor,
        },
        Peer {
            name: "tinylambda echo, release",
            path: out.join("release/examples/echo"),
        },
    ];
    let musl = "x86_64-unknown-linux-musl";
    let has_musl = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(musl));
    if has_musl {
        build(&["--profile", "tiny", "--target", musl]);
        peers.push(Peer {
            name: "tinylambda echo, tiny static musl",
            path: out.join(format!("{musl}/tiny/examples/echo")),
        });
        run(Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(root.join("examples/nostd/Cargo.toml"))
            .args(["--profile", "tiny", "--target", musl, "--target-dir"])
            .arg(&out));
        peers.push(Peer {
            name: "tinylambda echo without std, tiny static musl",
            path: out.join(format!("{musl}/tiny/echo")),
        });
    } else {
        eprintln!("skipping the musl build: `rustup target add {musl}` to include it");
    }
    peers
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed");
}

/// Runs `bootstrap` for `WARMUP + n` invocations of a `payload`-byte event and returns its
/// CPU nanoseconds per measured invocation and the measured latencies in µs.
fn drive(bootstrap: &Path, n: usize, payload: usize) -> (f64, Vec<f64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut child = Command::new(bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bootstrap");
    let (mut conn, _) = listener.accept().expect("accept");
    conn.set_nodelay(true).expect("nodelay");
    let event: Vec<u8> = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
    let mut buf = vec![0u8; payload + 64 * 1024];
    let mut latencies = Vec::with_capacity(n);
    let mut cpu_start = 0;
    for i in 0..WARMUP + n {
        if i == WARMUP {
            cpu_start = cpu_ns(child.id());
        }
        read_request(&mut conn, &mut buf);
        let response = next_response(i, &event);
        let start = Instant::now();
        conn.write_all(&response).expect("write event");
        let body = read_request(&mut conn, &mut buf);
        let took = start.elapsed();
        assert_eq!(body, payload, "echoed body length");
        conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}")
            .expect("write reply");
        if i >= WARMUP {
            latencies.push(took.as_secs_f64() * 1e6);
        }
    }
    read_request(&mut conn, &mut buf);
    let cpu = cpu_ns(child.id()) - cpu_start;
    let _ = conn.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (cpu as f64 / n as f64, latencies)
}

/// The process's CPU time so far in nanoseconds (the first field of schedstat).
fn cpu_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat number")
}

fn next_response(i: usize, event: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-{i:012}\r\n\
         Lambda-Runtime-Deadline-Ms: 1542409706888\r\n\
         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:echo\r\n\
         Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6e{i:012};Parent=9a9197af755a6419;Sampled=1\r\n"
    )
    .into_bytes();
    if event.len() > 2048 {
        out.extend_from_slice(
            format!("Transfer-Encoding: chunked\r\n\r\n{:x}\r\n", event.len()).as_bytes(),
        );
        out.extend_from_slice(event);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    } else {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", event.len()).as_bytes());
        out.extend_from_slice(event);
    }
    out
}

/// Reads one request (head and Content-Length body) and returns the body's length.
fn read_request(conn: &mut TcpStream, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    loop {
        let n = conn.read(&mut buf[filled..]).expect("read request");
        assert!(n > 0, "bootstrap closed the connection");
        filled += n;
        let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).expect("UTF-8 head");
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            })
            .map_or(0, |(_, v)| v.trim().parse().expect("Content-Length"));
        while filled < end + 4 + length {
            let n = conn.read(&mut buf[filled..]).expect("read body");
            assert!(n > 0, "bootstrap closed the connection");
            filled += n;
        }
        return length;
    }
}

//! The size floor: the least std program that reads an environment variable and talks over
//! a `TcpStream`. Every tinylambda size is reported as bytes over this program, built with
//! the same profile for the same target (`cargo build --profile tiny --example size_floor`).
//! Like tinylambda by default, it connects to an address (`127.0.0.1:9001`, as Lambda gives
//! it) without a name lookup.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::exit;

fn main() {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        exit(1)
    };
    let Ok(address) = api.parse::<SocketAddr>() else {
        exit(1)
    };
    let Ok(mut stream) = TcpStream::connect(address) else {
        exit(1)
    };
    let mut buf = [0u8; 4096];
    loop {
        let request = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n";
        if stream.write_all(request).is_err() {
            exit(1)
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => exit(1),
            Ok(_) => {}
        }
    }
}

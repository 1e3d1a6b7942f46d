//! Identifiers Lambda makes up: request ids (UUID v4 text), X-Ray trace ids, the random
//! part of log stream names.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::unix_secs;

/// A request id: a UUID in its 36-character text form. `Copy`, so it costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 36]);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Built from ASCII hex digits and dashes only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small pseudo-random generator (SplitMix64), seeded from the kernel. Ids need to be
/// unique, not secret.
#[derive(Debug)]
pub struct Ids {
    state: u64,
}

impl Ids {
    /// Seeds from `/dev/urandom`, falling back to the clock and pid.
    pub fn new() -> Ids {
        let mut seed = [0u8; 8];
        let from_kernel = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
            .is_ok();
        let state = if from_kernel {
            u64::from_le_bytes(seed)
        } else {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        };
        Ids { state }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random version-4 UUID.
    pub fn request_id(&mut self) -> RequestId {
        let mut bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        bits = (bits & !(0xf << 76)) | (0x4 << 76); // version 4
        bits = (bits & !(0x3 << 62)) | (0x2 << 62); // variant 10
        let mut out = [b'-'; 36];
        let mut nibble = 32;
        for (i, byte) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            nibble -= 1;
            *byte = hex_digit((bits >> (nibble * 4)) as u8 & 0xf);
        }
        RequestId(out)
    }

    /// `n` random lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n);
        let mut word = 0;
        for i in 0..n {
            if i % 16 == 0 {
                word = self.next();
            }
            out.push(char::from(hex_digit((word >> ((i % 16) * 4)) as u8 & 0xf)));
        }
        out
    }

    /// An X-Ray trace header like the one Lambda passes in `Lambda-Runtime-Trace-Id`:
    /// `Root=1-{epoch seconds, 8 hex}-{24 hex};Parent={16 hex};Sampled=0`.
    pub fn trace_id(&mut self) -> String {
        format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            unix_secs() as u32,
            self.hex(24),
            self.hex(16)
        )
    }
}

fn hex_digit(n: u8) -> u8 {
    b"0123456789abcdef"[usize::from(n & 0xf)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids_and_differ() {
        let mut ids = Ids::new();
        let a = ids.request_id();
        let b = ids.request_id();
        assert_ne!(a, b);
        let s = a.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert!(
            s.chars()
                .enumerate()
                .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                })
        );
    }

    #[test]
    fn trace_ids_have_lambdas_shape() {
        let t = Ids::new().trace_id();
        assert!(t.starts_with("Root=1-") && t.contains(";Parent=") && t.ends_with(";Sampled=0"));
        assert_eq!(
            t.len(),
            "Root=1-".len() + 8 + 1 + 24 + ";Parent=".len() + 16 + ";Sampled=0".len()
        );
    }
}

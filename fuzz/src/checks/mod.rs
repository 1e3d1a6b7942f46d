//! Properties of tinylambda's public `core` modules, checked on arbitrary input.
//!
//! Every `check` function panics (through `assert!`) when a property fails and returns
//! normally otherwise, whatever its input. Where a property needs more than the input (a split
//! point, a size limit), it is derived from a hash of the input, so the same input always
//! checks the same things and a crash replays exactly.
//!
//! Only the public API of `tinylambda` is used, and nothing beyond `std`.

pub mod chunked;
pub mod endpoint;
pub mod head;
pub mod json;

/// FNV-1a: a stable 64-bit hash of the input, the seed for derived choices.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*: the deterministic generator behind derived choices.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `data`.
    pub fn from_input(data: &[u8]) -> Self {
        // xorshift must not start at zero.
        Rng(hash(data) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// The size of the next read of a simulated socket: mostly a few bytes, sometimes up to
    /// a page, so both byte-at-a-time delivery and large reads are exercised.
    pub fn piece(&mut self) -> usize {
        if self.below(4) == 0 {
            1 + self.below(4096)
        } else {
            1 + self.below(8)
        }
    }
}

/// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    let s = s.get(start..).unwrap_or_default();
    let end = s.len()
        - s.iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    s.get(..end).unwrap_or_default()
}

/// `tchar` of RFC 9110: a byte of a header or trailer name.
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte allowed in a header value: HTAB, SP, visible ASCII and obs-text (RFC 9110).
pub fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// Whether `line` is a well-formed `name: value` field line (no line break).
pub fn is_field_line(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let (name, value) = line.split_at(colon);
            !name.is_empty()
                && name.iter().all(|&b| is_token(b))
                && value.iter().skip(1).all(|&b| is_field_byte(b))
        }
        None => false,
    }
}

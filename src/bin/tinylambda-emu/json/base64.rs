//! Standard base64 (RFC 4648 §4): error documents in stream trailers, client contexts in
//! headers, binary bodies of function URL requests and responses.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value of a base64 digit, if `c` is one.
fn digit(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes standard base64 (padding optional); `None` for any other character, or for a
/// length no encoder writes (one digit left over).
pub fn from_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    let digits = encoded
        .iter()
        .position(|&c| c == b'=')
        .map_or(encoded, |end| &encoded[..end]);
    // Only padding may follow the first `=`, and at most two of it.
    let padding = &encoded[digits.len()..];
    if padding.len() > 2 || padding.iter().any(|&c| c != b'=') || digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in digits {
        acc = (acc << 6) | digit(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_with_padding() {
        for (plain, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"{\"errorType\":\"x\"}", "eyJlcnJvclR5cGUiOiJ4In0="),
            (&[0, 0xff, 0x80, 0x7f], "AP+Afw=="),
        ] {
            assert_eq!(base64(plain), encoded);
            assert_eq!(from_base64(encoded.as_bytes()).as_deref(), Some(plain));
        }
        assert_eq!(from_base64(b"Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(from_base64(b"not base64!"), None);
        assert_eq!(from_base64(b"Zm8=Zm8="), None, "data after the padding");
        assert_eq!(from_base64(b"Z"), None, "a digit left over");
    }
}

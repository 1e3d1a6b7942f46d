//! Parsing `AWS_LAMBDA_RUNTIME_API`, `core` only.
//!
//! Lambda sets a bare `host:port` (`127.0.0.1:9001`); emulators add a scheme and a path
//! prefix (`http://[::]:9000/.rt` from `cargo lambda watch`, `localhost:9001/foo` from
//! others). [`Endpoint::parse`] accepts all of them and splits out the parts a request needs.

// Bytes here come from the network or the environment: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use core::fmt;

use crate::parse::eq_lowercase;

/// Where the Runtime API lives: the parts of `AWS_LAMBDA_RUNTIME_API`, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The host without IPv6 brackets: `127.0.0.1`, `::1`, `localhost`.
    pub host: &'a str,
    /// The TCP port (80 when the value names none).
    pub port: u16,
    /// `host[:port]` exactly as written, brackets included: the `Host` header.
    pub authority: &'a str,
    /// The path prefix without a trailing slash (`""` or `/.rt`): it goes in front of
    /// `/2018-06-01/...`.
    pub prefix: &'a str,
}

/// Why an `AWS_LAMBDA_RUNTIME_API` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// The value is empty or only whitespace.
    Empty,
    /// The value starts with `https://`: the Runtime API is plain HTTP on the local host.
    Https,
    /// The value has a scheme other than `http://`.
    Scheme,
    /// The host is missing, or is neither a name (letters, digits, `-`, `.`, `_`) nor an
    /// IP address (an IPv6 one in brackets).
    Host,
    /// The port is empty, not a number, or outside 1 to 65535.
    Port,
    /// The path has whitespace, control characters, `?` or `#`.
    Path,
}

impl EndpointError {
    /// A lowercase, one-line explanation that completes "AWS_LAMBDA_RUNTIME_API ...".
    pub const fn as_str(self) -> &'static str {
        match self {
            EndpointError::Empty => "is empty",
            EndpointError::Https => "uses https://, but the Runtime API is plain http",
            EndpointError::Scheme => "has a scheme other than http://",
            EndpointError::Host => "has no valid host (expected host:port)",
            EndpointError::Port => "has an invalid port",
            EndpointError::Path => "has a path with spaces, controls, '?' or '#'",
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> Endpoint<'a> {
    /// Parses `[http://]host[:port][/prefix[/]]`, where host may be a bracketed IPv6
    /// address. Surrounding whitespace and trailing slashes are ignored; the scheme is
    /// case-insensitive.
    ///
    /// # Errors
    /// See [`EndpointError`]: `https://`, other schemes, a bad host, port or path.
    pub fn parse(value: &'a str) -> Result<Endpoint<'a>, EndpointError> {
        let value = value.trim_ascii();
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(EndpointError::Empty);
        }
        // Everything below splits at ASCII bytes, which are always character boundaries.
        // (Byte patterns rather than `strip_prefix`, which links a matcher of its own.)
        let (scheme, after) = split(value, b'/');
        let rest = match (scheme.as_bytes(), after.as_bytes()) {
            ([scheme @ .., b':'], [b'/', b'/', ..]) => {
                if eq_lowercase(scheme, b"http") {
                    after.get(2..).unwrap_or_default()
                } else if eq_lowercase(scheme, b"https") {
                    return Err(EndpointError::Https);
                } else {
                    return Err(EndpointError::Scheme);
                }
            }
            _ => value,
        };
        let (authority, path) = split(rest, b'/');
        let (host, port, allowed) = match authority.as_bytes() {
            [b'[', ..] => {
                let (host, close) = split(authority.get(1..).unwrap_or_default(), b']');
                // An IPv6 address, perhaps with a zone (`fe80::1%eth0`).
                (
                    host,
                    close.get(1..).ok_or(EndpointError::Host)?,
                    &b":.%"[..],
                )
            }
            _ => {
                let (host, port) = split(authority, b':');
                (host, port, &b"-._"[..])
            }
        };
        // A loop over three bytes: `contains` would link the `memchr` of `core` for them.
        #[allow(clippy::manual_contains)]
        let valid = |b: u8| b.is_ascii_alphanumeric() || allowed.iter().any(|&a| a == b);
        if host.is_empty() || !host.bytes().all(valid) {
            return Err(EndpointError::Host);
        }
        let port = match port.as_bytes() {
            [] => 80,
            [b':', digits @ ..] if digits.len() <= 5 => crate::parse::parse_decimal(digits)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n != 0)
                .ok_or(EndpointError::Port)?,
            [b':', ..] => return Err(EndpointError::Port),
            _ => return Err(EndpointError::Host),
        };
        let end = path
            .bytes()
            .rposition(|b| b != b'/')
            .map_or(0, |last| last + 1);
        let prefix = path.get(..end).unwrap_or_default();
        if !plain(prefix, b"?#") {
            return Err(EndpointError::Path);
        }
        Ok(Endpoint {
            host,
            port,
            authority,
            prefix,
        })
    }
}

/// Whether `s` is visible ASCII without any of the `forbidden` bytes. (A loop over them
/// rather than `contains`, which would link the `memchr` of `core` for three bytes.)
fn plain(s: &str, forbidden: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_graphic() && forbidden.iter().all(|&f| f != b))
}

/// `s` split before the first `byte` (ASCII), or `(s, "")` without one.
fn split(s: &str, byte: u8) -> (&str, &str) {
    let at = s.bytes().position(|b| b == byte).unwrap_or(s.len());
    s.split_at_checked(at).unwrap_or((s, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! endpoint_ok {
        ($($name:ident: $value:expr => ($host:expr, $port:expr, $authority:expr, $prefix:expr);)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(
                    Endpoint::parse($value),
                    Ok(Endpoint { host: $host, port: $port, authority: $authority, prefix: $prefix })
                );
            }
        )*};
    }

    endpoint_ok! {
        lambda_bare_host_and_port: "127.0.0.1:9001" => ("127.0.0.1", 9001, "127.0.0.1:9001", "");
        cargo_lambda_only_apis_prefix: "http://127.0.0.1:9000/.rt" => ("127.0.0.1", 9000, "127.0.0.1:9000", "/.rt");
        cargo_lambda_ipv6_unspecified_with_function_prefix: "http://[::]:9000/.rt/_" => ("::", 9000, "[::]:9000", "/.rt/_");
        bracketed_ipv6_loopback: "[::1]:9001" => ("::1", 9001, "[::1]:9001", "");
        scheme_less_host_with_path: "localhost:9001/foo" => ("localhost", 9001, "localhost:9001", "/foo");
        trailing_slash_is_trimmed: "http://localhost:9001/foo/" => ("localhost", 9001, "localhost:9001", "/foo");
        lone_slash_is_no_prefix: "127.0.0.1:9001/" => ("127.0.0.1", 9001, "127.0.0.1:9001", "");
        several_trailing_slashes_are_trimmed: "127.0.0.1:9001/a/b//" => ("127.0.0.1", 9001, "127.0.0.1:9001", "/a/b");
        uppercase_scheme_is_accepted: "HTTP://127.0.0.1:9001" => ("127.0.0.1", 9001, "127.0.0.1:9001", "");
        surrounding_whitespace_is_ignored: "  127.0.0.1:9001\n" => ("127.0.0.1", 9001, "127.0.0.1:9001", "");
        missing_port_means_80: "http://runtime.local" => ("runtime.local", 80, "runtime.local", "");
        ipv6_without_port_means_80: "[::1]/x" => ("::1", 80, "[::1]", "/x");
        port_65535_is_accepted: "127.0.0.1:65535" => ("127.0.0.1", 65535, "127.0.0.1:65535", "");
    }

    macro_rules! endpoint_err {
        ($($name:ident: $value:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(Endpoint::parse($value), Err($err));
            }
        )*};
    }

    endpoint_err! {
        empty_value_is_refused: "" => EndpointError::Empty;
        blank_value_is_refused: "  " => EndpointError::Empty;
        https_is_refused: "https://127.0.0.1:9001" => EndpointError::Https;
        uppercase_https_is_refused: "HTTPS://127.0.0.1:9001" => EndpointError::Https;
        other_scheme_is_refused: "ftp://127.0.0.1:9001" => EndpointError::Scheme;
        missing_host_is_refused: ":9001" => EndpointError::Host;
        scheme_without_host_is_refused: "http:///.rt" => EndpointError::Host;
        userinfo_is_refused: "http://user@127.0.0.1:9001" => EndpointError::Host;
        unbracketed_ipv6_is_refused: "::1:9001" => EndpointError::Host;
        unclosed_bracket_is_refused: "[::1:9001" => EndpointError::Host;
        junk_after_bracket_is_refused: "[::1]x9001" => EndpointError::Host;
        empty_brackets_are_refused: "[]:9001" => EndpointError::Host;
        punctuation_is_no_host_name: "garbage!!" => EndpointError::Host;
        a_host_with_a_slash_escape_is_refused: "exa%mple:9001" => EndpointError::Host;
        space_in_host_is_refused: "local host:9001" => EndpointError::Host;
        bracket_in_plain_host_is_refused: "a]b:9001" => EndpointError::Host;
        empty_port_is_refused: "127.0.0.1:" => EndpointError::Port;
        port_zero_is_refused: "127.0.0.1:0" => EndpointError::Port;
        port_too_large_is_refused: "127.0.0.1:65536" => EndpointError::Port;
        long_port_is_refused: "127.0.0.1:000009001" => EndpointError::Port;
        signed_port_is_refused: "127.0.0.1:+9001" => EndpointError::Port;
        query_in_path_is_refused: "127.0.0.1:9001/a?b" => EndpointError::Path;
        fragment_in_path_is_refused: "127.0.0.1:9001/a#b" => EndpointError::Path;
        space_in_path_is_refused: "127.0.0.1:9001/a b" => EndpointError::Path;
        control_in_path_is_refused: "127.0.0.1:9001/a\rb" => EndpointError::Path;
        non_ascii_in_path_is_refused: "127.0.0.1:9001/caf\u{e9}" => EndpointError::Path;
    }

    #[test]
    fn every_error_reads_as_one_line() {
        for e in [
            EndpointError::Empty,
            EndpointError::Https,
            EndpointError::Scheme,
            EndpointError::Host,
            EndpointError::Port,
            EndpointError::Path,
        ] {
            assert!(!e.as_str().contains('\n'));
        }
    }
}

#![no_main]

// The properties are in src/checks/chunked.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinylambda_fuzz::checks::chunked::check(data));

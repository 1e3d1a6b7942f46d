#![no_main]

// The properties are in src/checks/json.rs; the outcome is for tests/fuzz_regressions.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _outcome = tinylambda_fuzz::checks::json::check(data);
});

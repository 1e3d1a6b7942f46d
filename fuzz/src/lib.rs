//! The properties the fuzz targets assert, one module per target. Each `check` takes the raw
//! fuzz input and panics when a property fails; `tests/fuzz_regressions.rs` includes the same
//! modules, so `cargo test` replays chosen inputs against exactly these properties.

pub mod checks;

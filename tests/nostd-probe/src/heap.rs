//! The probe of `main.rs` with tinylambda's own heap as the allocator of Rust and of the C
//! library (`tinylambda::heap!()`, what `main!` gives a static musl binary), for the tests
//! that run that heap on several threads at once in a real static binary.

#![no_std]
#![no_main]
extern crate alloc;

mod probe;

tinylambda::heap!();

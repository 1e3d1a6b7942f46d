//! The echo function without std: answers every event with the event itself.

#![no_std]
#![no_main]
extern crate alloc;
use alloc::vec::Vec;
use tinylambda::{Context, Error};

fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
    Ok(event.to_vec())
}

tinylambda::main!(handler);

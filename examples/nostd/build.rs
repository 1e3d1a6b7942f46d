//! Links the bootstrap through `link.ld`, which leaves out what nothing in it reads: its
//! unwind tables (`.eh_frame` and `.eh_frame_hdr`, about 5 KiB of a 28 KiB binary, 2 KiB
//! of its zip) and the toolchains' version notes (`.comment`).
//!
//! Nothing unwinds here: the binary has no std, every profile has `panic = "abort"`, and
//! the C library does not unwind either. rustc's own switch, `-C force-unwind-tables=no`,
//! does not remove the tables from this build: link-time optimisation merges in the
//! standard library's code, whose debug information makes LLVM write unwind tables for
//! every function, and stripping the debug information afterwards leaves them.
//!
//! What this costs: a debugger or profiler that walks the stack of this binary with unwind
//! tables (gdb without debug information, `perf --call-graph=dwarf`) stops at the first
//! frame. Crash reports are unaffected (a panic prints its message and place), and so is
//! the binary's security. Delete this file to keep the tables.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
}

//! What a binary without std needs besides the runtime: a C `main`, a panic handler and a
//! global allocator. [`main!`](crate::main) defines all three; this module holds the pieces
//! it uses, for a program that writes them out by hand:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! extern crate alloc;
//! use alloc::vec::Vec;
//! use tinylambda::{Context, Error};
//!
//! fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
//!     Ok(event.to_vec())
//! }
//!
//! // 1. The entry point: the C runtime's start code calls `main`.
//! #[unsafe(no_mangle)]
//! extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
//!     tinylambda::run(handler)
//! }
//!
//! // 2. The panic handler: any function of this signature (this one writes the message and
//! //    the place to stderr and exits with status 101).
//! #[panic_handler]
//! fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
//!     tinylambda::nostd::report_panic(info)
//! }
//!
//! // 3. The allocator: any `GlobalAlloc`. On a static musl target, `tinylambda::heap!()`
//! //    makes tinylambda's small heap the allocator of Rust and of the C library both
//! //    (what `main!` does there); anywhere, the C library's malloc:
//! #[global_allocator]
//! static ALLOCATOR: tinylambda::nostd::Malloc = tinylambda::nostd::Malloc;
//! ```
//!
//! Every profile the binary is built with needs `panic = "abort"` (without std nothing can
//! unwind): `[profile.dev]` and `[profile.release]` as well as `tiny`. Profiles without
//! link-time optimisation also need a `rust_eh_personality` symbol, which `core` as the
//! toolchain ships refers to although nothing calls it:
//!
//! ```ignore
//! #[unsafe(no_mangle)]
//! extern "C" fn rust_eh_personality() {}
//! ```

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_int, c_void};
use core::fmt;

use crate::sys::heap as sys_heap;

/// Defines what a binary without std needs to run `handler` (a function or closure as for
/// [`run`](crate::run)) as a Lambda bootstrap: the C `main` the C runtime's start code calls
/// (it runs the handler forever), a panic handler ([`nostd::report_panic`]: the message and
/// where it happened on stderr, then exit status 101, which Lambda reports as
/// `Runtime.ExitError` before it starts a fresh runtime), and the allocator: on a static
/// musl target (`x86_64-unknown-linux-musl`, `aarch64-unknown-linux-musl`) tinylambda's
/// small heap for Rust and the C library both ([`heap!`](crate::heap), [`nostd::Heap`]),
/// elsewhere the C library's `malloc` ([`nostd::Malloc`]).
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// extern crate alloc;
/// use alloc::vec::Vec;
/// use tinylambda::{Context, Error};
///
/// fn handler(event: &[u8], _ctx: &Context) -> Result<Vec<u8>, Error> {
///     Ok(event.to_vec())
/// }
///
/// tinylambda::main!(handler);
/// ```
///
/// The crate needs `#![no_std]` and `#![no_main]`, and `panic = "abort"` in every profile it
/// builds with. To bring your own allocator or panic handler, write the pieces out (see
/// [`nostd`](crate::nostd)).
///
/// [`nostd::report_panic`]: crate::nostd::report_panic
/// [`nostd::Heap`]: crate::nostd::Heap
/// [`nostd::Malloc`]: crate::nostd::Malloc
#[macro_export]
macro_rules! main {
    ($handler:expr) => {
        /// The entry point the C runtime's start code calls: serves invocations forever.
        #[unsafe(no_mangle)]
        extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
            $crate::run($handler)
        }

        /// Writes the panic's message and place to stderr and exits with status 101.
        #[panic_handler]
        fn tinylambda_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::nostd::report_panic(info)
        }

        /// Never called (nothing unwinds without std), but `core` as the toolchain ships it
        /// refers to it: builds without link-time optimisation (`dev`, `release`) do not
        /// link without it. The `tiny` profile drops it with the rest of the unused code.
        #[unsafe(no_mangle)]
        extern "C" fn rust_eh_personality() {}

        #[cfg(all(target_env = "musl", target_feature = "crt-static"))]
        $crate::heap!();

        /// The C library's `malloc`.
        #[cfg(not(all(target_env = "musl", target_feature = "crt-static")))]
        #[global_allocator]
        static TINYLAMBDA_ALLOCATOR: $crate::nostd::Malloc = $crate::nostd::Malloc;
    };
}

/// Makes tinylambda's small heap ([`nostd::Heap`]) the allocator of the whole program: the
/// `#[global_allocator]` for Rust, and the C library's `malloc`, `calloc`, `realloc`,
/// `free`, `aligned_alloc` and `malloc_usable_size` (musl's `posix_memalign`, `memalign`
/// and `valloc` call `aligned_alloc`), so that the C library (`putenv`, `strdup`...) and any
/// C code linked in allocate from it too, and musl's own allocator (mallocng, about 7 KiB)
/// is not linked at all. [`main!`](crate::main) uses it on static musl targets.
///
/// For static musl binaries only (`target_env = "musl"` with `crt-static`, the default of
/// the musl targets): there every call to `malloc` in the program is bound to these
/// definitions when it is linked, a replacement musl supports (what musl allocates for its
/// own use goes to its internal allocator and comes back to it). In a dynamically linked
/// program the C library would keep its own `malloc` for what it hands out, and freeing
/// that here would corrupt both heaps.
///
/// [`nostd::Heap`]: crate::nostd::Heap
#[macro_export]
macro_rules! heap {
    () => {
        /// tinylambda's heap, for Rust.
        #[global_allocator]
        static TINYLAMBDA_HEAP: $crate::nostd::Heap = $crate::nostd::Heap;

        // The C library's allocation functions, on the same heap.
        const _: () = {
            #[unsafe(export_name = "malloc")]
            extern "C" fn tinylambda_malloc(size: usize) -> *mut ::core::ffi::c_void {
                $crate::nostd::heap::malloc(size)
            }

            #[unsafe(export_name = "calloc")]
            extern "C" fn tinylambda_calloc(count: usize, size: usize) -> *mut ::core::ffi::c_void {
                $crate::nostd::heap::calloc(count, size)
            }

            #[unsafe(export_name = "realloc")]
            unsafe extern "C" fn tinylambda_realloc(
                ptr: *mut ::core::ffi::c_void,
                size: usize,
            ) -> *mut ::core::ffi::c_void {
                // SAFETY: C's contract for `realloc`: `ptr` is null or live from this heap.
                unsafe { $crate::nostd::heap::realloc(ptr, size) }
            }

            #[unsafe(export_name = "free")]
            unsafe extern "C" fn tinylambda_free(ptr: *mut ::core::ffi::c_void) {
                // SAFETY: C's contract for `free`: `ptr` is null or live from this heap.
                unsafe { $crate::nostd::heap::free(ptr) }
            }

            #[unsafe(export_name = "aligned_alloc")]
            extern "C" fn tinylambda_aligned_alloc(
                align: usize,
                size: usize,
            ) -> *mut ::core::ffi::c_void {
                $crate::nostd::heap::aligned_alloc(align, size)
            }

            #[unsafe(export_name = "malloc_usable_size")]
            unsafe extern "C" fn tinylambda_malloc_usable_size(
                ptr: *mut ::core::ffi::c_void,
            ) -> usize {
                // SAFETY: C's contract: `ptr` is null or live from this heap.
                unsafe { $crate::nostd::heap::malloc_usable_size(ptr) }
            }
        };
    };
}

unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(count: usize, size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
}

/// The alignment `malloc` guarantees on x86_64 and aarch64 (glibc and musl alike).
const MALLOC_ALIGN: usize = 16;

/// A global allocator on the C library's `malloc`, `calloc`, `realloc` and `free`
/// (`posix_memalign` for alignments above 16 bytes): what std's `System` allocator does on
/// Linux. Costs no code of its own beyond the calls (and the C library's allocator, which a
/// static musl binary links: about 7 KiB, see [`Heap`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Malloc;

/// Whether `malloc` itself gives memory aligned for `layout` (of `size` bytes).
fn plain(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

// SAFETY: every method returns memory from the C library's allocator, aligned as asked (by
// `malloc`'s own guarantee, or `posix_memalign`), or null; `dealloc` and `realloc` only
// receive pointers these returned.
unsafe impl GlobalAlloc for Malloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            // SAFETY: any size may be asked of `malloc`.
            unsafe { malloc(layout.size()).cast() }
        } else {
            aligned(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            // SAFETY: as for `malloc`.
            unsafe { calloc(1, layout.size()).cast() }
        } else {
            let ptr = aligned(layout);
            if !ptr.is_null() {
                // SAFETY: `ptr` holds `layout.size()` writable bytes.
                unsafe { ptr.write_bytes(0, layout.size()) };
            }
            ptr
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `malloc`, `calloc`, `realloc` or `posix_memalign`.
        unsafe { free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            // SAFETY: `ptr` came from this allocator; `realloc` keeps `malloc`'s alignment.
            return unsafe { realloc(ptr.cast(), new_size).cast() };
        }
        // SAFETY: `new_size` is valid for the alignment, as `GlobalAlloc::realloc` requires.
        let new = aligned(unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) });
        if !new.is_null() {
            // SAFETY: both blocks hold at least the smaller size and are distinct.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` came from this allocator and is not used again.
            unsafe { free(ptr.cast()) };
        }
        new
    }
}

/// Memory for a layout `malloc` does not align enough, from `posix_memalign`; null when
/// there is none.
fn aligned(layout: Layout) -> *mut u8 {
    let mut out = core::ptr::null_mut();
    let align = layout.align().max(core::mem::size_of::<usize>());
    // SAFETY: `align` is a power of two and a multiple of the pointer size, as required.
    if unsafe { posix_memalign(&mut out, align, layout.size()) } != 0 {
        return core::ptr::null_mut();
    }
    out.cast()
}

/// A global allocator on tinylambda's own heap, about 1 KiB of code (1.4 KiB with the C
/// library's `mmap`, `mremap` and `munmap` it calls) where musl's allocator is about 7 KiB:
/// blocks of a power of two from 32 bytes to 128 KiB carved from 1 MiB regions of anonymous
/// memory and reused through one free list per size (never returned to the system), larger
/// allocations mapped on their own and grown with `mremap` (no copy), one lock, 16 bytes of
/// header per allocation, and a double free of a block of up to 128 KiB or an overwritten
/// header or free-list link ending the process with a message and status 134 (a larger block's
/// mapping is returned by its first free, so a second free of it is not caught). Alignments
/// over 16 cost their size again in padding.
///
/// What it does not do that musl's allocator does: give freed small blocks back to the
/// system, use a block of one size for a request of another, or reset its lock in the
/// child of a `fork` (POSIX allows such a child of a program with threads only
/// async-signal-safe calls, which `malloc` is not, until it calls `exec`).
///
/// [`heap!`](crate::heap) makes it the allocator of Rust and of the C library both, which
/// is what removes musl's allocator from a static binary (a `Heap` for Rust alone leaves
/// the C library's in for its environment functions and the like).
#[derive(Clone, Copy, Debug, Default)]
pub struct Heap;

// SAFETY: every method returns memory from `sys::heap`, aligned as asked (16 bytes, or
// shifted into a padded block), or null; `dealloc` and `realloc` pass back only pointers it
// returned.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        sys_heap::aligned(layout.align(), layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            return sys_heap::allocate(layout.size(), true);
        }
        let ptr = sys_heap::aligned(layout.align(), layout.size());
        if !ptr.is_null() {
            // SAFETY: `ptr` holds `layout.size()` writable bytes.
            unsafe { ptr.write_bytes(0, layout.size()) };
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator and is freed once.
        unsafe { sys_heap::release(ptr) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from this allocator; `resize` keeps 16-byte alignment.
            return unsafe { sys_heap::resize(ptr, new_size) };
        }
        let new = sys_heap::aligned(layout.align(), new_size);
        if !new.is_null() {
            // SAFETY: both blocks hold at least the smaller size and are distinct; `ptr`
            // came from this allocator and is not used again.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                sys_heap::release(ptr);
            }
        }
        new
    }
}

/// The C library's allocation functions on [`Heap`]'s memory, which [`heap!`](crate::heap)
/// exports under their C names. Failures are null with `errno` set to `ENOMEM` (`EINVAL`
/// for an alignment that is not a power of two), as C requires.
pub mod heap {
    use core::ffi::c_void;

    /// `malloc`: `size` bytes aligned to 16 (a unique pointer for 0).
    pub fn malloc(size: usize) -> *mut c_void {
        crate::sys::heap::malloc(size)
    }

    /// `calloc`: `count * size` zeroed bytes; null when the product overflows.
    pub fn calloc(count: usize, size: usize) -> *mut c_void {
        crate::sys::heap::calloc(count, size)
    }

    /// `realloc`: the memory resized, its contents kept up to the smaller size (in place
    /// when it fits, by moving pages for large ones); `malloc` for null.
    ///
    /// # Safety
    /// `ptr` is null or came from this heap and is not freed; on success it is not used
    /// again.
    pub unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: the caller's promise.
        unsafe { crate::sys::heap::resize(ptr.cast(), size).cast() }
    }

    /// `free` (nothing for null).
    ///
    /// # Safety
    /// `ptr` is null or came from this heap and is not freed yet, nor used after.
    pub unsafe fn free(ptr: *mut c_void) {
        // SAFETY: the caller's promise.
        unsafe { crate::sys::heap::release(ptr.cast()) }
    }

    /// `aligned_alloc`: `size` bytes aligned to `align`, a power of two.
    pub fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
        crate::sys::heap::aligned_alloc(align, size)
    }

    /// `malloc_usable_size`: how many bytes the memory at `ptr` holds (0 for null).
    ///
    /// # Safety
    /// `ptr` is null or came from this heap and is not freed.
    pub unsafe fn malloc_usable_size(ptr: *mut c_void) -> usize {
        // SAFETY: the caller's promise.
        unsafe { crate::sys::heap::malloc_usable_size(ptr) }
    }
}

/// Writes `tinylambda: panicked at FILE:LINE:COLUMN: MESSAGE` to stderr as one line (a
/// message longer than the line is cut) and ends the process at once with status 101, as
/// a panic in a std program does. Lambda reports the invocation as `Runtime.ExitError` and
/// starts a fresh runtime for the next one.
pub fn report_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut message = Text {
        buf: [0; 512],
        len: 0,
    };
    let message = match info.message().as_str() {
        Some(text) => text.as_bytes(),
        None => {
            // Arguments to format: `core::fmt` into a buffer on the stack.
            let _ = fmt::write(&mut message, format_args!("{}", info.message()));
            message.buf.get(..message.len).unwrap_or_default()
        }
    };
    let (file, line, column) = info
        .location()
        .map_or(("?", 0, 0), |l| (l.file(), l.line(), l.column()));
    crate::log::line(
        crate::Level::Fatal,
        None,
        b"panicked at \x01:\x02:\x03: \x04",
        &[
            file.as_bytes(),
            crate::request::decimal(u64::from(line), &mut [0; 20]),
            crate::request::decimal(u64::from(column), &mut [0; 20]),
            message,
        ],
    );
    // Without exit handlers, which may not expect to run on a thread that panicked.
    crate::sys::exit_at_once(101)
}

/// A fixed buffer `core::fmt` writes into, keeping what fits.
struct Text {
    buf: [u8; 512],
    len: usize,
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.len += crate::bytes::join(
            self.buf.get_mut(self.len..).unwrap_or_default(),
            &[s.as_bytes()],
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_gives_every_alignment_and_keeps_contents_across_realloc() {
        for align in [1, 2, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 16, 100, 5000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; the pointers are used within their sizes.
                unsafe {
                    let p = Malloc.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "align {align} size {size}");
                    p.write_bytes(0xab, size);
                    let q = Malloc.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0);
                    assert!((0..size).all(|i| *q.add(i) == 0xab));
                    Malloc.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = Malloc.alloc_zeroed(layout);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    Malloc.dealloc(z, layout);
                }
            }
        }
    }
}

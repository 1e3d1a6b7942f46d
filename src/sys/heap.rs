//! A small heap for programs without std, in place of the C library's `malloc`: what
//! [`main!`](crate::main) makes the allocator of a static musl binary, for Rust and for the C
//! library alike (see [`crate::nostd::Heap`]). musl's own allocator (mallocng) is about 7 KiB
//! of code with its locks and system calls; this one is about 1 KiB, 1.4 KiB with the
//! C library's `mmap`, `mremap` and `munmap`.
//!
//! - Requests of up to 128 KiB (with the 16-byte header) are served in blocks of a power of
//!   two from 32 bytes to 128 KiB, carved from 1 MiB regions of anonymous memory (pages are
//!   only touched as blocks are used) and kept, once freed, on one free list per size for
//!   the next request of that size. That memory is never given back to the system: a
//!   Lambda function's working set repeats from one invocation to the next.
//! - Larger requests are mappings of their own (`mmap`), given back by `free` (`munmap`)
//!   and grown or shrunk in place or by moving pages, never by copying (`mremap`), which is
//!   how the receive buffer grows to a large event.
//! - One lock guards the free lists (one compare-and-swap to take); a thread that finds it
//!   taken yields its processor until it is free.
//! - Every block starts with a header that holds its size. A double `free` of a block of up
//!   to 128 KiB, or a header or free-list link that is not what it should be, ends the
//!   process with a message, as `abort` would: free links are stored mangled with their own
//!   address (as glibc's "safe-linking" does), so a stray write cannot point the next
//!   allocation at memory of its choosing. A larger block is unmapped by its first `free`,
//!   so a second one is not caught: it faults, or, if the address has been mapped again
//!   meanwhile, unmaps the new owner's memory (a double free is undefined behaviour in C).
//!
//! Failures are null with `errno` set to `ENOMEM` (`EINVAL` for a bad alignment), as C
//! requires.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::ptr::{self, null_mut};

unsafe extern "C" {
    fn __errno_location() -> *mut c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn mremap(old: *mut c_void, old_len: usize, new_len: usize, flags: c_int, ...) -> *mut c_void;
    fn sched_yield() -> c_int;
}

/// Bytes in front of every block's memory: the block's size and flags in the last 8.
const HEADER: usize = 16;
/// The smallest block: 2^5 = 32 bytes.
const SMALLEST: u32 = 5;
/// Block sizes 32 B, 64 B, ... 128 KiB.
const CLASSES: usize = 13;
/// The largest block carved from a region; anything larger is a mapping of its own.
const LARGEST: usize = 1 << (SMALLEST as usize + CLASSES - 1);
/// Regions blocks are carved from.
const REGION: usize = 1 << 20;

/// Header flag: a pointer handed out by [`aligned`], whose header holds its distance from
/// the start of the block's memory instead of a size.
const SHIFTED: usize = 1;
/// Header flag: the block is on a free list.
const FREE: usize = 2;

const PROT_READ_WRITE: c_int = 3;
const MAP_PRIVATE_ANONYMOUS: c_int = 0x22;
const MREMAP_MAYMOVE: c_int = 1;
const ENOMEM: c_int = 12;
const EINVAL: c_int = 22;

/// The free lists and the region being carved, behind the lock.
struct State {
    /// The first free block of each size (its address, mangled: see [`mangle`]), 0 when
    /// there is none.
    free: [usize; CLASSES],
    /// Where the next block is carved from, and where its region ends.
    next: usize,
    end: usize,
}

/// The state behind a lock.
struct Locked {
    lock: Lock,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only reached through `Locked::with`, which holds the lock.
unsafe impl Sync for Locked {}

static HEAP: Locked = Locked {
    lock: Lock::new(),
    state: UnsafeCell::new(State {
        free: [0; CLASSES],
        next: 0,
        end: 0,
    }),
};

impl Locked {
    /// Runs `f` on the state, holding the lock; a thread that finds it taken yields its
    /// processor until it is free. Nothing in `f` panics or allocates.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        while !self.lock.try_lock() {
            // SAFETY: a plain system call.
            unsafe { sched_yield() };
        }
        // SAFETY: the lock is held, so this is the only reference.
        let result = f(unsafe { &mut *self.state.get() });
        self.lock.unlock();
        result
    }
}

/// A lock taken by one compare-and-swap: Rust's atomics.
#[cfg(not(target_arch = "aarch64"))]
struct Lock(core::sync::atomic::AtomicBool);

#[cfg(not(target_arch = "aarch64"))]
impl Lock {
    const fn new() -> Self {
        Lock(core::sync::atomic::AtomicBool::new(false))
    }

    fn try_lock(&self) -> bool {
        use core::sync::atomic::Ordering;
        self.0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self) {
        self.0.store(false, core::sync::atomic::Ordering::Release);
    }
}

/// A lock taken by one compare-and-swap: on arm64 the C library's spin lock
/// (`pthread_spinlock_t`, an `int`), whose compare-and-swap is the C library's own inline
/// code. Rust's atomics call out there to helpers that choose the instructions at start
/// (about 900 bytes with their start-up code).
#[cfg(target_arch = "aarch64")]
struct Lock(UnsafeCell<c_int>);

// SAFETY: the `int` is only touched by the C library's atomic operations.
#[cfg(target_arch = "aarch64")]
unsafe impl Sync for Lock {}

#[cfg(target_arch = "aarch64")]
impl Lock {
    const fn new() -> Self {
        Lock(UnsafeCell::new(0))
    }

    fn try_lock(&self) -> bool {
        unsafe extern "C" {
            fn pthread_spin_trylock(lock: *mut c_int) -> c_int;
        }
        // SAFETY: a valid, initialised `pthread_spinlock_t` for the whole run.
        unsafe { pthread_spin_trylock(self.0.get()) == 0 }
    }

    fn unlock(&self) {
        unsafe extern "C" {
            fn pthread_spin_unlock(lock: *mut c_int) -> c_int;
        }
        // SAFETY: held by this thread (see `Locked::with`), released once.
        unsafe { pthread_spin_unlock(self.0.get()) };
    }
}

/// The header word of the memory at `p`.
fn header(p: *mut u8) -> *mut usize {
    p.wrapping_sub(8).cast()
}

/// A free-list link as stored at `at`: mangled with the address it is stored at, so that
/// only a write that knows both can forge one.
fn mangle(link: usize, at: *mut u8) -> usize {
    link ^ (at.addr() >> 12)
}

/// Null, with `errno` set to `code`.
fn fail(code: c_int) -> *mut u8 {
    // SAFETY: the calling thread's `errno`.
    unsafe { *__errno_location() = code };
    null_mut()
}

/// Ends the process: the heap's bookkeeping was overwritten, or a block freed twice. One
/// log line (which allocates nothing), then as the C libraries' allocators end: with std,
/// `abort` (`SIGABRT`); without std, `_exit(134)`, the status a shell shows for `SIGABRT`,
/// since musl's `abort` (signal masks, `raise`) would add about 500 bytes to a no_std
/// binary. Never a panic: it would unwind out of an allocator (undefined behaviour in a
/// program built with `panic = "unwind"`), and a panic handler may allocate on a heap known
/// to be damaged.
#[cold]
#[inline(never)]
fn corrupt() -> ! {
    crate::log::line(
        crate::Level::Fatal,
        None,
        b"heap corruption or double free",
        &[],
    );
    #[cfg(feature = "std")]
    {
        std::process::abort()
    }
    #[cfg(not(feature = "std"))]
    {
        super::exit_at_once(134)
    }
}

/// The block size (header included) for a request of `size` bytes, a multiple of 16; `None`
/// when it does not fit in an `isize`.
fn total(size: usize) -> Option<usize> {
    size.checked_add(HEADER + 15)
        .map(|t| t & !15)
        .filter(|&t| t <= isize::MAX as usize)
}

/// The free list for blocks of at least `total` bytes (`total <= LARGEST`).
fn class(total: usize) -> usize {
    let bits = usize::BITS - (total - 1).leading_zeros();
    bits.saturating_sub(SMALLEST) as usize
}

/// A fresh anonymous mapping of `len` bytes (zeroed), or null.
fn map(len: usize) -> *mut u8 {
    // SAFETY: a new private mapping, overlapping nothing.
    let p = unsafe {
        mmap(
            null_mut(),
            len,
            PROT_READ_WRITE,
            MAP_PRIVATE_ANONYMOUS,
            -1,
            0,
        )
    };
    if p.addr() == usize::MAX {
        return null_mut();
    }
    p.cast()
}

/// `size` bytes aligned to 16, zeroed when `zero`; null with `ENOMEM` when there is no
/// memory.
pub(crate) fn allocate(size: usize, zero: bool) -> *mut u8 {
    let Some(total) = total(size) else {
        return fail(ENOMEM);
    };
    if total > LARGEST {
        let start = map(total);
        if start.is_null() {
            return fail(ENOMEM);
        }
        let p = start.wrapping_add(HEADER);
        // SAFETY: the mapping holds the header.
        unsafe { *header(p) = total };
        return p;
    }
    let class = class(total);
    let block = 1 << (class + SMALLEST as usize);
    let (p, reused) = HEAP.with(|heap| {
        let Some(head) = heap.free.get_mut(class) else {
            return (null_mut(), false);
        };
        if *head != 0 {
            let p: *mut u8 = ptr::with_exposed_provenance_mut(*head);
            // SAFETY: a block this heap put on the list, still on it (checked): its header
            // and first word are its own.
            unsafe {
                let next = mangle(*p.cast::<usize>(), p);
                if *header(p) != block | FREE || next & 15 != 0 {
                    return (null_mut(), true);
                }
                *head = next;
                *header(p) = block;
            }
            return (p, true);
        }
        if heap.end - heap.next < block {
            let region = map(REGION);
            if region.is_null() {
                return (null_mut(), false);
            }
            heap.next = region.expose_provenance();
            heap.end = heap.next + REGION;
        }
        let p: *mut u8 = ptr::with_exposed_provenance_mut(heap.next + HEADER);
        heap.next += block;
        // SAFETY: the block is in the region, unused until now.
        unsafe { *header(p) = block };
        (p, false)
    });
    if p.is_null() {
        if reused {
            corrupt()
        }
        return fail(ENOMEM);
    }
    if zero && reused {
        // SAFETY: the block holds at least `size` bytes. (Fresh region memory is zero.)
        unsafe { p.write_bytes(0, size) };
    }
    p
}

/// `size` bytes aligned to `align` (a power of two); null with `ENOMEM` when there is no
/// memory. Over 16, the block is larger by `align` and the pointer shifted into it, its
/// header saying by how much.
pub(crate) fn aligned(align: usize, size: usize) -> *mut u8 {
    if align <= HEADER {
        return allocate(size, false);
    }
    let Some(padded) = size.checked_add(align) else {
        return fail(ENOMEM);
    };
    let p = allocate(padded, false);
    let shift = p.addr().wrapping_neg() & (align - 1);
    if p.is_null() || shift == 0 {
        return p;
    }
    // Both are multiples of 16, so `shift` is at least 16: the shifted header is in the block,
    // and `size` bytes fit after it (`shift <= align - 16`).
    let q = p.wrapping_add(shift);
    // SAFETY: see above.
    unsafe { *header(q) = shift | SHIFTED };
    q
}

/// The start of the block `p` points into, and `p`'s distance from it.
///
/// # Safety
/// `p` came from this heap and is not freed.
unsafe fn unshift(p: *mut u8) -> (*mut u8, usize) {
    // SAFETY: the caller's promise: `p` has a header.
    let h = unsafe { *header(p) };
    if h & SHIFTED == 0 {
        return (p, 0);
    }
    let shift = h & !15;
    (p.wrapping_sub(shift), shift)
}

/// How many bytes the memory at `p` holds (at least what was asked for).
///
/// # Safety
/// `p` came from this heap and is not freed.
pub(crate) unsafe fn usable(p: *mut u8) -> usize {
    // SAFETY: the caller's promise.
    let (start, shift) = unsafe { unshift(p) };
    // SAFETY: `start` has the block's header.
    let h = unsafe { *header(start) };
    (h & !15).saturating_sub(HEADER + shift)
}

/// Gives the memory at `p` back (nothing for null).
///
/// # Safety
/// `p` is null or came from this heap and is not freed yet.
pub(crate) unsafe fn release(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: the caller's promise.
    let (p, _) = unsafe { unshift(p) };
    // SAFETY: read here only to tell a mapping, which only this caller owns, from a block.
    let h = unsafe { *header(p) };
    if h > LARGEST && h & 15 == 0 {
        // SAFETY: a mapping of `h` bytes made by `allocate` or `resize`, unmapped once.
        unsafe { munmap(p.wrapping_sub(HEADER).cast(), h) };
        return;
    }
    let freed = HEAP.with(|heap| {
        // SAFETY: `p` is a block of this heap: its header and first word are its own.
        unsafe {
            let h = *header(p);
            if !h.is_power_of_two() || !(1 << SMALLEST..=LARGEST).contains(&h) {
                return false;
            }
            let Some(head) = heap.free.get_mut(class(h)) else {
                return false;
            };
            *p.cast::<usize>() = mangle(*head, p);
            *head = p.expose_provenance();
            *header(p) = h | FREE;
        }
        true
    });
    if !freed {
        corrupt()
    }
}

/// The memory at `p` resized to `size` bytes, its contents kept up to the smaller size:
/// the same pointer when the block holds `size` (and is not much larger), a grown or shrunk
/// mapping for large ones, else new memory. Null with `ENOMEM` when there is no memory (the
/// old memory is then untouched); `allocate` for a null `p`. Alignment over 16 is not kept.
///
/// # Safety
/// `p` is null or came from this heap and is not freed.
pub(crate) unsafe fn resize(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return allocate(size, false);
    }
    let Some(total) = total(size) else {
        return fail(ENOMEM);
    };
    // SAFETY: the caller's promise.
    let h = unsafe { *header(p) };
    if h & 15 == 0 {
        if h > LARGEST && total > LARGEST {
            // SAFETY: a mapping of `h` bytes made here, moved whole by the kernel.
            let start = unsafe { mremap(p.wrapping_sub(HEADER).cast(), h, total, MREMAP_MAYMOVE) };
            if start.addr() == usize::MAX {
                return fail(ENOMEM);
            }
            let p = start.cast::<u8>().wrapping_add(HEADER);
            // SAFETY: the mapping holds the header.
            unsafe { *header(p) = total };
            return p;
        }
        if total <= h && total > h / 4 {
            return p;
        }
    }
    let new = allocate(size, false);
    if !new.is_null() {
        // SAFETY: both hold at least the smaller size, and they are different memory.
        unsafe {
            ptr::copy_nonoverlapping(p, new, usable(p).min(size));
            release(p);
        }
    }
    new
}

/// C's `malloc`.
pub(crate) fn malloc(size: usize) -> *mut c_void {
    allocate(size, false).cast()
}

/// C's `calloc`: null with `ENOMEM` when `count * size` overflows.
pub(crate) fn calloc(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(size) => allocate(size, true).cast(),
        None => fail(ENOMEM).cast(),
    }
}

/// C's `aligned_alloc` (and, through the C library, `posix_memalign` and `memalign`): null
/// with `EINVAL` when `align` is not a power of two.
pub(crate) fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return fail(EINVAL).cast();
    }
    aligned(align, size).cast()
}

/// C's `malloc_usable_size` (0 for null).
///
/// # Safety
/// As [`usable`], or null.
pub(crate) unsafe fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: the caller's promise.
    unsafe { usable(p.cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills `len` bytes at `p` with `byte`.
    fn fill(p: *mut u8, len: usize, byte: u8) {
        // SAFETY: callers pass memory of at least `len` bytes.
        unsafe { p.write_bytes(byte, len) }
    }

    fn all(p: *mut u8, len: usize, byte: u8) -> bool {
        // SAFETY: callers pass memory of at least `len` bytes.
        unsafe {
            core::slice::from_raw_parts(p, len)
                .iter()
                .all(|&b| b == byte)
        }
    }

    /// A block freed twice ends the process with the heap's line and `SIGABRT` (status 134
    /// without std), never by a panic (which would unwind out of the allocator). Run in a
    /// child process: this test binary again, running only this test, with a variable that
    /// makes it the child.
    #[cfg(not(miri))]
    #[test]
    fn a_double_free_ends_the_process_with_a_line_and_abort() {
        const CHILD: &str = "TINYLAMBDA_TEST_DOUBLE_FREE";
        if std::env::var_os(CHILD).is_some() {
            let p = allocate(100, false);
            // SAFETY: `p` is live for the first `release`; the second is the defect the
            // heap must catch before it touches anything.
            unsafe {
                release(p);
                release(p);
            }
            return;
        }
        // Through the program the test suite runs its children with, when it has one (the
        // arm64 suite runs under qemu-aarch64-static; see tests/support).
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match std::env::var_os("TINYLAMBDA_TEST_RUNNER") {
            Some(runner) => {
                let mut cmd = std::process::Command::new(runner);
                cmd.arg(exe);
                cmd
            }
            None => std::process::Command::new(exe),
        };
        let out = cmd
            .args([
                "--exact",
                "sys::heap::tests::a_double_free_ends_the_process_with_a_line_and_abort",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        use std::os::unix::process::ExitStatusExt;
        let aborted = if cfg!(feature = "std") {
            out.status.signal() == Some(6)
        } else {
            out.status.code() == Some(134)
        };
        assert!(
            aborted,
            "SIGABRT or 134 expected, got {:?}: {stderr}",
            out.status
        );
        assert!(
            stderr.contains("heap corruption or double free"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    #[test]
    fn sizes_get_their_class_and_usable_room() {
        for (size, room) in [
            (0, 16),
            (1, 16),
            (16, 16),
            (17, 48),
            (100, 112),
            (65_520, 65_520),
            (65_521, 131_056),
            (131_056, 131_056),
            (131_057, 131_072),
            (1 << 20, (1 << 20) + 16 - 16),
        ] {
            let p = allocate(size, false);
            assert!(!p.is_null());
            assert_eq!(p.addr() % 16, 0);
            // SAFETY: `p` is live.
            unsafe {
                assert_eq!(usable(p), room, "size {size}");
                fill(p, size, 0xa5);
                release(p);
            }
        }
    }

    #[test]
    fn freed_blocks_are_reused_and_zeroed_on_request() {
        let p = allocate(40, false);
        fill(p, 40, 0xff);
        // SAFETY: live, freed once.
        unsafe { release(p) };
        let mut seen = false;
        let mut live = Vec::new();
        for _ in 0..64 {
            let q = allocate(40, true);
            assert!(all(q, 40, 0));
            seen |= q == p;
            live.push(q);
        }
        assert!(seen, "a freed block is handed out again");
        for q in live {
            // SAFETY: live, freed once.
            unsafe { release(q) };
        }
    }

    #[test]
    fn resize_keeps_contents_across_classes_and_mappings() {
        let mut p = allocate(10, false);
        fill(p, 10, 7);
        let mut len = 10;
        for size in [20, 200, 5_000, 70_000, 200_000, 3 << 20, 100_000, 1_000, 5] {
            // SAFETY: `p` is live; the old pointer is not used after.
            p = unsafe { resize(p, size) };
            assert!(!p.is_null());
            let kept = len.min(size);
            assert!(all(p, kept, 7), "to {size}");
            fill(p, size, 7);
            len = size;
        }
        // SAFETY: live, freed once.
        unsafe { release(p) };
        // SAFETY: null is `allocate`.
        let q = unsafe { resize(null_mut(), 3) };
        // SAFETY: live, freed once.
        unsafe { release(q) };
    }

    #[test]
    fn aligned_memory_is_aligned_and_frees() {
        for align in [1, 16, 32, 64, 4096, 1 << 16] {
            for size in [0, 1, 100, 200_000] {
                let p = aligned(align, size);
                assert_eq!(p.addr() % align, 0);
                fill(p, size, 1);
                // SAFETY: `p` is live.
                unsafe {
                    assert!(usable(p) >= size);
                    let q = resize(p, size + 10);
                    assert!(all(q, size, 1));
                    release(q);
                }
            }
        }
        assert!(aligned_alloc(24, 8).is_null());
    }

    #[test]
    fn impossible_sizes_fail_with_enomem() {
        assert!(allocate(usize::MAX - 8, false).is_null());
        assert!(allocate(isize::MAX as usize, false).is_null());
        assert!(calloc(usize::MAX / 2, 3).is_null());
        // SAFETY: the calling thread's `errno`.
        assert_eq!(unsafe { *__errno_location() }, ENOMEM);
        assert!(aligned(1 << 12, usize::MAX - 100).is_null());
        let p = allocate(8, false);
        // SAFETY: `p` is live; after a failed resize it still is.
        unsafe {
            assert!(resize(p, usize::MAX - 3).is_null());
            release(p);
        }
    }

    #[test]
    fn threads_share_the_heap() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..20_000usize {
                        let size = (i * 7919 + t) % 3000;
                        let p = allocate(size, false);
                        fill(p, size, t as u8);
                        kept.push((p, size));
                        if kept.len() > 50 {
                            let (p, size) = kept.swap_remove(i % 50);
                            assert!(all(p, size, t as u8));
                            // SAFETY: live, freed once.
                            unsafe { release(p) };
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
}

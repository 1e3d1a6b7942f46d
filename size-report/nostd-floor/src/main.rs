//! The size floor without std: reads `AWS_LAMBDA_RUNTIME_API` (an `IP:port`), connects,
//! then asks for `/next` and reads the answer into a growing buffer, forever. Everything
//! through the C library; `malloc` is the allocator; a panic exits.

#![no_std]
#![no_main]
extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_char, c_int, c_void};

#[cfg_attr(target_feature = "crt-static", link(name = "c", kind = "static", modifiers = "-bundle"))]
#[cfg_attr(not(target_feature = "crt-static"), link(name = "c"))]
unsafe extern "C" {
    fn getenv(name: *const c_char) -> *const c_char;
    fn strlen(s: *const c_char) -> usize;
    fn inet_pton(af: c_int, src: *const c_char, dst: *mut c_void) -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
    fn malloc(size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn exit(code: c_int) -> !;
}

struct Malloc;

// SAFETY: the C library's allocator; alignments up to 16 only, as this program needs.
unsafe impl GlobalAlloc for Malloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { malloc(layout.size()).cast() }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, _: Layout) {
        unsafe { free(ptr.cast()) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, _: Layout, size: usize) -> *mut u8 {
        unsafe { realloc(ptr.cast(), size).cast() }
    }
}

#[global_allocator]
static ALLOCATOR: Malloc = Malloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe { exit(1) }
}

#[repr(C)]
struct SockAddrIn {
    family: u16,
    port: [u8; 2],
    addr: [u8; 4],
    zero: [u8; 8],
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // SAFETY: C library calls on live, NUL-terminated and correctly sized buffers.
    unsafe {
        let value = getenv(c"AWS_LAMBDA_RUNTIME_API".as_ptr());
        if value.is_null() {
            exit(1)
        }
        let text = core::slice::from_raw_parts(value.cast::<u8>(), strlen(value));
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            exit(1)
        };
        let mut host = [0u8; 64];
        let Some(dst) = host.get_mut(..colon) else {
            exit(1)
        };
        dst.copy_from_slice(&text[..colon]);
        let mut port: u16 = 0;
        for &d in &text[colon + 1..] {
            port = port.wrapping_mul(10).wrapping_add(u16::from(d.wrapping_sub(b'0')));
        }
        let mut addr = SockAddrIn {
            family: 2,
            port: port.to_be_bytes(),
            addr: [0; 4],
            zero: [0; 8],
        };
        if inet_pton(2, host.as_ptr().cast(), addr.addr.as_mut_ptr().cast()) != 1 {
            exit(1)
        }
        let fd = socket(2, 1, 0);
        if fd < 0 || connect(fd, (&raw const addr).cast(), 16) != 0 {
            exit(1)
        }
        let request = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n";
        let mut buf: Vec<u8> = Vec::new();
        loop {
            if write(fd, request.as_ptr().cast(), request.len()) < 0 {
                exit(1)
            }
            buf.reserve(4096);
            let n = read(fd, buf.as_mut_ptr().add(buf.len()).cast(), 4096);
            if n <= 0 {
                exit(1)
            }
            buf.set_len(buf.len() + n as usize);
        }
    }
}

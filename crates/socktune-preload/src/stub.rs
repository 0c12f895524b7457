//! The stub (libsocktune.so, `stub/stub.rs`), where it loaded the shim: what it captured at load,
//! and the functions that come after it in the loader's order. Part of the bottom layer: it
//! calls nothing of ours.

use libc::{c_char, c_void};
use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the stub (libsocktune.so) captured at load, as its `socktune_start` gives it.
#[repr(C)]
pub struct Start {
    /// The `SOCKTUNE_*` entries, NULL-terminated.
    pub vars: *const *const c_char,
    pub argv0: *const c_char,
    /// The stub's absolute path.
    pub lib_path: *const c_char,
    /// The real and effective user and group ids at load.
    pub credentials: [u32; 4],
}

/// The stub's export `name`, looked up once into `cache` (0: not yet; 1: absent).
fn export(name: &CStr, cache: &AtomicUsize) -> Option<usize> {
    const ABSENT: usize = 1;
    let mut at = cache.load(Ordering::Acquire);
    if at == 0 {
        // SAFETY: dlsym with a NUL-terminated name.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        at = if f.is_null() { ABSENT } else { f as usize };
        cache.store(at, Ordering::Release);
    }
    (at != ABSENT).then_some(at)
}

/// The stub's capture, where the stub loaded the shim; `None` where the shim was preloaded on
/// its own (it then reads the environment at its own load).
pub fn start() -> Option<&'static Start> {
    static START: AtomicUsize = AtomicUsize::new(0);
    let f = export(c"socktune_start", &START)?;
    // SAFETY: the stub's `socktune_start` has this signature, and returns its static capture
    // (never written again) or null.
    unsafe {
        let f = std::mem::transmute::<usize, extern "C" fn() -> *const Start>(f);
        f().as_ref()
    }
}

/// The stub's `socktune_next`: `dlsym(RTLD_NEXT)` as seen from the stub, which is what the
/// program's call would have reached without us.
pub fn next() -> Option<unsafe extern "C" fn(*const c_char) -> *mut c_void> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let f = export(c"socktune_next", &NEXT)?;
    // SAFETY: the stub's `socktune_next` has this signature.
    Some(unsafe {
        std::mem::transmute::<usize, unsafe extern "C" fn(*const c_char) -> *mut c_void>(f)
    })
}

/// Tells the stub, where it loaded the shim, that the shim keeps a state for `fd`: until then
/// the stub sends that fd's reads and writes straight to libc.
#[cold]
#[inline(never)]
pub fn tracked(fd: i32) {
    static TRACKED: AtomicUsize = AtomicUsize::new(0);
    if let Some(f) = export(c"socktune_tracked", &TRACKED) {
        // SAFETY: the stub's `socktune_tracked` has this signature.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(f) };
        f(fd);
    }
}

//! errno, read and restored: the shim's own calls never leak an errno into the program's call.

use libc::c_int;

pub fn get() -> c_int {
    // SAFETY: glibc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() }
}

pub fn set(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e }
}

/// Restores errno on drop, unwinding included.
pub struct KeepErrno(c_int);

impl KeepErrno {
    pub fn now() -> KeepErrno {
        KeepErrno(get())
    }
}

impl Drop for KeepErrno {
    fn drop(&mut self) {
        set(self.0)
    }
}

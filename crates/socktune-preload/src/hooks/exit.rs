//! _exit and _Exit: a process that ends without exit() (a forked worker, typically) still
//! writes its buffered connection records first. exit() itself drains through atexit.

use crate::stats;
use crate::sys::Real;
use libc::c_int;

type ExitFn = unsafe extern "C" fn(c_int) -> !;

unsafe fn exit_via(real: &Real, status: c_int) -> ! {
    stats::at_exit();
    match real.addr() {
        // SAFETY: dlsym found glibc's _exit/_Exit, which has this signature.
        Some(addr) => std::mem::transmute::<*const libc::c_void, ExitFn>(addr)(status),
        None => loop {
            libc::syscall(libc::SYS_exit_group, status);
        },
    }
}

static EXIT: Real = Real::new(c"_exit");
static EXIT_UPPER: Real = Real::new(c"_Exit");

/// Replaces _exit(2).
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    exit_via(&EXIT, status)
}

/// Replaces _Exit, C's name for _exit.
#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    exit_via(&EXIT_UPPER, status)
}

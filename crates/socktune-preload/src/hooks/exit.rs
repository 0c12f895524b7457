//! _exit and _Exit: a process that ends without exit() (a forked worker, typically) still
//! writes its buffered connection records first. exit() itself drains through atexit.

use crate::guard::act;
use crate::{lifecycle, real};
use libc::c_int;

/// Replaces _exit(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    act("_exit", lifecycle::before_exit);
    unsafe { real::exit_via(&real::EXIT, status) }
}

/// Replaces _Exit, C's name for _exit.
#[allow(non_snake_case)]
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    act("_Exit", lifecycle::before_exit);
    unsafe { real::exit_via(&real::EXIT_UPPER, status) }
}

//! setsockopt: the program's own TCP choices are respected, never fought.

use crate::{fdtable, ops};
use libc::{c_int, c_void, socklen_t};
use redhook::{hook, real};
use std::mem::size_of;

/// setsockopt(2) itself, for the shim's own options.
pub unsafe fn real_setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    real!(setsockopt)(fd, level, name, value, len)
}

// Replaces setsockopt(2): notes which options the program sets itself before applying them.
hook! {
    unsafe fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int => st_setsockopt {
        if fdtable::get(fd).is_tcp() {
            let int = (!value.is_null() && len as usize >= size_of::<c_int>()).then(|| value.cast::<c_int>().read_unaligned());
            let linger = (!value.is_null() && len as usize >= size_of::<libc::linger>())
                .then(|| value.cast::<libc::linger>().read_unaligned().l_onoff != 0);
            ops::program_sets(fd, level, name, int, linger);
        }
        real!(setsockopt)(fd, level, name, value, len)
    }
}

//! close, shutdown, close_range, dup, dup2, dup3 and fcntl(F_DUPFD): an fd's entry dies before the
//! real close and is copied when the fd is duplicated.

use crate::fdtable;
use crate::policy::Kind;
use crate::sys::Real;
use crate::{ops, runtime};
use libc::{c_int, c_uint, c_ulong};
use redhook::{hook, real};

fn forget(fd: c_int) {
    let meta = fdtable::get(fd);
    if meta.kind() != Kind::Empty && !runtime::in_vfork_child() {
        ops::before_close(fd, meta);
    }
}

// Replaces close(2).
hook! {
    unsafe fn close(fd: c_int) -> c_int => st_close {
        forget(fd);
        real!(close)(fd)
    }
}

// Replaces shutdown(2): a FIN rides on the corked response.
hook! {
    unsafe fn shutdown(fd: c_int, how: c_int) -> c_int => st_shutdown {
        let connection = fdtable::get(fd).is_connection();
        if connection {
            ops::before_shutdown(fd, how);
        }
        let r = real!(shutdown)(fd, how);
        if connection && r == 0 {
            ops::after_shutdown(fd, how);
        }
        r
    }
}

// Replaces dup(2).
hook! {
    unsafe fn dup(fd: c_int) -> c_int => st_dup {
        let new = real!(dup)(fd);
        ops::duplicated(fd, new);
        new
    }
}

// Replaces dup2(2): its implicit close of `new` clears new's entry first.
hook! {
    unsafe fn dup2(old: c_int, new: c_int) -> c_int => st_dup2 {
        if old == new {
            return real!(dup2)(old, new);
        }
        forget(new);
        let r = real!(dup2)(old, new);
        ops::duplicated(old, r);
        r
    }
}

// Replaces dup3(2), as dup2.
hook! {
    unsafe fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int => st_dup3 {
        if old != new {
            forget(new);
        }
        let r = real!(dup3)(old, new, flags);
        ops::duplicated(old, r);
        r
    }
}

type CloseRangeFn = unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int;
static CLOSE_RANGE: Real = Real::new(c"close_range");

/// Replaces close_range(2) (glibc ≥ 2.34), which closes without calling close().
#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let Some(addr) = CLOSE_RANGE.addr() else {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: dlsym found glibc's close_range, which has this signature.
    let real: CloseRangeFn = std::mem::transmute(addr);
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 && !runtime::in_vfork_child() {
        fdtable::for_each_tracked(|fd, meta| {
            if (first..=last).contains(&(fd as c_uint)) {
                ops::before_close(fd, meta);
            }
        });
    }
    real(first, last, flags)
}

type FcntlFn = unsafe extern "C" fn(c_int, c_int, c_ulong) -> c_int;
static FCNTL: Real = Real::new(c"fcntl");
static FCNTL64: Real = Real::new(c"fcntl64");

/// fcntl is variadic; its one optional argument travels in the same register as a third fixed
/// argument on Linux's x86-64 and AArch64 calling conventions, so it is passed on as a word.
unsafe fn fcntl_via(real: &Real, fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let Some(addr) = real.addr() else {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: glibc's fcntl/fcntl64, called with the word the caller passed.
    let real: FcntlFn = std::mem::transmute(addr);
    let r = real(fd, cmd, arg);
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        ops::duplicated(fd, r);
    }
    r
}

/// Replaces fcntl(2): F_DUPFD and F_DUPFD_CLOEXEC duplicate the fd's entry.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl_via(&FCNTL, fd, cmd, arg)
}

/// Replaces fcntl64, which programs built with 64-bit file offsets call.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl_via(&FCNTL64, fd, cmd, arg)
}

//! The write family: each call may start a response, which is corked until its boundary.

use crate::{fdtable, ops};
use libc::{c_int, c_void, iovec, msghdr, off64_t, off_t, size_t, sockaddr, socklen_t, ssize_t};
use redhook::{hook, real};

/// send(2) itself, for the shim's own use.
pub unsafe fn real_send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    real!(send)(fd, buf, n, flags)
}

/// Only connections can need anything; checked here so that writes to files, pipes and
/// listeners skip the call. `gathered`: the call hands over several buffers at once.
#[inline]
fn before(fd: c_int, gathered: bool) {
    let meta = fdtable::get(fd);
    if meta.is_connection() {
        ops::before_write(fd, meta, gathered);
    }
}

// Replaces write(2).
hook! {
    unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t => st_write {
        before(fd, false);
        real!(write)(fd, buf, n)
    }
}

// Replaces writev(2).
hook! {
    unsafe fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t => st_writev {
        before(fd, count > 1);
        real!(writev)(fd, iov, count)
    }
}

// Replaces send(2).
hook! {
    unsafe fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t => st_send {
        before(fd, false);
        real!(send)(fd, buf, n, flags)
    }
}

// Replaces sendto(2).
hook! {
    unsafe fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t => st_sendto {
        before(fd, false);
        real!(sendto)(fd, buf, n, flags, addr, len)
    }
}

// Replaces sendmsg(2).
hook! {
    unsafe fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t => st_sendmsg {
        before(fd, !msg.is_null() && (*msg).msg_iovlen > 1);
        real!(sendmsg)(fd, msg, flags)
    }
}

// Replaces sendfile(2): a body sent after a corked header joins it in the same segments.
hook! {
    unsafe fn sendfile(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t => st_sendfile {
        before(out, false);
        real!(sendfile)(out, input, offset, count)
    }
}

// Replaces sendfile64(2), which programs built with 64-bit file offsets call.
hook! {
    unsafe fn sendfile64(out: c_int, input: c_int, offset: *mut off64_t, count: size_t) -> ssize_t => st_sendfile64 {
        before(out, false);
        real!(sendfile64)(out, input, offset, count)
    }
}

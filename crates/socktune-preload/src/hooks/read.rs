//! The read family: turning to read ends the response written before it.

use crate::{fdtable, ops};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};
use redhook::{hook, real};

/// Flushes the response before the read, and re-enters delayed-ACK mode after it. Only
/// connections can need either; reads of files and pipes go straight through.
#[inline]
fn around(fd: c_int, call: impl FnOnce() -> ssize_t) -> ssize_t {
    let meta = fdtable::get(fd);
    if !meta.is_connection() {
        return call();
    }
    ops::before_read(fd, meta);
    let n = call();
    ops::after_read(fd, meta, n);
    n
}

// Replaces read(2).
hook! {
    unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => st_read {
        around(fd, || real!(read)(fd, buf, n))
    }
}

// Replaces readv(2).
hook! {
    unsafe fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t => st_readv {
        around(fd, || real!(readv)(fd, iov, count))
    }
}

// Replaces recv(2).
hook! {
    unsafe fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t => st_recv {
        around(fd, || real!(recv)(fd, buf, n, flags))
    }
}

// Replaces recvfrom(2).
hook! {
    unsafe fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t => st_recvfrom {
        around(fd, || real!(recvfrom)(fd, buf, n, flags, addr, len))
    }
}

// Replaces recvmsg(2).
hook! {
    unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t => st_recvmsg {
        around(fd, || real!(recvmsg)(fd, msg, flags))
    }
}

// Replaces __read_chk, the read(2) of programs built with _FORTIFY_SOURCE.
hook! {
    unsafe fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t => st_read_chk {
        around(fd, || real!(__read_chk)(fd, buf, n, buflen))
    }
}

// Replaces __recv_chk, the fortified recv(2).
hook! {
    unsafe fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t => st_recv_chk {
        around(fd, || real!(__recv_chk)(fd, buf, n, buflen, flags))
    }
}

// Replaces __recvfrom_chk, the fortified recvfrom(2).
hook! {
    unsafe fn __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t => st_recvfrom_chk {
        around(fd, || real!(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, len))
    }
}

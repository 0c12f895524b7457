//! socket, socketpair, listen, accept, accept4.

use crate::fdtable;
use crate::ops;
use crate::policy::{Kind, Meta};
use libc::{c_int, sockaddr, socklen_t};
use redhook::{hook, real};

// Replaces socket(2): records whether the new fd is a TCP socket.
hook! {
    unsafe fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int => st_socket {
        let fd = real!(socket)(domain, ty, protocol);
        ops::created(fd, domain, ty, protocol);
        fd
    }
}

// Replaces socketpair(2): both ends are local sockets, never tuned.
hook! {
    unsafe fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int => st_socketpair {
        let r = real!(socketpair)(domain, ty, protocol, sv);
        if r == 0 {
            for fd in [*sv, *sv.add(1)] {
                // Only a stale entry left by an fd closed behind our back needs replacing.
                if fdtable::get(fd).kind() != Kind::Empty {
                    fdtable::set(fd, Meta::new(Kind::Other, 0, 0));
                }
            }
        }
        r
    }
}

// Replaces listen(2): defer-accept, Fast Open, quickack-off and the backlog override.
hook! {
    unsafe fn listen(fd: c_int, backlog: c_int) -> c_int => st_listen {
        ops::listen(fd, backlog, |b| real!(listen)(fd, b))
    }
}

// Replaces accept(2): the new socket takes its listener's plan.
hook! {
    unsafe fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int => st_accept {
        let new = real!(accept)(fd, addr, len);
        if new >= 0 {
            ops::accepted(fd, new);
        }
        new
    }
}

// Replaces accept4(2), as accept.
hook! {
    unsafe fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int => st_accept4 {
        let new = real!(accept4)(fd, addr, len, flags);
        if new >= 0 {
            ops::accepted(fd, new);
        }
        new
    }
}

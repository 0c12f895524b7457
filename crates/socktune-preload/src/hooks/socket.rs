//! socket, socketpair, listen, accept, accept4.

use crate::guard::act;
use crate::{armed, fdtable, real, setup, track};
use libc::{c_int, sockaddr, socklen_t};

/// Replaces socket(2): records whether the new fd is a TCP socket.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let fd = unsafe { real::socket(domain, ty, protocol) };
    act("socket", || track::created(fd, domain, ty, protocol));
    fd
}

/// Replaces socketpair(2): both ends are local sockets, never tuned.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
    sv: *mut c_int,
) -> c_int {
    let r = unsafe { real::socketpair(domain, ty, protocol, sv) };
    if r == 0 {
        // SAFETY: on success the kernel wrote two fds to `sv`.
        let fds = unsafe { [*sv, *sv.add(1)] };
        act("socketpair", || track::local_pair(fds));
    }
    r
}

/// Replaces listen(2): defer-accept, Fast Open, quickack-off and the backlog override.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    let listening = act("listen", || setup::before_listen(fd, backlog));
    let asked = listening.as_ref().map_or(backlog, |l| l.backlog);
    let r = unsafe { real::listen(fd, asked) };
    if let Some(l) = listening.filter(|_| r == 0) {
        act("listen", || setup::after_listen(fd, l));
    }
    r
}

/// accept() may wait for a peer that waits for what this thread armed (a test's socketpair
/// emulation connects, then accepts).
#[inline]
fn before_accept(call: &str) {
    if fdtable::armed_count() != 0 && armed::armed_here() {
        act(call, armed::before_thread_blocks);
    }
}

/// Replaces accept(2): the new socket takes its listener's plan.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    before_accept("accept");
    let new = unsafe { real::accept(fd, addr, len) };
    if new >= 0 {
        act("accept", || setup::accepted(fd, new));
    }
    new
}

/// Replaces accept4(2), as accept.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    before_accept("accept4");
    let new = unsafe { real::accept4(fd, addr, len, flags) };
    if new >= 0 {
        act("accept4", || setup::accepted(fd, new));
    }
    new
}

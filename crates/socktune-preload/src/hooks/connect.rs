//! connect and getpeername.

use crate::guard::act;
use crate::{armed, errno, fdtable, real, setup, sys};
use libc::{c_int, sockaddr, socklen_t};
use socktune_core::state::FdState;

/// Replaces connect(2): quickack-off, nodelay and Fast Open connect are set before the real
/// call; afterwards the connection may be armed (see `armed`), and a non-blocking one that Fast
/// Open left waiting for data reports EINPROGRESS, as a plain connect() would.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if fdtable::armed_count() != 0 {
        act("connect", || again(fd));
    }
    let connecting = act("connect", || {
        setup::before_connect(fd, sys::sockaddr_port(addr, len)?)
    });
    let r = unsafe { real::connect(fd, addr, len) };
    if let Some(c) = connecting {
        let e = errno::get();
        if let Some(reported) = act("connect", || armed::after_connect(fd, c, r, e)) {
            errno::set(reported);
            return -1;
        }
    }
    r
}

/// A second connect() on an armed socket. Non-blocking, the kernel answers EISCONN, as for a
/// connection that completed; blocking, it would wait for a SYN that never leaves, so it goes.
fn again(fd: c_int) {
    if let Some(slot) = fdtable::lookup(fd).filter(|s| s.load().has(FdState::ARMED)) {
        if !sys::nonblocking(fd) {
            armed::before_other_call(fd, slot, slot.load());
        }
    }
}

/// Replaces getpeername(2): an armed Fast Open socket answers the address given to connect(),
/// as it will once connected, without sending its SYN early (curl asks right after connect).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    let r = unsafe { real::getpeername(fd, addr, len) };
    if r != 0 && errno::get() == libc::ENOTCONN && fdtable::armed_count() != 0 {
        // SAFETY: the program's own arguments to getpeername.
        if act("getpeername", || unsafe { armed::peer_name(fd, addr, len) }) {
            return 0;
        }
    }
    r
}

//! connect.

use crate::guard::act;
use crate::{armed, errno, real, setup, sys};
use libc::{c_int, sockaddr, socklen_t};

/// Replaces connect(2): quickack-off, nodelay and Fast Open connect are set before the real
/// call; afterwards the connection may be armed (see `armed`).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let connecting = act("connect", || {
        setup::before_connect(fd, sys::sockaddr_ip(addr, len)?)
    });
    let r = unsafe { real::connect(fd, addr, len) };
    if let Some(c) = connecting {
        let e = errno::get();
        act("connect", || armed::after_connect(fd, c, r, e));
    }
    r
}

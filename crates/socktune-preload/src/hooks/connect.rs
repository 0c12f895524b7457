//! connect.

use crate::{ops, sys};
use libc::{c_int, sockaddr, socklen_t};
use redhook::{hook, real};

// Replaces connect(2): quickack-off, nodelay and Fast Open connect are set before the real call.
hook! {
    unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int => st_connect {
        ops::connect(fd, sys::sockaddr_port(addr, len), || real!(connect)(fd, addr, len))
    }
}

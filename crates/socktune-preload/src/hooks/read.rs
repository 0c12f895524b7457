//! The read family: turning to read ends the response written before it.

use crate::fdtable::{self, Slot};
use crate::guard::act;
use crate::{armed, cork, quickack, real, setup, stats, sys};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};
use socktune_core::state::FdState;
use socktune_core::{framing, policy};

/// Counts the read, pushes the response before it, kicks an armed connection, and re-enters
/// delayed-ACK mode after it where the kernel may have left it. Only connections can need any of it; reads of files and pipes
/// cost one table lookup, inline.
#[inline(always)]
fn around(
    fd: c_int,
    call: &str,
    landing: impl FnOnce() -> Landing,
    real_read: impl FnOnce() -> ssize_t,
) -> ssize_t {
    let Some(slot) = fdtable::lookup(fd) else {
        return real_read();
    };
    let state = slot.load();
    if !state.is_connection() {
        return real_read();
    }
    let armed_elsewhere = fdtable::armed_count() != 0 && armed::armed_here();
    if state.has(FdState::RECORDED | FdState::WAITS_FOR_WRITE)
        || armed_elsewhere
        || !cork::read_ends_unheld(slot, state)
    {
        act_before(fd, call, slot, state);
    }
    let n = real_read();
    if n > 0 && state.reapplies_quickack() {
        let due = quickack_due(slot);
        // Read only once the call succeeded: the kernel has checked the program's pointers, so a
        // bad one got its EFAULT from the kernel, never a fault in the shim.
        // SAFETY: the kernel wrote `n` bytes where the call said.
        let continues = framing::continues_past(unsafe { landing().filled(n) });
        if due || continues {
            act(call, || quickack::after_read(fd, slot, continues));
        }
    }
    n
}

/// Where a read puts its first bytes and how many fit there, so that quickack-off can see
/// whether they begin an HTTP head the rest of which is still coming.
#[derive(Clone, Copy)]
struct Landing {
    at: *const u8,
    room: usize,
}

impl Landing {
    const NOWHERE: Landing = Landing {
        at: std::ptr::null(),
        room: 0,
    };

    fn buffer(at: *const c_void, room: size_t, flags: c_int) -> Landing {
        // MSG_TRUNC drops what it reads without filling the buffer; a MSG_PEEK read is read again.
        let ours = flags & (libc::MSG_TRUNC | libc::MSG_PEEK) == 0;
        Landing {
            at: if ours { at.cast() } else { std::ptr::null() },
            room,
        }
    }

    /// The first of `iov`'s buffers, if `count` gives any.
    ///
    /// # Safety
    /// `iov` is null or the program's array of `count` iovecs, as the call was handed them.
    unsafe fn first_of(iov: *const iovec, count: usize, flags: c_int) -> Landing {
        // SAFETY: the caller's promise; only the first entry is read.
        match unsafe { iov.as_ref() }.filter(|_| count > 0) {
            Some(first) => Landing::buffer(first.iov_base, first.iov_len, flags),
            None => Landing::NOWHERE,
        }
    }

    /// The bytes a read that returned `n` left here.
    ///
    /// # Safety
    /// The read returned `n` and filled its buffers in order.
    unsafe fn filled(&self, n: ssize_t) -> &[u8] {
        if self.at.is_null() {
            return &[];
        }
        let len = self.room.min(n as usize);
        // SAFETY: the kernel wrote `len` bytes at `at`, within the program's buffer.
        unsafe { std::slice::from_raw_parts(self.at, len) }
    }
}

/// Whether this read is one after which quickack-off may need setting again (see
/// [`policy::reapplies_quickack_after`]); one clock read from the vDSO, no system call.
#[inline]
fn quickack_due(slot: Slot) -> bool {
    let now = sys::coarse_ms();
    let last = slot.note_delayed_ack(now);
    policy::reapplies_quickack_after((last != 0).then(|| now.wrapping_sub(last)))
}

#[inline(never)]
fn act_before(fd: c_int, call: &str, slot: Slot, state: FdState) {
    act(call, || {
        if state.has(FdState::RECORDED) {
            stats::read(slot);
        }
        cork::before_read(fd, slot, state);
        armed::before_read_elsewhere(fd);
        if state.has(FdState::WAITS_FOR_WRITE) {
            armed::before_read(fd, slot, state);
        }
    });
}

/// Replaces read(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    around(
        fd,
        "read",
        || Landing::buffer(buf, n, 0),
        || unsafe { real::read(fd, buf, n) },
    )
}

/// Replaces readv(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: the program's iovecs, which readv took.
    let landing = || unsafe { Landing::first_of(iov, count.max(0) as usize, 0) };
    around(fd, "readv", landing, || unsafe {
        real::readv(fd, iov, count)
    })
}

/// Replaces recv(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    around(
        fd,
        "recv",
        || Landing::buffer(buf, n, flags),
        || unsafe { real::recv(fd, buf, n, flags) },
    )
}

/// Replaces recvfrom(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    around(
        fd,
        "recvfrom",
        || Landing::buffer(buf, n, flags),
        || unsafe { real::recvfrom(fd, buf, n, flags, addr, len) },
    )
}

/// Replaces recvmsg(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the program's message, which recvmsg filled.
    let landing = || {
        unsafe { msg.as_ref() }.map_or(Landing::NOWHERE, |m| unsafe {
            Landing::first_of(m.msg_iov, m.msg_iovlen, flags)
        })
    };
    let n = around(fd, "recvmsg", landing, || unsafe {
        real::recvmsg(fd, msg, flags)
    });
    // SAFETY: the call succeeded, so `msg` is the message the kernel filled.
    if let Some(msg) = unsafe { msg.as_ref() }.filter(|m| n >= 0 && m.msg_controllen != 0) {
        act("recvmsg", || sys::passed_fds(msg, setup::received));
    }
    n
}

/// Replaces __read_chk, the read(2) of programs built with _FORTIFY_SOURCE.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    around(
        fd,
        "__read_chk",
        || Landing::buffer(buf, n, 0),
        || unsafe { real::__read_chk(fd, buf, n, buflen) },
    )
}

/// Replaces __recv_chk, the fortified recv(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    around(
        fd,
        "__recv_chk",
        || Landing::buffer(buf, n, flags),
        || unsafe { real::__recv_chk(fd, buf, n, buflen, flags) },
    )
}

/// Replaces __recvfrom_chk, the fortified recvfrom(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    around(
        fd,
        "__recvfrom_chk",
        || Landing::buffer(buf, n, flags),
        || unsafe { real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, len) },
    )
}

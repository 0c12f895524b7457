//! The write family: each call may start a response, which is corked until its boundary.

use crate::fdtable::{self, Slot};
use crate::guard::act;
use crate::{armed, cork, own_options, real, stats};
use libc::{
    c_int, c_uint, c_void, iovec, msghdr, off64_t, off_t, size_t, sockaddr, socklen_t, ssize_t,
};
use socktune_core::state::FdState;

/// How a write hands its data over.
#[derive(Clone, Copy)]
struct Shape {
    /// Several buffers at once (writev, sendmsg).
    gathered: bool,
    /// The program's own MSG_MORE: more of this response follows, and it says when it ends.
    more: bool,
}

const PLAIN: Shape = Shape {
    gathered: false,
    more: false,
};

fn sent_with(flags: c_int) -> Shape {
    Shape {
        gathered: false,
        more: flags & libc::MSG_MORE != 0,
    }
}

/// Counts the write, disarms an armed connection, and corks a new response. Only connections
/// can need any of it; writes to files, pipes and listeners cost one table lookup, inline.
#[inline(always)]
fn before(fd: c_int, call: &str, shape: Shape) {
    let Some(slot) = fdtable::lookup(fd) else {
        return;
    };
    let state = slot.load();
    if state.is_connection() && (state.has(FdState::RECORDED) || state.acts_before_io()) {
        act_before(fd, call, slot, state, shape);
    }
}

#[inline(never)]
fn act_before(fd: c_int, call: &str, slot: Slot, state: FdState, shape: Shape) {
    act(call, || {
        if state.has(FdState::RECORDED) {
            stats::wrote(slot);
        }
        if state.has(FdState::WAITS_FOR_WRITE) {
            armed::before_write(fd, slot, state);
        }
        if state.corks() {
            if shape.more {
                own_options::program_sends_more(fd, slot);
            } else {
                cork::before_write(fd, slot, state, shape.gathered);
            }
        }
    });
}

/// Replaces write(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    before(fd, "write", PLAIN);
    unsafe { real::write(fd, buf, n) }
}

/// Replaces writev(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    before(
        fd,
        "writev",
        Shape {
            gathered: count > 1,
            more: false,
        },
    );
    unsafe { real::writev(fd, iov, count) }
}

/// Replaces send(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    before(fd, "send", sent_with(flags));
    unsafe { real::send(fd, buf, n, flags) }
}

/// Replaces sendto(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    before(fd, "sendto", sent_with(flags));
    unsafe { real::sendto(fd, buf, n, flags, addr, len) }
}

/// Replaces sendmsg(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the program passes a msghdr to sendmsg, or null, which the real call rejects.
    let gathered = !msg.is_null() && unsafe { (*msg).msg_iovlen } > 1;
    before(
        fd,
        "sendmsg",
        Shape {
            gathered,
            ..sent_with(flags)
        },
    );
    unsafe { real::sendmsg(fd, msg, flags) }
}

/// Before a call that sends data the SYN cannot carry (sendfile, splice): an armed Fast Open
/// connection sends its SYN first.
fn before_spliced(fd: c_int, call: &str) {
    if fdtable::armed_count() != 0 {
        if let Some(slot) = fdtable::lookup(fd) {
            act(call, || armed::before_other_call(fd, slot, slot.load()));
        }
    }
}

/// Replaces sendfile(2): a body sent after a corked header joins it in the same segments.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sendfile(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> ssize_t {
    before_spliced(out, "sendfile");
    before(out, "sendfile", PLAIN);
    unsafe { real::sendfile(out, input, offset, count) }
}

/// Replaces sendfile64(2), which programs built with 64-bit file offsets call.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    input: c_int,
    offset: *mut off64_t,
    count: size_t,
) -> ssize_t {
    before_spliced(out, "sendfile64");
    before(out, "sendfile64", PLAIN);
    unsafe { real::sendfile64(out, input, offset, count) }
}

/// Replaces splice(2), which may send a pipe's data to a socket.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn splice(
    input: c_int,
    off_in: *mut off64_t,
    out: c_int,
    off_out: *mut off64_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    before_spliced(out, "splice");
    unsafe { real::splice(input, off_in, out, off_out, len, flags) }
}

//! The write family: each call may be part of a response, which is held with MSG_MORE until
//! its boundary (see `cork`). A held write() or writev() is made as sendmsg(), which a TCP
//! socket treats the same way, returning the same; send() and sendto() likewise.

use crate::cork::{self, WriteAs};
use crate::fdtable::{self, Slot};
use crate::guard::act;
use crate::{armed, own_options, real, stats, sys, track};
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
    /// The call can be made with MSG_MORE (not sendfile, nor a sendmsg with control data, nor
    /// an empty write).
    can_hold: bool,
    bytes: Bytes,
}

/// What a write hands over, counted (and its first buffer read) only on a connection we cork.
#[derive(Clone, Copy)]
enum Bytes {
    One(*const c_void, size_t),
    Buffers(*const iovec, usize),
}

impl Bytes {
    fn count(self) -> usize {
        match self {
            Bytes::One(_, n) => n,
            Bytes::Buffers(iov, count) if !iov.is_null() => {
                // SAFETY: the program passes `count` iovecs at `iov` to the call.
                let iov = unsafe { std::slice::from_raw_parts(iov, count) };
                iov.iter().fold(0, |sum, v| sum.saturating_add(v.iov_len))
            }
            Bytes::Buffers(..) => 0,
        }
    }

    /// What a call that returned `n` took of the first buffer: where an HTTP head would be. The
    /// kernel has read those bytes, so they are there to read.
    fn accepted<'a>(self, n: ssize_t) -> &'a [u8] {
        let (base, len) = match self {
            Bytes::One(base, n) => (base, n),
            Bytes::Buffers(iov, count) if !iov.is_null() && count > 0 => {
                // SAFETY: as in `count`.
                let first = unsafe { &*iov };
                (first.iov_base.cast_const(), first.iov_len)
            }
            Bytes::Buffers(..) => (std::ptr::null(), 0),
        };
        let taken = usize::try_from(n).unwrap_or(0).min(len);
        if base.is_null() || taken == 0 {
            return &[];
        }
        // SAFETY: the call succeeded, so the kernel read `taken` bytes at `base`.
        unsafe { std::slice::from_raw_parts(base.cast(), taken) }
    }
}

fn unheld(n: size_t) -> Shape {
    Shape {
        gathered: false,
        more: false,
        can_hold: false,
        bytes: Bytes::One(std::ptr::null(), n),
    }
}

fn sent_with(flags: c_int, buf: *const c_void, n: size_t) -> Shape {
    Shape {
        gathered: false,
        more: flags & libc::MSG_MORE != 0,
        can_hold: n > 0,
        bytes: Bytes::One(buf, n),
    }
}

/// Counts the write, releases what this thread armed on other connections, disarms an armed
/// connection, and says how the response's write goes out.
/// Only connections can need any of it; writes to files, pipes and listeners cost one table
/// lookup, inline.
#[inline(always)]
fn before(fd: c_int, call: &str, shape: Shape) -> Option<(Slot, WriteAs)> {
    let slot = fdtable::lookup(fd)?;
    let state = slot.load();
    if !state.is_connection() {
        return None;
    }
    // Armed elsewhere: more armed than this one (its own first write is the common case).
    if fdtable::armed_count() > usize::from(state.has(FdState::ARMED)) && armed::armed_here() {
        act(call, || armed::before_write_elsewhere(fd));
    }
    if !state.has(FdState::RECORDED) && !state.acts_before_io() {
        return None;
    }
    let plain =
        !state.has(FdState::RECORDED | FdState::WAITS_FOR_WRITE | FdState::FIN_SENT) && !shape.more;
    if plain && cork::writes_learnt_whole(slot, state, shape.bytes.count()) {
        return None; // its write after is the first of a response, which cork's after_write passes
    }
    Some((slot, act_before(fd, call, slot, state, shape)))
}

#[inline(never)]
fn act_before(fd: c_int, call: &str, slot: Slot, state: FdState, shape: Shape) -> WriteAs {
    act(call, || {
        if state.has(FdState::RECORDED) {
            stats::wrote(slot);
        }
        if state.has(FdState::WAITS_FOR_WRITE) {
            armed::before_write(fd, slot, state);
        }
        // After the FIN the shim sent, the kernel refuses every write (EPIPE). An empty one is
        // not past the response's end: it returns 0, as it would have, and unlearns nothing.
        if state.has(FdState::FIN_SENT) && (shape.can_hold || shape.bytes.count() == 0) {
            if shape.can_hold {
                cork::wrote_after_fin(fd, state);
            }
            WriteAs::Dropped
        } else if !state.corks() {
            WriteAs::Written
        } else if shape.more {
            own_options::program_sends_more(fd, slot);
            WriteAs::Written
        } else {
            let len = shape.bytes.count();
            cork::before_write(
                fd,
                slot,
                len,
                shape.gathered,
                shape.can_hold && !state.has(FdState::ARMED),
            )
        }
    })
}

/// Makes a write of `call` as the program asked (`plain`), or held with MSG_MORE as `msg`.
#[inline(always)]
fn write_as(
    fd: c_int,
    call: &str,
    shape: Shape,
    msg: impl FnOnce() -> msghdr,
    flags: c_int,
    plain: impl FnOnce() -> ssize_t,
) -> ssize_t {
    let Some((slot, how)) = before(fd, call, shape) else {
        return plain();
    };
    let n = match how {
        WriteAs::Held => {
            // SAFETY: `msg` describes the program's own buffers.
            unsafe { cork::send_held(fd, slot, msg(), flags) }.unwrap_or_else(plain)
        }
        WriteAs::Pushing => {
            let n = plain();
            cork::after_pushing_write(fd, slot, n);
            n
        }
        WriteAs::Written => plain(),
        // As the kernel would have taken it without the shim's FIN.
        WriteAs::Dropped => return shape.bytes.count().min(isize::MAX as usize) as ssize_t,
    };
    if n > 0 {
        act(call, || {
            let whole = || usize::try_from(n).is_ok_and(|n| n == shape.bytes.count());
            cork::after_write(fd, slot, shape.bytes.accepted(n), whole)
        });
    }
    n
}

/// Whether `fd` is anything but a connection, told by one table lookup before a hook builds
/// anything: a write to a file or a pipe then costs no more.
#[inline(always)]
fn passes_through(fd: c_int) -> bool {
    !fdtable::lookup(fd).is_some_and(|slot| slot.load().is_connection())
}

/// A message of `count` buffers at `iov`, to `addr` if not null.
fn message(iov: *const iovec, count: usize, addr: *const sockaddr, len: socklen_t) -> msghdr {
    // SAFETY: all-zero is a valid msghdr (no name, no buffers, no control data).
    let mut m: msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iov.cast_mut();
    m.msg_iovlen = count as _;
    if !addr.is_null() {
        m.msg_name = addr.cast_mut().cast();
        m.msg_namelen = len;
    }
    m
}

/// Replaces write(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if passes_through(fd) {
        return unsafe { real::write(fd, buf, n) };
    }
    // SAFETY: the program's own arguments.
    unsafe { write_on_connection(fd, buf, n) }
}

/// write(2) on a connection, out of line: a write to a file or a pipe sets up no stack frame.
/// `extern "C"`, so that it cannot unwind and the hook jumps to it instead of calling it.
#[inline(never)]
unsafe extern "C" fn write_on_connection(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    let iov = iovec {
        iov_base: buf.cast_mut(),
        iov_len: n,
    };
    let shape = sent_with(0, buf, n);
    write_as(
        fd,
        "write",
        shape,
        || message(&iov, 1, std::ptr::null(), 0),
        0,
        || unsafe { real::write(fd, buf, n) },
    )
}

/// Replaces writev(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    if passes_through(fd) {
        return unsafe { real::writev(fd, iov, count) };
    }
    // SAFETY: the program's own arguments.
    unsafe { writev_on_connection(fd, iov, count) }
}

/// writev(2) on a connection, out of line, as for write.
#[inline(never)]
unsafe extern "C" fn writev_on_connection(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    let shape = Shape {
        gathered: count > 1,
        more: false,
        can_hold: count > 0 && !iov.is_null(),
        bytes: Bytes::Buffers(iov, usize::try_from(count).unwrap_or(0)),
    };
    write_as(
        fd,
        "writev",
        shape,
        || message(iov, count as usize, std::ptr::null(), 0),
        0,
        || unsafe { real::writev(fd, iov, count) },
    )
}

/// Replaces send(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    let iov = iovec {
        iov_base: buf.cast_mut(),
        iov_len: n,
    };
    write_as(
        fd,
        "send",
        sent_with(flags, buf, n),
        || message(&iov, 1, std::ptr::null(), 0),
        flags,
        || unsafe { real::send(fd, buf, n, flags) },
    )
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
    let iov = iovec {
        iov_base: buf.cast_mut(),
        iov_len: n,
    };
    write_as(
        fd,
        "sendto",
        sent_with(flags, buf, n),
        || message(&iov, 1, addr, len),
        flags,
        || unsafe { real::sendto(fd, buf, n, flags, addr, len) },
    )
}

/// Replaces sendmsg(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the program passes a msghdr to sendmsg, or null, which the real call rejects.
    let given = unsafe { msg.as_ref() };
    let shape = Shape {
        gathered: given.is_some_and(|m| m.msg_iovlen > 1),
        more: flags & libc::MSG_MORE != 0,
        can_hold: given.is_some_and(|m| m.msg_controllen == 0 && m.msg_iovlen > 0),
        bytes: given.map_or(Bytes::One(std::ptr::null(), 0), |m| {
            Bytes::Buffers(m.msg_iov, m.msg_iovlen)
        }),
    };
    let n = write_as(
        fd,
        "sendmsg",
        shape,
        || given.copied().unwrap_or_else(no_message),
        flags,
        || unsafe { real::sendmsg(fd, msg, flags) },
    );
    if let Some(msg) = given.filter(|m| n >= 0 && m.msg_controllen != 0) {
        act("sendmsg", || sys::passed_fds(msg, track::passed_on));
    }
    n
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
    write_as(out, "sendfile", unheld(count), no_message, 0, || unsafe {
        real::sendfile(out, input, offset, count)
    })
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
    write_as(out, "sendfile64", unheld(count), no_message, 0, || unsafe {
        real::sendfile64(out, input, offset, count)
    })
}

/// The message of a call that is never held.
fn no_message() -> msghdr {
    message(std::ptr::null(), 0, std::ptr::null(), 0)
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

//! close, shutdown, close_range, dup, dup2, dup3 and fcntl(F_DUPFD): an fd's entry dies before the
//! real close and is copied when the fd is duplicated.

use crate::fdtable::{self, Slot};
use crate::guard::{self, act};
use crate::{armed, cork, errno, log, real, stats, track};
use libc::{c_int, c_uint, c_ulong};
use socktune_core::record::End;
use socktune_core::state::{FdState, Kind};

/// Before the real close (or an implicit close by dup2/close_range) of `fd`: release or push
/// what is held, record the connection, and forget the fd *before* the close, so a number
/// reused by another thread is never confused with it.
fn forget(fd: c_int) {
    if let Some(slot) = fdtable::lookup(fd) {
        forget_slot(fd, slot, slot.load());
    }
}

fn forget_slot(fd: c_int, slot: Slot, state: FdState) {
    if state.kind() == Kind::Empty || guard::in_vfork_child() {
        return;
    }
    act("close", || {
        if state.has(FdState::SHIM_LOG) {
            log::sink_closed();
        }
        if state.is_connection() {
            armed::before_end(fd, slot, state);
            cork::before_close(fd, slot, state);
            stats::ended(fd, slot, state, End::Close);
        }
    });
    slot.clear();
}

/// Replaces close(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    forget(fd);
    unsafe { real::close(fd) }
}

/// Replaces shutdown(2): a FIN rides on the corked response. Where the shim sent the FIN with
/// the response already, the connection may have closed since (the client's FIN came): the
/// kernel's ENOTCONN is then answered as the open connection would have, with 0.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let slot = fdtable::lookup(fd).filter(|s| s.load().is_connection());
    if let Some(slot) = slot {
        act("shutdown", || {
            armed::before_end(fd, slot, slot.load());
            cork::before_shutdown(fd, slot, how)
        });
    }
    let fin_sent = slot.is_some_and(|s| s.load().has(FdState::FIN_SENT));
    let saved = errno::get();
    let mut r = unsafe { real::shutdown(fd, how) };
    if fin_sent && r != 0 && errno::get() == libc::ENOTCONN {
        errno::set(saved);
        r = 0;
    }
    if let Some(slot) = slot.filter(|_| r == 0 && how != libc::SHUT_RD) {
        // The write side is done, with what it sent: record it now.
        act("shutdown", || {
            stats::ended(fd, slot, slot.load(), End::Shutdown)
        });
    }
    r
}

/// Replaces dup(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let new = unsafe { real::dup(fd) };
    act("dup", || track::duplicated(fd, new));
    new
}

/// Replaces dup2(2): its implicit close of `new` clears new's entry first.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        return unsafe { real::dup2(old, new) };
    }
    forget(new);
    let r = unsafe { real::dup2(old, new) };
    act("dup2", || track::duplicated(old, r));
    r
}

/// Replaces dup3(2), as dup2.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        forget(new);
    }
    let r = unsafe { real::dup3(old, new, flags) };
    act("dup3", || track::duplicated(old, r));
    r
}

/// Replaces close_range(2) (glibc ≥ 2.34), which closes without calling close().
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 && !guard::in_vfork_child() {
        fdtable::for_each_tracked(|fd, slot, state| {
            if (first..=last).contains(&(fd as c_uint)) {
                forget_slot(fd, slot, state);
            }
        });
    }
    unsafe { real::close_range(first, last, flags) }
}

/// Replaces fcntl(2): F_DUPFD and F_DUPFD_CLOEXEC duplicate the fd's entry.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let r = unsafe { real::fcntl(fd, cmd, arg) };
    duplicated_by_fcntl(fd, cmd, r);
    r
}

/// Replaces fcntl64, which programs built with 64-bit file offsets call.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    duplicated_by_fcntl(fd, cmd, r);
    r
}

fn duplicated_by_fcntl(fd: c_int, cmd: c_int, new: c_int) {
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        act("fcntl", || track::duplicated(fd, new));
    }
}

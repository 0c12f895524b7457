//! Event waits: poll, ppoll, select, pselect and epoll. Waiting ends the responses this thread
//! wrote, must never wait forever on an armed connection (see `armed`), and sends the ACKs it
//! delayed on connections it waits on for input (see `quickack`).

use crate::armed;
use crate::guard::act;
use crate::interest::{EpollInterest, Interest};
use crate::{cork, fdtable, quickack, real};
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, size_t, timespec, timeval};
use socktune_core::state::FdState;

struct PollInterest(*const pollfd, nfds_t);

impl Interest for PollInterest {
    fn of(&self, fd: c_int, _: FdState) -> Option<(bool, bool)> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: the program passed `self.1` pollfds at `self.0` to poll.
        let fds = unsafe { std::slice::from_raw_parts(self.0, self.1 as usize) };
        let p = fds.iter().find(|p| p.fd == fd)?;
        Some((p.events & libc::POLLIN != 0, p.events & libc::POLLOUT != 0))
    }
}

struct SelectInterest(c_int, *const fd_set, *const fd_set);

impl Interest for SelectInterest {
    fn of(&self, fd: c_int, _: FdState) -> Option<(bool, bool)> {
        let set = |s: *const fd_set| {
            // SAFETY: the program passed these sets, valid below nfds, to select.
            !s.is_null()
                && fd < self.0
                && fd < libc::FD_SETSIZE as c_int
                && unsafe { libc::FD_ISSET(fd, s) }
        };
        let (read, write) = (set(self.1), set(self.2));
        (read || write).then_some((read, write))
    }
}

/// Before any wait; `waits`: its timeout is not zero. Inline: a wait with nothing held or armed
/// anywhere, and no ACK this thread delayed, costs two loads and two thread-local reads. Only a wait that can block marks
/// the thread an event loop (a zero timeout is how http.client checks a kept connection).
#[inline(always)]
fn before(call: &str, interest: &impl Interest, waits: bool) {
    if waits {
        cork::thread_waits_for_events();
    }
    if fdtable::held_count() != 0
        || (waits && (fdtable::armed_count() != 0 || quickack::pending_here()))
    {
        settle(call, interest, waits);
    }
}

/// A wait that cannot block (zero timeout) makes no peer wait: armed connections and delayed
/// ACKs stay as they are (the armed deadline still bounds a loop that only polls).
#[inline(never)]
fn settle(call: &str, interest: &impl Interest, waits: bool) {
    act(call, || {
        cork::before_wait();
        if waits && fdtable::armed_count() != 0 {
            armed::before_wait(interest);
        }
        if waits && quickack::pending_here() {
            quickack::before_wait(interest);
        }
    });
}

/// A timespec timeout that is not zero (null: no timeout).
fn waits_for(t: *const timespec) -> bool {
    // SAFETY: the program passes a timespec, or null.
    unsafe { t.as_ref() }.is_none_or(|t| t.tv_sec != 0 || t.tv_nsec != 0)
}

/// Replaces poll(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    before("poll", &PollInterest(fds, n), timeout != 0);
    unsafe { real::poll(fds, n, timeout) }
}

/// Replaces __poll_chk, the fortified poll(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    before("__poll_chk", &PollInterest(fds, n), timeout != 0);
    unsafe { real::__poll_chk(fds, n, timeout, fdslen) }
}

/// Replaces ppoll(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    before("ppoll", &PollInterest(fds, n), waits_for(timeout));
    unsafe { real::ppoll(fds, n, timeout, mask) }
}

/// Replaces select(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: *mut timeval,
) -> c_int {
    // SAFETY: the program passes a timeval, or null.
    let waits = unsafe { timeout.as_ref() }.is_none_or(|t| t.tv_sec != 0 || t.tv_usec != 0);
    before("select", &SelectInterest(n, r, w), waits);
    unsafe { real::select(n, r, w, e, timeout) }
}

/// Replaces pselect(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    before("pselect", &SelectInterest(n, r, w), waits_for(timeout));
    unsafe { real::pselect(n, r, w, e, timeout, mask) }
}

/// Replaces epoll_wait(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    before("epoll_wait", &EpollInterest, timeout != 0);
    unsafe { real::epoll_wait(epfd, events, max, timeout) }
}

/// Replaces epoll_pwait(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    before("epoll_pwait", &EpollInterest, timeout != 0);
    unsafe { real::epoll_pwait(epfd, events, max, timeout, mask) }
}

/// Replaces epoll_pwait2(2) (glibc ≥ 2.35; ENOSYS from an older one, as its own would give).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    before("epoll_pwait2", &EpollInterest, waits_for(timeout));
    unsafe { real::epoll_pwait2(epfd, events, max, timeout, mask) }
}

/// Replaces epoll_ctl(2): notes whether an armed connection waits for input only.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: *mut epoll_event,
) -> c_int {
    let registers = op == libc::EPOLL_CTL_ADD || op == libc::EPOLL_CTL_MOD;
    if registers && !event.is_null() && fdtable::armed_count() > 0 {
        // SAFETY: the program passes an epoll_event for ADD and MOD.
        let events = unsafe { (*event).events };
        act("epoll_ctl", || armed::epoll_registered(fd, events));
    }
    unsafe { real::epoll_ctl(epfd, op, fd, event) }
}

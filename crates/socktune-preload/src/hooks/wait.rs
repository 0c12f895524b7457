//! Event waits: poll, ppoll, select, pselect and epoll. Waiting ends the responses this thread
//! wrote, and must never wait forever on an armed connection (see `Meta::ARMED`).

use crate::ops::{self, EpollInterest, Interest};
use crate::policy::Meta;
use crate::sys::Real;
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, size_t, timespec, timeval};
use redhook::{hook, real};

struct PollInterest(*const pollfd, nfds_t);

impl Interest for PollInterest {
    fn of(&self, fd: c_int, _: Meta) -> Option<(bool, bool)> {
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
    fn of(&self, fd: c_int, _: Meta) -> Option<(bool, bool)> {
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

// Replaces poll(2).
hook! {
    unsafe fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int => st_poll {
        ops::before_wait(&PollInterest(fds, n));
        real!(poll)(fds, n, timeout)
    }
}

// Replaces __poll_chk, the fortified poll(2).
hook! {
    unsafe fn __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int => st_poll_chk {
        ops::before_wait(&PollInterest(fds, n));
        real!(__poll_chk)(fds, n, timeout, fdslen)
    }
}

// Replaces ppoll(2).
hook! {
    unsafe fn ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int => st_ppoll {
        ops::before_wait(&PollInterest(fds, n));
        real!(ppoll)(fds, n, timeout, mask)
    }
}

// Replaces select(2).
hook! {
    unsafe fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int => st_select {
        ops::before_wait(&SelectInterest(n, r, w));
        real!(select)(n, r, w, e, timeout)
    }
}

// Replaces pselect(2).
hook! {
    unsafe fn pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec, mask: *const sigset_t) -> c_int => st_pselect {
        ops::before_wait(&SelectInterest(n, r, w));
        real!(pselect)(n, r, w, e, timeout, mask)
    }
}

// Replaces epoll_wait(2).
hook! {
    unsafe fn epoll_wait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int => st_epoll_wait {
        ops::before_wait(&EpollInterest);
        real!(epoll_wait)(epfd, events, max, timeout)
    }
}

// Replaces epoll_pwait(2).
hook! {
    unsafe fn epoll_pwait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int => st_epoll_pwait {
        ops::before_wait(&EpollInterest);
        real!(epoll_pwait)(epfd, events, max, timeout, mask)
    }
}

type EpollPwait2Fn =
    unsafe extern "C" fn(c_int, *mut epoll_event, c_int, *const timespec, *const sigset_t) -> c_int;
static EPOLL_PWAIT2: Real = Real::new(c"epoll_pwait2");

/// Replaces epoll_pwait2(2) (glibc ≥ 2.35).
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let Some(addr) = EPOLL_PWAIT2.addr() else {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    };
    ops::before_wait(&EpollInterest);
    // SAFETY: glibc's epoll_pwait2, which has this signature.
    let real: EpollPwait2Fn = std::mem::transmute(addr);
    real(epfd, events, max, timeout, mask)
}

// Replaces epoll_ctl(2): notes whether an armed connection waits for input only.
hook! {
    unsafe fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut epoll_event) -> c_int => st_epoll_ctl {
        if (op == libc::EPOLL_CTL_ADD || op == libc::EPOLL_CTL_MOD) && !event.is_null() && crate::fdtable::armed_count() > 0 {
            ops::epoll_registered(fd, (*event).events);
        }
        real!(epoll_ctl)(epfd, op, fd, event)
    }
}

//! Which fds are sockets, and of what kind: registered when created, learned when first met
//! (inherited, or made by a raw syscall), copied when duplicated, and forgotten when a call on
//! them shows they are gone.

use crate::fdtable::{self, Slot};
use crate::settings::config;
use crate::{guard, sys};
use libc::c_int;
use socktune_core::state::{FdState, Kind};

/// socket(): remember whether a new fd is TCP, replacing whatever a closed fd of that number left.
pub fn created(fd: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    if fd < 0 || config().inert() {
        return;
    }
    let kind = if sys::is_tcp(domain, ty, protocol) {
        Kind::Tcp
    } else {
        Kind::Other
    };
    if let Some(slot) = fdtable::lookup_or_make(fd) {
        slot.reset(FdState::new(kind, 0, 0));
    }
}

/// socketpair(): both ends are local sockets, never tuned. Only a stale entry left by an fd
/// closed behind our back needs replacing.
pub fn local_pair(fds: [c_int; 2]) {
    for fd in fds {
        if let Some(slot) = fdtable::lookup(fd).filter(|s| s.load().kind() != Kind::Empty) {
            slot.reset(FdState::new(Kind::Other, 0, 0));
        }
    }
}

/// The slot and state of an fd we may not have seen created (inherited, or made by a raw
/// syscall); `None` if it is no socket, or the shim is inert.
pub fn learn(fd: c_int) -> Option<(Slot, FdState)> {
    if let Some(slot) = fdtable::lookup(fd) {
        let state = slot.load();
        if state.kind() != Kind::Empty {
            return Some((slot, state));
        }
    }
    if config().inert() {
        return None;
    }
    let state = FdState::new(sys::classify(fd)?, 0, 0);
    let slot = fdtable::lookup_or_make(fd)?;
    slot.reset(state);
    Some((slot, state))
}

/// dup/dup2/dup3/F_DUPFD made `new` another name for `old`'s socket.
pub fn duplicated(old: c_int, new: c_int) {
    let Some(from) = fdtable::lookup(old) else {
        return;
    };
    let state = from.load();
    if state.kind() == Kind::Empty
        || new < 0
        || state.has(FdState::SHIM_LOG)
        || guard::in_vfork_child()
    {
        return;
    }
    let shared = if state.is_connection() {
        FdState::SHARED
    } else {
        0
    };
    if let Some(to) = fdtable::lookup_or_make(new) {
        to.copy_from(from, state.with(shared));
    }
    if shared != 0 {
        from.set(shared);
    }
}

/// Our own call on the fd failed: if it is no longer a TCP socket (closed behind our back and
/// its number reused), stop tracking it.
pub fn forget_if_gone(slot: Slot, errno: c_int) {
    if matches!(
        errno,
        libc::EBADF | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::ENOPROTOOPT
    ) {
        slot.clear();
    }
}

/// sendmsg() passed `fd` by SCM_RIGHTS: another process holds that connection too.
pub fn passed_on(fd: c_int) {
    if let Some(slot) = fdtable::lookup(fd).filter(|s| s.load().is_connection()) {
        slot.set(FdState::SHARED);
    }
}

/// Another process now holds every socket too (fork, exec): a close in one no longer closes
/// the connection.
pub fn mark_connections_shared() {
    fdtable::for_each_tracked(|_, slot, state| {
        if state.is_connection() {
            slot.set(FdState::SHARED);
        }
    });
}

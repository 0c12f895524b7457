//! The program's own socket options and packet hints win: once it sets an option socktune would manage, socktune
//! leaves that option to it on this socket (and, for a listener, on the sockets it accepts).

use crate::cork;
use crate::fdtable::Slot;
use crate::log::debug;
use libc::c_int;
use socktune_core::state::FdState;

const TCP: c_int = libc::IPPROTO_TCP;

/// setsockopt() by the program on a tracked TCP fd, before the real call. `value` is the option
/// as an int, `linger_on` as a struct linger's l_onoff, where the buffer holds one.
pub fn program_sets(
    fd: c_int,
    slot: Slot,
    level: c_int,
    name: c_int,
    value: Option<c_int>,
    linger_on: Option<bool>,
) {
    let (flag, option) = match (level, name) {
        (TCP, libc::TCP_CORK) => (FdState::APP_NAGLE, "TCP_CORK"),
        // Nodelay on agrees with cork per response, which sets it too: corking goes on (see
        // `policy::corks_response`). Asking for Nagle (0) is a choice of the program's own.
        (TCP, libc::TCP_NODELAY) if value.is_some_and(|v| v != 0) => {
            slot.set(FdState::APP_NODELAY);
            return;
        }
        (TCP, libc::TCP_NODELAY) => (FdState::APP_NAGLE, "TCP_NODELAY"),
        (TCP, libc::TCP_QUICKACK) => (FdState::APP_QUICKACK, "TCP_QUICKACK"),
        (TCP, libc::TCP_DEFER_ACCEPT) => (FdState::APP_DEFER, "TCP_DEFER_ACCEPT"),
        (TCP, libc::TCP_FASTOPEN) => (FdState::APP_FASTOPEN, "TCP_FASTOPEN"),
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            if linger_on == Some(false) {
                slot.unset(FdState::LINGER);
                return;
            }
            (FdState::LINGER, "SO_LINGER")
        }
        _ => return,
    };
    if flag == FdState::APP_NAGLE {
        cork::program_takes_over(fd, slot);
    }
    let (before, _) = slot.update(|s| s.with(flag));
    if !before.has(flag) {
        debug!("fd {fd}: the program sets {option} ({value:?}) itself; socktune leaves it to the program");
    }
}

/// A send with the program's own MSG_MORE on a connection we cork: like its own TCP_CORK, it
/// says itself where a response ends, so this connection's responses are left to it. (Our
/// uncork at its next wait would push the part it is holding back alone.)
pub fn program_sends_more(fd: c_int, slot: Slot) {
    cork::program_takes_over(fd, slot);
    slot.set(FdState::APP_NAGLE);
    debug!("fd {fd}: the program sends with MSG_MORE itself; socktune leaves its responses to it");
}

//! The program's own socket options and packet hints win: once it sets an option socktune would manage, socktune
//! leaves that option to it on this socket (and, for a listener, on the sockets it accepts).
//! Unless `SOCKTUNE_FORCE` names it: then on a socket where socktune set it, the program's call
//! succeeds without reaching the kernel, so socktune's value stays and getsockopt reads it.

use crate::cork;
use crate::fdtable::Slot;
use crate::log::debug;
use crate::settings::for_socket;
use libc::c_int;
use socktune_core::config::{Opt, When, FORCE_CORK, FORCE_NODELAY, FORCE_QUICKACK};
use socktune_core::state::{FdState, Kind};

const TCP: c_int = libc::IPPROTO_TCP;
const SOCKET: c_int = libc::SOL_SOCKET;

/// The per-socket option (its place in `Opt::ALL`) that a setsockopt sets.
fn option_of(level: c_int, name: c_int) -> Option<usize> {
    let o = match (level, name) {
        (SOCKET, libc::SO_KEEPALIVE)
        | (TCP, libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL | libc::TCP_KEEPCNT) => Opt::Keepalive,
        (TCP, libc::TCP_USER_TIMEOUT) => Opt::UserTimeout,
        (TCP, libc::TCP_SYNCNT) => Opt::Syncnt,
        (TCP, libc::TCP_CONGESTION) => Opt::Congestion,
        (TCP, libc::TCP_NOTSENT_LOWAT) => Opt::NotsentLowat,
        (TCP, libc::TCP_MAXSEG) => Opt::Maxseg,
        (SOCKET, libc::SO_SNDBUF | libc::SO_SNDBUFFORCE) => Opt::Sndbuf,
        (SOCKET, libc::SO_RCVBUF | libc::SO_RCVBUFFORCE) => Opt::Rcvbuf,
        (SOCKET, libc::SO_MARK) => Opt::Mark,
        (SOCKET, libc::SO_PRIORITY) => Opt::Priority,
        (libc::IPPROTO_IP, libc::IP_TOS) | (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => Opt::Tos,
        _ => return None,
    };
    Opt::ALL.iter().position(|&a| a == o)
}

/// setsockopt() by the program on a tracked TCP fd, before the real call. `value` is the option
/// as an int, `linger_on` as a struct linger's l_onoff, where the buffer holds one. Returns true
/// when a forced setting keeps socktune's value: the real call must not be made.
pub fn program_sets(
    fd: c_int,
    slot: Slot,
    level: c_int,
    name: c_int,
    value: Option<c_int>,
    linger_on: Option<bool>,
) -> bool {
    let state = slot.load();
    let force = for_socket(slot.rule()).force;
    if let Some(i) = option_of(level, name) {
        return program_sets_option(fd, slot, state, i, force);
    }
    // Before a socket is a connection, a forced setting is set over the program's choice
    // anyway; on one, the program's call is kept from the kernel where socktune manages it.
    let forced =
        |bit: u32, flag: u64| force & bit != 0 && (!state.is_connection() || state.has(flag));
    let (flag, option) = match (level, name) {
        (TCP, libc::TCP_CORK) if forced(FORCE_CORK, FdState::CORK) => {
            return kept(fd, state, "TCP_CORK")
        }
        (TCP, libc::TCP_CORK) => (FdState::APP_NAGLE, "TCP_CORK"),
        // Nodelay on agrees with cork per response, which sets it too: corking goes on (see
        // `policy::corks_response`). Asking for Nagle (0) is a choice of the program's own.
        (TCP, libc::TCP_NODELAY) if value.is_some_and(|v| v != 0) => {
            slot.set(FdState::APP_NODELAY);
            return false;
        }
        (TCP, libc::TCP_NODELAY) if forced(FORCE_NODELAY, FdState::NODELAY) => {
            return kept(fd, state, "TCP_NODELAY")
        }
        (TCP, libc::TCP_NODELAY) => (FdState::APP_NAGLE, "TCP_NODELAY"),
        (TCP, libc::TCP_QUICKACK) if forced(FORCE_QUICKACK, FdState::QUICKACK_OFF) => {
            return kept(fd, state, "TCP_QUICKACK")
        }
        (TCP, libc::TCP_QUICKACK) => (FdState::APP_QUICKACK, "TCP_QUICKACK"),
        (TCP, libc::TCP_DEFER_ACCEPT) => (FdState::APP_DEFER, "TCP_DEFER_ACCEPT"),
        (TCP, libc::TCP_FASTOPEN) => (FdState::APP_FASTOPEN, "TCP_FASTOPEN"),
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            if linger_on == Some(false) {
                slot.unset(FdState::LINGER);
                return false;
            }
            (FdState::LINGER, "SO_LINGER")
        }
        _ => return false,
    };
    if flag == FdState::APP_NAGLE {
        cork::program_takes_over(fd, slot);
    }
    let (before, _) = slot.update(|s| s.with(flag));
    if !before.has(flag) {
        debug!("fd {fd}: the program sets {option} ({value:?}) itself; socktune leaves it to the program");
    }
    false
}

/// The program sets again, on a connection, what it took over already (nginx's tcp_nopush sets
/// TCP_CORK twice a response), where no forced setting keeps socktune's value and nothing is held:
/// [`program_sets`] would change nothing. Told by atomics alone, so the hook asks without
/// `guard::act` (nginx tuned under cork: 231 -> 142 instructions a request in setsockopt).
#[inline]
pub fn sets_again(slot: Slot, level: c_int, name: c_int, value: Option<c_int>) -> bool {
    let state = slot.load();
    if level != TCP || !state.is_connection() {
        return false;
    }
    let force_bit = match name {
        libc::TCP_NODELAY if value.is_some_and(|v| v != 0) => {
            return state.has(FdState::APP_NODELAY)
        }
        libc::TCP_NODELAY => FORCE_NODELAY,
        libc::TCP_CORK => FORCE_CORK,
        _ => return false,
    };
    state.has(FdState::APP_NAGLE)
        && for_socket(slot.rule()).force & force_bit == 0
        && !slot.is_held()
}

/// A forced setting: on a connection socktune's value stays; before, the call goes ahead.
fn kept(fd: c_int, state: FdState, option: &str) -> bool {
    if state.is_connection() {
        debug!("fd {fd}: the program sets {option}; forced, socktune's value stays");
    }
    state.is_connection()
}

/// The program sets per-socket option `i` (see `FdState::OPTS` for what its bit says by kind).
fn program_sets_option(fd: c_int, slot: Slot, state: FdState, i: usize, force: u32) -> bool {
    let (o, bit) = (Opt::ALL[i], FdState::opt(i));
    let ours = match state.kind() {
        Kind::Tcp => {
            slot.set(bit);
            return false;
        }
        Kind::Listener => o.when() == When::Handshake && state.has(bit),
        _ => state.has(bit),
    };
    if ours && force & o.force_bit() != 0 {
        debug!(
            "fd {fd}: the program sets {}; forced, socktune's value stays",
            o.name()
        );
        return true;
    }
    if state.has(bit) {
        // Its own choice wins: on a listener, for the sockets it accepts too.
        slot.unset(bit);
        debug!(
            "fd {fd}: the program sets {} itself; socktune leaves it to the program",
            o.name()
        );
    }
    false
}

/// A send with the program's own MSG_MORE on a connection we cork: like its own TCP_CORK, it
/// says itself where a response ends, so this connection's responses are left to it. (Our
/// uncork at its next wait would push the part it is holding back alone.)
pub fn program_sends_more(fd: c_int, slot: Slot) {
    cork::program_takes_over(fd, slot);
    slot.set(FdState::APP_NAGLE);
    debug!("fd {fd}: the program sends with MSG_MORE itself; socktune leaves its responses to it");
}

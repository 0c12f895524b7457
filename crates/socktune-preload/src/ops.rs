//! What the hooks do around the real call, per family. Each function is entered only for fds the
//! table tracks (the hooks check that first), keeps errno as the program's call left it, and
//! never blocks.

use crate::log::{debug, info};
use crate::policy::{self, ArmedWait, CloseAction, Kind, Meta, ShutdownAction};
use crate::record::{Arm, End, Tally};
use crate::runtime::{self, config};
use crate::sys::{self, KeepErrno};
use crate::{fdtable, flusher, stats};
use libc::c_int;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const TCP: c_int = libc::IPPROTO_TCP;

/// Logs `what` once per process at info level.
fn once(flag: &AtomicBool, what: &str) {
    if !flag.swap(true, Relaxed) {
        info!("{what}");
    }
}

fn set_tcp(fd: c_int, name: c_int, value: c_int, what: &str) -> bool {
    match sys::set_int(fd, TCP, name, value) {
        Ok(()) => {
            debug!("fd {fd}: {what}");
            true
        }
        Err(e) => {
            debug!("fd {fd}: {what} failed (errno {e})");
            false
        }
    }
}

/// socket(): remember whether a new fd is TCP, replacing whatever a closed fd of that number left.
pub fn created(fd: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    if fd < 0 || config().inert() {
        return;
    }
    let _keep = KeepErrno::now(); // growing the table may mmap
    let kind = if sys::is_tcp(domain, ty, protocol) {
        Kind::Tcp
    } else {
        Kind::Other
    };
    fdtable::set(fd, Meta::new(kind, 0, 0));
}

/// The state of an fd we may not have seen created (inherited, or made by a raw syscall).
pub fn learn(fd: c_int) -> Meta {
    let m = fdtable::get(fd);
    if m.kind() != Kind::Empty || config().inert() {
        return m;
    }
    let _keep = KeepErrno::now();
    match sys::classify(fd) {
        Some(kind) => {
            let m = Meta::new(kind, 0, 0);
            fdtable::set(fd, m);
            m
        }
        None => m,
    }
}

/// Sets the plan's listener options; returns the [`Tally`] bits of those that took.
fn apply_listener_options(fd: c_int, plan: &policy::ListenPlan) -> u32 {
    let mut applied = 0;
    if let Some(secs) = plan.defer_accept {
        if set_tcp(
            fd,
            libc::TCP_DEFER_ACCEPT,
            secs as c_int,
            "TCP_DEFER_ACCEPT set",
        ) {
            applied |= Tally::DEFER_ACCEPT;
        }
    }
    if let Some(qlen) = plan.fastopen {
        static NO_SERVER_BIT: AtomicBool = AtomicBool::new(false);
        if set_tcp(fd, libc::TCP_FASTOPEN, qlen as c_int, "TCP_FASTOPEN set") {
            applied |= Tally::FASTOPEN;
            if sys::read_proc_int(c"/proc/sys/net/ipv4/tcp_fastopen").is_some_and(|v| v & 2 == 0) {
                once(&NO_SERVER_BIT, "net.ipv4.tcp_fastopen lacks the server bit (2): server Fast Open will not take effect");
            }
        }
    }
    applied
}

/// `fd` listens: finish its plan and remember it, with the listener options that took.
fn now_listening(fd: c_int, plan: &policy::ListenPlan, applied: u32) {
    if plan.quickack_off {
        // After listen(), which resets it, so that accepted sockets start with delayed ACKs.
        set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0 on listener");
    }
    let kept = fdtable::tally(fd).0 & Tally::KEPT;
    fdtable::set(fd, plan.meta);
    fdtable::update_tally(fd, |_| Tally(applied | kept));
    debug!(
        "fd {fd}: listening on port {}, accepted sockets get {}",
        plan.meta.port(),
        Plan(plan.meta)
    );
}

/// listen(): applies the listener plan around the real call and returns its result.
pub fn listen(fd: c_int, backlog: c_int, real: impl FnOnce(c_int) -> c_int) -> c_int {
    let meta = learn(fd);
    let Some(_busy) = runtime::enter().filter(|_| meta.is_tcp()) else {
        return real(backlog);
    };
    let keep = KeepErrno::now();
    let port = sys::local_port(fd).unwrap_or(0);
    let plan = policy::listen_plan(config(), port, meta);
    let applied = apply_listener_options(fd, &plan);
    let asked = plan.backlog.unwrap_or(backlog);
    drop(keep);
    let r = real(asked);
    if r == 0 {
        let _keep = KeepErrno::now();
        if plan.backlog.is_some() {
            match sys::tcp_info(fd).map(|i| i.tcpi_sacked) {
                Some(max) if (max as i64) < asked as i64 => {
                    info!("fd {fd}: backlog {asked} clamped by the kernel to {max} (net.core.somaxconn)")
                }
                _ => debug!("fd {fd}: backlog {asked}"),
            }
        }
        now_listening(fd, &plan, applied);
    }
    r
}

/// accept()/accept4() succeeded with `fd` from `listener`: give it the listener's plan.
pub fn accepted(listener: c_int, fd: c_int) {
    let mut lm = learn(listener);
    let Some(_busy) = runtime::enter() else {
        return;
    };
    let _keep = KeepErrno::now();
    if lm.kind() == Kind::Tcp && sys::is_listening(listener) {
        // A listener we did not see listen (inherited, e.g. systemd socket activation).
        let plan = policy::listen_plan(config(), sys::local_port(listener).unwrap_or(0), lm);
        let applied = apply_listener_options(listener, &plan);
        now_listening(listener, &plan, applied);
        lm = plan.meta;
    }
    match lm.kind() {
        Kind::Listener => {
            let planned = Meta::accepted_from(lm);
            let arm = stats::draw_arm();
            let m = if arm == Some(Arm::A) {
                planned.without_behaviours()
            } else {
                planned
            };
            fdtable::set(fd, m);
            let from_listener = fdtable::tally(listener).0 & Tally::FROM_LISTENER;
            fdtable::update_tally(fd, |_| stats::start(arm, from_listener));
            if m.has(Meta::NODELAY) && !m.has(Meta::APP_NAGLE) {
                set_tcp(fd, libc::TCP_NODELAY, 1, "TCP_NODELAY=1");
            }
            if m.reapplies_quickack() {
                set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0");
            } else if planned.reapplies_quickack() {
                // Arm A: undo the delayed-ACK mode the socket took from its listener.
                set_tcp(fd, libc::TCP_QUICKACK, 1, "TCP_QUICKACK=1 (arm A)");
            }
            debug!(
                "fd {fd}: accepted on port {} (arm {arm:?}): {}",
                m.port(),
                Plan(m)
            );
        }
        Kind::Empty => {}
        _ => fdtable::set(fd, Meta::new(Kind::Other, 0, 0)),
    }
}

/// connect(): applies the client plan before the real call, and arms Fast Open after it.
pub fn connect(fd: c_int, remote_port: Option<u16>, real: impl FnOnce() -> c_int) -> c_int {
    let meta = learn(fd);
    let (Some(port), Kind::Tcp) = (remote_port, meta.kind()) else {
        return real();
    };
    let Some(_busy) = runtime::enter() else {
        return real();
    };
    let keep = KeepErrno::now();
    let arm = stats::draw_arm();
    let mut plan = policy::connect_plan(config(), port, meta);
    if arm == Some(Arm::A) {
        plan = plan.without_behaviours();
    }
    if plan.quickack_off {
        set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0 before connect");
    }
    if plan.nodelay {
        set_tcp(fd, libc::TCP_NODELAY, 1, "TCP_NODELAY=1");
    }
    let mut fastopen = false;
    if plan.fastopen_connect {
        static NO_CLIENT_BIT: AtomicBool = AtomicBool::new(false);
        fastopen = set_tcp(fd, libc::TCP_FASTOPEN_CONNECT, 1, "TCP_FASTOPEN_CONNECT=1");
        if !fastopen {
            once(
                &NO_CLIENT_BIT,
                "net.ipv4.tcp_fastopen lacks the client bit (1): client Fast Open is off",
            );
        }
    }
    let kept = fdtable::tally(fd).0 & Tally::KEPT;
    fdtable::set(fd, plan.meta);
    let applied = if fastopen { Tally::FASTOPEN_CONNECT } else { 0 };
    fdtable::update_tally(fd, |_| stats::start(arm, applied | kept));
    debug!(
        "fd {fd}: connecting to port {port} (arm {arm:?}): {}",
        Plan(plan.meta)
    );
    drop(keep);
    let r = real();
    let connecting = r == 0 || sys::errno() == libc::EINPROGRESS;
    if connecting && (fastopen || plan.quickack_off) {
        let _keep = KeepErrno::now();
        if fastopen && sys::tcp_state(fd) == Some(sys::TCP_SYN_SENT) && r == 0 {
            // Cookie cached: nothing sent yet; the first write carries the SYN.
            fdtable::set_flags(fd, Meta::ARMED);
            debug!("fd {fd}: Fast Open armed, SYN waits for the first write");
        } else if plan.quickack_off {
            fdtable::set_flags(fd, Meta::ARMED);
        }
    }
    r
}

/// Before any write-family call on a connection (the hook checks): cork the response if it is a
/// new one.
#[inline]
pub fn before_write(fd: c_int, meta: Meta, gathered: bool) {
    if config().records() {
        stats::wrote(fd);
    }
    if !meta.acts_before_io() {
        return;
    }
    let Some(_busy) = runtime::enter() else {
        return;
    };
    if meta.has(Meta::ARMED) {
        fdtable::clear_flags(fd, Meta::ARMED | Meta::ARMED_WAITED);
    }
    if meta.corks() && !fdtable::is_held(fd) {
        let program_nodelay = fdtable::tally(fd).has(Tally::APP_NODELAY);
        if !policy::corks_response(gathered, program_nodelay) {
            debug!("fd {fd}: a whole response in one gathered write, nodelay on: sent as it is");
            return;
        }
        let _keep = KeepErrno::now();
        match sys::set_int(fd, TCP, libc::TCP_CORK, 1) {
            Ok(()) => {
                fdtable::mark_held(fd, flusher::now(), runtime::thread_token());
                flusher::ensure_running();
                debug!("fd {fd}: corked for a new response");
            }
            Err(e) => forget_if_gone(fd, e),
        }
    }
}

/// Our own call on `fd` failed: if the fd is no longer a TCP socket (closed behind our back and
/// its number reused), stop tracking it.
fn forget_if_gone(fd: c_int, errno: c_int) {
    if matches!(
        errno,
        libc::EBADF | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::ENOPROTOOPT
    ) {
        fdtable::clear(fd);
    }
}

/// Uncorks `fd`, whose hold the caller has claimed: the response leaves now.
fn release(fd: c_int, why: &str) {
    match sys::uncork(fd) {
        Ok(()) => debug!("fd {fd}: response flushed ({why})"),
        Err(e) => forget_if_gone(fd, e),
    }
}

/// Releases what our cork holds on `fd`, if it holds anything.
fn flush(fd: c_int, why: &str) {
    if fdtable::take_held(fd) {
        release(fd, why);
    }
}

/// The program reads (or waits for input) on an armed connection before writing: what waits
/// for its first write must leave now, or a server that speaks first never hears from us.
fn kick(fd: c_int, meta: Meta) {
    match sys::tcp_state(fd) {
        Some(sys::TCP_SYN_SENT) => {
            // A Fast Open SYN waiting for data goes now; on a plain connecting socket the
            // zero-length send does nothing.
            sys::kick_syn(fd);
            debug!("fd {fd}: SYN pushed before a read (server speaks first?)");
            if meta.reapplies_quickack() {
                return; // still armed: the handshake's last ACK has yet to be sent
            }
        }
        Some(sys::TCP_ESTABLISHED) if meta.reapplies_quickack() => {
            // Quickack on sends the delayed handshake ACK; off again keeps delayed ACKs after.
            let _ = sys::set_int(fd, TCP, libc::TCP_QUICKACK, 1);
            let _ = sys::set_int(fd, TCP, libc::TCP_QUICKACK, 0);
            debug!("fd {fd}: handshake ACK sent before a read (server speaks first?)");
        }
        _ => {}
    }
    fdtable::clear_flags(fd, Meta::ARMED | Meta::ARMED_WAITED);
}

/// Before a read-family call on a connection (the hook checks): the program turns to read, so
/// the response is complete.
#[inline]
pub fn before_read(fd: c_int, meta: Meta) {
    if config().records() {
        stats::read(fd);
    }
    if !meta.acts_before_io() {
        return;
    }
    let Some(_busy) = runtime::enter() else {
        return;
    };
    let _keep = KeepErrno::now();
    flush(fd, "the program reads");
    if meta.has(Meta::ARMED) {
        kick(fd, meta);
    }
}

/// After a read-family call returned `n`: the kernel may have left delayed-ACK mode; re-enter it.
#[inline]
pub fn after_read(fd: c_int, meta: Meta, n: isize) {
    if n <= 0 || !meta.reapplies_quickack() {
        return;
    }
    let Some(_busy) = runtime::enter() else {
        return;
    };
    let _keep = KeepErrno::now();
    if let Err(e) = sys::set_int(fd, TCP, libc::TCP_QUICKACK, 0) {
        forget_if_gone(fd, e);
    }
}

/// How a wait call describes its interest in an fd: (read, write), or `None` if not waited on.
pub trait Interest {
    fn of(&self, fd: c_int, meta: Meta) -> Option<(bool, bool)>;
}

/// epoll: what epoll_ctl told us (see `epoll_registered`); unknown means read and write.
pub struct EpollInterest;

impl Interest for EpollInterest {
    fn of(&self, _fd: c_int, meta: Meta) -> Option<(bool, bool)> {
        Some((true, !meta.has(Meta::EPOLL_READ_ONLY)))
    }
}

/// Before poll/select/epoll: the thread is about to wait, so flush what it corked, and make sure
/// no armed connection is waited on for input that cannot come. Inline: a wait with nothing held
/// or armed anywhere costs two loads.
#[inline]
pub fn before_wait(interest: &impl Interest) {
    if fdtable::held_count() != 0 || fdtable::armed_count() != 0 {
        settle_before_wait(interest);
    }
}

fn settle_before_wait(interest: &impl Interest) {
    let Some(_busy) = runtime::enter() else {
        return;
    };
    let _keep = KeepErrno::now();
    let me = runtime::thread_token();
    fdtable::take_held_where(
        |_, by| by == me,
        |fd| release(fd, "the thread waits for events"),
    );
    if fdtable::armed_count() == 0 {
        return;
    }
    fdtable::for_each_tracked(|fd, m| {
        if !m.has(Meta::ARMED) {
            return;
        }
        if let Some((read, write)) = interest.of(fd, m) {
            match policy::armed_wait(m, read, write) {
                ArmedWait::Kick => kick(fd, m),
                ArmedWait::LetThrough => {
                    fdtable::set_flags(fd, Meta::ARMED_WAITED);
                }
            }
        }
    });
}

/// epoll_ctl ADD/MOD of an armed fd: remember whether it waits for input only.
pub fn epoll_registered(fd: c_int, events: u32) {
    if !fdtable::get(fd).has(Meta::ARMED) {
        return;
    }
    let read_only = events & libc::EPOLLIN as u32 != 0 && events & libc::EPOLLOUT as u32 == 0;
    if read_only {
        fdtable::set_flags(fd, Meta::EPOLL_READ_ONLY);
    } else {
        fdtable::clear_flags(fd, Meta::EPOLL_READ_ONLY);
    }
}

/// Before close() (or an implicit close by dup2/close_range) of a tracked fd. Forgets the fd
/// *before* the real close, so a number reused by another thread is never confused with it.
pub fn before_close(fd: c_int, meta: Meta) {
    if meta.has(Meta::SHIM_LOG) {
        crate::log::sink_closed();
    }
    let _keep = KeepErrno::now();
    let recorded = meta.is_connection() && config().records();
    if fdtable::take_held(fd) {
        // Nothing is logged on the close path: the program may be closing stderr itself.
        match policy::close_action(meta, sys::unread_bytes(fd)) {
            CloseAction::PushFirst => {
                let _ = sys::uncork(fd);
            }
            // The close would send the held data with the FIN; a write-side shutdown sends the
            // same segment now, so that the record below counts it.
            CloseAction::RideFin if recorded => sys::shutdown_write(fd),
            CloseAction::RideFin => {}
        }
    }
    if recorded {
        stats::ended(fd, meta, End::Close);
    }
    fdtable::clear(fd);
}

/// Before shutdown(): a FIN rides on corked data by itself, except where [`policy::shutdown_action`]
/// says to push first.
pub fn before_shutdown(fd: c_int, how: c_int) {
    let Some(_busy) = runtime::enter() else {
        return;
    };
    let _keep = KeepErrno::now();
    if !fdtable::is_held(fd) {
        return;
    }
    match policy::shutdown_action(how == libc::SHUT_RD, sys::handshake_pending(fd)) {
        ShutdownAction::PushFirst => flush(fd, "read-side shutdown"),
        ShutdownAction::RideFin => {
            if fdtable::take_held(fd) {
                debug!("fd {fd}: response leaves with the FIN (shutdown)");
            }
        }
        ShutdownAction::KeepHeld => {
            debug!("fd {fd}: handshake pending; the response stays held until the next boundary")
        }
    }
}

/// After a successful shutdown(): the write side is done, with what it sent, so record it now.
pub fn after_shutdown(fd: c_int, how: c_int) {
    if how != libc::SHUT_RD && config().records() {
        stats::ended(fd, fdtable::get(fd), End::Shutdown);
    }
}

/// dup/dup2/dup3/F_DUPFD made `new` another name for `old`'s socket.
pub fn duplicated(old: c_int, new: c_int) {
    let m = fdtable::get(old);
    if m.kind() == Kind::Empty || new < 0 || m.has(Meta::SHIM_LOG) || runtime::in_vfork_child() {
        return;
    }
    let _keep = KeepErrno::now();
    let shared = if m.is_connection() { Meta::SHARED } else { 0 };
    fdtable::set(new, Meta(m.0 | shared));
    let tally = fdtable::tally(old);
    fdtable::update_tally(new, |_| tally);
    if shared != 0 {
        fdtable::set_flags(old, shared);
    }
}

/// setsockopt() by the program on a tracked TCP fd: its own choices win from now on.
pub fn program_sets(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: Option<c_int>,
    linger_on: Option<bool>,
) {
    let Some(_busy) = runtime::enter() else {
        return;
    };
    let _keep = KeepErrno::now();
    let (flag, option) = match (level, name) {
        (TCP, libc::TCP_CORK) => (Meta::APP_NAGLE, "TCP_CORK"),
        // Nodelay on agrees with cork per response, which sets it too: corking goes on (see
        // `policy::corks_response`). Asking for Nagle (0) is a choice of the program's own.
        (TCP, libc::TCP_NODELAY) if value.is_some_and(|v| v != 0) => {
            fdtable::update_tally(fd, |t| Tally(t.0 | Tally::APP_NODELAY));
            return;
        }
        (TCP, libc::TCP_NODELAY) => (Meta::APP_NAGLE, "TCP_NODELAY"),
        (TCP, libc::TCP_QUICKACK) => (Meta::APP_QUICKACK, "TCP_QUICKACK"),
        (TCP, libc::TCP_DEFER_ACCEPT) => (Meta::APP_DEFER, "TCP_DEFER_ACCEPT"),
        (TCP, libc::TCP_FASTOPEN) => (Meta::APP_FASTOPEN, "TCP_FASTOPEN"),
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            if linger_on == Some(false) {
                fdtable::clear_flags(fd, Meta::LINGER);
                return;
            }
            (Meta::LINGER, "SO_LINGER")
        }
        _ => return,
    };
    if flag == Meta::APP_NAGLE {
        // Release our cork first, so its held data never waits on the program's choice.
        flush(fd, "the program takes over cork and nodelay");
    }
    if !fdtable::get(fd).has(flag) {
        fdtable::set_flags(fd, flag);
        debug!("fd {fd}: the program sets {option} ({value:?}) itself; socktune leaves it to the program");
    }
}

/// Lists a plan's behaviours for debug lines.
struct Plan(Meta);

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        let mut any = false;
        for (flag, name) in [
            (Meta::CORK, "cork"),
            (Meta::QUICKACK_OFF, "quickack-off"),
            (Meta::NODELAY, "nodelay"),
            (Meta::APP_NAGLE, "(program owns nagle)"),
        ] {
            if m.has(flag) {
                write!(f, "{}{name}", if any { ", " } else { "" })?;
                any = true;
            }
        }
        if !any {
            write!(f, "nothing")?;
        }
        Ok(())
    }
}

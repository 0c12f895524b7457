//! The options a socket gets once, when it starts to listen, is accepted or connects:
//! defer-accept, server Fast Open, the backlog, nodelay and the delayed-ACK mode of quickack-off,
//! plus the A/B arm. What acts later, call by call, lives in `cork`, `armed` and `quickack`.

use crate::fdtable::Slot;
use crate::log::{debug, info};
use crate::settings::config;
use crate::{armed, stats, sys, track};
use libc::c_int;
use socktune_core::policy::{self, ConnectPlan, ListenPlan};
use socktune_core::record::Behaviour;
use socktune_core::state::{Arm, FdState, Kind};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const TCP: c_int = libc::IPPROTO_TCP;

/// Logs `what` once per process at info level.
fn once(flag: &AtomicBool, what: &str) {
    if !flag.swap(true, Relaxed) {
        info!("{what}");
    }
}

pub fn set_tcp(fd: c_int, name: c_int, value: c_int, what: &str) -> bool {
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

/// Sets the plan's listener options; returns the state flags of those that took.
fn apply_listener_options(fd: c_int, plan: &ListenPlan) -> u64 {
    let mut applied = 0;
    if let Some(secs) = plan.defer_accept {
        if set_tcp(
            fd,
            libc::TCP_DEFER_ACCEPT,
            secs as c_int,
            "TCP_DEFER_ACCEPT set",
        ) {
            applied |= FdState::APPLIED_DEFER_ACCEPT;
        }
    }
    if let Some(qlen) = plan.fastopen {
        static NO_SERVER_BIT: AtomicBool = AtomicBool::new(false);
        if set_tcp(fd, libc::TCP_FASTOPEN, qlen as c_int, "TCP_FASTOPEN set") {
            applied |= FdState::APPLIED_FASTOPEN;
            const SERVER_BIT: i64 = 2;
            if sys::read_proc_int(c"/proc/sys/net/ipv4/tcp_fastopen")
                .is_some_and(|v| v & SERVER_BIT == 0)
            {
                once(&NO_SERVER_BIT, "net.ipv4.tcp_fastopen lacks the server bit (2): server Fast Open will not take effect");
            }
        }
    }
    applied
}

/// `fd` listens: finish its plan and remember it, with the listener options that took.
fn now_listening(fd: c_int, slot: Slot, plan: &ListenPlan, applied: u64) -> FdState {
    if plan.quickack_off {
        // After listen(), which resets it, so that accepted sockets start with delayed ACKs.
        set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0 on listener");
    }
    let state = plan.state.with(applied);
    slot.reset(state);
    debug!(
        "fd {fd}: listening on port {}, accepted sockets get {}",
        state.port(),
        Plan(state)
    );
    state
}

/// What listen() must finish once the real call succeeded.
pub struct Listening {
    slot: Slot,
    plan: ListenPlan,
    applied: u64,
    /// The backlog to pass to the real listen().
    pub backlog: c_int,
}

/// Before listen(): sets the listener options; returns what to finish after, with the backlog.
pub fn before_listen(fd: c_int, backlog: c_int) -> Option<Listening> {
    crate::live::refresh();
    let (slot, state) = track::learn(fd).filter(|(_, s)| s.is_tcp())?;
    let plan = policy::listen_plan(config(), sys::local_port(fd).unwrap_or(0), state);
    let applied = apply_listener_options(fd, &plan);
    Some(Listening {
        slot,
        backlog: plan.backlog.unwrap_or(backlog),
        plan,
        applied,
    })
}

/// After a successful listen().
pub fn after_listen(fd: c_int, listening: Listening) {
    if listening.plan.backlog.is_some() {
        let asked = listening.backlog;
        // TCP_INFO's tcpi_sacked is a listener's backlog limit.
        match sys::tcp_info(fd).map(|i| i.tcpi_sacked) {
            Some(max) if i64::from(max) < i64::from(asked) => {
                info!(
                    "fd {fd}: backlog {asked} clamped by the kernel to {max} (net.core.somaxconn)"
                )
            }
            _ => debug!("fd {fd}: backlog {asked}"),
        }
    }
    now_listening(fd, listening.slot, &listening.plan, listening.applied);
}

/// accept()/accept4() returned `fd` from `listener`: give it the listener's plan.
pub fn accepted(listener: c_int, fd: c_int) {
    crate::live::refresh();
    let Some((listener_slot, mut ls)) = track::learn(listener) else {
        return;
    };
    if ls.kind() == Kind::Tcp && sys::is_listening(listener) {
        // A listener we did not see listen (inherited, e.g. systemd socket activation).
        let plan = policy::listen_plan(config(), sys::local_port(listener).unwrap_or(0), ls);
        let applied = apply_listener_options(listener, &plan);
        ls = now_listening(listener, listener_slot, &plan, applied);
    }
    let Some(slot) = crate::fdtable::lookup_or_make(fd) else {
        return;
    };
    if ls.kind() != Kind::Listener {
        slot.reset(FdState::new(Kind::Other, 0, 0));
        return;
    }
    let planned = FdState::accepted_from(ls);
    let arm = stats::draw_arm();
    let state = if arm == Some(Arm::A) {
        planned.without_behaviours()
    } else {
        planned
    };
    let state = stats::start(state, arm);
    slot.reset(state);
    if state.has(FdState::NODELAY) && !state.has(FdState::APP_NAGLE) {
        set_tcp(fd, libc::TCP_NODELAY, 1, "TCP_NODELAY=1");
    }
    if state.reapplies_quickack() {
        set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0");
    } else if planned.reapplies_quickack() {
        // Arm A: undo the delayed-ACK mode the socket took from its listener.
        set_tcp(fd, libc::TCP_QUICKACK, 1, "TCP_QUICKACK=1 (arm A)");
    }
    debug!(
        "fd {fd}: accepted on port {} (arm {arm:?}): {}",
        state.port(),
        Plan(state)
    );
}

/// Before connect() to `remote_port`: applies the client plan; returns what `armed` needs after
/// the real call.
pub fn before_connect(fd: c_int, remote_port: u16) -> Option<armed::Connecting> {
    crate::live::refresh();
    let (slot, state) = track::learn(fd).filter(|(_, s)| s.kind() == Kind::Tcp)?;
    let arm = stats::draw_arm();
    let mut plan: ConnectPlan = policy::connect_plan(config(), remote_port, state);
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
    let applied = if fastopen {
        FdState::APPLIED_FASTOPEN_CONNECT
    } else {
        0
    };
    slot.reset(stats::start(plan.state.with(applied), arm));
    debug!(
        "fd {fd}: connecting to port {remote_port} (arm {arm:?}): {}",
        Plan(plan.state)
    );
    Some(armed::Connecting {
        slot,
        fastopen,
        quickack_off: plan.quickack_off,
    })
}

/// Lists a plan's behaviours for debug lines.
struct Plan(FdState);

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut any = false;
        for (flag, name) in [
            (FdState::CORK, Behaviour::Cork.name()),
            (FdState::QUICKACK_OFF, Behaviour::QuickackOff.name()),
            (FdState::NODELAY, Behaviour::Nodelay.name()),
            (FdState::APP_NAGLE, "(program owns nagle)"),
        ] {
            if self.0.has(flag) {
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

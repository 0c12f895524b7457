//! The options a socket gets once, when it starts to listen, is accepted or connects:
//! defer-accept, server Fast Open, the backlog, nodelay and the delayed-ACK mode of quickack-off,
//! the per-socket options (keepalive to maxseg), plus the A/B arm and the rule of the rules file
//! it follows. What acts later, call by call, lives in `cork`, `armed` and `quickack`.

use crate::fdtable::Slot;
use crate::log::{self, debug, info};
use crate::settings;
use crate::{armed, stats, sys, track, tree};
use libc::c_int;
use socktune_core::config::{Config, Level, Opt, When, FORCE_CORK};
use socktune_core::policy::{self, ConnectPlan, ListenPlan};
use socktune_core::record::Behaviour;
use socktune_core::state::{Arm, FdState, Kind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const TCP: c_int = libc::IPPROTO_TCP;

/// Logs `what` once per process (per `flag`) at `level`: the kernel's refusals at error, so
/// that they show whatever the log level, its notices at info.
fn once(flag: &AtomicBool, level: Level, what: std::fmt::Arguments<'_>) {
    if !flag.swap(true, Relaxed) {
        log::emit(level, what);
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

/// Sets option `o` to its value in `cfg`; whether it took.
fn set_opt(fd: c_int, o: Opt, cfg: &Config) -> bool {
    const SOCKET: c_int = libc::SOL_SOCKET;
    let opts = &cfg.opts;
    let name = o.name();
    match o {
        Opt::Keepalive => {
            let Some(k) = opts.keepalive else {
                return false;
            };
            let set =
                |opt, v: Option<u32>, what| v.is_none_or(|v| set_tcp(fd, opt, v as c_int, what));
            sys::set_int(fd, SOCKET, libc::SO_KEEPALIVE, 1).is_ok()
                && set(libc::TCP_KEEPIDLE, Some(k.idle), "TCP_KEEPIDLE set")
                && set(libc::TCP_KEEPINTVL, k.interval, "TCP_KEEPINTVL set")
                && set(libc::TCP_KEEPCNT, k.count, "TCP_KEEPCNT set")
        }
        Opt::Congestion => {
            let Some(algo) = opts.congestion.as_deref() else {
                return false;
            };
            match sys::set_bytes(fd, TCP, libc::TCP_CONGESTION, algo.as_bytes()) {
                Ok(()) => true,
                Err(e) => {
                    static REFUSED: AtomicBool = AtomicBool::new(false);
                    once(
                        &REFUSED,
                        Level::Error,
                        format_args!(
                            "congestion control {algo:?} refused (errno {e}): not in \
                         net.ipv4.tcp_allowed_congestion_control (or not loaded); skipped"
                        ),
                    );
                    false
                }
            }
        }
        _ => {
            let Some(v) = o.number(opts) else {
                return false;
            };
            let (level, option) = match o {
                Opt::UserTimeout => (TCP, libc::TCP_USER_TIMEOUT),
                Opt::Syncnt => (TCP, libc::TCP_SYNCNT),
                Opt::NotsentLowat => (TCP, libc::TCP_NOTSENT_LOWAT),
                Opt::Maxseg => (TCP, libc::TCP_MAXSEG),
                Opt::Sndbuf => (SOCKET, libc::SO_SNDBUF),
                Opt::Rcvbuf => (SOCKET, libc::SO_RCVBUF),
                Opt::Mark => (SOCKET, libc::SO_MARK),
                Opt::Priority => (SOCKET, libc::SO_PRIORITY),
                Opt::Tos if sys::is_ipv6(fd) => {
                    // An IPv6 socket may carry IPv4 (a dual-stack listener's clients, a
                    // v4-mapped peer), which takes its TOS from IP_TOS.
                    let _ = sys::set_int(fd, libc::IPPROTO_IP, libc::IP_TOS, v as c_int);
                    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
                }
                _ => (libc::IPPROTO_IP, libc::IP_TOS),
            };
            match sys::set_int(fd, level, option, v as c_int) {
                Ok(()) => {
                    debug!("fd {fd}: {name} {v} set");
                    if matches!(o, Opt::Sndbuf | Opt::Rcvbuf) {
                        note_buffer_clamp(fd, o, option, v);
                    }
                    true
                }
                Err(e) => {
                    if o == Opt::Mark && e == libc::EPERM {
                        static REFUSED: AtomicBool = AtomicBool::new(false);
                        once(
                            &REFUSED,
                            Level::Error,
                            format_args!(
                                "SO_MARK {v} refused: it needs CAP_NET_ADMIN; no mark is set"
                            ),
                        );
                    }
                    debug!("fd {fd}: {name} {v} failed (errno {e})");
                    false
                }
            }
        }
    }
}

/// The kernel keeps twice a buffer size, after clamping it to net.core.wmem_max/rmem_max:
/// reading back less than twice what was asked tells of the clamp.
fn note_buffer_clamp(fd: c_int, o: Opt, option: c_int, asked: u32) {
    static SNDBUF: AtomicBool = AtomicBool::new(false);
    static RCVBUF: AtomicBool = AtomicBool::new(false);
    let Some(got) = sys::get_int(fd, libc::SOL_SOCKET, option) else {
        return;
    };
    if i64::from(got) < 2 * i64::from(asked) {
        let (flag, sysctl) = match o {
            Opt::Sndbuf => (&SNDBUF, "net.core.wmem_max"),
            _ => (&RCVBUF, "net.core.rmem_max"),
        };
        once(
            flag,
            Level::Info,
            format_args!(
                "fd {fd}: {} {asked} clamped by the kernel to {} ({sysctl})",
                o.name(),
                got / 2
            ),
        );
    }
}

/// Sets the options among `planned` (state bits); returns the bits of those that took.
fn apply_opts(fd: c_int, planned: u64, cfg: &Config) -> u64 {
    Opt::ALL
        .iter()
        .enumerate()
        .filter(|&(i, _)| planned & FdState::opt(i) != 0)
        .filter(|&(_, &o)| set_opt(fd, o, cfg))
        .fold(0, |took, (i, _)| took | FdState::opt(i))
}

/// Sets the plan's listener options; returns the state flags of those that took.
fn apply_listener_options(fd: c_int, plan: &ListenPlan, cfg: &Config) -> u64 {
    let mut applied = apply_opts(fd, plan.opts, cfg);
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
        // The sysctl is the namespace's: read once per process, not at every listen (a passive
        // FTP server listens for each transfer).
        static CHECKED: AtomicBool = AtomicBool::new(false);
        if set_tcp(fd, libc::TCP_FASTOPEN, qlen as c_int, "TCP_FASTOPEN set") {
            applied |= FdState::APPLIED_FASTOPEN;
            const SERVER_BIT: i64 = 2;
            if !CHECKED.swap(true, Relaxed)
                && sys::read_proc_int(c"/proc/sys/net/ipv4/tcp_fastopen")
                    .is_some_and(|v| v & SERVER_BIT == 0)
            {
                info!("net.ipv4.tcp_fastopen lacks the server bit (2): server Fast Open will not take effect");
            }
        }
    }
    applied
}

/// Plans a listener by the rule for its local port, and sets its options; returns the plan,
/// the rule, and the state flags of the options that took.
fn plan_listener(fd: c_int, state: FdState) -> (ListenPlan, u8, u64) {
    let port = sys::local_port(fd).unwrap_or(0);
    let rule = settings::rule_for(true, port, None);
    let cfg = settings::for_socket(rule);
    let plan = policy::listen_plan(
        cfg,
        port,
        state,
        sys::ephemeral_ports(),
        tree::speaks_first_seen(),
    );
    let applied = apply_listener_options(fd, &plan, cfg);
    (plan, rule, applied)
}

/// `fd` listens: finish its plan and remember it, with the listener options that took.
fn now_listening(fd: c_int, slot: Slot, plan: &ListenPlan, rule: u8, applied: u64) -> FdState {
    if plan.quickack_off {
        // After listen(), which resets it, so that accepted sockets start with delayed ACKs.
        set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0 on listener");
    }
    let state = plan.state.with(applied);
    slot.reset(state);
    slot.set_rule(rule);
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
    rule: u8,
    applied: u64,
    /// The backlog to pass to the real listen().
    pub backlog: c_int,
}

/// Before listen(): sets the listener options; returns what to finish after, with the backlog.
pub fn before_listen(fd: c_int, backlog: c_int) -> Option<Listening> {
    crate::live::refresh();
    let (slot, state) = track::learn(fd).filter(|(_, s)| s.is_tcp())?;
    crate::live::needed();
    let (plan, rule, applied) = plan_listener(fd, state);
    Some(Listening {
        slot,
        backlog: plan.backlog.unwrap_or(backlog),
        plan,
        rule,
        applied,
    })
}

/// After a successful listen().
pub fn after_listen(fd: c_int, listening: Listening) {
    if listening.plan.backlog.is_some() {
        let asked = listening.backlog;
        // TCP_INFO's tcpi_sacked is a listener's backlog limit, the same for every listener of
        // the namespace: read at the first.
        static CHECKED: AtomicBool = AtomicBool::new(false);
        match (!CHECKED.swap(true, Relaxed))
            .then(|| sys::tcp_info(fd))
            .flatten()
            .map(|i| i.tcpi_sacked)
        {
            Some(max) if i64::from(max) < i64::from(asked) => {
                info!(
                    "fd {fd}: backlog {asked} clamped by the kernel to {max} (net.core.somaxconn)"
                )
            }
            _ => debug!("fd {fd}: backlog {asked}"),
        }
    }
    now_listening(
        fd,
        listening.slot,
        &listening.plan,
        listening.rule,
        listening.applied,
    );
}

/// accept()/accept4() returned `fd` from `listener`: give it the listener's plan.
pub fn accepted(listener: c_int, fd: c_int) {
    crate::live::refresh();
    let Some((listener_slot, mut ls)) = track::learn(listener) else {
        return;
    };
    if ls.kind() == Kind::Tcp && sys::is_listening(listener) {
        // A listener we did not see listen (inherited, e.g. systemd socket activation).
        let (plan, rule, applied) = plan_listener(listener, ls);
        ls = now_listening(listener, listener_slot, &plan, rule, applied);
    }
    let healed = crate::speaks_first::after_handing_over(listener, listener_slot, ls);
    let Some(slot) = crate::fdtable::lookup_or_make(fd) else {
        return;
    };
    if ls.kind() != Kind::Listener {
        slot.reset(FdState::new(Kind::Other, 0, 0));
        return;
    }
    start_accepted(fd, slot, ls, listener_slot.rule(), healed);
}

/// recvmsg() brought `fd` in by SCM_RIGHTS (vsftpd's privileged process accepts each data
/// connection for its session process): know what it is, and tune a connection as one accepted
/// here from a listener on its local port, which another process of the program holds.
pub fn received(fd: c_int) {
    let Some(slot) = crate::fdtable::lookup_or_make(fd) else {
        return;
    };
    slot.clear();
    if settings::config().inert() {
        return;
    }
    // One call tells a TCP socket (only TCP has TCP_INFO) and whether it is connected; an fd
    // of another kind stays unknown, to be learned if a call ever needs it.
    let Some(tcp_state) = sys::tcp_state(fd) else {
        return;
    };
    let state = FdState::new(Kind::Tcp, 0, 0);
    slot.reset(state);
    if !matches!(tcp_state, sys::TCP_ESTABLISHED | sys::TCP_CLOSE_WAIT) {
        return; // a listener is planned at its first accept(), as an inherited one
    }
    crate::live::refresh();
    let port = sys::local_port(fd).unwrap_or(0);
    let rule = settings::rule_for(true, port, None);
    let plan = policy::listen_plan(
        settings::for_socket(rule),
        port,
        state,
        sys::ephemeral_ports(),
        tree::speaks_first_seen(),
    );
    start_accepted(fd, slot, plan.state, rule, false);
}

/// Tunes `fd`, accepted from a listener in state `ls` that follows `listener_rule`.
fn start_accepted(fd: c_int, slot: Slot, ls: FdState, listener_rule: u8, healed: bool) {
    crate::live::needed();
    // The options of the handshake came with the socket from its listener.
    let handshake = ls.flags(policy::opt_bits(|o| o.when() == When::Handshake));
    let planned = FdState::accepted_from(ls).with(handshake);
    let planned = if healed {
        planned.with(FdState::DEFER_HEALED)
    } else {
        planned
    };
    let arm = stats::draw_arm();
    let (rule, cfg) = accepted_rule(fd, ls, listener_rule);
    let mut state = planned;
    if arm == Some(Arm::A) {
        state = state.without_behaviours();
    } else {
        let opts = policy::accept_opts(cfg, ls.port(), ls);
        state = state.with(apply_opts(fd, opts, cfg));
    }
    let state = stats::start(slot, state, arm);
    slot.set_rule(rule);
    // A socket accepted from a listener the program gave TCP_NODELAY has it already.
    let has_nodelay = state.has(FdState::APP_NODELAY);
    if state.has(FdState::NODELAY) && !state.has(FdState::APP_NAGLE) && !has_nodelay {
        set_tcp(fd, libc::TCP_NODELAY, 1, "TCP_NODELAY=1");
    }
    uncork_forced(fd, state, cfg);
    if state.reapplies_quickack() && set_tcp(fd, libc::TCP_QUICKACK, 0, "TCP_QUICKACK=0") {
        slot.note_delayed_ack(sys::coarse_ms());
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

/// The rule an accepted socket follows: its listener's, unless rules by peer are there to
/// tell, with its settings.
fn accepted_rule(fd: c_int, listener: FdState, listener_rule: u8) -> (u8, &'static Config) {
    let rule = if settings::rules_by_peer() {
        let peer = sys::peer_addr(fd).map(|a| a.ip());
        settings::rule_for(true, listener.port(), peer)
    } else {
        listener_rule
    };
    (rule, settings::for_socket(rule))
}

/// Before connect() to `remote`: applies the client plan; returns what `armed` needs after the
/// real call.
pub fn before_connect(fd: c_int, remote: SocketAddr) -> Option<armed::Connecting> {
    crate::live::refresh();
    let (slot, state) = track::learn(fd).filter(|(_, s)| s.kind() == Kind::Tcp)?;
    crate::live::needed();
    let arm = stats::draw_arm();
    let remote_port = remote.port();
    let rule = settings::rule_for(false, remote_port, Some(remote.ip()));
    let cfg = settings::for_socket(rule);
    let mut plan: ConnectPlan = policy::connect_plan(cfg, remote_port, state);
    if arm == Some(Arm::A) {
        plan = plan.without_behaviours();
    }
    let opts = apply_opts(fd, plan.opts, cfg);
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
                Level::Info,
                format_args!(
                    "net.ipv4.tcp_fastopen lacks the client bit (1): client Fast Open is off"
                ),
            );
        }
    }
    let applied = opts
        | if fastopen {
            FdState::APPLIED_FASTOPEN_CONNECT
        } else {
            0
        };
    let state = stats::start(slot, plan.state.with(applied), arm);
    slot.set_rule(rule);
    uncork_forced(fd, state, cfg);
    debug!(
        "fd {fd}: connecting to port {remote_port} (arm {arm:?}): {}",
        Plan(state)
    );
    Some(armed::Connecting {
        slot,
        fastopen,
        quickack_off: plan.quickack_off,
    })
}

/// Under a forced cork a connection starts uncorked, as cork per response has it, whatever
/// TCP_CORK the program set before connect() or on the listener (accepted sockets inherit it).
fn uncork_forced(fd: c_int, state: FdState, cfg: &Config) {
    if cfg.force & FORCE_CORK != 0 && state.corks() {
        set_tcp(fd, libc::TCP_CORK, 0, "TCP_CORK=0 (forced cork)");
    }
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
        for (i, o) in Opt::ALL.iter().enumerate() {
            if self.0.has(FdState::opt(i)) && self.0.is_connection() {
                write!(f, "{}{}", if any { ", " } else { "" }, o.name())?;
                any = true;
            }
        }
        if !any {
            write!(f, "nothing")?;
        }
        Ok(())
    }
}

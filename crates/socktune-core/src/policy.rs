//! What to do to a socket now: plain Rust, no FFI.
//!
//! Given the settings and an fd's [`FdState`], the functions here decide what the preload library
//! does: the plans at listen() and connect(), and what held data needs at close and shutdown.
//! The hooks ask and carry out the answer.

use crate::config::{Config, Role};
use crate::state::{FdState, Kind};

fn in_scope(cfg: &Config, port: u16) -> bool {
    cfg.ports.as_ref().is_none_or(|set| set.contains(port))
}

/// The connection behaviours configured for one side (`Role::server` or `Role::client`).
fn connection_flags(cfg: &Config, side: fn(Role) -> bool) -> u64 {
    let cork = cfg.cork && side(cfg.cork_role);
    let mut flags = 0;
    if cork {
        flags |= FdState::CORK;
    }
    if cfg.quickack_off && side(cfg.quickack_role) {
        flags |= FdState::QUICKACK_OFF;
    }
    // Cork needs NODELAY: uncorking would otherwise leave the last partial segment to Nagle.
    if cork || (cfg.nodelay && side(cfg.nodelay_role)) {
        flags |= FdState::NODELAY;
    }
    flags
}

/// What to do to a TCP socket that is about to listen on `local_port`.
#[derive(Debug, PartialEq, Eq)]
pub struct ListenPlan {
    pub defer_accept: Option<u32>,
    pub fastopen: Option<u32>,
    pub backlog: Option<i32>,
    /// Set TCP_QUICKACK=0 after listen() so that children start in delayed-ACK mode.
    pub quickack_off: bool,
    /// The listener's state, which also carries the plan for accepted sockets.
    pub state: FdState,
}

pub fn listen_plan(cfg: &Config, local_port: u16, prior: FdState) -> ListenPlan {
    let scoped = in_scope(cfg, local_port);
    let kept = prior.flags(
        FdState::APP_NAGLE
            | FdState::APP_NODELAY
            | FdState::APP_QUICKACK
            | FdState::LINGER
            | FdState::APP_DEFER
            | FdState::APP_FASTOPEN,
    );
    if !scoped {
        return ListenPlan {
            defer_accept: None,
            fastopen: None,
            backlog: None,
            quickack_off: false,
            state: FdState::new(Kind::Listener, kept, local_port),
        };
    }
    let flags = kept | connection_flags(cfg, Role::server);
    ListenPlan {
        defer_accept: cfg.defer_accept.filter(|_| !prior.has(FdState::APP_DEFER)),
        fastopen: cfg.fastopen.filter(|_| !prior.has(FdState::APP_FASTOPEN)),
        backlog: cfg.backlog,
        quickack_off: flags & FdState::QUICKACK_OFF != 0 && !prior.has(FdState::APP_QUICKACK),
        state: FdState::new(Kind::Listener, flags, local_port),
    }
}

/// What to do to a TCP socket before it connects to `remote_port`.
#[derive(Debug, PartialEq, Eq)]
pub struct ConnectPlan {
    pub quickack_off: bool,
    pub nodelay: bool,
    pub fastopen_connect: bool,
    pub state: FdState,
}

impl ConnectPlan {
    /// The plan for a connection in A/B arm A: socktune does nothing to it.
    pub fn without_behaviours(self) -> ConnectPlan {
        ConnectPlan {
            quickack_off: false,
            nodelay: false,
            fastopen_connect: false,
            state: self.state.without_behaviours(),
        }
    }
}

pub fn connect_plan(cfg: &Config, remote_port: u16, prior: FdState) -> ConnectPlan {
    let kept = prior.flags(
        FdState::APP_NAGLE
            | FdState::APP_NODELAY
            | FdState::APP_QUICKACK
            | FdState::LINGER
            | FdState::SHARED,
    );
    if !in_scope(cfg, remote_port) {
        return ConnectPlan {
            quickack_off: false,
            nodelay: false,
            fastopen_connect: false,
            state: FdState::new(Kind::Client, kept, remote_port),
        };
    }
    let mut flags = kept | connection_flags(cfg, Role::client);
    if prior.has(FdState::APP_NAGLE) {
        flags &= !FdState::NODELAY;
    }
    ConnectPlan {
        quickack_off: flags & FdState::QUICKACK_OFF != 0 && !prior.has(FdState::APP_QUICKACK),
        nodelay: flags & FdState::NODELAY != 0,
        fastopen_connect: cfg.fastopen_connect,
        state: FdState::new(Kind::Client, flags, remote_port),
    }
}

/// Whether the first write of a response starts a cork. A program that turned TCP_NODELAY on
/// itself and hands over a whole gathered response at once (writev or sendmsg with several
/// buffers, as Node.js does) gets it sent as it asked; corking it would only hold it until the
/// program's next wait. Its responses written in pieces (Starman: header, then body) are corked.
pub fn corks_response(gathered_write: bool, program_nodelay: bool) -> bool {
    !(gathered_write && program_nodelay)
}

/// What to do with held (corked) data when the program closes the fd.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseAction {
    /// Let the kernel flush it with the FIN riding on the last segment.
    RideFin,
    /// Uncork first: the close may reset the connection or leave the socket open elsewhere.
    PushFirst,
}

pub fn close_action(state: FdState, unread_bytes: usize) -> CloseAction {
    // Unread input or SO_LINGER make close() reset and drop unsent data; a shared socket is not
    // closed at all by this close(), so nothing would flush what we hold.
    if unread_bytes > 0 || state.has(FdState::LINGER) || state.has(FdState::SHARED) {
        CloseAction::PushFirst
    } else {
        CloseAction::RideFin
    }
}

/// What to do with held data at shutdown().
#[derive(Debug, PartialEq, Eq)]
pub enum ShutdownAction {
    /// The FIN rides on the held data.
    RideFin,
    /// Only the read side is shut: no FIN comes, so push now.
    PushFirst,
    /// Keep holding until the program's next read, wait or close (or the flusher). A Fast Open
    /// connection still in SYN_RECV keeps a FIN-riding corked segment until the client's
    /// handshake ACK, which a quickack-off client delays ~200 ms; a close() sends it at once,
    /// and so does an uncork at the next boundary.
    KeepHeld,
}

pub fn shutdown_action(read_side_only: bool, handshake_pending: bool) -> ShutdownAction {
    if read_side_only {
        ShutdownAction::PushFirst
    } else if handshake_pending {
        ShutdownAction::KeepHeld
    } else {
        ShutdownAction::RideFin
    }
}

/// What an armed client connection (see `FdState::ARMED`) needs before the program waits.
#[derive(Debug, PartialEq, Eq)]
pub enum ArmedWait {
    /// Send the SYN (or ACK) now: otherwise nothing will ever arrive to read.
    Kick,
    /// The wait will report the socket writable at once; give the program that chance first.
    LetThrough,
    /// Not this wait's business: another thread armed it and waits elsewhere.
    Leave,
}

/// `interest`: what the wait asks of the fd, (read, write), or `None` if it does not wait on it.
/// `armed_here`: the waiting thread armed it. A thread that waits on anything else before its
/// first write (the passive-FTP client polls its control connection) may be what the peer
/// waits for.
pub fn armed_wait(state: FdState, interest: Option<(bool, bool)>, armed_here: bool) -> ArmedWait {
    match interest {
        Some((true, write)) if !write || state.has(FdState::ARMED_WAITED) => ArmedWait::Kick,
        Some(_) => ArmedWait::LetThrough,
        None if armed_here => ArmedWait::Kick,
        None => ArmedWait::Leave,
    }
}

/// A plain connect() of a non-blocking socket answers EINPROGRESS; with a cached Fast Open
/// cookie the kernel answers 0 and sends nothing. Whether to report EINPROGRESS instead.
pub fn reports_in_progress(nonblocking: bool, kernel_result: i32, syn_waits: bool) -> bool {
    nonblocking && kernel_result == 0 && syn_waits
}

/// Before a close or shutdown of an armed Fast Open connection: whether to wait for the
/// handshake after sending the SYN. A program told its socket is connected (connect() returned
/// 0, or it saw it writable) expects the peer to see the connection and its end; closing in
/// SYN_SENT would abort it unseen.
pub fn armed_end_waits_for_handshake(state: FdState) -> bool {
    !state.has(FdState::ARMED_IN_PROGRESS) || state.has(FdState::ARMED_WAITED)
}

/// Quickack-off, before a read on a connection whose last data read has not been answered
/// (`FdState::ACK_PENDING`): send the delayed ACK now if the read is going to wait for more, as
/// the peer's Nagle may be holding that very data until it sees the ACK. A read of data or an
/// end already there (`ready`), or one that returns EAGAIN at once (an event loop draining its
/// socket before it writes the response), keeps the ACK for the response (or the FIN) to carry.
/// Each is asked only as far as needed: each is a system call.
pub fn acks_before_read(
    state: FdState,
    ready: impl FnOnce() -> bool,
    blocking: impl FnOnce() -> bool,
) -> bool {
    state.has(FdState::ACK_PENDING) && !ready() && blocking()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Config};

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        parse(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).config
    }

    #[test]
    fn arm_a_drops_socktunes_behaviours_but_keeps_what_the_program_did() {
        let m = FdState::new(
            Kind::Server,
            FdState::CORK
                | FdState::QUICKACK_OFF
                | FdState::NODELAY
                | FdState::APP_NAGLE
                | FdState::LINGER,
            80,
        );
        let a = m.without_behaviours();
        assert_eq!(
            a,
            FdState::new(Kind::Server, FdState::APP_NAGLE | FdState::LINGER, 80)
        );
        assert!(!a.corks() && !a.reapplies_quickack() && !a.acts_before_io());
        let all = cfg(&[
            ("SOCKTUNE_QUICKACK", "0"),
            ("SOCKTUNE_NODELAY", "1"),
            ("SOCKTUNE_FASTOPEN_CONNECT", "1"),
        ]);
        let plan = connect_plan(&all, 80, FdState::new(Kind::Tcp, 0, 0)).without_behaviours();
        assert!(!plan.quickack_off && !plan.nodelay && !plan.fastopen_connect);
        assert_eq!(plan.state, FdState::new(Kind::Client, 0, 80));
    }

    #[test]
    fn accepted_sockets_inherit_the_plan_but_not_listener_only_flags() {
        let l = FdState::new(
            Kind::Listener,
            FdState::CORK | FdState::QUICKACK_OFF | FdState::APP_DEFER | FdState::SHARED,
            80,
        );
        let c = FdState::accepted_from(l);
        assert_eq!(c.kind(), Kind::Server);
        assert!(c.corks() && c.reapplies_quickack());
        assert!(!c.has(FdState::APP_DEFER) && !c.has(FdState::SHARED));
        assert_eq!(c.port(), 80);
    }

    #[test]
    fn listen_plan_follows_config_and_ports() {
        let c = cfg(&[
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_DEFER_ACCEPT", "5"),
            ("SOCKTUNE_FASTOPEN", "256"),
            ("SOCKTUNE_QUICKACK", "0"),
            ("SOCKTUNE_PORTS", "8000-8010"),
        ]);
        let p = listen_plan(&c, 8005, FdState::new(Kind::Tcp, 0, 0));
        assert_eq!(p.defer_accept, Some(5));
        assert_eq!(p.fastopen, Some(256));
        assert!(p.quickack_off);
        assert!(
            p.state.has(FdState::CORK) && p.state.has(FdState::NODELAY),
            "cork implies nodelay for the tail"
        );
        let out = listen_plan(&c, 25, FdState::new(Kind::Tcp, 0, 0));
        assert_eq!(out.defer_accept, None);
        assert!(!out.state.has(FdState::CORK));
        assert_eq!(out.state.kind(), Kind::Listener);
    }

    #[test]
    fn the_programs_own_listener_options_win() {
        let c = cfg(&[
            ("SOCKTUNE_DEFER_ACCEPT", "5"),
            ("SOCKTUNE_FASTOPEN", "16"),
            ("SOCKTUNE_QUICKACK", "off"),
        ]);
        let prior = FdState::new(
            Kind::Tcp,
            FdState::APP_DEFER | FdState::APP_FASTOPEN | FdState::APP_QUICKACK,
            0,
        );
        let p = listen_plan(&c, 80, prior);
        assert_eq!(
            (p.defer_accept, p.fastopen, p.quickack_off),
            (None, None, false)
        );
    }

    #[test]
    fn roles_split_server_and_client() {
        let c = cfg(&[
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_CORK_ROLE", "server"),
            ("SOCKTUNE_QUICKACK", "0"),
            ("SOCKTUNE_QUICKACK_ROLE", "client"),
        ]);
        let l = listen_plan(&c, 80, FdState::default());
        assert!(l.state.has(FdState::CORK) && !l.quickack_off);
        let k = connect_plan(&c, 80, FdState::default());
        assert!(!k.state.has(FdState::CORK) && k.quickack_off);
    }

    #[test]
    fn connect_plan_respects_program_nagle_and_port_scope() {
        let c = cfg(&[
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_FASTOPEN_CONNECT", "1"),
            ("SOCKTUNE_PORTS", "80"),
        ]);
        let k = connect_plan(&c, 80, FdState::new(Kind::Tcp, FdState::APP_NAGLE, 0));
        assert!(!k.nodelay && !k.state.corks());
        assert!(k.fastopen_connect);
        assert!(
            !connect_plan(&c, 25, FdState::default()).fastopen_connect,
            "SMTP port left alone"
        );
    }

    #[test]
    fn a_nodelay_program_s_gathered_response_is_not_corked() {
        assert!(corks_response(false, false));
        assert!(corks_response(true, false));
        assert!(corks_response(false, true));
        assert!(!corks_response(true, true));
    }

    #[test]
    fn close_lets_fin_ride_only_when_safe() {
        let m = FdState::new(Kind::Server, FdState::CORK, 80);
        assert_eq!(close_action(m, 0), CloseAction::RideFin);
        assert_eq!(close_action(m, 3), CloseAction::PushFirst);
        assert_eq!(
            close_action(FdState(m.0 | FdState::LINGER), 0),
            CloseAction::PushFirst
        );
        assert_eq!(
            close_action(FdState(m.0 | FdState::SHARED), 0),
            CloseAction::PushFirst
        );
        assert_eq!(shutdown_action(false, false), ShutdownAction::RideFin);
        assert_eq!(shutdown_action(true, false), ShutdownAction::PushFirst);
        assert_eq!(shutdown_action(false, true), ShutdownAction::KeepHeld);
        assert_eq!(shutdown_action(true, true), ShutdownAction::PushFirst);
    }

    #[test]
    fn armed_fast_open_never_waits_forever_for_input() {
        let m = FdState::new(Kind::Client, FdState::ARMED, 25);
        assert_eq!(armed_wait(m, Some((true, false)), false), ArmedWait::Kick);
        assert_eq!(
            armed_wait(m, Some((true, true)), true),
            ArmedWait::LetThrough
        );
        assert_eq!(
            armed_wait(m.with(FdState::ARMED_WAITED), Some((true, true)), false),
            ArmedWait::Kick
        );
        assert_eq!(
            armed_wait(m, Some((false, true)), true),
            ArmedWait::LetThrough
        );
        assert_eq!(
            armed_wait(m, None, true),
            ArmedWait::Kick,
            "waits elsewhere"
        );
        assert_eq!(armed_wait(m, None, false), ArmedWait::Leave);
    }

    #[test]
    fn connect_answers_as_a_plain_connect_would() {
        assert!(reports_in_progress(true, 0, true));
        assert!(!reports_in_progress(false, 0, true), "blocking: 0 is right");
        assert!(
            !reports_in_progress(true, -1, true),
            "the kernel said EINPROGRESS itself"
        );
        assert!(!reports_in_progress(true, 0, false));
        let m = FdState::new(Kind::Client, FdState::ARMED, 25);
        assert!(armed_end_waits_for_handshake(m));
        let pending = m.with(FdState::ARMED_IN_PROGRESS);
        assert!(!armed_end_waits_for_handshake(pending));
        assert!(armed_end_waits_for_handshake(
            pending.with(FdState::ARMED_WAITED)
        ));
    }

    #[test]
    fn the_pending_ack_leaves_only_before_a_read_that_waits() {
        let m = FdState::new(
            Kind::Client,
            FdState::QUICKACK_OFF | FdState::ACK_PENDING,
            80,
        );
        assert!(acks_before_read(m, || false, || true));
        assert!(
            !acks_before_read(m, || true, || unreachable!()),
            "data or the peer's FIN there: the read does not wait"
        );
        assert!(
            !acks_before_read(m, || false, || false),
            "EAGAIN at once: the response carries it"
        );
        let answered = m.without(FdState::ACK_PENDING);
        assert!(!acks_before_read(answered, || unreachable!(), || true));
    }
}

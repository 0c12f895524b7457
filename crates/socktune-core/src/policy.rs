//! What to do to a socket now: plain Rust, no FFI.
//!
//! Each tracked fd carries one 32-bit [`Meta`] word: its kind, the behaviours planned for it, what
//! the program took over itself, and a port (the local port of a listener, the remote port of a
//! client). The hooks ask the functions here and carry out the answer.

use crate::config::{Config, Role};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// Unknown to us: passed through untouched.
    Empty = 0,
    /// A socket we saw and that is not TCP over IPv4/IPv6 (UNIX, UDP, ...).
    Other = 1,
    /// A TCP socket, neither listening nor connecting yet.
    Tcp = 2,
    Listener = 3,
    /// Accepted from a listener.
    Server = 4,
    /// Connected by the program.
    Client = 5,
}

/// One fd's state word. Flags on a listener describe the plan for the sockets it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Meta(pub u32);

impl Meta {
    const KIND_MASK: u32 = 0b111;
    /// Cork per response.
    pub const CORK: u32 = 1 << 3;
    /// Re-apply TCP_QUICKACK=0 after each read that returns data.
    pub const QUICKACK_OFF: u32 = 1 << 4;
    /// We set TCP_NODELAY on it (or will, for a listener's children).
    pub const NODELAY: u32 = 1 << 5;
    /// The program set TCP_CORK or TCP_NODELAY itself: hands off Nagle and cork.
    pub const APP_NAGLE: u32 = 1 << 6;
    /// The program set TCP_QUICKACK itself.
    pub const APP_QUICKACK: u32 = 1 << 7;
    /// Another fd or process may hold the same socket (dup, fork).
    pub const SHARED: u32 = 1 << 8;
    /// The program enabled SO_LINGER: close may reset, so push held data first.
    pub const LINGER: u32 = 1 << 9;
    /// A client connection waits for the program's first write to complete it: the Fast Open
    /// SYN (connect() with a cached cookie sends nothing), or, under quickack-off, the
    /// handshake's last ACK. A read, or a wait for input only, before that write must kick it.
    pub const ARMED: u32 = 1 << 10;
    /// An armed fd already went through one wait that could report it writable.
    pub const ARMED_WAITED: u32 = 1 << 11;
    /// An armed fd was registered with epoll for input only.
    pub const EPOLL_READ_ONLY: u32 = 1 << 12;
    /// The program set TCP_DEFER_ACCEPT itself on this listener.
    pub const APP_DEFER: u32 = 1 << 13;
    /// The program set TCP_FASTOPEN itself on this listener.
    pub const APP_FASTOPEN: u32 = 1 << 14;
    /// The shim's own log file (an `Other` fd): closing it means reopening before the next line.
    pub const SHIM_LOG: u32 = 1 << 15;
    /// Flags an accepted socket takes from its listener.
    pub const INHERITED: u32 =
        Self::CORK | Self::QUICKACK_OFF | Self::NODELAY | Self::APP_NAGLE | Self::LINGER;
    const PORT_SHIFT: u32 = 16;

    pub fn new(kind: Kind, flags: u32, port: u16) -> Meta {
        Meta(
            kind as u32
                | (flags & !Self::KIND_MASK & 0xffff)
                | (u32::from(port) << Self::PORT_SHIFT),
        )
    }
    pub fn kind(self) -> Kind {
        match self.0 & Self::KIND_MASK {
            1 => Kind::Other,
            2 => Kind::Tcp,
            3 => Kind::Listener,
            4 => Kind::Server,
            5 => Kind::Client,
            _ => Kind::Empty,
        }
    }
    pub fn port(self) -> u16 {
        (self.0 >> Self::PORT_SHIFT) as u16
    }
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
    pub fn is_tcp(self) -> bool {
        matches!(
            self.kind(),
            Kind::Tcp | Kind::Listener | Kind::Server | Kind::Client
        )
    }
    pub fn is_connection(self) -> bool {
        matches!(self.kind(), Kind::Server | Kind::Client)
    }
    /// Cork per response is ours to manage on this fd.
    pub fn corks(self) -> bool {
        self.is_connection() && self.has(Self::CORK) && !self.has(Self::APP_NAGLE)
    }
    /// Reads and writes on it may need us first: to cork, to flush, or to send an armed SYN.
    pub fn acts_before_io(self) -> bool {
        self.corks() || self.has(Self::ARMED)
    }
    pub fn reapplies_quickack(self) -> bool {
        self.is_connection() && self.has(Self::QUICKACK_OFF) && !self.has(Self::APP_QUICKACK)
    }
    /// The same socket with none of socktune's connection behaviours (A/B arm A).
    pub fn without_behaviours(self) -> Meta {
        Meta(self.0 & !(Self::CORK | Self::QUICKACK_OFF | Self::NODELAY))
    }
    /// The state an accepted socket starts in.
    pub fn accepted_from(listener: Meta) -> Meta {
        Meta::new(Kind::Server, listener.0 & Self::INHERITED, listener.port())
    }
}

fn in_scope(cfg: &Config, port: u16) -> bool {
    cfg.ports.as_ref().is_none_or(|set| set.contains(port))
}

/// The connection behaviours configured for one side (`Role::server` or `Role::client`).
fn connection_flags(cfg: &Config, side: fn(Role) -> bool) -> u32 {
    let cork = cfg.cork && side(cfg.cork_role);
    let mut flags = 0;
    if cork {
        flags |= Meta::CORK;
    }
    if cfg.quickack_off && side(cfg.quickack_role) {
        flags |= Meta::QUICKACK_OFF;
    }
    // Cork needs NODELAY: uncorking would otherwise leave the last partial segment to Nagle.
    if cork || (cfg.nodelay && side(cfg.nodelay_role)) {
        flags |= Meta::NODELAY;
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
    /// The listener's meta, which also carries the plan for accepted sockets.
    pub meta: Meta,
}

pub fn listen_plan(cfg: &Config, local_port: u16, prior: Meta) -> ListenPlan {
    let scoped = in_scope(cfg, local_port);
    let kept = prior.0
        & (Meta::APP_NAGLE
            | Meta::APP_QUICKACK
            | Meta::LINGER
            | Meta::APP_DEFER
            | Meta::APP_FASTOPEN);
    if !scoped {
        return ListenPlan {
            defer_accept: None,
            fastopen: None,
            backlog: None,
            quickack_off: false,
            meta: Meta::new(Kind::Listener, kept, local_port),
        };
    }
    let flags = kept | connection_flags(cfg, Role::server);
    ListenPlan {
        defer_accept: cfg.defer_accept.filter(|_| !prior.has(Meta::APP_DEFER)),
        fastopen: cfg.fastopen.filter(|_| !prior.has(Meta::APP_FASTOPEN)),
        backlog: cfg.backlog,
        quickack_off: flags & Meta::QUICKACK_OFF != 0 && !prior.has(Meta::APP_QUICKACK),
        meta: Meta::new(Kind::Listener, flags, local_port),
    }
}

/// What to do to a TCP socket before it connects to `remote_port`.
#[derive(Debug, PartialEq, Eq)]
pub struct ConnectPlan {
    pub quickack_off: bool,
    pub nodelay: bool,
    pub fastopen_connect: bool,
    pub meta: Meta,
}

impl ConnectPlan {
    /// The plan for a connection in A/B arm A: socktune does nothing to it.
    pub fn without_behaviours(self) -> ConnectPlan {
        ConnectPlan {
            quickack_off: false,
            nodelay: false,
            fastopen_connect: false,
            meta: self.meta.without_behaviours(),
        }
    }
}

pub fn connect_plan(cfg: &Config, remote_port: u16, prior: Meta) -> ConnectPlan {
    let kept = prior.0 & (Meta::APP_NAGLE | Meta::APP_QUICKACK | Meta::LINGER | Meta::SHARED);
    if !in_scope(cfg, remote_port) {
        return ConnectPlan {
            quickack_off: false,
            nodelay: false,
            fastopen_connect: false,
            meta: Meta::new(Kind::Client, kept, remote_port),
        };
    }
    let mut flags = kept | connection_flags(cfg, Role::client);
    if prior.has(Meta::APP_NAGLE) {
        flags &= !Meta::NODELAY;
    }
    ConnectPlan {
        quickack_off: flags & Meta::QUICKACK_OFF != 0 && !prior.has(Meta::APP_QUICKACK),
        nodelay: flags & Meta::NODELAY != 0,
        fastopen_connect: cfg.fastopen_connect,
        meta: Meta::new(Kind::Client, flags, remote_port),
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

pub fn close_action(meta: Meta, unread_bytes: usize) -> CloseAction {
    // Unread input or SO_LINGER make close() reset and drop unsent data; a shared socket is not
    // closed at all by this close(), so nothing would flush what we hold.
    if unread_bytes > 0 || meta.has(Meta::LINGER) || meta.has(Meta::SHARED) {
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

/// What an armed client connection (see `Meta::ARMED`) needs before the program waits on it.
#[derive(Debug, PartialEq, Eq)]
pub enum ArmedWait {
    /// Send the SYN now: otherwise nothing will ever arrive to read.
    Kick,
    /// The wait will report the socket writable at once; give the program that chance first.
    LetThrough,
}

pub fn armed_wait(meta: Meta, wants_read: bool, wants_write: bool) -> ArmedWait {
    if wants_read && (!wants_write || meta.has(Meta::ARMED_WAITED)) {
        ArmedWait::Kick
    } else {
        ArmedWait::LetThrough
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Config};

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        parse(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).config
    }

    #[test]
    fn meta_round_trips_kind_flags_and_port() {
        let m = Meta::new(Kind::Listener, Meta::CORK | Meta::SHARED, 8080);
        assert_eq!(m.kind(), Kind::Listener);
        assert_eq!(m.port(), 8080);
        assert!(m.has(Meta::CORK) && m.has(Meta::SHARED) && !m.has(Meta::LINGER));
        assert_eq!(Meta::default().kind(), Kind::Empty);
        assert!(!Meta::new(Kind::Other, 0, 0).is_tcp());
    }

    #[test]
    fn arm_a_drops_socktunes_behaviours_but_keeps_what_the_program_did() {
        let m = Meta::new(
            Kind::Server,
            Meta::CORK | Meta::QUICKACK_OFF | Meta::NODELAY | Meta::APP_NAGLE | Meta::LINGER,
            80,
        );
        let a = m.without_behaviours();
        assert_eq!(
            a,
            Meta::new(Kind::Server, Meta::APP_NAGLE | Meta::LINGER, 80)
        );
        assert!(!a.corks() && !a.reapplies_quickack() && !a.acts_before_io());
        let all = cfg(&[
            ("SOCKTUNE_QUICKACK", "0"),
            ("SOCKTUNE_NODELAY", "1"),
            ("SOCKTUNE_FASTOPEN_CONNECT", "1"),
        ]);
        let plan = connect_plan(&all, 80, Meta::new(Kind::Tcp, 0, 0)).without_behaviours();
        assert!(!plan.quickack_off && !plan.nodelay && !plan.fastopen_connect);
        assert_eq!(plan.meta, Meta::new(Kind::Client, 0, 80));
    }

    #[test]
    fn accepted_sockets_inherit_the_plan_but_not_listener_only_flags() {
        let l = Meta::new(
            Kind::Listener,
            Meta::CORK | Meta::QUICKACK_OFF | Meta::APP_DEFER | Meta::SHARED,
            80,
        );
        let c = Meta::accepted_from(l);
        assert_eq!(c.kind(), Kind::Server);
        assert!(c.corks() && c.reapplies_quickack());
        assert!(!c.has(Meta::APP_DEFER) && !c.has(Meta::SHARED));
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
        let p = listen_plan(&c, 8005, Meta::new(Kind::Tcp, 0, 0));
        assert_eq!(p.defer_accept, Some(5));
        assert_eq!(p.fastopen, Some(256));
        assert!(p.quickack_off);
        assert!(
            p.meta.has(Meta::CORK) && p.meta.has(Meta::NODELAY),
            "cork implies nodelay for the tail"
        );
        let out = listen_plan(&c, 25, Meta::new(Kind::Tcp, 0, 0));
        assert_eq!(out.defer_accept, None);
        assert!(!out.meta.has(Meta::CORK));
        assert_eq!(out.meta.kind(), Kind::Listener);
    }

    #[test]
    fn the_programs_own_listener_options_win() {
        let c = cfg(&[
            ("SOCKTUNE_DEFER_ACCEPT", "5"),
            ("SOCKTUNE_FASTOPEN", "16"),
            ("SOCKTUNE_QUICKACK", "off"),
        ]);
        let prior = Meta::new(
            Kind::Tcp,
            Meta::APP_DEFER | Meta::APP_FASTOPEN | Meta::APP_QUICKACK,
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
        let l = listen_plan(&c, 80, Meta::default());
        assert!(l.meta.has(Meta::CORK) && !l.quickack_off);
        let k = connect_plan(&c, 80, Meta::default());
        assert!(!k.meta.has(Meta::CORK) && k.quickack_off);
    }

    #[test]
    fn connect_plan_respects_program_nagle_and_port_scope() {
        let c = cfg(&[
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_FASTOPEN_CONNECT", "1"),
            ("SOCKTUNE_PORTS", "80"),
        ]);
        let k = connect_plan(&c, 80, Meta::new(Kind::Tcp, Meta::APP_NAGLE, 0));
        assert!(!k.nodelay && !k.meta.corks());
        assert!(k.fastopen_connect);
        assert!(
            !connect_plan(&c, 25, Meta::default()).fastopen_connect,
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
        let m = Meta::new(Kind::Server, Meta::CORK, 80);
        assert_eq!(close_action(m, 0), CloseAction::RideFin);
        assert_eq!(close_action(m, 3), CloseAction::PushFirst);
        assert_eq!(
            close_action(Meta(m.0 | Meta::LINGER), 0),
            CloseAction::PushFirst
        );
        assert_eq!(
            close_action(Meta(m.0 | Meta::SHARED), 0),
            CloseAction::PushFirst
        );
        assert_eq!(shutdown_action(false, false), ShutdownAction::RideFin);
        assert_eq!(shutdown_action(true, false), ShutdownAction::PushFirst);
        assert_eq!(shutdown_action(false, true), ShutdownAction::KeepHeld);
        assert_eq!(shutdown_action(true, true), ShutdownAction::PushFirst);
    }

    #[test]
    fn armed_fast_open_never_waits_forever_for_input() {
        let m = Meta::new(Kind::Client, Meta::ARMED, 25);
        assert_eq!(armed_wait(m, true, false), ArmedWait::Kick);
        assert_eq!(armed_wait(m, true, true), ArmedWait::LetThrough);
        assert_eq!(
            armed_wait(Meta(m.0 | Meta::ARMED_WAITED), true, true),
            ArmedWait::Kick
        );
        assert_eq!(armed_wait(m, false, true), ArmedWait::LetThrough);
    }
}

//! What to do to a socket now: plain Rust, no FFI.
//!
//! Given the settings and an fd's [`FdState`], the functions here decide what the preload library
//! does: the plans at listen() and connect(), and what held data needs at close and shutdown.
//! The hooks ask and carry out the answer.

use crate::config::{Config, Opt, Role, When, FORCE_NODELAY};
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

/// The state bits of the options for which `pick` holds.
pub fn opt_bits(pick: impl Fn(Opt) -> bool) -> u64 {
    Opt::ALL
        .iter()
        .enumerate()
        .filter(|&(_, &o)| pick(o))
        .fold(0, |bits, (i, _)| bits | FdState::opt(i))
}

/// The options socktune sets on a socket of one side (`Role::server` or `Role::client`) at
/// `port`, among those set `at` this moment: the configured ones, but for those the program
/// set itself (`program_set`, state bits) unless they are forced.
pub fn opts_plan(
    cfg: &Config,
    side: fn(Role) -> bool,
    port: u16,
    at: fn(When) -> bool,
    program_set: u64,
) -> u64 {
    if !in_scope(cfg, port) || !side(cfg.opts_role) {
        return 0;
    }
    let forced = opt_bits(|o| cfg.force & o.force_bit() != 0);
    opt_bits(|o| at(o.when()) && o.is_set(&cfg.opts)) & (!program_set | forced)
}

/// What to do to a TCP socket that is about to listen on `local_port`.
#[derive(Debug, PartialEq, Eq)]
pub struct ListenPlan {
    pub defer_accept: Option<u32>,
    pub fastopen: Option<u32>,
    pub backlog: Option<i32>,
    /// Set TCP_QUICKACK=0 after listen() so that children start in delayed-ACK mode.
    pub quickack_off: bool,
    /// The options of the handshake to set on the listener, as state bits.
    pub opts: u64,
    /// The listener's state, which also carries the plan for accepted sockets.
    pub state: FdState,
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), both ends included.
pub type PortRange = (u16, u16);

/// Whether defer-accept goes on a listener at `port`, unless `SOCKTUNE_PORTS` names the port.
/// A listener opened for one peer (a passive FTP data connection) is new each time, so each
/// transfer would pay the first connection's wait before the heal. Such are the listeners on a
/// port from the ephemeral range (the kernel picked it), and those a process tree opens after it
/// found a server that speaks first (`speaks_first_seen`): vsftpd picks its passive ports itself,
/// over 1024-65535.
pub fn defers_on(cfg: &Config, port: u16, ephemeral: PortRange, speaks_first_seen: bool) -> bool {
    cfg.ports.as_ref().is_some_and(|s| s.contains(port))
        || !(speaks_first_seen || (ephemeral.0..=ephemeral.1).contains(&port))
}

pub fn listen_plan(
    cfg: &Config,
    local_port: u16,
    prior: FdState,
    ephemeral: PortRange,
    speaks_first_seen: bool,
) -> ListenPlan {
    let scoped = in_scope(cfg, local_port);
    let kept = prior.flags(
        FdState::APP_NAGLE
            | FdState::APP_NODELAY
            | FdState::APP_QUICKACK
            | FdState::LINGER
            | FdState::APP_DEFER
            | FdState::APP_FASTOPEN,
    );
    // Whatever rule its accepted sockets follow, they may get the options the program did not
    // set on the listener.
    let program_set = prior.flags(FdState::OPTS);
    let kept = kept | (opt_bits(|o| o.when() == When::Connection) & !program_set);
    let opts = opts_plan(
        cfg,
        Role::server,
        local_port,
        |w| w == When::Handshake,
        program_set,
    );
    if !scoped {
        return ListenPlan {
            defer_accept: None,
            fastopen: None,
            backlog: None,
            quickack_off: false,
            opts,
            state: FdState::new(Kind::Listener, kept, local_port),
        };
    }
    let flags = kept | connection_flags(cfg, Role::server);
    ListenPlan {
        defer_accept: cfg.defer_accept.filter(|_| {
            !prior.has(FdState::APP_DEFER)
                && defers_on(cfg, local_port, ephemeral, speaks_first_seen)
        }),
        fastopen: cfg.fastopen.filter(|_| !prior.has(FdState::APP_FASTOPEN)),
        backlog: cfg.backlog,
        quickack_off: flags & FdState::QUICKACK_OFF != 0 && !prior.has(FdState::APP_QUICKACK),
        opts,
        state: FdState::new(Kind::Listener, flags, local_port),
    }
}

/// The connection options an accepted socket gets, as state bits, under `cfg` (its own rule,
/// which may differ from its listener's): those its listener leaves to socktune.
pub fn accept_opts(cfg: &Config, local_port: u16, listener: FdState) -> u64 {
    let program_set = !listener.flags(FdState::OPTS);
    opts_plan(
        cfg,
        Role::server,
        local_port,
        |w| w == When::Connection,
        program_set,
    )
}

/// What to do to a TCP socket before it connects to `remote_port`.
#[derive(Debug, PartialEq, Eq)]
pub struct ConnectPlan {
    pub quickack_off: bool,
    pub nodelay: bool,
    pub fastopen_connect: bool,
    /// The options to set before connect(), as state bits.
    pub opts: u64,
    pub state: FdState,
}

impl ConnectPlan {
    /// The plan for a connection in A/B arm A: socktune does nothing to it.
    pub fn without_behaviours(self) -> ConnectPlan {
        ConnectPlan {
            quickack_off: false,
            nodelay: false,
            fastopen_connect: false,
            opts: 0,
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
            opts: 0,
            state: FdState::new(Kind::Client, kept, remote_port),
        };
    }
    let mut flags = kept | connection_flags(cfg, Role::client);
    if prior.has(FdState::APP_NAGLE) && cfg.force & FORCE_NODELAY == 0 {
        flags &= !FdState::NODELAY;
    }
    let opts = opts_plan(
        cfg,
        Role::client,
        remote_port,
        |_| true,
        prior.flags(FdState::OPTS),
    );
    ConnectPlan {
        quickack_off: flags & FdState::QUICKACK_OFF != 0 && !prior.has(FdState::APP_QUICKACK),
        nodelay: flags & FdState::NODELAY != 0,
        fastopen_connect: cfg.fastopen_connect,
        opts,
        state: FdState::new(Kind::Client, flags, remote_port),
    }
}

/// Whether a write that begins a response (in `state`, from before it) goes as written because
/// this connection's responses were seen to leave in one write each. Its HTTP head then need not
/// be read: the length it declares would only say whether the connection's next write, made
/// before any read, begins a response of its own, and that write's own first bytes say so.
pub fn learned_whole(state: FdState) -> bool {
    !state.has(FdState::IN_RESPONSE)
        && state.has(FdState::ENDED_RESPONSE)
        && state.has(FdState::ONE_WRITE)
}

/// Whether a write of a response on a corking connection goes with MSG_MORE, held until the
/// response's boundary, or as the program wrote it. `state` is the connection's state before the
/// write, `gathered` says the call hands over several buffers at once, and `can_hold` that the
/// call can carry MSG_MORE at all (sendfile, for one, cannot).
///
/// A response's first write goes as written where holding it would only delay it: the program
/// turned TCP_NODELAY on itself and hands over a whole gathered response (as Node.js does), or
/// the connection's last response left in one write. A second write of the same response is
/// held whatever came before: the program splits after all.
///
/// A connection that has not ended a response yet goes by `port_learned`: what the last response
/// that ended on its port (a listener's local port, a client's remote port) showed.
///
/// A later write of a response that holds nothing (`held` false: its first write went as
/// written, or a push sent what it held) goes as written too: what left already cannot join
/// it, and holding it could only merge it with writes that may come late or never. An FTP
/// server's 226 after the file, or a reply the program logs before its next wait, would wait
/// for that wait.
pub fn holds_write(
    state: FdState,
    gathered: bool,
    can_hold: bool,
    port_learned: bool,
    held: bool,
) -> bool {
    let first = !state.has(FdState::IN_RESPONSE);
    if !first && !held {
        return false;
    }
    let learned = learned_whole(state) || (!state.has(FdState::ENDED_RESPONSE) && port_learned);
    let whole = learned || (gathered && state.has(FdState::APP_NODELAY));
    can_hold && !(first && whole)
}

/// The smallest MSS a TCP connection may have (IPv4's default): a response shorter than this
/// fits one segment on any path, so cork needs no MSS to hold it.
pub const MIN_MSS: u32 = 536;

/// Whether a response that has `total` bytes so far is past one segment of `mss` bytes: then
/// its writes go as written, full segments and tail leave as each returns, and holding the tail
/// for the boundary would only delay it.
pub fn past_one_segment(total: u32, mss: u32) -> bool {
    total >= MIN_MSS && total > mss
}

/// How long received data must wait for a reply before the kernel's delayed-ACK timer fires and
/// takes the connection out of delayed-ACK mode (TCP_DELACK_MIN is 40 ms), less a margin for the
/// coarse clock the shim reads.
const LEAVES_DELAYED_ACK_MS: u32 = 30;

/// Whether quickack-off must be set again after a read that returned data. The kernel leaves
/// delayed-ACK mode by itself when its delayed-ACK timer fires, that is when data it received
/// waited 40 ms for a reply (or on loss and reordering, which a read cannot see); that data came
/// after the mode was last known on (set at accept, or checked at the previous read), so a read
/// less than that after it finds the mode still on, and setting it again would change no packet.
/// `since_known_ms`: `None` if it never was known on (a client's first read: the handshake's end
/// leaves the mode).
pub fn reapplies_quickack_after(since_known_ms: Option<u32>) -> bool {
    since_known_ms.is_none_or(|ms| ms >= LEAVES_DELAYED_ACK_MS)
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

/// What a task made by `clone`, `vfork` or a fork system call is to the shim, which no fork
/// handler told.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum NewTask {
    /// Its own copy of our memory: a fork child.
    Process,
    /// A thread of ours.
    Thread,
    /// Runs in our memory, on the calling thread's thread-locals, while that thread waits for it
    /// to exec or exit.
    Vfork,
    /// Runs in our memory beside us, or on thread-locals of its own: only getpid tells it from us.
    SharesMemory,
}

/// clone flags (linux/sched.h).
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_SETTLS: u64 = 0x80000;

pub fn new_task(clone_flags: u64) -> NewTask {
    if clone_flags & CLONE_VM == 0 {
        NewTask::Process
    } else if clone_flags & CLONE_THREAD != 0 {
        NewTask::Thread
    } else if clone_flags & (CLONE_VFORK | CLONE_SETTLS) == CLONE_VFORK {
        NewTask::Vfork
    } else {
        NewTask::SharesMemory
    }
}

/// Whether a thread's held responses need the flusher to bound their wait. A thread seen waiting
/// for events (poll, select, epoll) is an event loop: it comes back to that wait, which ends what
/// it held, by itself, so its holds wake no thread (nginx's workers then never start one). Should
/// one of its holds be found older than the flush deadline when its boundary comes (the loop
/// blocked somewhere else; the kernel's own ~200 ms probe sent the data meanwhile), the flusher
/// bounds its holds from then on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ThreadBoundary {
    #[default]
    Unknown,
    EventLoop,
    Late,
}

impl ThreadBoundary {
    /// The thread waits for events.
    pub fn after_wait(self) -> ThreadBoundary {
        match self {
            ThreadBoundary::Unknown => ThreadBoundary::EventLoop,
            other => other,
        }
    }

    /// The thread's own boundary ended a hold of `held_ms`.
    pub fn after_release(self, held_ms: u32, flush_ms: u32) -> ThreadBoundary {
        match self {
            ThreadBoundary::EventLoop if held_ms > flush_ms => ThreadBoundary::Late,
            other => other,
        }
    }

    pub fn needs_flusher(self) -> bool {
        self != ThreadBoundary::EventLoop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_loop_needs_no_flusher_until_it_comes_back_late() {
        use ThreadBoundary as T;
        assert!(T::default().needs_flusher(), "a thread not seen waiting");
        assert!(T::Unknown.after_release(500, 2).needs_flusher());
        let event_loop = T::Unknown.after_wait();
        assert!(!event_loop.needs_flusher());
        assert!(!event_loop.after_release(2, 2).needs_flusher(), "in time");
        let late = event_loop.after_release(3, 2);
        assert!(late.needs_flusher(), "a hold past the deadline");
        assert!(late.after_wait().needs_flusher(), "for good");
    }

    /// Linux's default `net.ipv4.ip_local_port_range`.
    const EPHEMERAL: PortRange = (32768, 60999);
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
    fn options_follow_scope_role_and_the_programs_own_choice_unless_forced() {
        let opt = |o: Opt| FdState::opt(Opt::ALL.iter().position(|&a| a == o).unwrap());
        let c = cfg(&[
            ("SOCKTUNE_KEEPALIVE", "30"),
            ("SOCKTUNE_SNDBUF", "65536"),
            ("SOCKTUNE_SYNCNT", "2"),
            ("SOCKTUNE_PORTS", "80"),
        ]);
        let fresh = FdState::new(Kind::Tcp, 0, 0);
        let l = listen_plan(&c, 80, fresh, EPHEMERAL, false);
        assert_eq!(
            l.opts,
            opt(Opt::Sndbuf),
            "a listener takes the handshake's options"
        );
        assert_eq!(accept_opts(&c, 80, l.state), opt(Opt::Keepalive));
        assert_eq!(accept_opts(&c, 81, l.state), 0, "out of SOCKTUNE_PORTS");
        let all = opt(Opt::Keepalive) | opt(Opt::Sndbuf) | opt(Opt::Syncnt);
        assert_eq!(connect_plan(&c, 80, fresh).opts, all);
        assert_eq!(connect_plan(&c, 443, fresh).opts, 0);
        // The program set keepalive itself before listen() and connect().
        let own = FdState::new(Kind::Tcp, opt(Opt::Keepalive), 0);
        assert_eq!(
            accept_opts(&c, 80, listen_plan(&c, 80, own, EPHEMERAL, false).state),
            0
        );
        assert_eq!(connect_plan(&c, 80, own).opts, all & !opt(Opt::Keepalive));
        let forced = Config {
            force: Opt::Keepalive.force_bit(),
            ..c.clone()
        };
        assert_eq!(connect_plan(&forced, 80, own).opts, all);
        assert_eq!(
            accept_opts(
                &forced,
                80,
                listen_plan(&forced, 80, own, EPHEMERAL, false).state
            ),
            opt(Opt::Keepalive)
        );
        let server_only = Config {
            opts_role: Role::Server,
            ..c
        };
        assert_eq!(connect_plan(&server_only, 80, fresh).opts, 0);
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
        let p = listen_plan(&c, 8005, FdState::new(Kind::Tcp, 0, 0), EPHEMERAL, false);
        assert_eq!(p.defer_accept, Some(5));
        assert_eq!(p.fastopen, Some(256));
        assert!(p.quickack_off);
        assert!(
            p.state.has(FdState::CORK) && p.state.has(FdState::NODELAY),
            "cork implies nodelay for the tail"
        );
        let out = listen_plan(&c, 25, FdState::new(Kind::Tcp, 0, 0), EPHEMERAL, false);
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
        let p = listen_plan(&c, 80, prior, EPHEMERAL, false);
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
        let l = listen_plan(&c, 80, FdState::default(), EPHEMERAL, false);
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
    fn a_response_is_held_unless_it_leaves_in_one_write() {
        let fresh = FdState::new(Kind::Server, FdState::CORK, 80);
        assert!(holds_write(fresh, false, true, false, false));
        assert!(holds_write(fresh, true, true, false, false));
        let sendfile = holds_write(fresh, false, false, false, false);
        assert!(!sendfile, "sendfile cannot carry MSG_MORE");
        let nodelay = fresh.with(FdState::APP_NODELAY);
        assert!(holds_write(nodelay, false, true, false, false));
        let gathered = holds_write(nodelay, true, true, false, false);
        assert!(!gathered, "a nodelay program's gathered response");
        let learned = fresh.wrote_in_response().response_ended();
        let whole = holds_write(learned, false, true, false, false);
        assert!(!whole, "the last response left in one write");
        let in_response = fresh.wrote_in_response();
        let second = holds_write(in_response, false, true, false, true);
        assert!(second, "a second write joins what the response holds");
        let after_sent = holds_write(in_response, false, true, false, false);
        assert!(
            !after_sent,
            "its first write left as written: the rest goes too"
        );
        let carried = holds_write(fresh, false, true, true, false);
        assert!(
            !carried,
            "a new connection goes by its port's last response"
        );
        let split = fresh
            .wrote_in_response()
            .wrote_in_response()
            .response_ended();
        let own = holds_write(split, false, true, true, false);
        assert!(own, "its own history wins over the port's");
    }

    #[test]
    fn a_response_past_one_segment_is_not_held() {
        assert!(!past_one_segment(100, 0), "short: no MSS needed");
        assert!(!past_one_segment(1448, 1448));
        assert!(past_one_segment(1449, 1448));
        assert!(!past_one_segment(60_000, 65483), "fits loopback's MSS");
        assert!(past_one_segment(600, 0), "an unknown MSS counts as none");
    }

    #[test]
    fn quickack_off_is_set_again_only_where_the_kernel_may_have_left_it() {
        assert!(reapplies_quickack_after(None), "a client's first read");
        assert!(!reapplies_quickack_after(Some(0)), "back-to-back requests");
        assert!(!reapplies_quickack_after(Some(29)));
        assert!(reapplies_quickack_after(Some(30)));
        assert!(reapplies_quickack_after(Some(5000)), "an idle connection");
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

    #[test]
    fn defer_accept_stays_off_listeners_opened_for_one_peer() {
        let fresh = FdState::new(Kind::Tcp, 0, 0);
        // (SOCKTUNE_PORTS, port, the tree found a server that speaks first, defer-accept)
        for (ports, port, seen, want) in [
            (None, 21, false, Some(5)),
            (None, 40001, false, None), // the kernel picked it
            (Some("40000-40010"), 40001, false, Some(5)),
            (None, 5001, true, None), // vsftpd's own pick, after its greeting
            (Some("5001"), 5001, true, Some(5)),
        ] {
            let mut vars = vec![("SOCKTUNE_DEFER_ACCEPT", "5")];
            vars.extend(ports.map(|p| ("SOCKTUNE_PORTS", p)));
            let plan = listen_plan(&cfg(&vars), port, fresh, EPHEMERAL, seen);
            assert_eq!(plan.defer_accept, want, "{ports:?} {port} {seen}");
        }
    }

    #[test]
    fn new_tasks_by_their_clone_flags() {
        const SIGCHLD: u64 = 17;
        // vsftpd's session: a new namespace, its own memory.
        assert_eq!(
            new_task(0x2000_0000 | 0x0800_0000 | SIGCHLD),
            NewTask::Process
        );
        assert_eq!(new_task(SIGCHLD | CLONE_VFORK), NewTask::Process);
        // posix_spawn's and vfork's.
        assert_eq!(new_task(CLONE_VM | CLONE_VFORK | SIGCHLD), NewTask::Vfork);
        assert_eq!(
            new_task(CLONE_VM | CLONE_VFORK | CLONE_SETTLS),
            NewTask::SharesMemory
        );
        assert_eq!(new_task(CLONE_VM | SIGCHLD), NewTask::SharesMemory);
        // pthread_create's.
        assert_eq!(
            new_task(CLONE_VM | 0x700 | CLONE_THREAD | CLONE_SETTLS),
            NewTask::Thread
        );
    }
}

//! One fd's state: a single 64-bit word, so the preload library keeps it in one atomic and a
//! hook reads it with one load. Plain Rust, no FFI.
//!
//! The word holds the fd's [`Kind`], a port (the local port of a listener, the remote port of a
//! client), and flags: the behaviours planned for it, what the program took over itself, the
//! armed states of client connections, its recording state for `SOCKTUNE_STATS`, and what cork per
//! response learned of how the program writes. Flags on a listener describe the plan for the
//! sockets it accepts. Bits 24 to 34 are the per-socket options, 35 to 39 the armed and heal
//! marks, 40 to 44 what cork learned; 45 to 47 are free. The rule that chose a socket's settings
//! and its switchback window are kept beside the state, in its fd-table entry.

/// The A/B arm of a connection under `SOCKTUNE_AB`; `None` when there is no split. Arm A sorts
/// first: it is the baseline of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arm {
    A,
    B,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
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

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Empty,
        Kind::Other,
        Kind::Tcp,
        Kind::Listener,
        Kind::Server,
        Kind::Client,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FdState(pub u64);

const fn bit(n: u32) -> u64 {
    1 << n
}

impl FdState {
    const KIND_MASK: u64 = 0b111;
    const PORT_SHIFT: u32 = 48;
    /// Every bit that is neither kind nor port.
    const FLAG_MASK: u64 = !Self::KIND_MASK & ((1 << Self::PORT_SHIFT) - 1);

    // What socktune plans for the connection.
    /// Cork per response.
    pub const CORK: u64 = bit(3);
    /// Re-apply TCP_QUICKACK=0 after each read that returns data.
    pub const QUICKACK_OFF: u64 = bit(4);
    /// We set TCP_NODELAY on it (or will, for a listener's children).
    pub const NODELAY: u64 = bit(5);

    // What the program did itself; its choices win.
    /// The program set TCP_CORK, or TCP_NODELAY off: hands off Nagle and cork.
    pub const APP_NAGLE: u64 = bit(6);
    /// The program set TCP_QUICKACK itself.
    pub const APP_QUICKACK: u64 = bit(7);
    /// The program turned TCP_NODELAY on (on the socket, or on its listener). It agrees with
    /// cork per response, which sets nodelay too, so unlike `APP_NAGLE` it takes nothing over.
    pub const APP_NODELAY: u64 = bit(8);
    /// The program set TCP_DEFER_ACCEPT itself on this listener.
    pub const APP_DEFER: u64 = bit(9);
    /// The program set TCP_FASTOPEN itself on this listener.
    pub const APP_FASTOPEN: u64 = bit(10);
    /// The program enabled SO_LINGER: close may reset, so push held data first.
    pub const LINGER: u64 = bit(11);

    // What the fd is shared with.
    /// Another fd or process may hold the same socket (dup, fork).
    pub const SHARED: u64 = bit(12);
    /// The shim's own log file (an `Other` fd): closing it means reopening before the next line.
    pub const SHIM_LOG: u64 = bit(13);

    // Armed client connections.
    /// A client connection waits for the program's first write to complete it: the Fast Open
    /// SYN (connect() with a cached cookie sends nothing), or, under quickack-off, the
    /// handshake's last ACK. A read, or a wait for input only, before that write must kick it.
    pub const ARMED: u64 = bit(14);
    /// An armed fd already went through one wait that could report it writable.
    pub const ARMED_WAITED: u64 = bit(15);
    /// An armed fd was registered with epoll for input only.
    pub const EPOLL_READ_ONLY: u64 = bit(16);

    // Recording (`SOCKTUNE_STATS`) and the A/B arm.
    /// The connection is recorded when it ends.
    pub const RECORDED: u64 = bit(17);
    pub const ARM_A: u64 = bit(18);
    pub const ARM_B: u64 = bit(19);
    /// The last call on the connection was a write: the next write continues the same response.
    pub const WROTE: u64 = bit(20);
    /// Listener options that took (on a listener: so on the sockets it accepts), and client
    /// Fast Open: applied behaviours that the plan bits above do not show.
    pub const APPLIED_FASTOPEN_CONNECT: u64 = bit(21);
    pub const APPLIED_DEFER_ACCEPT: u64 = bit(22);
    pub const APPLIED_FASTOPEN: u64 = bit(23);
    /// An armed Fast Open connection whose connect() the program was told is in progress
    /// (EINPROGRESS, as a plain non-blocking connect answers), and has not yet seen it writable.
    pub const ARMED_IN_PROGRESS: u64 = bit(35);
    /// Quickack-off: the program read data and has not written since, so an ACK may be waiting
    /// for a response to ride on. A read or wait for more input before writing sends it.
    pub const ACK_PENDING: u64 = bit(36);
    /// Accepted from a listener we set defer-accept on, and not read yet: a write first means
    /// the server speaks first, and defer-accept only delays it.
    pub const DEFER_WATCH: u64 = bit(37);
    /// An armed fd was registered with epoll: an epoll wait may be waiting on it.
    pub const EPOLL_REGISTERED: u64 = bit(38);
    /// This connection's first write, before any read, turned defer-accept off on its listener
    /// (see `DEFER_WATCH`): recorded, so the one connection that paid for it is known.
    pub const DEFER_HEALED: u64 = bit(39);
    /// What a write ends: something that waits for the program's first write or next response.
    pub const WAITS_FOR_WRITE: u64 = Self::ARMED | Self::ACK_PENDING | Self::DEFER_WATCH;

    /// Per-socket options, bit `OPT_SHIFT + i` for `config::Opt::ALL[i]`. Before listen() or
    /// connect() (kind `Tcp`) the program set that option itself. On a listener: socktune set
    /// it on the listener (the options of the handshake, which accepted sockets inherit), or
    /// may set it on the sockets it accepts (the program did not set it on the listener). On a
    /// connection: socktune set it.
    pub const OPT_SHIFT: u32 = 24;
    pub const OPTS: u64 = 0x7ff << Self::OPT_SHIFT;

    /// The bit of option `i` (its place in `config::Opt::ALL`).
    pub const fn opt(i: usize) -> u64 {
        bit(Self::OPT_SHIFT + i as u32)
    }

    // How the program writes its responses, learned by cork per response.
    /// The response is held by TCP_CORK rather than MSG_MORE: a Fast Open connection's first
    /// one, written before the handshake's ACK came, which would push a partial segment that
    /// MSG_MORE held.
    pub const CORKED: u64 = bit(40);
    /// A response of this connection has ended: what it learned is its own.
    pub const ENDED_RESPONSE: u64 = bit(41);
    /// A write since the connection's last response boundary.
    pub const IN_RESPONSE: u64 = bit(42);
    /// More than one write since the last boundary: this response is split.
    pub const SPLIT: u64 = bit(43);
    /// The last response left in one write: the next one goes as the program writes it.
    pub const ONE_WRITE: u64 = bit(44);
    /// The current response is a server's that closes its connection after it (HTTP/1.0, or
    /// `Connection: close`) and declared its length.
    pub const CLOSING: u64 = bit(45);
    /// The shim sent the FIN with that response's last write: the program's own shutdown and
    /// close come after it.
    pub const FIN_SENT: u64 = bit(46);

    /// Flags an accepted socket takes from its listener.
    pub const INHERITED: u64 = Self::CORK
        | Self::QUICKACK_OFF
        | Self::NODELAY
        | Self::APP_NAGLE
        | Self::LINGER
        | Self::APPLIED_DEFER_ACCEPT
        | Self::APPLIED_FASTOPEN
        | Self::APP_NODELAY;
    /// The behaviours arm A goes without.
    const BEHAVIOURS: u64 = Self::CORK | Self::QUICKACK_OFF | Self::NODELAY;

    pub fn new(kind: Kind, flags: u64, port: u16) -> FdState {
        FdState(kind as u64 | (flags & Self::FLAG_MASK) | (u64::from(port) << Self::PORT_SHIFT))
    }
    pub fn kind(self) -> Kind {
        Kind::ALL
            .get((self.0 & Self::KIND_MASK) as usize)
            .copied()
            .unwrap_or(Kind::Empty)
    }
    pub fn port(self) -> u16 {
        (self.0 >> Self::PORT_SHIFT) as u16
    }
    pub fn has(self, flag: u64) -> bool {
        self.0 & flag != 0
    }
    /// The same state with `flags` set.
    pub fn with(self, flags: u64) -> FdState {
        FdState(self.0 | (flags & Self::FLAG_MASK))
    }
    /// The same state with `flags` cleared.
    pub fn without(self, flags: u64) -> FdState {
        FdState(self.0 & !(flags & Self::FLAG_MASK))
    }
    /// Only the flags among `flags` that are set.
    pub fn flags(self, flags: u64) -> u64 {
        self.0 & flags & Self::FLAG_MASK
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
        self.corks() || self.has(Self::WAITS_FOR_WRITE)
    }
    pub fn reapplies_quickack(self) -> bool {
        self.is_connection() && self.has(Self::QUICKACK_OFF) && !self.has(Self::APP_QUICKACK)
    }
    /// The same socket with none of socktune's connection behaviours (A/B arm A).
    pub fn without_behaviours(self) -> FdState {
        self.without(Self::BEHAVIOURS)
    }
    /// The state an accepted socket starts in.
    pub fn accepted_from(listener: FdState) -> FdState {
        let watch = if listener.has(Self::APPLIED_DEFER_ACCEPT) {
            Self::DEFER_WATCH
        } else {
            0
        };
        FdState::new(
            Kind::Server,
            listener.flags(Self::INHERITED) | watch,
            listener.port(),
        )
    }
    pub fn arm(self) -> Option<Arm> {
        if self.has(Self::ARM_B) {
            Some(Arm::B)
        } else if self.has(Self::ARM_A) {
            Some(Arm::A)
        } else {
            None
        }
    }
    pub fn with_arm(self, arm: Option<Arm>) -> FdState {
        let bit = match arm {
            Some(Arm::A) => Self::ARM_A,
            Some(Arm::B) => Self::ARM_B,
            None => 0,
        };
        self.without(Self::ARM_A | Self::ARM_B).with(bit)
    }
    /// A write. Returns the new state and whether it starts a response (the first write after a
    /// read).
    pub fn after_write(self) -> (FdState, bool) {
        (self.with(Self::WROTE), !self.has(Self::WROTE))
    }
    /// A read: the response written before it is complete.
    pub fn after_read(self) -> FdState {
        self.without(Self::WROTE)
    }
    /// One more write of the current response.
    pub fn wrote_in_response(self) -> FdState {
        if self.has(Self::IN_RESPONSE) {
            self.with(Self::SPLIT)
        } else {
            self.with(Self::IN_RESPONSE)
        }
    }
    /// The write that made the response split began a message of its own: the response before
    /// it was whole, and the program pipelines.
    pub fn began_next_message(self) -> FdState {
        self.without(Self::SPLIT)
    }
    /// A response boundary: learns from the response that ended whether the program writes its
    /// responses in one write.
    pub fn response_ended(self) -> FdState {
        let learned = if self.has(Self::SPLIT) {
            self.without(Self::ONE_WRITE)
        } else if self.has(Self::IN_RESPONSE) {
            self.with(Self::ONE_WRITE)
        } else {
            self
        };
        let ended = if self.has(Self::IN_RESPONSE) {
            learned.with(Self::ENDED_RESPONSE)
        } else {
            learned
        };
        ended.without(Self::IN_RESPONSE | Self::SPLIT | Self::CLOSING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_kind_flags_and_port() {
        let m = FdState::new(Kind::Listener, FdState::CORK | FdState::SHARED, 8080);
        assert_eq!(m.kind(), Kind::Listener);
        assert_eq!(m.port(), 8080);
        assert!(m.has(FdState::CORK) && m.has(FdState::SHARED) && !m.has(FdState::LINGER));
        assert_eq!(FdState::default().kind(), Kind::Empty);
        assert!(!FdState::new(Kind::Other, 0, 0).is_tcp());
        for kind in Kind::ALL {
            let s = FdState::new(kind, FdState::FLAG_MASK, u16::MAX);
            assert_eq!((s.kind(), s.port()), (kind, u16::MAX));
        }
    }

    #[test]
    fn every_flag_has_its_own_bit() {
        let flags = [
            FdState::CORK,
            FdState::QUICKACK_OFF,
            FdState::NODELAY,
            FdState::APP_NAGLE,
            FdState::APP_QUICKACK,
            FdState::APP_NODELAY,
            FdState::APP_DEFER,
            FdState::APP_FASTOPEN,
            FdState::LINGER,
            FdState::SHARED,
            FdState::SHIM_LOG,
            FdState::ARMED,
            FdState::ARMED_WAITED,
            FdState::EPOLL_READ_ONLY,
            FdState::RECORDED,
            FdState::ARM_A,
            FdState::ARM_B,
            FdState::WROTE,
            FdState::APPLIED_FASTOPEN_CONNECT,
            FdState::APPLIED_DEFER_ACCEPT,
            FdState::APPLIED_FASTOPEN,
            FdState::ARMED_IN_PROGRESS,
            FdState::ACK_PENDING,
            FdState::DEFER_WATCH,
            FdState::EPOLL_REGISTERED,
            FdState::DEFER_HEALED,
            FdState::OPTS,
            FdState::CORKED,
            FdState::ENDED_RESPONSE,
            FdState::IN_RESPONSE,
            FdState::SPLIT,
            FdState::ONE_WRITE,
        ];
        let mut seen = 0;
        for f in flags {
            assert_eq!(seen & f, 0, "flag {f:#x} shares a bit");
            assert_eq!(
                f & !FdState::FLAG_MASK,
                0,
                "flag {f:#x} spills into kind or port"
            );
            seen |= f;
        }
        let s = FdState::new(Kind::Client, FdState::opt(0) | FdState::opt(10), 443);
        assert_eq!((s.kind(), s.port()), (Kind::Client, 443));
        assert_eq!(s.flags(FdState::OPTS), FdState::opt(0) | FdState::opt(10));
    }

    #[test]
    fn flags_never_spill_into_kind_or_port() {
        let s = FdState::new(Kind::Client, u64::MAX, 443);
        assert_eq!((s.kind(), s.port()), (Kind::Client, 443));
        assert_eq!(s.with(u64::MAX), s);
        let bare = s.without(u64::MAX);
        assert_eq!(
            (bare.kind(), bare.port(), bare.flags(u64::MAX)),
            (Kind::Client, 443, 0)
        );
    }

    #[test]
    fn responses_start_with_the_first_write_after_a_read() {
        let s = FdState::new(Kind::Server, FdState::RECORDED, 80);
        let (s, first) = s.after_write();
        assert!(first);
        let (s, second) = s.after_write(); // header and body: one response
        assert!(!second);
        let (_, next) = s.after_read().after_read().after_write();
        assert!(next);
        assert!(s.has(FdState::RECORDED));
        assert_eq!(s.with_arm(Some(Arm::B)).arm(), Some(Arm::B));
        assert_eq!(
            s.with_arm(Some(Arm::B)).with_arm(Some(Arm::A)).arm(),
            Some(Arm::A)
        );
        assert_eq!(s.with_arm(None).arm(), None);
    }

    #[test]
    fn a_response_in_one_write_is_learned_and_a_split_one_unlearns_it() {
        let s = FdState::new(Kind::Server, FdState::CORK, 80);
        assert_eq!(s.response_ended(), s, "no write, nothing learned");
        let one = s.wrote_in_response().response_ended();
        assert!(one.has(FdState::ONE_WRITE) && !one.has(FdState::IN_RESPONSE));
        assert!(one.has(FdState::ENDED_RESPONSE));
        let split = one.wrote_in_response().wrote_in_response();
        assert!(split.has(FdState::SPLIT));
        let ended = split.response_ended();
        assert!(!ended.has(FdState::ONE_WRITE | FdState::SPLIT | FdState::IN_RESPONSE));
    }

    #[test]
    fn an_accepted_socket_takes_its_listeners_plan_and_applied_options() {
        let listener = FdState::new(
            Kind::Listener,
            FdState::CORK
                | FdState::APPLIED_DEFER_ACCEPT
                | FdState::APP_NODELAY
                | FdState::APP_DEFER
                | FdState::SHARED,
            8080,
        );
        let child = FdState::accepted_from(listener);
        assert_eq!(
            child,
            FdState::new(
                Kind::Server,
                FdState::CORK
                    | FdState::APPLIED_DEFER_ACCEPT
                    | FdState::APP_NODELAY
                    | FdState::DEFER_WATCH,
                8080
            )
        );
    }
}

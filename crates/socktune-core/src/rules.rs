//! The rules of a `SOCKTUNE_CONFIG` file: which settings a socket follows, by program, role,
//! port and peer. Plain Rust; the preload library picks a rule once per socket and keeps its
//! number in the fd state.

use crate::config::{Config, PortSet, Role};
use std::net::IpAddr;

/// An address prefix, `10.0.0.0/8` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    pub fn contains(self, ip: IpAddr) -> bool {
        // An IPv4 peer of an IPv6 socket arrives mapped (::ffff:a.b.c.d).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((want, width), (got, got_width)) = (bits(self.addr), bits(ip));
        if width != got_width {
            return false;
        }
        let shift = width - u32::from(self.len);
        shift >= 128 || want >> shift == got >> shift
    }
}

/// One `[[rule]]`: what it matches, and the settings a socket it matches follows (the top level
/// with the rule's own keys over it).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Its line in the file.
    pub line: usize,
    pub program: Option<String>,
    pub role: Option<Role>,
    pub ports: Option<PortSet>,
    pub peers: Option<Vec<Prefix>>,
    /// A pattern was bad: the rule matches nothing rather than more than it says.
    pub broken: bool,
    pub config: Config,
}

impl Rule {
    fn matches(&self, server: bool, port: u16, peer: Option<IpAddr>) -> bool {
        !self.broken
            && self
                .role
                .is_none_or(|r| if server { r.server() } else { r.client() })
            && self.ports.as_ref().is_none_or(|p| p.contains(port))
            && self
                .peers
                .as_ref()
                .is_none_or(|ps| peer.is_some_and(|ip| ps.iter().any(|p| p.contains(ip))))
    }
}

/// The rules that apply to this program, in the file's order (at most 255: the fd state keeps
/// a rule's number in a byte).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The number of the first rule that matches (its index plus one), or 0 for the top level.
    /// A listener has no peer, so rules by peer match its accepted sockets, not it.
    pub fn pick(&self, server: bool, port: u16, peer: Option<IpAddr>) -> u8 {
        self.0
            .iter()
            .position(|r| r.matches(server, port, peer))
            .map_or(0, |i| (i + 1) as u8)
    }

    pub fn config(&self, number: u8) -> Option<&Config> {
        self.0
            .get(usize::from(number).checked_sub(1)?)
            .map(|r| &r.config)
    }

    pub fn by_peer(&self) -> bool {
        self.0.iter().any(|r| r.peers.is_some())
    }
}

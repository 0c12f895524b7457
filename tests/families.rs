//! Non-TCP traffic must pass through unchanged with every behaviour on: a UNIX stream exchange
//! (server speaks first, replies in two writes), UDP echoes over IPv4 and IPv6, and socketpair()
//! stream and datagram exchanges. (IPv4 and IPv6 TCP get the behaviours: keepalive.rs.)
mod common;
use common::*;

#[test]
fn unix_and_udp_unchanged_under_all_behaviours() {
    needs_root!(NETNS);
    let echo = |name| Scenario::new(name, "python3 {progs}/family_echo.py").tfo();
    let runs = run_all(&[
        echo("plain"),
        echo("all behaviours").client_env(ALL_BEHAVIOURS),
    ]);
    for r in &runs {
        for family in ["unix_stream", "udp4", "udp6", "socketpair"] {
            check(
                r.get(family) == "ok",
                r,
                &format!("{family} exchange failed"),
            );
        }
        check_quiet(r);
    }
}

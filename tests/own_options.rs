//! The program's own options win, with every behaviour on at both ends: tests/progs/own_options.py
//! clears TCP_NODELAY (which socktune sets on corked connections) and corks each message itself,
//! writes it in three sends, then passes every point where socktune releases its own cork (poll,
//! a 30 ms sleep, a read) before uncorking. Both sides must read back exactly what they set, and
//! each message must leave when, and only when, the program uncorks: complete at the peer after
//! the uncork, within 150 ms of it (the kernel's cork timer would take 200 ms), in one data
//! segment. The same run without socktune shows these are the kernel's own answers.
mod common;
use common::*;

const ROUNDS: usize = 3;

fn own(name: &str) -> Scenario {
    let side =
        |role| format!("python3 {{progs}}/own_options.py {role} 127.0.0.1 {{port}} {ROUNDS}");
    Scenario::new(name, &side("client")).server(&side("server"))
}

fn times(r: &Results, key: &str) -> Vec<f64> {
    r.get(key).split(',').map(|t| t.parse().unwrap()).collect()
}

#[test]
fn the_programs_own_cork_and_nodelay_win() {
    needs_root!(NETNS);
    let runs = run_all(&[
        own("without socktune"),
        own("all behaviours")
            .server_env(ALL_BEHAVIOURS)
            .client_env(ALL_BEHAVIOURS),
    ]);
    for r in &runs {
        check_quiet(r);
        // (who uncorked, who received)
        for (speaker, hearer) in [("srv_", ""), ("", "srv_")] {
            let side = if speaker.is_empty() {
                "client"
            } else {
                "server"
            };
            check(
                r.get(&format!("{speaker}nodelay")) == "0",
                r,
                &format!("{side}: TCP_NODELAY cleared by the program must read back 0"),
            );
            check(
                r.num(&format!("{speaker}corked")) == ROUNDS as f64,
                r,
                &format!("{side}: the program's TCP_CORK must hold through poll, sleep and read"),
            );
            let sent = times(r, &format!("{speaker}uncork_at"));
            let got = times(r, &format!("{hearer}arrived_at"));
            let delays: Vec<f64> = got
                .iter()
                .zip(&sent)
                .map(|(a, u)| (a - u) * 1000.0)
                .collect();
            eprintln!(
                "{:<17} {side} message delays after uncork: {delays:.3?} ms",
                r.name
            );
            check(
                delays.len() == ROUNDS && delays.iter().all(|&d| (0.0..150.0).contains(&d)),
                r,
                &format!("{side}: each message must arrive after its uncork, within 150 ms"),
            );
            // 0 where the data came before the count began: defer-accept hands the server its
            // connection only once the first request is in.
            check(
                r.get(&format!("{hearer}segs"))
                    .split(',')
                    .all(|n| n == "0" || n == "1"),
                r,
                &format!("{side}: each corked message must arrive as one data segment"),
            );
        }
    }
}

/// A program's own MSG_MORE is its own cork: tests/progs/more_server.py sends each header with
/// MSG_MORE, waits 5 ms for its "backend" (select on a pipe), then sends the body. Without
/// socktune the kernel sends header and body together; socktune, which would uncork the header
/// alone at that select, leaves such a connection's responses to the program.
#[test]
fn the_programs_own_msg_more_wins() {
    needs_root!(NETNS);
    let proxy = |name: &str| {
        keepalive(
            name,
            "python3 {progs}/more_server.py 127.0.0.1 {port}",
            "127.0.0.1",
            40,
        )
    };
    let runs = run_all(&[
        proxy("without socktune"),
        proxy("cork").server_env(&["SOCKTUNE_CORK=1"]),
    ]);
    for r in &runs {
        check(
            r.num("packets_per_request") <= 2.2,
            r,
            "the header waits for its body, as the program asked",
        );
    }
}

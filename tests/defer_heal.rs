//! Defer-accept heals itself: on a listener whose server speaks first (a greeting, as SMTP, FTP
//! or POP3 send), TCP_DEFER_ACCEPT holds every connection for the whole defer period, as no
//! client data comes. The first connection written before it was read turns it off on the
//! listener: only that one pays.
mod common;
use common::*;

#[test]
fn only_the_first_connection_to_a_greeting_server_pays_for_defer_accept() {
    first_connection_pays("");
}

/// A forking server's children close their copy of the listener before they greet (vsftpd):
/// the child that finds the server speaks first tells the parent, which holds the listener and
/// heals it when it next accepts. The parent is already waiting in accept() for the second
/// connection by then, so that one pays too.
#[test]
fn a_forking_greeting_server_heals_through_its_parent() {
    first_connection_pays("--fork");
}

fn first_connection_pays(server_args: &str) {
    needs_root!(NETNS);
    let later = if server_args.is_empty() {
        "rest_max_ms"
    } else {
        "after_two_max_ms"
    };
    let stats = scratch(&format!("defer_heal{server_args}")).join("stats.jsonl");
    let record = format!("SOCKTUNE_STATS={}", stats.display());
    let tuned = greetings(
        &format!("python3 {{progs}}/greet_server.py {server_args} 127.0.0.1 {{port}}"),
        "4",
        later,
        &[&record],
    );
    check(
        tuned.get("srv_defer_8080") != "0",
        &tuned,
        "defer-accept was on the listener",
    );
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let conns = text
        .lines()
        .filter(|l| l.contains("\"type\":\"conn\""))
        .count();
    let healed = text.matches("\"defer-accept-off\"").count();
    check(
        conns == 4 && healed == 1,
        &tuned,
        &format!("4 records, one marked defer-accept-off expected:\n{text}"),
    );
}

/// Debian's vsftpd, which forks each session by the clone system call, not fork(): no fork
/// handler runs, and the shim must find the child a forked child by itself. There the session
/// writes its greeting first, and the listener its parent holds is healed at the next accept.
/// A shim that took the child for a vfork child left the copies of the connection it makes
/// (dup2 onto fds 0 and 1) untracked, so every greeting waited the whole defer period.
#[test]
fn vsftpd_heals_through_its_parent() {
    needs_root!(NETNS);
    greetings(
        "sh {progs}/vsftpd_run.sh {port} {www}",
        "5 220",
        "after_two_max_ms",
        &[],
    );
}

/// Runs greet_times.py (`client_args`: the count, and a greeting prefix for a real server)
/// against `server` untuned and under `SOCKTUNE_DEFER_ACCEPT=1` (and `settings`), and checks what
/// every greeting server shows: no wait untuned; under defer-accept the first greeting waits out
/// its 1 s, those from `later` on come at once, and the heal is logged once. Returns the tuned
/// run.
fn greetings(server: &str, client_args: &str, later: &str, settings: &[&str]) -> Results {
    let greet = |name: &str| {
        Scenario::new(
            name,
            &format!("python3 {{progs}}/greet_times.py 127.0.0.1 {{port}} {client_args}"),
        )
        .server(server)
    };
    let mut env = vec!["SOCKTUNE_DEFER_ACCEPT=1", "SOCKTUNE_LOG=info"];
    env.extend_from_slice(settings);
    let mut runs = run_all(&[greet("untuned"), greet("defer-accept").server_env(&env)]);
    let tuned = runs.pop().expect("two runs");
    let base = &runs[0];
    check_quiet(base);
    for r in [base, &tuned] {
        eprintln!(
            "{:<12} first greeting {} ms, slowest other {} ms, slowest from the third {} ms",
            r.name,
            r.get("first_ms"),
            r.get("rest_max_ms"),
            r.get("after_two_max_ms")
        );
        check(r.num(later) < 300.0, r, "later greetings come at once");
    }
    check(
        base.num("first_ms") < 300.0 && base.num("rest_max_ms") < 300.0,
        base,
        "untuned: no defer period",
    );
    check(
        tuned.num("first_ms") >= 900.0,
        &tuned,
        "defer-accept was on: the first connection waits out its 1 s",
    );
    let notes = tuned
        .stderr
        .lines()
        .filter(|l| l.contains("speaks first"))
        .count();
    check(notes == 1, &tuned, "the heal is logged once, at info");
    tuned
}

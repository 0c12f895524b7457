//! New processes that no fork handler announces. A child made by the clone system call (vsftpd
//! makes each session so) has memory of its own, but neither it nor its parent ran the fork
//! handlers: the child must still act as a forked child (its own records, its own flusher), and
//! the parent must treat its connections as shared. A vfork child (Python's subprocess) runs in
//! our memory until it execs, and what it closes there must leave the parent's sockets tracked.
mod common;
use common::*;

const CONNS: usize = 6;

fn routes(name: &str, style: &str) -> Scenario {
    Scenario::new(
        name,
        &format!("python3 {{progs}}/raw_clone.py client 127.0.0.1 {{port}} {CONNS}"),
    )
    .server(&format!(
        "python3 {{progs}}/raw_clone.py server {style} 127.0.0.1 {{port}}"
    ))
}

/// The `conn` records in `stats`, as (pid, responses).
fn records(stats: &std::path::Path) -> (String, Vec<(String, String)>) {
    let text = std::fs::read_to_string(stats).unwrap_or_default();
    let field = |line: &str, key: &str| {
        let at = line.find(&format!("\"{key}\":")).map(|i| i + key.len() + 3);
        at.map(|i| {
            line[i..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
        })
        .unwrap_or_default()
    };
    let conns = text
        .lines()
        .filter(|l| l.contains("\"type\":\"conn\""))
        .map(|l| (field(l, "pid"), field(l, "responses")))
        .collect();
    (text, conns)
}

/// Serves [`CONNS`] connections in `style`, untuned and under cork with records on: every answer
/// whole, fewer packets corked, and one record per connection, with its one response, written by
/// the server itself (`by_server`) or else by a child.
fn serve(style: &str, by_server: bool) {
    let stats = scratch(&format!("fork_routes_{style}")).join("stats.jsonl");
    let record = format!("SOCKTUNE_STATS={}", stats.display());
    let runs = run_all(&[
        routes("untuned", style),
        routes("cork", style).server_env(&["SOCKTUNE_CORK=1", &record]),
    ]);
    for r in &runs {
        check_quiet(r);
        check(r.num("conns") == CONNS as f64, r, "every answer whole");
        eprintln!(
            "{:<8} packets per connection {}",
            r.name,
            r.get("packets_per_conn")
        );
    }
    let tuned = &runs[1];
    check(
        tuned.num("packets_per_conn") < runs[0].num("packets_per_conn"),
        tuned,
        "the two sends of each answer leave corked, as one segment",
    );
    let server = tuned.get("srv_pid");
    let (text, conns) = records(&stats);
    let writer = if by_server { "the server" } else { "a child" };
    check(
        conns.len() == CONNS
            && conns
                .iter()
                .all(|(pid, responses)| (pid == server) == by_server && responses == "1"),
        tuned,
        &format!(
            "{CONNS} records expected, each by {writer} (server: pid {server}), with 1 response:\n{text}"
        ),
    );
}

/// The parent's copy was shared: its close (it answered nothing) is no connection's end. The
/// child's close is, with the response it sent, in its own pid's record.
#[test]
fn a_raw_clone_child_acts_as_a_forked_child_and_its_parent_shares() {
    needs_root!(NETNS);
    serve("clone", false);
}

/// The answers after each subprocess are corked and recorded: the sockets stayed tracked.
#[test]
fn a_vfork_child_closing_every_fd_leaves_the_parents_connections_alone() {
    needs_root!(NETNS);
    serve("subprocess", true);
}

/// Telling a vfork child from us costs no system call: the server's own process (strace without
/// -f: not its children) makes as many getpid calls under the shim as without it, give or take
/// the one at load, not one per connection closed.
#[test]
fn no_getpid_per_connection() {
    needs_root!(NETNS);
    let dir = scratch("fork_routes_getpid");
    let traced = |name: &str| {
        let out = dir.join(format!("{name}.strace"));
        let scenario = Scenario::new(
            name,
            &format!("python3 {{progs}}/raw_clone.py client 127.0.0.1 {{port}} {CONNS}"),
        )
        .server(&format!(
            "strace -qq -e trace=getpid -o {} python3 {{progs}}/raw_clone.py server clone \
             127.0.0.1 {{port}}",
            out.display()
        ));
        (scenario, out)
    };
    let (base, base_out) = traced("untuned");
    let (tuned, tuned_out) = traced("cork");
    let runs = run_all(&[base, tuned.server_env(&["SOCKTUNE_CORK=1"])]);
    let count = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| {
                panic!(
                    "no strace output {} ({e}): is strace installed?",
                    path.display()
                )
            })
            .matches("getpid(")
            .count()
    };
    let (without, with) = (count(&base_out), count(&tuned_out));
    eprintln!("getpid calls in the server: {without} without the shim, {with} with it");
    for r in &runs {
        check(r.num("conns") == CONNS as f64, r, "every answer whole");
    }
    check(
        with <= without + 1,
        &runs[1],
        &format!("{with} getpid calls under the shim against {without} without: one per close?"),
    );
}

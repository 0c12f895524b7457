//! fork/exec, vfork and posix_spawn children answering on a socket they got as fd 1 (inetd/CGI
//! style), with every behaviour on in the server. tests/progs/inetd_server.py reads the request,
//! writes the status line itself (socktune corks it), starts tests/progs/cgi_child.py with the
//! connection on fd 1 by fork + dup2 + execv, subprocess (vfork) or posix_spawn, closes its own
//! copy and reaps the child. The child writes two lines 0.3 s apart, then a body, and exits.
//!
//! Each child must have the library loaded (the preload reaches it), every byte must arrive, and
//! each line within 100 ms of its write: a parent that forgot that a child shares the socket
//! would leave its cork on it, and the kernel would hold every write up to 200 ms.
mod common;
use common::*;

const CONNS: u32 = 3;
const STYLES: [&str; 3] = ["fork-exec", "subprocess", "posix_spawn"];

fn inetd(name: &str, style: &str) -> Scenario {
    let client = format!("python3 {{progs}}/inetd_client.py 127.0.0.1 {{port}} {CONNS} 70000");
    let server = format!("python3 {{progs}}/inetd_server.py 127.0.0.1 {{port}} {style}");
    Scenario::new(name, &client).server(&server)
}

#[test]
fn children_answer_on_an_inherited_socket_completely_and_promptly() {
    needs_root!(NETNS);
    let mut scenarios = vec![inetd("baseline fork-exec", "fork-exec")];
    scenarios.extend(STYLES.map(|s| inetd(s, s).server_env(ALL_BEHAVIOURS)));
    let runs = run_all(&scenarios);
    for r in &runs {
        eprintln!(
            "{:<20} errors {}  children with the library {}/{CONNS}  slowest line {} ms",
            r.name,
            r.get("errors"),
            r.get("preloaded"),
            r.get("max_delay_ms")
        );
        check_quiet(r);
        check(
            r.num("conns") == CONNS as f64 && r.num("errors") == 0.0,
            r,
            "every response must be complete and byte-exact",
        );
        check(
            r.num("max_delay_ms") < 100.0,
            r,
            "each line must arrive within 100 ms of the child's write (kernel cork timer: 200)",
        );
    }
    check(
        runs[0].num("preloaded") == 0.0,
        &runs[0],
        "without socktune no child loads it",
    );
    for r in &runs[1..] {
        check(
            r.num("preloaded") == CONNS as f64,
            r,
            "every child must have the library loaded",
        );
    }
}

//! Programs that tune themselves must not be made worse. Node.js sets TCP_NODELAY on each
//! accepted socket and hands each response to one writev: under SOCKTUNE_CORK=1 the shim must
//! send it as it is, not hold it until Node's next epoll wait (which cost 0.09 -> 0.16 ms p50 and
//! ~15% of wrk's requests/s before the shim learnt this). The debug log says which way each
//! response went.
mod common;
use common::*;

#[test]
fn node_http_responses_are_not_corked() {
    needs_root!(NETNS);
    let dir = scratch("self-tuned-node");
    let log = dir.join("server.log");
    let server = "node {progs}/node_server.js 127.0.0.1 {port}";
    let runs = run_all(&[
        keepalive("node baseline", server, "127.0.0.1", 40),
        keepalive("node cork", server, "127.0.0.1", 40).server_env(&[
            "SOCKTUNE_CORK=1",
            "SOCKTUNE_LOG=debug",
            &format!("SOCKTUNE_LOG_FILE={}", log.display()),
        ]),
    ]);
    for r in &runs {
        eprintln!(
            "{:<14} packets/request {}  p50 {} ms",
            r.name,
            r.get("packets_per_request"),
            r.get("p50_ms")
        );
        check(
            r.num("packets_per_request") <= 2.2,
            r,
            "Node already sends one segment per response",
        );
    }
    let text = std::fs::read_to_string(&log).expect("the shim's debug log");
    let held = text.matches("held until its boundary").count();
    let as_is = text.matches("sent as written").count();
    check(
        held == 0 && as_is >= 40,
        &runs[1],
        &format!("every response sent as written ({as_is}), none held ({held})"),
    );
}

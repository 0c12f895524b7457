//! A connection still open when its process execs another program is recorded, with
//! `"end":"exec"`: the exec replaces the memory its record would have waited in.
mod common;
use common::*;

#[test]
fn connections_open_at_exec_are_recorded() {
    needs_root!(NETNS);
    let dir = scratch("exec_records");
    let stats = dir.join("stats.jsonl");
    let _ = std::fs::remove_file(&stats);
    let setting = format!("SOCKTUNE_STATS={}", stats.display());
    let r = Scenario::new("exec", "python3 {progs}/exec_with_conn.py 127.0.0.1 {port}")
        .server(HTTP11_SERVER_V4)
        .client_env(&[&setting])
        .run();
    check_quiet(&r);
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let execs = text
        .lines()
        .filter(|l| l.contains("\"end\":\"exec\""))
        .count();
    check(
        execs == 1,
        &r,
        &format!("one record ending at exec expected:\n{text}"),
    );
    // Untuned baseline: without the shim, nothing is recorded at all.
    let _ = std::fs::remove_file(&stats);
    let base = Scenario::new(
        "untuned",
        "python3 {progs}/exec_with_conn.py 127.0.0.1 {port}",
    )
    .server(HTTP11_SERVER_V4)
    .run();
    check(!stats.exists(), &base, "no shim, no record");
}

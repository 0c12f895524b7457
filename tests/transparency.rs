//! Every intercepted call returns what libc returns, errno included, with every behaviour on:
//! tests/progs/errno_check.c (C, since higher-level languages hide errno) makes calls whose
//! outcome libc defines and checks result and errno. It runs without the shim first, proving the
//! expectations are libc's own, then under the shim.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn results_and_errno_match_libc_with_every_behaviour_on() {
    let bin = std::env::temp_dir().join(format!("socktune-errno-check-{}", std::process::id()));
    let src = repo().join("tests/progs/errno_check.c");
    let cc = run_bounded(
        Command::new("cc").arg("-O1").arg("-o").arg(&bin).arg(&src),
        Duration::from_secs(60),
    );
    assert!(
        cc.status.success(),
        "cc failed (is gcc installed?):\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let env = ALL_BEHAVIOURS
        .join(" ")
        .replace("SOCKTUNE_DEFER_ACCEPT=5", "SOCKTUNE_DEFER_ACCEPT=1");
    for shim in [None, Some(lib())] {
        let preload = shim
            .map(|l| format!("LD_PRELOAD={} {env}", l.display()))
            .unwrap_or_default();
        let script = format!("ip link set lo up && env {preload} {}", bin.display());
        let out = run_bounded(
            Command::new("unshare").args(["-n", "sh", "-c", &script]),
            Duration::from_secs(60),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "{}:\n{stdout}",
            if preload.is_empty() {
                "without socktune"
            } else {
                "with socktune"
            }
        );
        assert!(
            out.status.success() && stdout.contains("\n0 failed"),
            "errno checks failed ({}):\n{stdout}\n{}",
            if preload.is_empty() {
                "without socktune: needs root for unshare -n"
            } else {
                "under socktune"
            },
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(&bin).ok();
}

//! Settings hold for the whole process tree even when a program drops its environment before
//! starting children: the exec and posix_spawn hooks put LD_PRELOAD and SOCKTUNE_* back.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn child_env(way: &str, shim: bool) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/progs/clearenv_exec.py"))
        .arg(way)
        .env_remove("LD_PRELOAD");
    if shim {
        cmd.env("LD_PRELOAD", lib())
            .env("SOCKTUNE_CORK", "1")
            .env("SOCKTUNE_PORTS", "8000");
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{way}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn children_keep_the_settings_after_the_environment_is_cleared() {
    for way in ["execv", "subprocess", "posix_spawn"] {
        let plain = child_env(way, false);
        assert!(
            !plain.contains("SOCKTUNE_"),
            "{way} without the shim:\n{plain}"
        );
        let tuned = child_env(way, true);
        let preload = tuned
            .lines()
            .find(|l| l.starts_with("LD_PRELOAD="))
            .unwrap_or("");
        assert!(
            preload.ends_with("libsocktune.so"),
            "{way}: child lost LD_PRELOAD:\n{tuned}"
        );
        for var in ["SOCKTUNE_CORK=1", "SOCKTUNE_PORTS=8000"] {
            assert!(
                tuned.lines().any(|l| l == var),
                "{way}: child lost {var}:\n{tuned}"
            );
        }
        if way != "execv" {
            assert!(
                tuned.lines().any(|l| l == "A=1"),
                "{way}: the program's own entry must stay:\n{tuned}"
            );
        }
    }
}

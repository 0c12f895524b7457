//! Children get the environment the program chose. A program that drops its environment before
//! starting children starts them untuned; under `SOCKTUNE_INHERIT=always` the exec and
//! posix_spawn hooks put LD_PRELOAD and SOCKTUNE_* back, except once the process changed its
//! user or group. Settings hold for forked workers either way, since they are parsed at load.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

const WAYS: [&str; 3] = ["execv", "subprocess", "posix_spawn"];

/// What /usr/bin/env printed, started by tests/progs/clearenv_exec.py `way` (after `extra`)
/// under the shim with `settings`, or without it.
fn child_env(way: &str, extra: &[&str], shim: Option<&[&str]>) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/progs/clearenv_exec.py"))
        .arg(way)
        .args(extra)
        .env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SOCKTUNE_")) {
        cmd.env_remove(k);
    }
    if let Some(settings) = shim {
        cmd.env("LD_PRELOAD", lib())
            .env("SOCKTUNE_CORK", "1")
            .env("SOCKTUNE_PORTS", "8000")
            .envs(settings.iter().map(|kv| kv.split_once('=').unwrap()));
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{way}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The child's environment holds exactly the program's own entries.
fn as_chosen(way: &str, seen: &str) {
    assert!(
        !seen.contains("SOCKTUNE_") && !seen.contains("LD_PRELOAD"),
        "{way}: the child got entries the program dropped:\n{seen}"
    );
    if way != "execv" {
        assert!(
            seen.lines().any(|l| l == "A=1"),
            "{way}: the program's own entry must stay:\n{seen}"
        );
    }
}

#[test]
fn children_get_the_environment_the_program_chose() {
    for way in WAYS {
        as_chosen(way, &child_env(way, &[], None));
        as_chosen(way, &child_env(way, &[], Some(&[])));
        as_chosen(
            way,
            &child_env(way, &[], Some(&["SOCKTUNE_INHERIT=chosen"])),
        );
    }
}

#[test]
fn children_keep_the_settings_after_the_environment_is_cleared() {
    for way in WAYS {
        let plain = child_env(way, &[], None);
        assert!(
            !plain.contains("SOCKTUNE_"),
            "{way} without the shim:\n{plain}"
        );
        let tuned = child_env(way, &[], Some(&["SOCKTUNE_INHERIT=always"]));
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

#[test]
fn settings_never_follow_a_change_of_user() {
    needs_root!("changes its user to nobody before exec");
    for way in WAYS {
        let seen = child_env(way, &["as-nobody"], Some(&["SOCKTUNE_INHERIT=always"]));
        as_chosen(way, &seen);
    }
}

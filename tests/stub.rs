//! The stub, libsocktune.so, exports every hook of the shim, and loads the shim at a process's
//! first socket call with the settings the process started with, not before; without the shim
//! beside it, it says so once and the program runs untouched.
mod common;
use common::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

fn exports(lib: &std::path::Path) -> BTreeSet<String> {
    let out = run_bounded(
        Command::new("nm").args(["-D", "--defined-only"]).arg(lib),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "nm {}: {out:?}", lib.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect()
}

#[test]
fn the_stub_exports_every_hook_of_the_shim() {
    let stub = exports(&lib());
    let shim = exports(&shim_beside(&lib()));
    assert!(
        shim.contains("socket") && shim.contains("write"),
        "{shim:?}"
    );
    let missing: Vec<&String> = shim.difference(&stub).collect();
    assert!(missing.is_empty(), "the stub lacks {missing:?}");
    // Its own additions: calls that only load the shim, and what the shim reads back.
    let extra: BTreeSet<&str> = stub.difference(&shim).map(String::as_str).collect();
    assert_eq!(
        extra,
        BTreeSet::from([
            "chroot",
            "fork",
            "prctl",
            "socktune_next",
            "socktune_start",
            "socktune_tracked"
        ]),
        "exports only the stub has"
    );
}

/// Counts the shim's mappings in /proc/self/maps before and after a socket, with the
/// environment cleared first (the settings must still be those at start).
const PROBE: &str = "
import os, socket, sys
maps = lambda: sum('libsocktune_shim' in l for l in open('/proc/self/maps'))
before = maps()
os.environ.clear()
s = socket.socket()
for port in range(20000, 20200):  # below the ephemeral range, which defer-accept leaves alone
    try:
        s.bind(('127.0.0.1', port))
        break
    except OSError:
        pass
s.listen(8)
print(before, maps() > 0, s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0)
";

/// The probe's output and stderr, under `lib` (if given) with `env`.
fn probe(lib: Option<&std::path::Path>, env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = Command::new(python());
    cmd.args(["-c", PROBE])
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    if let Some(lib) = lib {
        cmd.env("LD_PRELOAD", lib);
    }
    cmd.envs(env.iter().copied());
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_shim_loads_at_the_first_socket_with_the_settings_at_start() {
    let defer = [("SOCKTUNE_DEFER_ACCEPT", "1")];
    assert_eq!(probe(None, &defer).0, "0 False False", "without socktune");
    assert_eq!(
        probe(Some(&lib()), &defer).0,
        "0 True True",
        "under the stub"
    );
    assert_eq!(probe(Some(&lib()), &[]).0, "0 False False", "nothing set");
    // An unknown name is a setting too: the shim loads, and warns.
    let (out, err) = probe(Some(&lib()), &[("SOCKTUNE_UNRELATED_TO_US", "")]);
    assert_eq!(out, "0 True False");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("SOCKTUNE_UNRELATED_TO_US"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn a_stub_without_its_shim_says_so_once_and_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("socktune-stub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alone = dir.join("libsocktune.so");
    std::fs::copy(lib(), &alone).unwrap();
    let (out, err) = probe(Some(&alone), &[("SOCKTUNE_DEFER_ACCEPT", "1")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out, "0 False False");
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("socktune")).collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert!(
        ours[0].contains("could not load") && ours[0].contains("libsocktune_shim.so"),
        "{err}"
    );
    // The loader's own reason, as dlerror gave it.
    assert!(ours[0].contains("cannot open shared object file"), "{err}");
}

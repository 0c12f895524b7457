//! In secure-execution mode (AT_SECURE: setuid/setgid programs) the shim does nothing, whatever
//! the environment says. tests/progs/secure_probe.c loads the library with dlopen and calls its
//! listen() with SOCKTUNE_DEFER_ACCEPT=5 set: run normally it must read back a non-zero
//! TCP_DEFER_ACCEPT (so the probe can see the shim act); run setuid-root as user nobody it must
//! read back 0 while the variable is still in its environment, and it must make no control file
//! for `socktune ctl`.
mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

fn probe(dir: &std::path::Path, setuid: bool) -> String {
    let (bin, lib) = (dir.join("secure_probe"), dir.join("libsocktune.so"));
    let run = format!(
        "ip link set lo up && SOCKTUNE_DEFER_ACCEPT=5 {} {} {} 8080",
        if setuid {
            "setpriv --reuid=65534 --regid=65534 --clear-groups"
        } else {
            ""
        },
        bin.display(),
        lib.display()
    );
    let out = run_bounded(
        Command::new("unshare").args(["-n", "sh", "-c", &run]),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "secure_probe failed (needs root, util-linux's setpriv and a filesystem without nosuid \
         for the temporary directory):\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}: {stdout}",
        if setuid { "setuid as nobody" } else { "normal" }
    );
    stdout
}

#[test]
fn secure_execution_leaves_the_shim_inert() {
    needs_root!("runs a setuid-root probe as nobody, in a private network namespace");
    // A directory user nobody can read, wherever the checkout lives.
    let dir = std::env::temp_dir().join(format!("socktune-secure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(lib(), dir.join("libsocktune.so")).unwrap();
    std::fs::copy(shim_beside(&lib()), dir.join(SHIM_NAME)).unwrap();
    let cc = run_bounded(
        Command::new("cc")
            .arg("-o")
            .arg(dir.join("secure_probe"))
            .arg(repo().join("tests/progs/secure_probe.c"))
            .arg("-ldl"),
        Duration::from_secs(60),
    );
    assert!(
        cc.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    std::fs::set_permissions(
        dir.join("secure_probe"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();

    let normal = probe(&dir, false);
    let secure = probe(&dir, true);
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        normal.contains("secure=0") && normal.contains("defer_readback=7 ctl=1"),
        "run normally, the shim must set TCP_DEFER_ACCEPT (5 s reads back as 7) and make its \
         control file: {normal}"
    );
    assert!(
        secure.contains("secure=1") && secure.contains("env_kept=1"),
        "the setuid run must be in secure-execution mode with the variable still set: {secure}"
    );
    assert!(
        secure.contains("defer_readback=0 ctl=0"),
        "under AT_SECURE the shim must do nothing, and make no control file: {secure}"
    );
}

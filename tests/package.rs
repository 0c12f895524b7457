//! The Debian package of scripts/package.sh: it installs, the installed launcher finds the
//! installed library on its own and tunes a real server, the man pages and completions are where
//! man and the shells look, and `dpkg -r` takes every file away again.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LAUNCHER: &str = "/usr/bin/socktune";
const PAGES: [&str; 2] = [
    "/usr/share/man/man1/socktune.1.gz",
    "/usr/share/man/man7/socktune.7.gz",
];
const COMPLETIONS: [&str; 2] = [
    "/usr/share/bash-completion/completions/socktune",
    "/usr/share/zsh/vendor-completions/_socktune",
];

/// Removes the package when the test ends, failed or not, so the machine is left as it was.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        dpkg(&["-r", "socktune"]);
    }
}

fn dpkg(args: &[&str]) -> std::process::Output {
    run_bounded(Command::new("dpkg").args(args), Duration::from_secs(120))
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The library's packaged place: /usr/lib/<triplet>/socktune/libsocktune.so.
fn packaged_lib() -> String {
    let out = run_bounded(
        Command::new("dpkg-query").args(["-L", "socktune"]),
        Duration::from_secs(30),
    );
    ok(&out, "dpkg-query -L socktune");
    let files = String::from_utf8_lossy(&out.stdout).into_owned();
    let lib = files
        .lines()
        .find(|f| f.ends_with("/socktune/libsocktune.so"));
    lib.unwrap_or_else(|| panic!("the package holds no libsocktune.so:\n{files}"))
        .to_string()
}

/// `man -w` finds the page, or without man-db, the file is there.
fn check_page(section: &str, file: &str) {
    let man = Command::new("man")
        .args(["-w", section, "socktune"])
        .output();
    match man {
        Ok(out) => ok(&out, &format!("man -w {section} socktune")),
        Err(_) => assert!(Path::new(file).is_file(), "{file} is not installed"),
    }
}

#[test]
fn the_package_installs_tunes_a_server_and_removes_cleanly() {
    needs_root!("installs a Debian package");
    let script = repo().join("scripts/package.sh");
    let built = run_bounded(Command::new("bash").arg(&script), Duration::from_secs(900));
    ok(&built, "scripts/package.sh");
    let stdout = String::from_utf8_lossy(&built.stdout);
    let deb = stdout.lines().last().unwrap_or_default().to_string();
    // A relative path is the script's, from the repository root.
    let deb = repo().join(deb);

    // A package left by an earlier, killed run is replaced.
    let installed = Installed;
    ok(&dpkg(&["-i", deb.to_str().unwrap()]), "dpkg -i");
    let lib = packaged_lib();
    let shim = shim_beside(Path::new(&lib)).display().to_string();
    for file in [LAUNCHER, lib.as_str(), shim.as_str()]
        .iter()
        .chain(&PAGES)
        .chain(&COMPLETIONS)
    {
        assert!(Path::new(file).is_file(), "{file} is not installed");
    }
    check_page("1", PAGES[0]);
    check_page("7", PAGES[1]);

    // No --lib and no --srv-shim: only the installed launcher can find and load the library.
    let runs = run_all(&[
        keepalive("without socktune", HTTP11_SERVER_V4, "127.0.0.1", 100),
        keepalive(
            "installed socktune run --cork",
            &format!("{LAUNCHER} run --cork -- {HTTP11_SERVER_V4}"),
            "127.0.0.1",
            100,
        ),
    ]);
    for r in &runs {
        eprintln!(
            "{}: {} packets/request",
            r.name,
            r.get("packets_per_request")
        );
    }
    check_uncorked(&runs[0], "python3 -m http.server without socktune");
    check_corked(
        &runs[1],
        "/usr/bin/socktune run --cork -- python3 -m http.server",
    );
    check_quiet(&runs[1]);

    drop(installed);
    let status = dpkg(&["-s", "socktune"]);
    assert!(
        !status.status.success(),
        "socktune is still known to dpkg after dpkg -r"
    );
    for file in [LAUNCHER, lib.as_str(), shim.as_str()]
        .iter()
        .chain(&PAGES)
        .chain(&COMPLETIONS)
    {
        assert!(!Path::new(file).exists(), "{file} is left after dpkg -r");
    }
    let dir = Path::new(&lib).parent().unwrap();
    assert!(!dir.exists(), "{} is left after dpkg -r", dir.display());
}

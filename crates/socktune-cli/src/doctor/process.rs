//! `socktune doctor --pid PID`: what a running process got. The loader skips a preload it
//! cannot load and runs the program anyway, so only /proc/PID/maps says whether the library is
//! really in; /proc/PID/environ holds the settings it parsed, and the counters file the numbers.

use super::{check_elf, offer_alternatives, Findings, Tag};
use crate::launch::LIB_NAME;
use crate::{config, elf};
use socktune_core::record::{self, COUNTER_SLOTS};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What the library carries before its version (see `SOCKTUNE_VERSION` in the preload crate).
const VERSION_MARKER: &[u8] = b"socktune-version=";
/// The first word of the counters file, as the library writes it.
const COUNTERS_MAGIC: &[u8; 8] = b"socktun1";
/// auxv's secure-execution flag: set, the loader ignored LD_PRELOAD.
const AT_SECURE: u64 = 23;
const TCP_LISTEN: u8 = 0x0A;

/// The library as /proc/PID/maps shows it.
#[derive(Debug, PartialEq, Eq)]
struct Mapped {
    path: String,
    /// The file was replaced or removed since the process mapped it.
    deleted: bool,
    /// `start-end` of its first mapping: the name of its entry in /proc/PID/map_files.
    range: String,
}

/// The shim's file name: the stub, libsocktune.so, maps it at the first socket call or fork.
const SHIM: &str = "libsocktune_shim.so";

/// The first mapping of the stub in the text of /proc/PID/maps (a file named libsocktune*.so),
/// or else of the shim, preloaded on its own.
fn mapped_library(maps: &str) -> Option<Mapped> {
    let mut mapped = mappings(maps);
    let first = mapped.next()?;
    if !first.path.ends_with(SHIM) {
        return Some(first);
    }
    mapped.find(|m| !m.path.ends_with(SHIM)).or(Some(first))
}

/// Whether the process has mapped the shim.
fn shim_mapped(maps: &str) -> bool {
    mappings(maps).any(|m| m.path.ends_with(SHIM))
}

/// The mappings of files named libsocktune*.so, in the order of /proc/PID/maps.
fn mappings(maps: &str) -> impl Iterator<Item = Mapped> + '_ {
    maps.lines().filter_map(|line| {
        // address perms offset dev inode path: the path is the rest after five fields.
        let mut fields = line.splitn(6, ' ');
        let range = fields.next()?;
        let path = fields.nth(4)?.trim_start();
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        let name = Path::new(path).file_name()?.to_str()?;
        (name.starts_with("libsocktune") && name.contains(".so")).then(|| Mapped {
            path: path.to_string(),
            deleted,
            range: range.to_string(),
        })
    })
}

/// The NUL-separated `KEY=VALUE` entries of /proc/PID/environ.
fn environ_vars(environ: &[u8]) -> Vec<(String, String)> {
    environ
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The entries of an LD_PRELOAD value (spaces or colons between them) that name socktune.
fn socktune_preloads(ld_preload: &str) -> Vec<&str> {
    ld_preload
        .split([' ', ':'])
        .filter(|e| {
            Path::new(e)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("socktune"))
        })
        .collect()
}

/// The version after the marker, up to its NUL.
fn version_in(file: &[u8]) -> Option<String> {
    let at = file
        .windows(VERSION_MARKER.len())
        .position(|w| w == VERSION_MARKER)?;
    let rest = &file[at + VERSION_MARKER.len()..];
    let end = rest.iter().take(64).position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// AT_SECURE from the (native-endian, 64-bit) words of /proc/PID/auxv.
fn at_secure(auxv: &[u8]) -> Option<bool> {
    let words: Vec<u64> = auxv
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("chunks of 8")))
        .collect();
    words
        .chunks_exact(2)
        .find(|pair| pair[0] == AT_SECURE)
        .map(|pair| pair[1] != 0)
}

/// The states and local ports of the sockets in `inodes`, from a /proc/net/tcp{,6} table.
fn tcp_sockets(table: &str, inodes: &HashSet<u64>) -> Vec<(u8, u16)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = f.get(9)?.parse().ok()?;
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            inodes.contains(&inode).then_some((state, port))
        })
        .collect()
}

/// The counters after the magic word, or why there are none.
fn counters_in(file: &[u8]) -> Result<[u64; COUNTER_SLOTS], &'static str> {
    if file.len() < 8 * (COUNTER_SLOTS + 1) {
        return Err("too short to be a socktune counters file");
    }
    if &file[..8] != COUNTERS_MAGIC {
        return Err("not a socktune counters file (no \"socktun1\" in its first word)");
    }
    let word = |i: usize| {
        let at = 8 * (i + 1);
        u64::from_ne_bytes(file[at..at + 8].try_into().expect("8 bytes"))
    };
    Ok(std::array::from_fn(word))
}

pub(super) fn check_process(f: &mut Findings, pid: u32) {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let read = |name: &str| std::fs::read(proc_dir.join(name));
    let environ = match read("environ") {
        Ok(e) => e,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                ": run doctor as the process's user or as root"
            } else {
                ""
            };
            f.add(
                Tag::Fail,
                format!("process {pid}: {}{hint}", crate::describe(&e)),
            );
            return;
        }
    };
    let exe = std::fs::read_link(proc_dir.join("exe")).unwrap_or_else(|_| "?".into());
    let exe_elf = elf::read(&proc_dir.join("exe")).ok().flatten();
    let secure = read("auxv").ok().as_deref().and_then(at_secure);
    let vars = environ_vars(&environ);
    // Relative paths in its environment are relative to its working directory.
    let cwd = std::fs::read_link(proc_dir.join("cwd")).unwrap_or_else(|_| "/".into());

    let mut reachable = true;
    if let Some(program) = &exe_elf {
        reachable = check_elf(f, &exe, program, None, secure == Some(true));
    }
    if secure == Some(true) {
        reachable = false;
        f.add(
            Tag::Fail,
            format!("process {pid}: runs in secure-execution mode (AT_SECURE: setuid, setgid or file capabilities): the loader ignored LD_PRELOAD"),
        );
    }
    let ld_preload = vars
        .iter()
        .find(|(k, _)| k == "LD_PRELOAD")
        .map_or("", |(_, v)| v.as_str());
    let maps = match read("maps") {
        Ok(maps) => String::from_utf8_lossy(&maps).into_owned(),
        Err(e) => {
            f.add(
                Tag::Warn,
                format!("process {pid}: /proc/{pid}/maps: {}", crate::describe(&e)),
            );
            String::new()
        }
    };
    match mapped_library(&maps) {
        Some(lib) => {
            report_loaded(f, &proc_dir, &lib);
            if !lib.path.ends_with(SHIM) && !shim_mapped(&maps) {
                f.add(
                    Tag::Note,
                    format!("library: its shim ({SHIM}) is not loaded yet: the process has made no socket call and no fork since it started"),
                );
            }
            if secure == Some(true) {
                f.add(
                    Tag::Fail,
                    "library: loaded, but under AT_SECURE it does nothing",
                );
            }
        }
        None if !maps.is_empty() => {
            let named = socktune_preloads(ld_preload);
            if named.is_empty() {
                let why = if reachable {
                    "and its LD_PRELOAD does not name it: start it with `socktune run`"
                } else {
                    "nor can LD_PRELOAD load it into this program (above)"
                };
                f.add(
                    Tag::Fail,
                    format!("library: not loaded (not in /proc/{pid}/maps), {why}"),
                );
            } else {
                let why = skip_reasons(&named, &cwd, exe_elf.as_ref(), secure);
                f.add(
                    Tag::Fail,
                    format!(
                        "library: skipped: LD_PRELOAD names {}, but it is not in /proc/{pid}/maps; the loader skips a preload it cannot load and runs the program without it ({why})",
                        named.join(" ")
                    ),
                );
            }
        }
        None => {}
    }
    if !reachable {
        offer_alternatives(f);
    }
    let settings = check_settings(f, pid, vars);
    if let Some(prom) = settings.and_then(|c| c.stats_prom) {
        check_counters(f, &cwd.join(format!("{prom}.counters")));
    }
    check_sockets(f, &proc_dir);
}

/// The likely reasons the loader skipped each of `named`, as far as /proc shows them.
fn skip_reasons(
    named: &[&str],
    cwd: &Path,
    exe: Option<&elf::Elf>,
    secure: Option<bool>,
) -> String {
    let mut reasons = Vec::new();
    if secure == Some(true) {
        reasons.push("secure-execution mode".to_string());
    }
    for entry in named {
        if !entry.contains('/') {
            reasons.push(format!(
                "{entry} is a bare name, which the loader looks for only in its library path"
            ));
            continue;
        }
        let path = cwd.join(entry);
        match elf::read(&path) {
            Err(e) => reasons.push(format!("{entry}: {}", crate::describe(&e))),
            Ok(None) => reasons.push(format!("{entry} is not an ELF library")),
            Ok(Some(lib)) => {
                if exe.is_some_and(|p| (p.bits, p.machine) != (lib.bits, lib.machine)) {
                    reasons.push(format!("{entry} is built for another architecture"));
                }
            }
        }
    }
    if reasons.is_empty() {
        "likely reasons: a wrong path, a wrong architecture, or secure-execution (setuid) mode; glibc's warning went to the program's stderr".into()
    } else {
        reasons.join("; ")
    }
}

fn report_loaded(f: &mut Findings, proc_dir: &Path, lib: &Mapped) {
    // A replaced file is still readable through map_files (as root).
    let file = if lib.deleted {
        std::fs::read(proc_dir.join("map_files").join(&lib.range))
    } else {
        std::fs::read(&lib.path)
    };
    let version = file.as_deref().map(version_in);
    let shown = match &version {
        Ok(Some(v)) => format!("socktune {v}"),
        Ok(None) => "a build from before the library carried its version".into(),
        Err(e) => format!("version unknown: {}", crate::describe(e)),
    };
    let replaced = if lib.deleted {
        "; the file was replaced since, so a restart loads the new one"
    } else {
        ""
    };
    f.add(
        Tag::Ok,
        format!("library: loaded from {} ({shown}){replaced}", lib.path),
    );
    let mine = env!("CARGO_PKG_VERSION");
    if version.is_ok_and(|v| v.is_some_and(|v| v != mine)) {
        f.add(
            Tag::Note,
            format!("library: this doctor is socktune {mine}"),
        );
    }
}

/// The settings parsed as the library parsed them; the config, if any were set.
fn check_settings(
    f: &mut Findings,
    pid: u32,
    vars: Vec<(String, String)>,
) -> Option<config::Config> {
    let ours: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(config::PREFIX) && k != config::REPORTED_VAR)
        .collect();
    if ours.is_empty() {
        f.add(
            Tag::Note,
            "settings: no SOCKTUNE_* variable: the library does nothing",
        );
        return None;
    }
    let pairs: Vec<String> = ours.iter().map(|(k, v)| format!("{k}={v}")).collect();
    f.add(
        Tag::Note,
        format!(
            "settings: {} (from /proc/{pid}/environ: the environment the process started with, which the library parsed at load; a later change by the program does not show there, nor reach the library)",
            pairs.join(" ")
        ),
    );
    let parsed = config::parse(ours.iter().cloned());
    for problem in &parsed.problems {
        f.add(
            Tag::Warn,
            format!("settings: {}", problem.trim_start_matches("socktune: ")),
        );
    }
    // Its rules file as it reads it now (the library read it once, at the process's start).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let exe = exe.as_ref().map(|e| e.to_string_lossy());
    let cfg = match &parsed.config.rules_file {
        Some(path) => super::check_rules(f, path, &ours, exe.as_deref()),
        None => None,
    }
    .unwrap_or(parsed.config);
    for line in cfg.to_string().lines().skip(1) {
        f.add(Tag::Note, format!("settings: {}", line.trim_start()));
    }
    Some(cfg)
}

fn check_counters(f: &mut Findings, path: &Path) {
    let p = path.display();
    match std::fs::read(path).map(|file| counters_in(&file).map(|c| record::render_prom(&c))) {
        Ok(Ok(text)) => {
            f.add(Tag::Ok, format!("counters: {p}"));
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                f.add(Tag::Note, format!("counters: {line}"));
            }
        }
        Ok(Err(why)) => f.add(Tag::Warn, format!("counters: {p}: {why}")),
        Err(e) => f.add(Tag::Warn, format!("counters: {p}: {}", crate::describe(&e))),
    }
}

/// Its TCP sockets, from its fds and its network namespace's tables; and what cannot be seen.
fn check_sockets(f: &mut Findings, proc_dir: &Path) {
    let inodes: HashSet<u64> = std::fs::read_dir(proc_dir.join("fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let sockets: Vec<(u8, u16)> = ["net/tcp", "net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(proc_dir.join(t)).ok())
        .flat_map(|table| tcp_sockets(&table, &inodes))
        .collect();
    let listening: Vec<String> = sockets
        .iter()
        .filter(|(state, _)| *state == TCP_LISTEN)
        .map(|(_, port)| port.to_string())
        .collect();
    let connections = sockets.len() - listening.len();
    let text = if sockets.is_empty() {
        "sockets: no TCP socket".to_string()
    } else if listening.is_empty() {
        format!("sockets: {connections} TCP connections")
    } else {
        format!(
            "sockets: {} TCP (listening on port {}), {connections} connections",
            sockets.len(),
            listening.join(", ")
        )
    };
    f.add(Tag::Note, text);
    f.add(
        Tag::Note,
        format!(
            "sockets: whether the program set TCP_NODELAY or TCP_CORK itself (and {LIB_NAME} stepped back) cannot be seen from outside: /proc/net/tcp and `ss -i` do not show them, only getsockopt inside the process (or a debugger's ptrace) does; SOCKTUNE_LOG=debug makes the library log each option it leaves to the program"
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234                       /usr/bin/python3.11
7f1e2c000000-7f1e2c010000 r--p 00000000 08:01 5678                       /opt/socktune/lib/libsocktune.so
7f1e2c010000-7f1e2c090000 r-xp 00010000 08:01 5678                       /opt/socktune/lib/libsocktune.so
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn maps_show_the_library_or_not() {
        assert_eq!(
            mapped_library(MAPS),
            Some(Mapped {
                path: "/opt/socktune/lib/libsocktune.so".into(),
                deleted: false,
                range: "7f1e2c000000-7f1e2c010000".into(),
            })
        );
        let replaced = "7f00-7f10 r--p 00000000 08:01 9 /tmp/my dir/libsocktune.so (deleted)\n";
        let lib = mapped_library(replaced).unwrap();
        assert_eq!(
            (lib.path.as_str(), lib.deleted),
            ("/tmp/my dir/libsocktune.so", true)
        );
        let without = MAPS.replace("libsocktune.so", "libc.so.6");
        assert_eq!(mapped_library(&without), None);
        assert!(!shim_mapped(MAPS));
    }

    #[test]
    fn the_stub_is_named_before_its_shim_whatever_their_order() {
        let shim = "7f0000000000-7f0000001000 r--p 00000000 08:01 77 /opt/socktune/lib/libsocktune_shim.so\n";
        let both = format!("{shim}{MAPS}");
        assert_eq!(
            mapped_library(&both).map(|m| m.path),
            Some("/opt/socktune/lib/libsocktune.so".into())
        );
        assert!(shim_mapped(&both));
        assert_eq!(
            mapped_library(shim).map(|m| m.path),
            Some("/opt/socktune/lib/libsocktune_shim.so".into()),
            "the shim preloaded on its own"
        );
    }

    #[test]
    fn environ_and_its_preloads() {
        let environ = b"PATH=/bin\0LD_PRELOAD=/lib/libfoo.so:/x/libsocktune.so /y/z.so\0SOCKTUNE_CORK=1\0A=b=c\0";
        let vars = environ_vars(environ);
        assert_eq!(vars[2], ("SOCKTUNE_CORK".into(), "1".into()));
        assert_eq!(vars[3], ("A".into(), "b=c".into()));
        assert_eq!(socktune_preloads(&vars[1].1), ["/x/libsocktune.so"]);
        assert!(socktune_preloads("/lib/libfoo.so").is_empty());
    }

    #[test]
    fn version_auxv_sockets_and_counters() {
        assert_eq!(
            version_in(b"\x7fELF...socktune-version=0.1.0\0more"),
            Some("0.1.0".into())
        );
        assert_eq!(version_in(b"no marker"), None);

        let auxv: Vec<u8> = [6u64, 4096, AT_SECURE, 1, 0, 0]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(at_secure(&auxv), Some(true));
        assert_eq!(at_secure(&auxv[..16]), None);

        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1
   2: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9999 1 0 100 0 0 10 0
";
        let ours = HashSet::from([4242, 4343]);
        assert_eq!(tcp_sockets(tcp, &ours), [(TCP_LISTEN, 8080), (1, 8080)]);

        let mut file = COUNTERS_MAGIC.to_vec();
        file.extend((1..=COUNTER_SLOTS as u64).flat_map(|w| w.to_ne_bytes()));
        assert_eq!(counters_in(&file).unwrap()[1], 2);
        file[0] = b'x';
        assert!(counters_in(&file).is_err());
        assert!(counters_in(&file[..16]).is_err());
    }
}

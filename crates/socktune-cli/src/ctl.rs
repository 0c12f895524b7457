//! `socktune ctl`: shows and changes the settings of a running process tree through its
//! control file (layout and checks in `socktune_core::live`).

use crate::Fail;
use socktune_core::config::{self, Config};
use socktune_core::live::{self, FILE_LEN};
use socktune_core::record::{self, COUNTER_SLOTS};
use socktune_core::rules::{self, Rules};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

pub const HELP: &str = "\
usage: socktune ctl PID|--all show
       socktune ctl PID|--all set KEY=VALUE...
       socktune ctl PID|--all reset

Live control of a process running with libsocktune.so, and of the workers it forked (they share
its control file, in $XDG_RUNTIME_DIR/socktune, or /run/socktune for root; a program it execs
has a file of its own). A change takes
effect for the listeners and connections the processes make or accept after it, at the latest
at their next one; existing connections keep their plan, so no response is split midway.

  show             the settings by source (environment, config file, live change), the
                   effective settings (which behaviours are on), the rules of its
                   SOCKTUNE_CONFIG file for its program, and the tree's counters while it
                   records; the file is read now, as the library reads it at start-up and at
                   each live change
  set KEY=VALUE    change settings: KEY is a SOCKTUNE_* variable with or without the prefix,
                   in any case (cork=off, quickack=0, ab=50, cork-flush-ms=5); values are
                   checked as the library checks them, and a bad one changes nothing
  reset            back to the settings the process started with
  --all            every socktune process tree of the calling user
  -h, --help

Only the process's owner or root can change it. A process has no control file in
secure-execution mode (setuid), with SOCKTUNE_CTL=0, or without any behaviour or recording on.

exit status: 0; 1 if a process has no control file or may not be changed by you; 2 for a
usage error or a bad value.
";

enum Action {
    Show,
    Set(Vec<(String, String)>),
    Reset,
}

pub fn ctl(args: Vec<String>) -> Result<i32, Fail> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Err(Fail::Help);
    }
    let (target, action, rest) = match args.as_slice() {
        [target, action, rest @ ..] => (target, action.as_str(), rest),
        _ => {
            return Err(Fail::Usage(
                "expected PID|--all and show, set or reset".into(),
            ))
        }
    };
    let action = match (action, rest) {
        ("show", []) => Action::Show,
        ("reset", []) => Action::Reset,
        ("set", []) => return Err(Fail::Usage("set needs KEY=VALUE".into())),
        ("set", changes) => Action::Set(
            changes
                .iter()
                .map(|c| live::change(c))
                .collect::<Result<_, _>>()
                .map_err(Fail::Usage)?,
        ),
        ("show" | "reset", [extra, ..]) => {
            return Err(Fail::Usage(format!("unexpected {extra:?} after {action}")))
        }
        _ => return Err(Fail::Usage(format!("unknown action {action:?}"))),
    };
    let files = if target == "--all" {
        all_files()?
    } else {
        let pid: u32 = target
            .parse()
            .map_err(|_| Fail::Usage(format!("{target:?} is not a process id")))?;
        vec![(pid, find(pid).map_err(|e| Fail::Exit(1, e))?)]
    };
    let mut status = 0;
    for (pid, path) in files {
        if let Err(e) = act(pid, &path, &action) {
            eprintln!("{e}");
            status = 1;
        }
    }
    Ok(status)
}

fn act(pid: u32, path: &Path, action: &Action) -> Result<(), String> {
    let writes = !matches!(action, Action::Show);
    let control = Control::open(pid, path, writes)?;
    match action {
        Action::Show => print!("{}", control.show(pid, path)),
        Action::Reset => {
            control.update(|_| Vec::new())?;
            println!("socktune ctl: process {pid}: back to the start-up settings");
        }
        Action::Set(changes) => {
            control.update(|live| live::merged(&live, changes))?;
            let said: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("socktune ctl: process {pid}: set {}", said.join(" "));
        }
    }
    Ok(())
}

/// The control file process `pid` maps (the one its tree's first process made).
fn find(pid: u32) -> Result<PathBuf, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| {
        format!(
            "socktune ctl: process {pid}: /proc/{pid}/maps: {} (no such process, or not yours)",
            crate::describe(&e)
        )
    })?;
    control_in(&maps).ok_or_else(|| {
        format!(
            "socktune ctl: process {pid} has no socktune control file (not under socktune, \
             setuid, SOCKTUNE_CTL=0, no behaviour on, or no socket or fork yet)"
        )
    })
}

/// The control file's path in the text of /proc/PID/maps.
fn control_in(maps: &str) -> Option<PathBuf> {
    maps.lines().find_map(|line| {
        let path = line.split_whitespace().nth(5)?;
        (path.contains("/socktune/") && path.ends_with(".ctl")).then(|| PathBuf::from(path))
    })
}

/// Every control file of the calling user that a live process maps, with that process.
fn all_files() -> Result<Vec<(u32, PathBuf)>, Fail> {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let xdg = std::env::var("XDG_RUNTIME_DIR").ok();
    let Some(dir) = live::dir(euid, xdg.as_deref()) else {
        return Err(Fail::Exit(
            1,
            "socktune ctl: no XDG_RUNTIME_DIR, so no control files".into(),
        ));
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ctl"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // The tree's first process, or else any process that still maps the file.
        let me = std::process::id();
        let holder = std::iter::once(pid)
            .chain(processes())
            .find(|&p| p != me && find(p).is_ok_and(|f| f == path));
        match holder {
            Some(p) => out.push((p, path)),
            // Left by a tree that was killed: nobody maps it.
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if out.is_empty() {
        return Err(Fail::Exit(
            1,
            format!("socktune ctl: no socktune process of yours has a control file in {dir}"),
        ));
    }
    Ok(out)
}

fn processes() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// Processes that map the control file at `path`, but for this one.
fn tree(path: &Path) -> Vec<u32> {
    let me = std::process::id();
    processes()
        .filter(|&p| p != me && find(p).is_ok_and(|f| f == path))
        .collect()
}

/// A mapped control file.
struct Control {
    file: File,
    base: *mut u8,
}

impl Drop for Control {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `open`.
        unsafe { libc::munmap(self.base.cast(), FILE_LEN) };
    }
}

impl Control {
    /// Opens the file, never through a symbolic link, if the caller may: its own, or root.
    fn open(pid: u32, path: &Path, writes: bool) -> Result<Control, String> {
        let fail = |why: String| format!("socktune ctl: process {pid}: {}: {why}", path.display());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writes)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (only the process's owner or root can change it)"
                } else {
                    ""
                };
                fail(format!("{}{hint}", crate::describe(&e)))
            })?;
        let meta = file.metadata().map_err(|e| fail(crate::describe(&e)))?;
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if !meta.file_type().is_file() || meta.len() < FILE_LEN as u64 {
            return Err(fail("not a socktune control file".into()));
        }
        if euid != 0 && meta.uid() != euid {
            return Err(fail(format!(
                "belongs to uid {}: only the process's owner or root can change it",
                meta.uid()
            )));
        }
        let prot = libc::PROT_READ | if writes { libc::PROT_WRITE } else { 0 };
        // SAFETY: maps FILE_LEN bytes of a file at least that long; unmapped on drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_LEN,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(fail(crate::describe(&std::io::Error::last_os_error())));
        }
        let control = Control {
            file,
            base: base.cast(),
        };
        if control.word(0).load(SeqCst) != live::MAGIC {
            return Err(fail("not a socktune control file".into()));
        }
        Ok(control)
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        // SAFETY: an aligned word within the mapping, which lives as long as `self`.
        unsafe { &*self.base.add(at).cast::<AtomicU64>() }
    }

    fn text(&self, len_at: usize, at: usize, max: usize) -> String {
        // SAFETY: an aligned u32 within the mapping.
        let len = unsafe { &*self.base.add(len_at).cast::<AtomicU32>() }.load(SeqCst) as usize;
        // SAFETY: `at + max` is within the mapping.
        let bytes = unsafe { std::slice::from_raw_parts(self.base.add(at), len.min(max)) };
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn start(&self) -> Vec<(String, String)> {
        live::decode(&self.text(live::START_LEN_AT, live::START_AT, live::START_MAX))
    }

    fn live(&self) -> Vec<(String, String)> {
        live::decode(&self.text(live::LIVE_LEN_AT, live::LIVE_AT, live::LIVE_MAX))
    }

    /// Replaces the live settings with `f` of them: under flock, so that two `ctl`s do not
    /// interleave, with the generation odd while the text is written.
    fn update(
        &self,
        f: impl FnOnce(Vec<(String, String)>) -> Vec<(String, String)>,
    ) -> Result<(), String> {
        let fd = self.file.as_raw_fd();
        // SAFETY: flock on our own fd.
        unsafe { libc::flock(fd, libc::LOCK_EX) };
        let text = live::encode(&f(self.live()));
        if text.len() > live::LIVE_MAX {
            // SAFETY: as above.
            unsafe { libc::flock(fd, libc::LOCK_UN) };
            return Err(format!(
                "socktune ctl: the live settings would exceed {} bytes; nothing changed",
                live::LIVE_MAX
            ));
        }
        let text = text.as_bytes();
        let generation = self.word(live::GENERATION_AT);
        generation.fetch_add(1, SeqCst);
        // SAFETY: the copy and the length stay within the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), self.base.add(live::LIVE_AT), text.len());
            (*self.base.add(live::LIVE_LEN_AT).cast::<AtomicU32>())
                .store(text.len() as u32, SeqCst);
        }
        generation.fetch_add(1, SeqCst);
        // SAFETY: as above.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        Ok(())
    }

    fn show(&self, pid: u32, path: &Path) -> String {
        let (start, changes) = (self.start(), self.live());
        let now = Now::read(pid, &live::laid_over(&start, &changes));
        let cfg = &now.top;
        let root = self.word(live::PID_AT).load(SeqCst);
        let members: Vec<String> = tree(path).iter().map(u32::to_string).collect();
        let mut out = format!(
            "socktune ctl: process {pid}: control file {} of the tree of {root} (processes {}), \
             {} live change(s)\n",
            path.display(),
            members.join(" "),
            self.word(live::GENERATION_AT).load(SeqCst) / 2
        );
        out += &sources(&start, &changes, now.file.as_ref());
        out += &effective(cfg);
        out += &now.rules_lines(&changes);
        let counters: [u64; COUNTER_SLOTS] =
            std::array::from_fn(|i| self.word(live::COUNTERS_AT + 8 * i).load(SeqCst));
        out += &if !cfg.records() {
            "counters: none (recording is off: start with SOCKTUNE_STATS or SOCKTUNE_STATS_PROM)\n"
                .to_string()
        } else {
            format!("counters:\n{}", counter_lines(&counters))
        };
        out
    }
}

/// The settings as the library of a process reads them now: its variables and live changes
/// over the top level of its rules file, and the file's rules for its program.
struct Now {
    top: Config,
    rules: Rules,
    problems: Vec<String>,
    file: Option<RulesFile>,
}

/// A rules file that could be read.
struct RulesFile {
    path: String,
    /// The names its rules were picked for (`program_names`).
    names: Vec<String>,
    /// Its top level's settings (`rules::top_level`).
    top: Vec<(usize, usize, String)>,
}

impl Now {
    /// What `vars` (the start-up variables with the live changes laid over them) give process
    /// `pid`, by the library's own reading (`rules::with_file`).
    fn read(pid: u32, vars: &[(String, String)]) -> Now {
        let names = program_names(pid);
        let mut file = None;
        let read = |path: &str| {
            // The library reads a relative path from its working directory.
            let text = std::fs::read_to_string(Path::new(&format!("/proc/{pid}/cwd")).join(path))
                .map_err(|e| crate::describe(&e))?;
            file = Some(RulesFile {
                path: path.to_string(),
                names: names.clone(),
                top: rules::top_level(path, &text),
            });
            Ok(text)
        };
        let (parsed, rules) = rules::with_file(vars, read, || names.clone());
        Now {
            top: parsed.config,
            rules,
            problems: parsed.problems,
            file,
        }
    }

    /// The rules file's rules for the program, each with its own keys and those of them the
    /// live `changes` do not reach; then the problems of the settings.
    fn rules_lines(&self, changes: &[(String, String)]) -> String {
        let mut out = String::new();
        if let Some(f) = &self.file {
            out += &format!(
                "rules of {} for {} (a socket follows the first that matches, else the \
                 settings above; a rule takes each key it does not set from them, live changes \
                 included, and keeps its own):\n",
                f.path,
                f.names.join(", ")
            );
            if self.rules.0.is_empty() {
                out += "  none for this program\n";
            }
            for rule in &self.rules.0 {
                out += &format!("  {}\n", rule.describe());
                let kept: Vec<String> = config::SETTINGS
                    .iter()
                    .filter(|s| changes.iter().any(|(k, _)| k == s.name) && rule.keeps(s))
                    .map(|s| s.key())
                    .collect();
                if !kept.is_empty() {
                    out += &format!(
                        "    keeps its own {}: the live change does not reach this rule\n",
                        kept.join(", ")
                    );
                }
            }
        }
        for problem in &self.problems {
            out += &format!("problem: {}\n", problem.trim_start_matches("socktune: "));
        }
        out
    }
}

/// The names a rule's `program` glob is matched against, as the library of process `pid` has
/// them: the basenames of its executable and of its argv[0].
fn program_names(pid: u32) -> Vec<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let exe = exe.and_then(|e| Some(e.file_name()?.to_string_lossy().into_owned()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut names: Vec<String> = exe.into_iter().chain(argv0_name(&cmdline)).collect();
    names.dedup();
    names
}

/// glibc's `program_invocation_short_name` from the text of /proc/PID/cmdline: argv[0] after
/// its last `/`.
fn argv0_name(cmdline: &[u8]) -> Option<String> {
    let argv0 = cmdline
        .split(|&b| b == 0)
        .next()
        .filter(|a| !a.is_empty())?;
    let name = argv0.rsplit(|&b| b == b'/').next()?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Each setting that is set, and where from: a live change, the environment at start-up, the
/// top level of the rules file; the source it overrides in brackets.
fn sources(
    start: &[(String, String)],
    changes: &[(String, String)],
    file: Option<&RulesFile>,
) -> String {
    let mut out = "settings by source:\n".to_string();
    for (i, s) in config::SETTINGS.iter().enumerate() {
        let change = changes.iter().find(|(k, _)| k == s.name);
        let env = start.iter().find(|(k, _)| *k == s.var());
        let in_file = file.and_then(|f| {
            let (_, line, v) = f.top.iter().find(|(at, _, _)| *at == i)?;
            Some(format!("config file {}:{line} {v:?}", f.path))
        });
        let mut said = [
            change.map(|(_, v)| format!("live change {v:?}")),
            env.map(|(_, v)| format!("environment {v:?}")),
            in_file,
        ]
        .into_iter()
        .flatten();
        let Some(first) = said.next() else { continue };
        let over = said.next().map_or(String::new(), |o| format!(" ({o})"));
        out += &format!("  {:<26}{first}{over}\n", s.var());
    }
    out
}

/// The effective settings block, as the library logs it: which behaviours are on.
fn effective(cfg: &Config) -> String {
    let text = cfg.to_string();
    let mut lines = text.lines();
    lines.next();
    let mut out = "effective settings:\n".to_string();
    for line in lines {
        out += line;
        out += "\n";
    }
    out
}

/// The counters as the textfile has them, without its comments.
fn counter_lines(counters: &[u64; COUNTER_SLOTS]) -> String {
    if counters.iter().all(|&c| c == 0) {
        return "  no connection recorded yet\n".into();
    }
    record::render_prom(counters)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("  {l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_file_is_found_in_the_maps_text() {
        let maps = "7f00-7f02 rw-s 00000000 00:1a 12 /run/socktune/812.ctl\n\
                    7f03-7f04 r-xp 00000000 08:01 99 /usr/lib/libsocktune.so\n";
        assert_eq!(
            control_in(maps),
            Some(PathBuf::from("/run/socktune/812.ctl"))
        );
        assert_eq!(control_in("7f03-7f04 r-xp 0 08:01 99 /tmp/x.ctl\n"), None);
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sources_name_the_environment_and_the_live_change() {
        let start = pairs(&[("SOCKTUNE_CORK", "1")]);
        let changes = pairs(&[("CORK", "off")]);
        let text = sources(&start, &changes, None);
        assert_eq!(
            text,
            "settings by source:\n  SOCKTUNE_CORK             live change \"off\" (environment \"1\")\n"
        );
        let cfg = config::parse(live::laid_over(&start, &changes)).config;
        assert!(effective(&cfg).contains("cork              off"));
    }

    const FILE: &str =
        "nodelay = true\ncork = true\n\n[[rule]]\nports = \"80\"\nnodelay = false\n\n\
                        [[rule]]\nprogram = \"no-such-program\"\ncork = false\n";

    /// The file read for this test process, as the library of process `pid` would read it.
    fn now(vars: &[(&str, &str)], name: &str) -> Now {
        let path =
            std::env::temp_dir().join(format!("socktune-ctl-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, FILE).unwrap();
        let mut vars = pairs(vars);
        vars.push(("SOCKTUNE_CONFIG".into(), path.display().to_string()));
        let now = Now::read(std::process::id(), &vars);
        std::fs::remove_file(&path).unwrap();
        now
    }

    #[test]
    fn a_rules_files_top_level_is_a_source_under_the_variables_and_live_changes() {
        let start = pairs(&[("SOCKTUNE_CORK", "0")]);
        let changes = pairs(&[("NODELAY", "off")]);
        let vars = live::laid_over(&start, &changes);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let now = now(&vars, "sources");
        let f = now.file.as_ref().expect("the file is read");
        let text = sources(&start, &changes, Some(f));
        let line = |var: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{var} ")))
                .map(|l| l.split_once(var).unwrap().1.trim().to_string())
        };
        assert_eq!(
            line("SOCKTUNE_NODELAY").unwrap(),
            format!("live change \"off\" (config file {}:1 \"true\")", f.path)
        );
        assert_eq!(
            line("SOCKTUNE_CORK").unwrap(),
            format!("environment \"0\" (config file {}:2 \"true\")", f.path)
        );
        assert_eq!(line("SOCKTUNE_QUICKACK"), None, "{text}");
        // The effective settings are the file's under the variables and the change.
        assert!(!now.top.cork && !now.top.nodelay);
    }

    #[test]
    fn the_rules_are_the_programs_own_and_say_which_keys_a_live_change_does_not_reach() {
        let changes = pairs(&[("NODELAY", "on"), ("CORK", "off")]);
        let now = now(
            &[("SOCKTUNE_NODELAY", "on"), ("SOCKTUNE_CORK", "off")],
            "rules",
        );
        let names = program_names(std::process::id());
        assert!(!names.is_empty());
        let text = now.rules_lines(&changes);
        let path = &now.file.as_ref().unwrap().path;
        assert_eq!(
            text,
            format!(
                "rules of {path} for {} (a socket follows the first that matches, else the \
                 settings above; a rule takes each key it does not set from them, live changes \
                 included, and keeps its own):\n  line 4: ports 80 -> nodelay off (role both)\n    keeps its \
                 own nodelay: the live change does not reach this rule\n",
                names.join(", ")
            )
        );
        // The library's rule: its own nodelay, the live change's cork.
        let rule = now.rules.config(1).unwrap();
        assert!(!rule.nodelay && !rule.cork && now.top.nodelay);
    }

    #[test]
    fn a_rules_file_that_cannot_be_read_is_a_problem_line() {
        let now = Now::read(
            std::process::id(),
            &pairs(&[("SOCKTUNE_CONFIG", "/nonexistent/socktune.toml")]),
        );
        assert!(now.file.is_none());
        assert_eq!(
            now.rules_lines(&[]),
            "problem: SOCKTUNE_CONFIG=\"/nonexistent/socktune.toml\" cannot be read (No such file \
             or directory); only the variables apply\n"
        );
    }

    #[test]
    fn argv0_is_named_as_glibc_names_it() {
        assert_eq!(
            argv0_name(b"/usr/bin/python3\0-m\0http.server\0").as_deref(),
            Some("python3")
        );
        assert_eq!(argv0_name(b"nginx\0").as_deref(), Some("nginx"));
        assert_eq!(argv0_name(b""), None);
    }
}

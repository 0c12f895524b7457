//! `socktune run` and `socktune env`: the library's place, the variables, and the exec.

use crate::flags::{self, Request};
use crate::{help, Fail};
use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const LIB_NAME: &str = "libsocktune.so";
/// The exit status when the library cannot be used, as env(1) and nice(1) exit 125 when they
/// fail themselves.
const NO_LIB: i32 = 125;

pub fn run_help() -> String {
    format!(
        "usage: socktune run [FLAGS] [--] CMD [ARGS...]\n\n\
         Runs CMD with {LIB_NAME} preloaded (prepended to any LD_PRELOAD) and the SOCKTUNE_*\n\
         variables of the flags set. socktune execs CMD: it keeps socktune's pid, receives its\n\
         signals, and its exit status is socktune's. CMD is looked up on PATH. Variables already\n\
         in the environment are kept unless a flag overrides them. Bad values are refused with\n\
         the library's own message (exit 2) before CMD starts.\n\nflags:\n{}  -h, --help\n\n\
         exit status: CMD's; 2 usage error or bad value; 125 library not found; 126 CMD cannot\n\
         be executed; 127 CMD not found.\n",
        flags::help()
    )
}

pub fn env_help() -> String {
    format!(
        "usage: socktune env [FLAGS] [--format sh|systemd|docker]\n\n\
         Prints the variables `socktune run` with the same flags would set, LD_PRELOAD first:\n\
         sh (default): export lines, shell-quoted, for eval; LD_PRELOAD as run sets it: the\n\
         library, then what LD_PRELOAD holds here, less other copies of the library. systemd:\n\
         Environment= lines for a unit's [Service] section or a drop-in. docker: KEY=VALUE\n\
         lines for `docker run --env-file` or a compose env_file. The systemd and docker forms\n\
         set LD_PRELOAD to the library alone; pass --lib with the library's path on the target\n\
         system (it is not checked here).\n\nflags:\n{}{}  -h, --help\n",
        flags::help(),
        help::entry("--format sh|systemd|docker", "the output form (default sh)")
    )
}

/// Where `run` looks for the library when `--lib` is not given: beside the executable
/// (target/release holds both after `cargo build --release`), then the Debian package's place
/// (scripts/package.sh), then the usual install places.
fn candidates() -> Vec<PathBuf> {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    candidates_for(bin_dir)
}

fn candidates_for(bin_dir: Option<PathBuf>) -> Vec<PathBuf> {
    let beside = bin_dir
        .into_iter()
        .flat_map(|d| [d.clone(), d.join("../lib"), d.join("../lib/socktune")]);
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    let packaged = Path::new(&multiarch).join("socktune");
    let usual = ["/usr/local/lib", "/usr/lib", multiarch.as_str()].map(PathBuf::from);
    beside
        .chain([packaged])
        .chain(usual)
        .map(|d| d.join(LIB_NAME))
        .collect()
}

/// The library to preload: `--lib`, or the first candidate that exists, as a canonical path.
pub fn find_lib(given: Option<&Path>) -> Result<PathBuf, Fail> {
    let found = match given {
        Some(p) => p.is_file().then(|| p.to_path_buf()).ok_or_else(|| {
            Fail::Exit(
                NO_LIB,
                format!("socktune: --lib {}: no such file", p.display()),
            )
        })?,
        None => candidates()
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                let places: Vec<String> = candidates()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                Fail::Exit(
                    NO_LIB,
                    format!(
                "socktune: {LIB_NAME} not found (looked in {}); build it with `cargo build \
                 --release` or pass --lib PATH",
                places.join(", ")
            ),
                )
            })?,
    };
    let lib = found.canonicalize().unwrap_or(found);
    // The loader splits LD_PRELOAD at colons and spaces.
    if lib
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b':' | b' '))
    {
        return Err(Fail::Exit(
            NO_LIB,
            format!(
                "socktune: {} cannot be preloaded: LD_PRELOAD cannot hold a path with ':' or ' '",
                lib.display()
            ),
        ));
    }
    Ok(lib)
}

/// `lib` first, then the entries of `existing` except other copies of the library (two copies
/// would interpose every call twice).
fn preload_value(lib: &Path, existing: Option<&OsStr>) -> String {
    let lib = lib.to_string_lossy().into_owned();
    let others = existing
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kept = others
        .split([':', ' '])
        .filter(|e| !e.is_empty() && Path::new(e).file_name() != Some(OsStr::new(LIB_NAME)));
    std::iter::once(lib.as_str())
        .chain(kept)
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `[FLAGS] [--] CMD ARGS...` for `run` (with `cmd`) or `FLAGS` with the caller's own
/// extra flags for `env` (handled by `extra`). Returns how many arguments the command has.
fn parse(
    args: Vec<String>,
    wants_cmd: bool,
    mut extra: impl FnMut(&mut VecDeque<String>) -> Result<bool, Fail>,
) -> Result<(Request, usize), Fail> {
    let mut args: VecDeque<String> = args.into();
    let mut req = Request::default();
    while let Some(front) = args.front().cloned() {
        if front == "--" {
            args.pop_front();
            break;
        }
        if front == "-h" || front == "--help" {
            return Err(Fail::Help);
        }
        if !front.starts_with('-') {
            break; // the command starts here, as with env(1) and nice(1)
        }
        if !flags::take(&mut args, &mut req)? && !extra(&mut args)? {
            return Err(Fail::Usage(format!("unknown flag {front}")));
        }
    }
    if !wants_cmd && !args.is_empty() {
        return Err(Fail::Usage(format!("unexpected argument {}", args[0])));
    }
    if wants_cmd && args.is_empty() {
        return Err(Fail::Usage(
            "no command given (socktune run [FLAGS] -- CMD [ARGS...])".into(),
        ));
    }
    req.validate()?;
    Ok((req, args.len()))
}

/// `socktune run`: sets the variables in this process, then becomes the command.
pub fn run(args: Vec<OsString>) -> Result<(), Fail> {
    let text = args.iter().map(|a| a.to_string_lossy().into_owned());
    let (req, cmd_len) = parse(text.collect(), true, |_| Ok(false))?;
    let (flags, cmd) = args.split_at(args.len() - cmd_len);
    crate::utf8(flags.to_vec())?; // a value the loss of bytes would change
    let lib = find_lib(req.lib.as_deref())?;
    let preload = preload_value(&lib, std::env::var_os("LD_PRELOAD").as_deref());
    // One thread so far, so changing our own environment is safe; execvp passes it on.
    std::env::set_var("LD_PRELOAD", preload);
    for (name, value) in &req.vars {
        std::env::set_var(name, value);
    }
    exec(cmd)
}

/// execvp itself rather than `std::process::Command`, which would reset the signal mask and
/// SIGPIPE: the command must start with the dispositions socktune was given (systemd, for one,
/// starts services with SIGPIPE ignored).
fn exec(cmd: &[OsString]) -> Result<(), Fail> {
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| Fail::Usage("an argument holds a NUL byte".into()))?;
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: argv[0] and the NULL-terminated pointer array outlive the call; on success it
    // does not return.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let name = cmd[0].to_string_lossy();
    // The codes of shells and env(1): 127 not found, 126 found but not executable.
    Err(match err.raw_os_error() {
        Some(libc::ENOENT) => Fail::Exit(127, format!("socktune: {name}: command not found")),
        _ => Fail::Exit(126, format!("socktune: {name}: {}", crate::describe(&err))),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Sh,
    Systemd,
    Docker,
}

/// `socktune env`: prints what `run` would set.
pub fn env(args: Vec<String>) -> Result<(), Fail> {
    let mut format = Format::Sh;
    let (req, _) = parse(args, false, |args| {
        let Some(front) = args.front() else {
            return Ok(false);
        };
        let (flag, inline) = flags::split_inline(front);
        if flag != "--format" {
            return Ok(false);
        }
        let inline = inline.map(str::to_string);
        args.pop_front();
        let value = flags::value(args, "--format", inline.as_deref(), "sh|systemd|docker")?;
        format = match value.as_str() {
            "sh" => Format::Sh,
            "systemd" => Format::Systemd,
            "docker" => Format::Docker,
            other => {
                return Err(Fail::Usage(format!(
                    "--format {other}: accepted: sh, systemd, docker"
                )))
            }
        };
        Ok(true)
    })?;
    // A library for another system (a container, a unit) is taken as given.
    let lib = match (&req.lib, format) {
        (Some(lib), Format::Systemd | Format::Docker) => lib.clone(),
        _ => find_lib(req.lib.as_deref())?,
    };
    // For a shell, what `run` would set from the LD_PRELOAD this shell passed to us.
    let preload = match format {
        Format::Sh => preload_value(&lib, std::env::var_os("LD_PRELOAD").as_deref()),
        _ => lib.to_string_lossy().into_owned(),
    };
    let mut out = line(format, "LD_PRELOAD", &preload)?;
    for (name, value) in &req.vars {
        out += &line(format, name, value)?;
    }
    print!("{out}");
    Ok(())
}

fn line(format: Format, name: &str, value: &str) -> Result<String, Fail> {
    if format != Format::Sh && value.contains('\n') {
        return Err(Fail::Usage(format!(
            "{name}: a newline cannot be written in this format"
        )));
    }
    Ok(match format {
        Format::Sh => format!("export {name}={}\n", sh_quote(value)),
        Format::Systemd => format!(
            "Environment={}\n",
            systemd_quote(&format!("{name}={value}"))
        ),
        Format::Docker => format!("{name}={value}\n"),
    })
}

/// Single quotes unless every byte is safe bare; a quote inside becomes '\''.
pub fn sh_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// systemd expands % specifiers everywhere and splits unquoted assignments at spaces.
fn systemd_quote(assignment: &str) -> String {
    let escaped = assignment.replace('%', "%%");
    if escaped.contains(|c: char| c.is_whitespace() || "\"'\\".contains(c)) {
        format!("\"{}\"", escaped.replace('\\', r"\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_goes_first_and_replaces_other_copies() {
        let lib = Path::new("/opt/st/libsocktune.so");
        assert_eq!(preload_value(lib, None), "/opt/st/libsocktune.so");
        assert_eq!(
            preload_value(
                lib,
                Some(OsStr::new("/usr/lib/libjemalloc.so /old/libsocktune.so"))
            ),
            "/opt/st/libsocktune.so:/usr/lib/libjemalloc.so"
        );
    }

    #[test]
    fn the_packaged_library_comes_after_the_build_tree() {
        let found = candidates_for(Some(PathBuf::from("/src/target/release")));
        let shown: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        let arch = std::env::consts::ARCH;
        assert_eq!(
            shown[..4],
            [
                "/src/target/release/libsocktune.so".to_string(),
                "/src/target/release/../lib/libsocktune.so".into(),
                "/src/target/release/../lib/socktune/libsocktune.so".into(),
                format!("/usr/lib/{arch}-linux-gnu/socktune/libsocktune.so"),
            ]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/a/b.jsonl"), "/a/b.jsonl");
        assert_eq!(sh_quote("it's here"), r"'it'\''s here'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(
            systemd_quote("SOCKTUNE_PORTS=80,443"),
            "SOCKTUNE_PORTS=80,443"
        );
        assert_eq!(
            systemd_quote("SOCKTUNE_STATS=/var/a b/100%.jsonl"),
            "\"SOCKTUNE_STATS=/var/a b/100%%.jsonl\""
        );
    }
}

//! The settings flags of `run` and `env`: one flag per entry of the library's settings table,
//! named after its variable (`SOCKTUNE_CORK_FLUSH_MS` is `--cork-flush-ms`), so the variables
//! stay the single source of truth and the flags are only a way to set them.

use crate::config::{self, Arg, Setting, SETTINGS};
use crate::rules;
use crate::Fail;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// The flag of the setting `name`: `CORK_FLUSH_MS` → `--cork-flush-ms`.
pub fn flag(name: &str) -> String {
    format!("--{}", name.to_ascii_lowercase().replace('_', "-"))
}

/// What the help calls the flag's value: `BOOL`, `SECS`, `PATH`.
pub fn placeholder(s: &Setting) -> &'static str {
    match s.arg {
        Arg::Switch => "BOOL",
        Arg::Value(meta) => meta,
        Arg::Path => "PATH",
    }
}

/// `--cork[=BOOL]`, `--backlog N`: how the help shows it.
pub fn synopsis(s: &Setting) -> String {
    match s.arg {
        Arg::Switch => format!("{}[={}]", flag(s.name), placeholder(s)),
        Arg::Value(_) | Arg::Path => format!("{} {}", flag(s.name), placeholder(s)),
    }
}

/// What a setting does, what it accepts and its default, as `--help` and the man page say it.
pub fn description(s: &Setting) -> String {
    format!(
        "{}. Accepted: {}; default: {}.",
        s.help,
        s.kind.forms(),
        s.default
    )
}

/// What `run` and `env` were asked for.
#[derive(Default)]
pub struct Request {
    /// `SOCKTUNE_*` name and value, in the order given (a later flag overrides an earlier one).
    pub vars: Vec<(String, String)>,
    pub lib: Option<PathBuf>,
}

impl Request {
    fn set(&mut self, name: String, value: String) {
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value));
    }

    /// Checks the values with the shim's own parser, so a mistake gets exactly the message the
    /// shim would print, before the program starts rather than as a warning inside it; the
    /// rules file of `--config` too.
    pub fn validate(&self) -> Result<(), Fail> {
        let mut problems = config::parse(self.vars.iter().cloned()).problems;
        let file = self.vars.iter().find(|(k, _)| k == "SOCKTUNE_CONFIG");
        if let Some((_, path)) = file {
            problems.extend(match std::fs::read_to_string(path) {
                Ok(text) => rules::load(path, &text, &self.vars, None).problems,
                Err(e) => vec![rules::unreadable(path, &crate::describe(&e))],
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Fail::Usage(problems.join("\n")))
        }
    }
}

/// Splits one argument into flag name and inline value: `--ab=50` → (`--ab`, Some("50")).
pub fn split_inline(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) => (flag, Some(value)),
        None => (arg, None),
    }
}

/// The value of `flag`: its inline `=VALUE`, else the next argument, unless that is `--` (which
/// ends the flags, so it is never a value) or there is none.
pub fn value(
    args: &mut VecDeque<String>,
    flag: &str,
    inline: Option<&str>,
    meta: &str,
) -> Result<String, Fail> {
    if let Some(inline) = inline {
        return Ok(inline.to_string());
    }
    match args.front() {
        Some(next) if next != "--" => Ok(args.pop_front().unwrap_or_default()),
        _ => Err(Fail::Usage(format!("{flag} needs a value ({meta})"))),
    }
}

/// Consumes one settings flag (or `--lib`) at the front of `args`. Returns `Ok(false)` when the
/// front is not one of them, so the caller can try its own flags.
pub fn take(args: &mut VecDeque<String>, req: &mut Request) -> Result<bool, Fail> {
    let Some(front) = args.front() else {
        return Ok(false);
    };
    let (flag, inline) = split_inline(front);
    let (flag, inline) = (flag.to_string(), inline.map(str::to_string));
    let setting = SETTINGS.iter().find(|s| self::flag(s.name) == flag);
    if setting.is_none() && flag != "--lib" {
        return Ok(false);
    }
    args.pop_front();
    let mut value = |meta: &str| value(args, &flag, inline.as_deref(), meta);
    let Some(setting) = setting else {
        req.lib = Some(absolute(Path::new(&value("PATH")?))?);
        return Ok(true);
    };
    let value = match setting.arg {
        Arg::Switch => inline.unwrap_or_else(|| "1".into()),
        Arg::Value(meta) => value(meta)?,
        Arg::Path => absolute(Path::new(&value(placeholder(setting))?))?
            .to_string_lossy()
            .into_owned(),
    };
    req.set(setting.var(), value);
    Ok(true)
}

fn absolute(path: &Path) -> Result<PathBuf, Fail> {
    if path.as_os_str().is_empty() {
        return Err(Fail::Usage("an empty path was given".into()));
    }
    std::path::absolute(path)
        .map_err(|e| Fail::Usage(format!("{}: {}", path.display(), crate::describe(&e))))
}

/// The settings part of the help: one line per flag, wrapped.
pub fn help() -> String {
    let mut out = String::new();
    for s in SETTINGS {
        let synopsis = format!("{:<36}sets {}", synopsis(s), s.var());
        out += &crate::help::entry(&synopsis, &description(s));
    }
    out += &crate::help::entry(
        "--lib PATH",
        "the libsocktune.so to preload (default: beside this program, then ../lib, \
         ../lib/socktune, the Debian package's /usr/lib/x86_64-linux-gnu/socktune, /usr/local/lib, \
         /usr/lib, /usr/lib/x86_64-linux-gnu)",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str]) -> Result<Request, Fail> {
        let mut args: VecDeque<String> = args.iter().map(|s| s.to_string()).collect();
        let mut req = Request::default();
        while take(&mut args, &mut req)? {}
        assert!(args.is_empty(), "left over: {args:?}");
        Ok(req)
    }

    #[test]
    fn no_settings_flag_is_one_of_the_launchers_own() {
        for s in SETTINGS {
            let flag = flag(s.name);
            assert!(
                !["--lib", "--format", "--help"].contains(&flag.as_str()),
                "{flag}"
            );
        }
    }

    #[test]
    fn flags_map_to_variables() {
        let req = request(&[
            "--cork",
            "--quickack",
            "off",
            "--ab=50",
            "--cork-flush-ms",
            "5",
            "--nodelay=no",
        ])
        .unwrap();
        let want = [
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_QUICKACK", "off"),
            ("SOCKTUNE_AB", "50"),
            ("SOCKTUNE_CORK_FLUSH_MS", "5"),
            ("SOCKTUNE_NODELAY", "no"),
        ];
        let got: Vec<_> = req
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        req.validate().unwrap();
    }

    #[test]
    fn a_later_flag_overrides_an_earlier_one() {
        let req = request(&["--ab", "10", "--ab", "90"]).unwrap();
        assert_eq!(req.vars, [("SOCKTUNE_AB".to_string(), "90".to_string())]);
    }

    #[test]
    fn paths_become_absolute() {
        let req = request(&["--stats", "s.jsonl", "--lib", "x/libsocktune.so"]).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(req.vars[0].1, cwd.join("s.jsonl").to_string_lossy());
        assert_eq!(req.lib.unwrap(), cwd.join("x/libsocktune.so"));
    }

    #[test]
    fn bad_values_get_the_shims_message() {
        let Err(Fail::Usage(msg)) = request(&["--ab", "150"]).unwrap().validate() else {
            panic!("150% accepted");
        };
        assert!(msg.contains("SOCKTUNE_AB=\"150\" is not valid"), "{msg}");
    }

    #[test]
    fn a_value_flag_refuses_the_end_of_flags_or_nothing_as_its_value() {
        for args in [
            &["--fastopen", "--"][..],
            &["--fastopen"],
            &["--stats", "--"],
        ] {
            let mut args: VecDeque<String> = args.iter().map(|s| s.to_string()).collect();
            let flag = args[0].clone();
            let Err(Fail::Usage(msg)) = take(&mut args, &mut Request::default()) else {
                panic!("{flag}: a value was found in {args:?}");
            };
            assert!(msg.starts_with(&format!("{flag} needs a value (")), "{msg}");
        }
        let req = request(&["--fastopen=--"]).unwrap();
        assert_eq!(req.vars[0].1, "--", "an inline value is taken as given");
    }
}

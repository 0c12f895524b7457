//! The settings flags of `run` and `env`: one flag per `SOCKTUNE_*` variable, named after it
//! (`SOCKTUNE_CORK_FLUSH_MS` is `--cork-flush-ms`), so the variables stay the single source of
//! truth and the flags are only a way to set them.

use crate::config;
use crate::Fail;
use std::path::{Path, PathBuf};

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `--cork` sets the variable to 1; `--cork=off` gives any boolean form.
    Switch,
    /// `--backlog N` or `--backlog=N`; the text is the placeholder shown in the help.
    Value(&'static str),
    /// A file path, made absolute so that the program finds it whatever directory it runs in.
    Path(&'static str),
}

pub struct Setting {
    /// The variable without the `SOCKTUNE_` prefix.
    pub var: &'static str,
    pub arg: Arg,
    pub help: &'static str,
}

pub const SETTINGS: &[Setting] = &[
    Setting {
        var: "CORK",
        arg: Arg::Switch,
        help: "cork per response: each response leaves as full segments, flushed when the program \
               reads again, waits, or closes",
    },
    Setting {
        var: "DEFER_ACCEPT",
        arg: Arg::Value("SECS"),
        help: "TCP_DEFER_ACCEPT on listeners: accept() returns once the client has sent data \
               (0-3600; only for client-speaks-first protocols)",
    },
    Setting {
        var: "QUICKACK",
        arg: Arg::Value("off|on"),
        help: "off: ACKs ride on the next data (the request's ACK on the response) instead of \
               leaving at once",
    },
    Setting {
        var: "FASTOPEN",
        arg: Arg::Value("QLEN"),
        help: "server TCP Fast Open on listeners, with this queue length (needs bit 2 of \
               net.ipv4.tcp_fastopen)",
    },
    Setting {
        var: "FASTOPEN_CONNECT",
        arg: Arg::Switch,
        help: "client TCP Fast Open: the first write rides in the SYN once a cookie is cached \
               (needs bit 1 of net.ipv4.tcp_fastopen)",
    },
    Setting {
        var: "NODELAY",
        arg: Arg::Switch,
        help: "TCP_NODELAY on accepted and connected sockets",
    },
    Setting {
        var: "BACKLOG",
        arg: Arg::Value("N"),
        help: "replace the listen() backlog (the kernel clamps it to net.core.somaxconn)",
    },
    Setting {
        var: "PORTS",
        arg: Arg::Value("LIST"),
        help: "limit every behaviour to these ports, e.g. 80,8080,9000-9100 (local port for \
               server sides, remote port for client sides)",
    },
    Setting {
        var: "ROLE",
        arg: Arg::Value("server|client|both"),
        help: "which sides cork, quickack and nodelay apply to: accepted sockets, connected ones, \
               or both (default)",
    },
    Setting {
        var: "CORK_ROLE",
        arg: Arg::Value("server|client|both"),
        help: "--role for cork alone",
    },
    Setting {
        var: "QUICKACK_ROLE",
        arg: Arg::Value("server|client|both"),
        help: "--role for quickack alone",
    },
    Setting {
        var: "NODELAY_ROLE",
        arg: Arg::Value("server|client|both"),
        help: "--role for nodelay alone",
    },
    Setting {
        var: "CORK_FLUSH_MS",
        arg: Arg::Value("MS"),
        help: "the longest corked data waits when no response boundary comes (1-200, default 2)",
    },
    Setting {
        var: "LOG",
        arg: Arg::Value("error|info|debug"),
        help: "info prints the effective settings and one-time notices; debug every action",
    },
    Setting {
        var: "LOG_FILE",
        arg: Arg::Path("PATH"),
        help: "write log lines to this file instead of stderr",
    },
    Setting {
        var: "STATS",
        arg: Arg::Path("PATH"),
        help: "append one JSON line per TCP connection at close (TCP_INFO figures, arm, \
               behaviours); read it with `socktune report`",
    },
    Setting {
        var: "STATS_PROM",
        arg: Arg::Path("PATH"),
        help: "keep a Prometheus textfile of the process tree's counters (for node_exporter's \
               textfile collector)",
    },
    Setting {
        var: "AB",
        arg: Arg::Value("PCT"),
        help: "A/B split: PCT% of connections, picked at random, get the behaviours (arm B), the \
               rest none (arm A); recorded by --stats",
    },
];

impl Setting {
    /// `SOCKTUNE_CORK_FLUSH_MS` → `--cork-flush-ms`.
    pub fn flag(&self) -> String {
        format!("--{}", self.var.to_ascii_lowercase().replace('_', "-"))
    }

    pub fn env_name(&self) -> String {
        format!("{}{}", config::PREFIX, self.var)
    }

    /// `--cork[=BOOL]`, `--backlog N`: how the help shows it.
    pub fn synopsis(&self) -> String {
        match self.arg {
            Arg::Switch => format!("{}[=BOOL]", self.flag()),
            Arg::Value(meta) | Arg::Path(meta) => format!("{} {meta}", self.flag()),
        }
    }
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
    /// shim would print, before the program starts rather than as a warning inside it.
    pub fn validate(&self) -> Result<(), Fail> {
        let problems = config::parse(self.vars.iter().cloned()).problems;
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

/// Consumes one settings flag (or `--lib`) at the front of `args`. Returns `Ok(false)` when the
/// front is not one of them, so the caller can try its own flags.
pub fn take(
    args: &mut std::collections::VecDeque<String>,
    req: &mut Request,
) -> Result<bool, Fail> {
    let Some(front) = args.front() else {
        return Ok(false);
    };
    let (flag, inline) = split_inline(front);
    let (flag, inline) = (flag.to_string(), inline.map(str::to_string));
    let setting = SETTINGS.iter().find(|s| s.flag() == flag);
    if setting.is_none() && flag != "--lib" {
        return Ok(false);
    }
    args.pop_front();
    let mut value = |meta: &str| {
        inline
            .clone()
            .or_else(|| args.pop_front())
            .ok_or_else(|| Fail::Usage(format!("{flag} needs a value ({meta})")))
    };
    let Some(setting) = setting else {
        req.lib = Some(absolute(Path::new(&value("PATH")?))?);
        return Ok(true);
    };
    let value = match setting.arg {
        Arg::Switch => inline.unwrap_or_else(|| "1".into()),
        Arg::Value(meta) => value(meta)?,
        Arg::Path(meta) => absolute(Path::new(&value(meta)?))?
            .to_string_lossy()
            .into_owned(),
    };
    req.set(setting.env_name(), value);
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
        let synopsis = format!("{:<36}sets {}", s.synopsis(), s.env_name());
        out += &crate::help::entry(&synopsis, s.help);
    }
    out += &crate::help::entry(
        "--lib PATH",
        "the libsocktune.so to preload (default: beside this program, then ../lib, \
         ../lib/socktune, /usr/local/lib, /usr/lib, /usr/lib/x86_64-linux-gnu)",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn request(args: &[&str]) -> Result<Request, Fail> {
        let mut args: VecDeque<String> = args.iter().map(|s| s.to_string()).collect();
        let mut req = Request::default();
        while take(&mut args, &mut req)? {}
        assert!(args.is_empty(), "left over: {args:?}");
        Ok(req)
    }

    #[test]
    fn every_shim_variable_has_exactly_one_flag() {
        let mut vars: Vec<_> = SETTINGS.iter().map(|s| s.var).collect();
        vars.sort();
        let mut known: Vec<_> = config::SETTINGS.iter().map(|s| s.name).collect();
        known.sort();
        assert_eq!(vars, known);
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
        assert!(matches!(request(&["--backlog"]), Err(Fail::Usage(_))));
    }
}

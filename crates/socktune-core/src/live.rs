//! Live control (`socktune ctl`): the control file a process tree shares, and the settings
//! changes written into it. Plain Rust, no FFI: the library maps the file and reads it, the
//! launcher writes it, and both go through the layout and the checks here.
//!
//! The file is one page. A writer takes `flock` on it, makes the generation odd, writes the
//! live settings, and makes it even again; the library re-reads the settings only when the
//! generation it last applied changed, and keeps what it read only if the generation was the
//! same, and even, before and after.

use crate::config::{self, Kind, Part, SETTINGS};
use crate::record::COUNTER_SLOTS;

/// "socktct1" in the first word: anything else is not a control file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"socktct1");
pub const FILE_LEN: usize = 8192;

// Byte offsets of the fields; the words are 8-byte aligned for atomic access.
pub const GENERATION_AT: usize = 8;
/// The pid of the process that made the file (the root of the tree that shares it).
pub const PID_AT: usize = 16;
/// Lengths of the two texts, as u32s.
pub const START_LEN_AT: usize = 24;
pub const LIVE_LEN_AT: usize = 28;
/// The tree's counters (`record::COUNTER_SLOTS` words), kept while it records connections.
pub const COUNTERS_AT: usize = 64;
/// The pids of the tree's processes, u32s (0: a free slot). The last to exit removes the file;
/// one none of whose members lives was left by a tree killed by a signal, and the next process
/// to make its own file removes it.
pub const MEMBERS_AT: usize = 800;
pub const MEMBERS: usize = 56;
/// The `SOCKTUNE_*` variables the creating process started with, `NAME=value` lines.
pub const START_AT: usize = 1024;
pub const START_MAX: usize = 3072;
/// The live changes, `NAME=value` lines (names without the prefix).
pub const LIVE_AT: usize = START_AT + START_MAX;
pub const LIVE_MAX: usize = FILE_LEN - LIVE_AT;

const _: () =
    assert!(COUNTERS_AT + 8 * COUNTER_SLOTS <= MEMBERS_AT && MEMBERS_AT + 4 * MEMBERS <= START_AT);

/// The control file of process `pid` in `dir`.
pub fn file_name(pid: u32) -> String {
    format!("{pid}.ctl")
}

/// The directory of the control files: `$XDG_RUNTIME_DIR/socktune`, or `/run/socktune` for
/// root; none for another user without a runtime directory.
pub fn dir(euid: u32, xdg_runtime_dir: Option<&str>) -> Option<String> {
    if euid == 0 {
        return Some("/run/socktune".into());
    }
    xdg_runtime_dir
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/socktune", d.trim_end_matches('/')))
}

/// `NAME=value` lines, one per pair.
pub fn encode(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// The pairs of `encode`d text; a line without `=` is passed over.
pub fn decode(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The start-up variables with the live changes laid over them, each in its place (a live
/// `CORK=off` replaces `SOCKTUNE_CORK=1`).
pub fn laid_over(start: &[(String, String)], live: &[(String, String)]) -> Vec<(String, String)> {
    let live_vars = live
        .iter()
        .map(|(k, v)| (format!("{}{k}", config::PREFIX), v.clone()));
    let mut vars: Vec<(String, String)> = start
        .iter()
        .filter(|(k, _)| {
            !live
                .iter()
                .any(|(l, _)| k.strip_prefix(config::PREFIX) == Some(l))
        })
        .cloned()
        .collect();
    vars.extend(live_vars);
    vars
}

/// A `ctl set` argument, `cork=off` or `SOCKTUNE_CORK_FLUSH_MS=5` or `cork-flush-ms=5`: the
/// setting's name and the value, once the table's parser took it; otherwise the error line.
pub fn change(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!(
            "socktune ctl: {arg:?} is not KEY=VALUE (for example cork=off)"
        ));
    };
    let upper = key.trim().to_ascii_uppercase().replace('-', "_");
    let name = upper.strip_prefix(config::PREFIX).unwrap_or(&upper);
    let Some(setting) = SETTINGS.iter().find(|s| s.name == name) else {
        return Err(format!(
            "socktune ctl: unknown setting {key:?} (the names of `socktune --help`'s \
             SOCKTUNE_* variables, for example cork, quickack, ab)"
        ));
    };
    if setting.part == Part::Output || matches!(setting.kind, Kind::Path { .. }) {
        return Err(format!(
            "socktune ctl: {} cannot change live: the process reads it once, at start-up",
            setting.var()
        ));
    }
    let parsed = config::parse([(setting.var(), value.to_string())]);
    match parsed.problems.first() {
        Some(problem) => Err(problem.clone()),
        None => Ok((setting.name.to_string(), value.to_string())),
    }
}

/// The live changes after `changes`: each replaces an earlier change of the same setting.
pub fn merged(live: &[(String, String)], changes: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = live
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    out.extend(changes.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn effective(start: &[(String, String)], live: &[(String, String)]) -> Config {
        config::parse(laid_over(start, live)).config
    }

    #[test]
    fn a_live_change_replaces_the_start_up_value_of_its_setting() {
        let start = pairs(&[("SOCKTUNE_CORK", "1"), ("SOCKTUNE_NODELAY", "1")]);
        assert!(effective(&start, &[]).cork);
        let off = effective(&start, &pairs(&[("CORK", "off")]));
        assert!(!off.cork && off.nodelay);
        let ab = effective(&start, &pairs(&[("AB", "50")]));
        assert_eq!((ab.cork, ab.ab), (true, Some(50)));
    }

    #[test]
    fn changes_are_checked_by_the_settings_table() {
        assert_eq!(change("cork=off"), Ok(("CORK".into(), "off".into())));
        assert_eq!(
            change("SOCKTUNE_CORK_FLUSH_MS=5"),
            Ok(("CORK_FLUSH_MS".into(), "5".into()))
        );
        assert_eq!(change("cork-flush-ms=5").unwrap().0, "CORK_FLUSH_MS");
        assert_eq!(
            change("cork=maybe"),
            Err(
                "socktune: SOCKTUNE_CORK=\"maybe\" is not valid (accepted: 1/0, true/false, \
                 yes/no, on/off); cork-per-response is off"
                    .into()
            )
        );
        assert!(change("corks=1").unwrap_err().contains("unknown setting"));
        assert!(change("cork").unwrap_err().contains("not KEY=VALUE"));
        assert!(change("stats=/tmp/x")
            .unwrap_err()
            .contains("cannot change live"));
        // Every behaviour setting of the table can change: a value is judged by its parser.
        for s in SETTINGS.iter().filter(|s| s.part == Part::Behaviour) {
            let name = s.name.to_ascii_lowercase();
            match change(&format!("{name}=1")) {
                Ok((n, _)) => assert_eq!(n, s.name),
                Err(e) if matches!(s.kind, Kind::Path { .. }) => {
                    assert!(e.contains("cannot change live"), "{e}")
                }
                Err(e) => assert!(e.starts_with(&format!("socktune: {}=", s.var())), "{e}"),
            }
        }
    }

    #[test]
    fn later_changes_replace_earlier_ones_and_texts_round_trip() {
        let live = merged(
            &pairs(&[("CORK", "off"), ("AB", "50")]),
            &pairs(&[("CORK", "on")]),
        );
        assert_eq!(live, pairs(&[("AB", "50"), ("CORK", "on")]));
        assert_eq!(decode(&encode(&live)), live);
        assert_eq!(decode("junk\nCORK=1\n"), pairs(&[("CORK", "1")]));
    }

    #[test]
    fn root_and_users_have_their_own_directories() {
        assert_eq!(
            dir(0, Some("/run/user/0")).as_deref(),
            Some("/run/socktune")
        );
        assert_eq!(
            dir(1000, Some("/run/user/1000/")).as_deref(),
            Some("/run/user/1000/socktune")
        );
        assert_eq!(dir(1000, None), None);
        assert_eq!(dir(1000, Some("relative")), None);
    }
}

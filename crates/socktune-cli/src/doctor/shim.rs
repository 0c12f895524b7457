//! Version-manager shims: pyenv, rbenv, nodenv, goenv and jenv put on PATH a shell script that
//! ends in `exec "ROOT/libexec/TOOL" exec "$program" "$@"`. The tool's `which` subcommand names
//! the program the shim would run, without running it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A shim is a few hundred bytes; anything much larger is some other script.
const MAX_SHIM_BYTES: u64 = 64 * 1024;

/// `which` only reads the tool's version files, so a slow one is hung, not busy.
const WHICH_LIMIT: Duration = Duration::from_secs(3);

/// What a shim runs, as its tool names it.
pub struct Resolved {
    pub tool: String,
    pub program: PathBuf,
    /// The command that named it, for the user to rerun: `pyenv which python3`.
    pub asked: String,
}

/// The program the shim at `script` runs, or None if it is no shim or its tool cannot say.
pub fn resolve(script: &Path) -> Option<Resolved> {
    let size = std::fs::metadata(script).ok()?.len();
    if size > MAX_SHIM_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(script).ok()?;
    let tool_path = tool_of(&text)?;
    let tool = tool_path.file_name()?.to_str()?.to_string();
    // The shim asks its tool about `${0##*/}`: its own file name.
    let name = script.file_name()?.to_str()?;
    let out = output_within(Command::new(&tool_path).args(["which", name]), WHICH_LIMIT)?;
    let line = String::from_utf8(out).ok()?;
    let program = PathBuf::from(line.trim_end_matches('\n'));
    program.is_absolute().then(|| Resolved {
        asked: format!("{tool} which {name}"),
        tool,
        program,
    })
}

/// The tool a shim's text execs, `ROOT/libexec/TOOL` with TOOL ending in "env".
fn tool_of(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let quoted = line
            .trim()
            .strip_prefix("exec ")?
            .trim_start()
            .strip_prefix('"')?;
        let (tool, rest) = quoted.split_once('"')?;
        let runs_exec = rest.trim_start().starts_with("exec ");
        let tool = PathBuf::from(tool);
        let in_libexec = tool.parent()?.file_name()? == "libexec";
        let named_env = tool.file_name()?.to_str()?.ends_with("env");
        (runs_exec && in_libexec && named_env).then_some(tool)
    })
}

/// The stdout of `cmd`, if it exits successfully within `limit`; killed otherwise.
fn output_within(cmd: &mut Command, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    // A thread reads, so that a timeout can interrupt a read that never ends.
    let (sent, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        let _ = sent.send(buf);
    });
    let out = received.recv_timeout(limit).ok();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return out.filter(|_| status.success()),
            Ok(None) if out.is_some() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pyenv_shim_names_its_tool() {
        let shim = r#"#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="/root/.pyenv"
exec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"
"#;
        assert_eq!(
            tool_of(shim),
            Some(PathBuf::from("/root/.pyenv/libexec/pyenv"))
        );
    }

    #[test]
    fn other_scripts_are_no_shims() {
        for text in [
            "#!/bin/sh\nexec python3 \"$@\"\n",
            // Not a version manager: the tool's name does not end in "env".
            "#!/bin/sh\nexec \"/opt/x/libexec/tool\" exec \"$program\" \"$@\"\n",
            // Not in libexec.
            "#!/bin/sh\nexec \"/opt/x/bin/pyenv\" exec \"$program\" \"$@\"\n",
            // The tool runs, but not its exec subcommand.
            "#!/bin/sh\nexec \"/opt/x/libexec/pyenv\" \"$@\"\n",
        ] {
            assert_eq!(tool_of(text), None, "{text}");
        }
    }
}

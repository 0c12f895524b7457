//! Help text layout: a flag on its own line, its description wrapped below it.

const WIDTH: usize = 80;
const INDENT: &str = "        ";

/// One option: `  --flag ARG` then the description, wrapped at 80 columns.
pub fn entry(synopsis: &str, text: &str) -> String {
    let mut out = format!("  {synopsis}\n");
    for line in wrap(text, WIDTH - INDENT.len()) {
        out += &format!("{INDENT}{line}\n");
    }
    out
}

/// The words of `text` in lines of at most `width` (a longer word alone on its line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

pub const MAIN: &str = "\
socktune: TCP tuning for unmodified, dynamically linked Linux programs (LD_PRELOAD)

usage:
  socktune run [FLAGS] [--] CMD [ARGS...]   run CMD with libsocktune.so preloaded
  socktune env [FLAGS] [--format FORMAT]    print the variables, for shells, systemd, docker
  socktune doctor [CMD... | --pid PID]     what stands between a program and the gain
  socktune report STATS... [--svg PATH]     compare the arms of a --stats file
  socktune ctl PID|--all show|set K=V...|reset   show or change a running process's settings
  socktune help [COMMAND]                   this text, or a command's (also COMMAND --help)
  socktune -V|--version                     print socktune's version

Each flag sets one SOCKTUNE_* variable (--cork-flush-ms sets SOCKTUNE_CORK_FLUSH_MS); the
variables are what the library reads, so `socktune run --cork CMD` and
`LD_PRELOAD=.../libsocktune.so SOCKTUNE_CORK=1 CMD` are the same run. Variables already in the
environment are kept unless a flag overrides them. `socktune run --help` lists the flags.

exit status: run exits with CMD's status (it becomes CMD: same pid, signals); 2 for a usage
error or a bad value, 125 if the library cannot be found, 126 if CMD cannot be executed, 127 if
it is not found. doctor exits 1 when something blocks the preload. See socktune(1).
";

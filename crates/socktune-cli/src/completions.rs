//! The bash and zsh completions in completions/, made from the library's settings table so that
//! every flag `run` and `env` take is offered, with its values where they are words. A test
//! holds the files to the table (`SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli` rewrites
//! them); scripts/package.sh installs them.

use crate::config::{Arg, Setting, SETTINGS};
use crate::flags;

const COMMANDS: &str = "run env doctor report ctl help";
const HEADER: &str = "made from the settings table by crates/socktune-cli/src/completions.rs; \
                      rewrite with SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli";

/// The words a setting's value is one of (`server|client|both`), or none for a number or path.
fn choices(s: &Setting) -> Option<Vec<&'static str>> {
    match s.arg {
        Arg::Value(meta) if meta.contains('|') => Some(meta.split('|').collect()),
        _ => None,
    }
}

/// The flags of the settings whose value `kind` picks, then the launcher's own flags `own`.
fn flags_of(kind: impl Fn(Arg) -> bool, own: &[&str]) -> Vec<String> {
    let settings = SETTINGS.iter().filter(|s| kind(s.arg));
    let settings = settings.map(|s| flags::flag(s.name));
    settings.chain(own.iter().map(|f| f.to_string())).collect()
}

pub fn bash() -> String {
    let settings = flags_of(|_| true, &[]).join(" ");
    let words: String = SETTINGS
        .iter()
        .filter_map(|s| Some((flags::flag(s.name), choices(s)?.join(" "))))
        .map(|(flag, words)| format!("        {flag}) words=\"{words}\" ;;\n"))
        .collect();
    let paths = flags_of(|a| a == Arg::Path, &["--lib", "--svg"]).join(" | ");
    // Flags whose value is the next word, which is then not the command.
    let valued = flags_of(|a| a != Arg::Switch, &["--lib", "--svg", "--format"]).join(" | ");
    format!(
        r#"# bash completion for socktune, {HEADER}
_socktune() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} words= i
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{COMMANDS}" -- "$cur"))
        return
    fi
    case $prev in
{words}        --format) words="sh systemd docker" ;;
        {paths}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        {valued}) return ;;
    esac
    if [ -n "$words" ]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return
    fi
    case ${{COMP_WORDS[1]}} in
        run | env | doctor)
            # The command starts at the first word that is neither a flag nor a flag's value.
            for ((i = 2; i < COMP_CWORD; i++)); do
                case ${{COMP_WORDS[i]}} in
                    --) ((i++)); break ;;
                    {valued}) ((i++)) ;;
                    -*) ;;
                    *) break ;;
                esac
            done
            if [ "$i" -lt "$COMP_CWORD" ] && [ "${{COMP_WORDS[1]}}" != env ]; then
                declare -F _command_offset >/dev/null && _command_offset "$i"
            elif [[ $cur == -* ]]; then
                case ${{COMP_WORDS[1]}} in
                    run) words="{settings} --lib --help" ;;
                    env) words="{settings} --lib --format --help" ;;
                    doctor) words="--lib --help" ;;
                esac
                COMPREPLY=($(compgen -W "$words" -- "$cur"))
            elif [ "${{COMP_WORDS[1]}}" != env ]; then
                COMPREPLY=($(compgen -c -- "$cur"))
            fi
            ;;
        report) COMPREPLY=($(compgen -W "--svg --help" -- "$cur")) ;;
        ctl) COMPREPLY=($(compgen -W "--all show set reset --help" -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "{COMMANDS}" -- "$cur")) ;;
    esac
}}
complete -o bashdefault -o default -F _socktune socktune
"#
    )
}

/// One `_arguments` spec per setting: `--cork[sets SOCKTUNE_CORK]`, with the value's action.
fn zsh_spec(s: &Setting) -> String {
    let flag = flags::flag(s.name);
    let var = s.var();
    let meta = flags::placeholder(s).to_ascii_lowercase();
    match (s.arg, choices(s)) {
        (Arg::Switch, _) => format!("'{flag}[sets {var}]'"),
        (Arg::Path, _) => format!("'{flag}[sets {var}]:{meta}:_files'"),
        (Arg::Value(_), Some(words)) => {
            format!(
                "'{flag}[sets {var}]:{}:({})'",
                s.name.to_ascii_lowercase(),
                words.join(" ")
            )
        }
        (Arg::Value(_), None) => format!("'{flag}[sets {var}]:{meta}: '"),
    }
}

pub fn zsh() -> String {
    let specs: String = SETTINGS
        .iter()
        .map(|s| format!("    {}\n", zsh_spec(s)))
        .collect();
    format!(
        r#"#compdef socktune
# zsh completion for socktune, {HEADER}

local -a settings common
settings=(
{specs})
common=(
    '--lib[the libsocktune.so to preload]:path:_files'
    '(- *)'{{-h,--help}}'[show the help]'
)

_socktune() {{
    local curcontext=$curcontext state line
    _arguments -C '1:command:({COMMANDS})' '*::arg:->args'
    [[ $state == args ]] || return
    curcontext=${{curcontext%:*:*}}:socktune-$words[1]:
    case $words[1] in
        run) _arguments -S $settings $common '(-)1:command:_command_names -e' '*::arguments:_normal' ;;
        env) _arguments -S $settings $common '--format[the output form]:format:(sh systemd docker)' ;;
        doctor) _arguments -S $common '(-)1:command:_command_names -e' '*::arguments:_normal' ;;
        report) _arguments '--svg[write an SVG chart]:path:_files' '*:stats file:_files' ;;
        ctl) _arguments '1:process:(--all)' '2:action:(show set reset)' '*:setting:' ;;
        help) _arguments '1:command:({COMMANDS})' ;;
    esac
}}

_socktune "$@"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated;

    #[test]
    fn completions_are_the_tables() {
        generated::check("completions/socktune.bash", |_| bash());
        generated::check("completions/_socktune", |_| zsh());
    }

    #[test]
    fn every_flag_is_offered_with_its_words() {
        let (bash, zsh) = (bash(), zsh());
        for s in SETTINGS {
            let flag = flags::flag(s.name);
            let mut words = bash.split(|c: char| c.is_whitespace() || c == '"');
            assert!(words.any(|w| w == flag), "bash lacks {flag}");
            assert!(zsh.contains(&format!("'{flag}[")), "zsh lacks {flag}");
        }
        assert!(bash.contains("--role) words=\"server client both\""));
        assert!(zsh.contains("'--log[sets SOCKTUNE_LOG]:log:(error info debug)'"));
    }
}

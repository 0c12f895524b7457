//! The parts of the man pages made from the library's settings table: the settings flags of
//! docs/socktune.1 and the variables of docs/socktune.7. The rest of each page is written by
//! hand; a test holds the part between the markers to the table
//! (`SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli man` rewrites it).

use crate::config::{Arg, Setting, SETTINGS};
use crate::{flags, help};

/// Source lines of about this width; roff fills the text itself.
const WIDTH: usize = 96;

/// `page` with the text between the markers of `what` replaced by `entry` of each setting, or
/// `None` without the markers.
fn with_table(page: &str, what: &str, entry: fn(&Setting) -> String) -> Option<String> {
    let begin = format!(
        ".\\\" The {what}, down to the end marker, are made from the settings table:\n\
         .\\\" SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli man\n"
    );
    let end = format!(".\\\" End of the {what} made from the table.\n");
    let (head, rest) = page.split_once(&begin)?;
    let (_, tail) = rest.split_once(&end)?;
    let made: String = SETTINGS.iter().map(entry).collect();
    Some(format!("{head}{begin}{made}{end}{tail}"))
}

/// docs/socktune.1 with the table's flags.
pub fn with_settings(page: &str) -> Option<String> {
    with_table(page, "settings flags", entry)
}

/// docs/socktune.7 with the table's variables.
pub fn with_variables(page: &str) -> Option<String> {
    with_table(page, "variables", variable)
}

/// `.TP`, the variable, then what it does, what it takes and its launcher flag.
fn variable(s: &Setting) -> String {
    let text = format!(
        "{} Launcher flag: `{}`.",
        flags::description(s),
        flags::flag(s.name)
    );
    format!(".TP\n.B {}\n{}", s.var(), wrap(&roff(&text)))
}

/// `.TP`, the flag with its value, then the variable and what it does.
fn entry(s: &Setting) -> String {
    let flag = roff(&flags::flag(s.name));
    let meta = flags::placeholder(s);
    let synopsis = match s.arg {
        Arg::Switch => format!(".BR {flag} [ =\\fI{meta}\\fR ]"),
        // Literal words in roman (`off|on`), a placeholder in italics (`secs`).
        Arg::Value(_) if meta.bytes().any(|b| b.is_ascii_lowercase()) => {
            format!(".BR {flag} \" {meta}\"")
        }
        Arg::Value(_) | Arg::Path => format!(".BI {flag} \" {}\"", meta.to_ascii_lowercase()),
    };
    let text = format!("{}: {}", s.var(), flags::description(s));
    format!(".TP\n{synopsis}\n{}", wrap(&roff(&text)))
}

/// Escapes for roff: a backslash, a hyphen as the minus a flag is typed with, and `code` in bold.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("\\fB{part}\\fR")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// Lines of about WIDTH; one starting with a dot or quote, which roff would take for a request,
/// is guarded with `\&`.
fn wrap(text: &str) -> String {
    let guard = |line: String| {
        let guard = if line.starts_with(['.', '\'']) {
            "\\&"
        } else {
            ""
        };
        format!("{guard}{line}\n")
    };
    help::wrap(text, WIDTH).into_iter().map(guard).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated;

    #[test]
    fn man_page_settings_are_the_tables() {
        generated::check("docs/socktune.1", |page| {
            with_settings(page).expect("docs/socktune.1 lacks the settings markers")
        });
    }

    #[test]
    fn man_page_variables_are_the_tables() {
        generated::check("docs/socktune.7", |page| {
            with_variables(page).expect("docs/socktune.7 lacks the variables markers")
        });
    }

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(
            roff(r"a-b \n `socktune report`"),
            r"a\-b \en \fBsocktune report\fR"
        );
        assert_eq!(wrap(".so x"), "\\&.so x\n");
    }
}

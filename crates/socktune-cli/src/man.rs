//! The settings flags of the man page, made from the library's settings table. The rest of
//! docs/socktune.1 is written by hand; a test holds the part between the markers to the table
//! (`SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli man` rewrites it).

use crate::config::{Arg, Setting, SETTINGS};
use crate::{flags, help};

const BEGIN: &str = concat!(
    ".\\\" The settings flags, down to the end marker, are made from the settings table:\n",
    ".\\\" SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli man\n",
);
const END: &str = ".\\\" End of the settings flags made from the table.\n";
/// Source lines of about this width; roff fills the text itself.
const WIDTH: usize = 96;

/// `page` with the text between the markers replaced by the table's flags, or `None` without
/// the markers.
pub fn with_settings(page: &str) -> Option<String> {
    let (head, rest) = page.split_once(BEGIN)?;
    let (_, tail) = rest.split_once(END)?;
    let flags: String = SETTINGS.iter().map(entry).collect();
    Some(format!("{head}{BEGIN}{flags}{END}{tail}"))
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

    #[test]
    fn man_page_settings_are_the_tables() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/socktune.1");
        let page = std::fs::read_to_string(path).unwrap();
        let made = with_settings(&page).expect("docs/socktune.1 lacks the settings markers");
        if std::env::var_os("SOCKTUNE_UPDATE_DOCS").is_some_and(|v| v == "1") {
            std::fs::write(path, &made).unwrap();
        } else {
            assert!(
                page == made,
                "docs/socktune.1 differs from the settings table; rewrite it with \
                 SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli man"
            );
        }
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

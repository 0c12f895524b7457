//! Files kept in the repository but made from the settings table (the man pages' tables, the
//! shell completions): a test holds each to what the table makes, and
//! `SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli` rewrites them instead.

/// Checks the file at `path` (from the repository root) against `make` of its current text, or
/// writes what `make` gives when SOCKTUNE_UPDATE_DOCS=1. A missing file reads as empty.
pub fn check(path: &str, make: impl FnOnce(&str) -> String) {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_default();
    let made = make(&text);
    if std::env::var_os("SOCKTUNE_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&full, &made).unwrap();
    } else {
        assert!(
            text == made,
            "{path} differs from the settings table; rewrite it with \
             SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli"
        );
    }
}

//! The README's settings table names every setting of the library's table, and nothing else:
//! under `## Settings`, the first cell of each row of the first table is one variable in
//! backticks, such as `` `SOCKTUNE_CORK=1` `` or `` `SOCKTUNE_PORTS=LIST` ``.
use socktune_core::config::{Kind, SETTINGS};
use std::collections::BTreeSet;
use std::path::Path;

/// What is wrong with the settings table of the markdown in `readme`, if anything.
fn check(readme: &str) -> Result<(), String> {
    let section = readme
        .split("\n## ")
        .find_map(|s| s.strip_prefix("Settings\n"))
        .ok_or("no `## Settings` section")?;
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and the |---| line
        .collect();
    if rows.is_empty() {
        return Err("no table rows under `## Settings`".into());
    }
    let mut named = BTreeSet::new();
    let mut unreadable = Vec::new();
    let mut misranged = Vec::new();
    for row in rows {
        match variable(first_cell(row)) {
            Some(name) => {
                named.insert(name.to_string());
                misranged.extend(range_problem(name, row));
            }
            None => unreadable.push(row),
        }
    }
    let settings: BTreeSet<String> = SETTINGS.iter().map(|s| s.var()).collect();
    let missing: Vec<&String> = settings.difference(&named).collect();
    let extra: Vec<&String> = named.difference(&settings).collect();
    let problems: Vec<String> = [
        (!missing.is_empty()).then(|| format!("lacks {missing:?}")),
        (!extra.is_empty()).then(|| format!("names {extra:?}, which are no settings")),
        (!unreadable.is_empty()).then(|| {
            format!("has rows whose first cell is not one `SOCKTUNE_NAME[=...]`: {unreadable:?}")
        }),
        (!misranged.is_empty()).then(|| misranged.join("; ")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("the `## Settings` table {}", problems.join("; ")))
    }
}

/// The text up to the first pipe that markdown does not escape (`\|`), after the leading one.
fn first_cell(row: &str) -> &str {
    let cells = &row[1..];
    let mut escaped = false;
    for (i, c) in cells.char_indices() {
        match c {
            '|' if !escaped => return &cells[..i],
            _ => escaped = c == '\\' && !escaped,
        }
    }
    cells
}

/// What a row's numeric range (`1–3600`) gets wrong against the settings table, if it has one:
/// other bounds, or no word that 0 switches the setting off where it does.
fn range_problem(var: &str, row: &str) -> Option<String> {
    let setting = SETTINGS.iter().find(|s| s.var() == var)?;
    let Kind::Number {
        min,
        max,
        zero_is_off,
        ..
    } = setting.kind
    else {
        return None;
    };
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (before, after) = row.split_once('–')?;
    let low = digits(&before[before.trim_end_matches(|c: char| c.is_ascii_digit()).len()..]);
    let high = digits(
        &after[..after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len()],
    );
    let want = format!("{min}–{max}");
    if format!("{low}–{high}") != want {
        Some(format!("{var} says {low}–{high}, the table {want}"))
    } else if zero_is_off && !row.contains("0 is off") {
        Some(format!("{var} does not say that 0 is off"))
    } else {
        None
    }
}

/// `SOCKTUNE_CORK` from `` `SOCKTUNE_CORK=1` ``: a cell holding one code span and nothing else.
fn variable(cell: &str) -> Option<&str> {
    let code = cell.trim().strip_prefix('`')?.strip_suffix('`')?;
    if code.contains('`') {
        return None;
    }
    let name = code.split('=').next()?;
    let plain = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    (name.starts_with("SOCKTUNE_") && name.bytes().all(plain)).then_some(name)
}

#[test]
fn readme_settings_table_names_every_setting() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    if let Err(problem) = check(&readme.unwrap()) {
        panic!("README.md: {problem}");
    }
}

/// The check itself, on a made-up README written to a file as the real one is read.
#[test]
fn the_check_names_missing_extra_and_unreadable_rows() {
    let row = |s: &socktune_core::config::Setting| format!("| `{}=x\\|y` | off | ... |\n", s.var());
    let table: String = SETTINGS.iter().map(row).collect();
    let readme = |rows: &str| {
        format!(
            "# socktune\n\n## Settings\n\nIntro.\n\n| Variable | Default | Behaviour |\n\
             |---|---|---|\n{rows}\nText.\n\n### More\n\n| `SOCKTUNE_OTHER_TABLE` | x |\n\n\
             ## Next\n\n| `SOCKTUNE_LATER` | x |\n"
        )
    };
    let file = std::env::temp_dir().join(format!("socktune-readme-{}.md", std::process::id()));
    let checked = |text: String| {
        std::fs::write(&file, text).unwrap();
        check(&std::fs::read_to_string(&file).unwrap())
    };
    assert_eq!(checked(readme(&table)), Ok(()));

    let last = SETTINGS.last().unwrap().var();
    let without_last = &table[..table.rfind("| `").unwrap()];
    let odd = format!(
        "{without_last}| `SOCKTUNE_TRIAL=1` | off | ... |\n| `SOCKTUNE_A`, `SOCKTUNE_B` | x | x |\n"
    );
    let problem = checked(readme(&odd)).unwrap_err();
    assert!(
        problem.contains(&format!("lacks [\"{last}\"]")),
        "{problem}"
    );
    assert!(problem.contains("names [\"SOCKTUNE_TRIAL\"]"), "{problem}");
    assert!(problem.contains("`SOCKTUNE_A`, `SOCKTUNE_B`"), "{problem}");
    assert_eq!(check("# x\n"), Err("no `## Settings` section".into()));

    // A range must be the table's, and say so where 0 is off.
    let fastopen_row = |behaviour: &str| {
        let var = "SOCKTUNE_FASTOPEN";
        table.replace(
            &row(SETTINGS.iter().find(|s| s.var() == var).unwrap()),
            &format!("| `{var}=QLEN` | off | {behaviour} |\n"),
        )
    };
    let problem = checked(readme(&fastopen_row("Fast Open (0–65535)."))).unwrap_err();
    assert!(
        problem.contains("SOCKTUNE_FASTOPEN says 0–65535, the table 1–65535"),
        "{problem}"
    );
    let problem = checked(readme(&fastopen_row("Fast Open (1–65535)."))).unwrap_err();
    assert!(problem.contains("does not say that 0 is off"), "{problem}");
    assert_eq!(
        checked(readme(&fastopen_row("Fast Open (1–65535, 0 is off)."))),
        Ok(())
    );
    std::fs::remove_file(&file).unwrap();
}

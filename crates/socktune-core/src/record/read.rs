//! Reading records back (the `reader` feature, for the launcher's report): into the same types
//! the library writes, with serde_json, which the library itself never links.

use super::{
    behaviour_name, Applied, Conn, Named, Process, BEHAVIOURS, CONN_TYPE, PROCESS_TYPE, VERSION,
};
use serde::de::{Deserialize, Deserializer, Error};
use serde_json::Value;

/// What one line of a stats file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Conn(Conn),
    Process(Process),
    /// A line of another type, for other readers.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// `None`: not a valid record (a line cut short by a crash, another format).
    pub line: Option<Line>,
    /// The line is of a later format version than `VERSION`.
    pub newer: bool,
}

pub fn read(text: &str) -> Read {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Read {
            line: None,
            newer: false,
        };
    };
    let newer = value
        .get("v")
        .and_then(Value::as_u64)
        .is_some_and(|v| v > VERSION);
    let line = match value.get("type").and_then(Value::as_str) {
        Some(CONN_TYPE) => Conn::deserialize(value).ok().map(Line::Conn),
        Some(PROCESS_TYPE) => Process::deserialize(value).ok().map(Line::Process),
        _ => Some(Line::Other),
    };
    Read { line, newer }
}

/// `"ts"`: seconds with six decimals. The whole seconds and the fraction are taken apart because
/// an f64 holds today's times only to 2^-22 s: rounding the fraction finds the microsecond written.
pub(super) fn micros<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let secs = f64::deserialize(d)?;
    Ok(secs.trunc() as u64 * 1_000_000 + (secs.fract() * 1e6).round() as u64)
}

/// A name that is always written (`"role"`, `"end"`).
pub(super) fn name<'de, D: Deserializer<'de>, T: Named>(d: D) -> Result<Option<T>, D::Error> {
    named(&String::deserialize(d)?).map(Some)
}

/// A name or null (the `"arm"` of a run without a split).
pub(super) fn name_or_null<'de, D: Deserializer<'de>, T: Named>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|n| named(&n))
        .transpose()
}

fn named<T: Named, E: Error>(name: &str) -> Result<T, E> {
    T::named(name).ok_or_else(|| E::custom(format_args!("unknown name {name:?}")))
}

/// `"behaviours"`: names from [`behaviour_name`], as their bits. One this reader does not know is no
/// reason to lose the connection, so it is passed over.
pub(super) fn behaviours<'de, D: Deserializer<'de>>(d: D) -> Result<Applied, D::Error> {
    let bits = Vec::<String>::deserialize(d)?
        .iter()
        .filter_map(|n| (0..BEHAVIOURS).position(|i| behaviour_name(i) == n.as_str()))
        .fold(0, |bits, i| bits | 1 << i);
    Ok(Applied(bits))
}

#[cfg(test)]
mod tests {
    use super::super::tests::every_field;
    use super::super::{process_line, Arm, End, Side};
    use super::*;

    fn back(text: &str) -> Line {
        read(text)
            .line
            .unwrap_or_else(|| panic!("not read: {text}"))
    }

    #[test]
    fn a_connection_reads_back_as_written() {
        let every = every_field();
        let unsplit = Conn {
            side: Some(Side::Server),
            arm: None,
            applied: Applied(0),
            syn_data: false,
            end: Some(End::Close),
            ..every.clone()
        };
        let arm_a = Conn {
            arm: Some(Arm::A),
            ..unsplit.clone()
        };
        for c in [every, unsplit, arm_a] {
            assert_eq!(back(&c.to_string()), Line::Conn(c));
        }
    }

    #[test]
    fn every_behaviour_and_timestamp_survives() {
        for i in 0..BEHAVIOURS {
            let c = Conn {
                applied: Applied(1 << i),
                ..Conn::default()
            };
            let Line::Conn(read) = back(&c.to_string()) else {
                panic!("{c}");
            };
            assert_eq!(read.applied, c.applied, "{c}");
        }
        // Through 2100, where an f64 is coarsest for these.
        for ts_us in [0, 1, 999_999, 1_763_856_000_999_999, 4_102_444_799_999_999] {
            let c = Conn {
                ts_us,
                ..Conn::default()
            };
            let Line::Conn(read) = back(&c.to_string()) else {
                panic!("{c}");
            };
            assert_eq!(read.ts_us, ts_us, "{c}");
        }
    }

    #[test]
    fn a_record_without_side_or_end_reads_back_as_written_for_a_closed_server() {
        assert_eq!(
            back(&Conn::default().to_string()),
            Line::Conn(Conn {
                side: Some(Side::Server),
                end: Some(End::Close),
                ..Conn::default()
            })
        );
    }

    #[test]
    fn the_process_line_reads_back_as_written() {
        assert_eq!(
            back(&process_line(1_763_856_000_000_042, 7, 12, 3)),
            Line::Process(Process {
                ts_us: 1_763_856_000_000_042,
                pid: 7,
                connections: 12,
                dropped: 3,
            })
        );
    }

    #[test]
    fn lines_of_other_types_and_versions_are_told_apart_from_broken_ones() {
        let line = Conn::default().to_string();
        let later = line.replace("\"v\":1,", "\"v\":2,");
        assert_eq!(
            read(&later),
            Read {
                line: Some(back(&line)),
                newer: true
            }
        );
        let extra = line.replace("\"behaviours\":[]", "\"behaviours\":[\"later\"],\"new\":1");
        assert_eq!(back(&extra), back(&line));
        assert_eq!(back(r#"{"type":"future","v":1}"#), Line::Other);
        assert_eq!(back(r#"{"v":1}"#), Line::Other);
        for broken in [
            &line[..line.len() / 2],
            &line.replace("\"server\"", "\"serv\""),
            &line.replace(",\"pid\":0", ""),
        ] {
            assert_eq!(read(broken).line, None, "{broken}");
        }
    }
}

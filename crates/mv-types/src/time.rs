//! Time: stored as UTC milliseconds since the Unix epoch; read from and printed for
//! people in local time. This module is the one date-time parser of every tool
//! (`zmrestore -restoreToTime`, `zmplayredo --fromTime`, `zmbackupquery --from`, ...).
//!
//! Accepted formats (local time), exactly the nine the original tools accept:
//! `2010/11/19 13:55:08`, `2010/11/19 13:55:08 802`, `2010/11/19 13:55:08.802`,
//! `2010/11/19-13:55:08-802`, `2010/11/19-13:55:08`, `20101119.135508.802`,
//! `20101119.135508`, `20101119135508802`, `20101119135508`.

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::fmt;

/// The accepted formats, for the help of every tool taking a time.
pub const FORMATS_HELP: &str = "Times are local time, in any of these forms:
  2010/11/19 13:55:08       2010/11/19 13:55:08 802    2010/11/19 13:55:08.802
  2010/11/19-13:55:08-802   2010/11/19-13:55:08        20101119.135508.802
  20101119.135508           20101119135508802          20101119135508";

/// A point in time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct UtcMillis(pub i64);

impl UtcMillis {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    fn utc(self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    fn local(self) -> DateTime<Local> {
        self.utc().with_timezone(&Local)
    }

    /// `20101119.135508.802` in UTC: the stamp inside backup labels and archived
    /// redo log names.
    pub fn label_stamp(self) -> String {
        self.utc().format("%Y%m%d.%H%M%S%.3f").to_string()
    }

    /// Parses a label stamp (`20101119.135508.802`, UTC) back.
    pub fn from_label_stamp(s: &str) -> Result<Self, TimeParseError> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d.%H%M%S%.3f")
            .map_err(|_| TimeParseError::new(s))?;
        if s.len() != 19 {
            return Err(TimeParseError::new(s));
        }
        Ok(Self(naive.and_utc().timestamp_millis()))
    }

    /// `2010/11/19 11:21:30.852 +01:00` in local time: how redo dumps print times.
    pub fn display_local(self) -> String {
        self.local().format("%Y/%m/%d %H:%M:%S%.3f %Z").to_string()
    }

    /// `Thu, 2014/06/05 01:00:23.296 +01:00` in local time: how backup queries print times.
    pub fn display_local_with_weekday(self) -> String {
        self.local()
            .format("%a, %Y/%m/%d %H:%M:%S%.3f %Z")
            .to_string()
    }

    /// `Mon, 07 Dec 2026 04:05:06 +0100` in local time: RFC 5322's date-time,
    /// as trace headers carry it.
    pub fn rfc5322(self) -> String {
        self.local().format("%a, %d %b %Y %H:%M:%S %z").to_string()
    }

    /// RFC 3339 in UTC, for JSON output.
    pub fn rfc3339(self) -> String {
        self.utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Parses a user-supplied time in local time (see module docs for the formats).
    pub fn parse_local(s: &str) -> Result<Self, TimeParseError> {
        Self::parse_in(s, &Local)
    }

    /// Parses a user-supplied time in the given time zone. The CLI uses local time;
    /// tests pin a zone.
    pub fn parse_in<Tz: TimeZone>(s: &str, tz: &Tz) -> Result<Self, TimeParseError> {
        let naive = parse_naive(s.trim()).ok_or_else(|| TimeParseError::new(s))?;
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => Ok(Self(t.timestamp_millis())),
            // In the repeated hour when clocks go back, take the earlier instant: a
            // restore point must never be later than what the administrator meant.
            LocalResult::Ambiguous(a, b) => {
                Ok(Self(a.timestamp_millis().min(b.timestamp_millis())))
            }
            LocalResult::None => Err(TimeParseError {
                input: s.to_string(),
                reason: "that local time does not exist (clocks moved forward)",
            }),
        }
    }
}

/// A day as Zimbra's search takes it (`after:`, `before:`, `date:`): `MM/DD/YYYY`,
/// `YYYY/MM/DD`, `today`, `yesterday`, or relative to `today` such as `-1day`,
/// `+2weeks`, `-3months`, `-1year` (units `d`/`day`/`days`, `w`/`week`/`weeks`,
/// `m`/`month`/`months`, `y`/`year`/`years`).
pub fn search_day(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "today" => return Some(today),
        "yesterday" => return today.pred_opt(),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        let sign: i64 = if s.starts_with('-') { -1 } else { 1 };
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let n: i64 = rest[..digits].parse().ok()?;
        let n = sign * n;
        return match &rest[digits..] {
            "d" | "day" | "days" => today.checked_add_signed(chrono::Duration::days(n)),
            "w" | "week" | "weeks" => today.checked_add_signed(chrono::Duration::weeks(n)),
            "m" | "month" | "months" => add_months(today, n),
            "y" | "year" | "years" => add_months(today, n.checked_mul(12)?),
            _ => None,
        };
    }
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() != 3 {
        return None;
    }
    let (y, m, d) = if parts[0].len() == 4 {
        (parts[0], parts[1], parts[2])
    } else {
        (parts[2], parts[0], parts[1])
    };
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

fn add_months(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    let m = chrono::Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n < 0 {
        d.checked_sub_months(m)
    } else {
        d.checked_add_months(m)
    }
}

/// The instant a local day starts.
pub fn local_midnight(day: NaiveDate) -> Option<UtcMillis> {
    UtcMillis::parse_local(&day.format("%Y/%m/%d 00:00:00").to_string()).ok()
}

impl fmt::Display for UtcMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_local())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {input:?}: {reason}; use one of: \"2010/11/19 13:55:08\", \"2010/11/19 13:55:08 802\", \
     \"2010/11/19 13:55:08.802\", \"2010/11/19-13:55:08-802\", \"2010/11/19-13:55:08\", \
     \"20101119.135508.802\", \"20101119.135508\", \"20101119135508802\", \"20101119135508\" (local time)"
)]
pub struct TimeParseError {
    pub input: String,
    pub reason: &'static str,
}

impl TimeParseError {
    fn new(input: &str) -> Self {
        Self {
            input: input.chars().take(80).collect(),
            reason: "not a recognised date-time",
        }
    }
}

/// Splits the input into its digit groups and the separators between them, then
/// matches one of the nine shapes. Hand-written because the nine shapes mix
/// separators in ways strftime patterns cannot express in one pattern each without
/// also accepting variants the original rejects.
fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(range)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    // (year, month, day, hour, minute, second, millis)
    let fields: (u32, u32, u32, u32, u32, u32, u32) = if b.len() >= 10 && b[4] == b'/' {
        // 2010/11/19{ |-}13:55:08[{ |.|-}802]
        if b.len() < 19 || b[7] != b'/' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let sep = b[10];
        if sep != b' ' && sep != b'-' {
            return None;
        }
        let millis = match b.len() {
            19 => 0,
            23 => {
                let msep = b[19];
                let ok = match sep {
                    b' ' => msep == b' ' || msep == b'.',
                    _ => msep == b'-',
                };
                if !ok {
                    return None;
                }
                digits(20..23)?
            }
            _ => return None,
        };
        (
            digits(0..4)?,
            digits(5..7)?,
            digits(8..10)?,
            digits(11..13)?,
            digits(14..16)?,
            digits(17..19)?,
            millis,
        )
    } else if b.len() >= 15 && b[8] == b'.' {
        // 20101119.135508[.802]
        let millis = match b.len() {
            15 => 0,
            19 if b[15] == b'.' => digits(16..19)?,
            _ => return None,
        };
        (
            digits(0..4)?,
            digits(4..6)?,
            digits(6..8)?,
            digits(9..11)?,
            digits(11..13)?,
            digits(13..15)?,
            millis,
        )
    } else {
        // 20101119135508[802]
        let millis = match b.len() {
            14 => 0,
            17 => digits(14..17)?,
            _ => return None,
        };
        (
            digits(0..4)?,
            digits(4..6)?,
            digits(6..8)?,
            digits(8..10)?,
            digits(10..12)?,
            digits(12..14)?,
            millis,
        )
    };
    let (y, mo, d, h, mi, sec, ms) = fields;
    NaiveDate::from_ymd_opt(y as i32, mo, d)?.and_hms_milli_opt(h, mi, sec, ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        UtcMillis::parse_in(s, &Utc).unwrap().0
    }

    #[test]
    fn all_nine_formats_parse_to_the_same_instant() {
        let with_ms = 1_290_174_908_802; // 2010-11-19T13:55:08.802Z
        for s in [
            "2010/11/19 13:55:08 802",
            "2010/11/19 13:55:08.802",
            "2010/11/19-13:55:08-802",
            "20101119.135508.802",
            "20101119135508802",
        ] {
            assert_eq!(utc(s), with_ms, "{s}");
        }
        for s in [
            "2010/11/19 13:55:08",
            "2010/11/19-13:55:08",
            "20101119.135508",
            "20101119135508",
        ] {
            assert_eq!(utc(s), with_ms - 802, "{s}");
        }
    }

    #[test]
    fn rejects_garbage_with_a_message_listing_the_formats() {
        for s in [
            "",
            "yesterday",
            "2010/13/19 13:55:08",
            "2010/11/19 25:55:08",
            "2010/11/19-13:55:08.802",
            "2010/11/19 13:55:08-802",
            "20101119.1355",
            "2010111913550",
            "٢٠١٠١١١٩١٣٥٥٠٨",
        ] {
            let err = UtcMillis::parse_in(s, &Utc).unwrap_err();
            assert!(
                err.to_string().contains("20101119.135508.802"),
                "{s}: {err}"
            );
        }
    }

    #[test]
    fn label_stamp_round_trips() {
        let t = UtcMillis(1_290_174_908_802);
        assert_eq!(t.label_stamp(), "20101119.135508.802");
        assert_eq!(
            UtcMillis::from_label_stamp("20101119.135508.802").unwrap(),
            t
        );
        assert!(UtcMillis::from_label_stamp("20101119.135508").is_err());
    }

    #[test]
    fn parses_in_a_fixed_offset_zone() {
        let cst = chrono::FixedOffset::west_opt(6 * 3600).unwrap();
        let t = UtcMillis::parse_in("2010/11/19 11:21:30.852", &cst).unwrap();
        assert_eq!(t.0, 1_290_187_290_852);
    }
}

#[cfg(test)]
mod search_day_tests {
    use super::*;

    #[test]
    fn relative_and_absolute_search_days() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        let d = |s: &str| search_day(s, today).map(|d| d.to_string());
        assert_eq!(d("today").as_deref(), Some("2026-03-31"));
        assert_eq!(d("yesterday").as_deref(), Some("2026-03-30"));
        assert_eq!(d("-1day").as_deref(), Some("2026-03-30"));
        assert_eq!(d("-2weeks").as_deref(), Some("2026-03-17"));
        assert_eq!(d("-1month").as_deref(), Some("2026-02-28"));
        assert_eq!(d("+1y").as_deref(), Some("2027-03-31"));
        assert_eq!(d("12/05/2026").as_deref(), Some("2026-12-05"));
        assert_eq!(d("2026/12/05").as_deref(), Some("2026-12-05"));
        assert_eq!(d("-1fortnight"), None);
        assert_eq!(d("13/45/2026"), None);
    }
}

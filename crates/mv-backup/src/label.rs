//! Session labels: `full-YYYYMMDD.HHMMSS.mmm` and `incr-YYYYMMDD.HHMMSS.mmm`, the
//! session's start time in UTC (as in the original).

use crate::error::{BackupError, Result};
use mv_types::UtcMillis;
use std::fmt;
use std::str::FromStr;

/// Full or incremental.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Full,
    Incremental,
}

impl SessionKind {
    /// The word in session.xml and in `zmbackupquery` output.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Full => "full",
            SessionKind::Incremental => "incremental",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            SessionKind::Full => "full",
            SessionKind::Incremental => "incr",
        }
    }
}

impl FromStr for SessionKind {
    type Err = BackupError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(SessionKind::Full),
            "incremental" | "incr" => Ok(SessionKind::Incremental),
            _ => Err(BackupError::Invalid(format!(
                "invalid backup type {s:?}: use full or incremental"
            ))),
        }
    }
}

/// A session label. Ordered by start time (a full before an incremental of the same
/// millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label {
    pub kind: SessionKind,
    pub start: UtcMillis,
}

impl Label {
    pub fn new(kind: SessionKind, start: UtcMillis) -> Label {
        Label { kind, start }
    }

    /// Parses a label; `None` for any other name (TO_DELETE-..., stray files).
    pub fn parse(s: &str) -> Option<Label> {
        let (prefix, stamp) = s.split_once('-')?;
        let kind = match prefix {
            "full" => SessionKind::Full,
            "incr" => SessionKind::Incremental,
            _ => return None,
        };
        let start = UtcMillis::from_label_stamp(stamp).ok()?;
        Some(Label { kind, start })
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.start, self.kind).cmp(&(other.start, other.kind))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.prefix(), self.start.label_stamp())
    }
}

impl FromStr for Label {
    type Err = BackupError;
    fn from_str(s: &str) -> Result<Self> {
        Label::parse(s).ok_or_else(|| {
            BackupError::Invalid(format!(
                "invalid backup label {s:?}: expected full-YYYYMMDD.HHMMSS.mmm or incr-YYYYMMDD.HHMMSS.mmm"
            ))
        })
    }
}

impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_order() {
        let t = UtcMillis(1_401_955_223_296);
        let full = Label::new(SessionKind::Full, t);
        assert_eq!(full.to_string(), "full-20140605.080023.296");
        assert_eq!(Label::parse("full-20140605.080023.296"), Some(full));
        let incr: Label = "incr-20140605.080023.296".parse().unwrap();
        assert!(full < incr);
        assert!(Label::parse("TO_DELETE-full-20140605.080023.296").is_none());
        assert!(Label::parse("full-2014").is_none());
        assert!("nope".parse::<Label>().is_err());
    }
}

//! Just enough vCard and iCalendar reading for the store: a contact's display name,
//! and an appointment's UID, SEQUENCE, DTSTAMP and SUMMARY, which decide whether an
//! imported event replaces the one already stored (the seed's calendar complaint).
//! The text itself is stored as given. Hand-written: these are five properties of
//! two line-based formats, and a full parser would add build time for nothing.

use mv_types::UtcMillis;

/// Unfolds RFC 5545/6350 content lines (a line starting with a space or tab
/// continues the previous one) and yields (NAME, params, value).
fn content_lines(text: &str) -> Vec<(String, String, String)> {
    let mut logical: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line.strip_prefix([' ', '\t'])
            && let Some(last) = logical.last_mut()
        {
            last.push_str(rest);
            continue;
        }
        logical.push(line.to_string());
    }
    logical
        .into_iter()
        .filter_map(|l| {
            let (head, value) = l.split_once(':')?;
            let (name, params) = head.split_once(';').unwrap_or((head, ""));
            Some((
                name.trim().to_ascii_uppercase(),
                params.to_string(),
                value.to_string(),
            ))
        })
        .collect()
}

fn unescape(v: &str) -> String {
    v.replace("\\n", "\n")
        .replace("\\N", "\n")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
}

/// A vCard's display name: FN, else N joined, else the first EMAIL.
pub fn vcard_display_name(vcard: &str) -> String {
    let lines = content_lines(vcard);
    let find = |n: &str| {
        lines
            .iter()
            .find(|(name, _, _)| name == n)
            .map(|(_, _, v)| unescape(v.trim()))
    };
    if let Some(fn_) = find("FN").filter(|s| !s.is_empty()) {
        return fn_;
    }
    if let Some(n) = find("N") {
        let parts: Vec<&str> = n.split(';').filter(|p| !p.is_empty()).collect();
        if !parts.is_empty() {
            return parts.into_iter().rev().collect::<Vec<_>>().join(" ");
        }
    }
    find("EMAIL").unwrap_or_default()
}

/// Splits a text holding one or more vCards into the individual cards.
pub fn split_vcards(text: &str) -> Vec<String> {
    split_blocks(text, "VCARD")
}

/// One event (or to-do) of an iCalendar object, wrapped as a complete VCALENDAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    pub uid: String,
    pub sequence: i64,
    pub dtstamp: UtcMillis,
    pub summary: String,
    /// A complete VCALENDAR holding this event (and the calendar's VTIMEZONEs).
    pub ics: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PimError {
    #[error("not an iCalendar object: no BEGIN:VCALENDAR")]
    NotCalendar,
    #[error("calendar event #{0} has no UID; every event needs one")]
    MissingUid(usize),
    #[error("not a vCard: no BEGIN:VCARD")]
    NotVcard,
}

/// Splits an iCalendar text into its events (VEVENT/VTODO), each re-wrapped with the
/// calendar's header properties and time zones. Events sharing a UID (recurrence
/// exceptions) stay together.
pub fn split_calendar(text: &str) -> Result<Vec<CalendarEvent>, PimError> {
    let text = text.replace("\r\n", "\n");
    if !text.to_ascii_uppercase().contains("BEGIN:VCALENDAR") {
        return Err(PimError::NotCalendar);
    }
    let mut header = Vec::new();
    let mut timezones = Vec::new();
    let mut components: Vec<Vec<String>> = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let mut depth = 0usize;
    for line in text.lines() {
        let upper = line.to_ascii_uppercase();
        if upper == "BEGIN:VCALENDAR" || upper == "END:VCALENDAR" {
            continue;
        }
        if let Some((kind, lines)) = current.as_mut() {
            lines.push(line.to_string());
            if upper.starts_with("BEGIN:") {
                depth += 1;
            } else if upper.starts_with("END:") {
                depth -= 1;
                if depth == 0 {
                    let done = std::mem::take(lines);
                    if kind == "VTIMEZONE" {
                        timezones.extend(done);
                    } else {
                        components.push(done);
                    }
                    current = None;
                }
            }
            continue;
        }
        if let Some(kind) = upper.strip_prefix("BEGIN:") {
            depth = 1;
            current = Some((kind.to_string(), vec![line.to_string()]));
        } else if !line.trim().is_empty() {
            header.push(line.to_string());
        }
    }
    let mut by_uid: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (i, comp) in components.into_iter().enumerate() {
        let props = content_lines(&comp.join("\n"));
        let uid = props
            .iter()
            .find(|(n, _, _)| n == "UID")
            .map(|(_, _, v)| v.trim().to_string())
            .filter(|u| !u.is_empty())
            .ok_or(PimError::MissingUid(i + 1))?;
        match by_uid.iter_mut().find(|(u, _)| *u == uid) {
            Some((_, list)) => list.push(comp),
            None => by_uid.push((uid, vec![comp])),
        }
    }
    Ok(by_uid
        .into_iter()
        .map(|(uid, comps)| {
            let mut lines = vec!["BEGIN:VCALENDAR".to_string()];
            lines.extend(header.iter().cloned());
            lines.extend(timezones.iter().cloned());
            let mut sequence = 0;
            let mut dtstamp = UtcMillis(0);
            let mut summary = String::new();
            for comp in &comps {
                for (name, _, value) in content_lines(&comp.join("\n")) {
                    match name.as_str() {
                        "SEQUENCE" => sequence = sequence.max(value.trim().parse().unwrap_or(0)),
                        "DTSTAMP" => {
                            dtstamp =
                                dtstamp.max(parse_ical_utc(value.trim()).unwrap_or(UtcMillis(0)))
                        }
                        "SUMMARY" if summary.is_empty() => summary = unescape(value.trim()),
                        _ => {}
                    }
                }
                lines.extend(comp.iter().cloned());
            }
            lines.push("END:VCALENDAR".to_string());
            CalendarEvent {
                uid,
                sequence,
                dtstamp,
                summary,
                ics: lines.join("\r\n") + "\r\n",
            }
        })
        .collect())
}

/// Whether an imported event should replace the stored one: newer by SEQUENCE, or
/// equal SEQUENCE and a later (or equal: a re-import of the same file is a refresh)
/// DTSTAMP.
pub fn supersedes(new: (i64, UtcMillis), old: (i64, UtcMillis)) -> bool {
    new.0 > old.0 || (new.0 == old.0 && new.1 >= old.1)
}

/// `20101119T135508Z` (or a floating/date form, read as UTC) to milliseconds.
fn parse_ical_utc(v: &str) -> Option<UtcMillis> {
    let v = v.trim_end_matches('Z');
    let fmt = if v.len() == 8 {
        "%Y%m%d"
    } else {
        "%Y%m%dT%H%M%S"
    };
    if v.len() == 8 {
        let d = chrono::NaiveDate::parse_from_str(v, fmt).ok()?;
        return Some(UtcMillis(
            d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
        ));
    }
    let t = chrono::NaiveDateTime::parse_from_str(v, fmt).ok()?;
    Some(UtcMillis(t.and_utc().timestamp_millis()))
}

fn split_blocks(text: &str, kind: &str) -> Vec<String> {
    let begin = format!("BEGIN:{kind}");
    let end = format!("END:{kind}");
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let l = line.trim_end_matches('\r');
        if l.eq_ignore_ascii_case(&begin) {
            current = Some(vec![l]);
        } else if let Some(c) = current.as_mut() {
            c.push(l);
            if l.eq_ignore_ascii_case(&end) {
                out.push(c.join("\r\n") + "\r\n");
                current = None;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:abc-1\r\n\
SEQUENCE:2\r\nDTSTAMP:20101119T135508Z\r\nSUMMARY:Team\r\n meeting\r\nDTSTART:20101120T100000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:def-2\r\nDTSTAMP:20101119T135508Z\r\nSUMMARY:Lunch\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n\
END:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn splits_events_and_reads_their_keys() {
        let evs = split_calendar(ICS).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].uid, "abc-1");
        assert_eq!(evs[0].sequence, 2);
        assert_eq!(evs[0].summary, "Teammeeting");
        assert_eq!(evs[0].dtstamp, UtcMillis(1_290_174_908_000));
        assert!(evs[1].ics.contains("BEGIN:VALARM"));
        assert!(evs[1].ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0"));
        // Re-splitting a single event's text gives the same event back.
        assert_eq!(split_calendar(&evs[0].ics).unwrap()[0], evs[0]);
    }

    #[test]
    fn newer_sequence_or_stamp_supersedes() {
        let t = UtcMillis(10);
        assert!(supersedes((3, t), (2, UtcMillis(99))));
        assert!(!supersedes((1, UtcMillis(99)), (2, t)));
        assert!(supersedes((2, UtcMillis(11)), (2, t)));
        assert!(!supersedes((2, UtcMillis(9)), (2, t)));
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(split_calendar("hello"), Err(PimError::NotCalendar));
        let no_uid = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n";
        assert_eq!(split_calendar(no_uid), Err(PimError::MissingUid(1)));
    }

    #[test]
    fn vcard_names() {
        assert_eq!(
            vcard_display_name("BEGIN:VCARD\r\nFN:Jane Doe\r\nEND:VCARD\r\n"),
            "Jane Doe"
        );
        assert_eq!(
            vcard_display_name("BEGIN:VCARD\nN:Doe;Jane;;;\nEND:VCARD\n"),
            "Jane Doe"
        );
        let two = "BEGIN:VCARD\nFN:A\nEND:VCARD\nBEGIN:VCARD\nFN:B\nEND:VCARD\n";
        assert_eq!(split_vcards(two).len(), 2);
    }
}

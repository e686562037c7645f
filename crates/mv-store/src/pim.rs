//! Just enough vCard and iCalendar reading for the store, and the one home of
//! calendar merging: a contact's display name; a calendar split into series (a
//! UID's master and changed instances), each stored with the calendar's
//! properties and the VTIMEZONEs it uses; an imported series merged into the
//! stored one instance by instance (RECURRENCE-ID, then SEQUENCE/DTSTAMP); a
//! folder's series joined into one export with each TZID once. Lines are kept
//! as given (folded lines stay folded), so a round trip is byte-stable.
//! Hand-written: a handful of properties of two line-based formats, where a
//! full parser would rewrite the text it does not need to understand.

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

/// An iCalendar text taken apart, every line kept as given (folded lines stay
/// folded, so what is stored and exported is what was imported).
#[derive(Debug, Default)]
struct Parts {
    /// Calendar-level properties (VERSION, PRODID, CALSCALE, METHOD, X-WR-*...).
    header: Vec<String>,
    /// VTIMEZONE blocks with their TZID, first of each TZID only.
    timezones: Vec<(String, Vec<String>)>,
    /// VEVENT, VTODO, VJOURNAL (and any other) blocks, in order.
    components: Vec<Vec<String>>,
}

fn parse_parts(text: &str) -> Result<Parts, PimError> {
    let text = text.replace("\r\n", "\n");
    if !text.to_ascii_uppercase().contains("BEGIN:VCALENDAR") {
        return Err(PimError::NotCalendar);
    }
    let mut parts = Parts::default();
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
                        let tzid = property(&done, "TZID").unwrap_or_default();
                        if !parts.timezones.iter().any(|(t, _)| *t == tzid) {
                            parts.timezones.push((tzid, done));
                        }
                    } else {
                        parts.components.push(done);
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
            parts.header.push(line.to_string());
        }
    }
    Ok(parts)
}

/// The first value of a top-level property of a component (not of nested
/// blocks such as VALARM).
fn property(block: &[String], name: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut found = None;
    for (n, _, v) in content_lines(&block.join("\n")) {
        match n.as_str() {
            "BEGIN" => depth += 1,
            "END" => depth = depth.saturating_sub(1),
            _ if depth == 1 && n == name && found.is_none() => found = Some(v.trim().to_string()),
            _ => {}
        }
    }
    found
}

/// The TZIDs a component's properties refer to (`;TZID=...` parameters).
fn tzids_used(block: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, params, _) in content_lines(&block.join("\n")) {
        for p in params.split(';') {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("TZID")
            {
                let v = v.trim().trim_matches('"').to_string();
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// The header property's name (for "first of each name wins" merging).
fn header_name(line: &str) -> Option<String> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let end = line.find([':', ';']).unwrap_or(line.len());
    Some(line[..end].trim().to_ascii_uppercase())
}

/// Header lines of `extra` whose property is not in `base` yet, appended
/// (with their continuation lines).
fn merge_header(base: &mut Vec<String>, extra: &[String]) {
    let have: Vec<String> = base.iter().filter_map(|l| header_name(l)).collect();
    let mut taking = false;
    for line in extra {
        match header_name(line) {
            Some(name) => {
                taking = !have.contains(&name);
                if taking {
                    base.push(line.clone());
                }
            }
            None if taking => base.push(line.clone()),
            None => {}
        }
    }
}

/// A VCALENDAR text of header, time zones and components.
fn render(header: &[String], timezones: &[&Vec<String>], components: &[Vec<String>]) -> String {
    let mut lines = vec!["BEGIN:VCALENDAR".to_string()];
    let names: Vec<String> = header.iter().filter_map(|l| header_name(l)).collect();
    if !names.iter().any(|n| n == "VERSION") {
        lines.push("VERSION:2.0".into());
    }
    if !names.iter().any(|n| n == "PRODID") {
        lines.push("PRODID:-//mailvault//EN".into());
    }
    lines.extend(header.iter().cloned());
    for tz in timezones {
        lines.extend(tz.iter().cloned());
    }
    for c in components {
        lines.extend(c.iter().cloned());
    }
    lines.push("END:VCALENDAR".to_string());
    lines.join("\r\n") + "\r\n"
}

/// The stored form of one series: the calendar's properties, the time zones
/// its components use, and its components; with its keys.
fn event_of(
    uid: String,
    header: &[String],
    timezones: &[(String, Vec<String>)],
    comps: Vec<Vec<String>>,
) -> CalendarEvent {
    let mut used: Vec<String> = Vec::new();
    for c in &comps {
        for t in tzids_used(c) {
            if !used.contains(&t) {
                used.push(t);
            }
        }
    }
    let tzs: Vec<&Vec<String>> = timezones
        .iter()
        .filter(|(t, _)| used.contains(t))
        .map(|(_, b)| b)
        .collect();
    let mut sequence = 0;
    let mut dtstamp = UtcMillis(0);
    for comp in &comps {
        let (seq, stamp) = component_version(comp);
        sequence = sequence.max(seq);
        dtstamp = dtstamp.max(stamp);
    }
    // The master's summary names the series; the first instance's if there is no master.
    let summary = comps
        .iter()
        .find(|c| instance_key(c).is_none())
        .or(comps.first())
        .and_then(|c| property(c, "SUMMARY"))
        .map(|s| unescape(&s))
        .unwrap_or_default();
    CalendarEvent {
        uid,
        sequence,
        dtstamp,
        summary,
        ics: render(header, &tzs, &comps),
    }
}

/// A component's SEQUENCE and DTSTAMP.
fn component_version(comp: &[String]) -> (i64, UtcMillis) {
    let seq = property(comp, "SEQUENCE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stamp = property(comp, "DTSTAMP")
        .and_then(|v| parse_ical_utc(&v))
        .unwrap_or(UtcMillis(0));
    (seq, stamp)
}

/// Which occurrence a component describes: `None` for the series' master,
/// else its RECURRENCE-ID (value and any RANGE/TZID parameters).
fn instance_key(comp: &[String]) -> Option<String> {
    let mut depth = 0usize;
    for (n, params, v) in content_lines(&comp.join("\n")) {
        match n.as_str() {
            "BEGIN" => depth += 1,
            "END" => depth = depth.saturating_sub(1),
            "RECURRENCE-ID" if depth == 1 => {
                return Some(format!("{};{}", params.to_ascii_uppercase(), v.trim()));
            }
            _ => {}
        }
    }
    None
}

/// Splits an iCalendar text into its series: the components (VEVENT, VTODO,
/// VJOURNAL) sharing a UID — a recurring event's master and its changed
/// instances (RECURRENCE-ID) — each wrapped as a complete VCALENDAR with the
/// calendar's properties and only the VTIMEZONEs it uses.
pub fn split_calendar(text: &str) -> Result<Vec<CalendarEvent>, PimError> {
    let parts = parse_parts(text)?;
    let mut by_uid: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (i, comp) in parts.components.into_iter().enumerate() {
        let uid = property(&comp, "UID")
            .filter(|u| !u.is_empty())
            .ok_or(PimError::MissingUid(i + 1))?;
        match by_uid.iter_mut().find(|(u, _)| *u == uid) {
            Some((_, list)) => list.push(comp),
            None => by_uid.push((uid, vec![comp])),
        }
    }
    Ok(by_uid
        .into_iter()
        .map(|(uid, comps)| event_of(uid, &parts.header, &parts.timezones, comps))
        .collect())
}

/// Merges an imported series into the stored one of the same UID, component
/// by component (RFC 5546): an incoming master or instance replaces the stored
/// one with the same RECURRENCE-ID only if it is newer by SEQUENCE, then
/// DTSTAMP (equal: a re-import refreshes it); an instance not stored yet is
/// added; stored components the import does not mention are kept (a master
/// update keeps its exceptions). `None` when nothing in the import is newer.
pub fn merge_series(
    stored: &str,
    incoming: &CalendarEvent,
) -> Result<Option<CalendarEvent>, PimError> {
    let mut old = parse_parts(stored)?;
    let new = parse_parts(&incoming.ics)?;
    let mut changed = false;
    for comp in new.components {
        let key = instance_key(&comp);
        match old.components.iter().position(|c| instance_key(c) == key) {
            Some(i) => {
                if supersedes(
                    component_version(&comp),
                    component_version(&old.components[i]),
                ) {
                    old.components[i] = comp;
                    changed = true;
                }
            }
            None => {
                old.components.push(comp);
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    merge_header(&mut old.header, &new.header);
    for (tzid, block) in new.timezones {
        if !old.timezones.iter().any(|(t, _)| *t == tzid) {
            old.timezones.push((tzid, block));
        }
    }
    Ok(Some(event_of(
        incoming.uid.clone(),
        &old.header,
        &old.timezones,
        old.components,
    )))
}

/// Joins stored series into one VCALENDAR (a folder's export): the calendar
/// properties (first of each name), each VTIMEZONE once per TZID, then every
/// component in the given order. Stored series are what [`split_calendar`]
/// made, so export → import → export gives the same text again.
pub fn merge_calendars<'a>(calendars: impl Iterator<Item = &'a str>) -> String {
    let mut header: Vec<String> = Vec::new();
    let mut timezones: Vec<(String, Vec<String>)> = Vec::new();
    let mut components = Vec::new();
    for cal in calendars {
        let Ok(parts) = parse_parts(cal) else {
            continue;
        };
        merge_header(&mut header, &parts.header);
        for (tzid, block) in parts.timezones {
            if !timezones.iter().any(|(t, _)| *t == tzid) {
                timezones.push((tzid, block));
            }
        }
        components.extend(parts.components);
    }
    let tzs: Vec<&Vec<String>> = timezones.iter().map(|(_, b)| b).collect();
    render(&header, &tzs, &components)
}

/// Whether an imported event should replace the stored one: newer by SEQUENCE, or
/// equal SEQUENCE and a later (or equal: a re-import of the same file is a refresh)
/// DTSTAMP.
pub fn supersedes(new: (i64, UtcMillis), old: (i64, UtcMillis)) -> bool {
    new.0 > old.0 || (new.0 == old.0 && new.1 >= old.1)
}

/// When an iCalendar object's first event or to-do starts: its DTSTART (a
/// to-do without one: its DUE), read as UTC (a TZID is not applied).
pub fn event_start(ics: &str) -> Option<UtcMillis> {
    let mut depth = 0usize;
    let mut in_component = false;
    let mut due = None;
    for (name, _, value) in content_lines(ics) {
        match name.as_str() {
            "BEGIN" => {
                depth += 1;
                if depth == 2 {
                    let v = value.trim();
                    in_component =
                        v.eq_ignore_ascii_case("VEVENT") || v.eq_ignore_ascii_case("VTODO");
                }
            }
            "END" => {
                if depth == 2 && in_component {
                    if due.is_some() {
                        return due;
                    }
                    in_component = false;
                }
                depth = depth.saturating_sub(1);
            }
            "DTSTART" if depth == 2 && in_component => return parse_ical_utc(value.trim()),
            "DUE" if depth == 2 && in_component => due = parse_ical_utc(value.trim()),
            _ => {}
        }
    }
    due
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

    const SERIES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nX-WR-CALNAME:Work\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\nBEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nSEQUENCE:1\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:Stand-up\r\n\
DTSTART;TZID=Europe/Berlin:20261102T093000\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261104T093000\r\nSEQUENCE:2\r\n\
DTSTAMP:20261101T000000Z\r\nSUMMARY:Stand-up (moved)\r\nDTSTART;TZID=Europe/Berlin:20261104T110000\r\nEND:VEVENT\r\n\
BEGIN:VTODO\r\nUID:todo-1\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:File report\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";

    #[test]
    fn series_keep_their_instances_and_only_the_time_zones_they_use() {
        let evs = split_calendar(SERIES).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].summary, "Stand-up");
        assert_eq!(evs[0].ics.matches("BEGIN:VTIMEZONE").count(), 1);
        assert!(evs[0].ics.contains("TZID:Europe/Berlin"));
        assert!(evs[0].ics.contains("X-WR-CALNAME:Work"));
        assert_eq!(evs[1].ics.matches("BEGIN:VTIMEZONE").count(), 0);
        assert!(evs[1].ics.contains("BEGIN:VTODO"));

        // One changed occurrence replaces that occurrence only.
        let change = SERIES
            .replace("SEQUENCE:2", "SEQUENCE:5")
            .replace("Stand-up (moved)", "Stand-up (moved again)");
        let change = split_calendar(&change.replace(
            "BEGIN:VEVENT\r\nUID:standup\r\nSEQUENCE:1\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:Stand-up\r\n\
DTSTART;TZID=Europe/Berlin:20261102T093000\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n",
            "",
        ))
        .unwrap();
        let merged = merge_series(&evs[0].ics, &change[0]).unwrap().unwrap();
        assert!(merged.ics.contains("RRULE:FREQ=DAILY"), "the master stays");
        assert!(merged.ics.contains("moved again"));
        assert!(!merged.ics.contains("(moved)\r\n"));
        assert_eq!((merged.sequence, merged.summary.as_str()), (5, "Stand-up"));
        // A re-import of the original series refreshes the master (equal
        // SEQUENCE and DTSTAMP) but not the newer instance.
        let refreshed = merge_series(&merged.ics, &evs[0]).unwrap().unwrap();
        assert_eq!(refreshed.ics, merged.ics);
        // An import whose master and instance are both older changes nothing.
        let older = SERIES.replace("UID:standup\r\nSEQUENCE:1", "UID:standup\r\nSEQUENCE:0");
        let older = &split_calendar(&older).unwrap()[0];
        assert_eq!(merge_series(&merged.ics, older).unwrap(), None);
        // A new instance is added beside the others.
        let extra = SERIES
            .replace("20261104T093000", "20261105T093000")
            .replace("SEQUENCE:2", "SEQUENCE:3");
        let merged2 = merge_series(&merged.ics, &split_calendar(&extra).unwrap()[0])
            .unwrap()
            .unwrap();
        assert_eq!(merged2.ics.matches("RECURRENCE-ID").count(), 2);
    }

    #[test]
    fn export_has_each_time_zone_once_and_is_stable() {
        let evs = split_calendar(SERIES).unwrap();
        let export = merge_calendars(evs.iter().map(|e| e.ics.as_str()));
        assert_eq!(export.matches("BEGIN:VTIMEZONE").count(), 1);
        assert!(export.contains("X-WR-CALNAME:Work"));
        let again = split_calendar(&export).unwrap();
        let export2 = merge_calendars(again.iter().map(|e| e.ics.as_str()));
        assert_eq!(export, export2);
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

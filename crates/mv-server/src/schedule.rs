//! The backup schedule (`zmschedulebackup`) and the scheduler that runs it inside
//! `mailvault serve`.
//!
//! The schedule is the server's `zimbraBackupSchedule` attribute (server value over
//! global value), one entry per value, spelled as `zmschedulebackup -q` prints it:
//! `f 0 1 * * 6 -a all`, `i 0 1 * * 0-5`, `d 1m 0 0 * * *`. Cron expressions have 5
//! fields, or 6 with seconds first (tests use those), evaluated in local time.
//!
//! No crontab: the server's scheduler ([`crate::scheduler`]) submits the same
//! [`BackupRequest`] / [`DeleteRequest`] the CLI would.

use crate::backup::{BackupRequest, DeleteRequest};
use crate::{Service, ServiceError};
use chrono::{DateTime, Local, TimeZone};
use croner::Cron;
use mv_directory::Modification;
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};

pub const ATTR: &str = "zimbraBackupSchedule";

/// What an entry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Full,
    Incremental,
    Delete,
}

impl EntryKind {
    fn letter(self) -> &'static str {
        match self {
            EntryKind::Full => "f",
            EntryKind::Incremental => "i",
            EntryKind::Delete => "d",
        }
    }
    fn from_letter(s: &str) -> Option<EntryKind> {
        match s {
            "f" => Some(EntryKind::Full),
            "i" => Some(EntryKind::Incremental),
            "d" => Some(EntryKind::Delete),
            _ => None,
        }
    }
}

/// One schedule entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// `d` entries: what to delete (`1m`, `14d`, a label or a date).
    pub keep: Option<String>,
    /// 5 fields, or 6 with seconds first.
    pub cron: String,
    /// Options passed to the backup (`-a all`, `-z`, `-t DIR`, ...).
    pub options: Vec<String>,
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(msg.into())
}

/// Parses a cron expression of 5 fields (6 with seconds first).
pub fn parse_cron(expr: &str) -> Result<Cron, ServiceError> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(bad(format!(
            "invalid cron expression {expr:?}: expected 5 fields (minute hour day month weekday), or 6 with seconds first"
        )));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| bad(format!("invalid cron expression {expr:?}: {e}")))
}

impl Entry {
    /// Parses a line as `zmschedulebackup -q` prints it.
    pub fn parse(line: &str) -> Result<Entry, ServiceError> {
        let mut words = line.split_whitespace().peekable();
        let kind = words.next().and_then(EntryKind::from_letter).ok_or_else(|| {
            bad(format!(
                "invalid schedule entry {line:?}: start with f (full), i (incremental) or d (delete)"
            ))
        })?;
        let keep = if kind == EntryKind::Delete {
            let k = words.next().ok_or_else(|| {
                bad(format!(
                    "invalid schedule entry {line:?}: d needs what to delete (e.g. d 1m \"0 0 * * *\")"
                ))
            })?;
            mv_backup::parse_delete_arg(k, UtcMillis::now()).map_err(|e| bad(e.to_string()))?;
            Some(k.to_string())
        } else {
            None
        };
        let mut cron = Vec::new();
        while let Some(w) = words.peek() {
            if w.starts_with('-') {
                break;
            }
            cron.push(*w);
            words.next();
        }
        let cron = cron.join(" ");
        parse_cron(&cron)?;
        let entry = Entry {
            kind,
            keep,
            cron,
            options: words.map(str::to_string).collect(),
        };
        entry.request()?;
        Ok(entry)
    }

    /// The line `zmschedulebackup -q` prints (and the stored value).
    pub fn line(&self) -> String {
        let mut parts = vec![self.kind.letter().to_string()];
        parts.extend(self.keep.clone());
        parts.push(self.cron.clone());
        parts.extend(self.options.iter().cloned());
        parts.join(" ")
    }

    pub fn cron(&self) -> Result<Cron, ServiceError> {
        parse_cron(&self.cron)
    }

    /// The request the entry submits (its options validated as zmbackup does).
    pub fn request(&self) -> Result<crate::Request, ServiceError> {
        let mut accounts = Vec::new();
        let mut target = None;
        let mut compression = None;
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        let mut it = self.options.iter().peekable();
        while let Some(opt) = it.next() {
            let name = opt.trim_start_matches('-');
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| bad(format!("schedule option {opt} needs a value")))
            };
            match (self.kind, name) {
                (_, "t" | "target") => {
                    let t = value()?;
                    // Run by the server later, from its own working directory.
                    if !t.starts_with("s3://") && !std::path::Path::new(&t).is_absolute() {
                        return Err(bad(format!(
                            "schedule option -t {t}: give an absolute path (or s3://BUCKET/PREFIX)"
                        )));
                    }
                    target = Some(t);
                }
                (EntryKind::Delete, _) => {
                    return Err(bad(format!(
                        "schedule option {opt} does not apply to d entries (only -t)"
                    )));
                }
                (_, "a" | "account") => {
                    while let Some(v) = it.peek().filter(|v| !v.starts_with('-')) {
                        accounts.push(v.to_string());
                        it.next();
                    }
                    if accounts.is_empty() {
                        return Err(bad("schedule option -a needs addresses or all"));
                    }
                }
                (_, "z" | "zip") => compression = Some("deflate".to_string()),
                (_, "zipStore" | "noZip") => compression = Some("stored".to_string()),
                (_, "zstd") => compression = Some("zstd".to_string()),
                (_, "include") => include.push(value()?),
                (_, "exclude") => exclude.push(value()?),
                (_, "sync") => {}
                _ => {
                    return Err(bad(format!(
                        "unknown schedule option {opt}: use -a, -t, -z, --zipStore, --noZip, --zstd, --include, --exclude"
                    )));
                }
            }
        }
        Ok(match self.kind {
            EntryKind::Delete => crate::Request::BackupDelete(DeleteRequest {
                arg: self.keep.clone().unwrap_or_default(),
                target,
                dry_run: false,
            }),
            kind => {
                let r = BackupRequest {
                    kind: if kind == EntryKind::Full {
                        "full"
                    } else {
                        "incremental"
                    }
                    .into(),
                    accounts,
                    target,
                    compression,
                    exclude,
                    include,
                    sync: false,
                };
                crate::backup::options(&r)?;
                crate::Request::Backup(r)
            }
        })
    }
}

/// Parses `zmschedulebackup` arguments: `f "cron" i "cron" d 1m "cron"`; the cron
/// expression may be one quoted word or several words, and may carry options.
pub fn parse_args(args: &[String]) -> Result<Vec<Entry>, ServiceError> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if EntryKind::from_letter(words[i]).is_none() {
            return Err(bad(format!(
                "unexpected {:?}: schedule entries start with f, i or d",
                words[i]
            )));
        }
        let mut j = i + 1;
        if words[i] == "d" {
            j += 1;
        }
        while j < words.len() && EntryKind::from_letter(words[j]).is_none() {
            j += 1;
        }
        entries.push(Entry::parse(&words[i..j].join(" "))?);
        i = j;
    }
    Ok(entries)
}

/// Options given once on the command line (`-z`, `-a`, `-t`) added to the entries
/// they apply to, as the original does: `-a` to fulls, compression to fulls and
/// incrementals, the target to all. In Standard mode a full without `-a` backs up
/// all accounts.
fn apply_common(entries: &mut [Entry], common: &[String], standard: bool) {
    let mut accounts: Vec<String> = Vec::new();
    let mut backup_opts: Vec<String> = Vec::new();
    let mut target: Vec<String> = Vec::new();
    let mut it = common.iter().peekable();
    while let Some(o) = it.next() {
        match o.trim_start_matches('-') {
            "a" | "account" => {
                accounts.push("-a".into());
                while let Some(v) = it.peek().filter(|v| !v.starts_with('-')) {
                    accounts.push(v.to_string());
                    it.next();
                }
            }
            "t" | "target" => {
                target.push("-t".into());
                target.extend(it.next().cloned());
            }
            _ => backup_opts.push(o.clone()),
        }
    }
    for e in entries {
        if e.kind == EntryKind::Full {
            let has_a = e.options.iter().any(|o| o == "-a" || o == "--account");
            if !has_a && accounts.len() > 1 {
                e.options.extend(accounts.iter().cloned());
            } else if !has_a && standard {
                e.options.extend(["-a".to_string(), "all".to_string()]);
            }
        }
        if e.kind != EntryKind::Delete {
            for o in &backup_opts {
                if !e.options.contains(o) {
                    e.options.push(o.clone());
                }
            }
        }
        if !target.is_empty() && !e.options.iter().any(|o| o == "-t" || o == "--target") {
            e.options.extend(target.iter().cloned());
        }
    }
}

/// The default schedule of a backup mode (REFERENCE §4).
pub fn default_entries(mode: &str) -> Vec<Entry> {
    let lines: &[&str] = if mode.eq_ignore_ascii_case("Auto-Grouped") {
        &["f 0 1 * * 0-6", "d 1m 0 0 * * *"]
    } else {
        &["f 0 1 * * 6 -a all", "i 0 1 * * 0-5", "d 1m 0 0 * * *"]
    };
    lines
        .iter()
        .map(|l| Entry::parse(l).expect("built-in schedule parses"))
        .collect()
}

/// `zmschedulebackup`: `action` is query, replace, append, flush or default;
/// `entries` the entry words; `options` the common options (`-z`, `-a`, `-t`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScheduleRequest {
    pub action: String,
    #[serde(default)]
    pub entries: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// The current schedule: its entries, and the values that do not parse (set with
/// `zmprov ms` by hand), which the scheduler skips.
pub fn current(service: &Service) -> Result<(Vec<Entry>, Vec<String>), ServiceError> {
    let lines = service.directory().effective(service.server_name(), ATTR)?;
    let mut entries = Vec::new();
    let mut invalid = Vec::new();
    for l in lines {
        match Entry::parse(&l) {
            Ok(e) => entries.push(e),
            Err(e) => invalid.push(format!("{l}: {e}")),
        }
    }
    Ok((entries, invalid))
}

/// The schedule after a request: its entries as lines and parsed, the lines
/// that did not parse, and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleAnswer {
    /// What the request did (`Schedule replaced`); none for a query.
    pub message: Option<String>,
    /// `zimbraBackupMode`.
    pub mode: String,
    pub entries: Vec<String>,
    pub parsed: Vec<Entry>,
    pub invalid: Vec<String>,
}

/// Runs a schedule request; answers the resulting schedule.
pub fn execute(service: &Service, r: &ScheduleRequest) -> Result<ScheduleAnswer, ServiceError> {
    let mode = service
        .directory()
        .effective_str(service.server_name(), "zimbraBackupMode")?;
    let standard = !mode.eq_ignore_ascii_case("Auto-Grouped");
    let (old, _) = current(service)?;
    let (new, message) = match r.action.as_str() {
        "query" => (None, None),
        "flush" => (Some(Vec::new()), Some("Schedule flushed")),
        "default" => {
            let mut e = default_entries(&mode);
            if r.options.iter().any(|o| o == "-a" || o == "--account") {
                for x in e.iter_mut().filter(|x| x.kind == EntryKind::Full) {
                    x.options.clear();
                }
            }
            apply_common(&mut e, &r.options, false);
            (Some(e), Some("Default schedule set"))
        }
        "replace" | "append" => {
            let mut e = parse_args(&r.entries)?;
            if e.is_empty() {
                return Err(bad(format!(
                    "-{} needs schedule entries, e.g. f \"0 1 * * 6\" i \"0 1 * * 0-5\" d 1m \"0 0 * * *\"",
                    if r.action == "replace" { "R" } else { "A" }
                )));
            }
            apply_common(&mut e, &r.options, standard);
            for x in &e {
                x.request()?;
            }
            if r.action == "append" {
                let mut all = old.clone();
                all.extend(e);
                (Some(all), Some("Schedule appended"))
            } else {
                (Some(e), Some("Schedule replaced"))
            }
        }
        other => {
            return Err(bad(format!(
                "unknown schedule action {other:?}: query, replace, append, flush or default"
            )));
        }
    };
    if let Some(entries) = &new {
        let lines: Vec<String> = entries.iter().map(Entry::line).collect();
        let server = service.server_name().to_string();
        let m = if lines.is_empty() {
            Modification::unset(ATTR)
        } else {
            Modification::replace(ATTR, lines)
        };
        service.directory().modify_server(&server, &[m])?;
    }
    let (entries, invalid) = current(service)?;
    Ok(ScheduleAnswer {
        message: message.map(str::to_string),
        mode,
        entries: entries.iter().map(Entry::line).collect(),
        parsed: entries,
        invalid,
    })
}

/// `zmschedulebackup -q`'s text.
pub fn format_query(lines: &[String]) -> String {
    let mut out = String::from("Current Schedule:\n\n");
    for l in lines {
        out.push('\t');
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// `zmschedulebackup -s`: one command line that sets this schedule again.
pub fn format_save(lines: &[String]) -> String {
    let mut out = String::from("zmschedulebackup -R");
    for l in lines {
        if let Ok(e) = Entry::parse(l) {
            out.push_str(&format!(" {}", e.kind.letter()));
            if let Some(k) = &e.keep {
                out.push_str(&format!(" {k}"));
            }
            let mut rest = e.cron.clone();
            for o in &e.options {
                rest.push(' ');
                rest.push_str(o);
            }
            out.push_str(&format!(" \"{rest}\""));
        }
    }
    out.push('\n');
    out
}

/// `zmschedulebackup --crontab`: equivalent crontab lines for `bin` (cron has no
/// seconds: 6-field entries are printed as comments).
pub fn format_crontab(lines: &[String], bin: &str, home: &str) -> String {
    let mut out = format!("MAILVAULT_HOME={home}\n");
    for l in lines {
        let Ok(e) = Entry::parse(l) else { continue };
        let cmd = match e.kind {
            EntryKind::Full => "backup -f",
            EntryKind::Incremental => "backup -i",
            EntryKind::Delete => "backup -del",
        };
        let mut line = format!("{} {bin} {cmd}", e.cron);
        if let Some(k) = &e.keep {
            line.push_str(&format!(" {k}"));
        }
        for o in &e.options {
            line.push_str(&format!(" {o}"));
        }
        if e.cron.split_whitespace().count() == 6 {
            out.push_str(&format!(
                "# not expressible in crontab (seconds field): {line}\n"
            ));
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn local(t: UtcMillis) -> DateTime<Local> {
    Local
        .timestamp_millis_opt(t.0)
        .single()
        .unwrap_or_else(Local::now)
}

/// The next occurrence strictly after `t`.
pub fn next_after(cron: &Cron, t: UtcMillis) -> Option<UtcMillis> {
    cron.find_next_occurrence(&local(t), false)
        .ok()
        .map(|d| UtcMillis(d.timestamp_millis()))
}

/// The latest occurrence at or before `t`.
pub fn previous_at_or_before(cron: &Cron, t: UtcMillis) -> Option<UtcMillis> {
    cron.find_previous_occurrence(&local(t), true)
        .ok()
        .map(|d| UtcMillis(d.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_validate() {
        let e = Entry::parse("d 1m 0 0 * * *").unwrap();
        assert_eq!(e.kind, EntryKind::Delete);
        assert_eq!(e.keep.as_deref(), Some("1m"));
        assert_eq!(e.cron, "0 0 * * *");
        assert_eq!(e.line(), "d 1m 0 0 * * *");
        let e = Entry::parse("f */5 * * * * * -a all -z").unwrap();
        assert_eq!(e.cron, "*/5 * * * * *");
        assert_eq!(e.options, ["-a", "all", "-z"]);
        assert!(Entry::parse("x 0 1 * * *").is_err());
        assert!(Entry::parse("f 0 1 * *").is_err(), "4 fields");
        assert!(Entry::parse("f 0 99 * * *").is_err(), "hour 99");
        assert!(Entry::parse("d 1w 0 0 * * *").is_err(), "weeks");
        assert!(Entry::parse("f 0 1 * * 6 --bogus").is_err());
        assert!(Entry::parse("d 1m 0 0 * * * -a all").is_err());
    }

    #[test]
    fn arguments_as_the_original_takes_them() {
        let args: Vec<String> = [
            "f",
            "0 1 * * 6",
            "i",
            "0 1 * * 0-5",
            "d",
            "14d",
            "0 0 * * *",
        ]
        .map(String::from)
        .to_vec();
        let mut e = parse_args(&args).unwrap();
        apply_common(&mut e, &["-z".to_string()], true);
        let lines: Vec<String> = e.iter().map(Entry::line).collect();
        assert_eq!(
            lines,
            [
                "f 0 1 * * 6 -a all -z",
                "i 0 1 * * 0-5 -z",
                "d 14d 0 0 * * *"
            ]
        );
        let saved = format_save(&lines);
        assert_eq!(
            saved,
            "zmschedulebackup -R f \"0 1 * * 6 -a all -z\" i \"0 1 * * 0-5 -z\" d 14d \"0 0 * * *\"\n"
        );
    }

    #[test]
    fn occurrences_in_local_time() {
        let cron = parse_cron("*/5 * * * * *").unwrap();
        let t = UtcMillis(1_700_000_001_000);
        let n = next_after(&cron, t).unwrap();
        assert_eq!(n.0 % 5000, 0);
        assert!(n > t && n.0 - t.0 <= 5000);
        let p = previous_at_or_before(&cron, t).unwrap();
        assert!(p <= t && t.0 - p.0 < 5000);
    }
}

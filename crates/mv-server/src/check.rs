//! `mailvault check`: a health checklist in the spirit of `barman check`. Each item
//! is `name: OK|FAILED (detail)`; any failure makes the command exit non-zero, so
//! monitoring can run it as is.

use crate::Service;
use crate::schedule::{self, EntryKind};
use mv_backup::{Catalog, SessionKind};
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckItem {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub server: String,
    pub ok: bool,
    pub checks: Vec<CheckItem>,
}

fn item(name: &str, ok: bool, detail: impl Into<String>) -> CheckItem {
    CheckItem {
        name: name.to_string(),
        ok,
        detail: detail.into(),
    }
}

/// `1 account`, `3 accounts`.
fn accounts_n(n: usize) -> String {
    format!("{n} account{}", if n == 1 { "" } else { "s" })
}

/// `3d 4h`, `12m 5s`: an age for people.
pub fn human_age(ms: i64) -> String {
    let s = (ms.max(0) / 1000) as u64;
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// When the latest occurrence of `cron` that should be done by now was due: the
/// one before `now` less a grace period (half the interval, at most an hour) for
/// the run itself.
fn due_at(cron: &croner::Cron, now: UtcMillis) -> Option<UtcMillis> {
    let prev = schedule::previous_at_or_before(cron, now)?;
    let next = schedule::next_after(cron, prev)?;
    let grace = ((next.0 - prev.0) / 2).min(3_600_000);
    if now.0 - prev.0 >= grace {
        Some(prev)
    } else {
        // Still within the run's grace: the one before must be done.
        let before = schedule::previous_at_or_before(cron, UtcMillis(prev.0 - 1))?;
        Some(before)
    }
}

/// Whether a schedule entry's `-a` selection covers an account.
fn covers(entry: &schedule::Entry, email: &str) -> bool {
    let mut it = entry.options.iter();
    let mut selected: Vec<&str> = Vec::new();
    while let Some(o) = it.next() {
        if o == "-a" || o == "--account" {
            for v in it.by_ref() {
                if v.starts_with('-') {
                    break;
                }
                selected.push(v);
            }
        }
    }
    selected.is_empty()
        || selected
            .iter()
            .any(|s| s.eq_ignore_ascii_case("all") || s.eq_ignore_ascii_case(email))
}

/// Runs every check.
pub fn run(service: &Service) -> CheckReport {
    let now = UtcMillis::now();
    let home = service.store().home();
    let server = service.server_name().to_string();
    let mut checks = Vec::new();

    checks.push(if crate::run::is_serving() {
        item(
            "server running",
            true,
            format!("pid {}", std::process::id()),
        )
    } else {
        item(
            "server running",
            false,
            "no server owns this home: start it with zmcontrol start (scheduled backups, reports and disk alerts run in the server)",
        )
    });

    checks.push(home_permissions(home));
    if crate::run::is_serving() {
        checks.push(listeners(home));
    }
    // A stopped log resumes as soon as it safely can (the server retries every
    // few seconds); trying here too means check never reports a stale failure.
    checks.push(match service.store().redo().resume() {
        Ok(()) => item(
            "redo log",
            true,
            format!("sequence {}", service.store().redo().position().sequence),
        ),
        Err(e) => item(
            "redo log",
            false,
            format!(
                "stopped, nothing is written or delivered ({e}): make room on {}; the log resumes by itself within seconds once it can (a restart recovers it too)",
                home.redolog_dir().display()
            ),
        ),
    });

    match service
        .directory()
        .effective_bool(&server, "zimbraRedoLogEnabled")
    {
        Ok(true) => checks.push(item("redo logging", true, "zimbraRedoLogEnabled TRUE")),
        Ok(false) => checks.push(item(
            "redo logging",
            false,
            "zimbraRedoLogEnabled is FALSE: incremental backups and point-in-time restore need it",
        )),
        Err(e) => checks.push(item("redo logging", false, e.to_string())),
    }

    let (entries, invalid) = schedule::current(service).unwrap_or_default();
    let fulls: Vec<&schedule::Entry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Full)
        .collect();
    let incrs: Vec<&schedule::Entry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Incremental)
        .collect();
    checks.push(if !invalid.is_empty() {
        item(
            "backup schedule",
            false,
            format!("invalid entries: {}", invalid.join("; ")),
        )
    } else if fulls.is_empty() {
        item(
            "backup schedule",
            false,
            "no full backup is scheduled: zmschedulebackup -D sets the default schedule",
        )
    } else {
        item(
            "backup schedule",
            true,
            format!(
                "{} entries: {}",
                entries.len(),
                entries
                    .iter()
                    .map(schedule::Entry::line)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    });

    let target = crate::backup::target_for(service, None);
    let catalog = target
        .as_ref()
        .ok()
        .map(|t| Catalog::load(t.as_ref()).map_err(|e| e.to_string()));
    let accounts = service.directory().list_accounts(None).unwrap_or_default();
    match &catalog {
        Some(Ok(cat)) if !fulls.is_empty() => {
            for (kind, list) in [("full", &fulls), ("incremental", &incrs)] {
                if list.is_empty() {
                    continue;
                }
                let mut overdue = Vec::new();
                let mut oldest: Option<i64> = None;
                for a in &accounts {
                    let last = cat
                        .sessions()
                        .filter(|s| kind == "incremental" || s.kind() == SessionKind::Full)
                        .filter(|s| {
                            s.account(&a.id).is_some_and(|x| {
                                x.state == mv_backup::session::AccountState::Completed
                            })
                        })
                        .map(|s| s.ended)
                        .max();
                    let due = list
                        .iter()
                        .filter(|e| covers(e, &a.email))
                        .filter_map(|e| e.cron().ok().and_then(|c| due_at(&c, now)))
                        .max();
                    let Some(due) = due else { continue };
                    match last {
                        Some(l) if l >= due => {
                            oldest = Some(oldest.map_or(now.0 - l.0, |o| o.max(now.0 - l.0)));
                        }
                        Some(l) => overdue.push(format!(
                            "{} (last {} ago, due {})",
                            a.email,
                            human_age(now.0 - l.0),
                            due.display_local()
                        )),
                        None => overdue.push(format!(
                            "{} (never, due {})",
                            a.email,
                            due.display_local()
                        )),
                    }
                }
                let name = format!("{kind} backups");
                checks.push(if overdue.is_empty() {
                    item(
                        &name,
                        true,
                        match oldest {
                            Some(o) => format!(
                                "{}, oldest {} ago",
                                accounts_n(accounts.len()),
                                human_age(o)
                            ),
                            None => accounts_n(accounts.len()),
                        },
                    )
                } else {
                    let n = overdue.len();
                    overdue.truncate(5);
                    item(
                        &name,
                        false,
                        format!(
                            "{} overdue: {}{}",
                            accounts_n(n),
                            overdue.join(", "),
                            if n > 5 { ", ..." } else { "" }
                        ),
                    )
                });
            }
        }
        Some(Err(e)) => checks.push(item("backup catalog", false, e.clone())),
        _ => {}
    }
    if let (Ok(t), Some(Ok(cat))) = (&target, &catalog) {
        checks.extend(crate::recovery_check::items(service, &t.url(), cat));
    }

    // Redo logs waiting in the archive for an incremental backup.
    let archive = home.redo_archive_dir();
    let logs: Vec<std::time::SystemTime> = std::fs::read_dir(&archive)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .collect();
    let oldest_ms = logs
        .iter()
        .filter_map(|t| t.elapsed().ok())
        .map(|d| d.as_millis() as i64)
        .max();
    let keep_ms = home
        .open()
        .map(|c| c.get_u64("backup_archived_redolog_keep_time"))
        .unwrap_or(3600) as i64
        * 1000;
    let incr_interval = incrs
        .iter()
        .filter_map(|e| {
            let c = e.cron().ok()?;
            let p = schedule::previous_at_or_before(&c, now)?;
            Some(schedule::next_after(&c, p)?.0 - p.0)
        })
        .min();
    checks.push(match (oldest_ms, incr_interval) {
        (None, _) => item("redo archive lag", true, "no archived redo logs waiting"),
        (Some(age), Some(iv)) if age > 2 * iv + keep_ms => item(
            "redo archive lag",
            false,
            format!(
                "{} archived logs, oldest {} old: incremental backups are not taking them (zmbackup -i)",
                logs.len(),
                human_age(age)
            ),
        ),
        (Some(age), _) => item(
            "redo archive lag",
            true,
            format!("{} archived logs, oldest {} old", logs.len(), human_age(age)),
        ),
    });

    match &target {
        Ok(t) => {
            let probe = format!(".mailvault-check-{}", std::process::id());
            checks.push(
                match t.put(&probe, b"check\n").and_then(|_| t.delete(&probe)) {
                    Ok(()) => item("backup target writable", true, t.url()),
                    Err(e) => item("backup target writable", false, format!("{}: {e}", t.url())),
                },
            );
            let setting = service
                .directory()
                .effective_str(&server, "zimbraBackupMinFreeSpace")
                .unwrap_or_default();
            let space = t.free_space().ok().flatten();
            let avail = space
                .map(|s| mv_backup::space::human_bytes(s.available))
                .unwrap_or_else(|| "unknown".into());
            checks.push(match mv_backup::space::check(t.as_ref(), &setting) {
                Ok(()) => item(
                    "free space",
                    true,
                    format!("{avail} available, zimbraBackupMinFreeSpace {setting}"),
                ),
                Err(e) => item("free space", false, e.to_string()),
            });
        }
        Err(e) => checks.push(item("backup target writable", false, e.to_string())),
    }
    checks.extend(crate::live::check_item(service));
    checks.extend(crate::standby::check_item(service));

    let runs: Vec<_> = crate::report::list(home, 50)
        .into_iter()
        .filter(|r| r.operation == "backup" || r.operation == "delete")
        .take(5)
        .collect();
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{} {} at {}", r.operation, r.id, r.at.display_local()))
        .collect();
    checks.push(if runs.is_empty() {
        item("last runs", true, "no backup or delete has run yet")
    } else if failed.is_empty() {
        item(
            "last runs",
            true,
            if runs.len() == 1 {
                "the last run succeeded".to_string()
            } else {
                format!("the last {} runs succeeded", runs.len())
            },
        )
    } else {
        item(
            "last runs",
            false,
            format!(
                "{} of the last {} runs failed: {} (mailvault backup report)",
                failed.len(),
                runs.len(),
                failed.join("; ")
            ),
        )
    });

    let outbox = crate::outbox::status(home);
    let stuck: Vec<&crate::outbox::Queued> =
        outbox.pending.iter().filter(|q| q.attempts >= 3).collect();
    checks.push(if !outbox.failed.is_empty() {
        item(
            "report email",
            false,
            format!(
                "{} reports could not be sent (log/outbox/failed/): {}",
                outbox.failed.len(),
                outbox.failed[0].last_error.clone().unwrap_or_default()
            ),
        )
    } else if !stuck.is_empty() {
        item(
            "report email",
            false,
            format!(
                "{} reports waiting after several tries: {}",
                stuck.len(),
                stuck[0].last_error.clone().unwrap_or_default()
            ),
        )
    } else {
        item(
            "report email",
            true,
            format!("{} waiting", outbox.pending.len()),
        )
    });

    let t = crate::diskmon::Thresholds::load(home);
    let fs = crate::diskmon::usage(&crate::diskmon::watched_paths(service), &t);
    checks.push(disk_item(&fs, &t));

    CheckReport {
        ok: checks.iter().all(|c| c.ok),
        server,
        checks,
    }
}

/// The disk line: each filesystem's use against the thresholds, which are
/// percentages *used* (zmdisklog warns when a filesystem is that full):
/// `disk: OK (/ 18% used; warn at 85%, critical at 95%)`.
fn disk_item(fs: &[crate::diskmon::FsUsage], t: &crate::diskmon::Thresholds) -> CheckItem {
    use crate::diskmon::Level;
    let limits = format!("warn at {}%, critical at {}%", t.warn, t.critical);
    let each = fs
        .iter()
        .map(|u| {
            let state = match u.level {
                _ if u.excluded => " (not monitored: zmstat_df_excludes)",
                Level::Ok => "",
                Level::Warning => " (past the warning level)",
                Level::Critical => " (past the critical level)",
            };
            format!("{} {}% used{state}", u.mount, u.use_percent)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let ok = !fs.iter().any(|u| u.level == Level::Critical);
    if fs.is_empty() {
        return item("disk", false, "no filesystem could be measured");
    }
    item("disk", ok, format!("{each}; {limits}"))
}

/// Every listener of this server answers: LMTP and IMAP with their greeting,
/// IMAPS and the admin API by accepting. A listener that died while the process
/// lives is what this catches.
fn listeners(home: &mv_home::Home) -> CheckItem {
    use std::io::{BufRead, Write};
    use std::time::Duration;
    let opts = match home
        .open()
        .map_err(|e| e.to_string())
        .and_then(|c| crate::ServeOptions::from_config(&c).map_err(|e| e.to_string()))
    {
        Ok(o) => o,
        Err(e) => return item("listeners", false, e),
    };
    let probe = |addr: std::net::SocketAddr, greeting: Option<&str>| -> Result<(), String> {
        let mut addr = addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let timeout = Duration::from_secs(3);
        let s = std::net::TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("{addr}: {e}"))?;
        if let Some(want) = greeting {
            s.set_read_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            let mut line = String::new();
            std::io::BufReader::new(&s)
                .read_line(&mut line)
                .map_err(|e| format!("{addr}: no greeting: {e}"))?;
            if !line.starts_with(want) {
                return Err(format!("{addr}: greeting {:?}", line.trim_end()));
            }
            let bye: &[u8] = if want == "220" {
                b"QUIT\r\n"
            } else {
                b"a LOGOUT\r\n"
            };
            let _ = (&s).write_all(bye);
        }
        Ok(())
    };
    let mut down = Vec::new();
    let mut up = Vec::new();
    for (name, addr, greeting) in [
        ("LMTP", opts.lmtp, Some("220")),
        ("IMAP", opts.imap, Some("* OK")),
        ("IMAPS", opts.imaps, None),
        ("admin API", opts.admin, None),
    ] {
        match probe(addr, greeting) {
            Ok(()) => up.push(format!("{name} {addr}")),
            Err(e) => down.push(format!("{name} {e}")),
        }
    }
    if down.is_empty() {
        item("listeners", true, up.join(", "))
    } else {
        item(
            "listeners",
            false,
            format!(
                "not answering: {} (restart the server: zmcontrol stop; zmcontrol start)",
                down.join("; ")
            ),
        )
    }
}

/// Entries looked at before `home permissions` stops (a stat each: a few
/// hundred milliseconds on a cold cache, much less warm).
const PERMISSION_SCAN_BUDGET: u64 = 200_000;

/// Everything in a home holds mail, password hashes or secrets: nothing in it
/// may be open to group or others.
fn home_permissions(home: &mv_home::Home) -> CheckItem {
    let e = home.exposed(PERMISSION_SCAN_BUDGET);
    let scope = if e.truncated {
        format!("the first {} entries", e.scanned)
    } else {
        format!("{} entries", e.scanned)
    };
    if e.count == 0 {
        return item(
            "home permissions",
            true,
            format!("{scope} private to the owner"),
        );
    }
    let examples: Vec<String> = e
        .examples
        .iter()
        .map(|(p, m)| format!("{} {m:04o}", p.display()))
        .collect();
    item(
        "home permissions",
        false,
        format!(
            "{} of {scope} readable or writable by group or others ({}{}): chmod -R go-rwx {}",
            e.count,
            examples.join(", "),
            if e.count > examples.len() as u64 {
                ", ..."
            } else {
                ""
            },
            home.root().display()
        ),
    )
}

/// The checklist as text.
pub fn format_text(r: &CheckReport) -> String {
    let mut out = format!("Server {}:\n", r.server);
    for c in &r.checks {
        out.push_str(&format!(
            "\t{}: {}{}\n",
            c.name,
            if c.ok { "OK" } else { "FAILED" },
            if c.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.detail)
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> UtcMillis {
        let t = chrono::Local
            .with_ymd_and_hms(2026, 11, 26, h, m, 0)
            .single()
            .unwrap();
        UtcMillis(t.timestamp_millis())
    }

    #[test]
    fn a_run_is_due_after_its_grace() {
        let daily = schedule::parse_cron("0 1 * * *").unwrap();
        // 01:30: today's 01:00 run may still be running; yesterday's must be done.
        assert_eq!(
            due_at(&daily, at(1, 30)).unwrap().0,
            at(1, 0).0 - 86_400_000
        );
        // 02:00: an hour of grace is over.
        assert_eq!(due_at(&daily, at(2, 0)).unwrap(), at(1, 0));
        assert_eq!(human_age(90_061_000), "1d 1h");
        assert_eq!(human_age(61_000), "1m 1s");
    }

    fn fs(mount: &str, percent: u64, level: crate::diskmon::Level) -> crate::diskmon::FsUsage {
        crate::diskmon::FsUsage {
            mount: mount.to_string(),
            device: "tmpfs".to_string(),
            holds: vec!["home".to_string()],
            total_bytes: 100,
            used_bytes: percent,
            available_bytes: 100 - percent,
            use_percent: percent,
            level,
            excluded: false,
        }
    }

    #[test]
    fn the_disk_line_says_how_full_and_where_the_thresholds_are() {
        use crate::diskmon::{Level, Thresholds};
        let t = Thresholds {
            warn: 85,
            critical: 95,
            excludes: vec![],
            interval_secs: 600,
        };
        let line = |fs: &[crate::diskmon::FsUsage]| {
            let c = disk_item(fs, &t);
            format_text(&CheckReport {
                server: "s".to_string(),
                ok: c.ok,
                checks: vec![c],
            })
        };
        assert_eq!(
            line(&[fs("/", 18, Level::Ok)]),
            "Server s:\n\tdisk: OK (/ 18% used; warn at 85%, critical at 95%)\n"
        );
        assert_eq!(
            line(&[fs("/", 18, Level::Ok), fs("/backup", 88, Level::Warning)]),
            "Server s:\n\tdisk: OK (/ 18% used, /backup 88% used (past the warning level); \
             warn at 85%, critical at 95%)\n"
        );
        let critical = disk_item(&[fs("/", 97, Level::Critical)], &t);
        assert!(!critical.ok);
        assert_eq!(
            critical.detail,
            "/ 97% used (past the critical level); warn at 85%, critical at 95%"
        );
        assert!(!disk_item(&[], &t).ok);
    }
}

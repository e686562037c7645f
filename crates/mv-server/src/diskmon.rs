//! The disk monitor of `mailvault serve` (`zmdisklog`): usage of the filesystems
//! holding the home and the backup target against `zmdisklog_warn_threshold` and
//! `zmdisklog_critical_threshold` (percent), skipping the mount points listed in
//! `zmstat_df_excludes` (colon-separated), every `zmstat_disk_interval` seconds.
//!
//! One alert per threshold crossing, not one per check (the seed's complaint): the
//! level of each filesystem is persisted in `<home>/log/diskmon-state.json`, an
//! alert goes out when the level rises, and dropping below a threshold re-arms it.
//! A restart keeps the level, so it does not alert again. Alerts are logged,
//! written as reports and emailed like backup reports. One usage row per
//! filesystem and day goes to `<home>/log/df.csv` (the trend `mailvault disk`
//! shows).

use crate::Service;
use crate::report::{self, ReportConfig};
use mv_home::Home;
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A filesystem's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

/// One filesystem's usage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FsUsage {
    pub mount: String,
    pub device: String,
    /// What mailvault keeps there (`home`, `backup target`).
    pub holds: Vec<String>,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// As df prints it: used / (used + available), rounded up.
    pub use_percent: u64,
    pub level: Level,
    pub excluded: bool,
}

/// The thresholds in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thresholds {
    pub warn: u64,
    pub critical: u64,
    pub excludes: Vec<String>,
    pub interval_secs: u64,
}

impl Thresholds {
    pub fn load(home: &Home) -> Thresholds {
        // Read, not `Home::open`, which would re-create a vanished home.
        let cfg = mv_home::LocalConfig::load(&home.localconfig_path()).ok();
        let get = |k: &str, d: u64| cfg.as_ref().map(|c| c.get_u64(k)).unwrap_or(d);
        Thresholds {
            warn: get("zmdisklog_warn_threshold", 85),
            critical: get("zmdisklog_critical_threshold", 95),
            excludes: cfg
                .as_ref()
                .and_then(|c| c.get("zmstat_df_excludes").map(str::to_string))
                .unwrap_or_default()
                .split(':')
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            interval_secs: get("zmstat_disk_interval", 600).max(1),
        }
    }

    fn level(&self, percent: u64) -> Level {
        if percent >= self.critical {
            Level::Critical
        } else if percent >= self.warn {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// A mount point from /proc/self/mountinfo: (mount point, device).
fn mounts() -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    };
    text.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let mount = fields.get(4)?;
            let dash = fields.iter().position(|f| *f == "-")?;
            let device = fields.get(dash + 2).unwrap_or(&"?");
            Some((PathBuf::from(unescape(mount)), unescape(device)))
        })
        .collect()
}

/// The mount point and device a path lives on (the longest matching mount point).
fn mount_of(path: &Path, table: &[(PathBuf, String)]) -> (String, String) {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    table
        .iter()
        .filter(|(m, _)| p.starts_with(m))
        .max_by_key(|(m, _)| m.components().count())
        .map(|(m, d)| (m.display().to_string(), d.clone()))
        .unwrap_or_else(|| ("/".into(), "?".into()))
}

pub(crate) fn statvfs(path: &Path) -> std::io::Result<(u64, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains NUL"))?;
    // SAFETY: statvfs fills the zeroed struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let f = st.f_frsize as u64;
    let total = st.f_blocks as u64 * f;
    let used = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * f;
    Ok((total, used, st.f_bavail as u64 * f))
}

/// The paths to watch: the home and the backup target (when it is local).
pub fn watched_paths(service: &Service) -> Vec<(String, PathBuf)> {
    let mut v = vec![(
        "home".to_string(),
        service.store().home().root().to_path_buf(),
    )];
    if let Ok(t) = crate::backup::target_for(service, None)
        && let Some(root) = t
            .local_path("sessions")
            .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        v.push(("backup target".to_string(), root));
    }
    v
}

/// Usage of the filesystems holding `paths`, one entry per filesystem.
pub fn usage(paths: &[(String, PathBuf)], t: &Thresholds) -> Vec<FsUsage> {
    let table = mounts();
    let mut out: Vec<FsUsage> = Vec::new();
    for (what, path) in paths {
        let (mount, device) = mount_of(path, &table);
        if let Some(u) = out.iter_mut().find(|u| u.mount == mount) {
            u.holds.push(what.clone());
            continue;
        }
        let (total, used, available) = match statvfs(path) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("cannot measure {} ({what}): {e}", path.display());
                continue;
            }
        };
        let denom = used + available;
        let use_percent = if denom == 0 {
            0
        } else {
            (used * 100).div_ceil(denom)
        };
        let excluded = t.excludes.contains(&mount);
        out.push(FsUsage {
            level: if excluded {
                Level::Ok
            } else {
                t.level(use_percent)
            },
            mount,
            device,
            holds: vec![what.clone()],
            total_bytes: total,
            used_bytes: used,
            available_bytes: available,
            use_percent,
            excluded,
        });
    }
    out
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    levels: BTreeMap<String, Level>,
}

fn state_path(home: &Home) -> PathBuf {
    home.log_dir().join("diskmon-state.json")
}

fn load_state(home: &Home) -> State {
    std::fs::read(state_path(home))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// What one check found: the usage and the alerts it raised.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub filesystems: Vec<FsUsage>,
    pub alerts: Vec<String>,
}

/// One check: compares each filesystem's level with the persisted one, alerts on
/// a rise, re-arms on a fall, records the day's usage.
pub fn check_once(service: &Service) -> CheckOutcome {
    let home = service.store().home();
    let t = Thresholds::load(home);
    let fs = usage(&watched_paths(service), &t);
    let mut state = load_state(home);
    let mut alerts = Vec::new();
    let mut changed = false;
    for u in &fs {
        let before = state.levels.get(&u.mount).copied().unwrap_or(Level::Ok);
        if u.level == before {
            continue;
        }
        changed = true;
        state.levels.insert(u.mount.clone(), u.level);
        if u.level < before {
            tracing::info!(
                "disk {} back to {}% ({:?}); alerts re-armed",
                u.mount,
                u.use_percent,
                u.level
            );
            continue;
        }
        let (word, threshold) = match u.level {
            Level::Critical => ("critical", t.critical),
            _ => ("warning", t.warn),
        };
        let subject = format!(
            "Disk {word}: {}: {} on device {} at {}%",
            service.server_name(),
            u.mount,
            u.device,
            u.use_percent
        );
        tracing::warn!("{subject}");
        let body = format!(
            "Server: {}\nFilesystem: {}\nDevice: {}\nHolds: {}\nUsed: {}% ({} of {}, {} available)\nThreshold: {}% (zmdisklog_{}_threshold)\n\n\
             Free space there, or raise the threshold with mailvault localconfig -e zmdisklog_{}_threshold=N.\n\
             This alert is sent once; the next one comes when usage drops below and crosses again.\n",
            service.server_name(),
            u.mount,
            u.device,
            u.holds.join(", "),
            u.use_percent,
            mv_backup::space::human_bytes(u.used_bytes),
            mv_backup::space::human_bytes(u.total_bytes),
            mv_backup::space::human_bytes(u.available_bytes),
            threshold,
            if word == "critical" {
                "critical"
            } else {
                "warn"
            },
            if word == "critical" {
                "critical"
            } else {
                "warn"
            },
        );
        let r = report::custom_report(
            "disk",
            false,
            subject.clone(),
            body,
            report::ReportDetail::Disk(u.clone()),
        );
        match ReportConfig::of(service) {
            Ok(cfg) => {
                report::record(home, &cfg, r);
            }
            Err(e) => tracing::error!("cannot report the disk alert: {e}"),
        }
        alerts.push(subject);
    }
    state.levels.retain(|m, _| fs.iter().any(|u| &u.mount == m));
    if changed {
        let path = state_path(home);
        let result = std::fs::create_dir_all(home.log_dir()).and_then(|_| {
            mv_home::write_atomic(
                &path,
                &serde_json::to_vec_pretty(&state).unwrap_or_default(),
            )
        });
        if let Err(e) = result {
            tracing::error!("cannot write {}: {e}", path.display());
        }
    }
    if let Err(e) = record_daily(home, &fs) {
        tracing::error!("cannot record disk usage in log/df.csv: {e}");
    }
    CheckOutcome {
        filesystems: fs,
        alerts,
    }
}

/// A row of log/df.csv.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayRow {
    pub date: String,
    pub mount: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub use_percent: u64,
}

const CSV_HEADER: &str = "date,mount,total_bytes,used_bytes,available_bytes,use_percent";

fn csv_path(home: &Home) -> PathBuf {
    home.log_dir().join("df.csv")
}

/// The recorded days, oldest first.
pub fn history(home: &Home) -> Vec<DayRow> {
    let text = std::fs::read_to_string(csv_path(home)).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 6 {
                return None;
            }
            Some(DayRow {
                date: f[0].to_string(),
                mount: f[1].to_string(),
                total_bytes: f[2].parse().ok()?,
                used_bytes: f[3].parse().ok()?,
                available_bytes: f[4].parse().ok()?,
                use_percent: f[5].parse().ok()?,
            })
        })
        .collect()
}

/// Keeps the latest sample of each day and filesystem.
fn record_daily(home: &Home, fs: &[FsUsage]) -> std::io::Result<()> {
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let mut rows = history(home);
    for u in fs.iter().filter(|u| !u.mount.contains(',')) {
        let row = DayRow {
            date: today.clone(),
            mount: u.mount.clone(),
            total_bytes: u.total_bytes,
            used_bytes: u.used_bytes,
            available_bytes: u.available_bytes,
            use_percent: u.use_percent,
        };
        match rows
            .iter_mut()
            .find(|r| r.date == today && r.mount == u.mount)
        {
            Some(r) => *r = row,
            None => rows.push(row),
        }
    }
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for r in &rows {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.date, r.mount, r.total_bytes, r.used_bytes, r.available_bytes, r.use_percent
        ));
    }
    std::fs::create_dir_all(home.log_dir())?;
    mv_home::write_atomic(&csv_path(home), text.as_bytes())
}

/// A filesystem's trend over the recorded days.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trend {
    pub mount: String,
    pub days: usize,
    /// Average growth per day between the first and the last recorded day.
    pub bytes_per_day: i64,
    /// At that rate, days until the filesystem is full (none when not growing).
    pub days_until_full: Option<u64>,
}

pub fn trends(rows: &[DayRow]) -> Vec<Trend> {
    let mut by_mount: BTreeMap<&str, Vec<&DayRow>> = BTreeMap::new();
    for r in rows {
        by_mount.entry(&r.mount).or_default().push(r);
    }
    by_mount
        .into_iter()
        .map(|(mount, rs)| {
            let days = rs.len();
            let (first, last) = (rs[0], rs[days - 1]);
            let span = day_number(&last.date) - day_number(&first.date);
            let bytes_per_day = if span > 0 {
                (last.used_bytes as i64 - first.used_bytes as i64) / span
            } else {
                0
            };
            Trend {
                mount: mount.to_string(),
                days,
                bytes_per_day,
                days_until_full: (bytes_per_day > 0)
                    .then(|| last.available_bytes / bytes_per_day as u64),
            }
        })
        .collect()
}

fn day_number(date: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| d.num_days_from_ce() as i64)
        .unwrap_or(0)
}

use chrono::Datelike as _;

/// `mailvault disk`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskStatus {
    pub thresholds: Thresholds,
    pub filesystems: Vec<FsUsage>,
    /// The level each filesystem was last alerted at.
    pub alerted_levels: BTreeMap<String, Level>,
    pub history: Vec<DayRow>,
    pub trends: Vec<Trend>,
    /// When this was measured (RFC 3339).
    pub checked: String,
}

/// `mailvault disk`: current usage, levels, history and trend.
pub fn status(service: &Service) -> DiskStatus {
    let home = service.store().home();
    let t = Thresholds::load(home);
    let fs = usage(&watched_paths(service), &t);
    let state = load_state(home);
    let rows = history(home);
    DiskStatus {
        thresholds: t,
        filesystems: fs,
        alerted_levels: state.levels,
        trends: trends(&rows),
        history: rows,
        checked: UtcMillis::now().rfc3339(),
    }
}

/// Starts the monitor thread; it stops when `stop` is set.
pub fn spawn(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("disk monitor".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                check_once(&service);
                let interval =
                    Duration::from_secs(Thresholds::load(service.store().home()).interval_secs);
                while started.elapsed() < interval && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(date: &str, used: u64, avail: u64) -> DayRow {
        DayRow {
            date: date.into(),
            mount: "/srv".into(),
            total_bytes: used + avail,
            used_bytes: used,
            available_bytes: avail,
            use_percent: used * 100 / (used + avail),
        }
    }

    #[test]
    fn trend_is_growth_per_day_and_days_until_full() {
        let rows = [row("2026-11-01", 1000, 9000), row("2026-11-11", 2000, 8000)];
        let t = &trends(&rows)[0];
        assert_eq!(t.days, 2);
        assert_eq!(t.bytes_per_day, 100);
        assert_eq!(t.days_until_full, Some(80));
        let shrinking = [row("2026-11-01", 2000, 8000), row("2026-11-03", 1000, 9000)];
        assert_eq!(trends(&shrinking)[0].days_until_full, None);
    }

    #[test]
    fn levels_from_thresholds() {
        let t = Thresholds {
            warn: 85,
            critical: 95,
            excludes: vec![],
            interval_secs: 600,
        };
        assert_eq!(t.level(84), Level::Ok);
        assert_eq!(t.level(85), Level::Warning);
        assert_eq!(t.level(95), Level::Critical);
        let table = vec![
            (PathBuf::from("/"), "/dev/root".to_string()),
            (PathBuf::from("/srv"), "tmpfs".to_string()),
        ];
        assert_eq!(mount_of(Path::new("/srv/x/y"), &table).1, "tmpfs");
        assert_eq!(mount_of(Path::new("/srvx"), &table).1, "/dev/root");
    }
}

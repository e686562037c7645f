//! The disk monitor of `mailvault serve` on a small tmpfs the test mounts (never
//! the real disk): one alert per threshold crossing, kept across a restart,
//! re-armed below the threshold, excludes honoured; `mailvault disk` / zmdisklog.
//! Needs root (CI runs as root); a failed mount fails the test.

mod common;
mod opsutil;

use common::*;
use opsutil::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn disk_json(env: &Env) -> Value {
    let o = mailvault(env, &["disk", "--json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

fn the_fs<'a>(v: &'a Value, mount: &str) -> &'a Value {
    v["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["mount"] == mount)
        .unwrap_or_else(|| panic!("{mount} not in {v}"))
}

/// Grows a filler file until the filesystem is at least `percent` full.
fn fill_to(env: &Env, mount: &str, name: &str, percent: u64) {
    let f = disk_json(env);
    let fs = the_fs(&f, mount);
    let (used, avail) = (
        fs["used_bytes"].as_u64().unwrap(),
        fs["available_bytes"].as_u64().unwrap(),
    );
    let want = (used + avail) * percent / 100 + 64 * 1024;
    let add = want.saturating_sub(used);
    std::fs::write(Path::new(mount).join(name), vec![0u8; add as usize]).unwrap();
    let now = the_fs(&disk_json(env), mount)["use_percent"]
        .as_u64()
        .unwrap();
    assert!(now >= percent, "filled to {now}%, wanted {percent}%");
}

fn disk_mails(smtp: &Smtp) -> Vec<Mail> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject.starts_with("Disk "))
        .collect()
}

#[test]
fn one_alert_per_threshold_crossing_on_a_tmpfs() {
    let env = Env::new();
    // The whole home (and so the default backup target) on a 16 MB tmpfs.
    let fs = Tmpfs::mount(&env.home, "16m");
    env.init();
    let mount = std::fs::canonicalize(&fs.0).unwrap().display().to_string();
    let smtp = Smtp::start(&env.root.join("maildir"), free_port());
    configure_ports(&env);
    lc(
        &env,
        &[
            "zmdisklog_warn_threshold=50",
            "zmdisklog_critical_threshold=80",
            "zmstat_disk_interval=1",
        ],
    );
    configure_reports(&env, smtp.port);

    let v = disk_json(&env);
    let f = the_fs(&v, &mount);
    assert_eq!(f["device"], "tmpfs");
    let holds: Vec<&str> = f["holds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(holds, ["home", "backup target"]);
    assert!(f["use_percent"].as_u64().unwrap() < 50, "{f}");
    assert_eq!(v["thresholds"]["warn"], 50);
    assert_eq!(v["thresholds"]["critical"], 80);

    let settle = || std::thread::sleep(Duration::from_millis(3500));
    with_server(&env, || {
        settle();
        assert_eq!(disk_mails(&smtp).len(), 0, "below the thresholds: no alert");
        fill_to(&env, &mount, "filler-1", 60);
        let m = smtp.wait_for("the warning", 10, |m| {
            m.iter().any(|m| m.subject.starts_with("Disk warning: "))
        });
        let warn = m
            .iter()
            .find(|m| m.subject.starts_with("Disk warning: "))
            .unwrap();
        assert!(
            warn.subject
                .contains(&format!(": {mount} on device tmpfs at ")),
            "{}",
            warn.subject
        );
        assert!(
            warn.body
                .contains("Threshold: 50% (zmdisklog_warn_threshold)"),
            "{}",
            warn.body
        );
        settle();
        assert_eq!(
            disk_mails(&smtp).len(),
            1,
            "one alert per crossing, not per check"
        );

        fill_to(&env, &mount, "filler-2", 85);
        smtp.wait_for("the critical alert", 10, |m| {
            m.iter().any(|m| m.subject.starts_with("Disk critical: "))
        });
        settle();
        assert_eq!(disk_mails(&smtp).len(), 2);
        // check reports the critical level.
        let o = mailvault(&env, &["check"]);
        assert!(
            o.stdout.contains(&format!("\tdisk: FAILED ({mount} ")),
            "{}",
            o.stdout
        );
        assert!(
            o.stdout
                .contains("% used (past the critical level); warn at 50%, critical at 80%)"),
            "{}",
            o.stdout
        );
    });
    // A restart remembers the level: no new alert.
    with_server(&env, || {
        settle();
        assert_eq!(disk_mails(&smtp).len(), 2, "a restart must not alert again");
        // Below the warning threshold: re-armed; crossing again alerts again.
        std::fs::remove_file(Path::new(&mount).join("filler-1")).unwrap();
        std::fs::remove_file(Path::new(&mount).join("filler-2")).unwrap();
        settle();
        assert_eq!(disk_mails(&smtp).len(), 2, "falling below sends nothing");
        fill_to(&env, &mount, "filler-3", 60);
        smtp.wait_for("the second warning", 10, |m| {
            m.iter()
                .filter(|m| m.subject.starts_with("Disk warning: "))
                .count()
                == 2
        });
        // An excluded mount point is not watched.
        lc(&env, &[&format!("zmstat_df_excludes=/nonexistent:{mount}")]);
        fill_to(&env, &mount, "filler-4", 85);
        settle();
        assert_eq!(disk_mails(&smtp).len(), 3, "excluded: no alert");
        std::fs::remove_file(Path::new(&mount).join("filler-4")).unwrap();
    });
    assert_eq!(disk_mails(&smtp).len(), 3);

    // The alerts are reports too, and the day's usage is recorded.
    let r: Value =
        serde_json::from_str(&mailvault(&env, &["backup", "report", "--json", "-n", "10"]).stdout)
            .unwrap();
    let disk: Vec<&Value> = r["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "disk")
        .collect();
    assert_eq!(disk.len(), 3);
    let v = disk_json(&env);
    let rows: Vec<&Value> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mount"] == mount.as_str())
        .collect();
    assert_eq!(rows.len(), 1, "one row per day and filesystem: {v}");
    assert!(env.home.join("log/df.csv").is_file());
    let csv = std::fs::read_to_string(env.home.join("log/df.csv")).unwrap();
    assert!(csv.starts_with("date,mount,total_bytes,used_bytes,available_bytes,use_percent\n"));
    let text = env.ok("zmdisklog", &[]).stdout;
    assert!(text.contains(&mount), "{text}");
    assert!(text.contains("excluded"), "{text}");
    assert!(text.contains("Trend (log/df.csv):"), "{text}");
    drop(fs);
}

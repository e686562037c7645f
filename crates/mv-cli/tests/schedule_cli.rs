//! zmschedulebackup, the scheduler inside `mailvault serve`, backup reports
//! emailed to a real SMTP listener (aiosmtpd), the persisted outbox, and `check`.

mod common;
mod opsutil;

use common::*;
use opsutil::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Splits a command line the way a shell does for double-quoted words.
fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.trim().chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[test]
fn zmschedulebackup_edits_the_schedule_like_the_original() {
    let env = Env::new();
    let q = env.ok("zmschedulebackup", &["-q"]);
    assert_eq!(q.stdout, "Current Schedule:\n\n");

    let d = env.ok("zmschedulebackup", &["-D"]);
    assert_eq!(
        d.stdout,
        "Default schedule set\n\nCurrent Schedule:\n\n\tf 0 1 * * 6 -a all\n\ti 0 1 * * 0-5\n\td 1m 0 0 * * *\n"
    );
    // The seed's example: change the retention to 14 days.
    let r = env.ok(
        "zmschedulebackup",
        &[
            "-R",
            "f",
            "0 1 * * 6",
            "i",
            "0 1 * * 0-5",
            "d",
            "14d",
            "0 0 * * *",
        ],
    );
    assert_eq!(
        r.stdout,
        "Schedule replaced\n\nCurrent Schedule:\n\n\tf 0 1 * * 6 -a all\n\ti 0 1 * * 0-5\n\td 14d 0 0 * * *\n"
    );
    // It is the server's zimbraBackupSchedule.
    let gs = env.ok("zmprov", &["gs", "zimbraBackupSchedule"]).stdout;
    assert!(gs.contains("zimbraBackupSchedule: d 14d 0 0 * * *"), "{gs}");

    // -A with options passed to the backups: -z to f and i.
    let a = env.ok("zmschedulebackup", &["-z", "-A", "i", "30 12 * * 1-5"]);
    assert!(
        a.stdout.starts_with("Schedule appended\n\n"),
        "{}",
        a.stdout
    );
    assert!(
        a.stdout
            .ends_with("\td 14d 0 0 * * *\n\ti 30 12 * * 1-5 -z\n"),
        "{}",
        a.stdout
    );

    // -s prints a line that sets the same schedule again.
    let before = env.ok("zmschedulebackup", &["-q"]).stdout;
    let saved = env.ok("zmschedulebackup", &["-s"]).stdout;
    assert_eq!(
        saved,
        "zmschedulebackup -R f \"0 1 * * 6 -a all\" i \"0 1 * * 0-5\" d 14d \"0 0 * * *\" i \"30 12 * * 1-5 -z\"\n"
    );
    env.ok("zmschedulebackup", &["-F"]);
    let words = shell_words(&saved);
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    env.ok("zmschedulebackup", &args);
    assert_eq!(env.ok("zmschedulebackup", &["-q"]).stdout, before);

    // --crontab: what cron would run.
    let c = env.ok("zmschedulebackup", &["--crontab"]).stdout;
    let lines: Vec<&str> = c.lines().collect();
    assert!(lines[0].starts_with("MAILVAULT_HOME="), "{c}");
    assert!(lines[1].starts_with("0 1 * * 6 /"), "{c}");
    assert!(lines[1].ends_with(" backup -f -a all"), "{c}");
    assert!(lines[3].ends_with(" backup -del 14d"), "{c}");
    env.ok("zmschedulebackup", &["-R", "f", "*/5 * * * * *"]);
    let c = env.ok("zmschedulebackup", &["--crontab"]).stdout;
    assert!(
        c.contains("# not expressible in crontab (seconds field): */5 * * * * * "),
        "{c}"
    );

    // Mistakes are refused with exit 2 and the schedule is unchanged.
    let before = env.ok("zmschedulebackup", &["-q"]).stdout;
    for bad in [
        vec!["-R", "f", "0 99 * * *"],
        vec!["-R", "f", "0 1 * *"],
        vec!["-R", "d", "1w", "0 0 * * *"],
        vec!["-R", "x", "0 0 * * *"],
        vec!["-R", "f", "0 1 * * 6 --bogus"],
        vec!["-q", "f", "0 1 * * 6"],
        vec!["-R"],
    ] {
        let o = env.zm("zmschedulebackup", &bad);
        assert_eq!(o.code, 2, "{bad:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.starts_with("error: "), "{bad:?}: {}", o.stderr);
    }
    let o = env.zm("zmschedulebackup", &["-R", "f", "0 99 * * *"]);
    assert!(o.stderr.contains("invalid cron expression"), "{}", o.stderr);
    assert_eq!(env.ok("zmschedulebackup", &["-q"]).stdout, before);

    // -D with options: the accounts of the fulls, compression of the backups.
    let d = env.ok("zmschedulebackup", &["-D", "-a", "x@d.test", "-z"]);
    assert!(
        d.stdout
            .ends_with("\tf 0 1 * * 6 -a x@d.test -z\n\ti 0 1 * * 0-5 -z\n\td 1m 0 0 * * *\n"),
        "{}",
        d.stdout
    );

    // Auto-Grouped mode has its own default.
    env.ok("zmprov", &["mcf", "zimbraBackupMode", "Auto-Grouped"]);
    let d = env.ok("zmschedulebackup", &["-D"]);
    assert!(
        d.stdout
            .ends_with("Current Schedule:\n\n\tf 0 1 * * 0-6\n\td 1m 0 0 * * *\n"),
        "{}",
        d.stdout
    );
    env.ok("zmschedulebackup", &["-F"]);
    assert_eq!(
        env.ok("zmschedulebackup", &["-q"]).stdout,
        "Current Schedule:\n\n"
    );

    // check without a server and without a schedule: failures, exit 1.
    let o = mailvault(&env, &["check"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout.contains("\tserver running: FAILED ("),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("\tbackup schedule: FAILED (no full backup is scheduled"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("\tredo logging: OK"), "{}", o.stdout);
    assert!(
        o.stdout.contains("\tbackup target writable: OK"),
        "{}",
        o.stdout
    );
    let j: Value = serde_json::from_str(&mailvault(&env, &["check", "--json"]).stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert!(j["checks"].as_array().unwrap().len() >= 8);
}

/// The newest reports, as JSON.
fn reports(env: &Env, n: usize) -> Vec<Value> {
    let o = mailvault(env, &["backup", "report", "--json", "-n", &n.to_string()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    v["reports"].as_array().cloned().unwrap_or_default()
}

fn backup_mails(m: &[Mail]) -> Vec<&Mail> {
    m.iter()
        .filter(|m| m.subject.starts_with("ZCS Backup Report: "))
        .collect()
}

#[test]
fn server_runs_the_schedule_reports_by_email_catches_up_and_check_follows() {
    let env = Env::new();
    let smtp = Smtp::start(&env.root.join("maildir"), free_port());
    configure_ports(&env);
    quiet_disk_monitor(&env);
    configure_reports(&env, smtp.port);
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "secret"]);
    // Due once a year: never backed up, so overdue.
    env.ok("zmschedulebackup", &["-R", "f", "0 0 1 1 *"]);

    with_server(&env, || {
        let o = mailvault(&env, &["check"]);
        assert_eq!(o.code, 1, "{}", o.stdout);
        assert!(
            o.stdout.contains("\tserver running: OK (pid "),
            "{}",
            o.stdout
        );
        assert!(
            o.stdout
                .contains("\tfull backups: FAILED (1 account overdue: a@d.test (never, due "),
            "{}",
            o.stdout
        );

        // A backup triggered from the CLI, run by the server: reported by email.
        let o = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
        let label = o.stdout.trim().to_string();
        let mails = smtp.wait_for("the report of the CLI backup", 20, |m| {
            backup_mails(m).iter().any(|m| m.body.contains(&label))
        });
        let mail = backup_mails(&mails)
            .into_iter()
            .find(|m| m.body.contains(&label))
            .unwrap()
            .clone();
        assert_eq!(mail.subject, "ZCS Backup Report: SUCCESS");
        assert!(mail.from.contains("backup@d.test"), "{}", mail.from);
        assert!(mail.to.contains("admin@d.test"), "{}", mail.to);
        let lines: Vec<&str> = mail.body.lines().collect();
        assert!(lines[0].starts_with("Server: "), "{}", mail.body);
        let at = lines
            .iter()
            .position(|l| *l == format!("Label:   {label}"))
            .unwrap();
        assert_eq!(lines[at + 1], "Type:    full");
        assert_eq!(lines[at + 2], "Status:  completed");
        assert!(lines[at + 3].starts_with("Started: "), "{}", mail.body);
        assert!(lines[at + 4].starts_with("Ended:   "), "{}", mail.body);
        assert!(
            lines[at + 5].starts_with("Redo log sequence range: "),
            "{}",
            mail.body
        );
        assert_eq!(lines[at + 6], "Number of accounts: 1");
        assert_eq!(lines[at + 7], "Number of errors: 0");
        // The same report under log/ and as JSON.
        let r = &reports(&env, 1)[0];
        assert_eq!(r["subject"], "ZCS Backup Report: SUCCESS");
        assert_eq!(r["email"], "sent");
        assert_eq!(r["detail"]["sessions"][0]["label"], label.as_str());
        let id = r["id"].as_str().unwrap();
        assert!(env.home.join(format!("log/reports/{id}.txt")).is_file());
        let text = mailvault(&env, &["backup", "report"]).stdout;
        assert!(
            text.starts_with("Subject: ZCS Backup Report: SUCCESS\n"),
            "{text}"
        );
        assert!(text.contains(&format!("Label:   {label}\n")), "{text}");

        // Backed up since the due time: check passes.
        let o = mailvault(&env, &["check"]);
        assert_eq!(o.code, 0, "{}", o.stdout);
        assert!(
            o.stdout.contains("\tfull backups: OK (1 account, oldest "),
            "{}",
            o.stdout
        );
        assert!(o.stdout.contains("\tlast runs: OK"), "{}", o.stdout);

        // A schedule of seconds: the server runs fulls at :00/:05/... and deletes at
        // :02/:07/..., each reported.
        env.ok(
            "zmschedulebackup",
            &["-R", "f", "*/5 * * * * *", "d", "1m", "2-59/5 * * * * *"],
        );
        smtp.wait_for("a scheduled full and a scheduled delete", 20, |m| {
            let b = backup_mails(m);
            b.iter()
                .any(|m| m.body.contains("Scheduled: f */5 * * * * * -a all\n"))
                && b.iter().any(|m| {
                    m.body.contains("Scheduled: d 1m 2-59/5 * * * * *\n")
                        && m.body.contains("Operation: delete (-del 1m)\n")
                })
        });
        // On time: each ran within 2 s of its due second (a 200 ms tick).
        let rs = reports(&env, 20);
        let full = rs
            .iter()
            .find(|r| r["note"]["scheduled"].as_str() == Some("f */5 * * * * * -a all"))
            .unwrap();
        let due = full["note"]["due"].as_i64().unwrap();
        assert_eq!(due % 5000, 0, "{full}");
        let started = full["detail"]["sessions"][0]["started"].as_i64().unwrap();
        assert!(
            (0..2000).contains(&(started - due)),
            "due {due}, started {started}"
        );
        assert_eq!(full["ok"], true);
        let del = rs.iter().find(|r| r["operation"] == "delete").unwrap();
        let due = del["note"]["due"].as_i64().unwrap();
        assert_eq!(due % 5000, 2000, "{del}");
        let at = del["at"].as_i64().unwrap();
        assert!((0..2000).contains(&(at - due)), "due {due}, reported {at}");
        assert_eq!(del["note"]["missed"], false);
    });

    // Down across an occurrence: the run happens once at start-up, and says so.
    std::thread::sleep(Duration::from_secs(8));
    let before = backup_mails(&smtp.messages()).len();
    let started = Instant::now();
    with_server(&env, || {
        let mails = smtp.wait_for("the report of the missed run", 15, |m| {
            backup_mails(m).iter().any(|m| {
                m.body
                    .contains("was missed while the server was down; it ran at start-up")
            })
        });
        assert!(backup_mails(&mails).len() > before);
        assert!(started.elapsed() < Duration::from_secs(10));
        let log = std::fs::read_to_string(env.home.join("log/mailbox.log")).unwrap();
        assert!(log.contains("missed its run at"), "{log}");
        let rs = reports(&env, 20);
        assert!(rs.iter().any(|r| r["note"]["missed"] == true));

        // A scheduled run that cannot start is reported as a FAIL, and check says so.
        env.ok("zmprov", &["mcf", "zimbraBackupMinFreeSpace", "100%"]);
        env.ok("zmschedulebackup", &["-R", "f", "*/2 * * * * *"]);
        let mails = smtp.wait_for("a FAIL report", 15, |m| {
            backup_mails(m)
                .iter()
                .any(|m| m.subject == "ZCS Backup Report: FAIL")
        });
        let fail = backup_mails(&mails)
            .into_iter()
            .find(|m| m.subject == "ZCS Backup Report: FAIL")
            .unwrap()
            .clone();
        assert!(
            fail.body
                .contains("Error: Backup cannot start because free space is less than 100%"),
            "{}",
            fail.body
        );
        env.ok("zmschedulebackup", &["-F"]);
        let o = mailvault(&env, &["check"]);
        assert_eq!(o.code, 1, "{}", o.stdout);
        assert!(
            o.stdout.contains("\tlast runs: FAILED (")
                && o.stdout.contains(" runs failed: backup "),
            "{}",
            o.stdout
        );
        assert!(
            o.stdout.contains(
                "\tfree space: FAILED (Backup cannot start because free space is less than 100%"
            ),
            "{}",
            o.stdout
        );
    });
}

#[test]
fn a_failed_report_email_waits_in_the_outbox_and_is_retried() {
    let env = Env::new();
    configure_ports(&env);
    quiet_disk_monitor(&env);
    lc(&env, &["backup_report_retry_seconds=1"]);
    let port = free_port(); // nothing listens there yet
    configure_reports(&env, port);
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "secret"]);

    // No server: the CLI runs the backup; the email fails but the backup does not.
    let o = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    let label = o.stdout.trim().to_string();
    let v: Value =
        serde_json::from_str(&mailvault(&env, &["backup", "report", "--json"]).stdout).unwrap();
    let email = v["reports"][0]["email"].as_str().unwrap();
    assert!(
        email.starts_with("queued (1 tries, last error: "),
        "{email}"
    );
    let pending = v["outbox"]["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{v}");
    assert_eq!(pending[0]["attempts"], 1);
    assert!(pending[0]["last_error"].as_str().is_some(), "{v}");
    // A delete from the CLI is reported too.
    env.ok("zmbackup", &["-del", "1m"]);
    let text = mailvault(&env, &["backup", "report"]).stdout;
    assert!(
        text.starts_with("Subject: ZCS Backup Report: SUCCESS\n"),
        "{text}"
    );
    assert!(text.contains("\nOperation: delete (-del 1m)\n"), "{text}");
    assert!(text.contains("Outbox: 2 waiting, 0 given up"), "{text}");

    // The relay comes up; the server (another process) sends the queued report.
    let smtp = Smtp::start(&env.root.join("maildir"), port);
    with_server(&env, || {
        let mails = smtp.wait_for("the retried reports", 15, |m| {
            backup_mails(m).iter().any(|m| m.body.contains(&label))
                && backup_mails(m)
                    .iter()
                    .any(|m| m.body.contains("Operation: delete (-del 1m)"))
        });
        assert_eq!(backup_mails(&mails).len(), 2);
        let v: Value =
            serde_json::from_str(&mailvault(&env, &["backup", "report", "--json"]).stdout).unwrap();
        assert_eq!(v["outbox"]["pending"].as_array().unwrap().len(), 0, "{v}");
        assert_eq!(v["reports"][0]["email"], "sent", "{v}");
    });
}

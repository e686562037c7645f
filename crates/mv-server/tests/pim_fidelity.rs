//! Calendar and contact fidelity, judged by parsers we did not write (python
//! icalendar and vobject): realistic Google Calendar and Thunderbird exports
//! (folded lines, UTF-8, two time zones, an event series across a DST change
//! with EXDATEs, a changed instance, alarms, attendees, all-day and 29 February
//! yearly events, a to-do and a journal entry) and Apple / vCard 4.0 contacts
//! (item groups, PHOTO, several EMAIL and TEL with TYPE).

use mv_home::{Home, HomeLock};
use mv_server::{Request, Service};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/pim")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// The python with both parsers (scripts/install-test-deps installs the
/// Debian packages python3-icalendar and python3-vobject).
fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import icalendar, vobject"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("python3 with icalendar and vobject (run scripts/install-test-deps)")
}

fn check(kind: &str, export: &Path, originals: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/pim_check.py");
    let out = Command::new(python())
        .arg(script)
        .arg(kind)
        .arg(export)
        .args(originals.iter().map(|o| fixture(o)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kind} export judged wrong by the python parsers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The answer as its wire JSON (what a client reads).
fn exec(svc: &Service, req: Request) -> serde_json::Value {
    serde_json::to_value(svc.execute(req).unwrap()).unwrap()
}

fn export_ics(svc: &Service, account: &str) -> String {
    exec(
        svc,
        Request::ExportCalendar {
            account: account.into(),
            folder: "/Calendar".into(),
        },
    )["ics"]
        .as_str()
        .unwrap()
        .to_string()
}

fn import_ics(svc: &Service, account: &str, ics: &str) -> serde_json::Value {
    exec(
        svc,
        Request::ImportCalendar {
            account: account.into(),
            folder: "/Calendar".into(),
            ics: ics.into(),
        },
    )
}

fn export_vcf(svc: &Service, account: &str) -> String {
    exec(
        svc,
        Request::ExportContacts {
            account: account.into(),
            folder: "/Contacts".into(),
        },
    )["vcf"]
        .as_str()
        .unwrap()
        .to_string()
}

fn import_vcf(svc: &Service, account: &str, vcf: &str) {
    exec(
        svc,
        Request::ImportContacts {
            account: account.into(),
            folder: "/Contacts".into(),
            vcf: vcf.into(),
        },
    );
}

#[test]
fn calendars_and_contacts_survive_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    home.init().unwrap();
    let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(&home).unwrap();
    svc.directory().create_domain("example.com", &[]).unwrap();
    for u in ["a@example.com", "b@example.com"] {
        svc.create_account(u, None, &[]).unwrap();
    }

    // Two exports sharing a time zone, then one changed occurrence of the series.
    for f in ["google.ics", "thunderbird.ics", "change.ics"] {
        import_ics(&svc, "a@example.com", &read(f));
    }
    let first = export_ics(&svc, "a@example.com");
    assert_eq!(first.matches("BEGIN:VTIMEZONE").count(), 2, "one per TZID");
    let path = dir.path().join("first.ics");
    std::fs::write(&path, &first).unwrap();
    check(
        "ics",
        &path,
        &["google.ics", "thunderbird.ics", "change.ics"],
    );

    // An older copy of the series changes nothing: the newer instance stays.
    let again = import_ics(&svc, "a@example.com", &read("google.ics"));
    assert_eq!(
        export_ics(&svc, "a@example.com")
            .matches("verschoben")
            .count(),
        1,
        "{again}"
    );
    check(
        "ics",
        &path,
        &["google.ics", "thunderbird.ics", "change.ics"],
    );

    // Export → import → export is byte-identical, and re-importing changes nothing.
    import_ics(&svc, "b@example.com", &first);
    let second = export_ics(&svc, "b@example.com");
    assert_eq!(second, first, "the second export is byte-identical");
    import_ics(&svc, "b@example.com", &second);
    assert_eq!(export_ics(&svc, "b@example.com"), first);

    // Contacts: vCard 3.0 and 4.0 with groups, PHOTO, several EMAIL and TEL.
    import_vcf(&svc, "a@example.com", &read("contacts.vcf"));
    let cards = export_vcf(&svc, "a@example.com");
    let path = dir.path().join("cards.vcf");
    std::fs::write(&path, &cards).unwrap();
    check("vcf", &path, &["contacts.vcf"]);
    import_vcf(&svc, "b@example.com", &cards);
    assert_eq!(export_vcf(&svc, "b@example.com"), cards);
}

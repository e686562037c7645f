//! `backup search` finds contacts and appointments too: by a word of their
//! text, their name or summary, their folder and an appointment's start, each
//! with its kind, folder, date and whether the live mailbox still holds it;
//! terms only messages have (`is:unread`, `from:`) never match them.

mod common;

use common::Fx;
use mv_backup::items::{AccountSearch, SearchOptions};
use mv_backup::{RestoreRun, SessionKind};
use mv_redo::ops::folders;
use mv_types::ItemId;

const USER: &str = "user@d.test";

const VCARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nN:Lovelace;Ada;;;\r\n\
                     EMAIL:ada@engines.example\r\nNOTE:analytical engine\r\nEND:VCARD\r\n";

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
                   BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\n\
                   DTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
                   END:STANDARD\r\nEND:VTIMEZONE\r\n\
                   BEGIN:VEVENT\r\nUID:budget-1@d.test\r\nDTSTAMP:20250301T080000Z\r\n\
                   DTSTART:20250310T090000Z\r\nDTEND:20250310T100000Z\r\n\
                   SUMMARY:Budget review\r\nDESCRIPTION:quarterly numbers\r\n\
                   BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n\
                   END:VEVENT\r\nEND:VCALENDAR\r\n";

fn search(fx: &Fx, q: &str) -> AccountSearch {
    let mut run = RestoreRun::new();
    mv_backup::items::search_account(
        &mut run,
        &fx.source(),
        fx.target().as_ref(),
        USER,
        q,
        &SearchOptions::default(),
    )
    .unwrap()
}

fn kinds(s: &AccountSearch) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = s
        .hits
        .iter()
        .map(|h| (h.kind.clone(), h.subject.clone()))
        .collect();
    v.sort();
    v
}

fn pair(kind: &str, subject: &str) -> (String, String) {
    (kind.to_string(), subject.to_string())
}

#[test]
fn contacts_and_appointments_are_found_with_kind_folder_date_and_presence() {
    let fx = Fx::new();
    let a = fx.account(USER);
    let m = a.mailbox_id;
    let contact = fx
        .store
        .put_contact(m, folders::CONTACTS, VCARD, None)
        .unwrap();
    fx.store.import_calendar(m, folders::CALENDAR, ICS).unwrap();
    fx.deliver(
        b"From: cfo@d.test\r\nTo: user@d.test\r\nSubject: budget figures\r\n\
          Message-ID: <b1@d.test>\r\nDate: Thu, 05 Jun 2014 01:00:23 -0700\r\n\r\nsee attached\r\n",
        &[&a],
    );
    fx.backup(SessionKind::Full);
    // The contact is deleted after the backup; the appointment stays.
    fx.store.delete_items(m, &[ItemId(contact)]).unwrap();

    let budget = search(&fx, "budget");
    assert_eq!(
        kinds(&budget),
        vec![
            pair("appointment", "Budget review"),
            pair("message", "budget figures")
        ]
    );
    let appt = budget
        .hits
        .iter()
        .find(|h| h.kind == "appointment")
        .unwrap();
    assert_eq!(appt.folder, "/Calendar");
    assert_eq!(
        appt.date_ms, 1_741_597_200_000,
        "its start, 2025-03-10 09:00 UTC"
    );
    assert_eq!(appt.message_id, "budget-1@d.test");
    assert_eq!(appt.present, Some(true));
    assert_eq!(appt.labels.len(), 1);

    // A word of the vCard (its NOTE), and its name.
    for q in ["analytical", "subject:lovelace", "in:/Contacts"] {
        let s = search(&fx, q);
        assert_eq!(kinds(&s), vec![pair("contact", "Ada Lovelace")], "{q}");
        let c = &s.hits[0];
        assert_eq!(c.folder, "/Contacts");
        assert_eq!(c.date_ms, 0);
        assert_eq!(c.present, Some(false), "deleted since the backup");
    }

    // The appointment's start is its date for date terms.
    let march = search(&fx, "after:03/01/2025 before:03/31/2025");
    assert_eq!(kinds(&march), vec![pair("appointment", "Budget review")]);
    assert!(search(&fx, "after:04/01/2025").hits.is_empty());

    // Message-only terms match messages only.
    assert_eq!(
        kinds(&search(&fx, "is:unread")),
        vec![pair("message", "budget figures")]
    );
    assert_eq!(
        kinds(&search(&fx, "from:cfo")),
        vec![pair("message", "budget figures")]
    );
}

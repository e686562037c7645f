//! `zmrestore --folder` and `--items` on the apply side: a folder of a few
//! hundred messages comes back into the live mailbox each exactly once, byte
//! for byte, with its flags, tags and received date and its IMAP UIDs in the
//! original order, also when run twice; contacts and appointments deleted
//! after a full come back with the same vCard and iCalendar text, once.
//!
//! Runs through `mv_backup::items::restore_items`, the function the
//! `restore_items` request calls, on a store without a server process.

mod common;

use common::Fx;
use mv_backup::items::{ItemRestoreOptions, ItemRestoreReport, Selection};
use mv_backup::{RestoreRun, SessionKind};
use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange};
use mv_types::{ItemId, MailboxId, UtcMillis};
use std::collections::BTreeMap;

const USER: &str = "user@d.test";
const IN_FOLDER: usize = 200;

fn restore(fx: &Fx, selection: Selection) -> ItemRestoreReport {
    let mut run = RestoreRun::new();
    mv_backup::items::restore_items(
        &mut run,
        &fx.source(),
        fx.target().as_ref(),
        USER,
        &ItemRestoreOptions {
            selection,
            point: None,
            into: None,
            dry_run: false,
        },
    )
    .unwrap()
}

fn raw(n: usize) -> Vec<u8> {
    format!(
        "From: sender{}@d.test\r\nTo: user@d.test\r\nSubject: report {n}\r\n\
         Message-ID: <m{n}@d.test>\r\nDate: Thu, 05 Jun 2014 01:00:23 -0700\r\n\r\n\
         body of message {n}\r\n",
        n % 7
    )
    .into_bytes()
}

/// What a restored message must have again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    flags: u32,
    tags: Vec<String>,
    received_ms: i64,
}

#[test]
fn a_folder_of_200_comes_back_each_once_with_flags_tags_and_order() {
    let fx = Fx::new();
    let a = fx.account(USER);
    let m = a.mailbox_id;
    let projects = fx
        .store
        .create_folder(m, folders::ROOT, "Projects", "message")
        .unwrap();
    let red = fx.store.create_tag(m, "Red", 1).unwrap();
    let blue = fx.store.create_tag(m, "Blue", 4).unwrap();
    let mut expect: BTreeMap<usize, Expect> = BTreeMap::new();
    let base = UtcMillis::now().0 - 10_000_000;
    for n in 0..IN_FOLDER + 100 {
        let in_folder = n % 3 != 2 || n >= IN_FOLDER + 50;
        let (folder_id, wanted) = if in_folder && expect.len() < IN_FOLDER {
            (projects, true)
        } else {
            (folders::INBOX, false)
        };
        let mut tags = Vec::new();
        let mut names = Vec::new();
        if n % 4 == 0 {
            tags.push(red);
            names.push("Red".to_string());
        }
        if n % 5 == 0 {
            tags.push(blue);
            names.push("Blue".to_string());
        }
        let opts = DeliverOptions {
            folder_id,
            flags: 0,
            tags,
            received: Some(UtcMillis(base + n as i64 * 1000)),
        };
        let id = fx.store.deliver(&raw(n), &[m], &opts).unwrap()[0];
        // Flags set after delivery, as a client does.
        let bits = match n % 3 {
            0 => flags::SEEN,
            1 => flags::SEEN | flags::FLAGGED,
            _ => 0,
        };
        if bits != 0 {
            fx.store.set_flags(m, &[id], FlagChange::Add(bits)).unwrap();
        }
        if wanted {
            expect.insert(
                n,
                Expect {
                    flags: bits,
                    tags: names,
                    received_ms: base + n as i64 * 1000,
                },
            );
        }
    }
    assert_eq!(expect.len(), IN_FOLDER);
    fx.backup(SessionKind::Full);
    // The user's mistake: the folder emptied, and a tag gone with it.
    assert_eq!(fx.store.empty_folder(m, projects).unwrap(), IN_FOLDER);
    fx.store.delete_tag(m, blue).unwrap();
    let inbox_before = fx.store.mailbox(m).messages(folders::INBOX).unwrap().len();

    let first = restore(&fx, Selection::Folder("/Projects".into()));
    assert_eq!(first.restored.len(), IN_FOLDER, "{:?}", first.notes);
    assert!(first.already_present.is_empty());
    assert!(
        first.folders_created.is_empty(),
        "the folder exists: {:?}",
        first.folders_created
    );
    assert!(first.restored.iter().all(|r| r.folder == "/Projects"));
    check_folder(&fx, m, projects, &expect);
    assert_eq!(
        fx.store.mailbox(m).messages(folders::INBOX).unwrap().len(),
        inbox_before,
        "nothing restored elsewhere"
    );
    // The tag that was gone is made once, with its colour.
    let tags = fx.store.mailbox(m).tags().unwrap();
    let blues: Vec<_> = tags.iter().filter(|t| t.name == "Blue").collect();
    assert_eq!(blues.len(), 1, "{tags:?}");
    assert_eq!(blues[0].color, 4);

    let second = restore(&fx, Selection::Folder("/Projects".into()));
    assert!(second.restored.is_empty(), "{:?}", second.restored.len());
    assert_eq!(second.already_present.len(), IN_FOLDER);
    check_folder(&fx, m, projects, &expect);
}

/// The folder holds exactly the expected messages, once each, byte-exact, with
/// their flags, tags and received dates, UIDs in the original order.
fn check_folder(fx: &Fx, m: MailboxId, folder: u32, expect: &BTreeMap<usize, Expect>) {
    let mbox = fx.store.mailbox(m);
    let names: BTreeMap<u32, String> = mbox
        .tags()
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut got: BTreeMap<usize, Expect> = BTreeMap::new();
    let mut by_uid = Vec::new();
    for i in mbox.messages(folder).unwrap() {
        let n: usize = i
            .message_id
            .trim_matches(|c| c == '<' || c == '>')
            .trim_start_matches('m')
            .trim_end_matches("@d.test")
            .parse()
            .unwrap();
        assert_eq!(
            fx.store.read_blob(m, &i).unwrap(),
            raw(n),
            "message {n} is not byte-exact"
        );
        let mut tags: Vec<String> = i.tags.iter().map(|t| names[t].clone()).collect();
        tags.sort_by(|a, b| b.cmp(a));
        let e = Expect {
            flags: i.flags & flags::ALL,
            tags,
            received_ms: i.received_ms,
        };
        assert!(got.insert(n, e).is_none(), "message {n} is there twice");
        by_uid.push((i.imap_uid, n));
    }
    let mut want = expect.clone();
    for e in want.values_mut() {
        e.tags.sort_by(|a, b| b.cmp(a));
    }
    assert_eq!(got, want);
    by_uid.sort();
    let order: Vec<usize> = by_uid.iter().map(|(_, n)| *n).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "UIDs follow the original order");
}

const VCARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nN:Lovelace;Ada;;;\r\n\
                     EMAIL:ada@engines.example\r\nNOTE:analytical engine\r\nEND:VCARD\r\n";

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
                   BEGIN:VEVENT\r\nUID:budget-1@d.test\r\nDTSTAMP:20250301T080000Z\r\n\
                   DTSTART:20250310T090000Z\r\nDTEND:20250310T100000Z\r\n\
                   SUMMARY:Budget review\r\nDESCRIPTION:analytical numbers\r\n\
                   END:VEVENT\r\nEND:VCALENDAR\r\n";

/// The live mailbox's contacts and appointments: (kind, folder, text).
fn pim(fx: &Fx, m: MailboxId) -> Vec<(String, u32, String)> {
    let mbox = fx.store.mailbox(m);
    let mut v: Vec<_> = mbox
        .contacts()
        .unwrap()
        .into_iter()
        .chain(mbox.appointments().unwrap())
        .map(|i| {
            (
                i.kind.name().to_string(),
                i.folder_id,
                i.content.unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_deleted_contact_and_appointment_come_back_with_their_text_once() {
    let fx = Fx::new();
    let a = fx.account(USER);
    let m = a.mailbox_id;
    let contact = fx
        .store
        .put_contact(m, folders::CONTACTS, VCARD, None)
        .unwrap();
    let appt = fx
        .store
        .import_calendar(m, folders::CALENDAR, ICS)
        .unwrap()
        .created[0];
    let before = pim(&fx, m);
    assert_eq!(before.len(), 2);
    fx.backup(SessionKind::Full);
    fx.store
        .delete_items(m, &[ItemId(contact), ItemId(appt)])
        .unwrap();
    assert!(pim(&fx, m).is_empty());

    // One word both texts hold.
    let first = restore(&fx, Selection::Query("analytical".into()));
    let mut kinds: Vec<_> = first
        .restored
        .iter()
        .map(|r| (r.kind.as_str(), r.folder.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![("appointment", "/Calendar"), ("contact", "/Contacts")]
    );
    assert!(first.restored.iter().all(|r| r.new_item_id.is_some()));
    assert_eq!(pim(&fx, m), before, "the same text, in the same folders");

    let second = restore(&fx, Selection::Query("analytical".into()));
    assert!(second.restored.is_empty(), "{:?}", second.restored);
    assert_eq!(second.already_present.len(), 2);
    assert_eq!(pim(&fx, m), before, "not duplicated");

    // A folder of contacts, by --folder, after the contact is deleted again.
    let again = fx.store.mailbox(m).contacts().unwrap()[0].id;
    fx.store.delete_items(m, &[ItemId(again)]).unwrap();
    let third = restore(&fx, Selection::Folder("/Contacts".into()));
    assert_eq!(third.restored.len(), 1);
    assert_eq!(third.restored[0].kind, "contact");
    assert_eq!(pim(&fx, m), before);
}

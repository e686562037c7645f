//! Mailbox tgz export/import (`getRestURL "//?fmt=tgz"` / `postRestURL
//! "//?fmt=tgz&resolve=..."`), driven through `Service` in a temporary home.
//! Mailboxes are compared by content (folders by path, items by bytes, flags, tag
//! names, dates), since item ids differ after an import.

use mv_home::Home;
use mv_redo::ops::{flags, folders};
use mv_server::stream::{BodyFormat, ExportParams, ExportResult, ImportParams, ImportResult};
use mv_server::{Request, Service};
use mv_store::ItemKind;
use mv_store::tgz::{self, Resolve};
use mv_store::{DeliverOptions, FlagChange};
use mv_types::{ItemId, MailboxId, UtcMillis};
use std::io::{Cursor, Read, Write};

const U: &str = "u@example.com";
const OTHER: &str = "other@example.com";

fn open() -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    home.init().unwrap();
    let (service, _) = Service::open(&home).unwrap();
    service
        .execute(Request::CreateDomain {
            name: "example.com".into(),
            attrs: vec![],
        })
        .unwrap();
    service.create_account(U, Some("pw"), &[]).unwrap();
    service.create_account(OTHER, Some("pw"), &[]).unwrap();
    (dir, service)
}

fn msg(subject: &str, message_id: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <alice@example.com>\r\nTo: u@example.com\r\nSubject: {subject}\r\n\
         Date: Fri, 19 Nov 2010 13:55:08 +0100\r\n"
    )
    .into_bytes();
    if let Some(id) = message_id {
        m.extend_from_slice(format!("Message-ID: <{id}>\r\n").as_bytes());
    }
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(body);
    m
}

fn vcard(name: &str, email: &str) -> String {
    format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nEMAIL:{email}\r\nEND:VCARD\r\n")
}

fn ics(uid: &str, seq: u32, summary: &str, component: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:{component}\r\nUID:{uid}\r\n\
         SEQUENCE:{seq}\r\nDTSTAMP:20101119T135508Z\r\nDTSTART:20101120T100000Z\r\nSUMMARY:{summary}\r\n\
         END:{component}\r\nEND:VCALENDAR\r\n"
    )
}

/// A mailbox with nested folders (one named `..`), tags, messages with every flag,
/// tags and received dates (one with 8-bit bytes, two identical ones in one folder),
/// contacts in two folders and appointments (one a to-do) in three.
fn populate(s: &Service, account: &str) -> MailboxId {
    let st = s.store();
    let m = s.mailbox_of(account).unwrap();
    let deeper = st
        .create_folder_path(m, "/Inbox/sub/deeper", "message")
        .unwrap();
    let sub = st
        .mailbox(m)
        .folder_by_path("/Inbox/sub")
        .unwrap()
        .unwrap()
        .id;
    let projects = st.create_folder_path(m, "/Projects", "message").unwrap();
    let dots = st.create_folder(m, projects, "..", "message").unwrap();
    let odd = st.create_folder(m, projects, "50% a:b", "message").unwrap();
    let work_contacts = st
        .create_folder_path(m, "/Work Contacts", "contact")
        .unwrap();
    let team_cal = st
        .create_folder_path(m, "/Team Cal", "appointment")
        .unwrap();
    st.create_folder_path(m, "/Empty/Nested", "document")
        .unwrap();
    let work = st.create_tag(m, "work", 3).unwrap();
    let personal = st.create_tag(m, "Personal", 5).unwrap();
    st.create_tag(m, "unused", 1).unwrap();

    let add = |raw: &[u8], folder: u32, fl: u32, tags: Vec<u32>, received: i64| {
        st.add_message(
            m,
            raw,
            &DeliverOptions {
                folder_id: folder,
                flags: fl,
                tags,
                received: Some(UtcMillis(received)),
            },
        )
        .unwrap()
    };
    let hello = msg("Hello", Some("hello@x"), b"first\r\n");
    add(&hello, folders::INBOX, 0, vec![], 1_290_171_308_000);
    add(
        &msg("Re: sub / thing?", Some("sub@x"), b"second\r\n"),
        sub,
        flags::SEEN | flags::FLAGGED,
        vec![work],
        1_290_171_309_123,
    );
    let mut binary = b"8-bit \xe9t\xe9 \x00\x01\xff\xfe\r\n".to_vec();
    binary.extend((0u8..=255).collect::<Vec<u8>>());
    add(
        &msg("=?utf-8?q?caf=C3=A9?=", Some("bin@x"), &binary),
        deeper,
        flags::SEEN | flags::ANSWERED | flags::DRAFT,
        vec![work, personal],
        946_684_800_001,
    );
    add(
        &hello,
        projects,
        flags::DELETED | flags::SEEN,
        vec![personal],
        1_000,
    );
    add(
        &msg("no id", None, b"no message-id here\r\n"),
        dots,
        flags::SEEN,
        vec![],
        2_000,
    );
    add(
        &msg("odd folder", Some("odd@x"), b"odd\r\n"),
        odd,
        0,
        vec![work],
        3_000,
    );
    let twin = msg("twin", Some("twin@x"), b"same twice\r\n");
    add(&twin, folders::SENT, flags::SEEN, vec![], 4_000);
    add(
        &twin,
        folders::SENT,
        flags::SEEN | flags::FLAGGED,
        vec![],
        5_000,
    );

    let c1 = st
        .put_contact(m, folders::CONTACTS, &vcard("Jane Doe", "jane@x"), None)
        .unwrap();
    st.put_contact(m, folders::CONTACTS, &vcard("John Roe", "john@x"), None)
        .unwrap();
    st.put_contact(m, work_contacts, &vcard("Boss", "boss@x"), None)
        .unwrap();
    st.set_tags(m, &[ItemId(c1)], &[personal]).unwrap();

    st.import_calendar(
        m,
        folders::CALENDAR,
        &ics("evt-1@x", 3, "Team meeting", "VEVENT"),
    )
    .unwrap();
    let r = st
        .import_calendar(m, folders::CALENDAR, &ics("evt-2@x", 0, "Lunch", "VEVENT"))
        .unwrap();
    st.set_tags(m, &[ItemId(r.created[0])], &[work]).unwrap();
    st.import_calendar(m, team_cal, &ics("evt-3@x", 1, "Retro", "VEVENT"))
        .unwrap();
    st.import_calendar(m, folders::TASKS, &ics("todo-1@x", 0, "Report", "VTODO"))
        .unwrap();
    m
}

/// (folder, bytes, flags, tag names, received_ms)
type Message = (String, Vec<u8>, u32, Vec<String>, i64);
/// (folder, ics, uid, sequence, dtstamp, flags, tag names)
type Appointment = (String, String, String, i64, i64, u32, Vec<String>);

/// A mailbox's content, independent of ids.
#[derive(Debug, PartialEq, Eq)]
struct Content {
    folders: Vec<(String, String)>,
    tags: Vec<(String, u32)>,
    messages: Vec<Message>,
    /// (folder, vcard, flags, tag names)
    contacts: Vec<(String, String, u32, Vec<String>)>,
    appointments: Vec<Appointment>,
}

fn content(s: &Service, m: MailboxId) -> Content {
    let mb = s.store().mailbox(m);
    let fs = mb.folders().unwrap();
    let ts = mb.tags().unwrap();
    let path = |id: u32| fs.iter().find(|f| f.id == id).unwrap().path.clone();
    let names = |ids: &[u32]| {
        let mut n: Vec<String> = ids
            .iter()
            .map(|i| ts.iter().find(|t| t.id == *i).unwrap().name.clone())
            .collect();
        n.sort();
        n
    };
    let mut c = Content {
        folders: fs
            .iter()
            .filter(|f| f.id != folders::ROOT)
            .map(|f| (f.path.clone(), f.view.clone()))
            .collect(),
        tags: ts.iter().map(|t| (t.name.clone(), t.color)).collect(),
        messages: vec![],
        contacts: vec![],
        appointments: vec![],
    };
    for i in mb.items(None, None).unwrap() {
        match i.kind {
            ItemKind::Message => c.messages.push((
                path(i.folder_id),
                s.store().read_blob(m, &i).unwrap(),
                i.flags,
                names(&i.tags),
                i.received_ms,
            )),
            ItemKind::Contact => c.contacts.push((
                path(i.folder_id),
                i.content.clone().unwrap(),
                i.flags,
                names(&i.tags),
            )),
            ItemKind::Appointment => c.appointments.push((
                path(i.folder_id),
                i.content.clone().unwrap(),
                i.cal_uid.clone().unwrap(),
                i.sequence,
                i.dtstamp_ms,
                i.flags,
                names(&i.tags),
            )),
            other => panic!("unexpected item type {other}"),
        }
    }
    c.folders.sort();
    c.tags.sort();
    c.messages.sort();
    c.contacts.sort();
    c.appointments.sort();
    c
}

fn export(s: &Service, account: &str, query: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    s.export_tgz(account, query, &mut out).unwrap();
    out
}

fn import(s: &Service, account: &str, resolve: Resolve, data: &[u8]) -> tgz::ImportReport {
    s.import_tgz(account, resolve, Cursor::new(data)).unwrap()
}

/// What `zmmailbox ef` on every folder, `df` on every user folder and deleting
/// every tag leave.
fn empty_everything(s: &Service, m: MailboxId) {
    let st = s.store();
    for f in st.mailbox(m).folders().unwrap() {
        if f.id >= folders::FIRST_USER_ID && f.parent_id < folders::FIRST_USER_ID {
            st.delete_folder(m, f.id).unwrap();
        }
    }
    // Not the root: emptying it would take the system folders with it.
    for f in st.mailbox(m).folders().unwrap() {
        if f.id != folders::ROOT {
            st.empty_folder(m, f.id).unwrap();
        }
    }
    for t in st.mailbox(m).tags().unwrap() {
        st.delete_tag(m, t.id).unwrap();
    }
    let c = content(s, m);
    assert!(c.messages.is_empty() && c.contacts.is_empty() && c.appointments.is_empty());
    assert!(c.tags.is_empty());
}

/// (path, is_dir, bytes) of every entry of a tgz.
fn entries(data: &[u8]) -> Vec<(String, bool, Vec<u8>)> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(data));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let dir = e.header().entry_type().is_dir();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (path, dir, bytes)
        })
        .collect()
}

/// Builds a tgz from raw entries, names written as given (so unsafe ones too).
fn build(entries: &[(String, u8, Vec<u8>)]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let name = &mut h.as_old_mut().name;
        assert!(path.len() < name.len(), "test path too long: {path}");
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        gz.write_all(h.as_bytes()).unwrap();
        gz.write_all(data).unwrap();
        let pad = (512 - data.len() % 512) % 512;
        gz.write_all(&vec![0; pad]).unwrap();
    }
    gz.write_all(&[0; 1024]).unwrap();
    gz.finish().unwrap()
}

fn rebuild(data: &[u8], edit: impl FnOnce(&mut Vec<(String, u8, Vec<u8>)>)) -> Vec<u8> {
    let mut list: Vec<(String, u8, Vec<u8>)> = entries(data)
        .into_iter()
        .map(|(p, dir, b)| if dir { (p, b'5', b) } else { (p, b'0', b) })
        .collect();
    edit(&mut list);
    build(&list)
}

#[test]
fn export_then_replace_or_reset_restores_the_same_mailbox() {
    let (_dir, s) = open();
    let m = populate(&s, U);
    let before = content(&s, m);
    assert_eq!(before.messages.len(), 8);
    assert_eq!(before.contacts.len(), 3);
    assert_eq!(before.appointments.len(), 4);
    let data = export(&s, U, None);
    assert_eq!(&data[..2], &[0x1f, 0x8b]);

    // The layout: manifest first, folder directories, meta + content per item.
    let list = entries(&data);
    assert_eq!(list[0].0, "mailbox.json");
    let manifest: tgz::Manifest = serde_json::from_slice(&list[0].2).unwrap();
    assert_eq!(
        (
            manifest.format.as_str(),
            manifest.version,
            manifest.account.as_str()
        ),
        (tgz::FORMAT, 1, U)
    );
    let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
    for dir in [
        "Inbox/",
        "Inbox/sub/",
        "Inbox/sub/deeper/",
        "Projects/%2E%2E/",
        "Projects/50%25 a%3Ab/",
        "Contacts/",
        "Calendar/",
    ] {
        assert!(list.iter().any(|e| e.1 && e.0 == dir), "{dir} in {names:?}");
    }
    let eml = list
        .iter()
        .position(|e| e.0.starts_with("Inbox/sub/deeper/") && e.0.ends_with(".eml"))
        .unwrap();
    assert_eq!(list[eml - 1].0, format!("{}.meta", list[eml].0));
    let meta: tgz::ItemMeta = serde_json::from_slice(&list[eml - 1].2).unwrap();
    assert_eq!(meta.folder, "/Inbox/sub/deeper");
    assert_eq!(meta.flags, flags::SEEN | flags::ANSWERED | flags::DRAFT);
    assert_eq!(meta.received_ms, Some(946_684_800_001));
    assert!(list[eml].2.windows(4).any(|w| w == b"\x00\x01\xff\xfe"));
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("Calendar/") && n.ends_with("-Team_meeting.ics")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("Contacts/") && n.ends_with("-Jane_Doe.vcf")),
        "{names:?}"
    );

    // `ef` everything, then resolve=replace brings it all back.
    empty_everything(&s, m);
    let r = import(&s, U, Resolve::Replace, &data);
    assert_eq!(r.messages.added, 8, "{r:?}");
    assert_eq!((r.contacts.added, r.appointments.added), (3, 4), "{r:?}");
    assert_eq!(content(&s, m), before);

    // Changes after the export are undone by resolve=reset.
    let st = s.store();
    st.add_message(
        m,
        &msg("later", Some("later@x"), b"x\r\n"),
        &DeliverOptions::default(),
    )
    .unwrap();
    st.create_folder_path(m, "/Inbox/sub/extra", "message")
        .unwrap();
    st.create_tag(m, "extra", 0).unwrap();
    let all: Vec<ItemId> = st
        .mailbox(m)
        .items(None, Some(ItemKind::Message))
        .unwrap()
        .iter()
        .map(|i| ItemId(i.id))
        .collect();
    st.set_flags(m, &all, FlagChange::Replace(flags::FLAGGED))
        .unwrap();
    st.put_contact(m, folders::CONTACTS, &vcard("New Person", "new@x"), None)
        .unwrap();
    assert_ne!(content(&s, m), before);
    let r = import(&s, U, Resolve::Reset, &data);
    assert!(
        r.reset_items_deleted >= 17 && r.reset_tags_deleted == 4,
        "{r:?}"
    );
    assert_eq!(content(&s, m), before);

    // Into another account: the same content.
    let other = s.mailbox_of(OTHER).unwrap();
    let r = import(&s, OTHER, Resolve::Skip, &data);
    assert_eq!(r.messages.added, 8, "{r:?}");
    assert_eq!(content(&s, other), before);
}

#[test]
fn skip_adds_only_what_is_missing_and_modify_updates_flags() {
    let (_dir, s) = open();
    let m = populate(&s, U);
    let before = content(&s, m);
    let data = export(&s, U, None);
    let st = s.store();

    // Re-importing into the same mailbox changes nothing at all.
    let state = st.mailbox_state(m).unwrap();
    let r = import(&s, U, Resolve::Skip, &data);
    assert_eq!((r.messages.skipped, r.messages.added), (8, 0), "{r:?}");
    assert_eq!(
        (r.contacts.skipped, r.appointments.skipped),
        (3, 4),
        "{r:?}"
    );
    assert_eq!((r.folders_created, r.tags_created), (0, 0));
    assert_eq!(st.mailbox_state(m).unwrap(), state);

    // A deleted message comes back with skip; changed flags stay.
    let items = st.mailbox(m).items(None, Some(ItemKind::Message)).unwrap();
    let (gone, changed) = (&items[0], &items[1]);
    st.delete_items(m, &[ItemId(gone.id)]).unwrap();
    st.set_flags(
        m,
        &[ItemId(changed.id)],
        FlagChange::Replace(flags::DELETED),
    )
    .unwrap();
    st.set_tags(m, &[ItemId(changed.id)], &[]).unwrap();
    let contact = st.mailbox(m).contacts().unwrap()[0].id;
    st.set_tags(m, &[ItemId(contact)], &[]).unwrap();
    let r = import(&s, U, Resolve::Skip, &data);
    assert_eq!((r.messages.added, r.messages.skipped), (1, 7), "{r:?}");
    let now = content(&s, m);
    assert_eq!(now.messages.len(), 8);
    assert_ne!(now, before);

    // modify puts the archive's flags and tags back, adds nothing.
    let r = import(&s, U, Resolve::Modify, &data);
    assert_eq!((r.messages.updated, r.messages.added), (8, 0), "{r:?}");
    assert_eq!(r.contacts.updated, 3);
    assert_eq!(content(&s, m), before);

    // replace: same content again, flags from the archive.
    st.set_flags(m, &[ItemId(changed.id)], FlagChange::Add(flags::FLAGGED))
        .ok();
    let r = import(&s, U, Resolve::Replace, &data);
    assert_eq!(
        (
            r.messages.replaced,
            r.contacts.replaced,
            r.appointments.replaced
        ),
        (8, 3, 4),
        "{r:?}"
    );
    assert_eq!(content(&s, m), before);
}

#[test]
fn query_selects_messages_only() {
    let (_dir, s) = open();
    let m = populate(&s, U);
    let data = export(&s, U, Some("tag:work"));
    let list = entries(&data);
    let emls = list.iter().filter(|e| e.0.ends_with(".eml")).count();
    assert_eq!(emls, 3);
    assert_eq!(list.iter().filter(|e| e.0.ends_with(".vcf")).count(), 3);
    assert_eq!(list.iter().filter(|e| e.0.ends_with(".ics")).count(), 4);
    let manifest: tgz::Manifest = serde_json::from_slice(&list[0].2).unwrap();
    assert_eq!(manifest.query.as_deref(), Some("tag:work"));
    let other = s.mailbox_of(OTHER).unwrap();
    import(&s, OTHER, Resolve::Reset, &data);
    let (a, b) = (content(&s, m), content(&s, other));
    assert_eq!(
        (a.folders, a.tags, a.contacts, a.appointments),
        (b.folders, b.tags, b.contacts, b.appointments)
    );
    assert!(
        b.messages
            .iter()
            .all(|msg| msg.3.contains(&"work".to_string()))
    );

    let bad = s.export_tgz(U, Some("is:weird"), Vec::new()).unwrap_err();
    assert_eq!(bad.status(), 400, "{bad}");
}

#[test]
fn damaged_archives_are_refused_and_change_nothing() {
    let (_dir, s) = open();
    let m = populate(&s, U);
    let data = export(&s, U, None);
    let st = s.store();
    let state = st.mailbox_state(m).unwrap();
    let first_eml =
        |l: &Vec<(String, u8, Vec<u8>)>| l.iter().position(|e| e.0.ends_with(".eml")).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated gzip",
            data[..data.len() / 2].to_vec(),
            "damaged or truncated",
        ),
        (
            "last bytes cut",
            data[..data.len() - 4].to_vec(),
            "damaged or truncated",
        ),
        ("not gzip", b"hello".to_vec(), "not a gzip file"),
        (
            "dot-dot path",
            rebuild(&data, |l| {
                l.push(("Inbox/../../evil.eml".into(), b'0', b"x".to_vec()))
            }),
            "\"Inbox/../../evil.eml\": unsafe path",
        ),
        (
            "absolute path",
            rebuild(&data, |l| {
                l.push(("/etc/evil.eml".into(), b'0', b"x".to_vec()))
            }),
            "absolute paths",
        ),
        (
            "bad meta",
            rebuild(&data, |l| {
                let i = first_eml(l) - 1;
                l[i].2 = b"{\"kind\": \"message\", \"folder\": ".to_vec();
            }),
            ".eml.meta\": bad JSON",
        ),
        (
            "meta without eml",
            rebuild(&data, |l| {
                let i = first_eml(l);
                l.remove(i);
            }),
            "is missing",
        ),
        (
            "eml without meta",
            rebuild(&data, |l| {
                let i = first_eml(l);
                l.remove(i - 1);
            }),
            "has no",
        ),
        (
            "tampered message",
            rebuild(&data, |l| {
                let i = first_eml(l);
                l[i].2.push(b'!');
            }),
            "does not match the digest",
        ),
        (
            "unknown tag",
            rebuild(&data, |l| {
                let i = first_eml(l) - 1;
                let mut meta: serde_json::Value = serde_json::from_slice(&l[i].2).unwrap();
                meta["tags"] = serde_json::json!(["nope"]);
                l[i].2 = serde_json::to_vec(&meta).unwrap();
            }),
            "its tag \"nope\" is not listed",
        ),
        (
            "unknown entry",
            rebuild(&data, |l| {
                l.push(("Inbox/notes.txt".into(), b'0', b"x".to_vec()))
            }),
            "unknown entry",
        ),
        (
            "symlink",
            rebuild(&data, |l| l.push(("Inbox/link".into(), b'2', vec![]))),
            "unsupported entry type",
        ),
        (
            "no manifest",
            rebuild(&data, |l| {
                l.remove(0);
            }),
            "no mailbox.json",
        ),
        (
            "bad manifest",
            rebuild(&data, |l| l[0].2 = b"[1, 2".to_vec()),
            "\"mailbox.json\": bad JSON",
        ),
        (
            "newer format",
            rebuild(&data, |l| {
                let mut v: serde_json::Value = serde_json::from_slice(&l[0].2).unwrap();
                v["version"] = 99.into();
                l[0].2 = serde_json::to_vec(&v).unwrap();
            }),
            "format version 99",
        ),
    ];
    for (what, archive, expect) in cases {
        for resolve in [Resolve::Reset, Resolve::Replace, Resolve::Skip] {
            let err = s
                .import_tgz(U, resolve, Cursor::new(&archive))
                .expect_err(what);
            assert_eq!(err.status(), 400, "{what}: {err}");
            assert!(err.to_string().contains(expect), "{what}: {err}");
            assert_eq!(
                st.mailbox_state(m).unwrap(),
                state,
                "{what} changed the mailbox"
            );
        }
    }

    // An entry claiming to be huge is refused from its header, before it is read.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut h = tar::Header::new_gnu();
    h.set_path("Inbox/1-huge.eml").unwrap();
    h.set_size(tgz::MAX_MESSAGE_BYTES + 1);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    gz.write_all(&[0; 4096]).unwrap();
    let huge = gz.finish().unwrap();
    let err = s
        .import_tgz(U, Resolve::Reset, Cursor::new(&huge))
        .unwrap_err();
    assert!(
        err.to_string().contains("\"Inbox/1-huge.eml\"") && err.to_string().contains("allowed"),
        "{err}"
    );

    // A folder whose view differs from the mailbox's is refused up front.
    let clash = rebuild(&data, |l| {
        let mut v: serde_json::Value = serde_json::from_slice(&l[0].2).unwrap();
        for f in v["folders"].as_array_mut().unwrap() {
            if f["path"] == "/Empty" {
                f["view"] = "contact".into();
            }
        }
        l[0].2 = serde_json::to_vec(&v).unwrap();
    });
    let err = s
        .import_tgz(U, Resolve::Skip, Cursor::new(&clash))
        .unwrap_err();
    assert!(
        err.to_string().contains("/Empty is a document folder"),
        "{err}"
    );
    assert_eq!(st.mailbox_state(m).unwrap(), state);
}

#[test]
fn streams_carry_archives_and_refuse_more_than_the_limit() {
    let (_dir, s) = open();
    let m = populate(&s, U);
    let before = content(&s, m);
    let mut data = Vec::new();
    let params = ExportParams {
        fmt: BodyFormat::Tgz,
        folder: None,
        query: None,
    };
    let ExportResult::Archive(report) = s.export_to(U, &params, &mut data).unwrap() else {
        panic!("a tgz export answers with an archive report");
    };
    assert_eq!(report.messages, 8);
    assert_eq!(report.bytes, data.len() as u64);
    // Read once, as a network body is: spooled, then checked and imported.
    let params = ImportParams {
        fmt: BodyFormat::Tgz,
        folder: None,
        resolve: Some(Resolve::Reset),
    };
    let r = s.import_from(OTHER, &params, &mut &data[..]).unwrap();
    let ImportResult::Archive(r) = r else {
        panic!("a tgz import answers with an archive report");
    };
    assert_eq!(r.messages.added, 8);
    assert_eq!(content(&s, s.mailbox_of(OTHER).unwrap()), before);

    // Over the limit: refused (413) before the mailbox changes.
    let o = s.mailbox_of(OTHER).unwrap();
    let state = content(&s, o);
    let r = tgz::import_stream(
        s.store(),
        o,
        Resolve::Reset,
        &data[..],
        data.len() as u64 - 1,
    );
    let err = mv_server::ServiceError::from(r.unwrap_err());
    assert_eq!(err.status(), 413, "{err}");
    assert_eq!(content(&s, o), state);

    let bad: Result<ImportParams, _> =
        serde_json::from_value(serde_json::json!({"fmt": "tgz", "resolve": "merge"}));
    assert!(bad.is_err());
}

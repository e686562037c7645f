//! IMAP4rev2 (RFC 9051) next to IMAP4rev1: what changes for a client that
//! sends ENABLE IMAP4rev2 (UTF-8 mailbox names among them), and what stays
//! for one that does not.

use super::*;

#[test]
fn imap4rev2_once_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut old = Client::login(port, "alice");
    let caps = old.ok("CAPABILITY");
    assert!(caps[0].contains("IMAP4rev1 IMAP4rev2 "), "{caps:?}");
    old.ok("APPEND INBOX (\\Seen) {20+}\r\nSubject: a\r\n\r\nbody\r\n");
    old.ok("APPEND INBOX {20+}\r\nSubject: b\r\n\r\nbody\r\n");

    let mut c = Client::login(port, "alice");
    let r = c.ok("ENABLE IMAP4rev2");
    assert_eq!(r[0], "* ENABLED IMAP4rev2");
    // SELECT: no RECENT, no [UNSEEN], the mailbox's LIST line.
    let r = c.ok("SELECT INBOX");
    assert!(r.contains(&"* 2 EXISTS".to_string()), "{r:?}");
    assert!(
        !r.iter()
            .any(|l| l.contains("RECENT") || l.contains("[UNSEEN")),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasNoChildren) \"/\" INBOX".to_string()),
        "{r:?}"
    );
    let r = c.ok("FETCH 1:* FLAGS");
    assert!(!r.iter().any(|l| l.contains("\\Recent")), "{r:?}");
    // SEARCH answers as ESEARCH (ALL when no RETURN is given).
    let r = c.ok("SEARCH ALL");
    assert_eq!(r[0], format!("* ESEARCH (TAG \"t{}\") ALL 1:2", c.n));
    let r = c.ok("UID SEARCH UNSEEN");
    assert_eq!(r[0], format!("* ESEARCH (TAG \"t{}\") UID ALL 2", c.n));
    let r = c.ok("SEARCH SUBJECT nothing-like-this");
    assert_eq!(r[0], format!("* ESEARCH (TAG \"t{}\")", c.n));
    let r = c.ok("SEARCH RETURN (COUNT) ALL");
    assert_eq!(r[0], format!("* ESEARCH (TAG \"t{}\") COUNT 2", c.n));
    let r = c.ok("STATUS Sent (MESSAGES SIZE DELETED)");
    assert_eq!(r[0], "* STATUS Sent (MESSAGES 0 SIZE 0 DELETED 0)");
    // A new message: EXISTS, no RECENT.
    old.ok("APPEND INBOX {20+}\r\nSubject: c\r\n\r\nbody\r\n");
    let r = c.ok("NOOP");
    assert!(r.contains(&"* 3 EXISTS".to_string()), "{r:?}");
    assert!(!r.iter().any(|l| l.contains("RECENT")), "{r:?}");
    // Selecting another mailbox closes this one with [CLOSED].
    let r = c.ok("SELECT Sent");
    assert!(r[0].starts_with("* OK [CLOSED]"), "{r:?}");
    assert!(
        r.contains(&"* LIST (\\HasNoChildren \\Sent) \"/\" Sent".to_string()),
        "{r:?}"
    );

    // Mailbox names are UTF-8 as sent, not modified UTF-7 (RFC 9051 §5.1);
    // a rev1 session sees the same mailboxes in modified UTF-7.
    c.ok("CREATE {5+}\r\nK\u{f6}ln");
    c.ok("CREATE R&D");
    // UTF-8 in a quoted string too (RFC 9051 §4.3).
    c.ok("CREATE \"Z\u{fc}rich\"");
    c.ok("SUBSCRIBE \"Z\u{fc}rich\"");
    let r = c.ok("LIST \"\" *");
    let i = r
        .iter()
        .position(|l| l.ends_with("\"/\" {5}"))
        .expect("a literal name");
    assert_eq!(r[i + 1], "K\u{f6}ln", "{r:?}");
    assert!(r.iter().any(|l| l.ends_with("\"/\" R&D")), "{r:?}");
    let r = c.ok("STATUS R&D (MESSAGES)");
    assert_eq!(r[0], "* STATUS R&D (MESSAGES 0)");
    let r = old.ok("LIST \"\" *");
    assert!(r.iter().any(|l| l.ends_with("\"/\" K&APY-ln")), "{r:?}");
    assert!(r.iter().any(|l| l.ends_with("\"/\" R&-D")), "{r:?}");
    assert!(r.iter().any(|l| l.ends_with("\"/\" Z&APw-rich")), "{r:?}");
    let r = old.ok("LSUB \"\" *");
    assert!(r.iter().any(|l| l.ends_with("\"/\" Z&APw-rich")), "{r:?}");

    // The rev2 session took no message's \Recent: the first rev1 session to
    // select the mailbox still sees all three recent, and gets rev1 answers.
    let r = old.ok("SELECT INBOX");
    assert!(r.contains(&"* 3 RECENT".to_string()), "{r:?}");
    assert!(r.iter().any(|l| l.starts_with("* OK [UNSEEN 2]")), "{r:?}");
    assert!(!r.iter().any(|l| l.starts_with("* LIST")), "{r:?}");
    let r = old.ok("SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 1 2 3");
}

//! NOTIFY (RFC 5465) against the real server: what one session hears, without
//! asking, of another session's changes.

use super::*;

/// Unsolicited lines until one satisfies `want` (within 10 s); every line read.
fn wait_for(c: &mut Client, want: impl Fn(&str) -> bool) -> Vec<String> {
    c.w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut seen = Vec::new();
    loop {
        let mut l = String::new();
        if let Err(e) = c.r.read_line(&mut l) {
            panic!("no line as wanted within 10 s ({e}); got {seen:?}");
        }
        assert!(!l.is_empty(), "connection closed; got {seen:?}");
        let l = l.trim_end().to_string();
        let done = want(&l);
        seen.push(l);
        if done {
            c.w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            return seen;
        }
    }
}

/// Nothing arrives unasked within `ms`.
fn quiet(c: &mut Client, ms: u64) {
    c.w.set_read_timeout(Some(Duration::from_millis(ms)))
        .unwrap();
    let mut l = String::new();
    let r = c.r.read_line(&mut l);
    assert!(r.is_err() && l.is_empty(), "unasked: {l:?}");
    c.w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
}

#[test]
fn notify_reports_other_sessions_changes_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut a = Client::login(port, "alice");
    let caps = a.ok("CAPABILITY");
    assert!(caps[0].contains(" NOTIFY"), "{caps:?}");
    a.ok("CREATE other");
    a.ok("SELECT INBOX");
    let mut b = Client::login(port, "alice");
    b.append("other", "Subject: before\r\n\r\nx\r\n");

    // Malformed is BAD with the reason, an event not reported here BADEVENT.
    let r = a.cmd("NOTIFY SET (personal (Nonsense))");
    assert!(
        tagged(&r).contains(" BAD ") && tagged(&r).contains("unknown event"),
        "{r:?}"
    );
    let r = a.cmd("NOTIFY SET (personal (MessageNew AnnotationChange))");
    assert!(
        tagged(&r).contains(
            " NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
        ),
        "{r:?}"
    );

    // STATUS: the current state of each mailbox named, not of the selected one.
    let r = a.ok(
        "NOTIFY SET STATUS (selected (MessageNew (UID FLAGS BODY[HEADER.FIELDS (Subject)]) MessageExpunge FlagChange)) \
         (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))",
    );
    assert!(
        r.iter().any(|l| l.starts_with("* STATUS other (")
            && l.contains("MESSAGES 1")
            && l.contains("UIDNEXT 2")),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.starts_with("* STATUS INBOX")), "{r:?}");

    // A delivery to the selected mailbox: EXISTS and the asked attributes,
    // with no command from this client; BODY[] is read as a PEEK.
    b.append("INBOX", "Subject: hello\r\n\r\nbody\r\n");
    let got = wait_for(&mut a, |l| l.contains(" FETCH ("));
    assert!(got.iter().any(|l| l == "* 1 EXISTS"), "{got:?}");
    let fetch = got.last().unwrap();
    assert!(fetch.starts_with("* 1 FETCH (UID 1 FLAGS ("), "{fetch:?}");
    assert!(!fetch.contains("\\Seen"), "{fetch:?}");
    let body = wait_for(&mut a, |l| l == ")");
    assert!(body.iter().any(|l| l == "Subject: hello"), "{body:?}");
    // Flags and expunges in the selected mailbox as they happen.
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    let got = wait_for(&mut a, |l| l.contains("FETCH") && l.contains("\\Flagged"));
    assert!(
        got.last().unwrap().starts_with("* 1 FETCH (UID 1 FLAGS ("),
        "{got:?}"
    );
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    wait_for(&mut a, |l| l == "* 1 EXPUNGE");

    // Another mailbox: a STATUS for each change.
    b.append("other", "Subject: two\r\n\r\nx\r\n");
    let got = wait_for(&mut a, |l| l.starts_with("* STATUS other"));
    let l = got.last().unwrap();
    assert!(
        l.contains("MESSAGES 2") && l.contains("UIDNEXT 3") && l.contains("UNSEEN 2"),
        "{l}"
    );
    b.ok("SELECT other");
    b.ok("STORE 1 +FLAGS (\\Seen)");
    let got = wait_for(&mut a, |l| l.starts_with("* STATUS other"));
    assert!(got.last().unwrap().contains("UNSEEN 1"), "{got:?}");
    assert!(got.last().unwrap().contains("HIGHESTMODSEQ "), "{got:?}");

    // Mailbox names and subscriptions as LIST.
    b.ok("CREATE fresh");
    wait_for(&mut a, |l| l == "* LIST () \"/\" fresh");
    b.ok("RENAME fresh renamed");
    wait_for(&mut a, |l| {
        l == "* LIST () \"/\" renamed (\"OLDNAME\" (fresh))"
    });
    b.ok("DELETE renamed");
    wait_for(&mut a, |l| l == "* LIST (\\NonExistent) \"/\" renamed");
    b.ok("SUBSCRIBE other");
    wait_for(&mut a, |l| l == "* LIST (\\Subscribed) \"/\" other");
    b.ok("UNSUBSCRIBE other");
    wait_for(&mut a, |l| l == "* LIST () \"/\" other");

    // Commands still work, and the session goes on notifying after them.
    let r = a.ok("NOOP");
    assert_eq!(r.len(), 1, "{r:?}");
    b.append("other", "Subject: three\r\n\r\nx\r\n");
    wait_for(&mut a, |l| {
        l.starts_with("* STATUS other") && l.contains("MESSAGES 3")
    });

    // NOTIFY NONE: quiet again, the selected mailbox reported at commands only.
    a.ok("NOTIFY NONE");
    b.append("other", "Subject: four\r\n\r\nx\r\n");
    b.append("INBOX", "Subject: five\r\n\r\nx\r\n");
    quiet(&mut a, 700);
    let r = a.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    assert!(!r.iter().any(|l| l.starts_with("* STATUS")), "{r:?}");
}

#[test]
fn notify_selected_delayed_holds_expunges_and_idle_follows_notify() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut a = Client::login(port, "alice");
    let mut b = Client::login(port, "alice");
    b.append("INBOX", "Subject: one\r\n\r\nx\r\n");
    a.ok("CREATE other");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    a.ok(
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (mailboxes other (MessageNew))",
    );
    // An expunge is held back until a command that allows it.
    b.ok("EXPUNGE");
    quiet(&mut a, 700);
    let r = a.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 1 EXPUNGE"), "{r:?}");
    // A new message is not held back.
    b.append("INBOX", "Subject: two\r\n\r\nx\r\n");
    wait_for(&mut a, |l| l == "* 1 EXISTS");
    // In IDLE the NOTIFY events are sent, other mailboxes' as STATUS.
    a.n += 1;
    a.w.write_all(format!("t{} IDLE\r\n", a.n).as_bytes())
        .unwrap();
    wait_for(&mut a, |l| l.starts_with('+'));
    b.append("other", "Subject: three\r\n\r\nx\r\n");
    wait_for(&mut a, |l| {
        l.starts_with("* STATUS other") && l.contains("MESSAGES 1")
    });
    a.w.write_all(b"DONE\r\n").unwrap();
    let done = format!("t{} OK", a.n);
    wait_for(&mut a, |l| l.starts_with(&done));
}

//! IMAP extensions against the real server, command by command: what a client
//! relies on beyond imaptest's scripted groups.

use super::*;

#[test]
fn multiappend_and_catenate_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(
        caps[0].contains(" MULTIAPPEND") && caps[0].contains(" CATENATE"),
        "{caps:?}"
    );
    c.ok("CREATE box");
    let (m1, m2) = (
        "Subject: one\r\n\r\nfirst\r\n",
        "Subject: two\r\n\r\nsecond\r\n",
    );
    let r = c.ok(&format!(
        "APPEND box (\\Seen) {{{}+}}\r\n{m1} (\\Flagged) {{{}+}}\r\n{m2}",
        m1.len(),
        m2.len()
    ));
    let v = c.ok("STATUS box (UIDVALIDITY)")[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    assert!(
        tagged(&r).contains(&format!("[APPENDUID {v} 1:2]")),
        "{r:?}"
    );
    // A later message that cannot be built leaves none of them stored.
    let r = c.cmd(&format!(
        "APPEND box {{{}+}}\r\n{m1} CATENATE (URL \"/box/;UID=99\")",
        m1.len()
    ));
    assert!(tagged(&r).contains(" NO [BADURL /box/;UID=99]"), "{r:?}");
    let r = c.cmd(&format!(
        "APPEND nowhere {{{}+}}\r\n{m1} {{{}+}}\r\n{m2}",
        m1.len(),
        m2.len()
    ));
    assert!(tagged(&r).contains(" NO [TRYCREATE]"), "{r:?}");
    // The store refusing a later message (a keyword it cannot hold) takes
    // back the ones already stored.
    let kw = "k".repeat(200);
    let r = c.cmd(&format!(
        "APPEND box {{{}+}}\r\n{m1} ({kw}) {{{}+}}\r\n{m2}",
        m1.len(),
        m2.len()
    ));
    assert!(tagged(&r).contains(" NO "), "{r:?}");
    let r = c.ok("STATUS box (MESSAGES)");
    assert!(r[0].ends_with("(MESSAGES 2)"), "{r:?}");
    // CATENATE: text, a header from one message, a partial body of another.
    let r = c.ok(&format!(
        "APPEND box CATENATE (URL \"/box;UIDVALIDITY={v}/;UID=2/;SECTION=HEADER\" TEXT {{6+}}\r\nnew \r\n URL \"/box/;UID=1/;SECTION=TEXT/;PARTIAL=0.5\")"
    ));
    // UID 3 went to the message taken back; it is not given again.
    assert!(tagged(&r).contains(&format!("[APPENDUID {v} 4]")), "{r:?}");
    c.ok("SELECT box");
    let r = c.ok("FETCH 3 BODY.PEEK[]");
    assert!(r[0].ends_with("{27}"), "{r:?}");
    assert_eq!(r[1..5], ["Subject: two", "", "new", "first)"]);
    let r = c.ok("FETCH 1:2 FLAGS");
    assert!(
        r[0].contains("\\Seen") && r[1].contains("\\Flagged"),
        "{r:?}"
    );
    // An outdated UIDVALIDITY, an unknown mailbox, URLAUTH: refused.
    for url in [
        "/box;UIDVALIDITY=1/;UID=1".to_string(),
        "/nowhere/;UID=1".into(),
        "/box/;UID=1/;URLAUTH=anonymous".into(),
        "/box/;UID=1/;SECTION=9".into(),
    ] {
        let r = c.cmd(&format!("APPEND box CATENATE (URL \"{url}\")"));
        assert!(tagged(&r).contains(" NO [BADURL "), "{url}: {r:?}");
    }
    let r = c.ok("STATUS box (MESSAGES)");
    assert!(r[0].ends_with("(MESSAGES 3)"), "{r:?}");
}

#[test]
fn list_extended_status_and_special_use() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    c.ok("CREATE a/b");
    c.ok("CREATE c");
    c.ok("SUBSCRIBE a/b");
    c.ok("SUBSCRIBE gone");
    c.append("c", "Subject: x\r\n\r\nbody\r\n");
    let r = c.ok("LIST (SUBSCRIBED) \"\" *");
    for want in [
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" a/b",
        "* LIST (\\NonExistent \\Subscribed) \"/\" gone",
    ] {
        assert!(r.contains(&want.to_string()), "{want}: {r:?}");
    }
    assert!(!r.iter().any(|l| l.ends_with(" c")), "{r:?}");
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %");
    assert!(
        r.contains(&"* LIST (\\HasChildren) \"/\" a (\"CHILDINFO\" (\"SUBSCRIBED\"))".to_string()),
        "{r:?}"
    );
    let r = c.ok("LIST \"\" (c a/*) RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN))");
    assert_eq!(
        r[..4],
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" a/b",
            "* STATUS a/b (MESSAGES 0 UNSEEN 0)",
            "* LIST (\\HasNoChildren) \"/\" c",
            "* STATUS c (MESSAGES 1 UNSEEN 1)",
        ]
    );
    let r = c.ok("LIST (SPECIAL-USE) \"\" *");
    let listed = lines_with(&r, "* LIST");
    assert!(!listed.is_empty(), "{r:?}");
    assert!(
        listed
            .iter()
            .all(|l| ["\\Sent", "\\Drafts", "\\Junk", "\\Trash"]
                .iter()
                .any(|su| l.contains(su))),
        "{r:?}"
    );
    for bad in [
        "LIST (BOGUS) \"\" *",
        "LIST (RECURSIVEMATCH) \"\" *",
        "LIST \"\" * RETURN (BOGUS)",
    ] {
        let r = c.cmd(bad);
        assert!(tagged(&r).contains(" BAD "), "{bad}: {r:?}");
    }
}

#[test]
fn search_contexts_follow_changes_from_any_session() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    for i in 1..=5 {
        c.append("INBOX", &format!("Subject: m{i}\r\n\r\nbody\r\n"));
    }
    c.ok("SELECT INBOX");
    let r = c.ok("SEARCH RETURN (PARTIAL 2:3 COUNT) ALL");
    let t = format!("t{}", c.n);
    assert_eq!(
        r[0],
        format!("* ESEARCH (TAG \"{t}\") COUNT 5 PARTIAL (2:3 2:3)")
    );
    let r = c.cmd("SEARCH RETURN (PARTIAL 1:*) ALL");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
    let r = c.ok("UID SEARCH RETURN (UPDATE ALL) FLAGGED");
    let t = format!("t{}", c.n);
    assert_eq!(r[0], format!("* ESEARCH (TAG \"{t}\") UID"));
    let update = |what: &str| format!("* ESEARCH (TAG \"{t}\") UID {what}");
    let r = c.ok("STORE 2,4 +FLAGS.SILENT (\\Flagged)");
    assert!(r.contains(&update("ADDTO (1 2,4)")), "{r:?}");
    // Another session's expunge: REMOVEFROM before the EXPUNGE.
    let mut other = Client::login(port, "alice");
    other.ok("SELECT INBOX");
    other.ok("STORE 2 +FLAGS (\\Deleted)");
    other.ok("EXPUNGE");
    let r = c.ok("NOOP");
    let removed = r.iter().position(|l| *l == update("REMOVEFROM (1 2)"));
    let expunged = r.iter().position(|l| l == "* 2 EXPUNGE");
    assert!(removed.is_some() && removed < expunged, "{r:?}");
    other.append("INBOX", "Subject: new\r\n\r\nbody\r\n");
    other.ok("STORE 5 +FLAGS (\\Flagged)");
    let r = c.ok("NOOP");
    assert!(r.contains(&update("ADDTO (2 6)")), "{r:?}");
    c.ok(&format!("CANCELUPDATE \"{t}\""));
    let r = c.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(!r.iter().any(|l| l.contains("ESEARCH")), "{r:?}");
    // UPDATE is for SEARCH only; SORT contexts are not offered.
    let r = c.cmd("SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
}

#[test]
fn quota_status_size_and_within() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    {
        let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
        let (svc, _) = Service::open(&home).unwrap();
        let quota = ["zimbraMailQuota".to_string(), "3000".to_string()];
        svc.create_account("carol@example.com", Some("secret"), &quota)
            .unwrap();
    }
    let _server = start(&home);
    let mut c = Client::login(port, "carol");
    let caps = c.ok("CAPABILITY");
    for cap in [" QUOTA ", " QUOTA=RES-STORAGE", " WITHIN ", " STATUS=SIZE "] {
        assert!(caps[0].contains(cap), "{cap}: {caps:?}");
    }
    let msg = format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(1000));
    c.append("INBOX", &msg);
    c.append("INBOX", &msg);
    let r = c.ok("GETQUOTAROOT INBOX");
    assert_eq!(
        r[..2],
        ["* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (STORAGE 2 2)"]
    );
    let r = c.ok("GETQUOTA \"\"");
    assert_eq!(r[0], "* QUOTA \"\" (STORAGE 2 2)");
    let r = c.cmd("GETQUOTA \"other\"");
    assert!(tagged(&r).contains(" NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd("SETQUOTA \"\" (STORAGE 100)");
    assert!(tagged(&r).contains(" NO [NOPERM]"), "{r:?}");
    // APPEND stays within the quota, a MULTIAPPEND as a whole.
    let r = c.cmd(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()));
    assert!(tagged(&r).contains(" NO [OVERQUOTA]"), "{r:?}");
    let size = 2 * msg.len();
    let r = c.ok("STATUS INBOX (SIZE MESSAGES)");
    assert_eq!(r[0], format!("* STATUS INBOX (SIZE {size} MESSAGES 2)"));
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    let r = c.ok("STATUS INBOX (DELETED DELETED-STORAGE)");
    assert_eq!(
        r[0],
        format!("* STATUS INBOX (DELETED 1 DELETED-STORAGE {})", msg.len())
    );
    // WITHIN: by the internal date, relative to the server's clock.
    let r = c.ok("SEARCH YOUNGER 3600");
    assert_eq!(r[0], "* SEARCH 1 2");
    let r = c.ok("SEARCH OLDER 3600");
    assert_eq!(r[0], "* SEARCH");
    let r = c.cmd("SEARCH OLDER 0");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
    // An account without a limit has no quota root.
    let mut a = Client::login(port, "alice");
    let r = a.ok("GETQUOTAROOT INBOX");
    assert_eq!(r[0], "* QUOTAROOT INBOX");
    a.ok(&format!(
        "APPEND INBOX \"01-Jan-2001 00:00:00 +0000\" {{{}+}}\r\n{msg}",
        msg.len()
    ));
    a.append("INBOX", &msg);
    a.ok("SELECT INBOX");
    let r = a.ok("SEARCH OLDER 86400");
    assert_eq!(r[0], "* SEARCH 1");
}

#[test]
fn catenate_is_bounded_by_the_command_limit() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[("imap_max_message_size", "100000")]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(60_000));
    c.append("INBOX", &big);
    let url = "CATENATE (URL \"/INBOX/;UID=1\")";
    // Two copies fit in one command's 164 KB; a third would not, though each
    // message alone is within the 100 KB message limit.
    let r = c.ok(&format!("APPEND INBOX {url} {url}"));
    assert!(tagged(&r).contains(" 2:3]"), "{r:?}");
    let r = c.cmd(&format!("APPEND INBOX {url} {url} {url}"));
    assert!(tagged(&r).contains(" NO [TOOBIG]"), "{r:?}");
    let r = c.cmd("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\")");
    assert!(tagged(&r).contains(" NO [TOOBIG]"), "{r:?}");
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].ends_with("(MESSAGES 3)"), "{r:?}");
}

#[test]
fn searchres_dollar_is_the_saved_result() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    assert!(c.ok("CAPABILITY")[0].contains(" SEARCHRES"));
    for i in 1..=4 {
        c.append("INBOX", &format!("Subject: m{i}\r\n\r\nbody\r\n"));
    }
    c.ok("SELECT INBOX");
    c.ok("STORE 2,3 +FLAGS.SILENT (\\Flagged)");
    // SAVE alone answers nothing but OK.
    let r = c.ok("SEARCH RETURN (SAVE) FLAGGED");
    assert_eq!(r.len(), 1, "{r:?}");
    let r = c.ok("FETCH $ (UID)");
    assert_eq!(r[..2], ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]);
    let r = c.ok("SEARCH OR $ SUBJECT m4");
    assert_eq!(r[0], "* SEARCH 2 3 4");
    // `$` as a string argument is just text.
    let r = c.ok("SEARCH SUBJECT $");
    assert_eq!(r[0], "* SEARCH");
    // SAVE with MIN keeps only the minimum.
    let r = c.ok("UID SEARCH RETURN (SAVE MIN) FLAGGED");
    assert!(r[0].ends_with(" UID MIN 2"), "{r:?}");
    let r = c.ok("UID FETCH $ (FLAGS)");
    assert_eq!(lines_with(&r, "* ").len(), 1, "{r:?}");
    // An empty result: commands on $ do nothing.
    c.ok("SEARCH RETURN (SAVE) SUBJECT nothing-matches");
    let r = c.ok("FETCH $ (UID)");
    assert_eq!(r.len(), 1, "{r:?}");
    let r = c.ok("SEARCH $");
    assert_eq!(r[0], "* SEARCH");
    // Selecting again forgets it.
    c.ok("SEARCH RETURN (SAVE) ALL");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH $ (UID)");
    assert_eq!(r.len(), 1, "{r:?}");
}

#[test]
fn appendlimit_is_the_message_limit() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[("imap_max_message_size", "100000")]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(caps[0].contains(" APPENDLIMIT=100000"), "{caps:?}");
    // The STATUS item, alone, among others and in LIST-STATUS (RFC 7889 §3).
    let r = c.ok("STATUS INBOX (APPENDLIMIT)");
    assert_eq!(r[0], "* STATUS INBOX (APPENDLIMIT 100000)");
    let r = c.ok("STATUS INBOX (MESSAGES appendlimit UIDNEXT)");
    assert_eq!(
        r[0],
        "* STATUS INBOX (MESSAGES 0 APPENDLIMIT 100000 UIDNEXT 1)"
    );
    let r = c.ok("LIST \"\" INBOX RETURN (STATUS (UNSEEN APPENDLIMIT))");
    assert!(
        r.iter()
            .any(|l| l == "* STATUS INBOX (UNSEEN 0 APPENDLIMIT 100000)"),
        "{r:?}"
    );
    let r = c.cmd("STATUS nosuch (APPENDLIMIT)");
    assert!(tagged(&r).contains(" NO "), "{r:?}");
    // At the limit it is taken; one byte more is refused before it is sent.
    let head = "Subject: big\r\n\r\n";
    let fits = format!("{head}{}", "x".repeat(100_000 - head.len()));
    c.append("INBOX", &fits);
    let r = c.cmd("APPEND INBOX {100001}");
    assert!(tagged(&r).contains(" NO [TOOBIG]"), "{r:?}");
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS INBOX (MESSAGES 1)");
}

#[test]
fn preview_is_the_start_of_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    assert!(c.ok("CAPABILITY")[0].contains(" PREVIEW"));
    c.append(
        "INBOX",
        "Subject: p\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         Hello   there,\r\nsecond =C3=A9 line\r\n",
    );
    c.append("INBOX", "Subject: empty\r\n\r\n");
    c.append(
        "INBOX",
        &format!("Subject: long\r\n\r\n{}\r\n", "word ".repeat(100)),
    );
    c.ok("SELECT INBOX");
    // Non-ASCII text comes as a literal; no text is NIL.
    let r = c.ok("FETCH 1:2 (UID PREVIEW)");
    let text = "Hello there, second \u{e9} line";
    assert_eq!(
        r[0],
        format!("* 1 FETCH (UID 1 PREVIEW {{{}}}", text.len()),
        "{r:?}"
    );
    assert_eq!(r[1], format!("{text})"));
    assert_eq!(r[2], "* 2 FETCH (UID 2 PREVIEW NIL)");
    // LAZY is accepted (the preview is always there); alone, nothing else comes.
    let r = c.ok("FETCH 3 (PREVIEW (LAZY))");
    let preview = "word ".repeat(100);
    let cut: String = preview.trim_end().chars().take(256).collect();
    assert_eq!(r[0], format!("* 3 FETCH (PREVIEW \"{cut}\")"));
    let r = c.ok("UID FETCH 2 PREVIEW");
    assert_eq!(r[0], "* 2 FETCH (UID 2 PREVIEW NIL)");
    let r = c.cmd("FETCH 1 (PREVIEW (EAGER))");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
    // A preview is no read: \Seen stays unset.
    let r = c.ok("FETCH 1:3 (FLAGS)");
    assert!(r.iter().all(|l| !l.contains("\\Seen")), "{r:?}");
}

#[test]
fn compress_deflate_both_ways() {
    use flate2::Compression;
    use flate2::read::DeflateDecoder;
    use flate2::write::DeflateEncoder;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::connect(port);
    assert!(!c.ok("CAPABILITY")[0].contains("COMPRESS"));
    let r = c.cmd("COMPRESS DEFLATE");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
    c.ok("LOGIN alice@example.com secret");
    assert!(c.ok("CAPABILITY")[0].contains(" COMPRESS=DEFLATE"));
    let body = format!(
        "Subject: z\r\n\r\n{}\r\n",
        "compressible line\r\n".repeat(2000)
    );
    c.append("INBOX", &body);
    let r = c.cmd("COMPRESS LZW");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
    c.ok("COMPRESS DEFLATE");

    // From here on both directions are raw DEFLATE.
    let counted = Counting {
        inner: c.w.try_clone().unwrap(),
        bytes: 0,
    };
    let mut zr = BufReader::new(DeflateDecoder::new(counted));
    let mut zw = DeflateEncoder::new(c.w.try_clone().unwrap(), Compression::default());
    let mut cmd = |tag: &str, line: &str| -> Vec<String> {
        zw.write_all(format!("{tag} {line}\r\n").as_bytes())
            .unwrap();
        zw.flush().unwrap();
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            zr.read_line(&mut l).unwrap();
            assert!(!l.is_empty(), "closed after {line}: {out:?}");
            let done = l.starts_with(&format!("{tag} "));
            out.push(l.trim_end().to_string());
            if done {
                return out;
            }
        }
    };
    let r = cmd("z1", "SELECT INBOX");
    assert!(tagged(&r).starts_with("z1 OK"), "{r:?}");
    let r = cmd("z2", "FETCH 1 (BODY.PEEK[])");
    assert_eq!(r[0], format!("* 1 FETCH (BODY[] {{{}}}", body.len()));
    let got: String = r[1..r.len() - 1].join("\r\n");
    assert!(got.starts_with("Subject: z"), "{got:.80}");
    assert_eq!(got.matches("compressible line").count(), 2000);
    assert!(tagged(&r).starts_with("z2 OK"), "{r:?}");
    let r = cmd("z3", "COMPRESS DEFLATE");
    assert!(tagged(&r).contains(" NO [COMPRESSIONACTIVE]"), "{r:?}");
    let r = cmd("z4", "CAPABILITY");
    assert!(!r[0].contains("COMPRESS"), "{r:?}");
    let r = cmd("z5", "LOGOUT");
    assert!(r[0].starts_with("* BYE"), "{r:?}");
    // The 40 KB message crossed the wire compressed.
    let wire = zr.get_ref().get_ref().bytes;
    assert!(wire < body.len() as u64 / 4, "{wire} bytes on the wire");
}

/// A reader that counts the bytes it hands on.
struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The number in `* OK [CODE n] ...` of a SELECT's answer.
fn code_number(r: &[String], code: &str) -> u64 {
    let l = r
        .iter()
        .find(|l| l.starts_with(&format!("* OK [{code} ")))
        .unwrap_or_else(|| panic!("no {code} in {r:?}"));
    l[code.len() + 7..]
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn qresync_reports_what_a_client_missed() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    assert!(c.ok("CAPABILITY")[0].contains(" QRESYNC"));
    for i in 1..=4 {
        c.append("INBOX", &format!("Subject: q{i}\r\n\r\nbody\r\n"));
    }
    let r = c.cmd("SELECT INBOX (QRESYNC (1 1))");
    assert!(tagged(&r).contains(" BAD "), "not enabled yet: {r:?}");
    assert_eq!(c.ok("ENABLE QRESYNC")[0], "* ENABLED QRESYNC");
    let r = c.ok("SELECT INBOX");
    let (v, m) = (
        code_number(&r, "UIDVALIDITY"),
        code_number(&r, "HIGHESTMODSEQ"),
    );

    // Another session flags UID 2 and expunges UID 3: this one hears VANISHED.
    let mut o = Client::login(port, "alice");
    o.ok("SELECT INBOX");
    o.ok("STORE 2 +FLAGS.SILENT (\\Flagged)");
    o.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    o.ok("EXPUNGE");
    let r = c.ok("NOOP");
    assert!(r.iter().any(|l| l == "* VANISHED 3"), "{r:?}");
    assert!(!r.iter().any(|l| l.ends_with(" EXPUNGE")), "{r:?}");

    // A client coming back with what it knew hears exactly what changed.
    let mut d = Client::login(port, "alice");
    d.ok("ENABLE QRESYNC");
    let r = d.ok(&format!("SELECT INBOX (QRESYNC ({v} {m}))"));
    assert!(r.iter().any(|l| l == "* VANISHED (EARLIER) 3"), "{r:?}");
    let fetched: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH ")).collect();
    assert_eq!(fetched.len(), 1, "{r:?}");
    assert!(
        fetched[0].starts_with("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ("),
        "{r:?}"
    );
    // Known UIDs bound VANISHED; the switch is marked [CLOSED].
    let r = d.ok(&format!("SELECT INBOX (QRESYNC ({v} {m} 1:2))"));
    assert!(r.iter().any(|l| l.starts_with("* OK [CLOSED]")), "{r:?}");
    assert!(!r.iter().any(|l| l.starts_with("* VANISHED")), "{r:?}");
    // Another UIDVALIDITY: the client must start over, nothing is resent.
    let r = d.ok(&format!("SELECT INBOX (QRESYNC ({} {m}))", v + 1));
    assert!(
        !r.iter()
            .any(|l| l.starts_with("* VANISHED") || l.contains(" FETCH ")),
        "{r:?}"
    );
    // UID FETCH with VANISHED: what left the range, then what changed in it.
    let r = d.ok(&format!(
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m} VANISHED)"
    ));
    assert_eq!(r[0], "* VANISHED (EARLIER) 3", "{r:?}");
    assert_eq!(lines_with(&r, "* 2 FETCH").len(), 1, "{r:?}");
    assert_eq!(r.len(), 3, "{r:?}");
    let r = d.ok(&format!(
        "UID FETCH 4:* (FLAGS) (CHANGEDSINCE {m} VANISHED)"
    ));
    assert_eq!(r.len(), 1, "nothing left or changed in 4:* {r:?}");
    // Moved out is gone too.
    o.ok("CREATE other");
    o.ok("MOVE 1 other");
    let r = d.ok("NOOP");
    assert!(r.iter().any(|l| l == "* VANISHED 1"), "{r:?}");
    // Without ENABLE QRESYNC, VANISHED is refused.
    let r = o.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert!(tagged(&r).contains(" BAD "), "{r:?}");
}

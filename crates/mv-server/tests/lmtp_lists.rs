//! LMTP alone (no Postfix expanding lists): a distribution list with a member
//! who cannot take the message now. The message must never be lost for that
//! member and never reach any member twice, however often the client retries.

use mv_directory::Modification;
use mv_home::{Home, HomeLock};
use mv_server::Service;
use mv_server::lmtp_backend::StoreBackend;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A free loopback port below the ephemeral range.
fn free_port() -> u16 {
    let start = 23000 + (std::process::id() % 900) as u16;
    (start..24000)
        .chain(23000..start)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 23000-23999")
}

struct Client {
    rd: BufReader<TcpStream>,
    wr: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Client {
            rd: BufReader::new(s.try_clone().unwrap()),
            wr: s,
        };
        assert!(c.reply().starts_with("220"));
        c
    }

    /// One reply (the last line of a multiline one).
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.rd.read_line(&mut line).unwrap();
            assert!(
                line.len() >= 4,
                "connection closed or short reply: {line:?}"
            );
            if line.as_bytes()[3] == b' ' {
                return line.trim_end().to_string();
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.wr.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// One transaction; returns the RCPT replies and the per-recipient DATA replies.
    fn send(&mut self, rcpts: &[&str], msg: &str) -> (Vec<String>, Vec<String>) {
        assert!(self.cmd("MAIL FROM:<sender@else.test>").starts_with("250"));
        let at_rcpt: Vec<String> = rcpts
            .iter()
            .map(|r| self.cmd(&format!("RCPT TO:<{r}>")))
            .collect();
        let accepted = at_rcpt.iter().filter(|r| r.starts_with("250")).count();
        assert!(self.cmd("DATA").starts_with("354"));
        self.wr.write_all(msg.as_bytes()).unwrap();
        self.wr.write_all(b".\r\n").unwrap();
        let at_data = (0..accepted).map(|_| self.reply()).collect();
        (at_rcpt, at_data)
    }
}

fn copies(svc: &Service, who: &str, message_id: &str) -> usize {
    let mbox = svc.mailbox_of(who).unwrap();
    svc.store()
        .mailbox(mbox)
        .items(None, Some(mv_store::ItemKind::Message))
        .unwrap()
        .iter()
        .filter(|i| i.message_id == message_id)
        .count()
}

/// The one stored copy of a message in `who`'s mailbox.
fn stored(svc: &Service, who: &str, message_id: &str) -> Vec<u8> {
    let mbox = svc.mailbox_of(who).unwrap();
    let items = svc
        .store()
        .mailbox(mbox)
        .items(None, Some(mv_store::ItemKind::Message))
        .unwrap();
    let item = items.iter().find(|i| i.message_id == message_id).unwrap();
    svc.store().read_blob(mbox, item).unwrap()
}

/// Trace headers for a member reached through `list`, then the sent bytes.
fn assert_traced(bytes: &[u8], sent: &str, member: &str, list: &str) {
    assert!(
        bytes.ends_with(sent.as_bytes()),
        "received bytes unchanged at the end"
    );
    let prefix = std::str::from_utf8(&bytes[..bytes.len() - sent.len()]).unwrap();
    let lines: Vec<&str> = prefix.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 5, "{prefix:?}");
    assert_eq!(lines[0], "Return-Path: <sender@else.test>");
    assert_eq!(lines[1], format!("Delivered-To: {member}"));
    assert_eq!(lines[2], "Received: from client.test ([127.0.0.1])");
    assert!(lines[3].starts_with("\tby ") && lines[3].contains(" (mailvault) with LMTP id "));
    assert!(
        lines[4].starts_with(&format!("\tfor <{list}>; ")),
        "{prefix:?}"
    );
}

#[test]
fn list_member_over_quota_gets_exactly_one_copy_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    home.init().unwrap();
    let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(&home).unwrap();
    let svc = Arc::new(svc);
    svc.directory().create_domain("example.com", &[]).unwrap();
    for u in ["u1", "u2", "u3"] {
        svc.create_account(&format!("{u}@example.com"), None, &[])
            .unwrap();
    }
    // u1 is nearly full: 2,500 bytes used of 3,000.
    svc.directory()
        .modify_account(
            "u1@example.com",
            &[Modification::set("zimbraMailQuota", "3000")],
        )
        .unwrap();
    let filler = format!("Subject: filler\r\n\r\n{}\r\n", "z".repeat(2500));
    svc.store()
        .add_message(
            svc.mailbox_of("u1@example.com").unwrap(),
            filler.as_bytes(),
            &Default::default(),
        )
        .unwrap();
    {
        let d = svc.directory();
        d.create_dl("team@example.com", &[]).unwrap();
        d.create_dl("inner@example.com", &[]).unwrap();
        d.add_dl_members(
            "team@example.com",
            &["u1@example.com", "u2@example.com", "inner@example.com"],
        )
        .unwrap();
        d.add_dl_members(
            "inner@example.com",
            &["u3@example.com", "team@example.com", "x@else.test"],
        )
        .unwrap();
    }

    let port = free_port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(mv_lmtp::serve(
        listener,
        mv_lmtp::LmtpConfig::default(),
        Arc::new(StoreBackend::new(svc.clone())),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let msg = format!(
        "Message-ID: <dl-1@else.test>\r\nSubject: to the team\r\n\r\n{}\r\n",
        "body line\r\n".repeat(100)
    );
    let mut c = Client::connect(port);
    assert!(c.cmd("LHLO client.test").starts_with("250"));

    // u2 is also addressed directly: one copy for the two recipients.
    let (rcpt, data) = c.send(&["team@example.com", "u2@example.com"], &msg);
    assert!(rcpt.iter().all(|r| r.starts_with("250")), "{rcpt:?}");
    assert!(
        data[0].starts_with("452 4.2.2"),
        "the list recipient is deferred while u1 cannot take it: {data:?}"
    );
    assert!(data[1].starts_with("250"), "{data:?}");
    let count = |who: &str| copies(&svc, who, "dl-1@else.test");
    assert_eq!(
        (
            count("u1@example.com"),
            count("u2@example.com"),
            count("u3@example.com")
        ),
        (0, 1, 1),
        "members who can take it get it at once"
    );
    // Each copy has its member's trace headers before the one shared body;
    // u2, reached by the list first, is traced as the list's member.
    for u in ["u2@example.com", "u3@example.com"] {
        assert_traced(
            &stored(&svc, u, "dl-1@else.test"),
            &msg,
            u,
            "team@example.com",
        );
    }
    let id_of = |u: &str| {
        let b = stored(&svc, u, "dl-1@else.test");
        let p = String::from_utf8_lossy(&b[..b.len() - msg.len()]).into_owned();
        p.split(" with LMTP id ")
            .nth(1)
            .unwrap()
            .split('\r')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        id_of("u2@example.com"),
        id_of("u3@example.com"),
        "one delivery id"
    );

    // The client retries the list recipient: still deferred, no second copies.
    let (_, data) = c.send(&["team@example.com"], &msg);
    assert!(data[0].starts_with("452 4.2.2"), "{data:?}");
    assert_eq!(
        (
            count("u1@example.com"),
            count("u2@example.com"),
            count("u3@example.com")
        ),
        (0, 1, 1)
    );

    // Quota raised: the next retry reaches u1, and only u1.
    svc.directory()
        .modify_account(
            "u1@example.com",
            &[Modification::set("zimbraMailQuota", "0")],
        )
        .unwrap();
    let (_, data) = c.send(&["team@example.com"], &msg);
    assert!(data[0].starts_with("250"), "{data:?}");
    assert_eq!(
        (
            count("u1@example.com"),
            count("u2@example.com"),
            count("u3@example.com")
        ),
        (1, 1, 1),
        "every member ends with exactly one copy"
    );
    assert_traced(
        &stored(&svc, "u1@example.com", "dl-1@else.test"),
        &msg,
        "u1@example.com",
        "team@example.com",
    );
    assert_ne!(
        id_of("u1@example.com"),
        id_of("u2@example.com"),
        "a later delivery"
    );

    // IMAP sees one message: its size (RFC822.SIZE) counts the trace headers,
    // the whole read and the header-only read (ENVELOPE, BODYSTRUCTURE,
    // partial fetches work on these bytes) start with them.
    {
        use mv_imap::Backend as _;
        let imap = mv_server::imap_backend::ImapBackend::new(svc.clone());
        let who = mv_imap::Account {
            id: u64::from(svc.mailbox_of("u1@example.com").unwrap().0),
            name: "u1@example.com".into(),
            hold: mv_imap::Hold::default(),
        };
        let inbox = mv_redo::ops::folders::INBOX;
        let snap = imap.snapshot(&who, inbox).unwrap();
        let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
        let whole = imap.messages(&who, inbox, &uids, false).unwrap();
        let heads = imap.messages(&who, inbox, &uids, true).unwrap();
        let listed = stored(&svc, "u1@example.com", "dl-1@else.test");
        let mut seen = 0;
        for ((meta, (_, bytes)), (_, head)) in snap.messages.iter().zip(&whole).zip(&heads) {
            assert_eq!(
                meta.size,
                bytes.len() as u64,
                "RFC822.SIZE is what BODY[] sends"
            );
            assert!(bytes.starts_with(head) && head.ends_with(b"\r\n\r\n"));
            if *bytes == listed {
                assert!(head.starts_with(b"Return-Path: <sender@else.test>\r\n"));
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
    }
    // A retry after a lost 250 changes nothing.
    let (_, data) = c.send(&["team@example.com"], &msg);
    assert!(data[0].starts_with("250"), "{data:?}");
    assert_eq!(
        (
            count("u1@example.com"),
            count("u2@example.com"),
            count("u3@example.com")
        ),
        (1, 1, 1)
    );

    // A different message to the list is not mistaken for a copy already held.
    let other = msg.replace("dl-1@", "dl-2@");
    let (_, data) = c.send(&["team@example.com"], &other);
    assert!(data[0].starts_with("250"), "{data:?}");
    for u in ["u1@example.com", "u2@example.com", "u3@example.com"] {
        assert_eq!(copies(&svc, u, "dl-2@else.test"), 1, "{u}");
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
}

//! The power-cut test's clients: LMTP deliveries and IMAP flag/move/expunge
//! traffic that record what the server acknowledged (the ledger), the fetch of
//! every message after a restart, and the check of one against the other.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---- what the clients were told ---------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Flag,
    Move,
    /// `\Deleted` stored (OK), the expunge not (yet) answered.
    Deleted,
    Expunge,
}

#[derive(Default)]
pub struct Ledger {
    /// Message-ID → the bytes sent (for every DATA begun).
    pub sent: HashMap<String, Vec<u8>>,
    /// Message-IDs answered 250.
    pub acked: Vec<String>,
    /// Message-ID → the last IMAP change answered OK, and whether a later
    /// command on it was sent without an answer (the cut came first).
    pub done: HashMap<String, (Option<Action>, Option<Action>)>,
}

// ---- LMTP ------------------------------------------------------------------------

struct Lines {
    r: BufReader<TcpStream>,
}

impl Lines {
    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(l)
    }

    /// A whole SMTP-style reply (continuation lines "250-").
    fn reply(&mut self) -> std::io::Result<String> {
        loop {
            let l = self.line()?;
            if l.as_bytes().get(3) != Some(&b'-') {
                return Ok(l);
            }
        }
    }
}

pub fn message(id: &str, n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: sender@example.net\r\nTo: alice@example.com\r\nMessage-ID: <{id}>\r\n\
         Subject: power cut {id}\r\n\r\n"
    )
    .into_bytes();
    let mut x = n.wrapping_mul(2_654_435_761) | 1;
    for line in 0..(n % 60) + 1 {
        let len = 20 + (x % 70);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.extend_from_slice(format!("{line:04} ").as_bytes());
        m.extend((0..len).map(|i| b'a' + ((x >> (i % 32)) % 26) as u8));
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Delivers until told to stop or the server goes away; records what it sent
/// and what was acknowledged.
pub fn lmtp_worker(port: u16, tag: String, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    deliver(port, &tag, &ledger, &|_| !stop.load(Ordering::Relaxed));
}

/// Delivers the `i`-th message while `more(i)`; records what it sent and what
/// was acknowledged.
pub fn deliver(port: u16, tag: &str, ledger: &Mutex<Ledger>, more: &dyn Fn(usize) -> bool) {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let mut w = s.try_clone().unwrap();
    let mut r = Lines {
        r: BufReader::new(s),
    };
    let mut run = || -> std::io::Result<()> {
        r.reply()?;
        w.write_all(b"LHLO test\r\n")?;
        r.reply()?;
        for i in 0.. {
            if !more(i) {
                return Ok(());
            }
            let id = format!("{tag}-{i}@powercut.test");
            let body = message(&id, i + tag.len());
            // A refusal (the server failing under a fault) ends the session.
            let refused = || std::io::Error::other("refused");
            w.write_all(b"MAIL FROM:<sender@example.net>\r\n")?;
            r.reply()?
                .starts_with("250")
                .then_some(())
                .ok_or_else(refused)?;
            w.write_all(b"RCPT TO:<alice@example.com>\r\n")?;
            r.reply()?
                .starts_with("250")
                .then_some(())
                .ok_or_else(refused)?;
            w.write_all(b"DATA\r\n")?;
            r.reply()?
                .starts_with("354")
                .then_some(())
                .ok_or_else(refused)?;
            ledger.lock().unwrap().sent.insert(id.clone(), body.clone());
            w.write_all(&body)?;
            w.write_all(b".\r\n")?;
            r.reply()?
                .starts_with("250")
                .then_some(())
                .ok_or_else(refused)?;
            ledger.lock().unwrap().acked.push(id);
        }
        Ok(())
    };
    let _ = run();
}

// ---- IMAP ------------------------------------------------------------------------

struct Imap {
    w: TcpStream,
    r: BufReader<TcpStream>,
    n: u32,
}

/// One untagged response: its text (literals replaced by "{}") and its literals.
struct Untagged {
    text: String,
    literals: Vec<Vec<u8>>,
}

impl Imap {
    fn connect(port: u16) -> std::io::Result<Imap> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut i = Imap {
            w: s.try_clone()?,
            r: BufReader::new(s),
            n: 0,
        };
        let mut greeting = Vec::new();
        i.r.read_until(b'\n', &mut greeting)?;
        i.cmd("LOGIN alice@example.com secret")?;
        Ok(i)
    }

    /// Sends a command; the untagged responses and whether it ended in OK.
    fn cmd(&mut self, c: &str) -> std::io::Result<(Vec<Untagged>, bool)> {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.w.write_all(format!("{tag} {c}\r\n").as_bytes())?;
        let mut out = Vec::new();
        loop {
            let mut u = Untagged {
                text: String::new(),
                literals: Vec::new(),
            };
            loop {
                let mut line = Vec::new();
                if self.r.read_until(b'\n', &mut line)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                let s = String::from_utf8_lossy(&line).trim_end().to_string();
                if let Some(open) = s.rfind('{')
                    && s.ends_with('}')
                    && let Ok(n) = s[open + 1..s.len() - 1].parse::<usize>()
                {
                    let mut lit = vec![0; n];
                    self.r.read_exact(&mut lit)?;
                    u.text.push_str(&s[..open]);
                    u.text.push_str("{}");
                    u.literals.push(lit);
                    continue;
                }
                u.text.push_str(&s);
                break;
            }
            if let Some(rest) = u.text.strip_prefix(&format!("{tag} ")) {
                let ok = rest.starts_with("OK");
                // Last, so that a failure can say what the server answered.
                out.push(u);
                return Ok((out, ok));
            }
            out.push(u);
        }
    }
}

pub fn message_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: <"))
        .and_then(|l| l.strip_suffix('>'))
        .map(str::to_string)
}

fn after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.find(key).map(|i| &text[i + key.len()..])
}

/// Flags, moves to /Archive and expunges the oldest unflagged message of INBOX,
/// one at a time; records each change answered OK.
pub fn imap_worker(port: u16, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    let Ok(mut imap) = Imap::connect(port) else {
        return;
    };
    let mut run = || -> std::io::Result<()> {
        imap.cmd("SELECT INBOX")?;
        for i in 0usize.. {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let (search, _) = imap.cmd("UID SEARCH UNFLAGGED UNDELETED")?;
            let uid = search
                .iter()
                .filter_map(|u| u.text.strip_prefix("* SEARCH"))
                .flat_map(|s| s.split_whitespace().map(|n| n.parse::<u32>().unwrap()))
                .min();
            let Some(uid) = uid else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let (f, _) = imap.cmd(&format!(
                "UID FETCH {uid} (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            ))?;
            let Some(id) = f
                .iter()
                .flat_map(|u| u.literals.iter())
                .find_map(|l| message_id(l))
            else {
                continue;
            };
            let steps: &[(&str, Action)] = match i % 3 {
                0 => &[("UID STORE {} +FLAGS.SILENT (\\Flagged)", Action::Flag)],
                1 => &[("UID MOVE {} Archive", Action::Move)],
                _ => &[
                    ("UID STORE {} +FLAGS.SILENT (\\Deleted)", Action::Deleted),
                    ("UID EXPUNGE {}", Action::Expunge),
                ],
            };
            for (c, action) in steps {
                ledger.lock().unwrap().done.entry(id.clone()).or_default().1 = Some(*action);
                let (_, okd) = imap.cmd(&c.replace("{}", &uid.to_string()))?;
                let mut l = ledger.lock().unwrap();
                let e = l.done.entry(id.clone()).or_default();
                e.1 = None;
                if okd {
                    e.0 = Some(*action);
                }
            }
        }
        Ok(())
    };
    let _ = run();
}

/// Message-ID → (folder, flags, bytes) of every message in INBOX and Archive.
pub type Seen = HashMap<String, Vec<(&'static str, String, Vec<u8>)>>;

pub fn fetch_all(port: u16, stderr: &Mutex<String>) -> Seen {
    let fail = |what: &str, e: std::io::Error| -> ! {
        panic!(
            "IMAP after restart: {what}: {e}; the server's stderr:\n{}",
            stderr.lock().unwrap()
        )
    };
    let mut imap = Imap::connect(port).unwrap_or_else(|e| fail("connect", e));
    let mut seen: Seen = HashMap::new();
    for folder in ["INBOX", "Archive"] {
        let (sel, okd) = imap
            .cmd(&format!("SELECT {folder}"))
            .unwrap_or_else(|e| fail("SELECT", e));
        assert!(
            okd,
            "SELECT {folder} after a restart: {:?}; the server's stderr:\n{}",
            sel.last().map(|u| &u.text),
            stderr.lock().unwrap()
        );
        let exists = sel
            .iter()
            .find_map(|u| u.text.strip_suffix(" EXISTS"))
            .and_then(|t| t.trim_start_matches("* ").parse::<u32>().ok());
        if exists == Some(0) {
            continue;
        }
        let (all, okd) = imap
            .cmd("UID FETCH 1:* (FLAGS BODY.PEEK[])")
            .unwrap_or_else(|e| fail("FETCH", e));
        assert!(
            okd,
            "FETCH in {folder} after a restart: {:?}; the server's stderr:\n{}",
            all.last().map(|u| &u.text),
            stderr.lock().unwrap()
        );
        for u in all {
            let Some(body) = u.literals.first() else {
                continue;
            };
            let flags = after(&u.text, "FLAGS (")
                .and_then(|s| s.split(')').next())
                .unwrap_or("")
                .to_string();
            let id = message_id(body).expect("every message has our Message-ID");
            seen.entry(id)
                .or_default()
                .push((folder, flags, body.clone()));
        }
    }
    seen
}

/// Every acknowledged delivery and every IMAP change answered OK is there, and
/// every message there is byte for byte one that was sent.
pub fn check(ledger: &Ledger, seen: &Seen, round: usize) {
    for (id, copies) in seen {
        assert_eq!(
            copies.len(),
            1,
            "round {round}: {id} is there twice: {copies:?}"
        );
        let sent = ledger
            .sent
            .get(id)
            .unwrap_or_else(|| panic!("round {round}: {id} was never sent"));
        let stored = &copies[0].2;
        // Trace headers the server may prepend at delivery aside, byte for byte.
        let extra = stored.len().checked_sub(sent.len());
        assert!(
            extra.is_some() && stored.ends_with(sent),
            "round {round}: {id} differs from what was sent"
        );
        assert!(
            !stored[..extra.unwrap()]
                .windows(4)
                .any(|w| w == b"\r\n\r\n"),
            "round {round}: {id} has something before its headers"
        );
    }
    for id in &ledger.acked {
        let copy = seen.get(id).map(|c| &c[0]);
        let (okd, pending) = ledger.done.get(id).copied().unwrap_or_default();
        let flagged = |c: &(&str, String, Vec<u8>)| c.1.contains("\\Flagged");
        let deleted = |c: &(&str, String, Vec<u8>)| c.1.contains("\\Deleted");
        let fine = match (okd, pending, copy) {
            // Nothing answered OK: as delivered, or whatever the unanswered command did.
            (None, None, Some(c)) => c.0 == "INBOX" && !flagged(c) && !deleted(c),
            (None, Some(Action::Flag), Some(c)) => c.0 == "INBOX",
            (None, Some(Action::Move), Some(c)) => !flagged(c) && !deleted(c),
            (None, Some(Action::Deleted), Some(c)) => c.0 == "INBOX" && !flagged(c),
            (Some(Action::Flag), _, Some(c)) => c.0 == "INBOX" && flagged(c),
            (Some(Action::Move), _, Some(c)) => c.0 == "Archive",
            (Some(Action::Deleted), _, Some(c)) => c.0 == "INBOX" && deleted(c),
            (Some(Action::Deleted), Some(Action::Expunge), None) => true,
            (Some(Action::Expunge), _, None) => true,
            _ => false,
        };
        assert!(
            fine,
            "round {round}: acknowledged {id}: last OK {okd:?}, unanswered {pending:?}, found {:?}",
            copy.map(|c| (c.0, &c.1))
        );
    }
}

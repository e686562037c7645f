//! A realistic mail corpus, deterministic from a seed.
//!
//! [`Corpus::generate`] draws the *plan* (accounts, their folders and tags, and for
//! every message: its kind, size, thread, sender, recipients and where it lands in
//! each recipient's mailbox with which flags and tags). [`Corpus::message`] renders
//! message `i` to bytes from its own random stream, so any message can be produced
//! alone, in any order, on any thread, and the same seed always gives the same bytes
//! (for us and for the peers we compare against). [`write_corpus`] writes it all as
//! `.eml` files plus `manifest.json`, for tools that want files.
//!
//! The mix (see [`Mix`]): most messages are 2-20 KB of text (a quarter of them
//! multipart/alternative with an HTML part), 9% are 100 KB-5 MB multipart/mixed with
//! base64 attachments — half random bytes (incompressible), half text such as CSV
//! and logs (compressible); about a third are replies in a thread (In-Reply-To,
//! References, "Re:", quoted text); 20% go to 2-50 local recipients.

use crate::rng::SplitMix64;
use crate::words;
use base64::Engine;
use serde::Serialize;
use std::path::Path;

/// Bumped whenever the generator's output for a given seed changes.
pub const FORMAT: u32 = 1;

/// The domain of the local accounts.
pub const DOMAIN: &str = "corpus.example";

const KB: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// CI smoke: 20 accounts, 500 messages, about 30 MB; seconds to generate.
    Small,
    /// 200 accounts, 20,000 messages, about 1.3 GB.
    Medium,
    /// 1,000 accounts, 170,000 messages, about 11 GB.
    Large,
}

impl Scale {
    pub fn params(self) -> ScaleParams {
        match self {
            Scale::Small => ScaleParams {
                accounts: 20,
                messages: 500,
                contacts: (5, 30),
                appointments: (2, 15),
            },
            Scale::Medium => ScaleParams {
                accounts: 200,
                messages: 20_000,
                contacts: (20, 200),
                appointments: (10, 60),
            },
            Scale::Large => ScaleParams {
                accounts: 1_000,
                messages: 170_000,
                contacts: (50, 400),
                appointments: (20, 120),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::Medium => "medium",
            Scale::Large => "large",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ScaleParams {
    pub accounts: usize,
    pub messages: usize,
    /// Contacts per account, inclusive range.
    pub contacts: (usize, usize),
    /// Appointments per account, inclusive range.
    pub appointments: (usize, usize),
}

/// The realistic mix, in per-mille and size buckets (bytes, inclusive ranges).
pub struct Mix;

impl Mix {
    /// Share of messages with attachments (100 KB-5 MB).
    pub const ATTACHMENT_PER_MILLE: u64 = 90;
    /// Of the text messages, the share that are multipart/alternative (text + HTML).
    pub const ALTERNATIVE_PER_MILLE: u64 = 250;
    /// Share of messages addressed to 2-50 local recipients.
    pub const MULTI_RCPT_PER_MILLE: u64 = 200;
    /// Share of messages that reply to an earlier message of a thread.
    pub const REPLY_PER_MILLE: u64 = 350;
    /// Share of messages sent by a local account (they also land in its Sent folder).
    pub const LOCAL_SENDER_PER_MILLE: u64 = 550;
    pub const TEXT_SIZES: &[(u64, u64, u64)] = &[
        (2 * KB, 5 * KB, 35),
        (5 * KB, 10 * KB, 35),
        (10 * KB, 20 * KB, 30),
    ];
    pub const ATTACHMENT_SIZES: &[(u64, u64, u64)] = &[
        (100 * KB, 200 * KB, 40),
        (200 * KB, 500 * KB, 30),
        (500 * KB, 1024 * KB, 15),
        (1024 * KB, 2048 * KB, 9),
        (2048 * KB, 5 * 1024 * KB, 6),
    ];
    /// Number of recipients of a multi-recipient message: (lo, hi, weight).
    pub const MULTI_RCPT_COUNTS: &[(u64, u64, u64)] = &[(2, 5, 60), (6, 15, 30), (16, 50, 10)];
}

fn bucket(rng: &mut SplitMix64, buckets: &[(u64, u64, u64)]) -> u64 {
    let weights: Vec<u64> = buckets.iter().map(|b| b.2).collect();
    let (lo, hi, _) = buckets[rng.weighted(&weights)];
    rng.range(lo, hi)
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub email: String,
    pub display_name: String,
    /// User folders beyond the system ones (Inbox, Sent, Drafts, Junk, Trash);
    /// parents come before their children.
    pub folders: Vec<String>,
    pub tags: Vec<String>,
    pub contacts: usize,
    pub appointments: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// text/plain.
    Text,
    /// multipart/alternative: text/plain + text/html.
    Alternative,
    /// multipart/mixed: text/plain + base64 attachments.
    Attachments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentData {
    /// Random bytes: does not compress (photos, archives, PDFs).
    Binary,
    /// Text such as CSV or logs: compresses well.
    Text,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data: AttachmentData,
    /// Decoded size in bytes.
    pub size: u64,
}

/// Where one copy of a message lands.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    /// Index into [`Corpus::accounts`].
    pub account: usize,
    pub folder: String,
    /// Zimbra flag letters: u (unread), f (flagged), r (replied).
    pub flags: String,
    pub tags: Vec<String>,
    /// True for the sender's copy in Sent (added to the store, not delivered).
    pub sent_copy: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessagePlan {
    pub index: usize,
    /// Without angle brackets.
    pub message_id: String,
    pub kind: Kind,
    /// Approximate size of the rendered message (the rendering is within ~2 KB of it).
    pub target_size: u64,
    pub from: String,
    pub from_name: String,
    /// Index of the sender among the accounts when it is local.
    pub local_sender: Option<usize>,
    /// Envelope recipients (RCPT TO): indices into [`Corpus::accounts`].
    pub rcpts: Vec<usize>,
    /// An external address shown in Cc only (not delivered here).
    pub external_cc: Option<String>,
    pub subject: String,
    pub date_ms: i64,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub attachments: Vec<Attachment>,
    pub placements: Vec<Placement>,
}

pub struct Corpus {
    pub seed: u64,
    pub scale: Scale,
    pub accounts: Vec<Account>,
    pub messages: Vec<MessagePlan>,
}

/// The address of local account `i` (deterministic from the index alone, so the
/// same accounts exist whatever the seed).
pub fn account_email(i: usize) -> String {
    let (f, l) = (words::FIRST.len(), words::LAST.len());
    let first = words::FIRST[i % f];
    let last = words::LAST[(i / f) % l];
    if i < f * l {
        format!("{first}.{last}@{DOMAIN}")
    } else {
        format!("{first}.{last}{}@{DOMAIN}", i / (f * l))
    }
}

fn display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local
        .split('.')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// 2025-01-01T00:00:00Z: the corpus covers one year from here.
const EPOCH_MS: i64 = 1_735_689_600_000;
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

struct Thread {
    subject: String,
    ids: Vec<String>,
    /// Indices of accounts that took part (for replies from inside the thread).
    participants: Vec<usize>,
}

impl Corpus {
    pub fn generate(scale: Scale, seed: u64) -> Corpus {
        let p = scale.params();
        let accounts: Vec<Account> = (0..p.accounts)
            .map(|i| {
                let mut rng = SplitMix64::stream(seed, 10, i as u64);
                let email = account_email(i);
                let nf = rng.range_usize(0, 6);
                let mut folders: Vec<String> = rng
                    .distinct(words::FOLDERS.len(), nf)
                    .into_iter()
                    .map(|k| words::FOLDERS[k].to_string())
                    .collect();
                // A child needs its parent.
                for f in folders.clone() {
                    if let Some((parent, _)) = f.rsplit_once('/')
                        && !folders.iter().any(|x| x == parent)
                    {
                        folders.push(parent.to_string());
                    }
                }
                folders.sort();
                let nt = rng.range_usize(0, 5);
                let mut tags: Vec<String> = rng
                    .distinct(words::TAGS.len(), nt)
                    .into_iter()
                    .map(|k| words::TAGS[k].to_string())
                    .collect();
                tags.sort();
                Account {
                    display_name: display_name(&email),
                    email,
                    folders,
                    tags,
                    contacts: rng.range_usize(p.contacts.0, p.contacts.1),
                    appointments: rng.range_usize(p.appointments.0, p.appointments.1),
                }
            })
            .collect();

        let mut rng = SplitMix64::stream(seed, 11, 0);
        let mut threads: Vec<Thread> = Vec::new();
        let mut messages = Vec::with_capacity(p.messages);
        let n_acc = accounts.len();
        for i in 0..p.messages {
            let message_id = format!("mvb{FORMAT}.{seed:x}.{i}@corpus.example");
            let kind = if rng.chance(Mix::ATTACHMENT_PER_MILLE) {
                Kind::Attachments
            } else if rng.chance(Mix::ALTERNATIVE_PER_MILLE) {
                Kind::Alternative
            } else {
                Kind::Text
            };
            let target_size = match kind {
                Kind::Attachments => bucket(&mut rng, Mix::ATTACHMENT_SIZES),
                _ => bucket(&mut rng, Mix::TEXT_SIZES),
            };

            // Thread: a reply to the latest message of a recent thread, or a new one.
            let reply_to = if !threads.is_empty() && rng.chance(Mix::REPLY_PER_MILLE) {
                let recent = threads.len().min(64);
                Some(threads.len() - 1 - rng.below(recent as u64) as usize)
            } else {
                None
            };

            // Sender: a thread participant, another local account, or external.
            let local_sender = match reply_to {
                Some(t) if !threads[t].participants.is_empty() && rng.chance(600) => {
                    Some(*rng.pick(&threads[t].participants))
                }
                _ if rng.chance(Mix::LOCAL_SENDER_PER_MILLE) => {
                    Some(rng.below(n_acc as u64) as usize)
                }
                _ => None,
            };
            let (from, from_name) = match local_sender {
                Some(a) => (accounts[a].email.clone(), accounts[a].display_name.clone()),
                None => {
                    let first = rng.pick_str(words::FIRST);
                    let last = rng.pick_str(words::LAST);
                    let dom = rng.pick_str(words::EXTERNAL_DOMAINS);
                    let email = format!("{first}.{last}@{dom}");
                    let name = display_name(&email);
                    (email, name)
                }
            };

            // Envelope recipients: local accounts other than the sender.
            let available = n_acc - usize::from(local_sender.is_some());
            let want = if rng.chance(Mix::MULTI_RCPT_PER_MILLE) {
                bucket(&mut rng, Mix::MULTI_RCPT_COUNTS) as usize
            } else {
                1
            };
            let k = want.min(available).max(1);
            let rcpts: Vec<usize> = match local_sender {
                None => rng.distinct(n_acc, k),
                Some(s) => rng
                    .distinct(n_acc - 1, k)
                    .into_iter()
                    .map(|x| if x >= s { x + 1 } else { x })
                    .collect(),
            };
            let external_cc = if rng.chance(100) {
                Some(format!(
                    "{}.{}@{}",
                    rng.pick_str(words::FIRST),
                    rng.pick_str(words::LAST),
                    rng.pick_str(words::EXTERNAL_DOMAINS)
                ))
            } else {
                None
            };

            let (subject, in_reply_to, references) = match reply_to {
                Some(t) => {
                    let th = &threads[t];
                    let refs: Vec<String> = th.ids.iter().rev().take(10).rev().cloned().collect();
                    (format!("Re: {}", th.subject), th.ids.last().cloned(), refs)
                }
                None => (new_subject(&mut rng), None, vec![]),
            };

            let date_ms = EPOCH_MS
                + (i as i64) * (YEAR_MS / p.messages.max(1) as i64)
                + rng.below(3_600_000) as i64;

            let attachments = if kind == Kind::Attachments {
                plan_attachments(&mut rng, target_size)
            } else {
                vec![]
            };

            let mut placements: Vec<Placement> = rcpts
                .iter()
                .map(|&a| {
                    let acc = &accounts[a];
                    let folder = if acc.folders.is_empty() || rng.chance(750) {
                        "Inbox".to_string()
                    } else {
                        rng.pick(&acc.folders).clone()
                    };
                    let mut flags = String::new();
                    if rng.chance(350) {
                        flags.push('u');
                    }
                    if rng.chance(50) {
                        flags.push('f');
                    }
                    if rng.chance(100) {
                        flags.push('r');
                    }
                    let tags = if !acc.tags.is_empty() && rng.chance(100) {
                        let n = rng.range_usize(1, 2.min(acc.tags.len()));
                        rng.distinct(acc.tags.len(), n)
                            .into_iter()
                            .map(|t| acc.tags[t].clone())
                            .collect()
                    } else {
                        vec![]
                    };
                    Placement {
                        account: a,
                        folder,
                        flags,
                        tags,
                        sent_copy: false,
                    }
                })
                .collect();
            if let Some(s) = local_sender {
                placements.push(Placement {
                    account: s,
                    folder: "Sent".into(),
                    flags: String::new(),
                    tags: vec![],
                    sent_copy: true,
                });
            }

            match reply_to {
                Some(t) => {
                    let th = &mut threads[t];
                    th.ids.push(message_id.clone());
                    if let Some(s) = local_sender
                        && !th.participants.contains(&s)
                    {
                        th.participants.push(s);
                    }
                    // Move the thread to the end: it is the most recent now.
                    let th = threads.remove(t);
                    threads.push(th);
                }
                None => threads.push(Thread {
                    subject: subject.clone(),
                    ids: vec![message_id.clone()],
                    participants: rcpts.iter().copied().chain(local_sender).collect(),
                }),
            }

            messages.push(MessagePlan {
                index: i,
                message_id,
                kind,
                target_size,
                from,
                from_name,
                local_sender,
                rcpts,
                external_cc,
                subject,
                date_ms,
                in_reply_to,
                references,
                attachments,
                placements,
            });
        }
        Corpus {
            seed,
            scale,
            accounts,
            messages,
        }
    }

    /// The rendered bytes of message `i` (CRLF line ends, 7-bit, MIME-correct).
    pub fn message(&self, i: usize) -> Vec<u8> {
        let plan = &self.messages[i];
        let mut rng = SplitMix64::stream(self.seed, 12, i as u64);
        render(self, plan, &mut rng)
    }

    /// All contacts of account `a` as one vCard 3.0 file.
    pub fn contacts_vcf(&self, a: usize) -> String {
        let mut rng = SplitMix64::stream(self.seed, 13, a as u64);
        let mut out = String::new();
        for k in 0..self.accounts[a].contacts {
            let first = rng.pick_str(words::FIRST);
            let last = rng.pick_str(words::LAST);
            let email = if rng.chance(400) {
                self.accounts[rng.below(self.accounts.len() as u64) as usize]
                    .email
                    .clone()
            } else {
                format!("{first}.{last}@{}", rng.pick_str(words::EXTERNAL_DOMAINS))
            };
            let (fc, lc) = (cap(first), cap(last));
            out.push_str("BEGIN:VCARD\r\nVERSION:3.0\r\n");
            out.push_str(&format!("UID:mvb-{:x}-{a}-{k}\r\n", self.seed));
            out.push_str(&format!("FN:{fc} {lc}\r\nN:{lc};{fc};;;\r\n"));
            out.push_str(&format!("EMAIL;TYPE=INTERNET:{email}\r\n"));
            if rng.chance(600) {
                out.push_str(&format!(
                    "TEL;TYPE=CELL:+1 555 {:03} {:04}\r\n",
                    rng.below(1000),
                    rng.below(10000)
                ));
            }
            if rng.chance(500) {
                out.push_str(&format!("ORG:{}\r\n", rng.pick_str(words::ORGS)));
            }
            if rng.chance(200) {
                out.push_str(&format!(
                    "ADR;TYPE=WORK:;;{} Main Street;{};;;\r\n",
                    rng.range(1, 999),
                    rng.pick_str(words::CITIES)
                ));
            }
            out.push_str("END:VCARD\r\n");
        }
        out
    }

    /// All appointments of account `a` as one iCalendar file.
    pub fn calendar_ics(&self, a: usize) -> String {
        let mut rng = SplitMix64::stream(self.seed, 14, a as u64);
        let mut out = String::from(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailvault//mailvault-bench corpus//EN\r\n",
        );
        for k in 0..self.accounts[a].appointments {
            let start = EPOCH_MS + rng.below((YEAR_MS / 3_600_000) as u64) as i64 * 3_600_000;
            let minutes = *rng.pick(&[30i64, 60, 60, 90, 120]);
            let end = start + minutes * 60_000;
            let summary = format!(
                "{} {}",
                cap(rng.pick_str(words::WORDS)),
                rng.pick_str(words::WORDS)
            );
            out.push_str("BEGIN:VEVENT\r\n");
            out.push_str(&format!(
                "UID:mvb-{:x}-{a}-evt{k}@corpus.example\r\n",
                self.seed
            ));
            out.push_str(&format!("DTSTAMP:{}\r\n", ical_time(EPOCH_MS)));
            out.push_str(&format!(
                "DTSTART:{}\r\nDTEND:{}\r\n",
                ical_time(start),
                ical_time(end)
            ));
            out.push_str(&format!("SUMMARY:{summary}\r\n"));
            if rng.chance(500) {
                out.push_str(&format!(
                    "LOCATION:{} office\r\n",
                    rng.pick_str(words::CITIES)
                ));
            }
            if rng.chance(200) {
                out.push_str(&format!("RRULE:FREQ=WEEKLY;COUNT={}\r\n", rng.range(2, 12)));
            }
            out.push_str(&format!(
                "ORGANIZER;CN={}:mailto:{}\r\n",
                self.accounts[a].display_name, self.accounts[a].email
            ));
            for _ in 0..rng.range(0, 4) {
                let who = &self.accounts[rng.below(self.accounts.len() as u64) as usize];
                out.push_str(&format!(
                    "ATTENDEE;CN={};PARTSTAT=NEEDS-ACTION:mailto:{}\r\n",
                    who.display_name, who.email
                ));
            }
            out.push_str("END:VEVENT\r\n");
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }

    /// Sum of the planned sizes (each rendered message is within ~2 KB of its plan).
    pub fn planned_bytes(&self) -> u64 {
        self.messages.iter().map(|m| m.target_size).sum()
    }
}

fn cap(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn ical_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("corpus dates are in range")
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

fn rfc2822(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("corpus dates are in range")
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

fn new_subject(rng: &mut SplitMix64) -> String {
    if rng.chance(50) {
        let s = rng.pick_str(words::UNICODE_SUBJECTS);
        return format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        );
    }
    let n = rng.range_usize(2, 7);
    let mut s = cap(rng.pick_str(words::WORDS));
    for _ in 0..n {
        s.push(' ');
        s.push_str(rng.pick_str(words::WORDS));
    }
    if rng.chance(150) {
        s.push_str(&format!(" #{}", rng.range(100, 9999)));
    }
    s
}

fn plan_attachments(rng: &mut SplitMix64, target: u64) -> Vec<Attachment> {
    let n = [1usize, 2, 3][rng.weighted(&[70, 20, 10])];
    // Encoded size ≈ 78/57 of decoded; leave ~4 KB for headers and the text part.
    let budget = (target.saturating_sub(4 * KB)) * 57 / 78;
    let mut left = budget;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let size = if k + 1 == n {
            left
        } else {
            // Between a quarter and three quarters of what is left.
            rng.range(left / 4, left * 3 / 4)
        };
        left -= size;
        let serial = rng.range(1000, 9999);
        let (filename, content_type, data) = if rng.chance(500) {
            match rng.below(3) {
                0 => (
                    format!("IMG_{serial}.jpg"),
                    "image/jpeg",
                    AttachmentData::Binary,
                ),
                1 => (
                    format!("archive-{serial}.zip"),
                    "application/zip",
                    AttachmentData::Binary,
                ),
                _ => (
                    format!("scan-{serial}.pdf"),
                    "application/pdf",
                    AttachmentData::Binary,
                ),
            }
        } else if rng.chance(500) {
            (
                format!("report-{serial}.csv"),
                "text/csv",
                AttachmentData::Text,
            )
        } else {
            (
                format!("server-{serial}.log"),
                "text/plain",
                AttachmentData::Text,
            )
        };
        out.push(Attachment {
            filename,
            content_type: content_type.into(),
            data,
            size,
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Rendering

/// Appends `name: value` folded at commas so that no line passes ~76 columns.
fn header_list(out: &mut Vec<u8>, name: &str, items: &[String]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b":");
    let mut col = name.len() + 1;
    for (k, it) in items.iter().enumerate() {
        let piece = if k + 1 < items.len() {
            format!(" {it},")
        } else {
            format!(" {it}")
        };
        if col + piece.len() > 76 && col > name.len() + 1 {
            out.extend_from_slice(b"\r\n");
            col = 0;
        }
        out.extend_from_slice(piece.as_bytes());
        col += piece.len();
    }
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Wrapped prose paragraphs, CRLF line ends, until `out` has grown by at least
/// `bytes` (it stops at the end of a line, so it may overshoot by one line).
fn prose(rng: &mut SplitMix64, out: &mut Vec<u8>, bytes: usize, prefix: &str) {
    let start = out.len();
    while out.len() - start < bytes {
        let sentences = rng.range(2, 6);
        let mut line_len = 0;
        out.extend_from_slice(prefix.as_bytes());
        for _ in 0..sentences {
            let n = rng.range(5, 18);
            for w in 0..n {
                let word = rng.pick_str(words::WORDS);
                let word: String = if w == 0 {
                    cap(word)
                } else {
                    (*word).to_string()
                };
                if line_len + word.len() + 1 > 72 {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(prefix.as_bytes());
                    line_len = 0;
                } else if line_len > 0 {
                    out.push(b' ');
                    line_len += 1;
                }
                out.extend_from_slice(word.as_bytes());
                line_len += word.len();
            }
            out.push(b'.');
            line_len += 1;
        }
        out.extend_from_slice(b"\r\n\r\n");
        if out.len() - start >= bytes {
            break;
        }
    }
}

fn signature(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"-- \r\n");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A plain-text body of about `bytes` bytes (a reply quotes some earlier text).
fn text_body(rng: &mut SplitMix64, plan: &MessagePlan, bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let quoted = plan.in_reply_to.is_some();
    let own = if quoted { bytes / 2 } else { bytes };
    prose(rng, out, own.saturating_sub(80), "");
    signature(out, &plan.from_name);
    if quoted {
        out.extend_from_slice(
            format!(
                "\r\nOn {}, someone wrote:\r\n",
                rfc2822(plan.date_ms - 3_600_000)
            )
            .as_bytes(),
        );
        let left = bytes.saturating_sub(out.len() - start);
        prose(rng, out, left, "> ");
    }
}

fn html_body(rng: &mut SplitMix64, bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(b"<html><head><meta charset=\"utf-8\"></head><body>\r\n");
    while out.len() - start < bytes.saturating_sub(20) {
        out.extend_from_slice(b"<p>");
        let mut para = Vec::new();
        prose(rng, &mut para, 200, "");
        while para.ends_with(b"\r\n") {
            para.truncate(para.len() - 2);
        }
        out.extend_from_slice(&para);
        out.extend_from_slice(b"</p>\r\n");
    }
    out.extend_from_slice(b"</body></html>\r\n");
}

/// Base64 of `raw` in 76-column lines.
fn base64_lines(raw: &[u8], out: &mut Vec<u8>) {
    let eng = &base64::engine::general_purpose::STANDARD;
    let mut buf = [0u8; 80];
    for chunk in raw.chunks(57) {
        let n = eng
            .encode_slice(chunk, &mut buf)
            .expect("76 bytes fit in 80");
        out.extend_from_slice(&buf[..n]);
        out.extend_from_slice(b"\r\n");
    }
}

fn attachment_bytes(rng: &mut SplitMix64, a: &Attachment) -> Vec<u8> {
    let size = a.size as usize;
    let mut raw = Vec::with_capacity(size + 200);
    match a.data {
        AttachmentData::Binary => {
            raw.resize(size, 0);
            rng.fill_bytes(&mut raw);
        }
        AttachmentData::Text if a.content_type == "text/csv" => {
            raw.extend_from_slice(b"date,order,product,quantity,price,status\r\n");
            while raw.len() < size {
                let line = format!(
                    "2025-{:02}-{:02},ORD-{},{},{},{}.{:02},{}\r\n",
                    rng.range(1, 12),
                    rng.range(1, 28),
                    rng.range(10000, 99999),
                    rng.pick_str(words::PRODUCTS),
                    rng.range(1, 500),
                    rng.range(1, 9999),
                    rng.below(100),
                    rng.pick_str(&["shipped", "pending", "returned", "invoiced"])
                );
                raw.extend_from_slice(line.as_bytes());
            }
            raw.truncate(size);
        }
        AttachmentData::Text => {
            while raw.len() < size {
                let line = format!(
                    "2025-{:02}-{:02}T{:02}:{:02}:{:02}Z {} mailbox[{}]: {} {} {} took {} ms\n",
                    rng.range(1, 12),
                    rng.range(1, 28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60),
                    rng.pick_str(&["INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"]),
                    rng.range(100, 32000),
                    rng.pick_str(words::WORDS),
                    rng.pick_str(words::WORDS),
                    rng.pick_str(words::WORDS),
                    rng.range(1, 2000)
                );
                raw.extend_from_slice(line.as_bytes());
            }
            raw.truncate(size);
        }
    }
    raw
}

fn render(corpus: &Corpus, plan: &MessagePlan, rng: &mut SplitMix64) -> Vec<u8> {
    let mut out = Vec::with_capacity(plan.target_size as usize + 1024);
    let acc = |a: usize| {
        let a = &corpus.accounts[a];
        format!("\"{}\" <{}>", a.display_name, a.email)
    };
    header(&mut out, "Message-ID", &format!("<{}>", plan.message_id));
    header(&mut out, "Date", &rfc2822(plan.date_ms));
    header(
        &mut out,
        "From",
        &format!("\"{}\" <{}>", plan.from_name, plan.from),
    );
    // Long lists: the first few in To, the rest in Cc.
    let all: Vec<String> = plan.rcpts.iter().map(|&a| acc(a)).collect();
    let split = if all.len() > 3 {
        all.len().div_ceil(2)
    } else {
        all.len()
    };
    header_list(&mut out, "To", &all[..split]);
    let mut cc: Vec<String> = all[split..].to_vec();
    if let Some(x) = &plan.external_cc {
        cc.push(x.clone());
    }
    if !cc.is_empty() {
        header_list(&mut out, "Cc", &cc);
    }
    header(&mut out, "Subject", &plan.subject);
    if let Some(r) = &plan.in_reply_to {
        header(&mut out, "In-Reply-To", &format!("<{r}>"));
        let refs: Vec<String> = plan.references.iter().map(|r| format!("<{r}>")).collect();
        header_list(&mut out, "References", &refs);
    }
    header(&mut out, "X-Mailer", rng.pick_str(words::MAILERS));
    header(&mut out, "MIME-Version", "1.0");
    let boundary = format!("=_mvb_{}_{:016x}", plan.index, rng.next_u64());
    let target = plan.target_size as usize;
    match plan.kind {
        Kind::Text => {
            header(
                &mut out,
                "Content-Type",
                "text/plain; charset=utf-8; format=flowed",
            );
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            let left = target.saturating_sub(out.len());
            text_body(rng, plan, left, &mut out);
        }
        Kind::Alternative => {
            header(
                &mut out,
                "Content-Type",
                &format!("multipart/alternative; boundary=\"{boundary}\""),
            );
            out.extend_from_slice(b"\r\nThis is a multi-part message in MIME format.\r\n");
            let left = target.saturating_sub(out.len() + 300);
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            header(&mut out, "Content-Type", "text/plain; charset=utf-8");
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            text_body(rng, plan, left * 2 / 5, &mut out);
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            header(&mut out, "Content-Type", "text/html; charset=utf-8");
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            html_body(rng, left * 3 / 5, &mut out);
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
        Kind::Attachments => {
            header(
                &mut out,
                "Content-Type",
                &format!("multipart/mixed; boundary=\"{boundary}\""),
            );
            out.extend_from_slice(b"\r\nThis is a multi-part message in MIME format.\r\n");
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            header(&mut out, "Content-Type", "text/plain; charset=utf-8");
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            let text = rng.range(1024, 3 * 1024) as usize;
            text_body(rng, plan, text, &mut out);
            for a in &plan.attachments {
                out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                header(
                    &mut out,
                    "Content-Type",
                    &format!("{}; name=\"{}\"", a.content_type, a.filename),
                );
                header(
                    &mut out,
                    "Content-Disposition",
                    &format!("attachment; filename=\"{}\"", a.filename),
                );
                header(&mut out, "Content-Transfer-Encoding", "base64");
                out.extend_from_slice(b"\r\n");
                let raw = attachment_bytes(rng, a);
                base64_lines(&raw, &mut out);
            }
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
    }
    out
}

/// A text/plain message of exactly `size` bytes from `from` to `to` (the LMTP
/// scenario's fixed-size messages), deterministic from `(seed, index)`.
pub fn fixed_size_message(seed: u64, index: u64, from: &str, to: &str, size: usize) -> Vec<u8> {
    let mut rng = SplitMix64::stream(seed, 20, index);
    let mut out = Vec::with_capacity(size + 256);
    header(
        &mut out,
        "Message-ID",
        &format!("<{}>", fixed_message_id(seed, index)),
    );
    header(&mut out, "Date", &rfc2822(EPOCH_MS + index as i64 * 1000));
    header(&mut out, "From", &format!("<{from}>"));
    header(&mut out, "To", &format!("<{to}>"));
    header(&mut out, "Subject", &new_subject(&mut rng));
    header(&mut out, "MIME-Version", "1.0");
    header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    header(&mut out, "Content-Transfer-Encoding", "7bit");
    out.extend_from_slice(b"\r\n");
    let left = size.saturating_sub(out.len());
    prose(&mut rng, &mut out, left, "");
    // Exactly `size`: cut, never leaving a bare CR, and end with CRLF.
    out.truncate(size.saturating_sub(2));
    while matches!(out.last(), Some(b'\r' | b'\n')) {
        out.pop();
    }
    while out.len() + 2 < size {
        out.push(b'.');
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The Message-ID (without brackets) of [`fixed_size_message`]`(seed, index, ..)`.
pub fn fixed_message_id(seed: u64, index: u64) -> String {
    format!("mvb{FORMAT}.fixed.{seed:x}.{index}@corpus.example")
}

// ---------------------------------------------------------------------------
// Writing the corpus to disk

#[derive(Debug, Serialize)]
pub struct WrittenMessage {
    pub file: String,
    pub size: u64,
    pub blake3: String,
    #[serde(flatten)]
    pub plan: MessagePlan,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub accounts: usize,
    pub messages: usize,
    pub bytes: u64,
    /// Copies once delivered and filed (envelope recipients + senders' Sent copies).
    pub placements: usize,
    pub contacts: usize,
    pub appointments: usize,
}

#[derive(Debug, Serialize)]
pub struct ManifestAccount {
    #[serde(flatten)]
    pub account: Account,
    pub contacts_file: String,
    pub calendar_file: String,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub format: u32,
    pub generator: String,
    pub seed: u64,
    pub scale: Scale,
    pub domain: String,
    pub totals: Totals,
    pub accounts: Vec<ManifestAccount>,
    pub messages: Vec<WrittenMessage>,
}

/// Relative path of message `i` in a written corpus.
pub fn message_file(i: usize) -> String {
    format!("messages/{:04}/{i:07}.eml", i / 1000)
}

/// Writes the corpus under `out`: `messages/NNNN/NNNNNNN.eml`,
/// `accounts/<email>/{contacts.vcf,calendar.ics}` and `manifest.json`. Uses all
/// cores; returns the manifest.
pub fn write_corpus(corpus: &Corpus, out: &Path) -> anyhow::Result<Manifest> {
    use anyhow::Context;
    use std::sync::atomic::{AtomicUsize, Ordering};
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let n = corpus.messages.len();
    for d in 0..n.div_ceil(1000) {
        std::fs::create_dir_all(out.join(format!("messages/{d:04}")))?;
    }
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut results: Vec<(usize, u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(usize, u64, String)>> {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(mine);
                        }
                        let bytes = corpus.message(i);
                        let path = out.join(message_file(i));
                        std::fs::write(&path, &bytes)
                            .with_context(|| format!("writing {}", path.display()))?;
                        mine.push((
                            i,
                            bytes.len() as u64,
                            blake3::hash(&bytes).to_hex().to_string(),
                        ));
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            all.extend(h.join().expect("corpus writer panicked")?);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    results.sort_by_key(|r| r.0);

    let mut accounts = Vec::new();
    for (a, acc) in corpus.accounts.iter().enumerate() {
        let dir = format!("accounts/{}", acc.email);
        std::fs::create_dir_all(out.join(&dir))?;
        let contacts_file = format!("{dir}/contacts.vcf");
        let calendar_file = format!("{dir}/calendar.ics");
        std::fs::write(out.join(&contacts_file), corpus.contacts_vcf(a))?;
        std::fs::write(out.join(&calendar_file), corpus.calendar_ics(a))?;
        accounts.push(ManifestAccount {
            account: acc.clone(),
            contacts_file,
            calendar_file,
        });
    }
    let messages: Vec<WrittenMessage> = results
        .into_iter()
        .map(|(i, size, blake3)| WrittenMessage {
            file: message_file(i),
            size,
            blake3,
            plan: corpus.messages[i].clone(),
        })
        .collect();
    let manifest = Manifest {
        format: FORMAT,
        generator: format!("mailvault-bench {}", env!("CARGO_PKG_VERSION")),
        seed: corpus.seed,
        scale: corpus.scale,
        domain: DOMAIN.into(),
        totals: Totals {
            accounts: corpus.accounts.len(),
            messages: n,
            bytes: messages.iter().map(|m| m.size).sum(),
            placements: corpus.messages.iter().map(|m| m.placements.len()).sum(),
            contacts: corpus.accounts.iter().map(|a| a.contacts).sum(),
            appointments: corpus.accounts.iter().map(|a| a.appointments).sum(),
        },
        accounts,
        messages,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(out.join("manifest.json"), json)?;
    Ok(manifest)
}

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

mod pim;
mod render;
mod write;

pub use render::{fixed_message_id, fixed_size_message};
pub use write::{Manifest, ManifestAccount, Totals, WrittenMessage, message_file, write_corpus};

use crate::rng::SplitMix64;
use crate::words;
use base64::Engine;
use serde::Serialize;

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
        render::render(self, plan, &mut rng)
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

//! Storing messages: a delivery (one message, several mailboxes) and a batch
//! (many messages, one mailbox: a restore of items from a backup). Both plan
//! their `CreateMessage` records with the one [`Planner`] and commit them with
//! the content records they need, so a batch is the same records a run of
//! single deliveries would log, under one group commit per chunk.

use super::*;
use std::collections::{HashMap, HashSet};

/// Messages of a batch under one redo commit at most, and their bytes at most:
/// the mailbox's lock is held while a chunk is logged and applied, so a chunk
/// keeps a concurrent delivery waiting no longer than about one fsync plus
/// these inserts.
const CHUNK_MESSAGES: usize = 256;
const CHUNK_BYTES: usize = 32 << 20;

/// One message of a batch: its content (without the prefix), its own header
/// lines before it (empty, or complete header lines: see
/// [`Store::deliver_with_prefixes`]), and where and how it is stored.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub raw: &'a [u8],
    pub prefix: &'a [u8],
    pub options: DeliverOptions,
}

/// Decides item ids and IMAP UIDs for the messages one commit adds to one
/// mailbox: each takes the next item id and its folder's next UID, as if each
/// were committed before the next was planned.
struct Planner {
    next_id: u32,
    uid_next: HashMap<u32, u32>,
    tags_seen: HashSet<u32>,
}

impl Planner {
    fn new(g: &MailboxGuard<'_>) -> Result<Planner, StoreError> {
        Ok(Planner {
            next_id: next_item_id(g)?,
            uid_next: HashMap::new(),
            tags_seen: HashSet::new(),
        })
    }

    /// The `CreateMessage` of one message whose content (`digest`, `raw_len`
    /// bytes) a `PutBlob` of the same commit carries.
    fn message(
        &mut self,
        g: &MailboxGuard<'_>,
        options: &DeliverOptions,
        content: (&mv_types::Digest, usize),
        envelope: &ops::Envelope,
        prefix: &[u8],
    ) -> Result<(ItemId, Op), StoreError> {
        if options.flags & !flags::ALL != 0 {
            return Err(StoreError::Invalid(format!(
                "unknown flag bits {:#x}",
                options.flags & !flags::ALL
            )));
        }
        let uid = match self.uid_next.get(&options.folder_id) {
            Some(u) => *u,
            None => {
                let (_, view, uid_next) = folder_row(g, options.folder_id)?;
                if view != "message" && view != "unknown" {
                    return Err(StoreError::Invalid(format!(
                        "folder {} holds {view}s, not messages",
                        options.folder_id
                    )));
                }
                uid_next
            }
        };
        for t in &options.tags {
            if self.tags_seen.insert(*t) {
                require_tag(g, *t)?;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.uid_next.insert(options.folder_id, uid + 1);
        let received = options.received.unwrap_or_else(UtcMillis::now);
        let op = Op::CreateMessage(ops::CreateMessage {
            id,
            folder_id: options.folder_id,
            imap_uid: uid,
            digest: content.0.0,
            size: (prefix.len() + content.1) as u64,
            received_ms: received.0,
            flags: options.flags,
            tags: options.tags.clone(),
            envelope: envelope.clone(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_vec()),
        });
        Ok((ItemId(id), op))
    }
}

impl Store {
    /// Stores one message for several local recipients: the content is logged once
    /// and stored as one file hard-linked into each mailbox. Returns each
    /// recipient's new item id, in the order given.
    pub fn deliver(
        &self,
        raw: &[u8],
        recipients: &[MailboxId],
        options: &DeliverOptions,
    ) -> Result<Vec<ItemId>, StoreError> {
        let plain: Vec<(MailboxId, Vec<u8>)> =
            recipients.iter().map(|id| (*id, Vec::new())).collect();
        self.deliver_with_prefixes(raw, &plain, options)
    }

    /// [`Store::deliver`] with header lines of each recipient's own before the
    /// shared content (a delivery's trace headers: `Return-Path`,
    /// `Delivered-To`, `Received`). The content is still logged and stored
    /// once; each prefix is kept in its mailbox's database and logged in its
    /// `CreateMessage` record, so replay and restore rebuild the same bytes.
    /// A prefix is empty or complete header lines (each ending in CRLF, none
    /// empty, no NUL), at most [`crate::MAX_PREFIX`] bytes. A mailbox named twice
    /// gets one message, with the first prefix given for it.
    pub fn deliver_with_prefixes(
        &self,
        raw: &[u8],
        recipients: &[(MailboxId, Vec<u8>)],
        options: &DeliverOptions,
    ) -> Result<Vec<ItemId>, StoreError> {
        if options.flags & !flags::ALL != 0 {
            return Err(StoreError::Invalid(format!(
                "unknown flag bits {:#x}",
                options.flags & !flags::ALL
            )));
        }
        let mut prefixes: HashMap<MailboxId, &[u8]> = HashMap::new();
        for (id, prefix) in recipients {
            crate::prefix::check(prefix)?;
            prefixes.entry(*id).or_insert(prefix);
        }
        let mut unique: Vec<MailboxId> = prefixes.keys().copied().collect();
        unique.sort();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let envelope = mime::extract_envelope(raw);
        let (digest, staged_path) = self.blobs().stage(raw)?;
        let mut staged = Staged::default();
        staged.insert(digest, staged_path.clone());
        // Locks in mailbox-id order: two deliveries never wait on each other in a cycle.
        let handles: Vec<_> = unique.iter().map(|id| self.mailbox(*id)).collect();
        let result = (|| {
            let mut guards = Vec::with_capacity(handles.len());
            for h in &handles {
                let g = h.lock()?;
                require_live(&g)?;
                guards.push(g);
            }
            let mut ops = Vec::with_capacity(guards.len());
            let mut ids = HashMap::new();
            for g in &guards {
                let (id, op) = Planner::new(g)?.message(
                    g,
                    options,
                    (&digest, raw.len()),
                    &envelope,
                    prefixes[&g.id],
                )?;
                ids.insert(g.id, id);
                ops.push((g.id, op));
            }
            let shared = vec![Op::PutBlob(ops::PutBlob {
                digest: digest.0,
                data: raw.to_vec(),
            })];
            self.commit(&mut guards, shared, ops, &staged)?;
            Ok(recipients.iter().map(|(r, _)| ids[r]).collect())
        })();
        let _ = self.blobs().remove(&staged_path);
        result
    }

    /// Adds a message to one mailbox (`zmmailbox am`, IMAP APPEND, import).
    pub fn add_message(
        &self,
        id: MailboxId,
        raw: &[u8],
        options: &DeliverOptions,
    ) -> Result<ItemId, StoreError> {
        Ok(self.deliver(raw, &[id], options)?[0])
    }

    /// Adds many messages to one mailbox, each with its own folder, flags, tags,
    /// received date and prefix: the records of [`Store::add_message`] for each
    /// (a `PutBlob` per distinct content, a `CreateMessage` per message), logged
    /// and applied a chunk at a time under one group commit, so that N messages
    /// cost a few fsyncs instead of N. Returns the new item ids, in order. Every
    /// message is checked before any is stored; a chunk that fails stops the
    /// batch, and the chunks before it stay stored (their ids are lost with the
    /// error: a caller that must not store twice checks what is there first).
    pub fn add_messages(
        &self,
        id: MailboxId,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<ItemId>, StoreError> {
        for m in messages {
            crate::prefix::check(m.prefix)?;
            if m.options.flags & !flags::ALL != 0 {
                return Err(StoreError::Invalid(format!(
                    "unknown flag bits {:#x}",
                    m.options.flags & !flags::ALL
                )));
            }
        }
        let mut out = Vec::with_capacity(messages.len());
        let mut start = 0;
        while start < messages.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < messages.len()
                && end - start < CHUNK_MESSAGES
                && (end == start || bytes + messages[end].raw.len() <= CHUNK_BYTES)
            {
                bytes += messages[end].raw.len();
                end += 1;
            }
            out.extend(self.add_chunk(id, &messages[start..end])?);
            start = end;
        }
        Ok(out)
    }

    /// One commit of [`Store::add_messages`].
    fn add_chunk(
        &self,
        id: MailboxId,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<ItemId>, StoreError> {
        let mut staged = Staged::default();
        let mut shared = Vec::new();
        let mut contents = Vec::with_capacity(messages.len());
        let result = (|| {
            for m in messages {
                // The same content twice in a chunk is logged and staged once.
                let mut digest = mv_types::Digest::of(m.raw);
                if !staged.contains(&digest) {
                    let path;
                    (digest, path) = self.blobs().stage(m.raw)?;
                    staged.insert(digest, path);
                    shared.push(Op::PutBlob(ops::PutBlob {
                        digest: digest.0,
                        data: m.raw.to_vec(),
                    }));
                }
                contents.push((digest, mime::extract_envelope(m.raw)));
            }
            let mbox = self.mailbox(id);
            let mut g = mbox.lock()?;
            require_live(&g)?;
            let mut planner = Planner::new(&g)?;
            let mut ids = Vec::with_capacity(messages.len());
            let mut ops = Vec::with_capacity(messages.len());
            for (m, (digest, envelope)) in messages.iter().zip(&contents) {
                let (item, op) =
                    planner.message(&g, &m.options, (digest, m.raw.len()), envelope, m.prefix)?;
                ids.push(item);
                ops.push((id, op));
            }
            self.commit(
                std::slice::from_mut(&mut g),
                std::mem::take(&mut shared),
                ops,
                &staged,
            )?;
            Ok(ids)
        })();
        for p in staged.paths() {
            let _ = self.blobs().remove(p);
        }
        result
    }
}

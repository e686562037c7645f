//! Commands of the selected state: EXPUNGE, SEARCH, FETCH, STORE, COPY, MOVE.

use super::items::{DIRECT_WRITE_MIN, fetch_item, section_depth};
use super::*;
use crate::cache::{CacheKey, MessageKey, Rendered};
use std::io::Write as _;

impl<B: Backend> Session<B> {
    /// (account, selected id, read-only) for commands of the selected state.
    pub(super) fn sel(&self) -> Result<(Account, u32, bool), Reply> {
        let acct = self.need_auth()?;
        let s = self
            .selected
            .as_ref()
            .ok_or_else(|| bad("select a mailbox first"))?;
        Ok((acct, s.id, s.read_only))
    }

    /// Indexes (0-based) into the reported messages for a set of sequence numbers or UIDs.
    pub(super) fn indexes(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, Reply> {
        let sel = self
            .selected
            .as_ref()
            .ok_or_else(|| bad("select a mailbox first"))?;
        let msgs = &sel.msgs;
        let mut out = Vec::new();
        if uid {
            let max = msgs.last().map(|m| m.uid).unwrap_or(0);
            let r = ranges(set, max, false).unwrap_or_default();
            for (i, m) in msgs.iter().enumerate() {
                if r.iter().any(|(a, b)| (*a..=*b).contains(&m.uid)) {
                    out.push(i);
                }
            }
        } else {
            let n = msgs.len() as u32;
            // `1:*` in an empty mailbox selects nothing (as clients expect), not an error.
            if n == 0 && set.0.as_ref().iter().any(has_asterisk) {
                return Ok(Vec::new());
            }
            let r = ranges(set, n, true).ok_or_else(|| bad("invalid message sequence number"))?;
            let mut seen = vec![false; msgs.len()];
            for (a, b) in r {
                for s in a..=b {
                    seen[(s - 1) as usize] = true;
                }
            }
            out = (0..msgs.len()).filter(|i| seen[*i]).collect();
        }
        Ok(out)
    }

    pub(super) async fn expunge(&mut self, only: Option<&SequenceSet>) -> Res {
        let (acct, id, ro) = self.sel()?;
        if ro {
            return Err(no(Some("READ-ONLY"), "the mailbox is selected read-only"));
        }
        let uids: Option<Vec<u32>> = match only {
            Some(set) => Some(
                self.indexes(set, true)?
                    .into_iter()
                    .map(|i| self.selected.as_ref().expect("sel").msgs[i].uid)
                    .collect(),
            ),
            None => None,
        };
        self.call(move |b| b.expunge(&acct, id, uids.as_deref()))
            .await?;
        self.refresh(true).await;
        Ok(())
    }

    /// UIDs of the selected mailbox's messages matching every key, sorted.
    pub(super) async fn search_uids(&mut self, keys: &[SearchKey<'_>]) -> Result<Vec<u32>, Reply> {
        let (acct, id, _) = self.sel()?;
        let sel = self.selected.as_ref().expect("sel");
        let seq_uids: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
        let cx = convert::SearchContext {
            seq_uids: &seq_uids,
            max_uid: seq_uids.last().copied().unwrap_or(0),
            recent: &sel.recent,
        };
        let mut criteria = Vec::new();
        for k in keys {
            criteria.push(convert::criterion(k, &cx).map_err(bad)?);
        }
        let mut found = self.call(move |b| b.search(&acct, id, &criteria)).await?;
        found.sort_unstable();
        Ok(found)
    }

    pub(super) async fn search(&mut self, tag: &str, keys: &[SearchKey<'_>], uid: bool) -> Res {
        let modseq_asked = keys.iter().any(mentions_modseq);
        let found = self.search_uids(keys).await?;
        let sel = self.selected.as_ref().expect("sel");
        let mut nums = Vec::new();
        let mut modseqs = Vec::new();
        let mut uids = Vec::new();
        for (i, m) in sel.msgs.iter().enumerate() {
            if found.binary_search(&m.uid).is_ok() {
                nums.push(if uid { m.uid } else { i as u32 + 1 });
                modseqs.push(m.modseq);
                uids.push(m.uid);
            }
        }
        if let Some(opts) = self.returning.as_ref().filter(|o| o.save) {
            self.saved = opts.saved(&uids);
        }
        if self.returning.as_ref().is_some_and(|o| o.update) {
            self.add_context(tag, uid, uids, None)?;
        }
        if modseq_asked {
            self.enable_condstore();
        }
        if let Some(opts) = self.returning.take() {
            // MODSEQ of what is returned: all matches, or only the MIN/MAX ones
            // (RFC 4731 §3.2).
            let modseq = modseq_asked.then(|| {
                if opts.all || opts.count {
                    modseqs.iter().copied().max().unwrap_or(0)
                } else {
                    let first = opts.min.then(|| modseqs.first().copied()).flatten();
                    let last = opts.max.then(|| modseqs.last().copied()).flatten();
                    first.max(last).unwrap_or(0)
                }
            });
            if !opts.save_only() {
                let line = crate::esearch::response(tag, uid, &opts, &nums, modseq);
                self.untagged(&line);
            }
            if uid {
                self.refresh(true).await;
            }
            return Ok(());
        }
        let top_modseq = modseqs.iter().copied().max().unwrap_or(0);
        let mut line = String::from("SEARCH");
        for n in &nums {
            line.push_str(&format!(" {n}"));
        }
        if modseq_asked && !nums.is_empty() {
            line.push_str(&format!(" (MODSEQ {top_modseq})"));
        }
        self.untagged(&line);
        if uid {
            self.refresh(true).await;
        }
        Ok(())
    }

    pub(super) async fn fetch<S: AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        set: &SequenceSet,
        items: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> std::io::Result<Res> {
        let (acct, id, ro) = match self.sel() {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        let mut names: Vec<MessageDataItemName<'_>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => m.expand(),
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v.clone(),
        };
        let preview = self.preview.take();
        if preview.is_some_and(|p| p.alone) && !uid {
            // Only PREVIEW was asked for: the UID stood in for it.
            names.clear();
        }
        let mut changed_since = None;
        let mut vanished = false;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished {
            // RFC 7162 §3.2.6: UID FETCH with CHANGEDSINCE, QRESYNC enabled.
            if !self.qresync || !uid || changed_since.is_none() {
                return Ok(Err(bad(
                    "VANISHED needs QRESYNC enabled, UID FETCH and CHANGEDSINCE",
                )));
            }
            let since = changed_since.expect("checked");
            if let Err(e) = self.vanished_earlier(since, Some(set)).await {
                return Ok(Err(e));
            }
        }
        if changed_since.is_some()
            || names
                .iter()
                .any(|n| matches!(n, MessageDataItemName::ModSeq))
        {
            self.enable_condstore();
        }
        if uid && !names.iter().any(|n| matches!(n, MessageDataItemName::Uid)) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if self.condstore
            && changed_since.is_some()
            && !names
                .iter()
                .any(|n| matches!(n, MessageDataItemName::ModSeq))
        {
            names.push(MessageDataItemName::ModSeq);
        }
        for n in &names {
            if let MessageDataItemName::BodyExt {
                section: Some(sec), ..
            } = n
                && section_depth(sec) > mime::MAX_DEPTH
            {
                return Ok(Err(bad("section path is too deep")));
            }
            if let MessageDataItemName::Binary { section, .. }
            | MessageDataItemName::BinarySize { section } = n
                && section.len() > mime::MAX_DEPTH
            {
                return Ok(Err(bad("section path is too deep")));
            }
        }
        let idx = match self.indexes(set, uid) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        let sets_seen = !ro
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Binary { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        // \Seen first, so the FLAGS reported below are the new ones.
        if sets_seen {
            let sel = self.selected.as_ref().expect("sel");
            let unseen: Vec<u32> = idx
                .iter()
                .map(|&i| &sel.msgs[i])
                .filter(|m| m.flags & crate::backend::flags::SEEN == 0)
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let a = acct.clone();
                if let Err(e) = self
                    .call(move |b| {
                        b.store(
                            &a,
                            id,
                            &unseen,
                            FlagOp::Add,
                            crate::backend::flags::SEEN,
                            &[],
                        )
                    })
                    .await
                {
                    return Ok(Err(e.into()));
                }
                if let Err(e) = self.reload_meta().await {
                    return Ok(Err(e));
                }
                if !names
                    .iter()
                    .any(|n| matches!(n, MessageDataItemName::Flags))
                {
                    names.push(MessageDataItemName::Flags);
                }
            }
        }
        let mut plan = FetchPlan::new(&names);
        if preview.is_some() {
            plan.rendered.push(Rendered::Preview);
            plan.header_only = false;
        }
        let sel = self.selected.as_ref().expect("sel");
        let wanted: Vec<usize> = idx
            .into_iter()
            .filter(|&i| changed_since.is_none_or(|c| sel.msgs[i].modseq > c))
            .collect();
        // Batches of messages, each read by one backend call: fewer round trips
        // and one metadata query, memory bounded by a batch's bytes. The next
        // batch is read while this one is written to the client.
        let mut batches = Vec::new();
        let mut start = 0;
        while start < wanted.len() {
            let mut end = start;
            let mut bytes = 0u64;
            while end < wanted.len()
                && end - start < FETCH_BATCH
                && (end == start || plan.header_only || bytes < FETCH_BATCH_BYTES)
            {
                bytes += sel.msgs[wanted[end]].size;
                end += 1;
            }
            batches.push(start..end);
            start = end;
        }
        let mut batches = batches.into_iter().map(|r| wanted[r].to_vec());
        let mut next = batches
            .next()
            .map(|b| self.prepare_batch(&acct, id, b, &plan));
        while let Some(batch) = next.take() {
            next = batches
                .next()
                .map(|b| self.prepare_batch(&acct, id, b, &plan));
            let raws = match batch.read {
                Some(read) => match read.await.expect("backend call panicked") {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e.into())),
                },
                None => Vec::new(),
            };
            let mut raws = raws.into_iter().peekable();
            let mut fresh = Vec::new();
            for (k, (m, seq)) in batch.metas.iter().zip(&batch.seqs).enumerate() {
                let raw = match raws.next_if(|(u, _)| *u == m.uid) {
                    Some((_, r)) => Some(r),
                    // Expunged meanwhile by another session: nothing to show.
                    None if batch.needs_read[k] => continue,
                    None => None,
                };
                let mut rendered: Vec<(Rendered, Arc<[u8]>)> = Vec::new();
                for (j, kind) in plan.rendered.iter().enumerate() {
                    let cached = &batch.cached[k * plan.rendered.len() + j];
                    let bytes = match (cached, &raw) {
                        (Some(b), _) => b.clone(),
                        (None, Some(r)) => {
                            let b = render(*kind, r);
                            fresh.push(((batch.keys[k], *kind), b.clone()));
                            b
                        }
                        (None, None) => unreachable!("a message without its answer is read"),
                    };
                    rendered.push((*kind, bytes));
                }
                let _ = write!(self.out, "* {} FETCH (", seq + 1);
                for (j, n) in names.iter().enumerate() {
                    if j > 0 {
                        self.out.push(b' ');
                    }
                    let data = fetch_item(&mut self.out, n, m, raw.as_deref(), &rendered);
                    if let Some(data) = data {
                        if data.len() >= DIRECT_WRITE_MIN {
                            // Large literals go to the client as they are, not
                            // through another copy into the output buffer.
                            self.flush_buffer(s).await?;
                            s.write_all(&data).await?;
                        } else {
                            self.out.extend_from_slice(&data);
                        }
                    }
                }
                if preview.is_some() {
                    // After the other items: their order is free (RFC 3501 §7.4.2).
                    if !names.is_empty() {
                        self.out.push(b' ');
                    }
                    self.out.extend_from_slice(b"PREVIEW ");
                    let p = rendered.iter().find(|(k, _)| *k == Rendered::Preview);
                    self.out
                        .extend_from_slice(p.map(|(_, b)| &b[..]).unwrap_or(b"NIL"));
                }
                self.out.extend_from_slice(b")\r\n");
                if self.out.len() > 1 << 20 {
                    self.flush(s).await?;
                }
            }
            self.shared.cache.put_many(fresh);
        }
        if uid {
            self.refresh(true).await;
        }
        Ok(Ok(()))
    }

    /// Looks a batch up in the FETCH cache and starts reading, on the blocking
    /// pool, the messages whose answers need their bytes.
    fn prepare_batch(
        &self,
        acct: &Account,
        mailbox: u32,
        seqs: Vec<usize>,
        plan: &FetchPlan,
    ) -> Batch {
        let sel = self.selected.as_ref().expect("sel");
        let metas: Vec<MessageMeta> = seqs.iter().map(|&i| sel.msgs[i].clone()).collect();
        let keys: Vec<MessageKey> = metas
            .iter()
            .map(|m| MessageKey {
                account: acct.id,
                mailbox,
                uid_validity: sel.uid_validity,
                uid: m.uid,
                size: m.size,
            })
            .collect();
        let lookups: Vec<CacheKey> = keys
            .iter()
            .flat_map(|k| plan.rendered.iter().map(move |r| (*k, *r)))
            .collect();
        let cached = if lookups.is_empty() {
            Vec::new()
        } else {
            self.shared.cache.get_many(&lookups)
        };
        let per = plan.rendered.len();
        let needs_read: Vec<bool> = (0..metas.len())
            .map(|k| plan.needs_bytes || cached[k * per..(k + 1) * per].iter().any(Option::is_none))
            .collect();
        let uids: Vec<u32> = metas
            .iter()
            .zip(&needs_read)
            .filter(|(_, r)| **r)
            .map(|(m, _)| m.uid)
            .collect();
        let read = (!uids.is_empty()).then(|| {
            let (b, a, header_only) = (self.backend.clone(), acct.clone(), plan.header_only);
            tokio::task::spawn_blocking(move || b.messages(&a, mailbox, &uids, header_only))
        });
        Batch {
            metas,
            seqs,
            keys,
            cached,
            needs_read,
            read,
        }
    }

    /// Reloads the selected mailbox's flags after the session's own change,
    /// without reporting other changes (those come with the next refresh).
    pub(super) async fn reload_meta(&mut self) -> Res {
        let (acct, id, _) = self.sel()?;
        let snap = self.call(move |b| b.snapshot(&acct, id)).await?;
        let sel = self.selected.as_mut().expect("sel");
        for m in sel.msgs.iter_mut() {
            if let Ok(j) = snap.messages.binary_search_by_key(&m.uid, |x| x.uid) {
                *m = snap.messages[j].clone();
            }
        }
        sel.highest_modseq = snap.highest_modseq.max(1);
        Selected::mark_recent(&sel.recent, &mut sel.msgs);
        // A keyword this session just used is announced before it is shown.
        if sel.new_keywords() {
            self.announce_flags();
        }
        Ok(())
    }

    pub(super) async fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[imap_codec::imap_types::flag::Flag<'_>],
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Result<Option<String>, Reply> {
        let (acct, id, ro) = self.sel()?;
        if ro {
            return Err(no(Some("READ-ONLY"), "the mailbox is selected read-only"));
        }
        let (bits, kw) = flags_of(flags);
        if let Some(bad_kw) = kw.iter().find(|k| k.len() > 128) {
            return Err(bad(format!("keyword {bad_kw:?} is too long")));
        }
        let unchanged_since = modifiers
            .iter()
            .map(|m| match m {
                StoreModifier::UnchangedSince(n) => *n,
            })
            .next();
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let idx = self.indexes(set, uid)?;
        let sel = self.selected.as_ref().expect("sel");
        let mut modified = Vec::new();
        let mut uids = Vec::new();
        for &i in &idx {
            let m = &sel.msgs[i];
            if unchanged_since.is_some_and(|u| m.modseq > u) {
                modified.push(if uid { m.uid } else { i as u32 + 1 });
            } else {
                uids.push(m.uid);
            }
        }
        let op = match kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        if !uids.is_empty() {
            let (a, u) = (acct.clone(), uids.clone());
            self.call(move |b| b.store(&a, id, &u, op, bits, &kw))
                .await?;
        }
        self.reload_meta().await?;
        let silent = matches!(response, StoreResponse::Silent);
        let condstore = self.condstore;
        let sel = self.selected.as_ref().expect("sel");
        let mut lines = Vec::new();
        for &i in &idx {
            let m = &sel.msgs[i];
            if !uids.contains(&m.uid) {
                continue;
            }
            // With CONDSTORE a silent STORE still reports the new MODSEQ (RFC 7162 §3.1.3).
            if silent && !condstore {
                continue;
            }
            let mut parts = Vec::new();
            if uid {
                parts.push(format!("UID {}", m.uid));
            }
            if !silent {
                parts.push(format!("FLAGS {}", flag_list(m.flags, &m.keywords)));
            }
            if condstore {
                parts.push(format!("MODSEQ ({})", m.modseq));
            }
            lines.push(format!("{} FETCH ({})", i + 1, parts.join(" ")));
        }
        for l in lines {
            self.untagged(&l);
        }
        if uid {
            self.refresh(true).await;
        }
        if modified.is_empty() {
            Ok(None)
        } else {
            Ok(Some(compress_set(&modified)))
        }
    }

    pub(super) async fn copy_move(
        &mut self,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
    ) -> Result<Option<String>, Reply> {
        let (acct, id, ro) = self.sel()?;
        if is_move && ro {
            return Err(no(Some("READ-ONLY"), "the mailbox is selected read-only"));
        }
        let name = self.name_of(mailbox)?;
        let dest = self
            .resolve(&acct, &name)
            .await
            .map_err(|_| no(Some("TRYCREATE"), format!("no mailbox named {name:?}")))?;
        let idx = self.indexes(set, uid)?;
        let sel = self.selected.as_ref().expect("sel");
        let uids: Vec<u32> = idx.iter().map(|&i| sel.msgs[i].uid).collect();
        if uids.is_empty() {
            return Ok(None);
        }
        let to = dest.id;
        let r = if is_move {
            self.call(move |b| b.move_messages(&acct, id, &uids, to))
                .await?
        } else {
            self.call(move |b| b.copy(&acct, id, &uids, to)).await?
        };
        if r.pairs.is_empty() {
            return Ok(None);
        }
        let src: Vec<u32> = r.pairs.iter().map(|p| p.0).collect();
        let dst: Vec<u32> = r.pairs.iter().map(|p| p.1).collect();
        Ok(Some(format!(
            "COPYUID {} {} {}",
            r.uid_validity,
            join_uids(&src),
            join_uids(&dst)
        )))
    }
}

/// Messages per backend call in FETCH, and their bytes (at least one message).
const FETCH_BATCH: usize = 256;
const FETCH_BATCH_BYTES: u64 = 16 << 20;

/// Whether a FETCH item needs no more of a message than its header section.
fn header_is_enough(n: &MessageDataItemName<'_>) -> bool {
    match n {
        MessageDataItemName::Uid
        | MessageDataItemName::Flags
        | MessageDataItemName::ModSeq
        | MessageDataItemName::Rfc822Size
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Envelope
        | MessageDataItemName::Rfc822Header => true,
        MessageDataItemName::BodyExt { section, .. } => matches!(
            section,
            Some(Section::Header(None))
                | Some(Section::HeaderFields(None, _))
                | Some(Section::HeaderFieldsNot(None, _))
        ),
        _ => false,
    }
}

/// What a FETCH needs: answers rendered from a parsed message (cached), whether
/// it needs the messages' bytes themselves, and whether their header is enough.
struct FetchPlan {
    rendered: Vec<Rendered>,
    needs_bytes: bool,
    header_only: bool,
}

impl FetchPlan {
    fn new(names: &[MessageDataItemName<'_>]) -> FetchPlan {
        let mut rendered = Vec::new();
        for n in names {
            let kind = match n {
                MessageDataItemName::Envelope => Rendered::Envelope,
                MessageDataItemName::Body => Rendered::Body,
                MessageDataItemName::BodyStructure => Rendered::BodyStructure,
                _ => continue,
            };
            if !rendered.contains(&kind) {
                rendered.push(kind);
            }
        }
        FetchPlan {
            rendered,
            needs_bytes: names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { .. }
                        | MessageDataItemName::Binary { .. }
                        | MessageDataItemName::BinarySize { .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Header
                        | MessageDataItemName::Rfc822Text
                )
            }),
            header_only: names.iter().all(header_is_enough),
        }
    }
}

/// One batch of a FETCH: its messages, their cached answers (per message, one
/// per [`FetchPlan::rendered`]) and the read of those that need their bytes.
struct Batch {
    metas: Vec<MessageMeta>,
    seqs: Vec<usize>,
    keys: Vec<MessageKey>,
    cached: Vec<Option<Arc<[u8]>>>,
    needs_read: Vec<bool>,
    read: Option<tokio::task::JoinHandle<crate::backend::BResult<Messages>>>,
}

/// Messages read for a FETCH: (UID, bytes).
type Messages = Vec<(u32, Vec<u8>)>;

fn render(kind: Rendered, raw: &[u8]) -> Arc<[u8]> {
    let mut out = Vec::new();
    match kind {
        Rendered::Envelope => mime::envelope(&mut out, mime::parse(raw).header),
        Rendered::Body => mime::body_structure(&mut out, &mime::parse(raw), false),
        Rendered::BodyStructure => mime::body_structure(&mut out, &mime::parse(raw), true),
        Rendered::Preview => out = crate::preview::answer(raw),
    }
    out.into()
}

fn has_asterisk(s: &imap_codec::imap_types::sequence::Sequence) -> bool {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    match s {
        Sequence::Single(x) => matches!(x, SeqOrUid::Asterisk),
        Sequence::Range(a, b) => matches!(a, SeqOrUid::Asterisk) || matches!(b, SeqOrUid::Asterisk),
    }
}

fn mentions_modseq(k: &SearchKey<'_>) -> bool {
    match k {
        SearchKey::ModSequence { .. } => true,
        SearchKey::Not(k) => mentions_modseq(k),
        SearchKey::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        SearchKey::And(v) => v.as_ref().iter().any(mentions_modseq),
        _ => false,
    }
}

fn join_uids(u: &[u32]) -> String {
    compress_set(u)
}

/// `1,2,3,7` → `1:3,7` (order kept, runs of +1 folded).
pub(super) fn compress_set(v: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}:{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(",")
}

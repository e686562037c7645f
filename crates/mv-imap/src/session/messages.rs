//! Commands of the selected state: EXPUNGE, SEARCH, FETCH, STORE, COPY, MOVE.

use super::*;

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

    pub(super) async fn search(&mut self, keys: &[SearchKey<'_>], uid: bool) -> Res {
        let (acct, id, _) = self.sel()?;
        let sel = self.selected.as_ref().expect("sel");
        let seq_uids: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
        let max_uid = seq_uids.last().copied().unwrap_or(0);
        let mut criteria = Vec::new();
        let mut modseq_asked = false;
        for k in keys {
            modseq_asked |= mentions_modseq(k);
            criteria.push(convert::criterion(k, &seq_uids, max_uid).map_err(bad)?);
        }
        let mut found = self.call(move |b| b.search(&acct, id, &criteria)).await?;
        found.sort_unstable();
        let sel = self.selected.as_ref().expect("sel");
        let mut nums = Vec::new();
        let mut top_modseq = 0;
        for (i, m) in sel.msgs.iter().enumerate() {
            if found.binary_search(&m.uid).is_ok() {
                nums.push(if uid { m.uid } else { i as u32 + 1 });
                top_modseq = top_modseq.max(m.modseq);
            }
        }
        let mut line = String::from("SEARCH");
        for n in &nums {
            line.push_str(&format!(" {n}"));
        }
        if modseq_asked && !nums.is_empty() {
            line.push_str(&format!(" (MODSEQ {top_modseq})"));
        }
        if modseq_asked {
            self.condstore = true;
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
        let mut changed_since = None;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => {
                    return Ok(Err(bad("VANISHED needs QRESYNC, which is not offered")));
                }
            }
        }
        if changed_since.is_some() {
            self.condstore = true;
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
            if matches!(
                n,
                MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
            ) {
                return Ok(Err(bad("BINARY is not supported")));
            }
        }
        let idx = match self.indexes(set, uid) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        let needs_raw = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Body
                    | MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::BodyStructure
                    | MessageDataItemName::Envelope
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
            )
        });
        let sets_seen = !ro
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
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
        let header_only = names.iter().all(header_is_enough);
        let sel = self.selected.as_ref().expect("sel");
        let wanted: Vec<usize> = idx
            .into_iter()
            .filter(|&i| changed_since.is_none_or(|c| sel.msgs[i].modseq > c))
            .collect();
        let mut start = 0;
        while start < wanted.len() {
            // A batch per backend call: fewer round trips to the blocking pool and
            // one metadata query, with memory bounded by the batch's size.
            let sel = self.selected.as_ref().expect("sel");
            let mut end = start;
            let mut bytes = 0u64;
            while end < wanted.len()
                && end - start < FETCH_BATCH
                && (end == start || header_only || bytes < FETCH_BATCH_BYTES)
            {
                bytes += sel.msgs[wanted[end]].size;
                end += 1;
            }
            let batch: Vec<MessageMeta> = wanted[start..end]
                .iter()
                .map(|&i| sel.msgs[i].clone())
                .collect();
            let first_seq = wanted[start..end].to_vec();
            start = end;
            let raws = if needs_raw {
                let (a, uids) = (
                    acct.clone(),
                    batch.iter().map(|m| m.uid).collect::<Vec<_>>(),
                );
                match self
                    .call(move |b| b.messages(&a, id, &uids, header_only))
                    .await
                {
                    Ok(r) => Some(r),
                    Err(e) => return Ok(Err(e.into())),
                }
            } else {
                None
            };
            let mut next_raw = 0;
            for (m, i) in batch.iter().zip(first_seq) {
                let raw = match &raws {
                    Some(v) => match v.get(next_raw) {
                        Some((u, r)) if *u == m.uid => {
                            next_raw += 1;
                            Some(r.as_slice())
                        }
                        // Expunged meanwhile by another session: nothing to show.
                        _ => continue,
                    },
                    None => None,
                };
                self.out
                    .extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
                for (k, n) in names.iter().enumerate() {
                    if k > 0 {
                        self.out.push(b' ');
                    }
                    fetch_item(&mut self.out, n, m, raw);
                }
                self.out.extend_from_slice(b")\r\n");
                if self.out.len() > 1 << 20 {
                    self.flush(s).await?;
                }
            }
        }
        if uid {
            self.refresh(true).await;
        }
        Ok(Ok(()))
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
            self.condstore = true;
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
        let name = Self::name_of(mailbox)?;
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

fn fetch_item(out: &mut Vec<u8>, n: &MessageDataItemName<'_>, m: &MessageMeta, raw: Option<&[u8]>) {
    let raw = raw.unwrap_or(b"");
    match n {
        MessageDataItemName::Uid => out.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
        MessageDataItemName::Flags => {
            out.extend_from_slice(format!("FLAGS {}", flag_list(m.flags, &m.keywords)).as_bytes())
        }
        MessageDataItemName::ModSeq => {
            out.extend_from_slice(format!("MODSEQ ({})", m.modseq.max(1)).as_bytes())
        }
        MessageDataItemName::Rfc822Size => {
            out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes())
        }
        MessageDataItemName::InternalDate => {
            let d = chrono::DateTime::from_timestamp_millis(m.internal_date_ms)
                .unwrap_or_default()
                .format("%d-%b-%Y %H:%M:%S +0000");
            out.extend_from_slice(format!("INTERNALDATE \"{d}\"").as_bytes())
        }
        MessageDataItemName::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            let e = mime::parse(raw);
            mime::envelope(out, e.header);
        }
        MessageDataItemName::Body => {
            out.extend_from_slice(b"BODY ");
            mime::body_structure(out, &mime::parse(raw), false);
        }
        MessageDataItemName::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            mime::body_structure(out, &mime::parse(raw), true);
        }
        MessageDataItemName::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            wire::literal(out, raw);
        }
        MessageDataItemName::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            wire::literal(out, mime::parse(raw).header);
        }
        MessageDataItemName::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            wire::literal(out, mime::parse(raw).body);
        }
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            let (part, what, spec) = section_of(section.as_ref());
            let data: std::borrow::Cow<'_, [u8]> = if part.is_empty() && what == SectionText::Full {
                // BODY[]: the stored bytes as they are, without parsing them.
                std::borrow::Cow::Borrowed(raw)
            } else {
                std::borrow::Cow::Owned(mime::section(raw, &part, &what).unwrap_or_default())
            };
            out.extend_from_slice(format!("BODY[{spec}]").as_bytes());
            let data = match partial {
                Some((origin, len)) => {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                    let start = (*origin as usize).min(data.len());
                    let end = start.saturating_add(len.get() as usize).min(data.len());
                    std::borrow::Cow::Owned(data[start..end].to_vec())
                }
                None => data,
            };
            out.push(b' ');
            wire::literal(out, &data);
        }
        _ => {}
    }
}

fn part_vec(p: &imap_codec::imap_types::fetch::Part) -> Vec<u32> {
    p.0.as_ref().iter().map(|n| n.get()).collect()
}

fn section_depth(s: &Section<'_>) -> usize {
    match s {
        Section::Part(p) | Section::Mime(p) => p.0.as_ref().len(),
        Section::Header(p) | Section::Text(p) => p.as_ref().map_or(0, |p| p.0.as_ref().len()),
        Section::HeaderFields(p, _) | Section::HeaderFieldsNot(p, _) => {
            p.as_ref().map_or(0, |p| p.0.as_ref().len())
        }
    }
}

/// (part path, what, the section spec as echoed in the response).
fn section_of(s: Option<&Section<'_>>) -> (Vec<u32>, SectionText, String) {
    let dotted = |p: &[u32]| {
        p.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    let prefix = |p: &[u32]| {
        if p.is_empty() {
            String::new()
        } else {
            format!("{}.", dotted(p))
        }
    };
    let names = |v: &Vec1<imap_codec::imap_types::core::AString<'_>>| {
        v.as_ref().iter().map(convert::astring).collect::<Vec<_>>()
    };
    match s {
        None => (vec![], SectionText::Full, String::new()),
        Some(Section::Part(p)) => {
            let p = part_vec(p);
            let spec = dotted(&p);
            (p, SectionText::Full, spec)
        }
        Some(Section::Header(p)) => {
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let spec = format!("{}HEADER", prefix(&p));
            (p, SectionText::Header, spec)
        }
        Some(Section::Text(p)) => {
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let spec = format!("{}TEXT", prefix(&p));
            (p, SectionText::Text, spec)
        }
        Some(Section::Mime(p)) => {
            let p = part_vec(p);
            let spec = format!("{}MIME", prefix(&p));
            (p, SectionText::Mime, spec)
        }
        Some(Section::HeaderFields(p, f)) | Some(Section::HeaderFieldsNot(p, f)) => {
            let not = matches!(s, Some(Section::HeaderFieldsNot(..)));
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let n = names(f);
            let quoted: Vec<String> = n
                .iter()
                .map(|x| {
                    let mut o = Vec::new();
                    wire::mailbox(&mut o, x);
                    String::from_utf8_lossy(&o).into_owned()
                })
                .collect();
            let spec = format!(
                "{}HEADER.FIELDS{} ({})",
                prefix(&p),
                if not { ".NOT" } else { "" },
                quoted.join(" ")
            );
            (p, SectionText::HeaderFields { names: n, not }, spec)
        }
    }
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

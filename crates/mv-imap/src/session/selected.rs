//! SELECT/EXAMINE, reporting other sessions' changes to the selected mailbox, and IDLE.

use super::*;

impl<B: Backend> Session<B> {
    pub(super) async fn select(
        &mut self,
        tag: &str,
        mailbox: &Mailbox<'_>,
        read_only: bool,
        params: &[SelectParameter],
    ) -> Result<Next, Reply> {
        let acct = self.need_auth()?;
        let mut resync = None;
        for p in params {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !self.qresync {
                        return Err(bad("QRESYNC is not enabled (ENABLE QRESYNC first)"));
                    }
                    resync = Some((
                        uid_validity.get(),
                        mod_sequence_value.get(),
                        known_uids.clone(),
                    ));
                }
            }
        }
        if (self.qresync || self.rev2) && self.selected.is_some() {
            // RFC 7162 §3.2.11: where the old mailbox's responses end.
            self.untagged("OK [CLOSED] previous mailbox closed");
        }
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        self.selected = None;
        let name = self.name_of(mailbox)?;
        let entry = self.resolve(&acct, &name).await?;
        let (a, id) = (acct.clone(), entry.id);
        let marker = self.call(move |b| b.change_marker(&a)).await?;
        let a = acct.clone();
        let snap = self.call(move |b| b.snapshot(&a, id)).await?;
        let mut sel = Selected {
            id,
            name: entry.name.clone(),
            read_only,
            uid_validity: snap.uid_validity,
            msgs: snap.messages,
            marker,
            recent: Vec::new(),
            highest_modseq: snap.highest_modseq.max(1),
            keywords: Vec::new(),
        };
        // EXAMINE shows what is recent without taking it from the next SELECT.
        let key = sel.recent_key(&acct);
        let max_uid = sel.msgs.last().map_or(0, |m| m.uid);
        // IMAP4rev2 has no \Recent: such a session claims nothing.
        let floor = if read_only || self.rev2 {
            self.shared.recent_floor(key)
        } else {
            self.shared.claim_recent(key, max_uid)
        };
        if !self.rev2 {
            sel.recent = sel
                .msgs
                .iter()
                .map(|m| m.uid)
                .filter(|u| *u > floor)
                .collect();
        }
        Selected::mark_recent(&sel.recent, &mut sel.msgs);
        sel.new_keywords();
        self.selected = Some(sel);
        self.announce_flags();
        let sel = self.selected.as_ref().expect("just set");
        let mut lines = vec![format!("{} EXISTS", sel.msgs.len())];
        if !self.rev2 {
            lines.push(format!("{} RECENT", sel.recent.len()));
        }
        if let Some(i) = sel
            .msgs
            .iter()
            .position(|m| m.flags & crate::backend::flags::SEEN == 0)
            .filter(|_| !self.rev2)
        {
            lines.push(format!("OK [UNSEEN {}] first unseen", i + 1));
        }
        lines.push(format!("OK [UIDVALIDITY {}] UIDs valid", snap.uid_validity));
        lines.push(format!("OK [UIDNEXT {}] predicted next UID", snap.uid_next));
        lines.push(format!(
            "OK [HIGHESTMODSEQ {}] highest",
            snap.highest_modseq.max(1)
        ));
        for l in lines {
            self.untagged(&l);
        }
        if self.rev2 {
            self.select_list_line(&entry);
        }
        if let Some((v, m, known)) = resync {
            self.qresync_select(v, m, known.as_ref()).await?;
        }
        let (code, verb) = if read_only {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        self.tagged(tag, "OK", Some(code), &format!("{verb} completed"));
        Ok(Next::Continue)
    }

    /// Turns CONDSTORE on for a CONDSTORE-enabling command (FETCH MODSEQ,
    /// SEARCH MODSEQ, STORE UNCHANGEDSINCE): the first one in a selected
    /// mailbox reports its HIGHESTMODSEQ (RFC 7162 §3.1).
    pub(super) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(n) = self.selected.as_ref().map(|s| s.highest_modseq) {
            self.untagged(&format!("OK [HIGHESTMODSEQ {n}] CONDSTORE enabled"));
        }
    }

    /// FLAGS and PERMANENTFLAGS of the selected mailbox: the system flags and
    /// the keywords announced so far.
    pub(super) fn announce_flags(&mut self) {
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        let flags = flag_list(crate::backend::flags::ALL, &sel.keywords);
        let perm = if sel.read_only {
            "()".to_string()
        } else {
            format!("{} \\*)", flags.trim_end_matches(')'))
        };
        self.untagged(&format!("FLAGS {flags}"));
        self.untagged(&format!("OK [PERMANENTFLAGS {perm}] flags"));
    }

    /// Reports other sessions' changes to the selected mailbox.
    pub(super) async fn refresh(&mut self, allow_expunge: bool) {
        if !allow_expunge {
            return;
        }
        let (Some(acct), Some(sel)) = (self.account.clone(), self.selected.as_ref()) else {
            return;
        };
        let (a, id, old_marker) = (acct.clone(), sel.id, sel.marker);
        let Ok(marker) = self.call(move |b| b.change_marker(&a)).await else {
            return;
        };
        if marker == old_marker {
            return;
        }
        let a = acct.clone();
        let snap = match self.call(move |b| b.snapshot(&a, id)).await {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound => {
                self.untagged("BYE the selected mailbox was deleted");
                self.selected = None;
                return;
            }
            Err(_) => return,
        };
        let condstore = self.condstore;
        let sel = self.selected.as_mut().expect("checked");
        let mut lines = Vec::new();
        if snap.uid_validity != sel.uid_validity {
            // The mailbox was replaced under us: the client must resynchronise.
            lines.push("BYE the selected mailbox was replaced".to_string());
            self.selected = None;
            for l in lines {
                self.untagged(&l);
            }
            return;
        }
        let mut snap = snap;
        let known_max = sel.msgs.last().map_or(0, |m| m.uid);
        let snap_max = snap.messages.last().map_or(0, |m| m.uid);
        if snap_max > known_max && !self.rev2 {
            let key = sel.recent_key(&acct);
            let floor = if sel.read_only {
                self.shared.recent_floor(key)
            } else {
                self.shared.claim_recent(key, snap_max)
            };
            let floor = floor.max(known_max);
            sel.recent
                .extend(snap.messages.iter().map(|m| m.uid).filter(|u| *u > floor));
        }
        let new_uids: std::collections::HashSet<u32> =
            snap.messages.iter().map(|m| m.uid).collect();
        sel.recent.retain(|u| new_uids.contains(u));
        Selected::mark_recent(&sel.recent, &mut snap.messages);
        super::context::expunged_from_contexts(
            &mut self.contexts,
            sel.id,
            &sel.msgs,
            |u| !new_uids.contains(&u),
            &mut lines,
        );
        let gone: Vec<(usize, u32)> = sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| !new_uids.contains(&m.uid))
            .map(|(i, m)| (i, m.uid))
            .collect();
        super::qresync::expunge_lines(self.qresync, &gone, &mut lines);
        sel.msgs.retain(|m| new_uids.contains(&m.uid));
        for (i, m) in sel.msgs.iter().enumerate() {
            if let Ok(j) = snap.messages.binary_search_by_key(&m.uid, |x| x.uid) {
                let n = &snap.messages[j];
                if n.flags != m.flags || n.keywords != m.keywords {
                    let ms = if condstore {
                        format!(" MODSEQ ({})", n.modseq)
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "{} FETCH (UID {} FLAGS {}{ms})",
                        i + 1,
                        n.uid,
                        flag_list(n.flags, &n.keywords)
                    ));
                }
            }
        }
        let grew = snap.messages.len() != sel.msgs.len();
        sel.msgs = snap.messages;
        sel.marker = marker;
        sel.highest_modseq = snap.highest_modseq.max(1);
        if grew {
            lines.push(format!("{} EXISTS", sel.msgs.len()));
            if !self.rev2 {
                lines.push(format!("{} RECENT", sel.recent.len()));
            }
        }
        let keywords_grew = sel.new_keywords();
        if keywords_grew {
            self.announce_flags();
        }
        for l in lines {
            self.untagged(&l);
        }
    }

    /// IDLE: other sessions' changes are pushed as they happen. With a change
    /// channel from the backend the session sleeps until the account changes
    /// (or the client speaks) and then looks once; without one it polls every
    /// `idle_poll`.
    pub(super) async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        tag: &str,
    ) -> std::io::Result<Next> {
        // Subscribed before the first look: a change between the two still wakes.
        // (A map lookup: no blocking call needed.)
        let mut changes = self
            .account
            .as_ref()
            .and_then(|acct| self.backend.watch_changes(acct));
        self.out.extend_from_slice(b"+ idling\r\n");
        self.refresh(true).await;
        self.flush(s).await?;
        let poll = self.cfg.idle_poll;
        let autologout = self.cfg.autologout;
        loop {
            let event = {
                let frame = self.next_frame(s, autologout);
                tokio::pin!(frame);
                match changes.as_mut() {
                    Some(rx) => tokio::select! {
                        f = &mut frame => Some(f),
                        changed = rx.changed() => {
                            if changed.is_err() {
                                // The feed went away (the server stopping): poll.
                                changes = None;
                            }
                            None
                        }
                    },
                    None => tokio::time::timeout(poll, &mut frame).await.ok(),
                }
            };
            match event {
                None => {
                    self.idle_look(s).await?;
                    self.flush(s).await?;
                }
                Some(Ok(None)) => return Ok(Next::Logout),
                Some(Err(e)) => return Err(e),
                Some(Ok(Some(Frame::Command(line)))) => {
                    if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                        self.tagged(tag, "OK", None, "IDLE terminated");
                    } else {
                        self.tagged(tag, "BAD", None, "expected DONE");
                    }
                    return Ok(Next::Continue);
                }
                Some(Ok(Some(_))) => {
                    self.tagged(tag, "BAD", None, "expected DONE");
                    return Ok(Next::Continue);
                }
            }
        }
    }
}

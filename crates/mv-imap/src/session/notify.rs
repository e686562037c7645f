//! NOTIFY (RFC 5465): after `NOTIFY SET` the session waits on the account's
//! change channel between commands as IDLE does, and on each change looks
//! once: the selected mailbox is reported as after NOOP (EXISTS, EXPUNGE,
//! FETCH; with `selected-delayed` not while an expunge is pending, and with
//! MessageNew's attributes fetched for the new messages), every other mailbox
//! a group names is compared with its counters at the last look
//! ([`Backend::mailbox_states`], one call) and a change is sent as STATUS,
//! created, deleted and renamed mailboxes as LIST (MailboxName), and the
//! subscription list's changes as LIST with or without `\Subscribed`.
//!
//! Nothing queues between looks (a look compares two states), so a session
//! that does not read costs one look's lines at most; a look that would send
//! more than [`MAX_LINES`] sends `NOTIFICATIONOVERFLOW` instead and ends
//! NOTIFY (§5.8). Changes are reported whoever made them, this session too.

use super::*;
use crate::backend::MailboxState;
use crate::notify::{Events, Filter, Group, Notify, NotifyError};
use std::collections::HashMap;

/// Lines one look may send before it is an overflow.
pub(super) const MAX_LINES: usize = 1000;

/// What a session under NOTIFY SET watches, and what it last reported.
pub(super) struct NotifyState {
    groups: Vec<Group>,
    /// The account's change channel; None when the backend has none (then
    /// changes are seen at the next command only).
    changes: Option<watch::Receiver<u64>>,
    /// Every mailbox's counters at the last look, by id.
    last: HashMap<u32, MailboxState>,
    subscriptions: Vec<String>,
}

impl NotifyState {
    /// The group that decides about a non-selected mailbox: the first whose
    /// filter names it.
    fn group_for(&self, name: &str, subscribed: &[String]) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| names(&g.filter, name, subscribed))
    }

    fn wants_subscriptions(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.filter == Filter::Subscribed || g.events.subscription_change)
    }
}

/// Whether a filter other than the selected ones names the mailbox.
fn names(filter: &Filter, name: &str, subscribed: &[String]) -> bool {
    let below = |n: &String| {
        name == n
            || name
                .strip_prefix(n.as_str())
                .is_some_and(|r| r.starts_with('/'))
    };
    match filter {
        Filter::Selected | Filter::SelectedDelayed => false,
        Filter::Inboxes => name == "INBOX",
        Filter::Personal => true,
        Filter::Subscribed => subscribed.iter().any(|s| s == name),
        Filter::Subtree(list) => list.iter().any(below),
        Filter::Mailboxes(list) => list.iter().any(|n| n == name),
    }
}

/// The STATUS items a group's events call for (RFC 5465 §5.1-5.3).
fn status_items(e: &Events) -> Vec<&'static str> {
    let mut items = Vec::new();
    if e.message_new || e.message_expunge {
        items.extend(["MESSAGES", "UNSEEN"]);
    }
    if e.message_new {
        items.push("UIDNEXT");
    }
    items.push("UIDVALIDITY");
    if e.flag_change {
        items.extend(["UNSEEN", "HIGHESTMODSEQ"]);
    }
    items
}

/// A mailbox name as the session writes it: UTF-8 under IMAP4rev2.
fn put_name(line: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        wire::mailbox(line, name);
    } else {
        wire::mailbox(line, &crate::utf7::encode(name));
    }
}

fn status_line(st: &MailboxState, items: &[&str], utf8: bool) -> Vec<u8> {
    let mut line = b"* STATUS ".to_vec();
    put_name(&mut line, &st.name, utf8);
    let mut seen = Vec::new();
    let parts: Vec<String> = items
        .iter()
        .filter(|i| {
            let new = !seen.contains(*i);
            seen.push(**i);
            new
        })
        .map(|i| match *i {
            "MESSAGES" => format!("MESSAGES {}", st.messages),
            "UNSEEN" => format!("UNSEEN {}", st.unseen),
            "UIDNEXT" => format!("UIDNEXT {}", st.uid_next),
            "UIDVALIDITY" => format!("UIDVALIDITY {}", st.uid_validity),
            _ => format!("HIGHESTMODSEQ {}", st.highest_modseq.max(1)),
        })
        .collect();
    line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    line
}

fn list_line(attrs: &str, name: &str, old: Option<&str>, utf8: bool) -> Vec<u8> {
    let mut line = format!("* LIST ({attrs}) \"/\" ").into_bytes();
    put_name(&mut line, name, utf8);
    if let Some(old) = old {
        // RFC 5465 §5.4 with RFC 5258's OLDNAME extended item.
        line.extend_from_slice(b" (\"OLDNAME\" (");
        put_name(&mut line, old, utf8);
        line.extend_from_slice(b"))");
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// The lines that tell what changed between two looks at the other mailboxes.
fn changes(
    n: &NotifyState,
    now: &[MailboxState],
    subscribed: &[String],
    selected: Option<u32>,
    utf8: bool,
) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    // Both lists decide membership, so an unsubscribed name is still named.
    let mut subs_any: Vec<String> = n.subscriptions.clone();
    subs_any.extend(subscribed.iter().cloned());
    for st in now {
        let old = n.last.get(&st.id);
        let group = n.group_for(&st.name, &subs_any);
        let named = |name: &str| {
            n.group_for(name, &subs_any)
                .is_some_and(|g| g.events.mailbox_name)
        };
        match old {
            None => {
                if named(&st.name) {
                    lines.push(list_line("", &st.name, None, utf8));
                }
            }
            Some(o) if o.name != st.name => {
                if named(&st.name) || named(&o.name) {
                    lines.push(list_line("", &st.name, Some(&o.name), utf8));
                }
            }
            Some(_) => {}
        }
        let (Some(o), Some(g)) = (old, group) else {
            continue;
        };
        if Some(st.id) == selected {
            continue;
        }
        let e = &g.events;
        if !e.messages() {
            continue;
        }
        let replaced = o.uid_validity != st.uid_validity;
        let new = e.message_new && st.uid_next != o.uid_next;
        let expunged = e.message_expunge
            && st.messages < o.messages + (st.uid_next - o.uid_next.min(st.uid_next)) as u64;
        let flags = e.flag_change && st.highest_modseq != o.highest_modseq;
        if replaced || new || expunged || flags {
            lines.push(status_line(st, &status_items(e), utf8));
        }
    }
    for (id, o) in &n.last {
        if !now.iter().any(|s| s.id == *id)
            && n.group_for(&o.name, &subs_any)
                .is_some_and(|g| g.events.mailbox_name)
        {
            lines.push(list_line("\\NonExistent", &o.name, None, utf8));
        }
    }
    let changed = |name: &String| {
        n.group_for(name, &subs_any)
            .is_some_and(|g| g.events.subscription_change)
    };
    for s in subscribed {
        if !n.subscriptions.contains(s) && changed(s) {
            lines.push(list_line("\\Subscribed", s, None, utf8));
        }
    }
    for s in &n.subscriptions {
        if !subscribed.contains(s) && changed(s) {
            lines.push(list_line("", s, None, utf8));
        }
    }
    lines
}

impl<B: Backend> Session<B> {
    /// NOTIFY NONE / NOTIFY SET; answered here (imap-codec does not parse it).
    pub(super) async fn notify_command(&mut self, tag: &str, parsed: Result<Notify, NotifyError>) {
        let Ok(acct) = self.need_auth() else {
            self.tagged(tag, "BAD", None, "NOTIFY: log in first");
            return;
        };
        let (status, groups) = match parsed {
            Err(NotifyError::Bad(t)) => {
                return self.tagged(tag, "BAD", None, &format!("NOTIFY {t}"));
            }
            Err(NotifyError::BadEvent(t)) => {
                let code = format!("BADEVENT ({})", crate::notify::SUPPORTED);
                return self.tagged(tag, "NO", Some(&code), &format!("NOTIFY {t}"));
            }
            Ok(Notify::None) => {
                self.notify = None;
                return self.tagged(tag, "OK", None, "NOTIFY completed");
            }
            Ok(Notify::Set { status, groups }) => (status, groups),
        };
        // Subscribed before the first look: a change between the two still wakes.
        let changes = self.backend.watch_changes(&acct);
        let mut n = NotifyState {
            groups,
            changes,
            last: HashMap::new(),
            subscriptions: Vec::new(),
        };
        let a = acct.clone();
        let states = match self.call(move |b| b.mailbox_states(&a)).await {
            Ok(s) => s,
            Err(e) => return self.tagged(tag, "NO", None, &format!("NOTIFY {e}")),
        };
        if n.wants_subscriptions() {
            let a = acct.clone();
            match self.call(move |b| b.subscriptions(&a)).await {
                Ok(s) => n.subscriptions = s,
                Err(e) => return self.tagged(tag, "NO", None, &format!("NOTIFY {e}")),
            }
        }
        if status {
            let selected = self.selected.as_ref().map(|s| s.id);
            for st in &states {
                if Some(st.id) == selected {
                    continue;
                }
                if let Some(g) = n.group_for(&st.name, &n.subscriptions)
                    && g.events.messages()
                {
                    let line = status_line(st, &status_items(&g.events), self.rev2);
                    self.out.extend_from_slice(&line);
                }
            }
        }
        n.last = states.into_iter().map(|s| (s.id, s)).collect();
        self.notify = Some(n);
        self.tagged(tag, "OK", None, "NOTIFY completed");
    }

    /// The next command, sending notifications while the client is quiet.
    pub(super) async fn next_command_frame<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
    ) -> std::io::Result<Option<Frame>> {
        let wait = self.cfg.autologout;
        loop {
            // Never in the middle of a command the client is still sending.
            let rx = match self.notify.as_mut() {
                Some(n) if self.framer.is_idle() => n.changes.take(),
                _ => None,
            };
            let Some(mut rx) = rx else {
                return self.next_frame(s, wait).await;
            };
            let (event, feed_alive) = {
                let frame = self.next_frame(s, wait);
                tokio::pin!(frame);
                tokio::select! {
                    f = &mut frame => (Some(f), true),
                    c = rx.changed() => (None, c.is_ok()),
                }
            };
            if let Some(n) = self.notify.as_mut()
                && feed_alive
            {
                n.changes = Some(rx);
            }
            match event {
                Some(f) => return f,
                None => {
                    self.notify_look(s).await?;
                    self.flush(s).await?;
                }
            }
        }
    }

    /// After a change in IDLE: the NOTIFY look when NOTIFY is set, else the
    /// selected mailbox's changes.
    pub(super) async fn idle_look<S: AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
    ) -> std::io::Result<()> {
        if self.notify.is_some() {
            self.notify_look(s).await
        } else {
            self.refresh(true).await;
            Ok(())
        }
    }

    /// One look after a change (see the module's text).
    async fn notify_look<S: AsyncWrite + Unpin>(&mut self, s: &mut S) -> std::io::Result<()> {
        let (Some(n), Some(acct)) = (self.notify.as_ref(), self.account.clone()) else {
            return Ok(());
        };
        let sel_group = n.groups.iter().find(|g| g.filter.is_selected()).cloned();
        let wants_subs = n.wants_subscriptions();
        if let Some(g) = sel_group
            && g.events.messages()
            && self.selected.is_some()
        {
            let delayed = g.filter == Filter::SelectedDelayed;
            if !delayed || !self.expunge_pending(&acct).await {
                let before = self.max_uid();
                self.refresh(true).await;
                if let Some(atts) = &g.events.fetch
                    && self.max_uid() > before
                {
                    self.notify_fetch(s, before + 1, atts).await?;
                }
            }
        }
        let a = acct.clone();
        let Ok(states) = self.call(move |b| b.mailbox_states(&a)).await else {
            return Ok(());
        };
        let subs = if wants_subs {
            let a = acct.clone();
            match self.call(move |b| b.subscriptions(&a)).await {
                Ok(s) => s,
                Err(_) => return Ok(()),
            }
        } else {
            Vec::new()
        };
        let selected = self.selected.as_ref().map(|s| s.id);
        let Some(n) = self.notify.as_mut() else {
            return Ok(());
        };
        let lines = changes(n, &states, &subs, selected, self.rev2);
        n.last = states.into_iter().map(|s| (s.id, s)).collect();
        n.subscriptions = subs;
        if lines.len() > MAX_LINES {
            tracing::info!(lines = lines.len(), "NOTIFY overflow: notifications ended");
            self.notify = None;
            self.untagged("OK [NOTIFICATIONOVERFLOW] too many changes at once; NOTIFY is off");
        } else {
            for l in lines {
                self.out.extend_from_slice(&l);
            }
        }
        Ok(())
    }

    fn max_uid(&self) -> u32 {
        self.selected
            .as_ref()
            .and_then(|s| s.msgs.last())
            .map_or(0, |m| m.uid)
    }

    /// Whether a message this session reported has left the selected mailbox
    /// (selected-delayed holds every update back until a command allows it).
    async fn expunge_pending(&self, acct: &Account) -> bool {
        let Some(sel) = self.selected.as_ref() else {
            return false;
        };
        let (a, id) = (acct.clone(), sel.id);
        match self.call(move |b| b.snapshot(&a, id)).await {
            Ok(snap) => sel.msgs.iter().any(|m| {
                snap.messages
                    .binary_search_by_key(&m.uid, |x| x.uid)
                    .is_err()
            }),
            Err(_) => true,
        }
    }

    /// MessageNew's FETCH attributes for the messages from UID `from` on.
    async fn notify_fetch<S: AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        from: u32,
        atts: &[u8],
    ) -> std::io::Result<()> {
        let cmd = [format!("n UID FETCH {from}:* ").as_bytes(), atts, b"\r\n"].concat();
        let Ok((_, c)) = CommandCodec::default().decode(&cmd) else {
            // Checked when NOTIFY SET parsed them.
            return Ok(());
        };
        if let CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            ..
        } = c.body
        {
            self.preview = None;
            let _ = self
                .fetch(s, &sequence_set, &macro_or_item_names, true, &[])
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: u32, name: &str, next: u32, msgs: u64, modseq: u64) -> MailboxState {
        MailboxState {
            id,
            name: name.into(),
            uid_validity: 7,
            uid_next: next,
            messages: msgs,
            unseen: msgs,
            highest_modseq: modseq,
        }
    }

    fn state(groups: &str, last: Vec<MailboxState>, subs: &[&str]) -> NotifyState {
        let Ok(Notify::Set { groups, .. }) =
            crate::notify::parse(format!("t NOTIFY SET {groups}\r\n").as_bytes(), false).unwrap()
        else {
            panic!("{groups}")
        };
        NotifyState {
            groups,
            changes: None,
            last: last.into_iter().map(|s| (s.id, s)).collect(),
            subscriptions: subs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn text(lines: Vec<Vec<u8>>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap().trim_end().to_string())
            .collect()
    }

    #[test]
    fn status_for_new_expunged_and_flagged_messages_only_where_asked() {
        let n = state(
            "(mailboxes a (MessageNew MessageExpunge)) (subtree b (FlagChange))",
            vec![
                st(1, "a", 5, 4, 10),
                st(2, "b/x", 3, 2, 10),
                st(3, "c", 2, 1, 10),
            ],
            &[],
        );
        // Nothing changed: nothing sent.
        let same = [
            st(1, "a", 5, 4, 10),
            st(2, "b/x", 3, 2, 10),
            st(3, "c", 2, 1, 10),
        ];
        assert!(changes(&n, &same, &[], None, false).is_empty());
        let now = [
            st(1, "a", 6, 5, 11),
            st(2, "b/x", 3, 2, 12),
            st(3, "c", 9, 8, 20),
        ];
        assert_eq!(
            text(changes(&n, &now, &[], None, false)),
            [
                "* STATUS a (MESSAGES 5 UNSEEN 5 UIDNEXT 6 UIDVALIDITY 7)",
                "* STATUS b/x (UIDVALIDITY 7 UNSEEN 2 HIGHESTMODSEQ 12)",
            ]
        );
        // An expunge alone; b/x lost a message, but only its flags are watched.
        let now = [
            st(1, "a", 5, 3, 11),
            st(2, "b/x", 3, 1, 10),
            st(3, "c", 2, 1, 10),
        ];
        assert_eq!(
            text(changes(&n, &now, &[], None, false)),
            ["* STATUS a (MESSAGES 3 UNSEEN 3 UIDNEXT 5 UIDVALIDITY 7)"]
        );
        // Never for the selected mailbox.
        let now = [
            st(1, "a", 6, 5, 11),
            st(2, "b/x", 3, 2, 10),
            st(3, "c", 2, 1, 10),
        ];
        assert!(changes(&n, &now, &[], Some(1), false).is_empty());
    }

    #[test]
    fn mailbox_names_and_subscriptions() {
        let n = state(
            "(personal (MailboxName SubscriptionChange))",
            vec![
                st(1, "INBOX", 1, 0, 1),
                st(2, "old", 1, 0, 1),
                st(3, "gone", 1, 0, 1),
            ],
            &["old", "x"],
        );
        let now = [
            st(1, "INBOX", 1, 0, 1),
            st(2, "new", 1, 0, 1),
            st(4, "fresh", 1, 0, 1),
        ];
        assert_eq!(
            text(changes(
                &n,
                &now,
                &["x".into(), "fresh".into()],
                None,
                false
            )),
            [
                "* LIST () \"/\" new (\"OLDNAME\" (old))",
                "* LIST () \"/\" fresh",
                "* LIST (\\NonExistent) \"/\" gone",
                "* LIST (\\Subscribed) \"/\" fresh",
                "* LIST () \"/\" old",
            ]
        );
        // Inboxes names INBOX only; a mailbox no group names is not reported.
        let n = state(
            "(inboxes (MessageNew))",
            vec![st(1, "INBOX", 1, 0, 1), st(2, "a", 1, 0, 1)],
            &[],
        );
        let now = [
            st(1, "INBOX", 2, 1, 2),
            st(2, "a", 2, 1, 2),
            st(5, "b", 1, 0, 1),
        ];
        assert_eq!(
            text(changes(&n, &now, &[], None, false)),
            ["* STATUS INBOX (MESSAGES 1 UNSEEN 1 UIDNEXT 2 UIDVALIDITY 7)"]
        );
    }
}

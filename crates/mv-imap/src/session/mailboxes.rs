//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND.

use super::*;
use crate::backend::flags::DELETED;

impl<B: Backend> Session<B> {
    pub(super) async fn create(&mut self, mailbox: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let name = self.name_of(mailbox)?;
        let name = name.trim_end_matches('/').to_string();
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(no(Some("ALREADYEXISTS"), "INBOX always exists"));
        }
        check_name(&name)?;
        self.call(move |b| b.create(&acct, &name)).await?;
        Ok(())
    }

    pub(super) async fn delete(&mut self, mailbox: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let name = self.name_of(mailbox)?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(no(Some("CANNOT"), "INBOX cannot be deleted"));
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.name.eq_ignore_ascii_case(&name))
        {
            self.selected = None;
        }
        self.call(move |b| b.delete(&acct, &name)).await?;
        Ok(())
    }

    pub(super) async fn rename(&mut self, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let from = self.name_of(from)?;
        let to = self.name_of(to)?;
        check_name(&to)?;
        self.call(move |b| b.rename(&acct, &from, &to)).await?;
        Ok(())
    }

    /// SUBSCRIBE / UNSUBSCRIBE: the subscription list is the account's own
    /// (redo-logged); a name may be subscribed whether or not it exists.
    pub(super) async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Res {
        let acct = self.need_auth()?;
        let name = self.name_of(mailbox)?;
        let name = name.trim_end_matches('/').to_string();
        if on {
            check_name(&name)?;
        }
        self.call(move |b| b.subscribe(&acct, &name, on)).await?;
        Ok(())
    }

    /// LSUB: subscribed names matching the pattern; a name hidden by `%` shows
    /// its matching ancestor as `\Noselect` (RFC 3501 §6.3.9).
    pub(super) async fn lsub(&mut self, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let full = self.pattern(reference, pattern)?;
        if full.is_empty() {
            self.untagged("LSUB (\\Noselect) \"/\" \"\"");
            return Ok(());
        }
        let subs = self.call(move |b| b.subscriptions(&acct)).await?;
        let mut shown: Vec<(String, bool)> = Vec::new();
        for s in &subs {
            if wildcard(&full, s) {
                shown.push((s.clone(), false));
                continue;
            }
            let mut prefix = String::new();
            for level in s.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(level);
                if prefix.len() < s.len() && wildcard(&full, &prefix) && !subs.contains(&prefix) {
                    shown.push((prefix.clone(), true));
                    break;
                }
            }
        }
        shown.sort();
        shown.dedup();
        for (name, noselect) in shown {
            let attrs = if noselect { "\\Noselect" } else { "" };
            let mut line = format!("LSUB ({attrs}) \"/\" ").into_bytes();
            wire::mailbox(&mut line, &self.wire_name(&name));
            self.out.extend_from_slice(b"* ");
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    /// A LIST/LSUB reference and pattern as one UTF-8 pattern ("" for the
    /// delimiter query).
    fn pattern(&self, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>) -> Result<String, Reply> {
        let reference = self.name_of(reference)?;
        let pat_bytes: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        Ok(full_pattern(&reference, pat_bytes, self.rev2))
    }

    pub(super) async fn list(&mut self, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let full = self.pattern(reference, pattern)?;
        if full.is_empty() {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Ok(());
        }
        let list = self.call(move |b| b.mailboxes(&acct)).await?;
        for m in list {
            if !wildcard(&full, &m.name) {
                continue;
            }
            let mut attrs = vec![if m.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(su) = m.special_use {
                attrs.push(su.attribute());
            }
            let mut line = format!("LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
            wire::mailbox(&mut line, &self.wire_name(&m.name));
            self.out.extend_from_slice(b"* ");
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox<'_>,
        items: &[StatusDataItemName],
    ) -> Res {
        let acct = self.need_auth()?;
        let name = self.name_of(mailbox)?;
        let entry = self.resolve(&acct, &name).await?;
        self.status_of(&acct, &entry, items).await
    }

    /// The STATUS response of one mailbox (STATUS, LIST-STATUS).
    pub(super) async fn status_of(
        &mut self,
        acct: &Account,
        entry: &crate::MailboxEntry,
        items: &[StatusDataItemName],
    ) -> Res {
        let acct = acct.clone();
        let id = entry.id;
        let a = acct.clone();
        let snap = self.call(move |b| b.snapshot(&a, id)).await?;
        let floor = self.shared.recent_floor((acct.id, id, snap.uid_validity));
        let mut parts = Vec::new();
        for i in items {
            parts.push(match i {
                StatusDataItemName::Messages => format!("MESSAGES {}", snap.messages.len()),
                StatusDataItemName::Recent => format!(
                    "RECENT {}",
                    snap.messages.iter().filter(|m| m.uid > floor).count()
                ),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", snap.uid_next),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", snap.uid_validity),
                StatusDataItemName::Unseen => format!(
                    "UNSEEN {}",
                    snap.messages
                        .iter()
                        .filter(|m| m.flags & crate::backend::flags::SEEN == 0)
                        .count()
                ),
                StatusDataItemName::Deleted => format!(
                    "DELETED {}",
                    snap.messages
                        .iter()
                        .filter(|m| m.flags & DELETED != 0)
                        .count()
                ),
                StatusDataItemName::DeletedStorage => format!(
                    "DELETED-STORAGE {}",
                    snap.messages
                        .iter()
                        .filter(|m| m.flags & DELETED != 0)
                        .map(|m| m.size)
                        .sum::<u64>()
                ),
                StatusDataItemName::Size => {
                    format!("SIZE {}", snap.messages.iter().map(|m| m.size).sum::<u64>())
                }
                StatusDataItemName::HighestModSeq => {
                    format!("HIGHESTMODSEQ {}", snap.highest_modseq.max(1))
                }
            });
        }
        if let Some(item) = self.appendlimit {
            crate::status_ext::insert(&mut parts, item, self.append_limit());
        }
        let mut line = b"STATUS ".to_vec();
        wire::mailbox(&mut line, &self.wire_name(&entry.name));
        line.extend_from_slice(format!(" ({})", parts.join(" ")).as_bytes());
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(&line);
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    pub(super) async fn append(
        &mut self,
        mailbox: &Mailbox<'_>,
        data: Vec<u8>,
        bits: u32,
        kw: Vec<String>,
        date_ms: Option<i64>,
    ) -> Result<(u32, u32), Reply> {
        let acct = self.need_auth()?;
        let name = self.name_of(mailbox)?;
        let entry = self
            .resolve(&acct, &name)
            .await
            .map_err(|_| no(Some("TRYCREATE"), format!("no mailbox named {name:?}")))?;
        let id = entry.id;
        let data = crate::mime::encode_binary_parts(&data).unwrap_or(data);
        Ok(self
            .call(move |b| b.append(&acct, id, &data, bits, &kw, date_ms))
            .await?)
    }
}

/// Mailbox names the store can hold: no empty levels, no `.` or `..` levels
/// (a name must never read as a path step), no control characters, no LIST
/// wildcards. Refused with NO: the command was well formed, the name is not
/// acceptable here (RFC 3501 §6.3.3).
pub(super) fn check_name(name: &str) -> Res {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.contains('*') || name.contains('%') {
        Some("it contains a LIST wildcard (* or %)")
    } else if name.split('/').any(|p| p == "." || p == "..") {
        Some("it has a . or .. level")
    } else if name.split('/').any(|p| p.is_empty() || p != p.trim()) {
        Some("it has an empty level or a level with leading or trailing spaces")
    } else if name.split('/').any(|p| p.len() > 128) {
        Some("a level is longer than 128 bytes")
    } else {
        None
    };
    match why {
        Some(why) => Err(no(
            Some("CANNOT"),
            format!("invalid mailbox name {name:?}: {why}"),
        )),
        None => Ok(()),
    }
}

/// A reference (UTF-8) and a pattern as sent (modified UTF-7) as one UTF-8
/// pattern; "" for the delimiter query.
pub(super) fn full_pattern(reference: &str, pat_bytes: &[u8], utf8: bool) -> String {
    // A pattern that is not valid modified UTF-7 (or UTF-8 under IMAP4rev2)
    // matches no mailbox (every name is valid), which LIST answers with an
    // empty OK.
    let pat = if utf8 {
        String::from_utf8_lossy(pat_bytes).into_owned()
    } else {
        crate::utf7::decode(pat_bytes)
            .unwrap_or_else(|_| String::from_utf8_lossy(pat_bytes).into_owned())
    };
    if pat.is_empty() {
        return String::new();
    }
    let full = if reference.is_empty() || pat.starts_with('/') {
        pat
    } else if reference.ends_with('/') {
        format!("{reference}{pat}")
    } else {
        format!("{reference}/{pat}")
    };
    convert::normalize_inbox(&full)
}

/// LIST pattern match: `*` matches anything, `%` anything but the delimiter.
/// Case-insensitive only for the INBOX prefix, as names are unique regardless of case.
pub(super) fn wildcard(pattern: &str, name: &str) -> bool {
    pub(super) fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(c) => {
                n.first()
                    .is_some_and(|d| d.to_lowercase().eq(c.to_lowercase()))
                    && go(&p[1..], &n[1..])
            }
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Bounded: patterns come from clients.
    p.len() <= 256 && p.iter().filter(|c| **c == '*' || **c == '%').count() <= 8 && go(&p, &n)
}

impl<B: Backend> Session<B> {
    /// GETQUOTAROOT: the account's one quota root, "", when it has a limit
    /// (RFC 9208 §4.3).
    pub(super) async fn quota_root(&mut self, mailbox: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let name = self.name_of(mailbox)?;
        let entry = self.resolve(&acct, &name).await?;
        let quota = self.call(move |b| b.quota(&acct)).await?;
        let mut line = b"QUOTAROOT ".to_vec();
        wire::mailbox(&mut line, &self.wire_name(&entry.name));
        if quota.is_some() {
            line.extend_from_slice(b" \"\"");
        }
        self.untagged(&String::from_utf8_lossy(&line));
        if let Some(q) = quota {
            self.untagged(&quota_line(q));
        }
        Ok(())
    }

    /// GETQUOTA: only the root "" exists, and only with a limit.
    pub(super) async fn quota(&mut self, root: &[u8]) -> Res {
        let acct = self.need_auth()?;
        let quota = self.call(move |b| b.quota(&acct)).await?;
        match quota {
            Some(q) if root.is_empty() => {
                self.untagged(&quota_line(q));
                Ok(())
            }
            _ => Err(no(Some("NONEXISTENT"), "no such quota root")),
        }
    }
}

/// `QUOTA "" (STORAGE used limit)`, in units of 1024 octets (used rounded up).
fn quota_line(q: crate::Quota) -> String {
    format!(
        "QUOTA \"\" (STORAGE {} {})",
        q.used.div_ceil(1024),
        q.limit / 1024
    )
}

//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, LIST/LSUB, STATUS, APPEND.

use super::*;

impl<B: Backend> Session<B> {
    pub(super) async fn create(&mut self, mailbox: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
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
        let name = Self::name_of(mailbox)?;
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
        let from = Self::name_of(from)?;
        let to = Self::name_of(to)?;
        check_name(&to)?;
        self.call(move |b| b.rename(&acct, &from, &to)).await?;
        Ok(())
    }

    /// Every mailbox is subscribed: the store keeps no subscription list, so
    /// SUBSCRIBE of an existing mailbox succeeds and UNSUBSCRIBE is refused.
    pub(super) async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Res {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
        self.resolve(&acct, &name).await?;
        if on {
            Ok(())
        } else {
            Err(no(
                Some("CANNOT"),
                "every mailbox is subscribed on this server",
            ))
        }
    }

    pub(super) async fn list(
        &mut self,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        verb: &str,
    ) -> Res {
        let acct = self.need_auth()?;
        let reference = Self::name_of(reference)?;
        let pat_bytes: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        let pat = crate::utf7::decode(pat_bytes).map_err(|e| bad(e.to_string()))?;
        if pat.is_empty() {
            self.untagged(&format!("{verb} (\\Noselect) \"/\" \"\""));
            return Ok(());
        }
        let full = if reference.is_empty() || pat.starts_with('/') {
            pat
        } else if reference.ends_with('/') {
            format!("{reference}{pat}")
        } else {
            format!("{reference}/{pat}")
        };
        let full = convert::normalize_inbox(&full);
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
            let mut line = format!("{verb} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            wire::mailbox(&mut line, &crate::utf7::encode(&m.name));
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
        let name = Self::name_of(mailbox)?;
        let entry = self.resolve(&acct, &name).await?;
        let id = entry.id;
        let snap = self.call(move |b| b.snapshot(&acct, id)).await?;
        let mut parts = Vec::new();
        for i in items {
            parts.push(match i {
                StatusDataItemName::Messages => format!("MESSAGES {}", snap.messages.len()),
                StatusDataItemName::Recent => "RECENT 0".into(),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", snap.uid_next),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", snap.uid_validity),
                StatusDataItemName::Unseen => format!(
                    "UNSEEN {}",
                    snap.messages
                        .iter()
                        .filter(|m| m.flags & crate::backend::flags::SEEN == 0)
                        .count()
                ),
                StatusDataItemName::HighestModSeq => {
                    format!("HIGHESTMODSEQ {}", snap.highest_modseq.max(1))
                }
                _ => continue,
            });
        }
        let mut line = b"STATUS ".to_vec();
        wire::mailbox(&mut line, &crate::utf7::encode(&entry.name));
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
        let name = Self::name_of(mailbox)?;
        let entry = self
            .resolve(&acct, &name)
            .await
            .map_err(|_| no(Some("TRYCREATE"), format!("no mailbox named {name:?}")))?;
        let id = entry.id;
        Ok(self
            .call(move |b| b.append(&acct, id, &data, bits, &kw, date_ms))
            .await?)
    }
}

/// Mailbox names the store can hold: no empty levels, no control characters.
pub(super) fn check_name(name: &str) -> Res {
    if name.is_empty()
        || name
            .split('/')
            .any(|p| p.is_empty() || p != p.trim() || p.len() > 128)
        || name.chars().any(char::is_control)
        || name.contains('*')
        || name.contains('%')
    {
        return Err(bad(format!("invalid mailbox name {name:?}")));
    }
    Ok(())
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

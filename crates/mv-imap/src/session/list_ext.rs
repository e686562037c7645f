//! Extended LIST (RFC 5258) with LIST-STATUS (RFC 5819) and the SPECIAL-USE
//! selection (RFC 6154).

use super::mailboxes::{full_pattern, wildcard};
use super::*;
use crate::list_ext::ListExt;
use std::collections::BTreeMap;

/// One name LIST may show: a mailbox, a subscription, or both.
#[derive(Default)]
struct Name {
    mailbox: Option<crate::MailboxEntry>,
    subscribed: bool,
}

impl<B: Backend> Session<B> {
    pub(super) async fn list_ext(&mut self, x: &ListExt) -> Res {
        let acct = self.need_auth()?;
        let reference = if self.rev2 {
            String::from_utf8(x.reference.clone()).map_err(|e| e.to_string())
        } else {
            crate::utf7::decode(&x.reference).map_err(|e| e.to_string())
        }
        .map_err(|e| no(Some("CANNOT"), format!("invalid reference name: {e}")))?;
        let patterns: Vec<String> = x
            .patterns
            .iter()
            .map(|p| full_pattern(&reference, p, self.rev2))
            .collect();
        let status_items = match &x.returns.status {
            None => None,
            Some(items) => {
                // status_of answers APPENDLIMIT itself, imap-codec the rest.
                match crate::status_ext::split_list(items) {
                    Some((rest, item)) => {
                        self.appendlimit = Some(item);
                        Some(status_items(&rest)?)
                    }
                    None => Some(status_items(items)?),
                }
            }
        };
        if patterns.iter().all(String::is_empty) && !x.selection.subscribed {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Ok(());
        }
        let a = acct.clone();
        let mailboxes = self.call(move |b| b.mailboxes(&a)).await?;
        let a = acct.clone();
        let subscriptions = self.call(move |b| b.subscriptions(&a)).await?;
        let mut names: BTreeMap<String, Name> = BTreeMap::new();
        for m in mailboxes {
            let key = m.name.clone();
            names.entry(key).or_default().mailbox = Some(m);
        }
        for s in subscriptions {
            let key = names
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&s))
                .cloned()
                .unwrap_or(s);
            names.entry(key).or_default().subscribed = true;
        }
        let sel = &x.selection;
        let chosen = |n: &Name| {
            (!sel.subscribed || n.subscribed)
                && (!sel.special_use || n.mailbox.as_ref().is_some_and(|m| m.special_use.is_some()))
                && (sel.subscribed || n.mailbox.is_some())
        };
        let matches = |name: &str| patterns.iter().any(|p| !p.is_empty() && wildcard(p, name));
        let mut lines = Vec::new();
        for (name, n) in &names {
            if !matches(name) {
                continue;
            }
            let is_chosen = chosen(n);
            // RECURSIVEMATCH: a name that is not chosen itself is shown when a
            // chosen descendant is not shown on its own (RFC 5258 §3.5).
            let child_info = sel.recursive_match
                && !is_chosen
                && names
                    .range(format!("{name}/")..)
                    .take_while(|(k, _)| k.starts_with(&format!("{name}/")))
                    .any(|(k, d)| chosen(d) && !matches(k));
            if !is_chosen && !child_info {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            match &n.mailbox {
                Some(m) => {
                    attrs.push(if m.has_children {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    });
                    if let Some(su) = m.special_use {
                        attrs.push(su.attribute());
                    }
                }
                // \NonExistent implies \Noselect (RFC 5258 §3.4).
                None => attrs.push("\\NonExistent"),
            }
            if n.subscribed && (sel.subscribed || x.returns.subscribed) {
                attrs.push("\\Subscribed");
            }
            let mut line = format!("LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
            wire::mailbox(&mut line, &self.wire_name(name));
            if child_info {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            lines.push((line, n.mailbox.clone()));
        }
        for (line, mailbox) in lines {
            self.out.extend_from_slice(b"* ");
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
            // LIST-STATUS: a STATUS after the LIST of each selectable mailbox;
            // one that cannot be read is left out (RFC 5819 §2).
            if let (Some(items), Some(m)) = (&status_items, mailbox)
                && let Err(e) = self.status_of(&acct, &m, items).await
            {
                tracing::debug!("LIST-STATUS of {:?} left out: {}", m.name, e.text);
            }
        }
        Ok(())
    }
}

/// The STATUS items of `RETURN (STATUS (...))`, parsed as a STATUS command's.
fn status_items(items: &[u8]) -> Result<Vec<StatusDataItemName>, Reply> {
    let mut cmd = b"x STATUS INBOX ".to_vec();
    cmd.extend_from_slice(items);
    cmd.extend_from_slice(b"\r\n");
    match CommandCodec::default().decode(&cmd) {
        Ok((
            _,
            Command {
                body: CommandBody::Status { item_names, .. },
                ..
            },
        )) => Ok(item_names.into_owned()),
        _ => Err(bad("RETURN STATUS has an unknown status item")),
    }
}

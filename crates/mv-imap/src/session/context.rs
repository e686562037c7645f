//! SEARCH results kept up to date (CONTEXT=SEARCH, RFC 5267 §4):
//! `SEARCH RETURN (UPDATE)` leaves a context behind; after each command the
//! session runs its search again and reports what joined (ADDTO) or left
//! (REMOVEFROM) the result. Expunged messages leave it before their EXPUNGE
//! is sent, so the numbers still name them. A context ends with CANCELUPDATE
//! or when the mailbox is closed.

use super::*;
use crate::esearch::update_response;
use crate::lexer::Lexer;

/// Contexts one session may keep at once (each re-runs its search per command).
pub(super) const MAX_CONTEXTS: usize = 16;

pub(super) struct UpdateContext {
    tag: String,
    uid: bool,
    mailbox: u32,
    /// The SEARCH command without its RETURN options, parsed again per update.
    command: Vec<u8>,
    /// The result as last reported, UIDs ascending.
    uids: Vec<u32>,
}

impl<B: Backend> Session<B> {
    /// Keeps the result of the SEARCH just answered as a context.
    pub(super) fn add_context(&mut self, tag: &str, uid: bool, uids: Vec<u32>) -> Res {
        let (Some(command), Some(sel)) = (self.update_command.take(), self.selected.as_ref())
        else {
            return Ok(());
        };
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(no(
                Some("LIMIT"),
                format!(
                    "at most {MAX_CONTEXTS} SEARCH results are kept up to date; CANCELUPDATE one"
                ),
            ));
        }
        self.contexts.retain(|c| c.tag != tag);
        self.contexts.push(UpdateContext {
            tag: tag.to_string(),
            uid,
            mailbox: sel.id,
            command,
            uids,
        });
        Ok(())
    }

    /// Context updates of the command just run, before its tagged reply if
    /// that is written already, so that they belong to this command.
    pub(super) async fn update_contexts_before(&mut self, tag: &str) {
        if self.contexts.is_empty() {
            return;
        }
        let start = format!("{tag} ");
        let tail_at = self
            .out
            .windows(start.len() + 2)
            .rposition(|w| w.starts_with(b"\r\n") && w[2..] == *start.as_bytes())
            .map(|i| i + 2)
            .or_else(|| self.out.starts_with(start.as_bytes()).then_some(0));
        let tail = tail_at.map(|i| self.out.split_off(i)).unwrap_or_default();
        self.update_contexts().await;
        self.out.extend_from_slice(&tail);
    }

    /// Runs each context's search again and reports the changes.
    pub(super) async fn update_contexts(&mut self) {
        if self.contexts.is_empty() {
            return;
        }
        let Some(sel_id) = self.selected.as_ref().map(|s| s.id) else {
            self.contexts.clear();
            return;
        };
        let mut contexts = std::mem::take(&mut self.contexts);
        contexts.retain(|c| c.mailbox == sel_id);
        for c in &mut contexts {
            let Ok((_, cmd)) = CommandCodec::default().decode(&c.command) else {
                continue;
            };
            let CommandBody::Search { criteria, .. } = cmd.body else {
                continue;
            };
            let Ok(mut found) = self.search_uids(criteria.as_ref()).await else {
                continue;
            };
            let sel = self.selected.as_ref().expect("checked");
            let seq = |u: u32| {
                sel.msgs
                    .binary_search_by_key(&u, |m| m.uid)
                    .ok()
                    .map(|i| i as u32 + 1)
            };
            // Only messages this session has been told about.
            found.retain(|u| seq(*u).is_some());
            let removed: Vec<u32> = c
                .uids
                .iter()
                .filter(|u| found.binary_search(u).is_err())
                .copied()
                .collect();
            let added: Vec<u32> = found
                .iter()
                .filter(|u| c.uids.binary_search(u).is_err())
                .copied()
                .collect();
            let number = |u: u32| if c.uid { Some(u) } else { seq(u) };
            let mut lines = Vec::new();
            if let Some(first) = removed.first() {
                let pos = c.uids.binary_search(first).unwrap_or(0) + 1;
                let nums: Vec<u32> = removed.iter().filter_map(|u| number(*u)).collect();
                lines.push(update_response(&c.tag, c.uid, false, pos, &nums));
            }
            if let Some(first) = added.first() {
                let pos = found.binary_search(first).unwrap_or(0) + 1;
                let nums: Vec<u32> = added.iter().filter_map(|u| number(*u)).collect();
                lines.push(update_response(&c.tag, c.uid, true, pos, &nums));
            }
            c.uids = found;
            for l in lines {
                self.untagged(&l);
            }
        }
        self.contexts = contexts;
    }

    /// `CANCELUPDATE tag...`: None when the command is not one.
    pub(super) fn cancel_update(&mut self, cmd: &[u8]) -> Option<Result<(), Reply>> {
        let mut l = Lexer::new(cmd);
        l.token().ok()?;
        if !l.space() || !l.token().ok()?.is_atom("CANCELUPDATE") {
            return None;
        }
        let mut tags = Vec::new();
        while l.space() {
            match l.token().ok().as_ref().and_then(|t| t.string()) {
                Some(t) => tags.push(String::from_utf8_lossy(t).into_owned()),
                None => return Some(Err(bad("CANCELUPDATE takes the tags of searches"))),
            }
        }
        if tags.is_empty() || !l.at_end() {
            return Some(Err(bad("CANCELUPDATE takes the tags of searches")));
        }
        if self.selected.is_none() {
            return Some(Err(bad("CANCELUPDATE select a mailbox first")));
        }
        self.contexts.retain(|c| !tags.contains(&c.tag));
        Some(Ok(()))
    }
}

/// REMOVEFROM for contexts holding messages about to be reported expunged,
/// numbered as before the EXPUNGEs (`msgs` is the listing before them).
pub(super) fn expunged_from_contexts(
    contexts: &mut [UpdateContext],
    mailbox: u32,
    msgs: &[MessageMeta],
    gone: impl Fn(u32) -> bool,
    lines: &mut Vec<String>,
) {
    for c in contexts.iter_mut().filter(|c| c.mailbox == mailbox) {
        let removed: Vec<u32> = c.uids.iter().copied().filter(|u| gone(*u)).collect();
        let Some(first) = removed.first() else {
            continue;
        };
        let pos = c.uids.binary_search(first).unwrap_or(0) + 1;
        let nums: Vec<u32> = removed
            .iter()
            .filter_map(|u| {
                if c.uid {
                    Some(*u)
                } else {
                    msgs.binary_search_by_key(u, |m| m.uid)
                        .ok()
                        .map(|i| i as u32 + 1)
                }
            })
            .collect();
        lines.push(update_response(&c.tag, c.uid, false, pos, &nums));
        c.uids.retain(|u| !gone(*u));
    }
}

//! SEARCH and SORT results kept up to date (CONTEXT=SEARCH, CONTEXT=SORT,
//! RFC 5267 §4): `SEARCH|SORT RETURN (UPDATE)` leaves a context behind; after
//! each command the session runs its search again and reports what left
//! (REMOVEFROM) or joined (ADDTO) the result, as (position, set) pairs that
//! keep the client's copy in the result's order: mailbox order for SEARCH,
//! the requested order for SORT. Sort keys (header fields, size, arrival)
//! never change, so a SORT result changes only by messages leaving and
//! joining it; a context keeps its members' sort fields, and reads headers
//! only for the messages that join. Expunged messages leave it before their
//! EXPUNGE is sent, so the numbers still name them. A context ends with
//! CANCELUPDATE or when the mailbox is closed.

use super::*;
use crate::esearch::{Placement, placements, update_response};
use crate::lexer::Lexer;
use crate::sort::{self, Fields, SortKey};
use std::collections::HashMap;

/// Contexts one session may keep at once (each re-runs its search per command).
pub(super) const MAX_CONTEXTS: usize = 16;

pub(super) struct UpdateContext {
    tag: String,
    uid: bool,
    mailbox: u32,
    /// The SEARCH command without its RETURN options, parsed again per update.
    command: Vec<u8>,
    /// The result as last reported, as UIDs in result order.
    uids: Vec<u32>,
    /// For a SORT context: its order and its members' sort fields.
    sorted: Option<SortedContext>,
}

pub(super) struct SortedContext {
    order: Vec<(SortKey, bool)>,
    fields: HashMap<u32, Fields>,
}

impl SortedContext {
    pub(super) fn new(order: Vec<(SortKey, bool)>, fields: HashMap<u32, Fields>) -> SortedContext {
        SortedContext { order, fields }
    }
}

impl<B: Backend> Session<B> {
    /// Keeps the result of the SEARCH or SORT just answered as a context
    /// (`uids` in result order).
    pub(super) fn add_context(
        &mut self,
        tag: &str,
        uid: bool,
        uids: Vec<u32>,
        sorted: Option<SortedContext>,
    ) -> Res {
        let (Some(command), Some(sel)) = (self.update_command.take(), self.selected.as_ref())
        else {
            return Ok(());
        };
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(no(
                Some("LIMIT"),
                format!(
                    "at most {MAX_CONTEXTS} SEARCH or SORT results are kept up to date; CANCELUPDATE one"
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
            sorted,
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
            let found = match &cmd.body {
                CommandBody::Search { criteria, .. } => self.search_uids(criteria.as_ref()).await,
                CommandBody::Sort {
                    search_criteria, ..
                } => self.search_uids(search_criteria.as_ref()).await,
                _ => continue,
            };
            let Ok(mut found) = found else {
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
            if let Some(s) = c.sorted.as_mut() {
                s.fields.retain(|u, _| found.binary_search(u).is_ok());
                let joining: Vec<u32> = found
                    .iter()
                    .copied()
                    .filter(|u| !s.fields.contains_key(u))
                    .collect();
                if !joining.is_empty() {
                    let Ok(read) = self.fields_of(&joining).await else {
                        continue;
                    };
                    let sel = self.selected.as_ref().expect("checked");
                    s.fields
                        .extend(read.into_iter().map(|(i, f)| (sel.msgs[i].uid, f)));
                }
                // Ties go to mailbox order: the fields are listed UIDs ascending.
                found.retain(|u| s.fields.contains_key(u));
                let listed: Vec<Fields> = found.iter().map(|u| s.fields[u].clone()).collect();
                found = sort::sort(&listed, &s.order)
                    .into_iter()
                    .map(|k| found[k])
                    .collect();
            }
            let sel = self.selected.as_ref().expect("checked");
            let number = |u: u32| {
                if c.uid {
                    Some(u)
                } else {
                    sel.msgs
                        .binary_search_by_key(&u, |m| m.uid)
                        .ok()
                        .map(|i| i as u32 + 1)
                }
            };
            let (removed, added) = placements(&c.uids, &found);
            let mut lines = Vec::new();
            if !removed.is_empty() {
                let removed = numbered(removed, c.sorted.is_some(), &number);
                lines.push(update_response(&c.tag, c.uid, false, &removed));
            }
            if !added.is_empty() {
                let added = numbered(added, c.sorted.is_some(), &number);
                lines.push(update_response(&c.tag, c.uid, true, &added));
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

/// Placements of UIDs as the numbers the context reports in. A SEARCH
/// context's result is in mailbox order, so its changes go as one set at
/// position 0, which a client places by mailbox order (RFC 5267 §4.3.3,
/// §4.3.4); a SORT context's keep their positions.
fn numbered(
    placed: Vec<Placement>,
    sorted: bool,
    number: &impl Fn(u32) -> Option<u32>,
) -> Vec<Placement> {
    let placed = placed.into_iter().map(|(pos, uids)| {
        (
            pos,
            uids.into_iter().filter_map(number).collect::<Vec<u32>>(),
        )
    });
    if sorted {
        return placed.collect();
    }
    let mut all: Vec<u32> = placed.flat_map(|(_, nums)| nums).collect();
    all.sort_unstable();
    vec![(0, all)]
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
        let kept: Vec<u32> = c.uids.iter().copied().filter(|u| !gone(*u)).collect();
        if kept.len() == c.uids.len() {
            continue;
        }
        let (removed, _) = placements(&c.uids, &kept);
        let number = |u: u32| {
            if c.uid {
                Some(u)
            } else {
                msgs.binary_search_by_key(&u, |m| m.uid)
                    .ok()
                    .map(|i| i as u32 + 1)
            }
        };
        lines.push(update_response(
            &c.tag,
            c.uid,
            false,
            &numbered(removed, c.sorted.is_some(), &number),
        ));
        if let Some(s) = c.sorted.as_mut() {
            s.fields.retain(|u, _| !gone(*u));
        }
        c.uids = kept;
    }
}

//! Which messages of a rebuilt mailbox match a query, reading as few bodies as
//! possible: a search over many restore points would otherwise read and parse
//! every message body once per point.
//!
//! The query's top-level text terms (`from:`, `to:`, `subject:`, `content:`,
//! words) depend on a message's content alone, so their verdict is kept per
//! content (digest and stored header prefix) and reused at every later point. A
//! content not judged yet is narrowed by the search index copy of the full the
//! point was rebuilt from, when that full holds one: only the copy's candidates,
//! and messages the copy does not describe as they are (delivered after it,
//! replaced), are checked by the store's one evaluator. A copy that is missing or
//! unreadable means checking every message (noted). The other terms (folders,
//! flags, dates, ...) are evaluated at each point, on the messages whose text
//! matched.

use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::restore::{PointMailbox, RestoreRun};
use crate::run::Source;
use crate::session::account_dir;
use crate::target::Target;
use mv_index::IndexCopy;
use mv_store::search::Term;
use mv_store::{Item, ItemKind, StoreError};
use std::collections::{HashMap, HashSet};

/// One query evaluated at several points of one account.
pub(super) struct Narrowed {
    /// The top-level terms that depend on a message's content only.
    text: Vec<Term>,
    /// Every other term.
    rest: Vec<Term>,
    /// Whether a content matches `text`, by (digest, stored header prefix).
    verdicts: HashMap<(String, Vec<u8>), bool>,
    /// The index copy of each full (by label) read so far; None: none usable.
    copies: HashMap<String, Option<IndexCopy>>,
}

fn is_text(t: &Term) -> bool {
    matches!(
        t,
        Term::From(_) | Term::To(_) | Term::Subject(_) | Term::Content(_) | Term::Word(_)
    )
}

fn key(i: &Item) -> (String, Vec<u8>) {
    (i.digest.clone().unwrap_or_default(), i.prefix.clone())
}

impl Narrowed {
    pub(super) fn new(terms: &[Term]) -> Narrowed {
        let (text, rest) = terms.iter().cloned().partition(is_text);
        Narrowed {
            text,
            rest,
            verdicts: HashMap::new(),
            copies: HashMap::new(),
        }
    }

    /// The messages (with content) of the rebuilt mailbox matching the query. A
    /// folder the query names that did not exist at that point matches nothing
    /// there.
    pub(super) fn matching(
        &mut self,
        run: &mut RestoreRun,
        source: &Source,
        target: &dyn Target,
        pm: &PointMailbox,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Item>> {
        let mbox = source.store.mailbox(pm.mailbox);
        let all: Vec<Item> = mbox
            .items(None, Some(ItemKind::Message))?
            .into_iter()
            .filter(|i| i.digest.is_some())
            .collect();
        let mut failed = None;
        let mut text = |run: &mut RestoreRun, i: &Item| match super::body(
            run, source, target, pm.mailbox, i,
        ) {
            Ok(b) => mv_store::mime::message_text(&[&i.prefix[..], &b[..]].concat()),
            Err(e) => {
                failed.get_or_insert(e);
                mv_store::mime::MessageText::default()
            }
        };
        let matched_text = if self.text.is_empty() {
            all
        } else {
            let mut known = Vec::new();
            let mut unknown = Vec::new();
            for i in all {
                match self.verdicts.get(&key(&i)) {
                    Some(true) => known.push(i),
                    Some(false) => {}
                    None => unknown.push(i),
                }
            }
            if !unknown.is_empty() {
                let copy = copy_for(
                    &mut self.copies,
                    run,
                    target,
                    &pm.full_label,
                    &pm.zimbra_id,
                    notes,
                );
                // The ids to check: the copy's candidates and what it does not
                // describe as it is.
                let narrowing = copy.map(|c| {
                    c.candidates(&self.text).map(|ids| {
                        ids.map(|ids| {
                            unknown
                                .iter()
                                .filter(|i| ids.contains(&i.id) || !c.describes(i))
                                .map(|i| i.id)
                                .collect::<HashSet<u32>>()
                        })
                    })
                });
                let examine: Vec<Item> = match narrowing {
                    Some(Ok(Some(ids))) => {
                        let (examine, skip): (Vec<Item>, Vec<Item>) =
                            unknown.into_iter().partition(|i| ids.contains(&i.id));
                        for i in &skip {
                            self.verdicts.insert(key(i), false);
                        }
                        examine
                    }
                    Some(Err(e)) => {
                        notes.push(format!(
                            "{}: search index copy unusable, every message read: {e}",
                            pm.full_label
                        ));
                        self.copies.insert(pm.full_label.clone(), None);
                        unknown
                    }
                    _ => unknown,
                };
                let keys: Vec<(String, Vec<u8>)> = examine.iter().map(key).collect();
                let found = evaluate(&mbox, &self.text, examine, &mut |i| text(run, i))?;
                let hit: HashSet<(String, Vec<u8>)> = found.iter().map(key).collect();
                for k in keys {
                    let m = hit.contains(&k);
                    self.verdicts.insert(k, m);
                }
                known.extend(found);
            }
            known
        };
        let found = evaluate(&mbox, &self.rest, matched_text, &mut |i| text(run, i))?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(found)
    }
}

/// The index copy of the full `label` for the account, read on first use.
fn copy_for<'a>(
    copies: &'a mut HashMap<String, Option<IndexCopy>>,
    run: &mut RestoreRun,
    target: &dyn Target,
    label: &str,
    zimbra_id: &str,
    notes: &mut Vec<String>,
) -> Option<&'a IndexCopy> {
    if !copies.contains_key(label) {
        let copy = match read_copy(run, target, label, zimbra_id) {
            Ok(Some(c)) => Some(c),
            Ok(None) => {
                notes.push(format!("{label}: no search index copy, every message read"));
                None
            }
            Err(e) => {
                notes.push(format!(
                    "{label}: search index copy unusable, every message read: {e}"
                ));
                None
            }
        };
        copies.insert(label.to_string(), copy);
    }
    copies.get(label).and_then(Option::as_ref)
}

/// Those of `items` matching `terms` (all of them when there are none).
fn evaluate(
    mbox: &mv_store::Mailbox,
    terms: &[Term],
    items: Vec<Item>,
    text: &mut dyn FnMut(&Item) -> mv_store::mime::MessageText,
) -> Result<Vec<Item>> {
    if terms.is_empty() || items.is_empty() {
        return Ok(items);
    }
    match mbox.search_among(terms, items, text) {
        Ok(items) => Ok(items),
        Err(StoreError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The account's search index copy in the full `label` (`<account>/index/`:
/// `meta.json` and the segment files in `segments.zip`); None when the full
/// holds none (`--exclude SearchIndex`, no index yet).
fn read_copy(
    run: &mut RestoreRun,
    target: &dyn Target,
    label: &str,
    zimbra_id: &str,
) -> Result<Option<IndexCopy>> {
    let label: Label = label
        .parse()
        .map_err(|_| BackupError::Invalid(format!("{label}: not a backup label")))?;
    let catalog = run.catalog(target)?;
    let Some(full) = catalog.get(&label).and_then(|e| e.session()) else {
        return Ok(None);
    };
    let dir = format!("{}/index", account_dir(zimbra_id));
    let meta_rel = format!("{dir}/meta.json");
    let zip_rel = format!("{dir}/{}", crate::index_files::SEGMENTS_ZIP);
    if full.file(&meta_rel).is_none() || full.file(&zip_rel).is_none() {
        return Ok(None);
    }
    let meta = target.get(&full.object_path(&meta_rel))?;
    let zip = target.get(&full.object_path(&zip_rel))?;
    let mut files = crate::index_files::unzip(&zip)
        .map_err(|e| BackupError::Invalid(format!("{zip_rel}: {e}")))?;
    files.push(("meta.json".to_string(), meta));
    IndexCopy::open(&format!("{label}/{dir}"), files)
        .map(Some)
        .map_err(|e| BackupError::Invalid(e.to_string()))
}

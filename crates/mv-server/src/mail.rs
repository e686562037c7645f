//! Mailbox requests (zmmailbox): search, folders, messages, tags.

use crate::response::{Ack, Deleted, ItemRef, MessageData, Moved, Response};
use crate::{Request, Service, ServiceError};
use base64::Engine;
use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange};
use mv_types::{ItemId, MailboxId, UtcMillis};

/// Zimbra's flag letters: u (unread), f (flagged), r (replied), d (draft), x (deleted).
fn parse_flag_letters(s: &str) -> Result<(u32, bool), ServiceError> {
    let mut bits = 0;
    let mut unread = false;
    for c in s.chars() {
        match c {
            'u' => unread = true,
            'f' => bits |= flags::FLAGGED,
            'r' => bits |= flags::ANSWERED,
            'd' => bits |= flags::DRAFT,
            'x' => bits |= flags::DELETED,
            's' => bits |= flags::SEEN,
            other => {
                return Err(ServiceError::BadRequest(format!(
                    "unknown flag {other:?}: use u (unread), f (flagged), r (replied), d (draft), x (deleted)"
                )));
            }
        }
    }
    Ok((bits, unread))
}

pub fn flag_letters(bits: u32) -> String {
    let mut s = String::new();
    if bits & flags::SEEN == 0 {
        s.push('u');
    }
    if bits & flags::FLAGGED != 0 {
        s.push('f');
    }
    if bits & flags::ANSWERED != 0 {
        s.push('r');
    }
    if bits & flags::DRAFT != 0 {
        s.push('d');
    }
    if bits & flags::DELETED != 0 {
        s.push('x');
    }
    s
}

impl Service {
    pub(crate) fn folder_id(&self, mbox: MailboxId, path: &str) -> Result<u32, ServiceError> {
        if let Ok(id) = path.parse::<u32>() {
            return Ok(id);
        }
        self.store
            .mailbox(mbox)
            .folder_by_path(path)?
            .map(|f| f.id)
            .ok_or_else(|| ServiceError::NotFound(format!("no such folder: {path}")))
    }

    pub(crate) fn tag_ids(
        &self,
        mbox: MailboxId,
        names: &[String],
    ) -> Result<Vec<u32>, ServiceError> {
        let tags = self.store.mailbox(mbox).tags()?;
        names
            .iter()
            .map(|n| {
                tags.iter()
                    .find(|t| t.name.eq_ignore_ascii_case(n) || t.id.to_string() == *n)
                    .map(|t| t.id)
                    .ok_or_else(|| ServiceError::NotFound(format!("no such tag: {n}")))
            })
            .collect()
    }

    /// Answers the mailbox requests; anything else goes on to
    /// [`Service::execute_pim`].
    pub(crate) fn execute_mail(&self, req: Request) -> Result<Response, ServiceError> {
        Ok(match req {
            Request::Search {
                account,
                query,
                limit,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let mut items = self.indexes.search(&self.store, mbox, &query)?;
                items.truncate(limit.unwrap_or(usize::MAX));
                items.into()
            }
            Request::GetAllFolders { account } => {
                let mbox = self.mailbox_of(&account)?;
                self.store.mailbox(mbox).folders()?.into()
            }
            Request::CreateFolder {
                account,
                path,
                view,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.store.create_folder_path(
                    mbox,
                    &path,
                    view.as_deref().unwrap_or("message"),
                )?;
                ItemRef { id }.into()
            }
            Request::RenameFolder {
                account,
                path,
                new_path,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.folder_id(mbox, &path)?;
                let (parent_path, name) = match new_path.trim_end_matches('/').rsplit_once('/') {
                    Some((p, n)) => (
                        if p.is_empty() {
                            "/".to_string()
                        } else {
                            p.to_string()
                        },
                        n.to_string(),
                    ),
                    None => ("/".to_string(), new_path.clone()),
                };
                let parent = if parent_path == "/" {
                    folders::ROOT
                } else {
                    self.folder_id(mbox, &parent_path)?
                };
                self.store.rename_folder(mbox, id, &name, parent)?;
                ItemRef { id }.into()
            }
            Request::DeleteFolder { account, path } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.folder_id(mbox, &path)?;
                self.store.delete_folder(mbox, id)?;
                Ack::OK.into()
            }
            Request::EmptyFolder { account, path } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.folder_id(mbox, &path)?;
                Deleted {
                    deleted: self.store.empty_folder(mbox, id)? as u64,
                }
                .into()
            }
            Request::AddMessage {
                account,
                folder,
                data,
                flags: letters,
                tags,
                received_ms,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(|e| {
                        ServiceError::BadRequest(format!("message data is not base64: {e}"))
                    })?;
                let (mut bits, unread) = parse_flag_letters(&letters)?;
                if !unread {
                    bits |= flags::SEEN;
                }
                let options = DeliverOptions {
                    folder_id: self.folder_id(mbox, &folder)?,
                    flags: bits,
                    tags: self.tag_ids(mbox, &tags)?,
                    received: received_ms.map(UtcMillis),
                };
                let id = self.store.add_message(mbox, &raw, &options)?;
                ItemRef { id: id.0 }.into()
            }
            Request::GetMessage { account, id } => {
                let mbox = self.mailbox_of(&account)?;
                let item = self
                    .store
                    .mailbox(mbox)
                    .item(ItemId(id))?
                    .ok_or_else(|| ServiceError::NotFound(format!("no such message: {id}")))?;
                let raw = self.store.read_blob(mbox, &item)?;
                MessageData {
                    item,
                    data: base64::engine::general_purpose::STANDARD.encode(raw),
                }
                .into()
            }
            Request::DeleteMessages { account, ids } => {
                let mbox = self.mailbox_of(&account)?;
                let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
                self.store.delete_items(mbox, &ids)?;
                Deleted {
                    deleted: ids.len() as u64,
                }
                .into()
            }
            Request::RecoverDeleted {
                account,
                query,
                list,
            } => self
                .recover_deleted(&account, query.as_deref(), list)?
                .into(),
            Request::MoveMessages {
                account,
                ids,
                folder,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let to_folder = self.folder_id(mbox, &folder)?;
                let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
                self.store.move_items(mbox, &ids, to_folder)?;
                Moved {
                    moved: ids.len() as u64,
                }
                .into()
            }
            Request::FlagMessages {
                account,
                ids,
                flags: letters,
                add,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let (bits, unread) = parse_flag_letters(&letters)?;
                let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
                // "unread" is the absence of \Seen.
                let (set, clear) = match (add, unread) {
                    (true, true) => (bits, flags::SEEN),
                    (true, false) => (bits, 0),
                    (false, true) => (flags::SEEN, bits),
                    (false, false) => (0, bits),
                };
                if set != 0 {
                    self.store.set_flags(mbox, &ids, FlagChange::Add(set))?;
                }
                if clear != 0 {
                    self.store
                        .set_flags(mbox, &ids, FlagChange::Remove(clear))?;
                }
                Ack::OK.into()
            }
            Request::CreateTag {
                account,
                name,
                color,
            } => {
                let mbox = self.mailbox_of(&account)?;
                ItemRef {
                    id: self.store.create_tag(mbox, &name, color)?,
                }
                .into()
            }
            Request::GetAllTags { account } => {
                let mbox = self.mailbox_of(&account)?;
                self.store.mailbox(mbox).tags()?.into()
            }
            other => self.execute_pim(other)?,
        })
    }
}

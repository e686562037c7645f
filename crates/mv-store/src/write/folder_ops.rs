//! Folder mutations: creating, renaming, deleting and emptying folders, and
//! the IMAP subscription list.

use super::*;

/// Folder ids of the subtree rooted at `id` (itself first).
fn subtree(g: &MailboxGuard<'_>, id: u32) -> Result<Vec<u32>, StoreError> {
    let all: Vec<(u32, u32)> = {
        let mut st = q(g, g.conn().prepare("SELECT id, parent_id FROM folder"))?;
        q(
            g,
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect()),
        )?
    };
    let mut out = vec![id];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(
            all.iter()
                .filter(|(_, p)| *p == cur && cur != 0)
                .map(|(c, _)| *c)
                .filter(|c| *c != cur),
        );
        i += 1;
    }
    Ok(out)
}

fn items_in(g: &MailboxGuard<'_>, folder_ids: &[u32]) -> Result<Vec<u32>, StoreError> {
    let mut out = Vec::new();
    let mut st = q(
        g,
        g.conn()
            .prepare("SELECT id FROM item WHERE folder_id = ?1 ORDER BY id"),
    )?;
    for f in folder_ids {
        let ids: Vec<u32> = q(
            g,
            st.query_map([f], |r| r.get(0))
                .and_then(|rows| rows.collect()),
        )?;
        out.extend(ids);
    }
    Ok(out)
}

impl Store {
    pub fn create_folder(
        &self,
        id: MailboxId,
        parent_id: u32,
        name: &str,
        view: &str,
    ) -> Result<u32, StoreError> {
        validate_name("folder", name)?;
        if !matches!(
            view,
            "message" | "contact" | "appointment" | "task" | "document"
        ) {
            return Err(StoreError::Invalid(format!(
                "unknown folder view {view:?}: use message, contact, appointment, task or document"
            )));
        }
        self.with_mailbox(id, |g| {
            folder_row(g, parent_id)?;
            let exists = q(
                g,
                g.conn()
                    .query_row(
                        "SELECT id FROM folder WHERE parent_id = ?1 AND name = ?2 COLLATE NOCASE",
                        params![parent_id, name],
                        |r| r.get::<_, u32>(0),
                    )
                    .optional(),
            )?;
            if exists.is_some() {
                return Err(StoreError::Exists(format!(
                    "a folder named {name:?} already exists there"
                )));
            }
            let fid = next_item_id(g)?;
            let uid_validity = next_uid_validity(g)?;
            let op = Op::CreateFolder(ops::CreateFolder {
                id: fid,
                parent_id,
                name: name.to_string(),
                uid_validity,
                view: view.to_string(),
            });
            Ok((vec![op], fid))
        })
    }

    /// Creates every missing folder of a path (`/a/b/c`) and returns the last id.
    pub fn create_folder_path(
        &self,
        id: MailboxId,
        path: &str,
        view: &str,
    ) -> Result<u32, StoreError> {
        let norm = normalize_path(path);
        let mut parent = folders::ROOT;
        let mut so_far = String::new();
        for part in norm.split('/').filter(|p| !p.is_empty()) {
            so_far.push('/');
            so_far.push_str(part);
            parent = match self.mailbox(id).folder_by_path(&so_far)? {
                Some(f) => f.id,
                None => self.create_folder(id, parent, part, view)?,
            };
        }
        Ok(parent)
    }

    /// Renames and/or moves a folder. System folders cannot be renamed or moved.
    pub fn rename_folder(
        &self,
        id: MailboxId,
        folder: u32,
        new_name: &str,
        new_parent: u32,
    ) -> Result<(), StoreError> {
        validate_name("folder", new_name)?;
        self.with_mailbox(id, |g| {
            if folder < folders::FIRST_USER_ID {
                return Err(StoreError::Invalid(format!("folder {folder} is a system folder and cannot be renamed or moved")));
            }
            folder_row(g, folder)?;
            folder_row(g, new_parent)?;
            if subtree(g, folder)?.contains(&new_parent) {
                return Err(StoreError::Invalid("a folder cannot be moved into itself or its subfolders".into()));
            }
            let clash = q(
                g,
                g.conn()
                    .query_row(
                        "SELECT id FROM folder WHERE parent_id = ?1 AND name = ?2 COLLATE NOCASE AND id != ?3",
                        params![new_parent, new_name, folder],
                        |r| r.get::<_, u32>(0),
                    )
                    .optional(),
            )?;
            if clash.is_some() {
                return Err(StoreError::Exists(format!("a folder named {new_name:?} already exists there")));
            }
            let op = Op::RenameFolder(ops::RenameFolder {
                id: folder,
                new_name: new_name.to_string(),
                new_parent_id: new_parent,
            });
            Ok((vec![op], ()))
        })
    }

    /// Deletes a user folder with its subfolders and everything in them.
    pub fn delete_folder(&self, id: MailboxId, folder: u32) -> Result<(), StoreError> {
        self.with_mailbox(id, |g| {
            if folder < folders::FIRST_USER_ID {
                return Err(StoreError::Invalid(format!(
                    "folder {folder} is a system folder and cannot be deleted"
                )));
            }
            folder_row(g, folder)?;
            let mut folder_ids = subtree(g, folder)?;
            let item_ids = items_in(g, &folder_ids)?;
            // Children before parents, so a replay never sees an orphan.
            folder_ids.reverse();
            Ok((
                vec![Op::DeleteFolder(ops::DeleteFolder {
                    folder_ids,
                    item_ids,
                })],
                (),
            ))
        })
    }

    /// Empties a folder (`zmmailbox ef`): its items go and, as for Trash in the
    /// original, its subfolders with their contents.
    pub fn empty_folder(&self, id: MailboxId, folder: u32) -> Result<usize, StoreError> {
        self.with_mailbox(id, |g| {
            folder_row(g, folder)?;
            let ids = items_in(g, &[folder])?;
            let mut ops = Vec::new();
            let count = ids.len();
            ops.push(Op::DeleteItems(ops::DeleteItems {
                kind: DeleteKind::EmptyFolder,
                folder_id: folder,
                ids,
                keep_until_ms: self.keep_until(id),
            }));
            let children: Vec<u32> = subtree(g, folder)?.into_iter().skip(1).collect();
            if !children.is_empty() {
                let direct: Vec<u32> = {
                    let mut st = q(
                        g,
                        g.conn()
                            .prepare("SELECT id FROM folder WHERE parent_id = ?1"),
                    )?;
                    q(
                        g,
                        st.query_map([folder], |r| r.get(0))
                            .and_then(|rows| rows.collect()),
                    )?
                };
                // System folders (Inbox, Trash, ...) are never deleted, even when
                // their parent (the root) is emptied.
                for child in direct.into_iter().filter(|c| *c >= folders::FIRST_USER_ID) {
                    let mut folder_ids = subtree(g, child)?;
                    let item_ids = items_in(g, &folder_ids)?;
                    folder_ids.reverse();
                    ops.push(Op::DeleteFolder(ops::DeleteFolder {
                        folder_ids,
                        item_ids,
                    }));
                }
            }
            Ok((ops, count))
        })
    }

    pub fn create_tag(&self, id: MailboxId, name: &str, color: u32) -> Result<u32, StoreError> {
        validate_name("tag", name)?;
        self.with_mailbox(id, |g| {
            let exists = q(
                g,
                g.conn()
                    .query_row(
                        "SELECT id FROM tag WHERE name = ?1 COLLATE NOCASE",
                        [name],
                        |r| r.get::<_, u32>(0),
                    )
                    .optional(),
            )?;
            if exists.is_some() {
                return Err(StoreError::Exists(format!(
                    "a tag named {name:?} already exists"
                )));
            }
            let tid = next_item_id(g)?;
            Ok((
                vec![Op::CreateTag(ops::CreateTag {
                    id: tid,
                    name: name.to_string(),
                    color,
                })],
                tid,
            ))
        })
    }

    /// Adds a name to the IMAP subscription list or removes it; the name need
    /// not be a folder (RFC 3501 §6.3.6). Removing a name that is not there is
    /// `NotFound`; adding one that is there changes nothing.
    pub fn set_subscription(
        &self,
        id: MailboxId,
        name: &str,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "invalid subscription name {name:?}: 1-1024 bytes without control characters"
            )));
        }
        self.with_mailbox(id, |g| {
            let present = q(
                g,
                g.conn()
                    .query_row("SELECT 1 FROM subscription WHERE name = ?1", [name], |_| {
                        Ok(())
                    })
                    .optional(),
            )?
            .is_some();
            if present == subscribed {
                if subscribed {
                    return Ok((vec![], ()));
                }
                return Err(StoreError::NotFound(format!("{name:?} is not subscribed")));
            }
            Ok((
                vec![Op::SetSubscription(ops::SetSubscription {
                    name: name.to_string(),
                    subscribed,
                })],
                (),
            ))
        })
    }
}

/// UIDVALIDITY for a new folder: above every value the mailbox ever gave out,
/// so a name deleted and created again (even within one second, or after a
/// restart) never comes back with its old UIDVALIDITY and the new folder's
/// UIDs never pass for the old one's (RFC 3501 §2.3.1.1). The root folder,
/// never an IMAP mailbox, holds the highest value given out (kept by the apply
/// path, so it replays); folders made before it did are looked at too.
fn next_uid_validity(g: &MailboxGuard<'_>) -> Result<u32, StoreError> {
    let highest: u32 = q(
        g,
        g.conn().query_row(
            "SELECT COALESCE(MAX(uid_validity), 0) FROM folder",
            [],
            |r| r.get(0),
        ),
    )?;
    Ok(uid_validity_now().max(highest.saturating_add(1)))
}

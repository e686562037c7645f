//! The store's mutations of contacts and calendars: a vCard or an iCalendar
//! file becomes items through the same plan-then-commit path as mail.

use super::*;

impl Store {
    /// Creates a contact from a vCard, or replaces contact `replace`.
    pub fn put_contact(
        &self,
        id: MailboxId,
        folder: u32,
        vcard: &str,
        replace: Option<u32>,
    ) -> Result<u32, StoreError> {
        if !vcard.to_ascii_uppercase().contains("BEGIN:VCARD") {
            return Err(pim::PimError::NotVcard.into());
        }
        self.with_mailbox(id, |g| {
            let (_, view, _) = folder_row(g, folder)?;
            if view != "contact" {
                return Err(StoreError::Invalid(format!(
                    "folder {folder} holds {view}s, not contacts"
                )));
            }
            let cid = match replace {
                Some(r) => {
                    let (f, kind, _) = item_exists(g, r)?;
                    if kind != ItemKind::Contact || f != folder {
                        return Err(StoreError::Invalid(format!(
                            "item {r} is not a contact in folder {folder}"
                        )));
                    }
                    r
                }
                None => next_item_id(g)?,
            };
            let op = Op::PutContact(ops::PutContact {
                id: cid,
                folder_id: folder,
                vcard: vcard.to_string(),
                name: pim::vcard_display_name(vcard),
            });
            Ok((vec![op], cid))
        })
    }

    /// Imports an iCalendar text into a calendar folder. An event whose UID already
    /// exists in the mailbox replaces the stored one when the import is newer by
    /// SEQUENCE, then DTSTAMP; otherwise the stored one is kept.
    pub fn import_calendar(
        &self,
        id: MailboxId,
        folder: u32,
        ics: &str,
    ) -> Result<CalendarImport, StoreError> {
        let events = pim::split_calendar(ics)?;
        self.with_mailbox(id, |g| {
            let (_, view, _) = folder_row(g, folder)?;
            if view != "appointment" && view != "task" {
                return Err(StoreError::Invalid(format!(
                    "folder {folder} holds {view}s, not appointments"
                )));
            }
            let mut next = next_item_id(g)?;
            let mut ops = Vec::new();
            let mut result = CalendarImport::default();
            for ev in events {
                let existing: Option<(u32, Option<String>)> = q(
                    g,
                    g.conn()
                        .query_row(
                            "SELECT id, content FROM item WHERE cal_uid = ?1 AND type = ?2",
                            params![ev.uid, ItemKind::Appointment],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional(),
                )?;
                // A series is merged instance by instance: an import of one
                // changed occurrence replaces that occurrence only.
                let (replaces, ev) = match existing {
                    Some((old, content)) => {
                        match pim::merge_series(content.as_deref().unwrap_or(""), &ev) {
                            Ok(Some(merged)) => {
                                result.replaced.push(old);
                                (old, merged)
                            }
                            Ok(None) => {
                                result.kept_existing.push(ev.uid.clone());
                                continue;
                            }
                            // Stored text that is not a calendar: the import replaces it.
                            Err(_) => {
                                result.replaced.push(old);
                                (old, ev)
                            }
                        }
                    }
                    None => (0, ev),
                };
                let new_id = next;
                next += 1;
                result.created.push(new_id);
                ops.push(Op::SetCalendarItem(ops::SetCalendarItem {
                    id: new_id,
                    folder_id: folder,
                    uid: ev.uid,
                    ics: ev.ics,
                    sequence: ev.sequence,
                    dtstamp_ms: ev.dtstamp.0,
                    summary: ev.summary,
                    replaces,
                }));
            }
            Ok((ops, result))
        })
    }
}

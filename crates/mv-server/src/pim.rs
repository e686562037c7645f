//! Calendars and contacts of a mailbox (the merge of a folder's events into
//! one VCALENDAR lives in `mv_store::pim`).

use crate::response::{CalendarText, ContactsImported, ContactsText, Response};
use crate::{Request, Service, ServiceError};
use mv_types::MailboxId;

impl Service {
    /// The appointments of a folder as one VCALENDAR.
    pub fn export_calendar(&self, mbox: MailboxId, folder: &str) -> Result<String, ServiceError> {
        let f = self.folder_id(mbox, folder)?;
        let items = self
            .store
            .mailbox(mbox)
            .items(Some(f), Some(mv_store::ItemKind::Appointment))?;
        Ok(mv_store::pim::merge_calendars(
            items.iter().filter_map(|i| i.content.as_deref()),
        ))
    }

    /// The contacts of a folder, one vCard after another.
    pub fn export_contacts(&self, mbox: MailboxId, folder: &str) -> Result<String, ServiceError> {
        let f = self.folder_id(mbox, folder)?;
        let items = self
            .store
            .mailbox(mbox)
            .items(Some(f), Some(mv_store::ItemKind::Contact))?;
        Ok(items.iter().filter_map(|i| i.content.clone()).collect())
    }

    /// Imports the events of an iCalendar text into a folder.
    pub fn import_calendar(
        &self,
        mbox: MailboxId,
        folder: &str,
        ics: &str,
    ) -> Result<mv_store::CalendarImport, ServiceError> {
        let f = self.folder_id(mbox, folder)?;
        Ok(self.store.import_calendar(mbox, f, ics)?)
    }

    /// Imports the vCards of a text into a folder; the new items' ids.
    pub fn import_contacts(
        &self,
        mbox: MailboxId,
        folder: &str,
        vcf: &str,
    ) -> Result<Vec<u32>, ServiceError> {
        let f = self.folder_id(mbox, folder)?;
        let cards = mv_store::pim::split_vcards(vcf);
        if cards.is_empty() {
            return Err(ServiceError::BadRequest(
                "no BEGIN:VCARD ... END:VCARD found in the input".into(),
            ));
        }
        let mut ids = Vec::new();
        for card in cards {
            ids.push(self.store.put_contact(mbox, f, &card, None)?);
        }
        Ok(ids)
    }

    /// Answers the calendar and contacts requests.
    pub(crate) fn execute_pim(&self, req: Request) -> Result<Response, ServiceError> {
        Ok(match req {
            Request::ImportCalendar {
                account,
                folder,
                ics,
            } => {
                let mbox = self.mailbox_of(&account)?;
                self.import_calendar(mbox, &folder, &ics)?.into()
            }
            Request::ExportCalendar { account, folder } => {
                let mbox = self.mailbox_of(&account)?;
                CalendarText {
                    ics: self.export_calendar(mbox, &folder)?,
                }
                .into()
            }
            Request::ImportContacts {
                account,
                folder,
                vcf,
            } => {
                let mbox = self.mailbox_of(&account)?;
                ContactsImported {
                    created: self.import_contacts(mbox, &folder, &vcf)?,
                }
                .into()
            }
            Request::ExportContacts { account, folder } => {
                let mbox = self.mailbox_of(&account)?;
                ContactsText {
                    vcf: self.export_contacts(mbox, &folder)?,
                }
                .into()
            }
            other => {
                return Err(ServiceError::BadRequest(format!(
                    "{} is not answered here",
                    crate::jobs::op_of(&other)
                )));
            }
        })
    }
}

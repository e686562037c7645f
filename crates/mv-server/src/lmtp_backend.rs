//! LMTP delivery into the store: recipients resolved through the directory
//! (accounts, aliases, distribution lists), quota checked per mailbox, and one
//! store write per message for all local recipients.

use crate::Service;
use mv_directory::AccountStatus;
use mv_lmtp::{Backend, DeliveryOutcome, RcptVerdict};
use mv_store::DeliverOptions;
use mv_types::MailboxId;
use std::sync::Arc;

/// The mailbox ids one RCPT TO expands to (several for a distribution list).
pub type Recipient = Vec<MailboxId>;

pub struct StoreBackend {
    service: Arc<Service>,
}

impl StoreBackend {
    pub fn new(service: Arc<Service>) -> StoreBackend {
        StoreBackend { service }
    }

    /// Whether `extra` more bytes fit in the mailbox's quota (0 = unlimited).
    fn fits(&self, mbox: MailboxId, quota: u64, extra: u64) -> bool {
        if quota == 0 {
            return true;
        }
        let used = self
            .service
            .store()
            .mailbox(mbox)
            .info()
            .ok()
            .flatten()
            .map(|i| i.size_used)
            .unwrap_or(0);
        used.saturating_add(extra) <= quota
    }

    fn quota_of(&self, mbox: MailboxId) -> u64 {
        let d = self.service.directory();
        match d.account_by_mailbox_id(mbox) {
            Ok(Some(a)) => d.effective_quota(&a).unwrap_or(0),
            _ => 0,
        }
    }
}

impl Backend for StoreBackend {
    type Recipient = Recipient;

    fn check_recipient(&self, address: &str, size_hint: Option<u64>) -> RcptVerdict<Recipient> {
        let accounts = match self.service.directory().resolve_recipient(address) {
            Ok(a) => a,
            Err(mv_directory::DirectoryError::InvalidAddress { .. }) => {
                return RcptVerdict::Unknown;
            }
            Err(e) => return RcptVerdict::TempFail(e.to_string()),
        };
        let mut mailboxes = Vec::new();
        let mut over_quota = false;
        for a in accounts {
            match a.status {
                AccountStatus::Closed => continue,
                // An account being restored or repaired: the sender retries later.
                AccountStatus::Maintenance => {
                    return RcptVerdict::TempFail(format!(
                        "{} is in maintenance; try again later",
                        a.email
                    ));
                }
                AccountStatus::Active | AccountStatus::Locked => {}
            }
            let quota = self.service.directory().effective_quota(&a).unwrap_or(0);
            if !self.fits(a.mailbox_id, quota, size_hint.unwrap_or(0)) {
                over_quota = true;
                continue;
            }
            mailboxes.push(a.mailbox_id);
        }
        if !mailboxes.is_empty() {
            RcptVerdict::Accept(mailboxes)
        } else if over_quota {
            RcptVerdict::OverQuota { permanent: false }
        } else {
            RcptVerdict::Unknown
        }
    }

    fn deliver(
        &self,
        _mail_from: &str,
        recipients: &[Recipient],
        message: &[u8],
    ) -> Vec<DeliveryOutcome> {
        let size = message.len() as u64;
        // Quota with the real size now: a recipient whose every mailbox is full is refused.
        let accepted: Vec<Vec<MailboxId>> = recipients
            .iter()
            .map(|r| {
                r.iter()
                    .copied()
                    .filter(|m| self.fits(*m, self.quota_of(*m), size))
                    .collect()
            })
            .collect();
        let mut all: Vec<MailboxId> = accepted.iter().flatten().copied().collect();
        all.sort();
        all.dedup();
        let result = if all.is_empty() {
            Ok(Vec::new())
        } else {
            self.service
                .store()
                .deliver(message, &all, &DeliverOptions::default())
        };
        if result.is_ok() {
            // Indexing is deferred: only a signal to the background indexer here.
            self.service.indexes().wake();
        }
        accepted
            .iter()
            .map(|mboxes| match (&result, mboxes.is_empty()) {
                (_, true) => DeliveryOutcome::OverQuota { permanent: false },
                (Ok(_), false) => DeliveryOutcome::Delivered,
                (Err(e), false) => {
                    tracing::error!("delivery failed: {e}");
                    DeliveryOutcome::Failed(e.to_string())
                }
            })
            .collect()
    }
}

//! LMTP delivery into the store: recipients resolved through the directory
//! (accounts, aliases, distribution lists), quota checked per mailbox, and one
//! store write per message for all local recipients.

use crate::Service;
use crate::metrics::{self, Rejection};
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

impl StoreBackend {
    /// One audit line per mailbox the message went to (or failed to): who sent
    /// what to whom, where it is stored. The LMTP span adds the client's address.
    fn audit(
        &self,
        from: &str,
        message: &[u8],
        mailboxes: &[MailboxId],
        result: &Result<Vec<mv_types::ItemId>, mv_store::StoreError>,
    ) {
        let message_id = header_value(message, "message-id").unwrap_or_default();
        let size = message.len();
        for (i, mbox) in mailboxes.iter().enumerate() {
            let account = match self.service.directory().account_by_mailbox_id(*mbox) {
                Ok(Some(a)) => a.email,
                _ => format!("mailbox {}", mbox.0),
            };
            match result {
                Ok(items) => {
                    metrics::DELIVERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                    target: "audit",
                    from = %from,
                    account = %account,
                    message_id = %message_id,
                    size,
                    mailbox = mbox.0,
                    item = items.get(i).map(|it| it.0).unwrap_or_default(),
                    result = "delivered",
                    "lmtp delivery"
                    )
                }
                Err(e) => tracing::warn!(
                    target: "audit",
                    from = %from,
                    account = %account,
                    message_id = %message_id,
                    size,
                    mailbox = mbox.0,
                    result = %format!("failed: {e}"),
                    "lmtp delivery"
                ),
            }
        }
    }
}

/// A header's value from a raw message (first occurrence, unfolded, at most
/// 256 characters: it only names the message in the log).
fn header_value(message: &[u8], name: &str) -> Option<String> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len().min(64 * 1024));
    let head = String::from_utf8_lossy(&message[..head_end]);
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
        }
        return Some(value.chars().take(256).collect());
    }
    None
}

impl Backend for StoreBackend {
    type Recipient = Recipient;

    fn check_recipient(&self, address: &str, size_hint: Option<u64>) -> RcptVerdict<Recipient> {
        let verdict = self.verdict(address, size_hint);
        match &verdict {
            RcptVerdict::Accept(_) => {}
            RcptVerdict::Unknown => metrics::rejected(Rejection::UnknownUser),
            RcptVerdict::OverQuota { .. } => metrics::rejected(Rejection::OverQuota),
            RcptVerdict::TempFail(_) => metrics::rejected(Rejection::TempFail),
        }
        verdict
    }

    fn deliver(
        &self,
        mail_from: &str,
        recipients: &[Recipient],
        message: &[u8],
    ) -> Vec<DeliveryOutcome> {
        let outcomes = self.store_message(mail_from, recipients, message);
        for o in &outcomes {
            match o {
                DeliveryOutcome::Delivered => {}
                DeliveryOutcome::OverQuota { .. } => metrics::rejected(Rejection::OverQuota),
                DeliveryOutcome::Failed(_) => metrics::rejected(Rejection::StorageFailure),
            }
        }
        outcomes
    }
}

impl StoreBackend {
    fn verdict(&self, address: &str, size_hint: Option<u64>) -> RcptVerdict<Recipient> {
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

    fn store_message(
        &self,
        mail_from: &str,
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
        self.audit(mail_from, message, &all, &result);
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

//! LMTP delivery into the store: recipients resolved through the directory
//! (accounts, aliases, distribution lists), quota checked per mailbox, and one
//! store write per message for all local recipients.
//!
//! **A list member that cannot take a message now** (over quota, mailbox in
//! maintenance) never loses it. The list's recipient is accepted at RCPT when
//! at least one member can take the message; at the final dot every member
//! that can take it gets it, and the list's recipient is answered 452 4.2.2
//! (or 451 4.3.0 for maintenance) when any member was refused, so the client
//! (Postfix) keeps the message queued for that recipient and retries. On a
//! retry, a member whose mailbox already holds a message with the same
//! content digest received within [`LIST_REDELIVERY_WINDOW_MS`] is skipped, so
//! every member ends with exactly one copy. Each member's fate is logged.
//!
//! **Trace headers** ([`crate::trace`]) go before the received bytes, one set
//! per mailbox; the received bytes are stored once for all and are what the
//! duplicate check above digests.

use crate::Service;
use crate::metrics::{self, Rejection};
use crate::trace::{TraceFor, TraceHeaders};
use mv_directory::AccountStatus;
use mv_lmtp::{Backend, DeliveryOutcome, Origin, RcptVerdict};
use mv_store::DeliverOptions;
use mv_types::{Digest, MailboxId, UtcMillis};
use std::sync::Arc;

/// How far back a retried list delivery looks for a copy a member already
/// got: longer than Postfix's `maximal_queue_lifetime` (5 days by default).
pub const LIST_REDELIVERY_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// One local mailbox an RCPT TO reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub mailbox: MailboxId,
    /// The account's primary address, for the log.
    pub email: String,
}

/// What one RCPT TO resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address as the client wrote it.
    pub address: String,
    pub members: Vec<Member>,
    /// Reached through a distribution list: a retry may find members that
    /// already hold the message.
    pub list: bool,
}

pub struct StoreBackend {
    service: Arc<Service>,
    trace: TraceHeaders,
}

/// Why a member cannot take a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    OverQuota,
    Maintenance,
}

impl StoreBackend {
    /// A backend adding every trace header, signed with the service's server name.
    pub fn new(service: Arc<Service>) -> StoreBackend {
        let trace = TraceHeaders::all(service.server_name());
        StoreBackend { service, trace }
    }

    /// A backend adding the trace headers `trace` names.
    pub fn with_trace(service: Arc<Service>, trace: TraceHeaders) -> StoreBackend {
        StoreBackend { service, trace }
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

    /// Whether the member can take `size` bytes now, with the account's
    /// current status and quota (both may have changed since RCPT).
    fn refusal(&self, mbox: MailboxId, size: u64) -> Option<Refusal> {
        let (status, quota) = {
            let d = self.service.directory();
            match d.account_by_mailbox_id(mbox) {
                Ok(Some(a)) => (a.status, d.effective_quota(&a).unwrap_or(0)),
                _ => (AccountStatus::Active, 0),
            }
        };
        if status == AccountStatus::Maintenance {
            Some(Refusal::Maintenance)
        } else if !self.fits(mbox, quota, size) {
            Some(Refusal::OverQuota)
        } else {
            None
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
        delivery_id: &str,
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
            let item = result
                .as_ref()
                .ok()
                .and_then(|items| items.get(i))
                .map(|it| it.0);
            crate::account_log::debug(
                &account,
                crate::account_log::Category::Lmtp,
                format_args!(
                    "lmtp delivery from {from}, message-id {message_id}, {size} bytes, mailbox {}: {}",
                    mbox.0,
                    match (result, item) {
                        (Ok(_), Some(item)) => format!("stored as item {item}"),
                        (Ok(_), None) => "stored".to_string(),
                        (Err(e), _) => format!("failed: {e}"),
                    }
                ),
            );
            match result {
                Ok(items) => {
                    metrics::DELIVERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                    target: "audit",
                    from = %from,
                    account = %account,
                    message_id = %message_id,
                    delivery_id,
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
                    delivery_id,
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
        origin: &Origin,
        mail_from: &str,
        recipients: &[Recipient],
        message: &[u8],
    ) -> Vec<DeliveryOutcome> {
        let outcomes = self.store_message(origin, mail_from, recipients, message);
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
        let (accounts, list) = {
            let d = self.service.directory();
            let accounts = match d.resolve_recipient(address) {
                Ok(a) => a,
                Err(mv_directory::DirectoryError::InvalidAddress { .. }) => {
                    return RcptVerdict::Unknown;
                }
                Err(e) => return RcptVerdict::TempFail(e.to_string()),
            };
            let list = d.get_dl(address.trim()).is_ok();
            (accounts, list)
        };
        let mut members = Vec::new();
        let (mut over_quota, mut maintenance, mut takers) = (false, None, 0);
        for a in accounts {
            if a.status == AccountStatus::Closed {
                continue;
            }
            let refusal = self.refusal(a.mailbox_id, size_hint.unwrap_or(0));
            crate::account_log::debug(
                &a.email,
                crate::account_log::Category::Lmtp,
                format_args!(
                    "lmtp recipient {address}: {}",
                    match refusal {
                        None => "accepted",
                        Some(Refusal::OverQuota) => "over quota",
                        Some(Refusal::Maintenance) => "in maintenance",
                    }
                ),
            );
            match refusal {
                None => takers += 1,
                Some(Refusal::OverQuota) => over_quota = true,
                Some(Refusal::Maintenance) => maintenance = Some(a.email.clone()),
            }
            members.push(Member {
                mailbox: a.mailbox_id,
                email: a.email,
            });
        }
        if takers > 0 {
            RcptVerdict::Accept(Recipient {
                address: address.to_owned(),
                members,
                list,
            })
        } else if let Some(email) = maintenance {
            // An account being restored or repaired: the sender retries later.
            RcptVerdict::TempFail(format!("{email} is in maintenance; try again later"))
        } else if over_quota {
            RcptVerdict::OverQuota { permanent: false }
        } else {
            RcptVerdict::Unknown
        }
    }

    fn store_message(
        &self,
        origin: &Origin,
        mail_from: &str,
        recipients: &[Recipient],
        message: &[u8],
    ) -> Vec<DeliveryOutcome> {
        let now = UtcMillis::now();
        let delivery_id = crate::trace::delivery_id(now);
        // The duplicate check digests the received bytes, which every copy
        // shares, not a mailbox's trace headers.
        let digest = Digest::of(message);
        let since = UtcMillis(now.0 - LIST_REDELIVERY_WINDOW_MS);
        // One message per mailbox, with the trace headers of the first
        // recipient that reached it: a list's member is Delivered-To its own
        // address, a direct recipient the address the client gave.
        let mut targets: Vec<(MailboxId, Vec<u8>)> = Vec::new();
        let mut targeted = std::collections::HashSet::new();
        // Per recipient: the members to store into now, and the worst refusal.
        let mut plans: Vec<(Vec<MailboxId>, Option<Refusal>)> = Vec::new();
        for r in recipients {
            let (mut take, mut refused) = (Vec::new(), None);
            for m in &r.members {
                if r.list {
                    match self
                        .service
                        .store()
                        .mailbox(m.mailbox)
                        .holds_message_since(&digest, since)
                    {
                        Ok(true) => {
                            tracing::info!(list = %r.address, member = %m.email, %digest,
                                "list member already holds this message; not delivered again");
                            continue;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            // Unknown whether it holds a copy: defer rather than duplicate.
                            tracing::warn!(list = %r.address, member = %m.email, %e,
                                "duplicate check failed; deferring this member");
                            refused = Some(Refusal::Maintenance);
                            continue;
                        }
                    }
                }
                if targeted.contains(&m.mailbox) {
                    take.push(m.mailbox);
                    continue;
                }
                let to = TraceFor {
                    delivered_to: if r.list { &m.email } else { &r.address },
                    rcpt: &r.address,
                };
                let prefix = self.trace.prefix(origin, mail_from, to, &delivery_id, now);
                // Quota counts what is stored: the trace headers and the message.
                match self.refusal(m.mailbox, (prefix.len() + message.len()) as u64) {
                    None => {
                        take.push(m.mailbox);
                        targeted.insert(m.mailbox);
                        targets.push((m.mailbox, prefix));
                    }
                    Some(why) => {
                        if r.list {
                            tracing::warn!(list = %r.address, member = %m.email, reason = ?why,
                                "list member cannot take the message now; the list recipient is deferred so the sender retries");
                        }
                        // Maintenance (451) outranks quota (452): both are retried.
                        if refused != Some(Refusal::Maintenance) {
                            refused = Some(why);
                        }
                    }
                }
            }
            plans.push((take, refused));
        }
        targets.sort_by_key(|(id, _)| *id);
        let all: Vec<MailboxId> = targets.iter().map(|(id, _)| *id).collect();
        let options = DeliverOptions {
            received: Some(now),
            ..DeliverOptions::default()
        };
        let result = if all.is_empty() {
            Ok(Vec::new())
        } else {
            self.service
                .store()
                .deliver_with_prefixes(message, &targets, &options)
        };
        if result.is_ok() {
            // Indexing is deferred: only a signal to the background indexer here.
            self.service.indexes().wake();
        }
        self.audit(mail_from, message, &delivery_id, &all, &result);
        recipients
            .iter()
            .zip(&plans)
            .map(|(r, (take, refused))| {
                if let Err(e) = &result
                    && !take.is_empty()
                {
                    tracing::error!(recipient = %r.address, "delivery failed: {e}");
                    return DeliveryOutcome::Failed(e.to_string());
                }
                if r.list {
                    for m in r.members.iter().filter(|m| take.contains(&m.mailbox)) {
                        tracing::info!(list = %r.address, member = %m.email, "delivered to list member");
                    }
                }
                match refused {
                    None => DeliveryOutcome::Delivered,
                    Some(Refusal::OverQuota) => DeliveryOutcome::OverQuota { permanent: false },
                    Some(Refusal::Maintenance) => DeliveryOutcome::Failed(format!(
                        "a member of {} cannot take mail now (maintenance)",
                        r.address
                    )),
                }
            })
            .collect()
    }
}

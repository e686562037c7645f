//! The storage side, as the LMTP layer sees it.

/// The backend's answer to one `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict<R> {
    /// Deliverable; the token (e.g. mailbox ids) comes back in [`Backend::deliver`].
    Accept(R),
    /// No such user: 550 5.1.1.
    Unknown,
    /// The mailbox is full: 452 4.2.2 if temporary, 552 5.2.2 if permanent.
    OverQuota { permanent: bool },
    /// Lookup failed for now (directory down...): 451 4.3.0. The text is logged,
    /// not sent to the client.
    TempFail(String),
}

/// The result of delivering the message to one accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Durable: 250 2.0.0.
    Delivered,
    /// Became full since RCPT: 452 4.2.2 if temporary, 552 5.2.2 if permanent.
    OverQuota { permanent: bool },
    /// Storage error: 451 4.3.0, the client retries. The text is logged only.
    Failed(String),
}

/// Where a message came from, for the trace header (`Received:`) a backend adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's name from LHLO, as sent (unchecked: sanitise before use).
    pub lhlo: String,
    /// The client's address, when the driver knows it.
    pub peer: Option<std::net::IpAddr>,
}

/// Mail storage behind the LMTP server. Synchronous on purpose: the store is;
/// the server calls it through `tokio::task::spawn_blocking`.
pub trait Backend: Send + Sync + 'static {
    /// What an accepted recipient resolves to (mailbox ids, an account handle).
    type Recipient: Clone + Send + 'static;

    /// Decides whether `address` (as written by the client, unnormalised) can
    /// receive a message of about `message_size_hint` bytes (the SIZE
    /// parameter of MAIL FROM, if given).
    fn check_recipient(
        &self,
        address: &str,
        message_size_hint: Option<u64>,
    ) -> RcptVerdict<Self::Recipient>;

    /// Stores one message for all accepted recipients at once (the store keeps
    /// one copy for all) and returns one outcome per recipient, in order.
    /// Must return only after the message is durable. `origin` names the
    /// client (LHLO name, address) for trace headers. `mail_from` is `""` for
    /// the null reverse path. A result of the wrong length is a backend bug:
    /// missing outcomes are reported to the client as temporary failures.
    fn deliver(
        &self,
        origin: &Origin,
        mail_from: &str,
        recipients: &[Self::Recipient],
        message: &[u8],
    ) -> Vec<DeliveryOutcome>;
}

//! The storage side, as the IMAP layer sees it. Synchronous on purpose (the store
//! is); the session calls it through `tokio::task::spawn_blocking`.

/// System flags as bits (the store's own encoding is the backend's business).
pub mod flags {
    pub const SEEN: u32 = 1;
    pub const ANSWERED: u32 = 2;
    pub const FLAGGED: u32 = 4;
    pub const DELETED: u32 = 8;
    pub const DRAFT: u32 = 16;
    pub const ALL: u32 = SEEN | ANSWERED | FLAGGED | DELETED | DRAFT;
    /// `\Recent`: set by the session on its own copy of a listing, never stored
    /// (a message is recent in the one session that first saw it).
    pub const RECENT: u32 = 1 << 31;
}

/// A logged-in user, as the backend identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: u64,
    pub name: String,
    /// Whatever the backend keeps while the session is logged in (the
    /// mailbox's pin in its handle cache); dropped with the session.
    pub hold: Hold,
}

/// An opaque value a backend ties to a logged-in session (see
/// [`Account::hold`]). Not part of an account's identity: any two are equal.
#[derive(Clone, Default)]
pub struct Hold(Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>);

impl Hold {
    pub fn new(value: impl std::any::Any + Send + Sync) -> Hold {
        Hold(Some(std::sync::Arc::new(value)))
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hold(..)"
        } else {
            "Hold(None)"
        })
    }
}

impl PartialEq for Hold {
    fn eq(&self, _: &Hold) -> bool {
        true
    }
}

impl Eq for Hold {}

/// The backend's answer to LOGIN / AUTHENTICATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginResult {
    Ok(Account),
    /// Unknown user, wrong password, locked or closed account: one answer for
    /// all, so a client cannot probe which accounts exist.
    Refused,
    /// The account is in maintenance (restore, move): NO [UNAVAILABLE].
    Unavailable(String),
}

/// RFC 6154 special use of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Junk,
    Trash,
}

impl SpecialUse {
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Trash => "\\Trash",
        }
    }
}

/// One mailbox of the account, named with `/` as the hierarchy delimiter in
/// UTF-8 (`INBOX`, `Sent`, `Projects/2026`); the session does modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEntry {
    pub id: u32,
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub has_children: bool,
}

/// One message as a mailbox listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    /// [`flags`] bits.
    pub flags: u32,
    pub keywords: Vec<String>,
    pub modseq: u64,
    pub size: u64,
    pub internal_date_ms: i64,
}

/// A mailbox's state at one moment, messages in UID order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    pub messages: Vec<MessageMeta>,
}

/// The counters of one mailbox that NOTIFY (RFC 5465) compares between looks
/// to tell which mailboxes changed and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    pub id: u32,
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: u64,
    pub unseen: u64,
    /// Moves with every change to the mailbox's messages (flags included).
    pub highest_modseq: u64,
}

/// The account's storage quota (QUOTA, RFC 9208): one root for the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes the account's messages take.
    pub used: u64,
    /// The limit in bytes.
    pub limit: u64,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub raw: Vec<u8>,
    /// [`flags`] bits.
    pub flags: u32,
    pub keywords: Vec<String>,
    pub internal_date_ms: Option<i64>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// Why a backend call failed; each kind has its response code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// [NONEXISTENT]
    NotFound,
    /// [ALREADYEXISTS]
    Exists,
    /// [CANNOT]: the request is valid IMAP but the store refuses it.
    Cannot,
    /// [OVERQUOTA]
    OverQuota,
    /// [UNAVAILABLE]: try again later.
    Unavailable,
    /// [SERVERBUG]
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> BackendError {
        BackendError {
            kind,
            message: message.into(),
        }
    }
}

pub type BResult<T> = Result<T, BackendError>;

/// Result of COPY / MOVE: source UIDs and the UIDs they got, pairwise (UIDPLUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uid_validity: u32,
    pub pairs: Vec<(u32, u32)>,
}

/// Mail storage behind the IMAP server. Every mutation must be durable when it returns.
pub trait Backend: Send + Sync + 'static {
    fn login(&self, user: &str, password: &str) -> LoginResult;

    /// A number that changes whenever anything in the account changes (cheap:
    /// sessions read it to notice other sessions' changes).
    fn change_marker(&self, account: &Account) -> BResult<u64>;

    /// A channel whose value changes after every change to the account, for a
    /// session in IDLE to wait on instead of polling [`Backend::change_marker`].
    /// `None` (the default): the backend has none, and IDLE polls every
    /// `SessionConfig::idle_poll`.
    #[cfg(feature = "server")]
    fn watch_changes(&self, _account: &Account) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    fn mailboxes(&self, account: &Account) -> BResult<Vec<MailboxEntry>>;

    /// Every mailbox's counters (NOTIFY). The default takes a snapshot of
    /// each; a backend that keeps the counters should answer from them.
    fn mailbox_states(&self, account: &Account) -> BResult<Vec<MailboxState>> {
        let mut out = Vec::new();
        for m in self.mailboxes(account)? {
            let snap = match self.snapshot(account, m.id) {
                Ok(s) => s,
                // Deleted between the two calls.
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(MailboxState {
                id: m.id,
                name: m.name,
                uid_validity: snap.uid_validity,
                uid_next: snap.uid_next,
                messages: snap.messages.len() as u64,
                unseen: snap
                    .messages
                    .iter()
                    .filter(|x| x.flags & flags::SEEN == 0)
                    .count() as u64,
                highest_modseq: snap.highest_modseq,
            });
        }
        Ok(out)
    }
    fn snapshot(&self, account: &Account, mailbox: u32) -> BResult<Snapshot>;
    /// The raw RFC 5322 bytes of one message.
    fn message(&self, account: &Account, mailbox: u32, uid: u32) -> BResult<Vec<u8>>;

    /// Several messages for one FETCH: `(uid, bytes)` for those of `uids` that
    /// still exist, in the order given. With `header_only` the header section
    /// (through the empty line) is enough; a backend may return the whole message.
    fn messages(
        &self,
        account: &Account,
        mailbox: u32,
        uids: &[u32],
        header_only: bool,
    ) -> BResult<Vec<(u32, Vec<u8>)>> {
        let _ = header_only;
        let mut out = Vec::with_capacity(uids.len());
        for &uid in uids {
            match self.message(account, mailbox, uid) {
                Ok(raw) => out.push((uid, raw)),
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The account's storage quota; None when it has no limit.
    fn quota(&self, account: &Account) -> BResult<Option<Quota>>;

    /// The account's subscribed mailbox names (which need not exist).
    fn subscriptions(&self, account: &Account) -> BResult<Vec<String>>;
    /// Subscribes or unsubscribes a name; unsubscribing a name that is not
    /// subscribed is [`ErrorKind::NotFound`].
    fn subscribe(&self, account: &Account, name: &str, on: bool) -> BResult<()>;

    fn create(&self, account: &Account, name: &str) -> BResult<()>;
    fn delete(&self, account: &Account, name: &str) -> BResult<()>;
    fn rename(&self, account: &Account, from: &str, to: &str) -> BResult<()>;

    /// Returns (UIDVALIDITY, UID) of the new message.
    fn append(
        &self,
        account: &Account,
        mailbox: u32,
        raw: &[u8],
        flags: u32,
        keywords: &[String],
        internal_date_ms: Option<i64>,
    ) -> BResult<(u32, u32)>;

    /// Appends several messages as one (MULTIAPPEND, RFC 3502): all of them or,
    /// when any fails, none. Returns the UIDVALIDITY and the new UIDs in order.
    fn append_many(
        &self,
        account: &Account,
        mailbox: u32,
        messages: &[NewMessage],
    ) -> BResult<(u32, Vec<u32>)>;

    fn store(
        &self,
        account: &Account,
        mailbox: u32,
        uids: &[u32],
        op: FlagOp,
        flags: u32,
        keywords: &[String],
    ) -> BResult<()>;

    fn copy(&self, account: &Account, from: u32, uids: &[u32], to: u32) -> BResult<CopyResult>;
    fn move_messages(
        &self,
        account: &Account,
        from: u32,
        uids: &[u32],
        to: u32,
    ) -> BResult<CopyResult>;

    /// Removes messages flagged \Deleted (only those among `only`, for UID
    /// EXPUNGE); returns the removed UIDs.
    fn expunge(&self, account: &Account, mailbox: u32, only: Option<&[u32]>) -> BResult<Vec<u32>>;

    /// UIDs that left `mailbox` (expunged, or moved out) in changes after
    /// `since` (a MODSEQ), ascending, each once: QRESYNC's VANISHED. Exact for
    /// any `since`: what a backend cannot tell exactly it reports as gone.
    fn vanished(&self, account: &Account, mailbox: u32, since: u64) -> BResult<Vec<u32>>;

    /// UIDs of the mailbox's messages matching every criterion. A backend
    /// without an index can use [`crate::search::scan`].
    fn search(
        &self,
        account: &Account,
        mailbox: u32,
        criteria: &[crate::search::Criterion],
    ) -> BResult<Vec<u32>>;
}

//! Numeric identifiers. Plain integers in the database and the redo log; newtypes
//! here so that a mailbox id is never passed where an item id is expected.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
                 serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

id_type!(
    /// A mailbox's numeric id (Zimbra's `mailbox.id`). 0 is reserved for records
    /// that belong to no mailbox (shared content, directory-wide records).
    MailboxId,
    u32
);
id_type!(
    /// An item's id inside one mailbox (folders, messages, tags, contacts, appointments).
    ItemId,
    u32
);
id_type!(
    /// A mailbox's change number (Zimbra's `mod_metadata`): increases by one per change.
    ChangeNumber,
    u64
);
id_type!(
    /// Log sequence number of a redo record: strictly increasing across the whole log.
    Lsn,
    u64
);
id_type!(
    /// Transaction id: groups the redo records produced by one request.
    TxnId,
    u64
);

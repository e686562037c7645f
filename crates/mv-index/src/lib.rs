//! The per-mailbox search index: derived data in `<home>/index/<mailbox id>/`, kept
//! up to a mailbox's change number by a deferred indexer, rebuilt from the store
//! whenever it is missing, damaged or asked for (`zmprov rim`).
//!
//! The index never decides an answer on its own: it narrows the messages a query
//! can match (candidates), and the store's one evaluator
//! ([`mv_store::Mailbox::search_with`]) checks them exactly. Messages changed after
//! the index's change number are always checked too, so a stale index gives the
//! same results as a fresh one, only slower.
//!
//! Substring semantics on tokens: text and needle are lowercased
//! (`str::to_lowercase`) and split at every non-alphanumeric character. If a needle
//! is a substring of a text, its inner tokens are whole tokens of the text and its
//! first and last tokens are parts of tokens of the text. So a document that lacks
//! an inner token as a term, or has no term containing the first/last token, cannot
//! match: the index query (exact terms inside, `.*tok.*` regexes at the edges over
//! the term dictionary) finds a superset of the matches, and exact verification
//! removes the rest. Documents the argument does not cover (a token too long to
//! index, an unreadable blob) are flagged and always verified.
//!
//! One exception to "verify every candidate": a needle that is a single token (all
//! alphanumeric) can only occur inside one token of a text, so a document has it as
//! a substring exactly when one of its terms contains it. IMAP `SEARCH BODY word`
//! is then answered from the term dictionary alone (flagged documents and messages
//! newer than the index are still read).

mod copy;
mod error;
mod fields;
mod indexes;
mod mailbox_index;
mod query;

pub use copy::IndexCopy;
pub use error::IndexError;
pub use indexes::{IndexLag, Indexes, TextField};
pub use mailbox_index::{IndexedDoc, MailboxIndex, ReindexState, ReindexStatus};

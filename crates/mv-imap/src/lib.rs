//! IMAP4rev1 (RFC 3501) server for mailvault.
//!
//! - [`framing`]: command framing with the limits (line length, literal size),
//!   sans-io, so it can be fuzzed with the parser.
//! - [`Session`]: the state machine over one byte stream, commands parsed by
//!   imap-codec; imap-codec's types stay inside this crate.
//! - [`Backend`]: the storage side, a synchronous trait; this crate knows no store.
//! - [`serve`] (feature `server`): the tokio listeners with STARTTLS and IMAPS.
//!
//! Extensions: LITERAL+, SASL-IR, AUTH=PLAIN, ID, ENABLE, IDLE, NAMESPACE,
//! UIDPLUS, MOVE, UNSELECT, SPECIAL-USE, CONDSTORE, BINARY, MULTIAPPEND, CATENATE,
//! CHILDREN, LIST-EXTENDED, LIST-STATUS, ESEARCH, CONTEXT=SEARCH, CONTEXT=SORT, SORT,
//! SORT=DISPLAY, ESORT, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES, WITHIN,
//! STATUS=SIZE, QUOTA, SEARCHRES, APPENDLIMIT, PREVIEW, COMPRESS=DEFLATE, QRESYNC,
//! NOTIFY.

pub mod address;
pub mod append;
pub mod backend;
pub mod cache;
#[cfg(feature = "server")]
pub mod compress;
pub mod convert;
pub mod esearch;
pub mod framing;
pub mod lexer;
pub mod list_ext;
pub mod mime;
pub mod notify;
pub mod preview;
pub mod search;
pub mod searchres;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod session;
#[cfg(feature = "server")]
pub mod shared;
pub mod sort;
pub mod status_ext;
pub mod utf7;
pub mod wire;

pub use backend::{
    Account, BResult, Backend, BackendError, CopyResult, ErrorKind, FlagOp, Hold, LoginResult,
    MailboxEntry, MailboxState, MessageMeta, NewMessage, Quota, Snapshot, SpecialUse,
};
#[cfg(feature = "server")]
pub use server::{CONNECTIONS_TOTAL, ImapConfig, serve, tls_config};
#[cfg(feature = "server")]
pub use session::SessionConfig;
#[cfg(feature = "server")]
pub use shared::ThrottleConfig;

/// Parses one framed command the way the server does; for the fuzz target.
pub fn parse_command(bytes: &[u8]) -> bool {
    use imap_codec::decode::Decoder;
    // This crate's own parsers come first, as in the session.
    if let Some(r) = notify::parse(bytes, false) {
        return r.is_ok();
    }
    imap_codec::CommandCodec::default().decode(bytes).is_ok()
}

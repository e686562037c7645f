//! RFC 2033 LMTP server for mailvault.
//!
//! - [`Session`]: the sans-io state machine (bytes in; replies and backend
//!   requests out). No tokio, so it can be fuzzed and unit-tested directly.
//! - [`Backend`]: the storage side, a synchronous trait; this crate knows no store.
//! - [`serve`] (feature `server`, on by default): the tokio front end.
//!
//! Decisions, so the store and the tests can rely on them:
//! - **Line ends.** CRLF and bare LF both end a line, in commands and in DATA
//!   (lenient, like Postfix). The stored message has every line ending in
//!   CRLF; a CR not followed by LF is kept as data.
//! - **Dot-unstuffing.** A DATA line "." ends the message; any other line
//!   starting with "." loses that one dot ("..x" → ".x", "..." → "..").
//! - **Message size** is counted on the stored bytes. Over the limit (default
//!   50 MiB), or over the DATA line limit (default 64 KiB incl. CRLF: RFC 5321
//!   says 1000 but real mail exceeds it), the body is freed, the rest is read
//!   and discarded to the final dot, and every recipient gets 552 5.3.4;
//!   nothing is stored and the connection stays usable. A SIZE parameter over
//!   the limit is refused at MAIL FROM with 552 5.3.4.
//! - **NUL** in DATA: the message is refused with 554 5.6.0 per recipient
//!   (RFC 6152 excludes NUL even from 8BITMIME, and IMAP cannot serve it in a
//!   plain literal). NUL in a command line: 500 5.5.2.
//! - **Command lines** are limited (default 4096 octets incl. CRLF); a longer
//!   one is discarded as it arrives and answered 500 5.5.2 at its end.
//! - **Nothing is stored** unless the message was received up to its final
//!   dot; a disconnect or idle timeout mid-DATA drops it.

mod address;
mod backend;
mod command;
mod data;
mod line;
mod reply;
#[cfg(feature = "server")]
mod server;
mod session;

pub use backend::{Backend, DeliveryOutcome, Origin, RcptVerdict};
pub use reply::Reply;
#[cfg(feature = "server")]
pub use server::{CONNECTIONS_TOTAL, LmtpConfig, serve};
pub use session::{Delivery, Event, RecipientCheck, Session, SessionConfig, SessionError};

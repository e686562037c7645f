//! One IMAP connection: the RFC 3501 state machine (not authenticated,
//! authenticated, selected, logout) over a byte stream, commands parsed by
//! imap-codec and answered against the [`Backend`].
//!
//! Other sessions' changes reach a selected session through the account's
//! change marker: after every command that may report expunges (RFC 3501 §7.4.1:
//! not after FETCH, STORE or SEARCH by sequence number), and during IDLE each
//! time the backend's change channel says the account changed (every
//! `idle_poll` for a backend without one), the session compares the mailbox
//! with what it last reported and sends EXPUNGE, FETCH (FLAGS) and EXISTS.

use crate::backend::{Account, Backend, BackendError, ErrorKind, FlagOp, LoginResult, MessageMeta};
use crate::convert::{self, flag_list, flags_of, mailbox_name, ranges};
use crate::framing::{Frame, FrameError, Framer, tag_of};
use crate::mime::{self, SectionText};
use crate::shared::Shared;
use crate::wire;
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{
    Command, CommandBody, FetchModifier, SelectParameter, StoreModifier,
};
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::imap_types::flag::{StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::StatusDataItemName;
use reply::{Reply, Res, bad, clean, no};
use state::Selected;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Settings of every session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Limits after login; before it, [`crate::framing::Limits::pre_auth`].
    pub limits: crate::framing::Limits,
    /// LOGIN / AUTHENTICATE allowed without TLS.
    pub cleartext_login: bool,
    /// STARTTLS offered (a TLS configuration exists).
    pub starttls: bool,
    /// How often a session in IDLE looks for changes when the backend has no
    /// change channel ([`crate::backend::Backend::watch_changes`]).
    pub idle_poll: Duration,
    /// Inactivity before the server closes the connection (RFC 3501: ≥ 30 min).
    pub autologout: Duration,
    /// Every mailbox is selected read-only (`[READ-ONLY]`, as by EXAMINE): a
    /// warm standby's store takes no writes.
    pub read_only: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: Default::default(),
            cleartext_login: false,
            starttls: false,
            idle_poll: Duration::from_millis(250),
            autologout: Duration::from_secs(30 * 60),
            read_only: false,
        }
    }
}

/// How a session ended.
pub enum Ending {
    Closed,
    /// STARTTLS was accepted: the caller wraps the stream and runs a new session.
    StartTls,
    /// COMPRESS DEFLATE was accepted: the caller wraps the stream in
    /// [`crate::compress::DeflateStream`] (with [`Session::take_pending`]) and
    /// runs this session on.
    Compress,
}

pub struct Session<B: Backend> {
    backend: Arc<B>,
    cfg: Arc<SessionConfig>,
    /// The parsed-message cache, \Recent claims and the login throttle,
    /// shared by the server's sessions.
    shared: Arc<Shared>,
    /// The client's address (for the login throttle).
    peer: Option<std::net::IpAddr>,
    /// Failed logins on this connection.
    login_failures: u32,
    secure: bool,
    account: Option<Account>,
    selected: Option<Selected>,
    condstore: bool,
    /// The RETURN options of the SEARCH or SORT being run (ESEARCH, ESORT).
    returning: Option<crate::esearch::ReturnOptions>,
    /// The SEARCH being run, without RETURN, when it asked for UPDATE.
    update_command: Option<Vec<u8>>,
    /// SEARCH results kept up to date (CONTEXT=SEARCH).
    contexts: Vec<context::UpdateContext>,
    /// UIDs a `SEARCH RETURN (SAVE)` kept for `$` (SEARCHRES), sorted.
    saved: Vec<u32>,
    /// The STATUS item APPENDLIMIT of the command being run (imap-codec does not
    /// parse it; [`crate::status_ext`]).
    appendlimit: Option<crate::status_ext::AppendLimitItem>,
    /// The FETCH item PREVIEW of the command being run ([`crate::preview`]).
    preview: Option<crate::preview::PreviewItem>,
    /// COMPRESS DEFLATE is active.
    compressed: bool,
    /// QRESYNC is enabled (RFC 7162 §3.2.3): expunges are reported as VANISHED.
    qresync: bool,
    /// IMAP4rev2 is enabled (RFC 9051).
    rev2: bool,
    /// What NOTIFY SET asked for (RFC 5465).
    notify: Option<notify::NotifyState>,
    framer: Framer,
    out: Vec<u8>,
    shutdown: watch::Receiver<bool>,
}

/// What the loop does after a command.
enum Next {
    Continue,
    Logout,
    StartTls,
    Compress,
}

impl<B: Backend> Session<B> {
    pub fn new(
        backend: Arc<B>,
        cfg: Arc<SessionConfig>,
        shared: Arc<Shared>,
        peer: Option<std::net::IpAddr>,
        secure: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Session<B> {
        let limits = crate::framing::Limits::pre_auth();
        Session {
            backend,
            cfg,
            shared,
            peer,
            login_failures: 0,
            secure,
            account: None,
            selected: None,
            condstore: false,
            returning: None,
            update_command: None,
            contexts: Vec::new(),
            saved: Vec::new(),
            appendlimit: None,
            preview: None,
            compressed: false,
            qresync: false,
            rev2: false,
            notify: None,
            framer: Framer::new(limits),
            out: Vec::new(),
            shutdown,
        }
    }

    fn capabilities(&self) -> String {
        let mut c = String::from(
            "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT SPECIAL-USE CONDSTORE BINARY MULTIAPPEND CATENATE CHILDREN LIST-EXTENDED LIST-STATUS ESEARCH CONTEXT=SEARCH CONTEXT=SORT SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES WITHIN STATUS=SIZE QUOTA QUOTA=RES-STORAGE SEARCHRES PREVIEW QRESYNC NOTIFY",
        );
        // RFC 7889: one limit for every mailbox, the largest literal after login.
        c.push_str(&format!(" APPENDLIMIT={}", self.append_limit()));
        if self.account.is_none() {
            if self.cfg.starttls && !self.secure {
                c.push_str(" STARTTLS");
            }
            if self.login_allowed() {
                c.push_str(" AUTH=PLAIN");
            } else {
                c.push_str(" LOGINDISABLED");
            }
        } else if !self.compressed {
            c.push_str(" COMPRESS=DEFLATE");
        }
        c
    }

    /// The largest message APPEND accepts (APPENDLIMIT).
    fn append_limit(&self) -> u64 {
        self.cfg.limits.max_literal
    }

    fn login_allowed(&self) -> bool {
        self.secure || self.cfg.cleartext_login
    }

    fn untagged(&mut self, line: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn tagged(&mut self, tag: &str, kind: &str, code: Option<&str>, text: &str) {
        let code = code.map(|c| format!("[{c}] ")).unwrap_or_default();
        let line = format!("{tag} {kind} {code}{}\r\n", clean(text));
        self.out.extend_from_slice(line.as_bytes());
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, s: &mut S) -> std::io::Result<()> {
        self.flush_buffer(s).await?;
        s.flush().await
    }

    /// Hands the buffered output to the stream (before bytes written to it directly).
    async fn flush_buffer<S: AsyncWrite + Unpin>(&mut self, s: &mut S) -> std::io::Result<()> {
        if !self.out.is_empty() {
            s.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Runs the session to its end. `greet`: send the greeting (not after STARTTLS).
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        greet: bool,
    ) -> std::io::Result<Ending> {
        if greet {
            let caps = self.capabilities();
            self.untagged(&format!("OK [CAPABILITY {caps}] mailvault IMAP ready"));
            self.flush(s).await?;
        }
        loop {
            let Some(frame) = self.next_command_frame(s).await? else {
                return Ok(Ending::Closed);
            };
            match frame {
                Frame::Continue => self.out.extend_from_slice(b"+ Ready for literal data\r\n"),
                Frame::Refused { tag, error } => {
                    let tag = tag.unwrap_or_else(|| "*".into());
                    match error {
                        FrameError::LineTooLong => {
                            self.tagged(&tag, "BAD", None, "command line too long")
                        }
                        FrameError::LiteralTooBig { size } => self.tagged(
                            &tag,
                            "NO",
                            Some("TOOBIG"),
                            &format!(
                                "literal of {size} bytes is over the limit of {} bytes",
                                self.framer.limits().max_literal
                            ),
                        ),
                    }
                }
                Frame::Command(bytes) => match self.command(s, &bytes).await? {
                    Next::Continue => {}
                    Next::Logout => {
                        self.flush(s).await?;
                        return Ok(Ending::Closed);
                    }
                    Next::StartTls => {
                        self.flush(s).await?;
                        return Ok(Ending::StartTls);
                    }
                    Next::Compress => {
                        self.flush(s).await?;
                        return Ok(Ending::Compress);
                    }
                },
            }
            self.flush(s).await?;
        }
    }

    /// The next frame; None at end of input, autologout or shutdown (after a BYE).
    async fn next_frame<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        wait: Duration,
    ) -> std::io::Result<Option<Frame>> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if let Some(f) = self.framer.next_frame() {
                return Ok(Some(f));
            }
            let mut shutdown = self.shutdown.clone();
            let n = tokio::select! {
                r = tokio::time::timeout(wait, s.read(&mut buf)) => match r {
                    Ok(r) => r?,
                    Err(_) => {
                        self.untagged("BYE autologout: no command for too long");
                        self.flush(s).await?;
                        return Ok(None);
                    }
                },
                _ = async { let _ = shutdown.wait_for(|v| *v).await; } => {
                    self.untagged("BYE server shutting down");
                    self.flush(s).await?;
                    return Ok(None);
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.framer.push(&buf[..n]);
        }
    }

    async fn call<T: Send + 'static>(&self, f: impl FnOnce(&B) -> T + Send + 'static) -> T {
        let b = self.backend.clone();
        // The connection's span (the client's address) follows the call.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&b)))
            .await
            .expect("backend call panicked")
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        bytes: &[u8],
    ) -> std::io::Result<Next> {
        self.appendlimit = None;
        self.preview = None;
        // IMAP4rev2's UTF-8 quoted strings, as literals (imap-codec parses those).
        let rev2 = self
            .rev2
            .then(|| crate::lexer::quoted_8bit_as_literals(bytes))
            .flatten();
        let bytes: &[u8] = rev2.as_deref().unwrap_or(bytes);
        if let Some(next) = self.compress_command(bytes) {
            return Ok(next);
        }
        if self.own_command(bytes).await {
            return Ok(Next::Continue);
        }
        let mut bytes = std::borrow::Cow::Borrowed(bytes);
        if let Some((c, item)) = crate::status_ext::split_command(&bytes) {
            bytes = std::borrow::Cow::Owned(c);
            self.appendlimit = Some(item);
        }
        match crate::preview::split_command(&bytes) {
            None => {}
            Some(Ok((c, item))) => {
                bytes = std::borrow::Cow::Owned(c);
                self.preview = Some(item);
            }
            Some(Err(e)) => {
                let tag = tag_of(&bytes).unwrap_or_else(|| "*".into());
                self.tagged(&tag, "BAD", None, &e);
                return Ok(Next::Continue);
            }
        }
        match self.with_saved_result(&bytes) {
            Ok(None) => {}
            Ok(Some(c)) => bytes = std::borrow::Cow::Owned(c),
            Err(()) => return Ok(Next::Continue),
        }
        self.returning = None;
        self.update_command = None;
        match crate::esearch::split_return(&bytes) {
            None => {}
            Some(Ok((rest, opts))) => {
                if opts.save {
                    // A SEARCH that fails leaves $ empty (RFC 5182 §2.1).
                    self.saved.clear();
                }
                if opts.update {
                    self.update_command = Some(rest.clone());
                }
                bytes = std::borrow::Cow::Owned(rest);
                self.returning = Some(opts);
            }
            Some(Err(e)) => {
                let tag = tag_of(&bytes).unwrap_or_else(|| "*".into());
                self.tagged(&tag, "BAD", None, &e);
                return Ok(Next::Continue);
            }
        }
        self.rev2_search_returns(&bytes);
        let bytes: &[u8] = &bytes;
        let cmd = match CommandCodec::default().decode(bytes) {
            Ok((_, c)) => c,
            Err(_) => {
                let tag = tag_of(bytes).unwrap_or_else(|| "*".into());
                self.tagged(&tag, "BAD", None, "could not parse the command");
                return Ok(Next::Continue);
            }
        };
        let tag = cmd.tag.as_ref().to_string();
        let name = cmd.body.name();
        if matches!(name, "SELECT" | "EXAMINE" | "UNSELECT" | "CLOSE") {
            // Contexts and $ live as long as the mailbox stays selected.
            self.contexts.clear();
            self.saved.clear();
        }
        let r = self.dispatch(s, &tag, cmd).await?;
        self.update_contexts_before(&tag).await;
        match r {
            Ok(next) => Ok(next),
            Err(reply) => {
                let code = reply.code.clone();
                self.tagged(
                    &tag,
                    reply.kind,
                    code.as_deref(),
                    &format!("{name} {}", reply.text),
                );
                Ok(Next::Continue)
            }
        }
    }

    fn need_auth(&self) -> Result<Account, Reply> {
        self.account.clone().ok_or_else(|| bad("log in first"))
    }

    fn need_selected(&self) -> Result<(), Reply> {
        match self.selected {
            Some(_) => Ok(()),
            None => Err(bad("select a mailbox first")),
        }
    }

    /// A mailbox argument's name; a name that is not valid modified UTF-7 is
    /// refused with NO (the command parsed, so BAD would be wrong, and clients
    /// drop the connection after BAD).
    fn name_of(&self, m: &Mailbox<'_>) -> Result<String, Reply> {
        let name = if self.rev2 {
            convert::mailbox_name_utf8(m).map_err(|e| e.to_string())
        } else {
            mailbox_name(m).map_err(|e| e.to_string())
        };
        name.map_err(|e| no(Some("CANNOT"), format!("invalid mailbox name: {e}")))
    }

    async fn resolve(&self, acct: &Account, name: &str) -> Result<crate::MailboxEntry, Reply> {
        let a = acct.clone();
        let list = self.call(move |b| b.mailboxes(&a)).await?;
        list.into_iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| no(Some("NONEXISTENT"), format!("no mailbox named {name:?}")))
    }
}

fn is_atom(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

mod append;
mod auth;
mod context;
mod dispatch;
mod items;
mod list_ext;
mod mailboxes;
mod messages;
mod notify;
mod ordering;
mod own;
mod qresync;
mod reply;
mod rev2;
mod selected;
mod state;

#[cfg(test)]
mod tests {
    use super::auth::decode_b64;
    use super::mailboxes::wildcard;
    use super::messages::compress_set;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "INBOX/a/b"));
        assert!(wildcard("%", "Sent"));
        assert!(!wildcard("%", "INBOX/a"));
        assert!(wildcard("INBOX/%", "INBOX/a"));
        assert!(wildcard("inbox", "INBOX"));
        assert!(!wildcard("Sent", "Sent/x"));
    }

    #[test]
    fn sets_and_base64() {
        assert_eq!(compress_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(decode_b64(b"AGJvYgBwdw==").unwrap(), b"\0bob\0pw");
    }
}

//! One IMAP connection: the RFC 3501 state machine (not authenticated,
//! authenticated, selected, logout) over a byte stream, commands parsed by
//! imap-codec and answered against the [`Backend`].
//!
//! Other sessions' changes reach a selected session by polling the account's
//! change marker: after every command that may report expunges (RFC 3501 §7.4.1:
//! not after FETCH, STORE or SEARCH by sequence number) and every
//! `idle_poll` during IDLE, the session compares the mailbox with what it last
//! reported and sends EXPUNGE, FETCH (FLAGS) and EXISTS.

use crate::backend::{Account, Backend, BackendError, ErrorKind, FlagOp, LoginResult, MessageMeta};
use crate::cache::FetchCache;
use crate::convert::{self, flag_list, flags_of, mailbox_name, ranges};
use crate::framing::{Frame, FrameError, Framer, tag_of};
use crate::mime::{self, SectionText};
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
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Settings of every session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub limits: crate::framing::Limits,
    /// LOGIN / AUTHENTICATE allowed without TLS.
    pub cleartext_login: bool,
    /// STARTTLS offered (a TLS configuration exists).
    pub starttls: bool,
    /// How often a session in IDLE looks for changes.
    pub idle_poll: Duration,
    /// Inactivity before the server closes the connection (RFC 3501: ≥ 30 min).
    pub autologout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: Default::default(),
            cleartext_login: false,
            starttls: false,
            idle_poll: Duration::from_millis(250),
            autologout: Duration::from_secs(30 * 60),
        }
    }
}

/// How a session ended.
pub enum Ending {
    Closed,
    /// STARTTLS was accepted: the caller wraps the stream and runs a new session.
    StartTls,
}

struct Selected {
    id: u32,
    name: String,
    read_only: bool,
    uid_validity: u32,
    /// Messages as last reported to the client, in UID (= sequence) order.
    msgs: Vec<MessageMeta>,
    marker: u64,
}

pub struct Session<B: Backend> {
    backend: Arc<B>,
    cfg: Arc<SessionConfig>,
    /// Rendered FETCH answers, shared by the server's sessions.
    cache: Arc<FetchCache>,
    secure: bool,
    account: Option<Account>,
    selected: Option<Selected>,
    condstore: bool,
    framer: Framer,
    out: Vec<u8>,
    shutdown: watch::Receiver<bool>,
}

/// What the loop does after a command.
enum Next {
    Continue,
    Logout,
    StartTls,
}

type Res = Result<(), Reply>;

/// A tagged NO/BAD with an optional response code.
struct Reply {
    kind: &'static str,
    code: Option<String>,
    text: String,
}

fn no(code: Option<&str>, text: impl Into<String>) -> Reply {
    Reply {
        kind: "NO",
        code: code.map(str::to_string),
        text: text.into(),
    }
}

fn bad(text: impl Into<String>) -> Reply {
    Reply {
        kind: "BAD",
        code: None,
        text: text.into(),
    }
}

impl From<BackendError> for Reply {
    fn from(e: BackendError) -> Reply {
        let code = match e.kind {
            ErrorKind::NotFound => "NONEXISTENT",
            ErrorKind::Exists => "ALREADYEXISTS",
            ErrorKind::Cannot => "CANNOT",
            ErrorKind::OverQuota => "OVERQUOTA",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Internal => "SERVERBUG",
        };
        no(Some(code), e.message)
    }
}

/// One line of response text: no CR/LF, bounded.
fn clean(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if t.trim().is_empty() {
        "failed".into()
    } else {
        t
    }
}

impl<B: Backend> Session<B> {
    pub fn new(
        backend: Arc<B>,
        cfg: Arc<SessionConfig>,
        cache: Arc<FetchCache>,
        secure: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Session<B> {
        let limits = cfg.limits.clone();
        Session {
            backend,
            cfg,
            cache,
            secure,
            account: None,
            selected: None,
            condstore: false,
            framer: Framer::new(limits),
            out: Vec::new(),
            shutdown,
        }
    }

    fn capabilities(&self) -> String {
        let mut c = String::from(
            "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT SPECIAL-USE CONDSTORE",
        );
        if self.account.is_none() {
            if self.cfg.starttls && !self.secure {
                c.push_str(" STARTTLS");
            }
            if self.login_allowed() {
                c.push_str(" AUTH=PLAIN");
            } else {
                c.push_str(" LOGINDISABLED");
            }
        }
        c
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
            let Some(frame) = self.next_frame(s, self.cfg.autologout).await? else {
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
                                self.cfg.limits.max_literal
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
        let r = self.dispatch(s, &tag, cmd).await?;
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

    async fn dispatch<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        tag: &str,
        cmd: Command<'_>,
    ) -> std::io::Result<Result<Next, Reply>> {
        let ok = |me: &mut Self, code: Option<&str>, text: &str| {
            me.tagged(tag, "OK", code, text);
            Ok(Next::Continue)
        };
        let r: Result<Next, Reply> = match cmd.body {
            CommandBody::Capability => {
                let c = self.capabilities();
                self.untagged(&format!("CAPABILITY {c}"));
                ok(self, None, "CAPABILITY completed")
            }
            CommandBody::Noop | CommandBody::Check => {
                self.refresh(true).await;
                ok(self, None, "completed")
            }
            CommandBody::Logout => {
                self.untagged("BYE logging out");
                self.tagged(tag, "OK", None, "LOGOUT completed");
                Ok(Next::Logout)
            }
            CommandBody::StartTLS => {
                if self.account.is_some() {
                    Err(bad("already authenticated"))
                } else if self.secure {
                    Err(bad("TLS is already active"))
                } else if !self.cfg.starttls {
                    Err(no(None, "TLS is not configured"))
                } else {
                    self.tagged(tag, "OK", None, "begin TLS negotiation now");
                    Ok(Next::StartTls)
                }
            }
            CommandBody::Login { username, password } => {
                let user = convert::astring(&username);
                let pass = convert::astring(password.declassify());
                self.login(tag, user, pass).await
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if !matches!(mechanism, AuthMechanism::Plain) {
                    Err(no(None, "only AUTHENTICATE PLAIN is supported"))
                } else {
                    let data = match initial_response {
                        Some(r) => Some(r.declassify().to_vec()),
                        None => {
                            self.out.extend_from_slice(b"+ \r\n");
                            self.flush(s).await?;
                            match self.next_frame(s, Duration::from_secs(120)).await? {
                                Some(Frame::Command(line)) => {
                                    let l = line.trim_ascii();
                                    if l == b"*" {
                                        None
                                    } else {
                                        Some(decode_b64(l).unwrap_or_default())
                                    }
                                }
                                _ => return Ok(Ok(Next::Logout)),
                            }
                        }
                    };
                    match data {
                        None => Err(bad("authentication cancelled")),
                        Some(d) => {
                            let parts: Vec<&[u8]> = d.split(|&b| b == 0).collect();
                            if parts.len() != 3 {
                                Err(bad("malformed PLAIN credentials"))
                            } else {
                                let user = String::from_utf8_lossy(parts[1]).into_owned();
                                let pass = String::from_utf8_lossy(parts[2]).into_owned();
                                self.login(tag, user, pass).await
                            }
                        }
                    }
                }
            }
            CommandBody::Id { .. } => {
                self.untagged("ID (\"name\" \"mailvault\")");
                ok(self, None, "ID completed")
            }
            CommandBody::Enable { capabilities } => match self.need_auth() {
                Err(e) => Err(e),
                Ok(_) => {
                    let mut enabled = Vec::new();
                    for c in capabilities.as_ref() {
                        if matches!(c, CapabilityEnable::CondStore) && !self.condstore {
                            self.condstore = true;
                            enabled.push("CONDSTORE");
                        }
                    }
                    self.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
                    ok(self, None, "ENABLE completed")
                }
            },
            CommandBody::Namespace => match self.need_auth() {
                Err(e) => Err(e),
                Ok(_) => {
                    self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                    ok(self, None, "NAMESPACE completed")
                }
            },
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(tag, &mailbox, false, &parameters).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(tag, &mailbox, true, &parameters).await,
            CommandBody::Unselect => match self.need_selected() {
                Err(e) => Err(e),
                Ok(()) => {
                    self.selected = None;
                    ok(self, None, "UNSELECT completed")
                }
            },
            CommandBody::Close => match self.need_selected() {
                Err(e) => Err(e),
                Ok(()) => {
                    let sel = self.selected.take().expect("checked");
                    if !sel.read_only {
                        let acct = self
                            .account
                            .clone()
                            .expect("selected implies authenticated");
                        let id = sel.id;
                        // CLOSE expunges silently; a failure leaves the messages.
                        if let Err(e) = self.call(move |b| b.expunge(&acct, id, None)).await {
                            tracing::warn!("CLOSE expunge failed: {e}");
                        }
                    }
                    ok(self, None, "CLOSE completed")
                }
            },
            CommandBody::Create { mailbox } => self.create(&mailbox).await.map(|()| {
                self.tagged(tag, "OK", None, "CREATE completed");
                Next::Continue
            }),
            CommandBody::Delete { mailbox } => self.delete(&mailbox).await.map(|()| {
                self.tagged(tag, "OK", None, "DELETE completed");
                Next::Continue
            }),
            CommandBody::Rename { from, to } => self.rename(&from, &to).await.map(|()| {
                self.tagged(tag, "OK", None, "RENAME completed");
                Next::Continue
            }),
            CommandBody::Subscribe { mailbox } => self.subscribe(&mailbox, true).await.map(|()| {
                self.tagged(tag, "OK", None, "SUBSCRIBE completed");
                Next::Continue
            }),
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(&mailbox, false).await.map(|()| {
                    self.tagged(tag, "OK", None, "UNSUBSCRIBE completed");
                    Next::Continue
                })
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self
                .list(&reference, &mailbox_wildcard, "LIST")
                .await
                .map(|()| {
                    self.tagged(tag, "OK", None, "LIST completed");
                    Next::Continue
                }),
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self
                .list(&reference, &mailbox_wildcard, "LSUB")
                .await
                .map(|()| {
                    self.tagged(tag, "OK", None, "LSUB completed");
                    Next::Continue
                }),
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names).await.map(|()| {
                self.tagged(tag, "OK", None, "STATUS completed");
                Next::Continue
            }),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let data = match &message {
                    LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
                    LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
                };
                let (bits, kw) = flags_of(&flags);
                let date_ms = date.map(|d| d.as_ref().timestamp_millis());
                match self.append(&mailbox, data, bits, kw, date_ms).await {
                    Ok((v, u)) => {
                        self.refresh(true).await;
                        ok(
                            self,
                            Some(&format!("APPENDUID {v} {u}")),
                            "APPEND completed",
                        )
                    }
                    Err(e) => Err(e),
                }
            }
            CommandBody::Expunge => self.expunge(None).await.map(|()| {
                self.tagged(tag, "OK", None, "EXPUNGE completed");
                Next::Continue
            }),
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(Some(&sequence_set)).await.map(|()| {
                    self.tagged(tag, "OK", None, "UID EXPUNGE completed");
                    Next::Continue
                })
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                let cs = charset.as_ref().map(|c| c.as_ref().to_ascii_uppercase());
                if cs
                    .as_deref()
                    .is_some_and(|c| c != "UTF-8" && c != "US-ASCII")
                {
                    Err(no(
                        Some("BADCHARSET (UTF-8 US-ASCII)"),
                        "unsupported charset",
                    ))
                } else {
                    self.search(criteria.as_ref(), uid).await.map(|()| {
                        self.tagged(tag, "OK", None, "SEARCH completed");
                        Next::Continue
                    })
                }
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let r = self
                    .fetch(s, &sequence_set, &macro_or_item_names, uid, &modifiers)
                    .await?;
                r.map(|()| {
                    self.tagged(tag, "OK", None, "FETCH completed");
                    Next::Continue
                })
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => match self
                .store(&sequence_set, kind, response, &flags, uid, &modifiers)
                .await
            {
                Ok(None) => ok(self, None, "STORE completed"),
                Ok(Some(modified)) => ok(
                    self,
                    Some(&format!("MODIFIED {modified}")),
                    "conditional STORE failed for some messages",
                ),
                Err(e) => Err(e),
            },
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => match self.copy_move(&sequence_set, &mailbox, uid, false).await {
                Ok(code) => ok(self, code.as_deref(), "COPY completed"),
                Err(e) => Err(e),
            },
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => match self.copy_move(&sequence_set, &mailbox, uid, true).await {
                Ok(code) => {
                    if let Some(c) = code {
                        self.untagged(&format!("OK [{c}] moved"));
                    }
                    self.refresh(true).await;
                    ok(self, None, "MOVE completed")
                }
                Err(e) => Err(e),
            },
            CommandBody::Idle => match self.need_auth() {
                Err(e) => Err(e),
                Ok(_) => return self.idle(s, tag).await.map(Ok),
            },
            other => Err(bad(format!("{} is not supported", other.name()))),
        };
        // Untagged updates before the tagged reply of commands that allow them.
        Ok(r)
    }

    async fn login(&mut self, tag: &str, user: String, pass: String) -> Result<Next, Reply> {
        if self.account.is_some() {
            return Err(bad("already authenticated"));
        }
        if !self.login_allowed() {
            return Err(no(
                Some("PRIVACYREQUIRED"),
                "login is refused on an unencrypted connection; use STARTTLS or IMAPS",
            ));
        }
        match self.call(move |b| b.login(&user, &pass)).await {
            LoginResult::Ok(a) => {
                self.account = Some(a);
                let caps = self.capabilities();
                self.tagged(tag, "OK", Some(&format!("CAPABILITY {caps}")), "logged in");
                Ok(Next::Continue)
            }
            LoginResult::Refused => {
                // Slows down password guessing on one connection.
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(no(Some("AUTHENTICATIONFAILED"), "invalid credentials"))
            }
            LoginResult::Unavailable(msg) => Err(no(Some("UNAVAILABLE"), msg)),
        }
    }

    fn name_of(m: &Mailbox<'_>) -> Result<String, Reply> {
        mailbox_name(m).map_err(|e| bad(e.to_string()))
    }

    async fn resolve(&self, acct: &Account, name: &str) -> Result<crate::MailboxEntry, Reply> {
        let a = acct.clone();
        let list = self.call(move |b| b.mailboxes(&a)).await?;
        list.into_iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| no(Some("NONEXISTENT"), format!("no mailbox named {name:?}")))
    }

    async fn select(
        &mut self,
        tag: &str,
        mailbox: &Mailbox<'_>,
        read_only: bool,
        params: &[SelectParameter],
    ) -> Result<Next, Reply> {
        let acct = self.need_auth()?;
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        self.selected = None;
        let name = Self::name_of(mailbox)?;
        if params
            .iter()
            .any(|p| matches!(p, SelectParameter::CondStore))
        {
            self.condstore = true;
        }
        let entry = self.resolve(&acct, &name).await?;
        let (a, id) = (acct.clone(), entry.id);
        let marker = self.call(move |b| b.change_marker(&a)).await?;
        let a = acct.clone();
        let snap = self.call(move |b| b.snapshot(&a, id)).await?;
        let mut kw = snap.keywords.clone();
        kw.retain(|k| is_atom(k));
        let flags = flag_list(crate::backend::flags::ALL, &kw);
        self.untagged(&format!("FLAGS {flags}"));
        let perm = flag_list(crate::backend::flags::ALL, &kw);
        let perm = if read_only {
            "()".to_string()
        } else {
            format!("{} \\*)", perm.trim_end_matches(')'))
        };
        self.untagged(&format!("OK [PERMANENTFLAGS {perm}] flags"));
        self.untagged(&format!("{} EXISTS", snap.messages.len()));
        self.untagged("0 RECENT");
        if let Some(i) = snap
            .messages
            .iter()
            .position(|m| m.flags & crate::backend::flags::SEEN == 0)
        {
            self.untagged(&format!("OK [UNSEEN {}] first unseen", i + 1));
        }
        self.untagged(&format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            snap.uid_validity
        ));
        self.untagged(&format!(
            "OK [UIDNEXT {}] predicted next UID",
            snap.uid_next
        ));
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] highest",
            snap.highest_modseq.max(1)
        ));
        self.selected = Some(Selected {
            id,
            name: entry.name,
            read_only,
            uid_validity: snap.uid_validity,
            msgs: snap.messages,
            marker,
        });
        let (code, verb) = if read_only {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        self.tagged(tag, "OK", Some(code), &format!("{verb} completed"));
        Ok(Next::Continue)
    }

    /// Reports other sessions' changes to the selected mailbox.
    async fn refresh(&mut self, allow_expunge: bool) {
        if !allow_expunge {
            return;
        }
        let (Some(acct), Some(sel)) = (self.account.clone(), self.selected.as_ref()) else {
            return;
        };
        let (a, id, old_marker) = (acct.clone(), sel.id, sel.marker);
        let Ok(marker) = self.call(move |b| b.change_marker(&a)).await else {
            return;
        };
        if marker == old_marker {
            return;
        }
        let snap = match self.call(move |b| b.snapshot(&acct, id)).await {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound => {
                self.untagged("BYE the selected mailbox was deleted");
                self.selected = None;
                return;
            }
            Err(_) => return,
        };
        let condstore = self.condstore;
        let sel = self.selected.as_mut().expect("checked");
        let mut lines = Vec::new();
        if snap.uid_validity != sel.uid_validity {
            // The mailbox was replaced under us: the client must resynchronise.
            lines.push("BYE the selected mailbox was replaced".to_string());
            self.selected = None;
            for l in lines {
                self.untagged(&l);
            }
            return;
        }
        let new_uids: std::collections::HashSet<u32> =
            snap.messages.iter().map(|m| m.uid).collect();
        for i in (0..sel.msgs.len()).rev() {
            if !new_uids.contains(&sel.msgs[i].uid) {
                lines.push(format!("{} EXPUNGE", i + 1));
                sel.msgs.remove(i);
            }
        }
        for (i, m) in sel.msgs.iter().enumerate() {
            if let Ok(j) = snap.messages.binary_search_by_key(&m.uid, |x| x.uid) {
                let n = &snap.messages[j];
                if n.flags != m.flags || n.keywords != m.keywords {
                    let ms = if condstore {
                        format!(" MODSEQ ({})", n.modseq)
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "{} FETCH (UID {} FLAGS {}{ms})",
                        i + 1,
                        n.uid,
                        flag_list(n.flags, &n.keywords)
                    ));
                }
            }
        }
        let grew = snap.messages.len() != sel.msgs.len();
        sel.msgs = snap.messages;
        sel.marker = marker;
        if grew {
            lines.push(format!("{} EXISTS", sel.msgs.len()));
        }
        for l in lines {
            self.untagged(&l);
        }
    }

    async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        tag: &str,
    ) -> std::io::Result<Next> {
        self.out.extend_from_slice(b"+ idling\r\n");
        self.refresh(true).await;
        self.flush(s).await?;
        let poll = self.cfg.idle_poll;
        loop {
            match tokio::time::timeout(poll, self.next_frame(s, self.cfg.autologout)).await {
                Err(_) => {
                    self.refresh(true).await;
                    self.flush(s).await?;
                }
                Ok(Ok(None)) => return Ok(Next::Logout),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Some(Frame::Command(line)))) => {
                    if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                        self.tagged(tag, "OK", None, "IDLE terminated");
                    } else {
                        self.tagged(tag, "BAD", None, "expected DONE");
                    }
                    return Ok(Next::Continue);
                }
                Ok(Ok(Some(_))) => {
                    self.tagged(tag, "BAD", None, "expected DONE");
                    return Ok(Next::Continue);
                }
            }
        }
    }
}

fn is_atom(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

fn decode_b64(s: &[u8]) -> Option<Vec<u8>> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s: Vec<u8> = s.iter().copied().filter(|&b| b != b'=').collect();
    let mut out = Vec::new();
    let (mut bits, mut n) = (0u32, 0);
    for b in s {
        let v = A.iter().position(|&x| x == b)? as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

mod mailboxes;
mod messages;

#[cfg(test)]
mod tests {
    use super::mailboxes::wildcard;
    use super::messages::compress_set;
    use super::*;

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

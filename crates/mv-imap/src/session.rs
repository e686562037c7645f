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
        secure: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Session<B> {
        let limits = cfg.limits.clone();
        Session {
            backend,
            cfg,
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
        if !self.out.is_empty() {
            s.write_all(&self.out).await?;
            self.out.clear();
        }
        s.flush().await
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
        tokio::task::spawn_blocking(move || f(&b))
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

    async fn create(&mut self, mailbox: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
        let name = name.trim_end_matches('/').to_string();
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(no(Some("ALREADYEXISTS"), "INBOX always exists"));
        }
        check_name(&name)?;
        self.call(move |b| b.create(&acct, &name)).await?;
        Ok(())
    }

    async fn delete(&mut self, mailbox: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(no(Some("CANNOT"), "INBOX cannot be deleted"));
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.name.eq_ignore_ascii_case(&name))
        {
            self.selected = None;
        }
        self.call(move |b| b.delete(&acct, &name)).await?;
        Ok(())
    }

    async fn rename(&mut self, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Res {
        let acct = self.need_auth()?;
        let from = Self::name_of(from)?;
        let to = Self::name_of(to)?;
        check_name(&to)?;
        self.call(move |b| b.rename(&acct, &from, &to)).await?;
        Ok(())
    }

    /// Every mailbox is subscribed: the store keeps no subscription list, so
    /// SUBSCRIBE of an existing mailbox succeeds and UNSUBSCRIBE is refused.
    async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Res {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
        self.resolve(&acct, &name).await?;
        if on {
            Ok(())
        } else {
            Err(no(
                Some("CANNOT"),
                "every mailbox is subscribed on this server",
            ))
        }
    }

    async fn list(
        &mut self,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        verb: &str,
    ) -> Res {
        let acct = self.need_auth()?;
        let reference = Self::name_of(reference)?;
        let pat_bytes: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        let pat = crate::utf7::decode(pat_bytes).map_err(|e| bad(e.to_string()))?;
        if pat.is_empty() {
            self.untagged(&format!("{verb} (\\Noselect) \"/\" \"\""));
            return Ok(());
        }
        let full = if reference.is_empty() || pat.starts_with('/') {
            pat
        } else if reference.ends_with('/') {
            format!("{reference}{pat}")
        } else {
            format!("{reference}/{pat}")
        };
        let full = convert::normalize_inbox(&full);
        let list = self.call(move |b| b.mailboxes(&acct)).await?;
        for m in list {
            if !wildcard(&full, &m.name) {
                continue;
            }
            let mut attrs = vec![if m.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(su) = m.special_use {
                attrs.push(su.attribute());
            }
            let mut line = format!("{verb} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            wire::mailbox(&mut line, &crate::utf7::encode(&m.name));
            self.out.extend_from_slice(b"* ");
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    async fn status(&mut self, mailbox: &Mailbox<'_>, items: &[StatusDataItemName]) -> Res {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
        let entry = self.resolve(&acct, &name).await?;
        let id = entry.id;
        let snap = self.call(move |b| b.snapshot(&acct, id)).await?;
        let mut parts = Vec::new();
        for i in items {
            parts.push(match i {
                StatusDataItemName::Messages => format!("MESSAGES {}", snap.messages.len()),
                StatusDataItemName::Recent => "RECENT 0".into(),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", snap.uid_next),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", snap.uid_validity),
                StatusDataItemName::Unseen => format!(
                    "UNSEEN {}",
                    snap.messages
                        .iter()
                        .filter(|m| m.flags & crate::backend::flags::SEEN == 0)
                        .count()
                ),
                StatusDataItemName::HighestModSeq => {
                    format!("HIGHESTMODSEQ {}", snap.highest_modseq.max(1))
                }
                _ => continue,
            });
        }
        let mut line = b"STATUS ".to_vec();
        wire::mailbox(&mut line, &crate::utf7::encode(&entry.name));
        line.extend_from_slice(format!(" ({})", parts.join(" ")).as_bytes());
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(&line);
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    async fn append(
        &mut self,
        mailbox: &Mailbox<'_>,
        data: Vec<u8>,
        bits: u32,
        kw: Vec<String>,
        date_ms: Option<i64>,
    ) -> Result<(u32, u32), Reply> {
        let acct = self.need_auth()?;
        let name = Self::name_of(mailbox)?;
        let entry = self
            .resolve(&acct, &name)
            .await
            .map_err(|_| no(Some("TRYCREATE"), format!("no mailbox named {name:?}")))?;
        let id = entry.id;
        Ok(self
            .call(move |b| b.append(&acct, id, &data, bits, &kw, date_ms))
            .await?)
    }

    /// (account, selected id, read-only) for commands of the selected state.
    fn sel(&self) -> Result<(Account, u32, bool), Reply> {
        let acct = self.need_auth()?;
        let s = self
            .selected
            .as_ref()
            .ok_or_else(|| bad("select a mailbox first"))?;
        Ok((acct, s.id, s.read_only))
    }

    /// Indexes (0-based) into the reported messages for a set of sequence numbers or UIDs.
    fn indexes(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, Reply> {
        let sel = self
            .selected
            .as_ref()
            .ok_or_else(|| bad("select a mailbox first"))?;
        let msgs = &sel.msgs;
        let mut out = Vec::new();
        if uid {
            let max = msgs.last().map(|m| m.uid).unwrap_or(0);
            let r = ranges(set, max, false).unwrap_or_default();
            for (i, m) in msgs.iter().enumerate() {
                if r.iter().any(|(a, b)| (*a..=*b).contains(&m.uid)) {
                    out.push(i);
                }
            }
        } else {
            let n = msgs.len() as u32;
            // `1:*` in an empty mailbox selects nothing (as clients expect), not an error.
            if n == 0 && set.0.as_ref().iter().any(has_asterisk) {
                return Ok(Vec::new());
            }
            let r = ranges(set, n, true).ok_or_else(|| bad("invalid message sequence number"))?;
            let mut seen = vec![false; msgs.len()];
            for (a, b) in r {
                for s in a..=b {
                    seen[(s - 1) as usize] = true;
                }
            }
            out = (0..msgs.len()).filter(|i| seen[*i]).collect();
        }
        Ok(out)
    }

    async fn expunge(&mut self, only: Option<&SequenceSet>) -> Res {
        let (acct, id, ro) = self.sel()?;
        if ro {
            return Err(no(Some("READ-ONLY"), "the mailbox is selected read-only"));
        }
        let uids: Option<Vec<u32>> = match only {
            Some(set) => Some(
                self.indexes(set, true)?
                    .into_iter()
                    .map(|i| self.selected.as_ref().expect("sel").msgs[i].uid)
                    .collect(),
            ),
            None => None,
        };
        self.call(move |b| b.expunge(&acct, id, uids.as_deref()))
            .await?;
        self.refresh(true).await;
        Ok(())
    }

    async fn search(&mut self, keys: &[SearchKey<'_>], uid: bool) -> Res {
        let (acct, id, _) = self.sel()?;
        let sel = self.selected.as_ref().expect("sel");
        let seq_uids: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
        let max_uid = seq_uids.last().copied().unwrap_or(0);
        let mut criteria = Vec::new();
        let mut modseq_asked = false;
        for k in keys {
            modseq_asked |= mentions_modseq(k);
            criteria.push(convert::criterion(k, &seq_uids, max_uid).map_err(bad)?);
        }
        let found = self.call(move |b| b.search(&acct, id, &criteria)).await?;
        let sel = self.selected.as_ref().expect("sel");
        let mut nums = Vec::new();
        let mut top_modseq = 0;
        for (i, m) in sel.msgs.iter().enumerate() {
            if found.binary_search(&m.uid).is_ok() || found.contains(&m.uid) {
                nums.push(if uid { m.uid } else { i as u32 + 1 });
                top_modseq = top_modseq.max(m.modseq);
            }
        }
        let mut line = String::from("SEARCH");
        for n in &nums {
            line.push_str(&format!(" {n}"));
        }
        if modseq_asked && !nums.is_empty() {
            line.push_str(&format!(" (MODSEQ {top_modseq})"));
        }
        if modseq_asked {
            self.condstore = true;
        }
        self.untagged(&line);
        if uid {
            self.refresh(true).await;
        }
        Ok(())
    }

    async fn fetch<S: AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        set: &SequenceSet,
        items: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> std::io::Result<Res> {
        let (acct, id, ro) = match self.sel() {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        let mut names: Vec<MessageDataItemName<'_>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => m.expand(),
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v.clone(),
        };
        let mut changed_since = None;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => {
                    return Ok(Err(bad("VANISHED needs QRESYNC, which is not offered")));
                }
            }
        }
        if changed_since.is_some() {
            self.condstore = true;
        }
        if uid && !names.iter().any(|n| matches!(n, MessageDataItemName::Uid)) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if self.condstore
            && changed_since.is_some()
            && !names
                .iter()
                .any(|n| matches!(n, MessageDataItemName::ModSeq))
        {
            names.push(MessageDataItemName::ModSeq);
        }
        for n in &names {
            if let MessageDataItemName::BodyExt {
                section: Some(sec), ..
            } = n
                && section_depth(sec) > mime::MAX_DEPTH
            {
                return Ok(Err(bad("section path is too deep")));
            }
            if matches!(
                n,
                MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
            ) {
                return Ok(Err(bad("BINARY is not supported")));
            }
        }
        let idx = match self.indexes(set, uid) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        let needs_raw = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Body
                    | MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::BodyStructure
                    | MessageDataItemName::Envelope
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
            )
        });
        let sets_seen = !ro
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        // \Seen first, so the FLAGS reported below are the new ones.
        if sets_seen {
            let sel = self.selected.as_ref().expect("sel");
            let unseen: Vec<u32> = idx
                .iter()
                .map(|&i| &sel.msgs[i])
                .filter(|m| m.flags & crate::backend::flags::SEEN == 0)
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let a = acct.clone();
                if let Err(e) = self
                    .call(move |b| {
                        b.store(
                            &a,
                            id,
                            &unseen,
                            FlagOp::Add,
                            crate::backend::flags::SEEN,
                            &[],
                        )
                    })
                    .await
                {
                    return Ok(Err(e.into()));
                }
                if let Err(e) = self.reload_meta().await {
                    return Ok(Err(e));
                }
                if !names
                    .iter()
                    .any(|n| matches!(n, MessageDataItemName::Flags))
                {
                    names.push(MessageDataItemName::Flags);
                }
            }
        }
        for i in idx {
            let m = self.selected.as_ref().expect("sel").msgs[i].clone();
            if changed_since.is_some_and(|c| m.modseq <= c) {
                continue;
            }
            let raw = if needs_raw {
                let (a, u) = (acct.clone(), m.uid);
                match self.call(move |b| b.message(&a, id, u)).await {
                    Ok(r) => Some(r),
                    // Expunged meanwhile by another session: nothing to show.
                    Err(e) if e.kind == ErrorKind::NotFound => continue,
                    Err(e) => return Ok(Err(e.into())),
                }
            } else {
                None
            };
            let mut line = format!("* {} FETCH (", i + 1).into_bytes();
            for (k, n) in names.iter().enumerate() {
                if k > 0 {
                    line.push(b' ');
                }
                fetch_item(&mut line, n, &m, raw.as_deref());
            }
            line.extend_from_slice(b")\r\n");
            self.out.extend_from_slice(&line);
            if self.out.len() > 1 << 20 {
                self.flush(s).await?;
            }
        }
        if uid {
            self.refresh(true).await;
        }
        Ok(Ok(()))
    }

    /// Reloads the selected mailbox's flags after the session's own change,
    /// without reporting other changes (those come with the next refresh).
    async fn reload_meta(&mut self) -> Res {
        let (acct, id, _) = self.sel()?;
        let snap = self.call(move |b| b.snapshot(&acct, id)).await?;
        let sel = self.selected.as_mut().expect("sel");
        for m in sel.msgs.iter_mut() {
            if let Ok(j) = snap.messages.binary_search_by_key(&m.uid, |x| x.uid) {
                *m = snap.messages[j].clone();
            }
        }
        Ok(())
    }

    async fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[imap_codec::imap_types::flag::Flag<'_>],
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Result<Option<String>, Reply> {
        let (acct, id, ro) = self.sel()?;
        if ro {
            return Err(no(Some("READ-ONLY"), "the mailbox is selected read-only"));
        }
        let (bits, kw) = flags_of(flags);
        if let Some(bad_kw) = kw.iter().find(|k| k.len() > 128) {
            return Err(bad(format!("keyword {bad_kw:?} is too long")));
        }
        let unchanged_since = modifiers
            .iter()
            .map(|m| match m {
                StoreModifier::UnchangedSince(n) => *n,
            })
            .next();
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        let idx = self.indexes(set, uid)?;
        let sel = self.selected.as_ref().expect("sel");
        let mut modified = Vec::new();
        let mut uids = Vec::new();
        for &i in &idx {
            let m = &sel.msgs[i];
            if unchanged_since.is_some_and(|u| m.modseq > u) {
                modified.push(if uid { m.uid } else { i as u32 + 1 });
            } else {
                uids.push(m.uid);
            }
        }
        let op = match kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        if !uids.is_empty() {
            let (a, u) = (acct.clone(), uids.clone());
            self.call(move |b| b.store(&a, id, &u, op, bits, &kw))
                .await?;
        }
        self.reload_meta().await?;
        let silent = matches!(response, StoreResponse::Silent);
        let condstore = self.condstore;
        let sel = self.selected.as_ref().expect("sel");
        let mut lines = Vec::new();
        for &i in &idx {
            let m = &sel.msgs[i];
            if !uids.contains(&m.uid) {
                continue;
            }
            // With CONDSTORE a silent STORE still reports the new MODSEQ (RFC 7162 §3.1.3).
            if silent && !condstore {
                continue;
            }
            let mut parts = Vec::new();
            if uid {
                parts.push(format!("UID {}", m.uid));
            }
            if !silent {
                parts.push(format!("FLAGS {}", flag_list(m.flags, &m.keywords)));
            }
            if condstore {
                parts.push(format!("MODSEQ ({})", m.modseq));
            }
            lines.push(format!("{} FETCH ({})", i + 1, parts.join(" ")));
        }
        for l in lines {
            self.untagged(&l);
        }
        if uid {
            self.refresh(true).await;
        }
        if modified.is_empty() {
            Ok(None)
        } else {
            Ok(Some(compress_set(&modified)))
        }
    }

    async fn copy_move(
        &mut self,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
    ) -> Result<Option<String>, Reply> {
        let (acct, id, ro) = self.sel()?;
        if is_move && ro {
            return Err(no(Some("READ-ONLY"), "the mailbox is selected read-only"));
        }
        let name = Self::name_of(mailbox)?;
        let dest = self
            .resolve(&acct, &name)
            .await
            .map_err(|_| no(Some("TRYCREATE"), format!("no mailbox named {name:?}")))?;
        let idx = self.indexes(set, uid)?;
        let sel = self.selected.as_ref().expect("sel");
        let uids: Vec<u32> = idx.iter().map(|&i| sel.msgs[i].uid).collect();
        if uids.is_empty() {
            return Ok(None);
        }
        let to = dest.id;
        let r = if is_move {
            self.call(move |b| b.move_messages(&acct, id, &uids, to))
                .await?
        } else {
            self.call(move |b| b.copy(&acct, id, &uids, to)).await?
        };
        if r.pairs.is_empty() {
            return Ok(None);
        }
        let src: Vec<u32> = r.pairs.iter().map(|p| p.0).collect();
        let dst: Vec<u32> = r.pairs.iter().map(|p| p.1).collect();
        Ok(Some(format!(
            "COPYUID {} {} {}",
            r.uid_validity,
            join_uids(&src),
            join_uids(&dst)
        )))
    }
}

fn fetch_item(out: &mut Vec<u8>, n: &MessageDataItemName<'_>, m: &MessageMeta, raw: Option<&[u8]>) {
    let raw = raw.unwrap_or(b"");
    match n {
        MessageDataItemName::Uid => out.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
        MessageDataItemName::Flags => {
            out.extend_from_slice(format!("FLAGS {}", flag_list(m.flags, &m.keywords)).as_bytes())
        }
        MessageDataItemName::ModSeq => {
            out.extend_from_slice(format!("MODSEQ ({})", m.modseq.max(1)).as_bytes())
        }
        MessageDataItemName::Rfc822Size => {
            out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes())
        }
        MessageDataItemName::InternalDate => {
            let d = chrono::DateTime::from_timestamp_millis(m.internal_date_ms)
                .unwrap_or_default()
                .format("%d-%b-%Y %H:%M:%S +0000");
            out.extend_from_slice(format!("INTERNALDATE \"{d}\"").as_bytes())
        }
        MessageDataItemName::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            let e = mime::parse(raw);
            mime::envelope(out, e.header);
        }
        MessageDataItemName::Body => {
            out.extend_from_slice(b"BODY ");
            mime::body_structure(out, &mime::parse(raw), false);
        }
        MessageDataItemName::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            mime::body_structure(out, &mime::parse(raw), true);
        }
        MessageDataItemName::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            wire::literal(out, raw);
        }
        MessageDataItemName::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            wire::literal(out, mime::parse(raw).header);
        }
        MessageDataItemName::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            wire::literal(out, mime::parse(raw).body);
        }
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            let (part, what, spec) = section_of(section.as_ref());
            let data = mime::section(raw, &part, &what).unwrap_or_default();
            out.extend_from_slice(format!("BODY[{spec}]").as_bytes());
            let data = match partial {
                Some((origin, len)) => {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                    let start = (*origin as usize).min(data.len());
                    let end = start.saturating_add(len.get() as usize).min(data.len());
                    data[start..end].to_vec()
                }
                None => data,
            };
            out.push(b' ');
            wire::literal(out, &data);
        }
        _ => {}
    }
}

fn part_vec(p: &imap_codec::imap_types::fetch::Part) -> Vec<u32> {
    p.0.as_ref().iter().map(|n| n.get()).collect()
}

fn section_depth(s: &Section<'_>) -> usize {
    match s {
        Section::Part(p) | Section::Mime(p) => p.0.as_ref().len(),
        Section::Header(p) | Section::Text(p) => p.as_ref().map_or(0, |p| p.0.as_ref().len()),
        Section::HeaderFields(p, _) | Section::HeaderFieldsNot(p, _) => {
            p.as_ref().map_or(0, |p| p.0.as_ref().len())
        }
    }
}

/// (part path, what, the section spec as echoed in the response).
fn section_of(s: Option<&Section<'_>>) -> (Vec<u32>, SectionText, String) {
    let dotted = |p: &[u32]| {
        p.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    let prefix = |p: &[u32]| {
        if p.is_empty() {
            String::new()
        } else {
            format!("{}.", dotted(p))
        }
    };
    let names = |v: &Vec1<imap_codec::imap_types::core::AString<'_>>| {
        v.as_ref().iter().map(convert::astring).collect::<Vec<_>>()
    };
    match s {
        None => (vec![], SectionText::Full, String::new()),
        Some(Section::Part(p)) => {
            let p = part_vec(p);
            let spec = dotted(&p);
            (p, SectionText::Full, spec)
        }
        Some(Section::Header(p)) => {
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let spec = format!("{}HEADER", prefix(&p));
            (p, SectionText::Header, spec)
        }
        Some(Section::Text(p)) => {
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let spec = format!("{}TEXT", prefix(&p));
            (p, SectionText::Text, spec)
        }
        Some(Section::Mime(p)) => {
            let p = part_vec(p);
            let spec = format!("{}MIME", prefix(&p));
            (p, SectionText::Mime, spec)
        }
        Some(Section::HeaderFields(p, f)) | Some(Section::HeaderFieldsNot(p, f)) => {
            let not = matches!(s, Some(Section::HeaderFieldsNot(..)));
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let n = names(f);
            let quoted: Vec<String> = n
                .iter()
                .map(|x| {
                    let mut o = Vec::new();
                    wire::mailbox(&mut o, x);
                    String::from_utf8_lossy(&o).into_owned()
                })
                .collect();
            let spec = format!(
                "{}HEADER.FIELDS{} ({})",
                prefix(&p),
                if not { ".NOT" } else { "" },
                quoted.join(" ")
            );
            (p, SectionText::HeaderFields { names: n, not }, spec)
        }
    }
}

fn has_asterisk(s: &imap_codec::imap_types::sequence::Sequence) -> bool {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    match s {
        Sequence::Single(x) => matches!(x, SeqOrUid::Asterisk),
        Sequence::Range(a, b) => matches!(a, SeqOrUid::Asterisk) || matches!(b, SeqOrUid::Asterisk),
    }
}

fn mentions_modseq(k: &SearchKey<'_>) -> bool {
    match k {
        SearchKey::ModSequence { .. } => true,
        SearchKey::Not(k) => mentions_modseq(k),
        SearchKey::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        SearchKey::And(v) => v.as_ref().iter().any(mentions_modseq),
        _ => false,
    }
}

fn join_uids(u: &[u32]) -> String {
    compress_set(u)
}

/// `1,2,3,7` → `1:3,7` (order kept, runs of +1 folded).
fn compress_set(v: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}:{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn is_atom(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// Mailbox names the store can hold: no empty levels, no control characters.
fn check_name(name: &str) -> Res {
    if name.is_empty()
        || name
            .split('/')
            .any(|p| p.is_empty() || p != p.trim() || p.len() > 128)
        || name.chars().any(char::is_control)
        || name.contains('*')
        || name.contains('%')
    {
        return Err(bad(format!("invalid mailbox name {name:?}")));
    }
    Ok(())
}

/// LIST pattern match: `*` matches anything, `%` anything but the delimiter.
/// Case-insensitive only for the INBOX prefix, as names are unique regardless of case.
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(c) => {
                n.first()
                    .is_some_and(|d| d.to_lowercase().eq(c.to_lowercase()))
                    && go(&p[1..], &n[1..])
            }
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Bounded: patterns come from clients.
    p.len() <= 256 && p.iter().filter(|c| **c == '*' || **c == '%').count() <= 8 && go(&p, &n)
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

#[cfg(test)]
mod tests {
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

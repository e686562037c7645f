//! The sans-io LMTP session: bytes in, replies and backend requests out.
//!
//! The driver loop (see `server.rs` for the real one):
//! 1. [`Session::push_input`] what the client sent;
//! 2. call [`Session::next_event`] until it says [`Event::NeedInput`],
//!    writing replies, and answering [`Event::CheckRecipient`] with
//!    [`Session::recipient_checked`] and [`Event::Deliver`] with
//!    [`Session::delivered`];
//! 3. flush the replies, read more, repeat; stop at [`Event::Close`].
//!
//! Backend calls are events rather than a trait object the session calls, so
//! the driver decides how to run them (spawn_blocking, a test stub, a fuzzer).
//! Nothing is stored unless the whole message, up to its terminating dot, was
//! received: a driver that stops early (disconnect) just drops the session.
//!
//! Memory is bounded by the pushed-but-unread input (the driver pushes only
//! after `NeedInput`, when that is empty), one line (`max_line` /
//! `max_data_line`) and one message (`max_message_size`).

use std::collections::VecDeque;
use std::mem;

use crate::backend::{DeliveryOutcome, RcptVerdict};
use crate::command::{self, Command};
use crate::data::DataBody;
use crate::line::{Line, LineBuf};
use crate::reply::Reply;

/// Protocol limits and identity of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our name in the greeting and the LHLO reply.
    pub hostname: String,
    /// Largest message stored, counted after dot-unstuffing and CRLF normalisation.
    pub max_message_size: u64,
    /// Accepted recipients per transaction; more get 452 4.5.3 (the client
    /// sends them in a later transaction).
    pub max_recipients: usize,
    /// Longest command line, CRLF included (at least 512, RFC 5321 §4.5.3.1.4).
    pub max_line: usize,
    /// Longest DATA line, CRLF included (at least 1000). RFC 5321 says 1000,
    /// but real senders exceed it; we accept a generous bound rather than
    /// bounce, and refuse the message only past it.
    pub max_data_line: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hostname: "localhost".to_owned(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line: 4096,
            max_data_line: 64 * 1024,
        }
    }
}

/// An `RCPT TO` the backend must judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientCheck {
    pub address: String,
    /// The SIZE parameter of MAIL FROM, if given.
    pub size_hint: Option<u64>,
}

/// A complete message to store for every accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<R> {
    /// The client's name from LHLO (first word, as sent), for trace headers.
    pub lhlo: String,
    /// `""` for the null reverse path `<>`.
    pub mail_from: String,
    /// The accepted recipients' tokens, in RCPT order.
    pub recipients: Vec<R>,
    /// The message as stored: dot-unstuffed, every line ending in CRLF.
    pub message: Vec<u8>,
}

/// What the session wants the driver to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<R> {
    /// Send this reply (buffer it; flush at `NeedInput` or `Close`).
    Reply(Reply),
    /// Ask the backend, then call [`Session::recipient_checked`].
    CheckRecipient(RecipientCheck),
    /// Store the message, then call [`Session::delivered`].
    Deliver(Delivery<R>),
    /// All pushed input is consumed: flush replies and push more.
    NeedInput,
    /// A check or delivery is outstanding; answer it first (a driver bug to see this).
    Waiting,
    /// The session is over (after QUIT's reply): flush and close.
    Close,
}

/// The answer to the backend request did not match what the session awaits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no recipient check is pending")]
    NoCheckPending,
    #[error("no delivery is pending")]
    NoDeliveryPending,
}

/// One LMTP connection's protocol state. `R` is the backend's recipient token.
#[derive(Debug)]
pub struct Session<R> {
    lines: LineBuf,
    core: Core<R>,
}

/// Everything but the line buffer, split out so a borrowed line can be
/// handed to it.
#[derive(Debug)]
struct Core<R> {
    cfg: SessionConfig,
    /// The name given with the last LHLO.
    lhlo: String,
    state: State<R>,
    events: VecDeque<Event<R>>,
}

#[derive(Debug)]
struct Txn<R> {
    from: String,
    size_hint: Option<u64>,
    /// Accepted recipients: (address for replies, backend token).
    rcpts: Vec<(String, R)>,
}

#[derive(Debug)]
enum State<R> {
    /// Greeting sent; only LHLO opens the way to MAIL.
    Greeted,
    /// LHLO done, no transaction.
    Ready,
    Mail(Txn<R>),
    CheckingRcpt(Txn<R>, String),
    Data(Txn<R>, DataBody),
    /// The message went to the backend; these addresses await their replies.
    Delivering(Vec<String>),
    Closed,
}

impl<R> Session<R> {
    pub fn new(mut cfg: SessionConfig) -> Self {
        cfg.max_line = cfg.max_line.max(512);
        cfg.max_data_line = cfg.max_data_line.max(1000);
        Session {
            lines: LineBuf::default(),
            core: Core {
                cfg,
                lhlo: String::new(),
                state: State::Greeted,
                events: VecDeque::new(),
            },
        }
    }

    /// The 220 greeting to send when the connection opens.
    pub fn greeting(&self) -> Reply {
        Reply::new(
            220,
            format!("{} LMTP mailvault ready", self.core.cfg.hostname),
        )
    }

    /// Appends client bytes. Push only after [`Event::NeedInput`], so unread
    /// input never piles up. Ignored once the session is closed.
    pub fn push_input(&mut self, bytes: &[u8]) {
        if !matches!(self.core.state, State::Closed) {
            self.lines.push(bytes);
        }
    }

    /// The next thing to do; see [`Event`].
    pub fn next_event(&mut self) -> Event<R> {
        loop {
            if let Some(event) = self.core.events.pop_front() {
                return event;
            }
            match self.core.state {
                State::CheckingRcpt(..) | State::Delivering(_) => return Event::Waiting,
                State::Closed => return Event::Close,
                _ => {}
            }
            let limit = match self.core.state {
                State::Data(..) => self.core.cfg.max_data_line,
                _ => self.core.cfg.max_line,
            };
            match self.lines.next_line(limit) {
                Some(line) => self.core.handle_line(line),
                None => return Event::NeedInput,
            }
        }
    }

    /// Answers the pending [`Event::CheckRecipient`].
    pub fn recipient_checked(&mut self, verdict: RcptVerdict<R>) -> Result<(), SessionError> {
        self.core.recipient_checked(verdict)
    }

    /// Answers the pending [`Event::Deliver`] with one outcome per recipient.
    pub fn delivered(&mut self, outcomes: Vec<DeliveryOutcome>) -> Result<(), SessionError> {
        self.core.delivered(outcomes)
    }

    /// True between an accepted MAIL and the end of its transaction.
    pub fn in_transaction(&self) -> bool {
        matches!(
            self.core.state,
            State::Mail(_) | State::CheckingRcpt(..) | State::Data(..) | State::Delivering(_)
        )
    }

    /// True while message lines are being read (after 354, before the dot).
    /// A shutting-down server lets such sessions finish before closing them.
    pub fn in_data(&self) -> bool {
        matches!(self.core.state, State::Data(..))
    }

    /// Bytes buffered for this session: unread input, a partial line and the
    /// message so far. Bounded as described in the module docs.
    pub fn buffered_len(&self) -> usize {
        let body = match &self.core.state {
            State::Data(_, body) => body.len(),
            _ => 0,
        };
        self.lines.buffered_len() + body
    }

    pub fn config(&self) -> &SessionConfig {
        &self.core.cfg
    }
}

fn out_of_order(text: &str) -> Reply {
    Reply::status(503, "5.5.1", text)
}

impl<R> Core<R> {
    fn reply(&mut self, reply: Reply) {
        self.events.push_back(Event::Reply(reply));
    }

    fn handle_line(&mut self, line: Line<'_>) {
        if let State::Data(_, body) = &mut self.state {
            if body.push_line(line) {
                self.finish_data();
            }
            return;
        }
        match line {
            Line::TooLong => self.reply(Reply::status(500, "5.5.2", "line too long")),
            Line::Complete(line) => match command::parse(line) {
                Ok(cmd) => self.handle_command(cmd),
                Err(err) => self.reply(err.reply()),
            },
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        let state = mem::replace(&mut self.state, State::Closed);
        let (next, reply) = match cmd {
            // LHLO is allowed any time and, like EHLO, resets the transaction.
            Command::Lhlo { name } => {
                self.lhlo = name;
                (State::Ready, self.lhlo_reply())
            }
            Command::HeloOrEhlo => (state, Reply::status(500, "5.5.1", "this is LMTP, use LHLO")),
            Command::Noop => (state, Reply::status(250, "2.0.0", "OK")),
            Command::Vrfy => (
                state,
                Reply::status(252, "2.5.0", "cannot VRFY user, but will accept message"),
            ),
            Command::Rset => {
                let next = match state {
                    State::Greeted => State::Greeted,
                    _ => State::Ready,
                };
                (next, Reply::status(250, "2.0.0", "OK"))
            }
            Command::Quit => {
                let bye = Reply::status(
                    221,
                    "2.0.0",
                    format_args!("{} closing connection", self.cfg.hostname),
                );
                (State::Closed, bye)
            }
            Command::Mail { from, size } => self.mail(state, from, size),
            Command::Rcpt { to } => match state {
                State::Mail(txn) if txn.rcpts.len() >= self.cfg.max_recipients => (
                    State::Mail(txn),
                    Reply::status(452, "4.5.3", "too many recipients"),
                ),
                State::Mail(txn) => {
                    let check = RecipientCheck {
                        address: to.clone(),
                        size_hint: txn.size_hint,
                    };
                    self.state = State::CheckingRcpt(txn, to);
                    self.events.push_back(Event::CheckRecipient(check));
                    return;
                }
                State::Greeted => (state, out_of_order("send LHLO first")),
                state => (state, out_of_order("need MAIL command")),
            },
            Command::Data => match state {
                State::Mail(txn) if txn.rcpts.is_empty() => {
                    (State::Mail(txn), out_of_order("no valid recipients"))
                }
                State::Mail(txn) => {
                    let body = DataBody::new(self.cfg.max_message_size, txn.size_hint);
                    (
                        State::Data(txn, body),
                        Reply::new(354, "start mail input; end with <CRLF>.<CRLF>"),
                    )
                }
                State::Greeted => (state, out_of_order("send LHLO first")),
                state => (state, out_of_order("need MAIL command")),
            },
        };
        self.state = next;
        self.reply(reply);
    }

    fn lhlo_reply(&self) -> Reply {
        Reply::multiline(
            250,
            vec![
                self.cfg.hostname.clone(),
                "PIPELINING".to_owned(),
                "ENHANCEDSTATUSCODES".to_owned(),
                "8BITMIME".to_owned(),
                format!("SIZE {}", self.cfg.max_message_size),
            ],
        )
    }

    fn mail(&self, state: State<R>, from: String, size: Option<u64>) -> (State<R>, Reply) {
        match state {
            State::Ready if size.is_some_and(|s| s > self.cfg.max_message_size) => (
                State::Ready,
                Reply::status(
                    552,
                    "5.3.4",
                    "message size exceeds fixed maximum message size",
                ),
            ),
            State::Ready => {
                let reply = Reply::status(250, "2.1.0", format_args!("<{from}> sender ok"));
                (
                    State::Mail(Txn {
                        from,
                        size_hint: size,
                        rcpts: Vec::new(),
                    }),
                    reply,
                )
            }
            State::Greeted => (state, out_of_order("send LHLO first")),
            state => (state, out_of_order("nested MAIL command")),
        }
    }

    fn recipient_checked(&mut self, verdict: RcptVerdict<R>) -> Result<(), SessionError> {
        let (mut txn, address) = match mem::replace(&mut self.state, State::Closed) {
            State::CheckingRcpt(txn, address) => (txn, address),
            other => {
                self.state = other;
                return Err(SessionError::NoCheckPending);
            }
        };
        let reply = match verdict {
            RcptVerdict::Accept(token) => {
                let reply = Reply::status(250, "2.1.5", format_args!("<{address}> recipient ok"));
                txn.rcpts.push((address.clone(), token));
                reply
            }
            RcptVerdict::Unknown => Reply::status(
                550,
                "5.1.1",
                format_args!("<{address}>... No such user here"),
            ),
            RcptVerdict::OverQuota { permanent } => quota_reply(&address, permanent),
            RcptVerdict::TempFail(why) => {
                tracing::warn!(%address, %why, "recipient check failed temporarily");
                Reply::status(
                    451,
                    "4.3.0",
                    format_args!("<{address}> temporary failure, try again later"),
                )
            }
        };
        if reply.code() >= 400 {
            audit_rejected(&txn.from, &address, &reply);
        }
        self.state = State::Mail(txn);
        self.reply(reply);
        Ok(())
    }

    fn finish_data(&mut self) {
        let State::Data(txn, body) = mem::replace(&mut self.state, State::Ready) else {
            return;
        };
        match body.finish() {
            Ok(message) => {
                let (addresses, recipients) = txn.rcpts.into_iter().unzip();
                self.events.push_back(Event::Deliver(Delivery {
                    lhlo: self.lhlo.clone(),
                    mail_from: txn.from,
                    recipients,
                    message,
                }));
                self.state = State::Delivering(addresses);
            }
            Err(failure) => {
                for (address, _) in &txn.rcpts {
                    self.reply(failure.reply(address));
                }
            }
        }
    }

    fn delivered(&mut self, outcomes: Vec<DeliveryOutcome>) -> Result<(), SessionError> {
        let addresses = match mem::replace(&mut self.state, State::Ready) {
            State::Delivering(addresses) => addresses,
            other => {
                self.state = other;
                return Err(SessionError::NoDeliveryPending);
            }
        };
        if outcomes.len() != addresses.len() {
            tracing::error!(
                expected = addresses.len(),
                got = outcomes.len(),
                "backend returned a wrong number of delivery outcomes"
            );
        }
        let mut outcomes = outcomes.into_iter();
        for address in addresses {
            let reply = match outcomes.next() {
                Some(DeliveryOutcome::Delivered) => {
                    Reply::status(250, "2.0.0", format_args!("<{address}> delivered"))
                }
                Some(DeliveryOutcome::OverQuota { permanent }) => {
                    let reply = quota_reply(&address, permanent);
                    audit_rejected("", &address, &reply);
                    reply
                }
                Some(DeliveryOutcome::Failed(why)) => {
                    tracing::warn!(%address, %why, "delivery failed");
                    let reply = storage_failure(&address);
                    audit_rejected("", &address, &reply);
                    reply
                }
                None => storage_failure(&address),
            };
            self.reply(reply);
        }
        Ok(())
    }
}

/// The audit line of a recipient refused (at RCPT, or after DATA); the
/// connection's span adds the client's address.
fn audit_rejected(from: &str, address: &str, reply: &Reply) {
    let reply = reply.to_string();
    tracing::info!(
        target: "audit",
        from = %from,
        rcpt = %address,
        reply = %reply.trim_end(),
        "lmtp recipient rejected"
    );
}

fn quota_reply(address: &str, permanent: bool) -> Reply {
    if permanent {
        Reply::status(552, "5.2.2", format_args!("<{address}> mailbox full"))
    } else {
        Reply::status(452, "4.2.2", format_args!("<{address}> mailbox full"))
    }
}

fn storage_failure(address: &str) -> Reply {
    Reply::status(
        451,
        "4.3.0",
        format_args!("<{address}> temporary storage failure, try again later"),
    )
}

#[cfg(test)]
mod tests;

//! IMAP4rev2 (RFC 9051) next to IMAP4rev1: both are advertised, and a client
//! that sends `ENABLE IMAP4rev2` gets rev2's answers (§6.3.1): no `\Recent`
//! and no RECENT responses (such a session claims no message as recent, so it
//! takes none from a rev1 session), no `[UNSEEN n]` at SELECT but a LIST line
//! with the mailbox's attributes, `[CLOSED]` when a SELECT replaces a selected
//! mailbox, and SEARCH without RETURN answered as ESEARCH with ALL (§6.4.4).
//! Mailbox names are UTF-8 on the wire (§5.1), not modified UTF-7: taken as
//! sent (a literal, or a quoted string of ASCII), sent as atoms, quoted
//! strings or, with 8-bit characters, literals.

use super::*;
use crate::esearch::ReturnOptions;

impl<B: Backend> Session<B> {
    /// ENABLE (RFC 5161): CONDSTORE, QRESYNC (which implies CONDSTORE, RFC 7162
    /// §3.2.3) and IMAP4rev2; others are ignored, as the RFC asks.
    pub(super) fn enable(
        &mut self,
        tag: &str,
        caps: &[CapabilityEnable<'_>],
    ) -> Result<Next, Reply> {
        self.need_auth()?;
        let mut enabled = Vec::new();
        for c in caps {
            let name = c.to_string();
            if matches!(c, CapabilityEnable::CondStore) && !self.condstore {
                self.condstore = true;
                enabled.push("CONDSTORE");
            }
            if name.eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                self.qresync = true;
                self.condstore = true;
                enabled.push("QRESYNC");
            }
            if name.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                enabled.push("IMAP4rev2");
            }
        }
        self.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
        self.tagged(tag, "OK", None, "ENABLE completed");
        Ok(Next::Continue)
    }

    /// Under IMAP4rev2 a SEARCH (or UID SEARCH) without RETURN is answered as
    /// `RETURN (ALL)`: an ESEARCH response (RFC 9051 §6.4.4).
    pub(super) fn rev2_search_returns(&mut self, cmd: &[u8]) {
        if !self.rev2 || self.returning.is_some() {
            return;
        }
        let mut words = cmd.split(|&b| b == b' ').skip(1);
        let mut w = words.next().unwrap_or_default();
        if w.eq_ignore_ascii_case(b"UID") {
            w = words.next().unwrap_or_default();
        }
        if w.trim_ascii_end().eq_ignore_ascii_case(b"SEARCH") {
            self.returning = Some(ReturnOptions {
                all: true,
                ..Default::default()
            });
        }
    }

    /// A mailbox name as this session writes it: UTF-8 under IMAP4rev2,
    /// modified UTF-7 otherwise.
    pub(super) fn wire_name(&self, name: &str) -> String {
        if self.rev2 {
            name.to_string()
        } else {
            crate::utf7::encode(name)
        }
    }

    /// SELECT/EXAMINE under IMAP4rev2: the mailbox's LIST line (RFC 9051
    /// §6.3.2), with the attributes LIST gives it.
    pub(super) fn select_list_line(&mut self, entry: &crate::MailboxEntry) {
        let mut attrs = vec![if entry.has_children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        }];
        if let Some(su) = entry.special_use {
            attrs.push(su.attribute());
        }
        let mut line = format!("* LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
        wire::mailbox(&mut line, &self.wire_name(&entry.name));
        line.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&line);
    }
}

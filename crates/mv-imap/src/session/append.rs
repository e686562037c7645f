//! APPEND of several messages (MULTIAPPEND, RFC 3502) and of messages put
//! together from text and parts of the account's messages (CATENATE, RFC 4469).
//! Every message is built and checked before the first is stored, and the
//! backend stores them all or none.

use super::*;
use crate::NewMessage;
use crate::append::{Append, Body, Part, parse_url};

impl<B: Backend> Session<B> {
    /// Runs a MULTIAPPEND / CATENATE; the APPENDUID response code on success.
    pub(super) async fn append_ext(&mut self, a: &Append<'_>) -> Result<String, Reply> {
        let acct = self.need_auth()?;
        let mut name = None;
        let mut options = Vec::with_capacity(a.messages.len());
        for m in &a.messages {
            // Mailbox, flags and date as imap-codec reads them in a plain APPEND.
            let mut plain = b"x APPEND ".to_vec();
            plain.extend_from_slice(a.mailbox);
            for part in [m.flags, m.date].into_iter().flatten() {
                plain.push(b' ');
                plain.extend_from_slice(part);
            }
            plain.extend_from_slice(b" {1+}\r\nx\r\n");
            let Ok((_, cmd)) = CommandCodec::default().decode(&plain) else {
                return Err(bad("could not parse the mailbox name, flags or date"));
            };
            let CommandBody::Append {
                mailbox,
                flags,
                date,
                ..
            } = cmd.body
            else {
                return Err(bad("could not parse the mailbox name, flags or date"));
            };
            if name.is_none() {
                name = Some(self.name_of(&mailbox)?);
            }
            let (bits, keywords) = flags_of(&flags);
            options.push((bits, keywords, date.map(|d| d.as_ref().timestamp_millis())));
        }
        let name = name.ok_or_else(|| bad("APPEND needs a message"))?;
        let entry = self
            .resolve(&acct, &name)
            .await
            .map_err(|_| no(Some("TRYCREATE"), format!("no mailbox named {name:?}")))?;
        let max = self.framer.limits().max_literal;
        // URL parts can repeat a large message: the messages built together
        // stay within what one command may carry.
        let mut total_left = self.framer.limits().max_command;
        let mut messages = Vec::with_capacity(a.messages.len());
        for (m, (flags, keywords, internal_date_ms)) in a.messages.iter().zip(options) {
            let raw = match &m.body {
                Body::Literal { data, .. } => data.to_vec(),
                Body::Catenate(parts) => self.catenate(&acct, parts, max.min(total_left)).await?,
            };
            total_left = total_left.saturating_sub(raw.len() as u64);
            if raw.is_empty() {
                return Err(no(None, "a message is empty"));
            }
            let raw = crate::mime::encode_binary_parts(&raw).unwrap_or(raw);
            messages.push(NewMessage {
                raw,
                flags,
                keywords,
                internal_date_ms,
            });
        }
        let id = entry.id;
        let (validity, uids) = self
            .call(move |b| b.append_many(&acct, id, &messages))
            .await?;
        Ok(format!(
            "APPENDUID {validity} {}",
            messages::compress_set(&uids)
        ))
    }

    /// One CATENATE message: its text parts and the URL parts' bytes, in order.
    async fn catenate(
        &mut self,
        acct: &Account,
        parts: &[Part<'_>],
        max: u64,
    ) -> Result<Vec<u8>, Reply> {
        let mut out = Vec::new();
        for p in parts {
            match p {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Url(u) => out.extend_from_slice(&self.url_bytes(acct, u).await?),
            }
            if out.len() as u64 > max {
                return Err(no(
                    Some("TOOBIG"),
                    format!("the message is over the limit of {max} bytes (left for this APPEND)"),
                ));
            }
        }
        Ok(out)
    }

    /// The bytes an IMAP URL to one of the account's messages stands for;
    /// NO [BADURL] when it does not resolve.
    async fn url_bytes(&mut self, acct: &Account, url: &str) -> Result<Vec<u8>, Reply> {
        // The code's text may hold neither CR, LF nor "]" (RFC 4469 url-resp-text).
        let shown: String = url
            .chars()
            .filter(|c| !c.is_control() && *c != ']' && *c != '\\')
            .take(200)
            .collect();
        let bad_url = |why: &str| no(Some(&format!("BADURL {shown}")), format!("URL {why}"));
        let u = parse_url(url).map_err(|e| bad_url(&e))?;
        let entry = self
            .resolve(acct, &convert::normalize_inbox(&u.mailbox))
            .await
            .map_err(|_| bad_url("names no mailbox of this account"))?;
        let (a, id) = (acct.clone(), entry.id);
        if let Some(v) = u.uid_validity {
            let snap = self.call(move |b| b.snapshot(&a, id)).await?;
            if snap.uid_validity != v {
                return Err(bad_url("has an outdated UIDVALIDITY"));
            }
        }
        let (a, uid) = (acct.clone(), u.uid);
        let raw = self
            .call(move |b| b.message(&a, id, uid))
            .await
            .map_err(|_| bad_url("names no message"))?;
        let data = if u.part.is_empty() && u.what == SectionText::Full {
            raw
        } else {
            mime::section(&raw, &u.part, &u.what).ok_or_else(|| bad_url("names no such part"))?
        };
        Ok(match u.partial {
            None => data,
            Some((offset, len)) => {
                let start = (offset as usize).min(data.len());
                let end = len.map_or(data.len(), |l| {
                    start.saturating_add(l as usize).min(data.len())
                });
                data[start..end].to_vec()
            }
        })
    }
}

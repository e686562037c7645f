//! Commands and arguments imap-codec does not parse, handled before it runs:
//! APPEND with several messages or CATENATE, extended LIST, NOTIFY, CANCELUPDATE, and
//! `$` (SEARCHRES) replaced by the saved result, COMPRESS.

use super::*;

impl<B: Backend> Session<B> {
    /// Answers the command when it is one of this crate's own; false otherwise.
    pub(super) async fn own_command(&mut self, bytes: &[u8]) -> bool {
        let tag = || tag_of(bytes).unwrap_or_else(|| "*".into());
        if let Some(parsed) = crate::append::parse(bytes) {
            let r = match parsed {
                Err(e) => Err(bad(e)),
                Ok(a) => self.append_ext(&a).await,
            };
            match r {
                Ok(code) => {
                    self.refresh(true).await;
                    self.tagged(&tag(), "OK", Some(&code), "APPEND completed");
                }
                Err(reply) => {
                    let text = format!("APPEND {}", reply.text);
                    self.tagged(&tag(), reply.kind, reply.code.as_deref(), &text);
                }
            }
            return true;
        }
        if let Some(parsed) = crate::list_ext::parse(bytes) {
            let r = match parsed {
                Err(e) => Err(bad(e)),
                Ok(x) => self.list_ext(&x).await,
            };
            match r {
                Ok(()) => self.tagged(&tag(), "OK", None, "LIST completed"),
                Err(reply) => {
                    let text = format!("LIST {}", reply.text);
                    self.tagged(&tag(), reply.kind, reply.code.as_deref(), &text);
                }
            }
            return true;
        }
        if let Some(parsed) = crate::notify::parse(bytes, self.rev2) {
            self.notify_command(&tag(), parsed).await;
            return true;
        }
        if let Some(r) = self.cancel_update(bytes) {
            match r {
                Ok(()) => self.tagged(&tag(), "OK", None, "CANCELUPDATE completed"),
                Err(reply) => self.tagged(&tag(), reply.kind, None, &reply.text),
            }
            return true;
        }
        false
    }

    /// COMPRESS (RFC 4978), after login: Some(what next) when the command is one.
    pub(super) fn compress_command(&mut self, bytes: &[u8]) -> Option<Next> {
        let line = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        let mut words = line.split(|&b| b == b' ');
        let tag = String::from_utf8_lossy(words.next()?).into_owned();
        if !words.next()?.eq_ignore_ascii_case(b"COMPRESS") {
            return None;
        }
        let alg = words.next();
        let extra = words.next().is_some();
        if self.account.is_none() {
            self.tagged(&tag, "BAD", None, "COMPRESS: log in first");
        } else if extra || !alg.is_some_and(|a| a.eq_ignore_ascii_case(b"DEFLATE")) {
            self.tagged(&tag, "BAD", None, "COMPRESS: only DEFLATE is offered");
        } else if self.compressed {
            self.tagged(
                &tag,
                "NO",
                Some("COMPRESSIONACTIVE"),
                "COMPRESS: DEFLATE is already active",
            );
        } else {
            self.compressed = true;
            self.tagged(&tag, "OK", None, "DEFLATE active");
            return Some(Next::Compress);
        }
        Some(Next::Continue)
    }

    /// The bytes the client sent after the command being answered and that
    /// are not read yet (after COMPRESS: the first compressed ones).
    pub fn take_pending(&mut self) -> Vec<u8> {
        self.framer.take_input()
    }

    /// The command with `$` replaced by the saved result; None when it has
    /// no `$`; Err when it was answered here (`$` is empty, nothing to do).
    pub(super) fn with_saved_result(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(None);
        };
        let saved = &self.saved;
        let set = |uid: bool| -> Option<String> {
            let nums: Vec<u32> = sel
                .msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| saved.binary_search(&m.uid).is_ok())
                .map(|(i, m)| if uid { m.uid } else { i as u32 + 1 })
                .collect();
            (!nums.is_empty()).then(|| messages::compress_set(&nums))
        };
        match crate::searchres::rewrite(bytes, &set) {
            None => Ok(None),
            Some(crate::searchres::Rewrite::Command(c)) => Ok(Some(c)),
            Some(crate::searchres::Rewrite::Nothing) => {
                let tag = tag_of(bytes).unwrap_or_else(|| "*".into());
                self.tagged(&tag, "OK", None, "completed: the saved result ($) is empty");
                Err(())
            }
        }
    }
}

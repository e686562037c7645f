//! Commands and arguments imap-codec does not parse, handled before it runs:
//! APPEND with several messages or CATENATE, extended LIST, CANCELUPDATE, and
//! `$` (SEARCHRES) replaced by the saved result.

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
        if let Some(r) = self.cancel_update(bytes) {
            match r {
                Ok(()) => self.tagged(&tag(), "OK", None, "CANCELUPDATE completed"),
                Err(reply) => self.tagged(&tag(), reply.kind, None, &reply.text),
            }
            return true;
        }
        false
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

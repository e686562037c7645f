//! What a session knows of its selected mailbox.

use super::*;

pub(super) struct Selected {
    pub(super) id: u32,
    pub(super) name: String,
    pub(super) read_only: bool,
    pub(super) uid_validity: u32,
    /// Messages as last reported to the client, in UID (= sequence) order,
    /// with [`crate::backend::flags::RECENT`] set on those recent here.
    pub(super) msgs: Vec<MessageMeta>,
    pub(super) marker: u64,
    /// UIDs recent in this session, sorted.
    pub(super) recent: Vec<u32>,
    /// HIGHESTMODSEQ as of the last listing.
    pub(super) highest_modseq: u64,
    /// Keywords announced in FLAGS (RFC 3501 §7.2.6: a client may rely on it
    /// listing every keyword it sees in this mailbox).
    pub(super) keywords: Vec<String>,
}

impl Selected {
    /// Key of the mailbox in the shared \Recent claims.
    pub(super) fn recent_key(&self, account: &Account) -> (u64, u32, u32) {
        (account.id, self.id, self.uid_validity)
    }

    /// Sets the \Recent bit on `msgs` from `recent`.
    pub(super) fn mark_recent(recent: &[u32], msgs: &mut [MessageMeta]) {
        for m in msgs {
            if recent.binary_search(&m.uid).is_ok() {
                m.flags |= crate::backend::flags::RECENT;
            }
        }
    }

    /// Keywords of `msgs` not yet announced; adds them to the announced list.
    pub(super) fn new_keywords(&mut self) -> bool {
        let mut grew = false;
        for m in &self.msgs {
            for k in &m.keywords {
                if is_atom(k) && !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    self.keywords.push(k.clone());
                    grew = true;
                }
            }
        }
        grew
    }
}

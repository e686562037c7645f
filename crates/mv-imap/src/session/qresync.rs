//! QRESYNC (RFC 7162 §3.2): after `ENABLE QRESYNC` a client reconnecting with
//! `SELECT box (QRESYNC (uidvalidity modseq [known-uids]))` hears what it
//! missed (VANISHED (EARLIER) for messages gone, FETCH FLAGS MODSEQ for those
//! changed), `UID FETCH ... (CHANGEDSINCE m VANISHED)` does the same for a
//! range, and expunges are reported as VANISHED instead of EXPUNGE.
//!
//! What left a mailbox after a MODSEQ comes from [`Backend::vanished`]: the
//! store keeps a tombstone (change number, folder, UID) for every message
//! expunged or moved out, for the life of the mailbox, so the answer is exact
//! however old the client's MODSEQ is.

use super::*;

/// The UIDs of `uids` within `set` (a UID set, `*` being `max`).
fn within(uids: Vec<u32>, set: Option<&SequenceSet>, max: u32) -> Vec<u32> {
    let Some(set) = set else {
        return uids;
    };
    let ranges = convert::ranges(set, max, false).unwrap_or_default();
    uids.into_iter()
        .filter(|u| ranges.iter().any(|(a, b)| (a..=b).contains(&u)))
        .collect()
}

impl<B: Backend> Session<B> {
    /// `* VANISHED (EARLIER) uids` for the UIDs (within `set`) that left the
    /// selected mailbox in changes after `since`.
    pub(super) async fn vanished_earlier(&mut self, since: u64, set: Option<&SequenceSet>) -> Res {
        let (acct, id, _) = self.sel()?;
        let gone = self.call(move |b| b.vanished(&acct, id, since)).await?;
        // `*` in a UID set is the largest UID there is or was.
        let max = gone
            .last()
            .copied()
            .into_iter()
            .chain(
                self.selected
                    .as_ref()
                    .and_then(|s| s.msgs.last().map(|m| m.uid)),
            )
            .max()
            .unwrap_or(0);
        let gone = within(gone, set, max);
        if !gone.is_empty() {
            let line = format!("VANISHED (EARLIER) {}", messages::compress_set(&gone));
            self.untagged(&line);
        }
        Ok(())
    }

    /// The resynchronisation a SELECT with QRESYNC asks for, sent before its
    /// tagged OK: nothing when the UIDVALIDITY differs (the client starts over).
    pub(super) async fn qresync_select(
        &mut self,
        uid_validity: u32,
        modseq: u64,
        known_uids: Option<&SequenceSet>,
    ) -> Res {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        if sel.uid_validity != uid_validity {
            return Ok(());
        }
        self.vanished_earlier(modseq, known_uids).await?;
        let sel = self.selected.as_ref().expect("checked");
        let lines: Vec<String> = sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.modseq > modseq)
            .map(|(i, m)| {
                format!(
                    "{} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                    i + 1,
                    m.uid,
                    flag_list(m.flags, &m.keywords),
                    m.modseq
                )
            })
            .collect();
        for l in lines {
            self.untagged(&l);
        }
        Ok(())
    }
}

/// How expunged messages are reported: `* VANISHED uids` once QRESYNC is
/// enabled, else one `* n EXPUNGE` per message, highest first (so each number
/// is right when it is read). `gone`: (index in the listing before, UID),
/// ascending.
pub(super) fn expunge_lines(qresync: bool, gone: &[(usize, u32)], lines: &mut Vec<String>) {
    if gone.is_empty() {
        return;
    }
    if qresync {
        let uids: Vec<u32> = gone.iter().map(|g| g.1).collect();
        lines.push(format!("VANISHED {}", messages::compress_set(&uids)));
    } else {
        lines.extend(gone.iter().rev().map(|(i, _)| format!("{} EXPUNGE", i + 1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expunges_as_vanished_or_numbers() {
        let mut l = Vec::new();
        expunge_lines(false, &[(1, 5), (3, 9)], &mut l);
        assert_eq!(l, ["4 EXPUNGE", "2 EXPUNGE"]);
        l.clear();
        expunge_lines(true, &[(1, 5), (2, 6), (3, 9)], &mut l);
        assert_eq!(l, ["VANISHED 5:6,9"]);
    }

    #[test]
    fn vanished_within_the_set() {
        let set = SequenceSet::try_from("2:4,9:*").unwrap();
        assert_eq!(
            within(vec![1, 2, 4, 5, 9, 12], Some(&set), 12),
            [2, 4, 9, 12]
        );
        assert_eq!(within(vec![1, 5], None, 5), [1, 5]);
    }
}

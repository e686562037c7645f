//! SORT and THREAD (RFC 5256): SEARCH, then ordering by header fields.

use super::context::SortedContext;
use super::*;
use crate::sort::{self, Fields, SortKey};
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey as Key};
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;

/// Messages whose headers are read per backend call.
const HEADER_BATCH: usize = 512;

impl<B: Backend> Session<B> {
    /// The matching messages' sort fields with their sequence indexes, in
    /// sequence order.
    async fn matching_fields(
        &mut self,
        charset: &str,
        keys: &[SearchKey<'_>],
    ) -> Result<Vec<(usize, Fields)>, Reply> {
        let cs = charset.to_ascii_uppercase();
        if cs != "UTF-8" && cs != "US-ASCII" {
            return Err(no(
                Some("BADCHARSET (UTF-8 US-ASCII)"),
                "unsupported charset",
            ));
        }
        let found = self.search_uids(keys).await?;
        self.fields_of(&found).await
    }

    /// The sort fields of the listed messages (UIDs ascending) that the
    /// session knows, with their sequence indexes, in sequence order. Headers
    /// are read in batches and dropped once parsed.
    pub(super) async fn fields_of(&mut self, uids: &[u32]) -> Result<Vec<(usize, Fields)>, Reply> {
        let (acct, id, _) = self.sel()?;
        let sel = self.selected.as_ref().expect("sel");
        let picked: Vec<(usize, MessageMeta)> = sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| uids.binary_search(&m.uid).is_ok())
            .map(|(i, m)| (i, m.clone()))
            .collect();
        let mut out = Vec::with_capacity(picked.len());
        for chunk in picked.chunks(HEADER_BATCH) {
            let uids: Vec<u32> = chunk.iter().map(|(_, m)| m.uid).collect();
            let a = acct.clone();
            let heads = self.call(move |b| b.messages(&a, id, &uids, true)).await?;
            let heads: std::collections::HashMap<u32, Vec<u8>> = heads.into_iter().collect();
            for (i, m) in chunk {
                // A message expunged meanwhile sorts by what the listing knows.
                let h = heads.get(&m.uid).map(Vec::as_slice).unwrap_or(b"");
                let h = &h[..header_end(h)];
                out.push((*i, Fields::new(m, h)));
            }
        }
        Ok(out)
    }

    fn number(&self, i: usize, uid: bool) -> u32 {
        let sel = self.selected.as_ref().expect("sel");
        if uid { sel.msgs[i].uid } else { i as u32 + 1 }
    }

    pub(super) async fn sort(
        &mut self,
        tag: &str,
        criteria: &[SortCriterion],
        charset: &str,
        keys: &[SearchKey<'_>],
        uid: bool,
    ) -> Res {
        let order = sort_order(criteria);
        let returning = self.returning.take();
        let msgs = self.matching_fields(charset, keys).await?;
        let fields: Vec<Fields> = msgs.iter().map(|(_, f)| f.clone()).collect();
        let sorted = sort::sort(&fields, &order);
        let nums: Vec<u32> = sorted
            .iter()
            .map(|&k| self.number(msgs[k].0, uid))
            .collect();
        let sel = self.selected.as_ref().expect("sel");
        let sorted_uids: Vec<u32> = sorted.iter().map(|&k| sel.msgs[msgs[k].0].uid).collect();
        let by_uid: Option<std::collections::HashMap<u32, Fields>> =
            returning.as_ref().is_some_and(|o| o.update).then(|| {
                msgs.into_iter()
                    .map(|(i, f)| (sel.msgs[i].uid, f))
                    .collect()
            });
        if let Some(opts) = returning.as_ref().filter(|o| o.save) {
            // MIN/MAX of a SORT are its first and last in sort order.
            let mut uids = opts.saved(&sorted_uids);
            uids.sort_unstable();
            self.saved = uids;
        }
        if let Some(by_uid) = by_uid {
            let sorted = SortedContext::new(order, by_uid);
            self.add_context(tag, uid, sorted_uids, Some(sorted))?;
        }
        let line = match returning {
            Some(opts) if opts.save_only() => String::new(),
            Some(opts) => crate::esearch::response(tag, uid, &opts, &nums, None),
            None => {
                let mut line = String::from("SORT");
                for n in nums {
                    line.push_str(&format!(" {n}"));
                }
                line
            }
        };
        if !line.is_empty() {
            self.untagged(&line);
        }
        if uid {
            self.refresh(true).await;
        }
        Ok(())
    }

    pub(super) async fn thread(
        &mut self,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: &str,
        keys: &[SearchKey<'_>],
        uid: bool,
    ) -> Res {
        let references = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(a) => {
                return Err(bad(format!("unknown threading algorithm {}", a.as_ref())));
            }
        };
        let msgs = self.matching_fields(charset, keys).await?;
        let fields: Vec<Fields> = msgs.iter().map(|(_, f)| f.clone()).collect();
        let tree = if references {
            sort::thread_references(&fields)
        } else {
            sort::thread_orderedsubject(&fields)
        };
        let text = sort::thread_text(&tree, &|k| self.number(msgs[k].0, uid));
        let line = if text.is_empty() {
            "THREAD".to_string()
        } else {
            format!("THREAD {text}")
        };
        self.untagged(&line);
        if uid {
            self.refresh(true).await;
        }
        Ok(())
    }
}

/// The sort keys of a SORT command, each with whether it is reversed.
pub(super) fn sort_order(criteria: &[SortCriterion]) -> Vec<(SortKey, bool)> {
    criteria
        .iter()
        .map(|c| {
            let k = match c.key {
                Key::Arrival => SortKey::Arrival,
                Key::Cc => SortKey::Cc,
                Key::Date => SortKey::Date,
                Key::From => SortKey::From,
                Key::Size => SortKey::Size,
                Key::Subject => SortKey::Subject,
                Key::To => SortKey::To,
                Key::DisplayFrom => SortKey::DisplayFrom,
                Key::DisplayTo => SortKey::DisplayTo,
            };
            (k, c.reverse)
        })
        .collect()
}

/// Length of the header section (through the empty line), or all of it.
fn header_end(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len())
}

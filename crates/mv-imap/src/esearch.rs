//! ESEARCH (RFC 4731), ESORT and CONTEXT=SEARCH / CONTEXT=SORT (RFC 5267:
//! CONTEXT, PARTIAL, UPDATE) result options. imap-codec does not parse `SEARCH RETURN (...)`, so the
//! options are taken off the command here and the rest is parsed as a plain
//! SEARCH or SORT.

/// Which results a `RETURN (...)` asks for; none set means ALL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnOptions {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// PARTIAL low:high: the results at these positions (1-based, inclusive).
    pub partial: Option<(u32, u32)>,
    /// UPDATE: keep the result up to date with ADDTO / REMOVEFROM.
    pub update: bool,
    /// SAVE: keep the result for `$` (SEARCHRES, RFC 5182).
    pub save: bool,
}

impl ReturnOptions {
    /// Only SAVE: the result is kept, not sent (RFC 5182 §2.4).
    pub fn save_only(&self) -> bool {
        self.save && !(self.min || self.max || self.all || self.count || self.partial.is_some())
    }

    /// The results SAVE keeps: only MIN/MAX when those alone are asked for.
    pub fn saved(&self, nums: &[u32]) -> Vec<u32> {
        if (self.min || self.max) && !(self.all || self.count || self.partial.is_some()) {
            let mut v: Vec<u32> = Vec::new();
            if self.min {
                v.extend(nums.first());
            }
            if self.max {
                v.extend(nums.last());
            }
            v.sort_unstable();
            v.dedup();
            v
        } else {
            nums.to_vec()
        }
    }

    fn normalized(mut self) -> ReturnOptions {
        // RETURN () means ALL; RETURN (UPDATE) or (SAVE) alone return no data.
        if !(self.min
            || self.max
            || self.all
            || self.count
            || self.partial.is_some()
            || self.update
            || self.save)
        {
            self.all = true;
        }
        self
    }
}

/// `low:high` of PARTIAL: two positions from 1, in either order; `*` has no
/// meaning for a position.
fn partial_range(v: &[u8]) -> Result<(u32, u32), String> {
    let text = String::from_utf8_lossy(v);
    let bad = || format!("PARTIAL needs a range of positions like 1:100, not {text}");
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let pos = |x: &str| x.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad);
    let (a, b) = (pos(a)?, pos(b)?);
    Ok((a.min(b), a.max(b)))
}

/// `tag [UID] SEARCH|SORT RETURN (opts) rest` → (`tag [UID] SEARCH|SORT rest`,
/// options). None when the command has no RETURN; Err for options this
/// server does not know.
pub fn split_return(cmd: &[u8]) -> Option<Result<(Vec<u8>, ReturnOptions), String>> {
    // Only the command's head is looked at: at most a few words.
    let head = &cmd[..cmd.len().min(512)];
    let mut words = Vec::new();
    let mut pos = 0;
    for _ in 0..3 {
        let start = pos;
        while pos < head.len() && head[pos] != b' ' {
            pos += 1;
        }
        words.push((start, pos));
        if pos >= head.len() {
            break;
        }
        pos += 1;
    }
    let word = |i: usize| -> Option<&[u8]> { words.get(i).map(|(a, b)| &head[*a..*b]) };
    let is = |w: Option<&[u8]>, s: &str| w.is_some_and(|w| w.eq_ignore_ascii_case(s.as_bytes()));
    let verb = if is(word(1), "UID") { 2 } else { 1 };
    if !(is(word(verb), "SEARCH") || is(word(verb), "SORT")) {
        return None;
    }
    let after_verb = words.get(verb)?.1 + 1;
    let rest = cmd.get(after_verb..)?;
    if rest.len() < 7 || !rest[..7].eq_ignore_ascii_case(b"RETURN ") {
        return None;
    }
    let list = &rest[7..];
    if list.first() != Some(&b'(') {
        return Some(Err("RETURN needs a parenthesized list".into()));
    }
    let Some(close) = list.iter().position(|&b| b == b')') else {
        return Some(Err("RETURN list is not closed".into()));
    };
    let mut opts = ReturnOptions::default();
    let mut words = list[1..close]
        .split(|&b| b == b' ')
        .filter(|o| !o.is_empty());
    while let Some(o) = words.next() {
        match o.to_ascii_uppercase().as_slice() {
            b"MIN" => opts.min = true,
            b"MAX" => opts.max = true,
            b"ALL" => opts.all = true,
            b"COUNT" => opts.count = true,
            b"UPDATE" => opts.update = true,
            b"SAVE" => opts.save = true,
            // A hint that the search will be used again (RFC 5267 §4.2); every
            // result is computed afresh here, so it changes nothing.
            b"CONTEXT" => {}
            b"PARTIAL" => match partial_range(words.next().unwrap_or_default()) {
                Ok(r) => opts.partial = Some(r),
                Err(e) => return Some(Err(e)),
            },
            other => {
                return Some(Err(format!(
                    "unknown RETURN option {}",
                    String::from_utf8_lossy(other)
                )));
            }
        }
    }
    let tail = list.get(close + 1..).unwrap_or_default();
    let tail = tail.strip_prefix(b" ").unwrap_or(tail);
    let mut out = cmd[..after_verb].to_vec();
    out.extend_from_slice(tail);
    Some(Ok((out, opts.normalized())))
}

/// The ESEARCH response for `nums` (in result order: ascending for SEARCH,
/// sort order for SORT); `modseq` is appended when given.
pub fn response(
    tag: &str,
    uid: bool,
    opts: &ReturnOptions,
    nums: &[u32],
    modseq: Option<u64>,
) -> String {
    let mut line = format!("ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    if !nums.is_empty() {
        if opts.min {
            line.push_str(&format!(" MIN {}", nums.first().expect("non-empty")));
        }
        if opts.max {
            line.push_str(&format!(" MAX {}", nums.last().expect("non-empty")));
        }
        if opts.all {
            line.push_str(&format!(" ALL {}", ordered_set(nums)));
        }
    }
    if opts.count {
        line.push_str(&format!(" COUNT {}", nums.len()));
    }
    if let Some((low, high)) = opts.partial {
        let from = (low as usize - 1).min(nums.len());
        let to = (high as usize).min(nums.len());
        let part = &nums[from..to];
        let set = if part.is_empty() {
            "NIL".to_string()
        } else {
            ordered_set(part)
        };
        line.push_str(&format!(" PARTIAL ({low}:{high} {set})"));
    }
    if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line
}

/// A context position (from 1) and the results placed there, in result order.
pub type Placement = (usize, Vec<u32>);

/// How a context's result `old` becomes `new` (both in result order; the
/// results both hold keep their relative order): the REMOVEFROM placements,
/// applied first, then the ADDTO placements. Each is applied in turn to the
/// list the previous one left (RFC 5267 §4.3.2): a removal's position is
/// where its first result stands at that moment, an addition's is where its
/// first result will stand. Runs of neighbours share one placement.
pub fn placements(old: &[u32], new: &[u32]) -> (Vec<Placement>, Vec<Placement>) {
    let in_new: std::collections::HashSet<u32> = new.iter().copied().collect();
    let in_old: std::collections::HashSet<u32> = old.iter().copied().collect();
    let mut removed: Vec<Placement> = Vec::new();
    let mut gone = 0;
    let mut last_gone = None;
    for (i, u) in old.iter().enumerate() {
        if in_new.contains(u) {
            continue;
        }
        match removed.last_mut() {
            Some((_, run)) if last_gone == Some(i.wrapping_sub(1)) => run.push(*u),
            _ => removed.push((i - gone + 1, vec![*u])),
        }
        gone += 1;
        last_gone = Some(i);
    }
    let mut added: Vec<Placement> = Vec::new();
    let mut last_added = None;
    for (j, u) in new.iter().enumerate() {
        if in_old.contains(u) {
            continue;
        }
        match added.last_mut() {
            Some((_, run)) if last_added == Some(j.wrapping_sub(1)) => run.push(*u),
            _ => added.push((j + 1, vec![*u])),
        }
        last_added = Some(j);
    }
    (removed, added)
}

/// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (position set ...)`: a change
/// of an UPDATE result (RFC 5267 §4.3).
pub fn update_response(tag: &str, uid: bool, added: bool, placed: &[Placement]) -> String {
    let pairs: Vec<String> = placed
        .iter()
        .map(|(pos, nums)| format!("{pos} {}", ordered_set(nums)))
        .collect();
    format!(
        "ESEARCH (TAG \"{tag}\"){} {} ({})",
        if uid { " UID" } else { "" },
        if added { "ADDTO" } else { "REMOVEFROM" },
        pairs.join(" ")
    )
}

/// A sequence set keeping the given order: runs of consecutive ascending
/// numbers become ranges (`1:3,7,5`).
pub fn ordered_set(nums: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j].wrapping_add(1) {
            j += 1;
        }
        parts.push(if i == j {
            nums[i].to_string()
        } else {
            format!("{}:{}", nums[i], nums[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_is_split_off() {
        let (cmd, o) = split_return(b"a1 UID SEARCH RETURN (min COUNT) 1:3 SEEN\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a1 UID SEARCH 1:3 SEEN\r\n");
        assert!(o.min && o.count && !o.all && !o.max);
        let (cmd, o) = split_return(b"a SORT RETURN () (ARRIVAL) UTF-8 ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a SORT (ARRIVAL) UTF-8 ALL\r\n");
        assert!(o.all);
        assert!(split_return(b"a SEARCH ALL\r\n").is_none());
        assert!(split_return(b"a FETCH 1 RETURN\r\n").is_none());
        assert!(
            split_return(b"a SEARCH RETURN (BOGUS) ALL\r\n")
                .unwrap()
                .is_err()
        );
        let (_, o) = split_return(b"a SEARCH RETURN (PARTIAL 4:2 UPDATE) ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(o.partial, Some((2, 4)));
        assert!(o.update && !o.all);
        for bad in ["1", "1:*", "*:1", "0:3"] {
            let cmd = format!("a SEARCH RETURN (PARTIAL {bad}) ALL\r\n");
            assert!(split_return(cmd.as_bytes()).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let all = ReturnOptions::default().normalized();
        assert_eq!(
            response("t", true, &all, &[1, 2, 3, 5], None),
            "ESEARCH (TAG \"t\") UID ALL 1:3,5"
        );
        let count = ReturnOptions {
            count: true,
            ..Default::default()
        };
        assert_eq!(
            response("t", false, &count, &[], Some(4)),
            "ESEARCH (TAG \"t\") COUNT 0"
        );
        assert_eq!(ordered_set(&[5, 1, 2, 3]), "5,1:3");
        let partial = ReturnOptions {
            partial: Some((2, 4)),
            ..Default::default()
        };
        assert_eq!(
            response("t", false, &partial, &[1, 2, 4, 5], None),
            "ESEARCH (TAG \"t\") PARTIAL (2:4 2,4:5)"
        );
        assert_eq!(
            response("t", false, &partial, &[1], None),
            "ESEARCH (TAG \"t\") PARTIAL (2:4 NIL)"
        );
        assert_eq!(
            update_response("t", true, true, &[(2, vec![3, 4, 9])]),
            "ESEARCH (TAG \"t\") UID ADDTO (2 3:4,9)"
        );
        assert_eq!(
            update_response("t", false, false, &[(1, vec![7]), (3, vec![5, 4])]),
            "ESEARCH (TAG \"t\") REMOVEFROM (1 7 3 5,4)"
        );
    }

    /// Applies placements as a client does (RFC 5267 §4.3.3, §4.3.4).
    fn apply(mut list: Vec<u32>, removed: &[Placement], added: &[Placement]) -> Vec<u32> {
        for (pos, run) in removed {
            assert_eq!(&list[pos - 1..pos - 1 + run.len()], run.as_slice());
            list.drain(pos - 1..pos - 1 + run.len());
        }
        for (pos, run) in added {
            for (k, u) in run.iter().enumerate() {
                list.insert(pos - 1 + k, *u);
            }
        }
        list
    }

    #[test]
    fn placements_turn_the_old_result_into_the_new() {
        let cases: &[(&[u32], &[u32])] = &[
            (&[], &[2, 4]),
            (&[2, 4], &[]),
            (&[5, 3, 4, 2, 1], &[5, 4, 2]),
            (&[5, 4, 2], &[9, 5, 7, 8, 4, 2, 6]),
            (&[1, 2, 3, 4, 5, 6], &[10, 2, 11, 4, 6, 12]),
            (&[9, 8, 7], &[9, 8, 7]),
        ];
        for (old, new) in cases {
            let (removed, added) = placements(old, new);
            assert_eq!(
                apply(old.to_vec(), &removed, &added),
                new.to_vec(),
                "{old:?} -> {new:?}"
            );
        }
        // Neighbours share a placement.
        assert_eq!(placements(&[], &[2, 4]).1, vec![(1, vec![2, 4])]);
        assert_eq!(
            placements(&[1, 2, 3, 4, 5, 6], &[1, 4]).0,
            vec![(2, vec![2, 3]), (3, vec![5, 6])]
        );
    }

    proptest::proptest! {
        #[test]
        fn placements_hold_for_any_change(
            old in proptest::sample::subsequence((1u32..60).collect::<Vec<_>>(), 0..40),
            new in proptest::sample::subsequence((1u32..60).collect::<Vec<_>>(), 0..40),
            reversed in proptest::bool::ANY,
        ) {
            // Any order both keep: ascending (SEARCH) or reversed (a SORT).
            let (mut old, mut new) = (old, new);
            if reversed {
                old.reverse();
                new.reverse();
            }
            let (removed, added) = placements(&old, &new);
            proptest::prop_assert_eq!(apply(old, &removed, &added), new);
        }
    }
}

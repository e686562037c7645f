//! ESEARCH (RFC 4731), ESORT and CONTEXT=SEARCH (RFC 5267: PARTIAL, UPDATE)
//! result options. imap-codec does not parse `SEARCH RETURN (...)`, so the
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

/// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (position set)`: a change of
/// an UPDATE result (RFC 5267 §4.3).
pub fn update_response(tag: &str, uid: bool, added: bool, position: usize, nums: &[u32]) -> String {
    format!(
        "ESEARCH (TAG \"{tag}\"){} {} ({position} {})",
        if uid { " UID" } else { "" },
        if added { "ADDTO" } else { "REMOVEFROM" },
        ordered_set(nums)
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
            update_response("t", true, true, 2, &[3, 4, 9]),
            "ESEARCH (TAG \"t\") UID ADDTO (2 3:4,9)"
        );
    }
}

//! Modified UTF-7 (RFC 3501 §5.1.3), the encoding of mailbox names on the wire.
//! Decoding is strict: anything a conforming client cannot have produced
//! (unterminated shifts, shifted printable ASCII, bad padding, lone surrogates)
//! is an error, so one name never has two spellings.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 mailbox name: {0}")]
pub struct Utf7Error(pub &'static str);

pub fn encode(s: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

pub fn decode(s: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !(0x20..=0x7e).contains(&c) {
            return Err(Utf7Error(
                "characters outside printable ASCII must be encoded",
            ));
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = s[i + 1..]
            .iter()
            .position(|&b| b == b'-')
            .ok_or(Utf7Error("an '&' shift is not terminated by '-'"))?
            + i
            + 1;
        let run = &s[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units = Vec::new();
        for &b in run {
            let v = B64
                .iter()
                .position(|&x| x == b)
                .ok_or(Utf7Error("invalid character in an encoded run"))?
                as u32;
            bits = bits << 6 | v;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        if nbits >= 6 || bits != 0 {
            return Err(Utf7Error("bad padding in an encoded run"));
        }
        let text = String::from_utf16(&units)
            .map_err(|_| Utf7Error("invalid UTF-16 in an encoded run"))?;
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return Err(Utf7Error("printable ASCII must not be encoded"));
        }
        out.push_str(&text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "INBOX",
            "Entwürfe",
            "A&B",
            "日本語/テスト",
            "x😀y",
            "~peter/mail/台北/日本語",
        ] {
            let e = encode(s);
            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{e}");
            assert_eq!(decode(e.as_bytes()).unwrap(), s);
        }
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode("A&B"), "A&-B");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"&Jjo"[..],
            b"&Jjo!-",
            b"&AGE-",
            b"caf\xc3\xa9",
            b"&2D0-",
            b"&U,BTF-",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

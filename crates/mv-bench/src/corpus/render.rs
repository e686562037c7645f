//! Rendering a planned message to bytes: headers folded as mail clients fold
//! them, text, HTML and base64 attachment parts; and the fixed-size messages of
//! the LMTP scenario.

use super::{
    Attachment, AttachmentData, Corpus, EPOCH_MS, FORMAT, Kind, MessagePlan, cap, new_subject,
};
use crate::rng::SplitMix64;
use crate::words;
use base64::Engine;

fn rfc2822(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("corpus dates are in range")
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// Appends `name: value` folded at commas so that no line passes ~76 columns.
fn header_list(out: &mut Vec<u8>, name: &str, items: &[String]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b":");
    let mut col = name.len() + 1;
    for (k, it) in items.iter().enumerate() {
        let piece = if k + 1 < items.len() {
            format!(" {it},")
        } else {
            format!(" {it}")
        };
        if col + piece.len() > 76 && col > name.len() + 1 {
            out.extend_from_slice(b"\r\n");
            col = 0;
        }
        out.extend_from_slice(piece.as_bytes());
        col += piece.len();
    }
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Wrapped prose paragraphs, CRLF line ends, until `out` has grown by at least
/// `bytes` (it stops at the end of a line, so it may overshoot by one line).
fn prose(rng: &mut SplitMix64, out: &mut Vec<u8>, bytes: usize, prefix: &str) {
    let start = out.len();
    while out.len() - start < bytes {
        let sentences = rng.range(2, 6);
        let mut line_len = 0;
        out.extend_from_slice(prefix.as_bytes());
        for _ in 0..sentences {
            let n = rng.range(5, 18);
            for w in 0..n {
                let word = rng.pick_str(words::WORDS);
                let word: String = if w == 0 {
                    cap(word)
                } else {
                    (*word).to_string()
                };
                if line_len + word.len() + 1 > 72 {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(prefix.as_bytes());
                    line_len = 0;
                } else if line_len > 0 {
                    out.push(b' ');
                    line_len += 1;
                }
                out.extend_from_slice(word.as_bytes());
                line_len += word.len();
            }
            out.push(b'.');
            line_len += 1;
        }
        out.extend_from_slice(b"\r\n\r\n");
        if out.len() - start >= bytes {
            break;
        }
    }
}

fn signature(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"-- \r\n");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A plain-text body of about `bytes` bytes (a reply quotes some earlier text).
fn text_body(rng: &mut SplitMix64, plan: &MessagePlan, bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let quoted = plan.in_reply_to.is_some();
    let own = if quoted { bytes / 2 } else { bytes };
    prose(rng, out, own.saturating_sub(80), "");
    signature(out, &plan.from_name);
    if quoted {
        out.extend_from_slice(
            format!(
                "\r\nOn {}, someone wrote:\r\n",
                rfc2822(plan.date_ms - 3_600_000)
            )
            .as_bytes(),
        );
        let left = bytes.saturating_sub(out.len() - start);
        prose(rng, out, left, "> ");
    }
}

fn html_body(rng: &mut SplitMix64, bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(b"<html><head><meta charset=\"utf-8\"></head><body>\r\n");
    while out.len() - start < bytes.saturating_sub(20) {
        out.extend_from_slice(b"<p>");
        let mut para = Vec::new();
        prose(rng, &mut para, 200, "");
        while para.ends_with(b"\r\n") {
            para.truncate(para.len() - 2);
        }
        out.extend_from_slice(&para);
        out.extend_from_slice(b"</p>\r\n");
    }
    out.extend_from_slice(b"</body></html>\r\n");
}

/// Base64 of `raw` in 76-column lines.
fn base64_lines(raw: &[u8], out: &mut Vec<u8>) {
    let eng = &base64::engine::general_purpose::STANDARD;
    let mut buf = [0u8; 80];
    for chunk in raw.chunks(57) {
        let n = eng
            .encode_slice(chunk, &mut buf)
            .expect("76 bytes fit in 80");
        out.extend_from_slice(&buf[..n]);
        out.extend_from_slice(b"\r\n");
    }
}

fn attachment_bytes(rng: &mut SplitMix64, a: &Attachment) -> Vec<u8> {
    let size = a.size as usize;
    let mut raw = Vec::with_capacity(size + 200);
    match a.data {
        AttachmentData::Binary => {
            raw.resize(size, 0);
            rng.fill_bytes(&mut raw);
        }
        AttachmentData::Text if a.content_type == "text/csv" => {
            raw.extend_from_slice(b"date,order,product,quantity,price,status\r\n");
            while raw.len() < size {
                let line = format!(
                    "2025-{:02}-{:02},ORD-{},{},{},{}.{:02},{}\r\n",
                    rng.range(1, 12),
                    rng.range(1, 28),
                    rng.range(10000, 99999),
                    rng.pick_str(words::PRODUCTS),
                    rng.range(1, 500),
                    rng.range(1, 9999),
                    rng.below(100),
                    rng.pick_str(&["shipped", "pending", "returned", "invoiced"])
                );
                raw.extend_from_slice(line.as_bytes());
            }
            raw.truncate(size);
        }
        AttachmentData::Text => {
            while raw.len() < size {
                let line = format!(
                    "2025-{:02}-{:02}T{:02}:{:02}:{:02}Z {} mailbox[{}]: {} {} {} took {} ms\n",
                    rng.range(1, 12),
                    rng.range(1, 28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60),
                    rng.pick_str(&["INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"]),
                    rng.range(100, 32000),
                    rng.pick_str(words::WORDS),
                    rng.pick_str(words::WORDS),
                    rng.pick_str(words::WORDS),
                    rng.range(1, 2000)
                );
                raw.extend_from_slice(line.as_bytes());
            }
            raw.truncate(size);
        }
    }
    raw
}

pub(super) fn render(corpus: &Corpus, plan: &MessagePlan, rng: &mut SplitMix64) -> Vec<u8> {
    let mut out = Vec::with_capacity(plan.target_size as usize + 1024);
    let acc = |a: usize| {
        let a = &corpus.accounts[a];
        format!("\"{}\" <{}>", a.display_name, a.email)
    };
    header(&mut out, "Message-ID", &format!("<{}>", plan.message_id));
    header(&mut out, "Date", &rfc2822(plan.date_ms));
    header(
        &mut out,
        "From",
        &format!("\"{}\" <{}>", plan.from_name, plan.from),
    );
    // Long lists: the first few in To, the rest in Cc.
    let all: Vec<String> = plan.rcpts.iter().map(|&a| acc(a)).collect();
    let split = if all.len() > 3 {
        all.len().div_ceil(2)
    } else {
        all.len()
    };
    header_list(&mut out, "To", &all[..split]);
    let mut cc: Vec<String> = all[split..].to_vec();
    if let Some(x) = &plan.external_cc {
        cc.push(x.clone());
    }
    if !cc.is_empty() {
        header_list(&mut out, "Cc", &cc);
    }
    header(&mut out, "Subject", &plan.subject);
    if let Some(r) = &plan.in_reply_to {
        header(&mut out, "In-Reply-To", &format!("<{r}>"));
        let refs: Vec<String> = plan.references.iter().map(|r| format!("<{r}>")).collect();
        header_list(&mut out, "References", &refs);
    }
    header(&mut out, "X-Mailer", rng.pick_str(words::MAILERS));
    header(&mut out, "MIME-Version", "1.0");
    let boundary = format!("=_mvb_{}_{:016x}", plan.index, rng.next_u64());
    let target = plan.target_size as usize;
    match plan.kind {
        Kind::Text => {
            header(
                &mut out,
                "Content-Type",
                "text/plain; charset=utf-8; format=flowed",
            );
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            let left = target.saturating_sub(out.len());
            text_body(rng, plan, left, &mut out);
        }
        Kind::Alternative => {
            header(
                &mut out,
                "Content-Type",
                &format!("multipart/alternative; boundary=\"{boundary}\""),
            );
            out.extend_from_slice(b"\r\nThis is a multi-part message in MIME format.\r\n");
            let left = target.saturating_sub(out.len() + 300);
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            header(&mut out, "Content-Type", "text/plain; charset=utf-8");
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            text_body(rng, plan, left * 2 / 5, &mut out);
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            header(&mut out, "Content-Type", "text/html; charset=utf-8");
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            html_body(rng, left * 3 / 5, &mut out);
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
        Kind::Attachments => {
            header(
                &mut out,
                "Content-Type",
                &format!("multipart/mixed; boundary=\"{boundary}\""),
            );
            out.extend_from_slice(b"\r\nThis is a multi-part message in MIME format.\r\n");
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            header(&mut out, "Content-Type", "text/plain; charset=utf-8");
            header(&mut out, "Content-Transfer-Encoding", "7bit");
            out.extend_from_slice(b"\r\n");
            let text = rng.range(1024, 3 * 1024) as usize;
            text_body(rng, plan, text, &mut out);
            for a in &plan.attachments {
                out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                header(
                    &mut out,
                    "Content-Type",
                    &format!("{}; name=\"{}\"", a.content_type, a.filename),
                );
                header(
                    &mut out,
                    "Content-Disposition",
                    &format!("attachment; filename=\"{}\"", a.filename),
                );
                header(&mut out, "Content-Transfer-Encoding", "base64");
                out.extend_from_slice(b"\r\n");
                let raw = attachment_bytes(rng, a);
                base64_lines(&raw, &mut out);
            }
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
    }
    out
}

/// A text/plain message of exactly `size` bytes from `from` to `to` (the LMTP
/// scenario's fixed-size messages), deterministic from `(seed, index)`.
pub fn fixed_size_message(seed: u64, index: u64, from: &str, to: &str, size: usize) -> Vec<u8> {
    let mut rng = SplitMix64::stream(seed, 20, index);
    let mut out = Vec::with_capacity(size + 256);
    header(
        &mut out,
        "Message-ID",
        &format!("<{}>", fixed_message_id(seed, index)),
    );
    header(&mut out, "Date", &rfc2822(EPOCH_MS + index as i64 * 1000));
    header(&mut out, "From", &format!("<{from}>"));
    header(&mut out, "To", &format!("<{to}>"));
    header(&mut out, "Subject", &new_subject(&mut rng));
    header(&mut out, "MIME-Version", "1.0");
    header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    header(&mut out, "Content-Transfer-Encoding", "7bit");
    out.extend_from_slice(b"\r\n");
    let left = size.saturating_sub(out.len());
    prose(&mut rng, &mut out, left, "");
    // Exactly `size`: cut, never leaving a bare CR, and end with CRLF.
    out.truncate(size.saturating_sub(2));
    while matches!(out.last(), Some(b'\r' | b'\n')) {
        out.pop();
    }
    while out.len() + 2 < size {
        out.push(b'.');
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The Message-ID (without brackets) of [`fixed_size_message`]`(seed, index, ..)`.
pub fn fixed_message_id(seed: u64, index: u64) -> String {
    format!("mvb{FORMAT}.fixed.{seed:x}.{index}@corpus.example")
}

//! The trace headers LMTP delivery puts before a message, one set per
//! recipient, as Zimbra and Dovecot do: `Return-Path` (the envelope sender,
//! RFC 5321 §4.4), `Delivered-To` (the recipient) and a `Received` line
//! naming the client (LHLO name and address), this server, the protocol, the
//! delivery id, the recipient and the time. Administrators trace mail with
//! them. Each can be turned off in the local config (`lmtp_add_return_path`,
//! `lmtp_add_delivered_to`, `lmtp_add_received`; all on by default).
//!
//! The received bytes follow unchanged: the store keeps these lines with the
//! recipient's message and the received bytes once for all recipients
//! (`Store::deliver_with_prefixes`).

use mv_lmtp::Origin;
use mv_types::UtcMillis;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest LHLO name written into a `Received` line (a domain's limit).
const MAX_NAME: usize = 255;

/// Which trace headers a delivery adds, and the name it signs them with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    pub return_path: bool,
    pub delivered_to: bool,
    pub received: bool,
    /// `by` of the `Received` line: this server's name (`zmhostname`).
    pub hostname: String,
}

/// One recipient's part of a delivery, for its header lines.
#[derive(Debug, Clone, Copy)]
pub struct TraceFor<'a> {
    /// The mailbox's address for `Delivered-To`.
    pub delivered_to: &'a str,
    /// The RCPT TO address that reached it, for `for <...>`.
    pub rcpt: &'a str,
}

impl TraceHeaders {
    /// All three, signed with `hostname`.
    pub fn all(hostname: &str) -> TraceHeaders {
        TraceHeaders {
            return_path: true,
            delivered_to: true,
            received: true,
            hostname: hostname.to_owned(),
        }
    }

    /// As the local config says (missing keys are on).
    pub fn from_config(cfg: &mv_home::LocalConfig, hostname: &str) -> TraceHeaders {
        TraceHeaders {
            return_path: cfg.get_bool("lmtp_add_return_path"),
            delivered_to: cfg.get_bool("lmtp_add_delivered_to"),
            received: cfg.get_bool("lmtp_add_received"),
            hostname: hostname.to_owned(),
        }
    }

    /// The header lines for one recipient, each ending in CRLF (empty when all
    /// are off). `id` names the delivery (see [`delivery_id`]).
    pub fn prefix(
        &self,
        origin: &Origin,
        mail_from: &str,
        to: TraceFor<'_>,
        id: &str,
        at: UtcMillis,
    ) -> Vec<u8> {
        let mut out = String::new();
        if self.return_path {
            out.push_str(&format!("Return-Path: <{}>\r\n", printable(mail_from)));
        }
        if self.delivered_to {
            out.push_str(&format!("Delivered-To: {}\r\n", printable(to.delivered_to)));
        }
        if self.received {
            let peer = match origin.peer {
                Some(ip) => format!(" ([{ip}])"),
                None => String::new(),
            };
            out.push_str(&format!(
                "Received: from {}{peer}\r\n\tby {} (mailvault) with LMTP id {id}\r\n\tfor <{}>; {}\r\n",
                client_name(&origin.lhlo),
                self.hostname,
                printable(to.rcpt),
                at.rfc5322()
            ));
        }
        out.into_bytes()
    }
}

/// A new delivery id: the time in milliseconds and a per-process counter, in
/// hex (`19aef2c3d41.2a`). Logged with the delivery, so a `Received` line
/// leads to its log lines.
pub fn delivery_id(at: UtcMillis) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:x}.{n:x}", at.0.max(0))
}

/// An address as it may appear in a header: the LMTP parser admits no CR or
/// LF, but a quoted local part may hold other control characters.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The client's LHLO name as a `from` clause may carry it: letters, digits
/// and `.-_:[]` (domains and address literals), at most [`MAX_NAME`]; anything
/// else is replaced, and a name left empty is `unknown`.
fn client_name(lhlo: &str) -> String {
    let name: String = lhlo
        .chars()
        .take(MAX_NAME)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_:[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            lhlo: "mx.example.org".into(),
            peer: Some("127.0.0.1".parse().unwrap()),
        }
    }

    const TO: TraceFor<'static> = TraceFor {
        delivered_to: "bob@example.com",
        rcpt: "team@example.com",
    };

    #[test]
    fn all_three_headers_in_order() {
        let t = TraceHeaders::all("mail.example.com");
        let at = UtcMillis(1_796_000_000_000);
        let p = String::from_utf8(t.prefix(&origin(), "alice@else.test", TO, "abc.1", at)).unwrap();
        let expected = format!(
            "Return-Path: <alice@else.test>\r\n\
             Delivered-To: bob@example.com\r\n\
             Received: from mx.example.org ([127.0.0.1])\r\n\
             \tby mail.example.com (mailvault) with LMTP id abc.1\r\n\
             \tfor <team@example.com>; {}\r\n",
            at.rfc5322()
        );
        assert_eq!(p, expected);
        // The date parses back to the same second.
        let date = p.rsplit("; ").next().unwrap().trim_end();
        let parsed = chrono::DateTime::parse_from_rfc2822(date).unwrap();
        assert_eq!(parsed.timestamp_millis(), at.0);
    }

    #[test]
    fn each_header_can_be_turned_off() {
        let mut t = TraceHeaders::all("h");
        t.return_path = false;
        t.received = false;
        let p = t.prefix(&origin(), "a@b", TO, "1", UtcMillis(0));
        assert_eq!(p, b"Delivered-To: bob@example.com\r\n");
        t.delivered_to = false;
        assert!(t.prefix(&origin(), "a@b", TO, "1", UtcMillis(0)).is_empty());
    }

    #[test]
    fn null_sender_and_hostile_names() {
        let t = TraceHeaders::all("h");
        let o = Origin {
            lhlo: "evil\u{7}(name) x".into(),
            peer: None,
        };
        let p = String::from_utf8(t.prefix(&o, "", TO, "1", UtcMillis(0))).unwrap();
        assert!(p.starts_with("Return-Path: <>\r\n"), "{p}");
        assert!(p.contains("Received: from evil??name??x\r\n"), "{p}");
        assert!(client_name("").eq("unknown"));
        assert_eq!(client_name(&"a".repeat(1000)).len(), MAX_NAME);
        assert_eq!(printable("a\u{1}b@c"), "a?b@c");
    }

    #[test]
    fn delivery_ids_differ() {
        let at = UtcMillis(1000);
        assert_ne!(delivery_id(at), delivery_id(at));
    }

    #[test]
    fn config_keys_turn_headers_off() {
        let mut cfg = mv_home::LocalConfig::defaults();
        assert_eq!(TraceHeaders::from_config(&cfg, "h"), TraceHeaders::all("h"));
        cfg.set("lmtp_add_received", "false").unwrap();
        let t = TraceHeaders::from_config(&cfg, "h");
        assert!(t.return_path && t.delivered_to && !t.received);
    }
}

//! Mailbox names both ways: the store's `/Inbox` is IMAP's `INBOX`.

/// IMAP name → store path.
pub(super) fn store_path(name: &str) -> String {
    match name.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("/Inbox/{rest}"),
        _ if name.eq_ignore_ascii_case("INBOX") => "/Inbox".into(),
        _ => format!("/{name}"),
    }
}

/// Store path → IMAP name.
pub(super) fn imap_name(path: &str) -> String {
    let p = path.trim_start_matches('/');
    match p.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("Inbox") => format!("INBOX/{rest}"),
        _ if p.eq_ignore_ascii_case("Inbox") => "INBOX".into(),
        _ => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for (imap, store) in [
            ("INBOX", "/Inbox"),
            ("INBOX/x", "/Inbox/x"),
            ("Sent", "/Sent"),
            ("a/b", "/a/b"),
        ] {
            assert_eq!(store_path(imap), store);
            assert_eq!(imap_name(store), imap);
        }
        assert_eq!(store_path("inbox/y"), "/Inbox/y");
    }
}

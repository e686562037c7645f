//! zmmailbox's `search` and its result table.

use super::{Cx, clip};
use crate::cmd::zmshell::{Fail, Res, line, op_err};
use mv_server::Request;
use mv_store::{Item, ItemKind};
use mv_types::UtcMillis;

/// The arguments of `search`.
#[derive(clap::Args, Debug)]
pub(super) struct Search {
    /// Item types, comma-separated: message or conversation (listed as their messages).
    #[arg(short = 't', long = "types", default_value = "message")]
    types: String,
    /// At most this many results.
    #[arg(short = 'l', long = "limit", default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Print the service's JSON answer.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// The query (several words are joined with spaces; default: in:inbox).
    query: Vec<String>,
}

pub(super) fn run(a: Search, o: &mut Cx<'_, '_>) -> Res<()> {
    for t in a.types.split(',') {
        search_type(t)?;
    }
    let limit = a.limit as usize;
    let query = if a.query.is_empty() {
        "in:inbox".to_string()
    } else {
        a.query.join(" ")
    };
    // One more than asked for tells whether there are more.
    let mut items: Vec<Item> = o.s.exec(Request::Search {
        account: o.account.clone(),
        query,
        limit: Some(limit + 1),
    })?;
    let more = items.len() > limit;
    items.truncate(limit);
    if !o.raw_if(a.verbose, &items)? {
        print_search(o.out, &items, more);
    }
    Ok(())
}

/// A `search -t` type: messages (conversations are listed as their messages).
/// Zimbra's other item types are refused by name, with where to find them.
fn search_type(t: &str) -> Res<()> {
    const SUPPORTED: &str = "message, conversation";
    let t = t.trim().to_ascii_lowercase();
    let elsewhere = match t.as_str() {
        "" | "message" | "conversation" => return Ok(()),
        "appointment" | "task" => "export the calendar with getRestURL /Calendar?fmt=ics",
        "contact" => "export the contacts with getRestURL /Contacts?fmt=vcf",
        "document" | "wiki" => "this store keeps no documents",
        _ => {
            return Err(Fail::Usage(format!(
                "search -t {t}: unknown type; -t takes {SUPPORTED}"
            )));
        }
    };
    Err(op_err(format!(
        "search -t {t}: only messages are searched here; -t takes {SUPPORTED} ({elsewhere})"
    )))
}

/// `Name <addr>` → `Name`; a bare address stays.
fn short_from(sender: &str) -> String {
    let first = sender.split(", ").next().unwrap_or_default();
    match first.split_once(" <") {
        Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"').to_string(),
        _ => first.to_string(),
    }
}

/// `MM/dd/yy HH:mm`, local time, as zmmailbox prints dates.
fn short_date(ms: i64) -> String {
    let s = UtcMillis(ms).display_local(); // 2010/11/19 13:55:08.802 +01:00
    match (s.get(2..4), s.get(5..7), s.get(8..10), s.get(11..16)) {
        (Some(y), Some(m), Some(d), Some(hm)) => format!("{m}/{d}/{y} {hm}"),
        _ => s,
    }
}

/// zmmailbox's four-letter type column.
fn item_type(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Message => "mess",
        ItemKind::Contact => "cont",
        ItemKind::Appointment => "appo",
        ItemKind::Folder => "fold",
        ItemKind::Tag => "tag",
    }
}

/// zmmailbox's search table.
fn print_search(out: &mut Vec<u8>, items: &[Item], more: bool) {
    line(out, format!("num: {}, more: {more}", items.len()));
    if items.is_empty() {
        return;
    }
    line(out, "");
    let idx_w = format!("{}.", items.len()).len();
    let id_w = items
        .iter()
        .map(|i| i.id.to_string().len())
        .max()
        .unwrap_or(2)
        .max(2);
    let row = |idx: &str, id: &str, ty: &str, from: &str, subj: &str, date: &str| {
        format!("{idx:>idx_w$}  {id:>id_w$}  {ty:<4}   {from:<20}  {subj:<50}  {date}")
    };
    line(out, row("", "Id", "Type", "From", "Subject", "Date"));
    line(
        out,
        row(
            "",
            &"-".repeat(id_w),
            "----",
            &"-".repeat(20),
            &"-".repeat(50),
            &"-".repeat(14),
        ),
    );
    for (n, i) in items.iter().enumerate() {
        let date = if i.date_ms != 0 {
            i.date_ms
        } else {
            i.received_ms
        };
        line(
            out,
            row(
                &format!("{}.", n + 1),
                &i.id.to_string(),
                item_type(i.kind),
                &clip(&short_from(&i.sender), 20),
                &clip(&i.subject, 50),
                &short_date(date),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders() {
        assert_eq!(
            short_from("Alice Example <alice@x.org>, bob@y.org"),
            "Alice Example"
        );
        assert_eq!(short_from("alice@x.org"), "alice@x.org");
    }

    #[test]
    fn types_other_than_messages_are_refused_by_name() {
        assert!(search_type("Conversation").is_ok());
        assert!(matches!(search_type("contact"), Err(Fail::Op(_))));
        assert!(matches!(search_type("blob"), Err(Fail::Usage(_))));
    }
}

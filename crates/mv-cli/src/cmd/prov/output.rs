//! zmprov's output: entries as `# name X` then sorted `attr: value` lines, lists
//! as one name per line (`-v`: entries separated by blank lines), new entries as
//! their zimbraId.

use crate::cmd::zmshell::{Res, json_out, line};
use mv_directory::{Account, Cos, DistributionList, Domain};
use mv_types::UtcMillis;
use std::collections::BTreeMap;

/// An entry of the directory, which has a zimbraId.
pub(super) trait Entry: serde::Serialize {
    fn zimbra_id(&self) -> &str;
}

macro_rules! entries {
    ($($t:ty),*) => {$(
        impl Entry for $t {
            fn zimbra_id(&self) -> &str {
                &self.id
            }
        }
    )*};
}
entries!(Account, Cos, DistributionList, Domain);

/// `create*` commands print the new entry's zimbraId, as zmprov does.
pub(super) fn print_id(out: &mut Vec<u8>, v: &impl Entry, json: bool) -> Res<()> {
    if json {
        json_out(out, v)?;
    } else {
        line(out, v.zimbra_id());
    }
    Ok(())
}

/// LDAP generalized time with milliseconds, as the directory's LDIF writes it.
fn gentime(t: UtcMillis) -> String {
    format!("{}Z", t.label_stamp().replacen('.', "", 1))
}

pub(super) fn flatten(attrs: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    attrs
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect()
}

/// An account as zmprov shows it: the model's fields under their LDAP names, its
/// own attributes, and the attributes it inherits from its class of service.
pub(super) fn account_attrs(a: &Account, cos: Option<&Cos>) -> Vec<(String, String)> {
    let mut p = vec![
        ("mail".to_string(), a.email.clone()),
        ("uid".to_string(), a.local_part().to_string()),
        ("zimbraMailDeliveryAddress".to_string(), a.email.clone()),
        ("zimbraId".to_string(), a.id.clone()),
        (
            "zimbraAccountStatus".to_string(),
            a.status.as_str().to_string(),
        ),
        ("zimbraCOSId".to_string(), a.cos_id.clone()),
        ("mailvaultMailboxId".to_string(), a.mailbox_id.to_string()),
        ("zimbraCreateTimestamp".to_string(), gentime(a.created)),
    ];
    p.extend(
        a.aliases
            .iter()
            .map(|al| ("zimbraMailAlias".to_string(), al.clone())),
    );
    p.extend(flatten(&a.attrs));
    if let Some(cos) = cos {
        let own = |k: &str| a.attrs.keys().any(|n| n.eq_ignore_ascii_case(k));
        p.extend(flatten(&cos.attrs).into_iter().filter(|(k, _)| !own(k)));
    }
    p
}

pub(super) fn domain_attrs(d: &Domain) -> Vec<(String, String)> {
    let mut p = vec![
        ("zimbraDomainName".to_string(), d.name.clone()),
        ("zimbraId".to_string(), d.id.clone()),
        ("zimbraCreateTimestamp".to_string(), gentime(d.created)),
    ];
    p.extend(flatten(&d.attrs));
    p
}

pub(super) fn cos_attrs(c: &Cos) -> Vec<(String, String)> {
    let mut p = vec![
        ("cn".to_string(), c.name.clone()),
        ("zimbraId".to_string(), c.id.clone()),
        ("zimbraCreateTimestamp".to_string(), gentime(c.created)),
    ];
    p.extend(flatten(&c.attrs));
    p
}

pub(super) fn print_dl(out: &mut Vec<u8>, dl: &DistributionList, filter: &[String]) {
    let mut p = vec![
        ("mail".to_string(), dl.email.clone()),
        (
            "uid".to_string(),
            dl.email.split('@').next().unwrap_or_default().to_string(),
        ),
        ("zimbraId".to_string(), dl.id.clone()),
        ("zimbraCreateTimestamp".to_string(), gentime(dl.created)),
    ];
    p.extend(
        dl.members
            .iter()
            .map(|m| ("zimbraMailForwardingAddress".to_string(), m.clone())),
    );
    p.extend(flatten(&dl.attrs));
    line(
        out,
        format!(
            "# distributionList {} memberCount={}",
            dl.email,
            dl.members.len()
        ),
    );
    print_attrs(out, p, filter);
    if filter.is_empty() {
        line(out, "");
        line(out, "members");
        dl.members.iter().for_each(|m| line(out, m));
    }
}

/// `# name NAME` then the attributes.
pub(super) fn print_entry(
    out: &mut Vec<u8>,
    name: &str,
    attrs: &[(String, String)],
    filter: &[String],
) {
    line(out, format!("# name {name}"));
    print_attrs(out, attrs.to_vec(), filter);
}

/// `attr: value` lines, one per value, sorted by attribute name (case-insensitive,
/// values in their stored order); with a filter, only those attributes.
pub(super) fn print_attrs(out: &mut Vec<u8>, mut attrs: Vec<(String, String)>, filter: &[String]) {
    attrs.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    for (k, v) in attrs {
        if filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(&k)) {
            line(out, format!("{k}: {v}"));
        }
    }
}

/// Names one per line, or with `-v` full entries separated by blank lines.
pub(super) fn print_list(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (String, Vec<(String, String)>)>,
    verbose: bool,
) {
    for (i, (name, attrs)) in entries.enumerate() {
        if verbose {
            if i > 0 {
                line(out, "");
            }
            print_entry(out, &name, &attrs, &[]);
        } else {
            line(out, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time() {
        assert_eq!(gentime(UtcMillis(1_290_174_908_802)), "20101119135508.802Z");
    }
}

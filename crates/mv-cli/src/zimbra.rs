//! Zimbra's command-line spellings. Each tool answers to its Zimbra name when the
//! binary is invoked through a symlink (`zmbackup`, `zmrestore`, ...), and accepts
//! single-dash long options (`-sync`, `-restoreToTime`, `-lb`) as the originals do.

/// (Zimbra name, mailvault subcommand).
pub const TOOLS: &[(&str, &str)] = &[
    ("zmredodump", "redodump"),
    ("zmprov", "prov"),
    ("zmmailbox", "mailbox"),
    ("zmlocalconfig", "localconfig"),
    ("zmvolume", "volume"),
    ("zmcontrol", "control"),
    ("zmbackup", "backup"),
    ("zmbackupquery", "backupquery"),
    ("zmbackupabort", "backupabort"),
    ("zmplayredo", "playredo"),
    ("zmrestore", "restore"),
    ("zmrestoreoffline", "restoreoffline"),
    ("zmrestoreldap", "restoreldap"),
    ("zmschedulebackup", "schedule"),
    ("zmdisklog", "disk"),
    ("zmhostname", "hostname"),
];

/// (Zimbra name, subcommand) of a program name such as `/opt/bin/zmbackup`.
pub fn zimbra_name(program: &str) -> Option<(&'static str, &'static str)> {
    let base = std::path::Path::new(program).file_name()?.to_str()?;
    TOOLS.iter().find(|(z, _)| *z == base).copied()
}

/// Long options Zimbra's tools spell with one dash; help and usage show them so.
/// (Others, such as `--skipDeletes` or `--fromSeq`, have two dashes there too.)
pub const SINGLE_DASH: &[&str] = &[
    "lb",
    "lbs",
    "del",
    "rf",
    "br",
    "sys",
    "sync",
    "restoreToTime",
    "restoreToIncrLabel",
    "restoreToRedoSeq",
    "skipDeletedAccounts",
    "ca",
    "pre",
    "ra",
];

/// `--lb` → `-lb` for the names of [`SINGLE_DASH`], whole names only.
pub fn single_dash_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let preceded_ok = out
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '[' | '(' | ',' | '|' | '\'' | '`'));
        if preceded_ok && SINGLE_DASH.contains(&name) {
            out.push('-');
        } else {
            out.push_str("--");
        }
        out.push_str(name);
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

/// The clap command and the arguments to parse for a program name: under a
/// Zimbra name the tool's subcommand is inserted, its usage line and help carry
/// that name (`Usage: zmcontrol ...`, usage first as in Zimbra's tools), and
/// single-dash long options are rewritten for clap.
pub fn prepare(
    command: clap::Command,
    program: &str,
    mut args: Vec<String>,
) -> (clap::Command, Vec<String>) {
    let mut command = command;
    if let Some((zm, tool)) = zimbra_name(program) {
        args.insert(1, tool.to_string());
        command = command.mut_subcommand(tool, |sub| {
            let usage = sub.clone().bin_name(zm).render_usage().to_string();
            let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).trim_end();
            let usage = single_dash_text(usage);
            sub.bin_name(zm)
                .display_name(zm)
                .override_usage(usage)
                .help_template(
                    "{usage-heading} {usage}\n\n{about-with-newline}\n{all-args}{after-help}",
                )
        });
    }
    let longs = long_names(&command);
    let args = normalize_single_dash(args, &longs);
    (command, args)
}

/// Rewrites single-dash long options into clap's double-dash form: `-sync` becomes
/// `--sync` when `sync` is a long option of the command. Short options (`-a`) and
/// clusters that are not long names are left alone; everything after `--` too.
pub fn normalize_single_dash(args: Vec<String>, long_names: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest_literal = false;
    for arg in args {
        if rest_literal || arg == "--" {
            rest_literal = true;
            out.push(arg);
            continue;
        }
        if let Some(body) = arg.strip_prefix('-')
            && !body.starts_with('-')
            && body.len() > 1
        {
            let name = body.split_once('=').map(|(n, _)| n).unwrap_or(body);
            if long_names.iter().any(|l| l == name) {
                out.push(format!("-{arg}"));
                continue;
            }
        }
        out.push(arg);
    }
    out
}

/// Every long option name of a clap command and its subcommands.
pub fn long_names(cmd: &clap::Command) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            names.push(l.to_string());
        }
        if let Some(aliases) = a.get_all_aliases() {
            names.extend(aliases.into_iter().map(str::to_string));
        }
    }
    for sub in cmd.get_subcommands() {
        names.extend(long_names(sub));
    }
    names
}

/// Says, once, that a Zimbra option was accepted but changes nothing here.
pub fn note_ignored(option: &str, why: &str) {
    eprintln!("note: {option} is accepted for compatibility and has no effect here: {why}");
}

/// `-d/--debug` of the backup tools.
pub const DEBUG_NOTE: &str = "debug lines go to log/mailbox.log with MAILVAULT_LOG=debug";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_known_long_names() {
        let longs = vec![
            "sync".to_string(),
            "lb".to_string(),
            "no-offset".to_string(),
        ];
        let args = [
            "-sync",
            "-a",
            "-lb=full-1",
            "-xyz",
            "--lb",
            "x",
            "--",
            "-sync",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            normalize_single_dash(args, &longs),
            [
                "--sync",
                "-a",
                "--lb=full-1",
                "-xyz",
                "--lb",
                "x",
                "--",
                "-sync"
            ]
            .map(String::from)
            .to_vec()
        );
    }

    #[test]
    fn program_names() {
        assert_eq!(
            zimbra_name("/opt/bin/zmredodump"),
            Some(("zmredodump", "redodump"))
        );
        assert_eq!(zimbra_name("mailvault"), None);
    }
}

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
];

/// The subcommand a program name stands for, if it is a Zimbra tool name.
pub fn tool_for_program(program: &str) -> Option<&'static str> {
    let base = std::path::Path::new(program).file_name()?.to_str()?;
    TOOLS.iter().find(|(z, _)| *z == base).map(|(_, t)| *t)
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

/// One command of a Zimbra-style tool that takes a command word (`zmprov ga`,
/// `zmmailbox s`): its short and long names and its argument synopsis.
pub struct Cmd {
    pub short: &'static str,
    pub long: &'static str,
    pub args: &'static str,
}

impl Cmd {
    /// `getAccount(ga) {name@domain|id} [attr1 [attr2...]]`
    pub fn usage_line(&self) -> String {
        format!("{}({}) {}", self.long, self.short, self.args)
    }
}

/// The command a word names, by short or long name, case-insensitively.
pub fn find_cmd(table: &'static [Cmd], name: &str) -> Option<&'static Cmd> {
    table
        .iter()
        .find(|c| c.short.eq_ignore_ascii_case(name) || c.long.eq_ignore_ascii_case(name))
}

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
        assert_eq!(tool_for_program("/opt/bin/zmredodump"), Some("redodump"));
        assert_eq!(tool_for_program("mailvault"), None);
    }
}

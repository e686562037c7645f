//! The Zimbra names as an administrator types them: usage under the tool's own
//! name, help that never runs anything, zmhostname, zmprov gcf, zmredodump's
//! `--m "1 3"`, and the man pages and completions install-links writes.

mod common;

use common::*;
use std::process::Command;

fn init(env: &Env) {
    let o = env.run(std::path::Path::new(BIN), &["init"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn usage_and_help_use_the_tool_name() {
    let env = Env::new();
    let o = env.zm("zmcontrol", &["-h"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("Usage: zmcontrol"), "{}", o.stdout);
    let o = env.zm("zmbackup", &["--help"]);
    assert!(o.stdout.starts_with("Usage: zmbackup"), "{}", o.stdout);
    assert!(o.stdout.contains("-del <ARG>"), "{}", o.stdout);
    let o = env.zm("zmcontrol", &["frobnicate", "now"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("Usage: zmcontrol"), "{}", o.stderr);
}

#[test]
fn zmprov_help_never_runs_the_command() {
    let env = Env::new();
    init(&env);
    env.ok("zmprov", &["cd", "d.test"]);
    for args in [
        &["ca", "--help"][..],
        &["ca", "user@d.test", "--help"],
        &["ca", "user@d.test", "-h"],
        &["help", "ca"],
    ] {
        let o = env.ok("zmprov", args);
        assert!(
            o.stdout.starts_with("usage: createAccount(ca)"),
            "{args:?}: {}",
            o.stdout
        );
    }
    let o = env.ok("zmprov", &["help"]);
    assert!(o.stdout.contains("getConfig(gcf)"), "{}", o.stdout);
    let o = env.ok("zmprov", &["gaa"]);
    assert!(
        !o.stdout.contains("user@d.test"),
        "an account was created: {}",
        o.stdout
    );

    env.ok(
        "zmprov",
        &["mcf", "zimbraBackupReportEmailSender", "backup@d.test"],
    );
    let o = env.ok("zmprov", &["gcf", "zimbraBackupReportEmailSender"]);
    assert_eq!(o.stdout, "zimbraBackupReportEmailSender: backup@d.test\n");
    assert_eq!(env.zm("zmprov", &["gcf"]).code, 2);
}

#[test]
fn zmprov_and_zmmailbox_read_a_command_file_split_as_a_shell_does() {
    let env = Env::new();
    init(&env);
    let file = env.root.join("provision.zmp");
    std::fs::write(
        &file,
        "# a comment line, then commands in either spelling and any case\n\
         createDomain d.test\n\
         CA carol@d.test '' displayName \"Carol  Two Spaces\" description it\\'s\n\
         frobnicate now\n\
         ma carol@d.test +description second\n\
         ga carol@d.test displayName description\n\
         ma carol@d.test \"unbalanced\n",
    )
    .unwrap();
    let o = env.zm("zmprov", &["-f", file.to_str().unwrap()]);
    // The unknown command and the broken line are reported, the rest ran.
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("unknown command: frobnicate (`help` lists the zmprov commands)"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("unbalanced quote"), "{}", o.stderr);
    let mut lines = o.stdout.lines();
    let _zimbra_id_of_domain = lines.next();
    let _zimbra_id_of_account = lines.next();
    assert_eq!(
        lines.collect::<Vec<_>>(),
        [
            "# name carol@d.test",
            "description: it's",
            "description: second",
            "displayName: Carol  Two Spaces",
        ]
    );
    // A file and a command are one too many.
    assert_eq!(
        env.zm("zmprov", &["-f", file.to_str().unwrap(), "gaa"])
            .code,
        2
    );
    let missing = env.zm("zmprov", &["-f", env.root.join("nope").to_str().unwrap()]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("reading commands from"),
        "{}",
        missing.stderr
    );

    let mbox = env.root.join("mailbox.zmm");
    std::fs::write(&mbox, "cf '/Two Words'\nGETALLFOLDERS\ngm nope\n").unwrap();
    let o = env.zm(
        "zmmailbox",
        &["-z", "-m", "carol@d.test", "-f", mbox.to_str().unwrap()],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stdout.contains("  /Two Words\n"), "{}", o.stdout);
    assert!(o.stderr.contains("'nope'"), "{}", o.stderr);
}

#[test]
fn zmprov_and_zmmailbox_commands_are_in_help_man_pages_and_completions() {
    let env = Env::new();
    let o = env.ok("zmprov", &["--help"]);
    assert!(
        o.stdout.contains("  createAccount(ca) {name@domain}"),
        "{}",
        o.stdout
    );
    let o = env.ok("zmmailbox", &["--help"]);
    assert!(
        o.stdout.contains("  postRestURL(pru) {relative-path}"),
        "{}",
        o.stdout
    );
    let o = env.ok("zmmailbox", &["help", "AM"]);
    assert!(
        o.stdout.starts_with("usage: addMessage(am) [-F flags]"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("-T, --tags <TAGS>"), "{}", o.stdout);
    // A bad value names the argument and the usage, exit 2 as before.
    let o = env.zm("zmprov", &["rim", "a@d.test", "later"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("'later'") && o.stderr.contains("use start or status"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("reIndexMailbox(rim)"), "{}", o.stderr);

    let man = env.root.join("man1");
    let comp = env.root.join("completions");
    let o = env.run(
        std::path::Path::new(BIN),
        &[
            "install-links",
            env.links.to_str().unwrap(),
            "--man",
            man.to_str().unwrap(),
            "--completions",
            comp.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let page = std::fs::read_to_string(man.join("zmprov.1")).unwrap();
    for name in [
        "createAccount",
        "getAllDistributionLists",
        "addAccountLogger",
    ] {
        assert!(page.contains(name), "{name}: {page}");
    }
    let page = std::fs::read_to_string(man.join("zmmailbox.1")).unwrap();
    assert!(page.contains("getRestURL"), "{page}");
    // bash completes the command names, long and short.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && COMP_WORDS=(zmprov createA) COMP_CWORD=1 COMP_LINE='zmprov createA' COMP_POINT=14 && _zmprov zmprov createA zmprov && echo \"${{COMPREPLY[@]}}\"",
            comp.join("bash/zmprov").display()
        ))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&o.stdout);
    assert!(
        words.contains("createAccount"),
        "{words}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bash = std::fs::read_to_string(comp.join("bash/zmmailbox")).unwrap();
    assert!(
        bash.contains("getAllFolders") && bash.contains("gaf"),
        "{bash}"
    );
}

#[test]
fn zmhostname_names_the_server_zmcontrol_reports() {
    let env = Env::new();
    init(&env);
    let o = env.ok("zmhostname", &[]);
    let name = o.stdout.trim();
    assert!(!name.is_empty());
    let status = env.zm("zmcontrol", &["status"]);
    assert_eq!(
        status.stdout.lines().next(),
        Some(format!("Host {name}").as_str())
    );
}

#[test]
fn zmredodump_takes_space_separated_mailbox_ids() {
    let env = Env::new();
    init(&env);
    let dir = env.home.join("redolog");
    let dir = dir.to_str().unwrap();
    let spaced = env.ok("zmredodump", &["--m", "1 3", dir]);
    let commas = env.ok("zmredodump", &["--m", "1,3", dir]);
    assert_eq!(spaced.stdout, commas.stdout);
    let o = env.zm("zmredodump", &["--m", "1 x", dir]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("\"x\" is not a mailbox id"),
        "{}",
        o.stderr
    );
}

#[test]
fn install_links_writes_man_pages_and_completions() {
    let env = Env::new();
    let man = env.root.join("man1");
    let comp = env.root.join("completions");
    let o = env.run(
        std::path::Path::new(BIN),
        &[
            "install-links",
            env.links.to_str().unwrap(),
            "--man",
            man.to_str().unwrap(),
            "--completions",
            comp.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let page = std::fs::read_to_string(man.join("zmrestore.1")).unwrap();
    assert!(page.contains(".TH zmrestore"), "{page}");
    assert!(page.contains("restoreToTime"), "{page}");
    assert!(man.join("mailvault.1").is_file());
    // bash itself loads the completion and registers it for the tool's name.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p zmbackup",
            comp.join("bash/zmbackup").display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("zmbackup"));
    assert!(comp.join("zsh/_zmprov").is_file());
    assert!(comp.join("fish/zmcontrol.fish").is_file());
}

#[test]
fn a_missing_home_is_refused_and_not_created() {
    let env = Env::new();
    let typo = env.root.join("typo");
    let run = |tool: &str, args: &[&str]| {
        let o = Command::new(env.links.join(tool))
            .env("MAILVAULT_HOME", &typo)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    for (tool, args) in [
        ("zmbackupquery", &[][..]),
        ("zmprov", &["gaa"]),
        ("zmlocalconfig", &["-e", "lmtp_bind_port=1"]),
        ("zmcontrol", &["start"]),
        ("zmbackup", &["-f", "-a", "all"]),
        ("zmredodump", &[]),
    ] {
        let (code, err) = run(tool, args);
        assert_eq!(code, Some(1), "{tool}: {err}");
        assert!(
            err.contains(&format!(
                "no mailvault home at {} (MAILVAULT_HOME / --home): run `mailvault init` first",
                typo.display()
            )),
            "{tool}: {err}"
        );
        assert!(!typo.exists(), "{tool} created {}", typo.display());
    }
    let (code, _) = run("zmcontrol", &["status"]);
    assert_eq!(code, Some(1));
    assert!(!typo.exists());
}

#[test]
fn a_restore_without_a_backup_names_the_account_once_and_the_target() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "pw"]);
    let o = env.zm("zmrestore", &["-a", "a@d.test"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert_eq!(o.stderr.matches("a@d.test").count(), 1, "{}", o.stderr);
    let target = env.home.join("backup");
    assert!(o.stderr.contains(target.to_str().unwrap()), "{}", o.stderr);
}

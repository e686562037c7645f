//! `mailvault install-links`: the zm* symlinks, and from the same clap
//! definitions a man page per tool and bash/zsh/fish completions.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Create symlinks named after the Zimbra tools, pointing at this binary;
/// optionally their man pages and shell completions.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to create the links in (e.g. ~/bin).
    dir: PathBuf,
    /// Also write one man page per tool here (e.g. ~/.local/share/man/man1).
    #[arg(long = "man", value_name = "DIR")]
    man: Option<PathBuf>,
    /// Also write shell completions here: bash/<tool>, zsh/_<tool>, fish/<tool>.fish.
    #[arg(long = "completions", value_name = "DIR")]
    completions: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding this binary")?;
    create_dir(&args.dir)?;
    for (name, _) in crate::zimbra::TOOLS {
        let link = args.dir.join(name);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("creating {}", link.display()))?;
        println!("{} -> {}", link.display(), exe.display());
    }
    if let Some(dir) = &args.man {
        create_dir(dir)?;
        for (name, cmd) in commands() {
            let path = dir.join(format!("{name}.1"));
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        }
        println!("man pages in {}", dir.display());
    }
    if let Some(dir) = &args.completions {
        use clap_complete::Shell;
        for (shell, sub, file) in [
            (Shell::Bash, "bash", "{}"),
            (Shell::Zsh, "zsh", "_{}"),
            (Shell::Fish, "fish", "{}.fish"),
        ] {
            let out = dir.join(sub);
            create_dir(&out)?;
            for (name, mut cmd) in commands() {
                let path = out.join(file.replace("{}", &name));
                let mut text = Vec::new();
                clap_complete::generate(shell, &mut cmd, name.clone(), &mut text);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        println!("completions in {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// `mailvault` and each Zimbra tool as its own command (its name in usage,
/// options as the tool takes them).
fn commands() -> Vec<(String, clap::Command)> {
    let all = crate::cli_command();
    let mut out = vec![("mailvault".to_string(), all.clone())];
    for (zm, tool) in crate::zimbra::TOOLS {
        if let Some(sub) = all.find_subcommand(tool) {
            // zmprov's and zmmailbox's commands are words after their options,
            // parsed by their own grammar; documented here as subcommands.
            let sub = match *tool {
                "prov" => crate::cmd::prov::grammar().documented(sub.clone()),
                "mailbox" => crate::cmd::mailbox::grammar().documented(sub.clone()),
                _ => sub.clone(),
            };
            out.push((
                zm.to_string(),
                sub.name(*zm).bin_name(*zm).display_name(*zm),
            ));
        }
    }
    out
}

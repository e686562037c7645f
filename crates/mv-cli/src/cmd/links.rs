use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Create symlinks named after the Zimbra tools, pointing at this binary.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to create the links in (e.g. ~/bin).
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding this binary")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    for (name, _) in crate::zimbra::TOOLS {
        let link = args.dir.join(name);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("creating {}", link.display()))?;
        println!("{} -> {}", link.display(), exe.display());
    }
    Ok(ExitCode::SUCCESS)
}

use mv_home::Home;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print redo log operations, or with -q only verify the files.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Verify only: print file names and errors.
    #[arg(short = 'q')]
    quiet: bool,
    /// Only operations of these mailbox ids (comma-separated).
    #[arg(long = "m", value_delimiter = ',', value_name = "IDS")]
    mailboxes: Option<Vec<u32>>,
    /// Do not print file offsets.
    #[arg(long)]
    no_offset: bool,
    /// Print message content carried by the log.
    #[arg(long)]
    show_blob: bool,
    /// Redo log files or directories (default: the home's archive, then redo.log).
    files: Vec<PathBuf>,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let inputs = if args.files.is_empty() {
        vec![home.redo_archive_dir(), home.redolog_dir()]
    } else {
        args.files.clone()
    };
    let opts = mv_redo::dump::DumpOptions {
        quiet: args.quiet,
        mailboxes: args.mailboxes,
        no_offset: args.no_offset,
        show_blob: args.show_blob,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let clean = mv_redo::dump::run(&opts, &inputs, &mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

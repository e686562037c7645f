use mv_home::Home;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print redo log operations, or with -q only verify the files.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Verify only: print file names and errors.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Only operations of these mailbox ids (separated by commas or spaces: `--m "1 3"`).
    #[arg(long = "m", value_name = "IDS", value_parser = mailbox_ids)]
    mailboxes: Option<MailboxIds>,
    /// Do not print file offsets.
    #[arg(long)]
    no_offset: bool,
    /// Print message content carried by the log.
    #[arg(long)]
    show_blob: bool,
    /// Redo log files or directories (default: the home's archive, then redo.log).
    files: Vec<PathBuf>,
}

/// The mailbox ids of `--m`.
#[derive(Clone, Debug)]
pub struct MailboxIds(Vec<u32>);

/// `1,3`, `"1 3"`, `1, 3`: the mailbox ids of `--m`.
fn mailbox_ids(v: &str) -> Result<MailboxIds, String> {
    let ids: Result<Vec<u32>, String> = v
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| format!("{p:?} is not a mailbox id (ids are numbers: --m \"1 3\")"))
        })
        .collect();
    ids.and_then(|i| {
        if i.is_empty() {
            Err("no mailbox id given".into())
        } else {
            Ok(MailboxIds(i))
        }
    })
}

impl Args {
    /// Without files, the home's redo logs are dumped.
    pub fn needs_home(&self) -> bool {
        self.files.is_empty()
    }
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let inputs = if args.files.is_empty() {
        vec![home.redo_archive_dir(), home.redolog_dir()]
    } else {
        args.files.clone()
    };
    let opts = mv_redo::dump::DumpOptions {
        quiet: args.quiet,
        mailboxes: args.mailboxes.map(|m| m.0),
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

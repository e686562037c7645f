use mv_home::Home;
use std::process::ExitCode;

/// List storage volumes.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// List volumes.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let _ = args.list; // listing is the only action; -l is accepted for compatibility
    home.init()?;
    let blobs = mv_store::BlobStore::open(&home.store_dir())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(blobs.volumes())?);
        return Ok(ExitCode::SUCCESS);
    }
    for v in blobs.volumes() {
        println!("   Volume id: {}", v.id);
        println!("        name: {}", v.name);
        println!("        type: {}", v.kind);
        println!("        path: {}", v.path.display());
        println!("     current: {}", v.current);
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

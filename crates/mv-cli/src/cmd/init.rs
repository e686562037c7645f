use anyhow::Context;
use mv_home::Home;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let fresh = home
        .init()
        .with_context(|| format!("initializing {}", home.root().display()))?;
    // Opening the store creates the redo log and the volumes.
    let store = mv_store::Store::open(home, mv_store::StoreOptions::for_home(home))?;
    drop(store);
    // The IMAP server's self-signed certificate (conf/imap.crt, conf/imap.key).
    mv_server::tls::ensure_certificate(home)?;
    if args.json {
        /// `mailvault init --json`
        #[derive(serde::Serialize)]
        struct Initialized<'a> {
            home: &'a std::path::Path,
            /// False when the home existed already (nothing changed).
            created: bool,
        }
        let out = Initialized {
            home: home.root(),
            created: fresh,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else if fresh {
        println!("Created mailvault home {}", home.root().display());
    } else {
        println!(
            "mailvault home {} already exists; nothing changed",
            home.root().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

use mv_home::Home;
use std::process::ExitCode;

/// Run the server in the foreground: LMTP delivery and the admin API.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// LMTP listen address (default from local config: 127.0.0.1:7025).
    #[arg(long, value_name = "ADDR:PORT")]
    lmtp: Option<std::net::SocketAddr>,
    /// Admin API listen address (default from local config: 127.0.0.1:7071).
    #[arg(long, value_name = "ADDR:PORT")]
    admin: Option<std::net::SocketAddr>,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = home.open()?;
    let mut options = mv_server::ServeOptions::from_config(&cfg)?;
    if let Some(a) = args.lmtp {
        options.lmtp = a;
    }
    if let Some(a) = args.admin {
        options.admin = a;
    }
    mv_server::serve(home, options)?;
    Ok(ExitCode::SUCCESS)
}

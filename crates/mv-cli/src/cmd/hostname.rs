//! `zmhostname`: the name this server goes by in the directory.

use std::process::ExitCode;

/// Print this server's name (zmhostname).
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    println!("{}", mv_directory::config::local_server_name());
    Ok(ExitCode::SUCCESS)
}

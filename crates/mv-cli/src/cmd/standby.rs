//! Live DR on the second machine: `mailvault standby -t TARGET` bootstraps a
//! home from the target (the same code as `zmrestoreldap -t TARGET` and
//! `zmrestoreoffline -a all -t TARGET`) and serves it as a warm standby;
//! `mailvault promote` makes it the primary.

use anyhow::{Context, bail};
use clap::Parser;
use mv_home::{Home, HomeLock};
use mv_server::standby::{self, StandbyState};
use std::process::ExitCode;
use std::time::Instant;

/// Follow a primary's backup target as a warm standby: bootstrap from its
/// latest full, apply what the primary ships, serve IMAP read-only.
#[derive(clap::Args, Debug)]
pub struct StandbyArgs {
    /// The primary's backup target: a directory or s3://BUCKET/PREFIX.
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = super::backup::target_arg)]
    target: String,
}

/// Make this standby the primary: apply everything shipped, fence the old
/// primary off the target, continue its redo history, serve read-write.
#[derive(clap::Args, Debug)]
pub struct PromoteArgs {}

/// `zmrestoreldap`'s own arguments, parsed from the words a user would type.
#[derive(Parser)]
struct Ldap {
    #[command(flatten)]
    args: super::restore::RestoreLdapArgs,
}

/// `zmrestoreoffline`'s own arguments.
#[derive(Parser)]
struct Offline {
    #[command(flatten)]
    args: super::restore::RestoreArgs,
}

pub fn standby(home: &Home, args: StandbyArgs) -> anyhow::Result<ExitCode> {
    let existing = if home.is_initialized() {
        standby::load(home).map_err(anyhow::Error::msg)?
    } else {
        None
    };
    let state = match existing {
        Some(st) if st.target != args.target => bail!(
            "{} follows {}, not {}: a standby follows one target",
            home.root().display(),
            st.target,
            args.target
        ),
        Some(st) => {
            println!(
                "standby: continuing from redo sequence {} offset {} (LSN {})",
                st.position.sequence, st.position.offset, st.position.lsn
            );
            st
        }
        None => match bootstrap(home, &args.target)? {
            Some(st) => st,
            None => return Ok(ExitCode::from(1)),
        },
    };
    let cfg = home.open()?;
    let mut options = mv_server::ServeOptions::from_config(&cfg)?;
    options.standby = Some(state);
    mv_server::serve(home, options)?;
    Ok(ExitCode::SUCCESS)
}

/// A fresh home rebuilt from the target's latest full and the redo after it,
/// as a disaster restore does; its own local config (ports) is kept so it can
/// run beside the primary (promote takes the primary's identity). `None` when
/// a restore step failed (it said why).
fn bootstrap(home: &Home, target: &str) -> anyhow::Result<Option<StandbyState>> {
    // Taken before the restore reads the target: following starts at or
    // before what the restore applied.
    let position = {
        let t = mv_backup::target::open_existing(target, home)?;
        mv_backup::live::follow::start_position(t.as_ref())?
    };
    println!(
        "standby: bootstrapping {} from {target}",
        home.root().display()
    );
    let ldap = Ldap::try_parse_from(["zmrestoreldap", "-t", target, "--skipConf"])?;
    if super::restore::restore_ldap(home, ldap.args)? != ExitCode::SUCCESS {
        return Ok(None);
    }
    let offline = Offline::try_parse_from(["zmrestoreoffline", "-a", "all", "-t", target])?;
    if super::restore::restore_offline(home, offline.args)? != ExitCode::SUCCESS {
        return Ok(None);
    }
    let state = StandbyState {
        target: target.to_string(),
        position,
        directory: None,
    };
    standby::save(home, &state).map_err(anyhow::Error::msg)?;
    Ok(Some(state))
}

pub fn promote(home: &Home, _args: PromoteArgs) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let Some(mut state) = standby::load(home).map_err(anyhow::Error::msg)? else {
        bail!(
            "{} is not a standby (no {}): nothing to promote",
            home.root().display(),
            standby::state_path(home).display()
        );
    };
    if HomeLock::holder(home.root()).is_some() {
        super::control::stop(home)?;
    }
    {
        let _lock = HomeLock::acquire(home.root()).context("promote needs the standby stopped")?;
        let (service, _) = mv_server::Service::open(home)?;
        let target = mv_backup::target::open_existing(&state.target, home)?;
        // The epoch first: from here the old primary ships nothing more, so
        // what is applied next is everything it will ever have shipped.
        let epoch = mv_backup::live::epoch::claim(target.as_ref(), service.server_name())?;
        standby::save_epoch(
            home,
            &standby::EpochFile {
                epoch: epoch.epoch,
                owner: epoch.owner.clone(),
            },
        )
        .map_err(anyhow::Error::msg)?;
        println!(
            "promote: claimed epoch {} of {}: the old primary ships nothing more into it",
            epoch.epoch, state.target
        );
        let step = standby::catch_up(&service, &mut state).map_err(anyhow::Error::msg)?;
        println!(
            "promote: applied everything shipped, through redo sequence {} (LSN {}; {} records now)",
            step.position.sequence, step.position.lsn, step.applied
        );
        for e in &step.errors {
            eprintln!("warning: {e}");
        }
        if let Some(e) = standby::status().and_then(|st| st.directory_error) {
            eprintln!(
                "warning: the primary's last shipped directory did not apply (its mail did): {e}"
            );
        }
        // The primary's identity: its certificate, admin token and ports.
        let catalog = mv_backup::Catalog::load(target.as_ref())?;
        if let Some(s) = catalog.sessions().next_back() {
            match mv_backup::identity::restore(target.as_ref(), &s.label, home) {
                Ok(r) if !r.restored.is_empty() => println!(
                    "promote: the primary's {} restored from {}",
                    r.restored.join(", "),
                    s.label
                ),
                Ok(_) => {}
                Err(e) => eprintln!("warning: the primary's identity: {e}"),
            }
        }
    }
    super::restore::continue_redo_after_target(home, Some(&state.target))?;
    standby::remove(home).map_err(anyhow::Error::msg)?;
    let code = super::control::start(home)?;
    println!("promote: done in {:.1}s", began.elapsed().as_secs_f64());
    Ok(code)
}

use anyhow::{Context, bail};
use mv_home::Home;
use mv_home::localconfig::key_info;
use std::process::ExitCode;

/// Show or change local configuration keys.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Set a key: -e key=value (repeatable).
    #[arg(short = 'e', value_name = "KEY=VALUE")]
    edit: Vec<String>,
    /// Unset a key (back to its default): -u key (repeatable).
    #[arg(short = 'u', value_name = "KEY")]
    unset: Vec<String>,
    /// Show secret values instead of hiding them.
    #[arg(short = 's')]
    show_secrets: bool,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// Keys to show (default: all).
    keys: Vec<String>,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let path = home.localconfig_path();
    let mut cfg = home.open()?;
    if !args.edit.is_empty() || !args.unset.is_empty() {
        for e in &args.edit {
            let Some((k, v)) = e.split_once('=') else {
                bail!("-e expects key=value, got {e:?}");
            };
            cfg.set(k.trim(), v)?;
        }
        for k in &args.unset {
            cfg.unset(k);
        }
        cfg.save(&path)
            .with_context(|| format!("saving {}", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let shown = |k: &str, v: &str| -> String {
        if key_info(k).is_some_and(|i| i.secret) && !args.show_secrets && !v.is_empty() {
            "********".to_string()
        } else {
            v.to_string()
        }
    };
    let mut rows = Vec::new();
    if args.keys.is_empty() {
        rows.extend(cfg.iter().map(|(k, v)| (k.to_string(), shown(k, v))));
    } else {
        for k in &args.keys {
            match cfg.get(k) {
                Some(v) => rows.push((k.clone(), shown(k, v))),
                None => bail!("no local config key {k:?}; `mailvault localconfig` lists them all"),
            }
        }
    }
    if args.json {
        // Keys in order, as the listing prints them.
        let map: std::collections::BTreeMap<String, String> = rows.into_iter().collect();
        println!("{}", serde_json::to_string(&map)?);
    } else {
        for (k, v) in rows {
            println!("{k} = {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

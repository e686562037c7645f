pub mod backup;
pub mod check;
pub mod control;
pub mod demo;
pub mod disk;
pub mod hostname;
pub mod init;
pub mod items;
pub mod links;
pub mod localconfig;
pub mod mailbox;
pub mod prov;
pub mod redodump;
pub mod report;
pub mod restore;
pub mod schedule;
pub mod serve;
pub mod standby;
pub mod volume;
pub(crate) mod zmshell;

/// What a command says when its home does not exist.
pub fn no_home(home: &mv_home::Home) -> String {
    format!(
        "no mailvault home at {} (MAILVAULT_HOME / --home): run `mailvault init` first",
        home.root().display()
    )
}

pub mod control;
pub mod init;
pub mod links;
pub mod localconfig;
pub mod redodump;
pub mod serve;
pub mod volume;

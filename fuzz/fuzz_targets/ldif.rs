//! The LDIF parser reads backups that may be damaged or edited by hand: whatever
//! the bytes, it must return entries or an error with a line number, never panic,
//! and what it accepts must survive a write/parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mv_directory::ldif;

fuzz_target!(|data: &[u8]| {
    match ldif::parse(data) {
        Ok(entries) => {
            let text = ldif::write(&entries);
            let again = ldif::parse(text.as_bytes()).expect("the writer's output parses");
            assert_eq!(again, entries, "write/parse round trip");
        }
        Err(e) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
        }
    }
});

//! Arbitrary bytes as an admin API request body (`POST /v1/op/<op>`).
//!
//! The first input byte picks the path's operation name from a few real ones
//! and the plain `/v1/op`. Checked: no panic; a request decoded on a named path
//! carries that op; a decoded request encodes and decodes again to the same op
//! (what the CLI sends is what the server reads).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mv_server::api::{body_limit, decode, op_name};

const NAMES: &[&str] = &["ping", "add_message", "restore", "backup_verify", "backup_abort", "import_calendar"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let named = NAMES.get(usize::from(pick) % (NAMES.len() + 1)).copied();
    if let Some(name) = named {
        assert!(body_limit(name).is_some());
    }
    if let Ok(req) = decode(body, named) {
        if let Some(name) = named {
            assert_eq!(op_name(body).as_deref(), Some(name));
        }
        let again = serde_json::to_vec(&req).expect("a decoded request encodes");
        let op = op_name(&again).expect("an encoded request names its op");
        decode(&again, Some(&op)).expect("an encoded request decodes on its path");
    }
});

//! Header extraction from raw messages (run at every delivery): must never panic,
//! and every field must respect the store's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let e = mv_store::mime::extract_envelope(data);
    for field in [&e.subject, &e.from, &e.to, &e.cc, &e.message_id] {
        assert!(field.len() <= 1024, "a header field longer than the limit was kept");
        assert!(!field.chars().any(|c| c.is_control() && c != '\t'), "control characters must be stripped");
    }
});

//! Arbitrary bytes through the shipped segment reader (manifest, range
//! checksum, every record): none may panic or allocate by an untrusted length,
//! and a segment that decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mv_backup::live::segment;

fuzz_target!(|data: &[u8]| {
    if let Ok((m, range)) = segment::decode(data) {
        assert_eq!(segment::encode(&m, range), data);
    }
});

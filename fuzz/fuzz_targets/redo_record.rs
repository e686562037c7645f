//! Arbitrary bytes through the redo record decoder, the file reader (as a whole file
//! and as records behind a valid header) and the torn-tail scan. None may panic or
//! allocate by an untrusted length; a record that decodes must re-encode to the same
//! record. No filesystem: `mv_redo::fuzzing::redo_record` works on the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mv_redo::fuzzing::redo_record(data);
});

//! Arbitrary client bytes through the IMAP command path the server uses: the
//! framer (lines, literals, limits) and then imap-codec's command parser on each
//! framed command.
//!
//! The first input byte picks the read size, so splits across reads are
//! explored too. Checked: no panic, the framer never buffers more than its
//! limits allow, every framed command ends with a line end, and a refused
//! command's tag (if any) is a valid tag.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mv_imap::framing::{Frame, Framer, Limits, tag_of};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_line: 256,
        max_literal: 512,
        max_command: 1024,
    };
    let mut framer = Framer::new(limits.clone());
    for bytes in input.chunks(usize::from(chunk).max(1)) {
        framer.push(bytes);
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Command(cmd) => {
                    assert!(cmd.ends_with(b"\n"));
                    assert!(cmd.len() as u64 <= limits.max_command + limits.max_line as u64);
                    let _ = mv_imap::parse_command(&cmd);
                }
                Frame::Continue => {}
                Frame::Refused { tag, .. } => {
                    if let Some(t) = tag {
                        assert_eq!(tag_of(format!("{t} X").as_bytes()), Some(t));
                    }
                }
            }
        }
    }
});

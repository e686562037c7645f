//! Arbitrary client bytes into the socketmap request parser, as the server
//! reads them: parse, consume, repeat until incomplete or a framing error.
//!
//! Checked: no panic; a parse consumes at least one byte and never more than
//! it was given; a request never exceeds the limit; an incomplete buffer is
//! never longer than the server's read cap (length field + limit + comma);
//! a parsed request encodes back to exactly the bytes it was parsed from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mv_socketmap::{Parsed, encode_request, parse};

const MAX_REQUEST: usize = 300;

fuzz_target!(|data: &[u8]| {
    let cap = MAX_REQUEST + MAX_REQUEST.to_string().len() + 2;
    let mut buf = data;
    loop {
        match parse(buf, MAX_REQUEST) {
            Err(_) => break,
            Ok(None) => {
                assert!(buf.len() <= cap, "an incomplete request fits the read cap");
                break;
            }
            Ok(Some((parsed, used))) => {
                assert!(used >= 3 && used <= buf.len());
                assert!(used <= cap);
                if let Parsed::Request(req) = parsed {
                    assert!(req.map.len() + 1 + req.key.len() <= MAX_REQUEST);
                    assert_eq!(encode_request(&req.map, &req.key), &buf[..used]);
                }
                buf = &buf[used..];
            }
        }
    }
});

//! Arbitrary client bytes into the sans-io LMTP session.
//!
//! The first input byte picks the read size, so line and terminator splits
//! across reads are explored too. The backend is a stub: addresses whose
//! length is divisible by 3 are unknown, by 5 over quota, others accepted.
//! Checked: no panic, the session never asks for a second answer while one
//! is outstanding, memory stays within the configured limits, and delivered
//! messages respect them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mv_lmtp::{DeliveryOutcome, Event, RcptVerdict, Session, SessionConfig};

const MAX_MESSAGE: u64 = 4096;
const MAX_RECIPIENTS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let cfg = SessionConfig {
        max_message_size: MAX_MESSAGE,
        max_recipients: MAX_RECIPIENTS,
        max_line: 512,
        max_data_line: 1000,
        ..SessionConfig::default()
    };
    let bound = MAX_MESSAGE as usize + cfg.max_data_line;
    let mut session: Session<u32> = Session::new(cfg);
    let mut chunks = input.chunks(usize::from(chunk).max(1));
    let mut wire = Vec::new();
    loop {
        match session.next_event() {
            Event::Reply(reply) => {
                wire.clear();
                reply.write_to(&mut wire);
                assert!(wire.ends_with(b"\r\n"));
                assert!((200..600).contains(&reply.code()));
            }
            Event::CheckRecipient(check) => {
                let verdict = match check.address.len() {
                    n if n % 3 == 0 => RcptVerdict::Unknown,
                    n if n % 5 == 0 => RcptVerdict::OverQuota { permanent: n % 2 == 0 },
                    n => RcptVerdict::Accept(n as u32),
                };
                session.recipient_checked(verdict).expect("a check was pending");
            }
            Event::Deliver(delivery) => {
                assert!(delivery.message.len() as u64 <= MAX_MESSAGE);
                assert!(!delivery.message.contains(&0));
                assert!(delivery.message.is_empty() || delivery.message.ends_with(b"\r\n"));
                assert!((1..=MAX_RECIPIENTS).contains(&delivery.recipients.len()));
                let outcomes = delivery
                    .recipients
                    .iter()
                    .map(|&r| if r % 2 == 0 { DeliveryOutcome::Delivered } else { DeliveryOutcome::Failed("stub".into()) })
                    .collect();
                session.delivered(outcomes).expect("a delivery was pending");
            }
            Event::NeedInput => {
                assert!(session.buffered_len() <= bound);
                match chunks.next() {
                    Some(bytes) => session.push_input(bytes),
                    None => break,
                }
            }
            Event::Waiting => panic!("every backend request was answered"),
            Event::Close => break,
        }
    }
});

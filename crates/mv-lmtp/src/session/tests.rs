use super::*;
use proptest::prelude::*;

/// A scripted backend: addresses starting with "unknown" are unknown, "full"
/// over quota (temporary), "gone" over quota (permanent), "tmp" fail
/// temporarily; everything else is accepted with its address as token.
fn verdict(address: &str) -> RcptVerdict<String> {
    if address.starts_with("unknown") {
        RcptVerdict::Unknown
    } else if address.starts_with("full") {
        RcptVerdict::OverQuota { permanent: false }
    } else if address.starts_with("gone") {
        RcptVerdict::OverQuota { permanent: true }
    } else if address.starts_with("tmp") {
        RcptVerdict::TempFail("directory down".into())
    } else {
        RcptVerdict::Accept(address.to_owned())
    }
}

struct Run {
    replies: Vec<String>,
    deliveries: Vec<Delivery<String>>,
    closed: bool,
}

/// Feeds `chunks` one at a time (each after NeedInput), answering backend
/// requests; deliveries succeed except for tokens starting with "dfull".
fn run(cfg: SessionConfig, chunks: &[&[u8]]) -> Run {
    let mut s = Session::new(cfg);
    let mut run = Run {
        replies: Vec::new(),
        deliveries: Vec::new(),
        closed: false,
    };
    let mut chunks = chunks.iter();
    loop {
        match s.next_event() {
            Event::Reply(r) => run.replies.push(r.to_string().trim_end().to_owned()),
            Event::CheckRecipient(c) => s.recipient_checked(verdict(&c.address)).unwrap(),
            Event::Deliver(d) => {
                let outcomes = d
                    .recipients
                    .iter()
                    .map(|r| {
                        if r.starts_with("dfull") {
                            DeliveryOutcome::OverQuota { permanent: false }
                        } else {
                            DeliveryOutcome::Delivered
                        }
                    })
                    .collect();
                run.deliveries.push(d);
                s.delivered(outcomes).unwrap();
            }
            Event::NeedInput => match chunks.next() {
                Some(c) => s.push_input(c),
                None => break,
            },
            Event::Waiting => panic!("driver answered everything"),
            Event::Close => {
                run.closed = true;
                break;
            }
        }
    }
    run
}

fn codes(run: &Run) -> Vec<&str> {
    run.replies
        .iter()
        .map(|r| r.lines().last().unwrap().get(..9).unwrap_or(r))
        .collect()
}

#[test]
fn happy_path() {
    let r = run(
        SessionConfig::default(),
        &[
            b"LHLO client\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@d>\r\nRCPT TO:<b@d>\r\nDATA\r\n",
            b"Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        ],
    );
    assert_eq!(
        r.replies[0],
        "250-localhost\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE 52428800"
    );
    assert_eq!(
        codes(&r)[1..],
        [
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "354 start",
            "250 2.0.0",
            "250 2.0.0",
            "221 2.0.0"
        ]
    );
    assert!(r.closed);
    assert_eq!(r.deliveries.len(), 1);
    assert_eq!(r.deliveries[0].mail_from, "s@x");
    assert_eq!(r.deliveries[0].recipients, ["a@d", "b@d"]);
    assert_eq!(r.deliveries[0].message, b"Subject: hi\r\n\r\nbody\r\n");
}

#[test]
fn recipient_verdicts() {
    let r = run(
        SessionConfig::default(),
        &[b"LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<unknown@d>\r\nRCPT TO:<full@d>\r\nRCPT TO:<gone@d>\r\nRCPT TO:<tmp@d>\r\nRCPT TO:<bad>\r\nDATA\r\n"],
    );
    assert_eq!(
        r.replies[2..],
        [
            "550 5.1.1 <unknown@d>... No such user here",
            "452 4.2.2 <full@d> mailbox full",
            "552 5.2.2 <gone@d> mailbox full",
            "451 4.3.0 <tmp@d> temporary failure, try again later",
            "501 5.1.3 bad recipient address syntax",
            "503 5.5.1 no valid recipients",
        ]
    );
}

#[test]
fn per_recipient_delivery_outcomes() {
    let r = run(
        SessionConfig::default(),
        &[b"LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@d>\r\nRCPT TO:<dfull@d>\r\nDATA\r\nx\r\n.\r\n"],
    );
    assert_eq!(
        r.replies[5..],
        [
            "250 2.0.0 <a@d> delivered",
            "452 4.2.2 <dfull@d> mailbox full"
        ]
    );
}

#[test]
fn order_of_commands() {
    let r = run(
        SessionConfig::default(),
        &[b"MAIL FROM:<a@b>\r\nHELO x\r\nEHLO x\r\nLHLO x\r\nRCPT TO:<a@b>\r\nDATA\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nFOO\r\n"],
    );
    assert_eq!(
        codes(&r),
        [
            "503 5.5.1",
            "500 5.5.1",
            "500 5.5.1",
            "250 SIZE ",
            "503 5.5.1",
            "503 5.5.1",
            "250 2.1.0",
            "503 5.5.1",
            "500 5.5.2"
        ]
    );
}

#[test]
fn rset_clears_transaction_and_lhlo_resets() {
    let r = run(
        SessionConfig::default(),
        &[b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nRSET\r\nDATA\r\nMAIL FROM:<a@b>\r\nLHLO x\r\nRCPT TO:<a@b>\r\n"],
    );
    assert_eq!(
        codes(&r)[3..],
        [
            "250 2.0.0",
            "503 5.5.1",
            "250 2.1.0",
            "250 SIZE ",
            "503 5.5.1"
        ]
    );
}

#[test]
fn too_many_recipients() {
    let cfg = SessionConfig {
        max_recipients: 2,
        ..SessionConfig::default()
    };
    let r = run(cfg, &[b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nRCPT TO:<unknown@b>\r\nRCPT TO:<c@b>\r\nRCPT TO:<d@b>\r\n"]);
    assert_eq!(
        codes(&r)[2..],
        ["250 2.1.5", "550 5.1.1", "250 2.1.5", "452 4.5.3"]
    );
}

#[test]
fn size_parameter_over_limit() {
    let cfg = SessionConfig {
        max_message_size: 1000,
        ..SessionConfig::default()
    };
    let r = run(
        cfg,
        &[b"LHLO x\r\nMAIL FROM:<a@b> SIZE=1001\r\nMAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME\r\n"],
    );
    assert_eq!(codes(&r)[1..], ["552 5.3.4", "250 2.1.0"]);
}

#[test]
fn message_too_big_is_discarded_and_session_continues() {
    let cfg = SessionConfig {
        max_message_size: 2000,
        ..SessionConfig::default()
    };
    let line = [b'a'; 98];
    let mut input =
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@b>\r\nDATA\r\n".to_vec();
    for _ in 0..40 {
        input.extend_from_slice(&line);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b".\r\nMAIL FROM:<a@b>\r\n");
    let r = run(cfg, &[&input]);
    assert!(r.deliveries.is_empty());
    assert_eq!(
        r.replies[5..],
        [
            "552 5.3.4 <a@b> message too big",
            "552 5.3.4 <c@b> message too big",
            "250 2.1.0 <a@b> sender ok"
        ]
    );
}

#[test]
fn long_data_line_and_nul() {
    let mut input = b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nDATA\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 70_000));
    input.extend_from_slice(b"\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nDATA\r\nab\0c\r\n.\r\n");
    let r = run(SessionConfig::default(), &[&input]);
    assert!(r.deliveries.is_empty());
    assert_eq!(
        codes(&r)[4..],
        [
            "552 5.3.4",
            "250 2.1.0",
            "250 2.1.5",
            "354 start",
            "554 5.6.0"
        ]
    );
}

#[test]
fn long_and_nul_command_lines() {
    let mut input = vec![b'N'; 5000];
    input.extend_from_slice(b"\r\nNOOP\r\nNO\0OP\r\nNOOP\n");
    let r = run(SessionConfig::default(), &[&input[..100], &input[100..]]);
    assert_eq!(
        r.replies,
        [
            "500 5.5.2 line too long",
            "250 2.0.0 OK",
            "500 5.5.2 NUL character in command",
            "250 2.0.0 OK"
        ]
    );
}

#[test]
fn bare_lf_and_dot_unstuffing_across_chunks() {
    let r = run(
        SessionConfig::default(),
        &[
            b"LHLO x\nMAIL FROM:<a@b>\nRCPT TO:<a@b>\nDATA\n",
            b"..\n...\r",
            b"\n.a\nb\r\r\n.",
            b"\r",
            b"\n",
        ],
    );
    assert_eq!(r.deliveries[0].message, b".\r\n..\r\na\r\nb\r\r\n");
}

#[test]
fn answers_out_of_turn_are_errors() {
    let mut s: Session<u32> = Session::new(SessionConfig::default());
    assert_eq!(
        s.recipient_checked(RcptVerdict::Unknown),
        Err(SessionError::NoCheckPending)
    );
    assert_eq!(s.delivered(vec![]), Err(SessionError::NoDeliveryPending));
    s.push_input(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\n");
    while !matches!(s.next_event(), Event::CheckRecipient(_)) {}
    assert_eq!(s.next_event(), Event::Waiting);
    assert_eq!(s.delivered(vec![]), Err(SessionError::NoDeliveryPending));
    s.recipient_checked(RcptVerdict::Accept(7)).unwrap();
    assert!(matches!(s.next_event(), Event::Reply(r) if r.code() == 250));
}

#[test]
fn short_outcome_list_is_a_temporary_failure() {
    let mut s: Session<u32> = Session::new(SessionConfig::default());
    s.push_input(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@b>\r\nDATA\r\n.\r\n");
    let mut replies = Vec::new();
    loop {
        match s.next_event() {
            Event::Reply(r) => replies.push(r.code()),
            Event::CheckRecipient(_) => s.recipient_checked(RcptVerdict::Accept(1)).unwrap(),
            Event::Deliver(d) => {
                assert!(d.message.is_empty());
                s.delivered(vec![DeliveryOutcome::Delivered]).unwrap();
            }
            _ => break,
        }
    }
    assert_eq!(replies, [250, 250, 250, 250, 354, 250, 451]);
}

/// Tokens that drive the state machine deep, mixed with garbage.
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"LHLO x\r\n".to_vec()),
        Just(b"MAIL FROM:<a@b> SIZE=100\r\n".to_vec()),
        Just(b"RCPT TO:<a@b>\r\n".to_vec()),
        Just(b"RCPT TO:<unknown@b>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"..x\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![b'y'; 3000]),
        Just(vec![0u8; 3]),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary input never panics, memory stays within the configured
    /// bounds, and every delivered message respects the limits.
    #[test]
    fn arbitrary_input_is_bounded(chunks in proptest::collection::vec(chunk(), 0..60)) {
        let cfg = SessionConfig {
            max_message_size: 4096,
            max_recipients: 3,
            max_line: 512,
            max_data_line: 1000,
            ..SessionConfig::default()
        };
        let bound = cfg.max_message_size as usize + cfg.max_data_line;
        let mut s: Session<u8> = Session::new(cfg);
        let mut chunks = chunks.iter();
        let mut events = 0usize;
        loop {
            events += 1;
            prop_assert!(events < 100_000, "no progress");
            match s.next_event() {
                Event::Reply(r) => {
                    let wire = r.to_string();
                    prop_assert!(wire.ends_with("\r\n"));
                    prop_assert!((200..600).contains(&r.code()));
                }
                Event::CheckRecipient(c) => {
                    let v = if c.address.starts_with("unknown") { RcptVerdict::Unknown } else { RcptVerdict::Accept(1) };
                    s.recipient_checked(v).unwrap();
                }
                Event::Deliver(d) => {
                    prop_assert!(d.message.len() <= 4096);
                    prop_assert!(!d.recipients.is_empty() && d.recipients.len() <= 3);
                    prop_assert!(!d.message.contains(&0));
                    let outcomes = vec![DeliveryOutcome::Delivered; d.recipients.len()];
                    s.delivered(outcomes).unwrap();
                }
                Event::NeedInput => {
                    prop_assert!(s.buffered_len() <= bound);
                    match chunks.next() {
                        Some(c) => s.push_input(c),
                        None => break,
                    }
                }
                Event::Waiting => prop_assert!(false, "nothing outstanding"),
                Event::Close => break,
            }
        }
    }
}

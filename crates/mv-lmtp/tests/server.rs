//! End-to-end tests: a real TCP client against `serve` on a free loopback port with an
//! in-memory backend that records every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mv_lmtp::{Backend, DeliveryOutcome, LmtpConfig, Origin, RcptVerdict, serve};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq)]
enum User {
    Ok,
    FullAtRcpt,
    FullAtDelivery,
    StorageError,
}

#[derive(Debug, Clone, PartialEq)]
struct Stored {
    from: String,
    rcpts: Vec<u32>,
    message: Vec<u8>,
}

/// Users by address; mailbox id = position in `ids`.
#[derive(Default)]
struct MemBackend {
    users: HashMap<String, (u32, User)>,
    checks: Mutex<Vec<(String, Option<u64>)>>,
    stored: Mutex<Vec<Stored>>,
    /// The origin each delivery was handed.
    origins: Mutex<Vec<Origin>>,
    /// Slows `deliver` down, to observe shutdown during a delivery.
    deliver_delay: Duration,
}

impl MemBackend {
    fn new(users: &[(&str, User)]) -> Self {
        let users = users
            .iter()
            .enumerate()
            .map(|(i, (a, u))| (a.to_string(), (i as u32, *u)))
            .collect();
        MemBackend {
            users,
            ..Default::default()
        }
    }

    fn stored(&self) -> Vec<Stored> {
        self.stored.lock().unwrap().clone()
    }
}

impl Backend for MemBackend {
    type Recipient = u32;

    fn check_recipient(&self, address: &str, hint: Option<u64>) -> RcptVerdict<u32> {
        self.checks.lock().unwrap().push((address.to_owned(), hint));
        match self.users.get(&address.to_ascii_lowercase()) {
            None => RcptVerdict::Unknown,
            Some((_, User::FullAtRcpt)) => RcptVerdict::OverQuota { permanent: false },
            Some((id, _)) => RcptVerdict::Accept(*id),
        }
    }

    fn deliver(
        &self,
        origin: &Origin,
        from: &str,
        rcpts: &[u32],
        message: &[u8],
    ) -> Vec<DeliveryOutcome> {
        self.origins.lock().unwrap().push(origin.clone());
        std::thread::sleep(self.deliver_delay);
        self.stored.lock().unwrap().push(Stored {
            from: from.into(),
            rcpts: rcpts.to_vec(),
            message: message.to_vec(),
        });
        rcpts
            .iter()
            .map(
                |id| match self.users.values().find(|(i, _)| i == id).map(|(_, u)| *u) {
                    Some(User::FullAtDelivery) => DeliveryOutcome::OverQuota { permanent: false },
                    Some(User::StorageError) => DeliveryOutcome::Failed("disk on fire".into()),
                    _ => DeliveryOutcome::Delivered,
                },
            )
            .collect()
    }
}

fn default_users() -> MemBackend {
    MemBackend::new(&[
        ("a@d", User::Ok),
        ("b@d", User::Ok),
        ("c@d", User::Ok),
        ("full@d", User::FullAtRcpt),
        ("dfull@d", User::FullAtDelivery),
        ("broken@d", User::StorageError),
    ])
}

struct Server {
    addr: std::net::SocketAddr,
    backend: Arc<MemBackend>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(backend: MemBackend, cfg: LmtpConfig) -> Server {
        let port = mv_home::ports::free_loopback_port().unwrap();
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backend = Arc::new(backend);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, cfg, Arc::clone(&backend), async {
            let _ = rx.await;
        }));
        Server {
            addr,
            backend,
            stop: Some(tx),
            task,
        }
    }

    async fn default() -> Server {
        Server::start(default_users(), cfg()).await
    }

    async fn connect(&self) -> Client {
        let mut c = Client::raw(self.addr).await;
        let (code, text) = c.reply().await;
        assert_eq!(code, 220, "{text}");
        assert_eq!(text, "220 mx.test LMTP mailvault ready");
        c
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        timeout(T, self.task)
            .await
            .expect("serve returned")
            .unwrap()
            .unwrap();
    }
}

fn cfg() -> LmtpConfig {
    LmtpConfig {
        hostname: "mx.test".into(),
        max_message_size: 10_000,
        max_connections: 8,
        idle_timeout: Duration::from_secs(30),
        ..LmtpConfig::default()
    }
}

struct Client {
    io: BufReader<TcpStream>,
}

impl Client {
    async fn raw(addr: std::net::SocketAddr) -> Client {
        Client {
            io: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io.get_mut().write_all(bytes.as_ref()).await.unwrap();
    }

    /// One reply: its code and all its lines joined with "\n" (CRLF stripped).
    async fn reply(&mut self) -> (u16, String) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = timeout(T, self.io.read_line(&mut line))
                .await
                .expect("reply in time")
                .unwrap();
            assert!(n > 0, "connection closed; got so far: {lines:?}");
            assert!(line.ends_with("\r\n"), "{line:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                break;
            }
        }
        let code = lines[0][..3].parse().unwrap();
        (code, lines.join("\n"))
    }

    /// Reads `n` replies and returns their first nine characters ("250 2.1.5").
    async fn codes(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (_, text) = self.reply().await;
            out.push(text.lines().last().unwrap().chars().take(9).collect());
        }
        out
    }

    async fn expect(&mut self, code: u16) -> String {
        let (got, text) = self.reply().await;
        assert_eq!(got, code, "{text}");
        text
    }

    async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        timeout(T, self.io.read_to_end(&mut rest))
            .await
            .expect("EOF in time")
            .unwrap();
        assert!(
            rest.is_empty(),
            "unexpected: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    async fn lhlo(&mut self) {
        self.send("LHLO client.test\r\n").await;
        let text = self.expect(250).await;
        assert_eq!(
            text,
            "250-mx.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250 SIZE 10000"
        );
    }
}

#[tokio::test]
async fn happy_path_three_recipients() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    c.send("MAIL FROM:<sender@x> SIZE=30 BODY=8BITMIME\r\n")
        .await;
    assert_eq!(c.expect(250).await, "250 2.1.0 <sender@x> sender ok");
    for r in ["a@d", "b@d", "c@d"] {
        c.send(format!("RCPT TO:<{r}>\r\n")).await;
        assert_eq!(c.expect(250).await, format!("250 2.1.5 <{r}> recipient ok"));
    }
    c.send("DATA\r\n").await;
    c.expect(354).await;
    c.send("Subject: hi\r\n\r\nHello\r\n.\r\n").await;
    for r in ["a@d", "b@d", "c@d"] {
        assert_eq!(c.expect(250).await, format!("250 2.0.0 <{r}> delivered"));
    }
    c.send("QUIT\r\n").await;
    assert_eq!(c.expect(221).await, "221 2.0.0 mx.test closing connection");
    c.expect_eof().await;

    let stored = srv.backend.stored();
    assert_eq!(
        stored,
        [Stored {
            from: "sender@x".into(),
            rcpts: vec![0, 1, 2],
            message: b"Subject: hi\r\n\r\nHello\r\n".to_vec()
        }]
    );
    // The backend learns who sent it, for its Received: line.
    assert_eq!(
        *srv.backend.origins.lock().unwrap(),
        [Origin {
            lhlo: "client.test".into(),
            peer: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        }]
    );
    assert!(
        srv.backend
            .checks
            .lock()
            .unwrap()
            .iter()
            .all(|(_, hint)| *hint == Some(30))
    );
    srv.stop().await;
}

#[tokio::test]
async fn failing_recipients_and_single_delivery() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    c.send("MAIL FROM:<>\r\n").await;
    c.expect(250).await;
    let cases = [
        ("a@d", "250 2.1.5 <a@d> recipient ok"),
        ("nobody@d", "550 5.1.1 <nobody@d>... No such user here"),
        ("full@d", "452 4.2.2 <full@d> mailbox full"),
        ("dfull@d", "250 2.1.5 <dfull@d> recipient ok"),
        ("broken@d", "250 2.1.5 <broken@d> recipient ok"),
        ("C@D", "250 2.1.5 <C@D> recipient ok"),
    ];
    for (r, want) in cases {
        c.send(format!("RCPT TO:<{r}>\r\n")).await;
        assert_eq!(c.reply().await.1, want);
    }
    c.send("RCPT TO:<not an address>\r\n").await;
    assert_eq!(c.reply().await.1, "501 5.1.3 bad recipient address syntax");
    c.send("DATA\r\nx\r\n.\r\n").await;
    c.expect(354).await;
    assert_eq!(c.reply().await.1, "250 2.0.0 <a@d> delivered");
    assert_eq!(c.reply().await.1, "452 4.2.2 <dfull@d> mailbox full");
    assert_eq!(
        c.reply().await.1,
        "451 4.3.0 <broken@d> temporary storage failure, try again later"
    );
    assert_eq!(c.reply().await.1, "250 2.0.0 <C@D> delivered");

    let stored = srv.backend.stored();
    assert_eq!(
        stored.len(),
        1,
        "one deliver call for all accepted recipients"
    );
    assert_eq!(stored[0].rcpts, [0, 4, 5, 2]);
    assert_eq!(stored[0].from, "");
    srv.stop().await;
}

#[tokio::test]
async fn pipelined_transaction_in_one_write() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.send("LHLO x\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@d>\r\nRCPT TO:<nobody@d>\r\nRCPT TO:<b@d>\r\nDATA\r\n").await;
    assert_eq!(
        c.codes(6).await,
        [
            "250 SIZE ",
            "250 2.1.0",
            "250 2.1.5",
            "550 5.1.1",
            "250 2.1.5",
            "354 start"
        ]
    );
    // Message, next transaction and QUIT in one write as well.
    c.send("one\r\n.\r\nMAIL FROM:<s@x>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        .await;
    assert_eq!(
        c.codes(5).await,
        [
            "250 2.0.0",
            "250 2.0.0",
            "250 2.1.0",
            "250 2.1.5",
            "354 start"
        ]
    );
    c.send("two\r\n.\r\nQUIT\r\n").await;
    assert_eq!(c.codes(2).await, ["250 2.0.0", "221 2.0.0"]);
    c.expect_eof().await;
    let stored = srv.backend.stored();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0].rcpts.as_slice(), stored[0].message.as_slice()),
        (&[0, 1][..], &b"one\r\n"[..])
    );
    assert_eq!(
        (stored[1].rcpts.as_slice(), stored[1].message.as_slice()),
        (&[2][..], &b"two\r\n"[..])
    );
    srv.stop().await;
}

async fn transaction(c: &mut Client) {
    c.send("MAIL FROM:<s@x>\r\nRCPT TO:<a@d>\r\nDATA\r\n").await;
    assert_eq!(c.codes(3).await, ["250 2.1.0", "250 2.1.5", "354 start"]);
}

#[tokio::test]
async fn dot_unstuffing_and_exact_bytes() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    transaction(&mut c).await;
    // Bare LF lines, stuffed dots, a lone CR, 8-bit bytes, a "." inside a
    // line, and a terminator split across writes.
    c.send(&b"..\r\n...\r\n.x\r\nbare lf\nlone\rcr\r\n\xc3\xa9\xff 8bit\r\nend.\r\n\r\n."[..])
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send("\r\n").await;
    c.expect(250).await;
    let stored = srv.backend.stored();
    assert_eq!(
        stored[0].message,
        b".\r\n..\r\nx\r\nbare lf\r\nlone\rcr\r\n\xc3\xa9\xff 8bit\r\nend.\r\n\r\n"
    );
    srv.stop().await;
}

#[tokio::test]
async fn overlong_command_line_survives() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    let mut long = b"MAIL FROM:<".to_vec();
    long.extend(std::iter::repeat_n(b'a', 10_000));
    long.extend_from_slice(b"@d>\r\nNOOP\r\n");
    c.send(&long).await;
    assert_eq!(c.reply().await.1, "500 5.5.2 line too long");
    assert_eq!(c.reply().await.1, "250 2.0.0 OK");
    // A line of exactly the limit (4096 incl. CRLF) is fine.
    let mut exact = b"NOOP ".to_vec();
    exact.extend(std::iter::repeat_n(b'z', 4096 - 5 - 2));
    exact.extend_from_slice(b"\r\n");
    assert_eq!(exact.len(), 4096);
    c.send(&exact).await;
    c.expect(250).await;
    transaction(&mut c).await;
    c.send("ok\r\n.\r\n").await;
    c.expect(250).await;
    srv.stop().await;
}

#[tokio::test]
async fn nul_bytes() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.send(&b"LHLO x\0y\r\n"[..]).await;
    assert_eq!(c.reply().await.1, "500 5.5.2 NUL character in command");
    c.lhlo().await;
    transaction(&mut c).await;
    c.send(&b"a\0b\r\n.\r\n"[..]).await;
    assert_eq!(
        c.reply().await.1,
        "554 5.6.0 <a@d> message contains NUL characters"
    );
    c.send("NOOP\r\n").await;
    c.expect(250).await;
    assert!(srv.backend.stored().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn disconnect_mid_data_stores_nothing() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    transaction(&mut c).await;
    c.send("Subject: cut\r\n\r\nhalf a message\r\n.").await;
    drop(c);
    // A second client completes a transaction afterwards: the server is fine
    // and by then the first session has certainly been handled.
    let mut c2 = srv.connect().await;
    c2.lhlo().await;
    c2.send("QUIT\r\n").await;
    c2.expect(221).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(srv.backend.stored().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn message_twice_the_limit() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    c.send("MAIL FROM:<s@x>\r\nRCPT TO:<a@d>\r\nRCPT TO:<b@d>\r\nDATA\r\n")
        .await;
    c.codes(4).await;
    let line = format!("{}\r\n", "x".repeat(98));
    c.send(line.repeat(200)).await; // 20 000 bytes, limit 10 000
    c.send(".\r\n").await;
    assert_eq!(c.reply().await.1, "552 5.3.4 <a@d> message too big");
    assert_eq!(c.reply().await.1, "552 5.3.4 <b@d> message too big");
    assert!(srv.backend.stored().is_empty());
    // The connection is still usable, and a message of exactly the limit passes.
    transaction(&mut c).await;
    c.send(line.repeat(100)).await;
    c.send(".\r\n").await;
    c.expect(250).await;
    assert_eq!(srv.backend.stored()[0].message.len(), 10_000);
    // SIZE over the limit is refused up front.
    c.send("MAIL FROM:<s@x> SIZE=10001\r\n").await;
    assert_eq!(
        c.reply().await.1,
        "552 5.3.4 message size exceeds fixed maximum message size"
    );
    srv.stop().await;
}

#[tokio::test]
async fn unknown_and_out_of_order_commands() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.send("MAIL FROM:<s@x>\r\nEHLO x\r\nHELO x\r\nXYZZY\r\nDATA\r\nVRFY a@d\r\nNOOP\r\n")
        .await;
    assert_eq!(
        c.codes(7).await,
        [
            "503 5.5.1",
            "500 5.5.1",
            "500 5.5.1",
            "500 5.5.2",
            "503 5.5.1",
            "252 2.5.0",
            "250 2.0.0"
        ]
    );
    c.send("lhlo x\r\nrcpt to:<a@d>\r\ndata\r\nmail from:<s@x>\r\nmail from:<s@x>\r\ndata\r\nrset extra\r\n").await;
    assert_eq!(
        c.codes(7).await,
        [
            "250 SIZE ",
            "503 5.5.1",
            "503 5.5.1",
            "250 2.1.0",
            "503 5.5.1",
            "503 5.5.1",
            "501 5.5.4"
        ]
    );
    srv.stop().await;
}

#[tokio::test]
async fn rset_mid_transaction() {
    let srv = Server::default().await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    c.send("MAIL FROM:<s@x>\r\nRCPT TO:<a@d>\r\nRSET\r\nDATA\r\nRCPT TO:<b@d>\r\n")
        .await;
    assert_eq!(
        c.codes(5).await,
        [
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0",
            "503 5.5.1",
            "503 5.5.1"
        ]
    );
    c.send("MAIL FROM:<s2@x>\r\nRCPT TO:<b@d>\r\nDATA\r\nm\r\n.\r\n")
        .await;
    assert_eq!(
        c.codes(4).await,
        ["250 2.1.0", "250 2.1.5", "354 start", "250 2.0.0"]
    );
    let stored = srv.backend.stored();
    assert_eq!(
        (stored[0].from.as_str(), stored[0].rcpts.as_slice()),
        ("s2@x", &[1][..])
    );
    srv.stop().await;
}

#[tokio::test]
async fn connection_limit() {
    let srv = Server::start(
        default_users(),
        LmtpConfig {
            max_connections: 2,
            ..cfg()
        },
    )
    .await;
    let c1 = srv.connect().await;
    let _c2 = srv.connect().await;
    let mut c3 = Client::raw(srv.addr).await;
    assert_eq!(
        c3.reply().await.1,
        "421 4.3.2 mx.test too many connections, try again later"
    );
    c3.expect_eof().await;
    // Freeing a slot lets the next client in (the permit is released
    // asynchronously, so allow a few attempts).
    drop(c1);
    let mut admitted = false;
    for _ in 0..50 {
        let mut c = Client::raw(srv.addr).await;
        if c.reply().await.0 == 220 {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted);
    srv.stop().await;
}

#[tokio::test]
async fn idle_timeout() {
    let srv = Server::start(
        default_users(),
        LmtpConfig {
            idle_timeout: Duration::from_millis(200),
            ..cfg()
        },
    )
    .await;
    let mut c = srv.connect().await;
    c.lhlo().await;
    transaction(&mut c).await;
    c.send("partial\r\n").await;
    assert_eq!(
        c.reply().await.1,
        "421 4.4.2 mx.test idle timeout, closing connection"
    );
    c.expect_eof().await;
    assert!(srv.backend.stored().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_data() {
    let backend = MemBackend {
        deliver_delay: Duration::from_millis(200),
        ..default_users()
    };
    let srv = Server::start(backend, cfg()).await;
    let mut busy = srv.connect().await;
    busy.lhlo().await;
    transaction(&mut busy).await;
    busy.send("Subject: in flight\r\n\r\nfirst half\r\n").await;
    let mut idle = srv.connect().await;
    idle.lhlo().await;
    let mut before_data = srv.connect().await;
    before_data.lhlo().await;
    before_data
        .send("MAIL FROM:<s@x>\r\nRCPT TO:<b@d>\r\n")
        .await;
    before_data.codes(2).await;

    let Server {
        addr,
        backend,
        mut stop,
        task,
    } = srv;
    stop.take().unwrap().send(()).unwrap();
    // The idle session is closed at once...
    assert_eq!(idle.reply().await.1, "421 4.3.2 mx.test shutting down");
    idle.expect_eof().await;
    // ...so is one that has not reached DATA (nothing lost: it retries)...
    assert_eq!(
        before_data.reply().await.1,
        "421 4.3.2 mx.test shutting down"
    );
    before_data.expect_eof().await;
    // ...new connections are refused...
    assert!(TcpStream::connect(addr).await.is_err());
    // ...while the one in DATA finishes, is stored and answered, then closed.
    busy.send("second half\r\n.\r\n").await;
    assert_eq!(busy.reply().await.1, "250 2.0.0 <a@d> delivered");
    assert_eq!(busy.reply().await.1, "421 4.3.2 mx.test shutting down");
    busy.expect_eof().await;
    timeout(T, task)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    let stored = backend.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].message,
        b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"
    );
}

#[tokio::test]
async fn shutdown_grace_bounds_a_stalled_transaction() {
    let srv = Server::start(
        default_users(),
        LmtpConfig {
            shutdown_grace: Duration::from_millis(300),
            ..cfg()
        },
    )
    .await;
    let mut stalled = srv.connect().await;
    stalled.lhlo().await;
    transaction(&mut stalled).await;
    let started = std::time::Instant::now();
    srv.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    stalled.expect_eof().await;
}

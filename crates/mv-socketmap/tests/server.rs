//! The listener over real sockets: answers in order on one connection, limits
//! enforced before anything is buffered, the connection limit.

use mv_socketmap::{Lookup, Reply, SocketmapConfig, encode_request, serve};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

struct Table;

impl Lookup for Table {
    fn lookup(&self, map: &str, key: &str) -> Reply {
        match (map, key) {
            ("mailbox", "a@example.com") => Reply::Ok("a@example.com".into()),
            ("alias", "big@example.com") => Reply::Ok("x".repeat(200)),
            ("mailbox" | "alias", _) => Reply::NotFound,
            _ => Reply::Perm("unknown map".into()),
        }
    }
}

fn free_port() -> u16 {
    let start = 23000 + (std::process::id() % 900) as u16;
    (start..24000)
        .chain(23000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 23000-23999")
}

fn read_reply(s: &mut TcpStream) -> Option<Reply> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some((r, _)) = Reply::decode(&buf) {
            return Some(r);
        }
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
}

#[test]
fn answers_in_order_and_enforces_limits() {
    let port = free_port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    let cfg = SocketmapConfig {
        max_connections: 2,
        max_request: 100,
        max_reply: 150,
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve(listener, cfg, Arc::new(Table), async move {
        let _ = stop_rx.await;
    }));
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };

    // Pipelined requests on one connection, answered in order.
    let mut a = connect();
    let mut batch = encode_request("mailbox", "a@example.com");
    batch.extend(encode_request("mailbox", "nobody@example.com"));
    batch.extend(b"7:mailbox,");
    batch.extend(encode_request("nosuchmap", "x"));
    batch.extend(encode_request("alias", "big@example.com"));
    a.write_all(&batch).unwrap();
    assert_eq!(read_reply(&mut a), Some(Reply::Ok("a@example.com".into())));
    assert_eq!(read_reply(&mut a), Some(Reply::NotFound));
    assert!(
        matches!(read_reply(&mut a), Some(Reply::Perm(why)) if why.contains("<map name> <key>"))
    );
    assert_eq!(read_reply(&mut a), Some(Reply::Perm("unknown map".into())));
    assert!(
        matches!(read_reply(&mut a), Some(Reply::Perm(why)) if why.contains("over the limit")),
        "a reply over the limit is refused, not truncated"
    );

    // A second connection is allowed, a third is told to come back later.
    let mut b = connect();
    b.write_all(&encode_request("mailbox", "a@example.com"))
        .unwrap();
    assert_eq!(read_reply(&mut b), Some(Reply::Ok("a@example.com".into())));
    let mut c = connect();
    assert!(matches!(read_reply(&mut c), Some(Reply::Temp(_))));
    assert_eq!(read_reply(&mut c), None, "then closed");

    // A length over the limit closes the connection without reading the payload.
    b.write_all(b"101:").unwrap();
    assert_eq!(read_reply(&mut b), None);
    // Its slot is free again (once the server has noticed: the close and the
    // slot's release are not one step).
    let freed = (0..100).any(|_| {
        let mut d = connect();
        d.write_all(&encode_request("mailbox", "a@example.com"))
            .unwrap();
        let ok = read_reply(&mut d) == Some(Reply::Ok("a@example.com".into()));
        if !ok {
            std::thread::sleep(Duration::from_millis(20));
        }
        ok
    });
    assert!(freed, "a closed connection frees its slot");

    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
}

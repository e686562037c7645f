#!/usr/bin/env python3
"""LMTP scenarios driven with Python's smtplib.LMTP, a real protocol client.

Usage:
  lmtp_client.py results PORT KNOWN UNKNOWN OVERQUOTA
      one message to a mix of recipients; prints per-recipient codes as JSON
  lmtp_client.py load PORT OUTDIR CONNS PER RCPT[,RCPT...]
      CONNS concurrent sessions each delivering PER messages (to one recipient
      each, round robin); every message's exact bytes go to OUTDIR/msgs/<id>.eml
      and each acknowledged one to OUTDIR/acked.txt as "<id> <rcpt>" (flushed)
  lmtp_client.py bad PORT RCPT MAXSIZE
      hostile input; prints what the server answered as JSON
"""
import json
import os
import smtplib
import socket
import sys
import threading


def message(msg_id, rcpt, size=2000):
    body = "".join(chr(97 + (i * 7 + len(msg_id)) % 26) for i in range(size))
    lines = [body[i:i + 76] for i in range(0, len(body), 76)]
    # A line starting with a dot exercises dot-stuffing end to end.
    lines.insert(1, ".leading dot line")
    return (
        f"From: load@example.com\r\nTo: {rcpt}\r\nSubject: load {msg_id}\r\n"
        f"Message-ID: <{msg_id}@load.test>\r\n\r\n" + "\r\n".join(lines) + "\r\n"
    ).encode()


def results(port, known, unknown, overquota):
    out = {}
    with smtplib.LMTP("127.0.0.1", int(port), timeout=30) as c:
        c.ehlo_or_helo_if_needed()
        code, _ = c.mail("sender@example.com")
        out["mail"] = code
        for r in (known, unknown, overquota):
            code, msg = c.rcpt(r)
            out[r] = [code, msg.decode()]
        code, msg = c.data(message("mix-1", known))
        out["data"] = [code, msg.decode()]
    # Two accepted recipients: one reply each after the final dot (raw, since
    # smtplib reads only the first).
    out["two_rcpts"] = raw_session(int(port), [
        b"LHLO t\r\n", b"MAIL FROM:<a@b.c>\r\n", f"RCPT TO:<{known}>\r\n".encode(),
        f"RCPT TO:<{known.upper()}>\r\n".encode(), f"RCPT TO:<{unknown}>\r\n".encode(), b"DATA\r\n",
        b"Subject: two\r\nMessage-ID: <two@x>\r\n\r\nhi\r\n.\r\n", b"QUIT\r\n"])
    print(json.dumps(out))


def load(port, outdir, conns, per, rcpts):
    os.makedirs(os.path.join(outdir, "msgs"), exist_ok=True)
    acked = open(os.path.join(outdir, "acked.txt"), "a", buffering=1)
    lock = threading.Lock()
    errors = []
    prefix = os.path.basename(os.path.normpath(outdir))

    def worker(n):
        try:
            with smtplib.LMTP("127.0.0.1", port, timeout=60) as c:
                for i in range(per):
                    msg_id = f"{prefix}-c{n}-m{i}"
                    rcpt = rcpts[(n + i) % len(rcpts)]
                    data = message(msg_id, rcpt, 500 + (n * 131 + i * 17) % 8000)
                    with open(os.path.join(outdir, "msgs", msg_id + ".eml"), "wb") as f:
                        f.write(data)
                    refused = c.sendmail("load@example.com", [rcpt], data)
                    if not refused:
                        with lock:
                            acked.write(f"{msg_id} {rcpt}\n")
        except Exception as e:  # the server may be killed mid-run on purpose
            with lock:
                errors.append(f"{n}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acked.close()
    print(json.dumps({"errors": len(errors), "first_errors": errors[:3]}))


def raw_session(port, chunks, read_timeout=10):
    """Sends raw chunks, returns every reply line the server sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    replies = b""
    try:
        replies += s.recv(4096)
        for chunk in chunks:
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        while True:
            data = s.recv(65536)
            if not data:
                break
            replies += data
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    return [l for l in replies.decode(errors="replace").split("\r\n") if l]


def bad(port, rcpt, maxsize):
    port, maxsize = int(port), int(maxsize)
    out = {}
    head = [b"LHLO t\r\n", b"MAIL FROM:<a@b.c>\r\n", f"RCPT TO:<{rcpt}>\r\n".encode(), b"DATA\r\n"]
    out["overlong"] = raw_session(port, [b"LHLO t\r\n", b"NOOP " + b"x" * 10000 + b"\r\n", b"QUIT\r\n"])
    out["nul_command"] = raw_session(port, [b"LHLO t\r\n", b"NO\x00OP\r\n", b"QUIT\r\n"])
    out["bare_lf"] = raw_session(
        port, [b"LHLO t\n", b"MAIL FROM:<a@b.c>\n", f"RCPT TO:<{rcpt}>\n".encode(), b"DATA\n",
               b"Subject: bare-lf\n\nline\n.\n", b"QUIT\n"])
    out["nul_data"] = raw_session(port, head + [b"Subject: nul\r\n\r\nx\x00y\r\n.\r\n", b"QUIT\r\n"])
    out["cut_off"] = raw_session(port, head + [b"Subject: cut-off\r\n\r\nno end"])
    big = b"Subject: too-big\r\n\r\n" + (b"y" * 998 + b"\r\n") * (2 * maxsize // 1000 + 1)
    out["too_big"] = raw_session(port, head + [big, b".\r\n", b"QUIT\r\n"], read_timeout=60)
    out["unknown"] = raw_session(port, [b"LHLO t\r\n", b"FOO bar\r\n", b"QUIT\r\n"])
    out["out_of_order"] = raw_session(port, [b"LHLO t\r\n", b"DATA\r\n", b"RCPT TO:<x@y.z>\r\n", b"QUIT\r\n"])
    out["helo"] = raw_session(port, [b"HELO t\r\n", b"QUIT\r\n"])
    print(json.dumps(out))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "results":
        results(*sys.argv[2:6])
    elif cmd == "load":
        load(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6].split(","))
    elif cmd == "bad":
        bad(*sys.argv[2:5])
    else:
        sys.exit(__doc__)

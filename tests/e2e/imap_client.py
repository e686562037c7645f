#!/usr/bin/env python3
"""IMAP scenarios against a running `mailvault serve`, driven by Python's imaplib
(a real client) and, where imaplib cannot express a case (IDLE, hostile input),
by a raw socket. Each scenario asserts what a user relies on and prints a JSON
summary; any failed assertion exits non-zero.

Usage: imap_client.py SCENARIO ARGS...
  commands HOST PORT USER PASSWORD
  idle HOST PORT USER PASSWORD
  tls HOST PORT IMAPS_PORT USER PASSWORD LOCKED_USER MAINT_USER
  hostile HOST PORT USER PASSWORD
  search_index HOST PORT USER PASSWORD fill|check
"""

import imaplib
import json
import re
import socket
import ssl
import sys
import time

# Bounded everywhere: a hung server fails the test instead of hanging it.
socket.setdefaulttimeout(20)

MSG1 = (
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: bob@example.com, \"Carol, C\" <carol@example.com>\r\n"
    b"Subject: quarterly report\r\n"
    b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n"
    b"\r\n"
    b"--BOUND\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The numbers are up: zebrafish 42.\r\n"
    b"--BOUND\r\n"
    b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgc=\r\n"
    b"--BOUND--\r\n"
)


def msg(n, subject=None, body=None):
    subject = subject or f"message {n}"
    body = body or f"body of message {n}"
    return (
        f"From: sender{n}@example.com\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <n{n}@example.com>\r\n\r\n{body}\r\n"
    ).encode()


def ok(typ, data, what):
    assert typ == "OK", f"{what}: {typ} {data!r}"
    return data


def login(host, port, user, password):
    m = imaplib.IMAP4(host, port)
    ok(*m.login(user, password), "login")
    return m


def tagged(m, name, *args):
    """Runs a command and returns the tagged reply's text (its response code)."""
    return m._command_complete(name, m._command(name, *args))


def uids_of(m, criteria="ALL"):
    data = ok(*m.uid("SEARCH", None, criteria), f"UID SEARCH {criteria}")
    return [int(x) for x in data[0].split()]


def commands(host, port, user, password):
    out = {}
    m = imaplib.IMAP4(host, port)
    caps = m.capabilities
    for c in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "LITERAL+", "SPECIAL-USE", "NAMESPACE", "ID", "ENABLE", "CONDSTORE", "STARTTLS"):
        assert c in caps, f"capability {c} missing: {caps}"
    ok(*m.login(user, password), "login")
    # ENABLE is valid in the authenticated state only (RFC 5161).
    ok(*m.enable("CONDSTORE"), "ENABLE CONDSTORE")
    ok(*m.xatom("ID", '("name" "e2e")'), "ID")
    ns = ok(*m.namespace(), "NAMESPACE")
    assert b'(("" "/"))' in ns[0], ns

    # LIST: system folders with their special use.
    listing = ok(*m.list(), "LIST")
    text = b"\n".join(listing).decode()
    for name, attr in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Junk", "\\Junk"), ("Trash", "\\Trash")):
        assert re.search(rf'\(.*{re.escape(attr)}.*\) "/" {name}$', text, re.M), f"{name} {attr}: {text}"
    assert re.search(r'"/" INBOX$', text, re.M), text
    assert "Contacts" not in text and "Calendar" not in text, text

    # CREATE / RENAME / DELETE / SUBSCRIBE / LSUB, with modified UTF-7 names.
    ok(*m.create("Projects/2026"), "CREATE nested")
    ok(*m.create("Entw&APw-rfe"), "CREATE utf7")  # Entwürfe
    typ, data = m.create("Projects")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0], (typ, data)
    ok(*m.rename("Projects/2026", "Archive/2026"), "RENAME to a new parent")
    listing = b"\n".join(ok(*m.list('""', "*"), "LIST *")).decode()
    assert '"/" Archive/2026' in listing and "Projects/2026" not in listing, listing
    assert "Entw&APw-rfe" in listing, listing
    assert re.search(r'\\HasChildren\) "/" Archive$', listing, re.M), listing
    pct = b"\n".join(ok(*m.list('""', "%"), "LIST %")).decode()
    assert "Archive/2026" not in pct and '"/" Archive' in pct, pct
    ok(*m.subscribe("Archive/2026"), "SUBSCRIBE")
    lsub = b"\n".join(ok(*m.lsub('""', "Archive/*"), "LSUB")).decode()
    assert "Archive/2026" in lsub, lsub
    typ, data = m.delete("Archive")
    assert typ == "NO", "deleting a mailbox with children is refused"
    ok(*m.delete("Archive/2026"), "DELETE leaf")
    ok(*m.delete("Archive"), "DELETE parent")
    typ, data = m.delete("INBOX")
    assert typ == "NO", (typ, data)
    typ, data = m.delete("Trash")
    assert typ == "NO", "system folders stay"
    ok(*m.create("Work"), "CREATE Work")

    # APPEND: literals, flags, keywords, internal date; APPENDUID.
    date = imaplib.Time2Internaldate(time.mktime((2026, 3, 2, 12, 0, 0, 0, 0, -1)))
    typ, data = m.append("INBOX", r"(\Flagged $Important)", date, MSG1)
    ok(typ, data, "APPEND")
    mm = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert mm, data
    uidvalidity, uid1 = int(mm.group(1)), int(mm.group(2))
    for n in range(2, 7):
        ok(*m.append("INBOX", r"(\Seen)" if n % 2 == 0 else None, None, msg(n)), f"APPEND {n}")
    typ, data = m.append("Nowhere", None, None, msg(99))
    assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)

    st = ok(*m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"), "STATUS")[0].decode()
    assert "MESSAGES 6" in st and "UNSEEN 3" in st and f"UIDVALIDITY {uidvalidity}" in st, st

    # SELECT reports the mailbox.
    typ, data = m.select("INBOX")
    ok(typ, data, "SELECT")
    assert int(data[0]) == 6, data
    assert m.untagged_responses.get("UIDVALIDITY") == [str(uidvalidity).encode()], m.untagged_responses
    flags = m.untagged_responses["FLAGS"][0]
    assert b"$Important" in flags and b"\\Seen" in flags, flags
    assert b"\\*" in m.untagged_responses["PERMANENTFLAGS"][0]

    # FETCH: every item, by sequence number and by UID.
    typ, data = m.uid("FETCH", str(uid1), "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    ok(typ, data, "UID FETCH meta")
    meta = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert f"RFC822.SIZE {len(MSG1)}".encode() in meta, meta
    assert b'INTERNALDATE "02-Mar-2026 ' in meta, meta
    assert b"\\Flagged" in meta and b"$Important" in meta, meta
    assert b'"quarterly report"' in meta, meta
    assert b'("Alice Example" NIL "alice" "example.com")' in meta, meta
    assert b'("Carol, C" NIL "carol" "example.com")' in meta, meta
    assert b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 33 1)' in meta, meta
    assert b'"application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 12' in meta, meta
    assert b'"mixed" ("boundary" "BOUND")' in meta, meta

    # The same answers again (parsed once, then served from the server's cache),
    # in another session too; and mixed with items that read the message.
    typ, data = m.uid("FETCH", str(uid1), "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    again = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert again == meta, (again, meta)
    other = login(host, port, user, password)
    ok(*other.select("INBOX", readonly=True), "SELECT in another session")
    typ, data = other.uid("FETCH", str(uid1), "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    # \Recent is the first session's alone (RFC 3501 §2.3.2).
    assert ok(typ, data, "FETCH in another session")[0] == meta.replace(b"\\Recent ", b""), (data, meta)
    typ, data = other.uid("FETCH", str(uid1), "(ENVELOPE BODY.PEEK[] BODY)")
    ok(typ, data, "FETCH ENVELOPE BODY[] BODY")
    assert data[0][1] == MSG1, data
    assert b'("Alice Example" NIL "alice" "example.com")' in data[0][0], data
    assert b'"mixed")' in data[1] and b"BODY (" in data[1], data
    other.logout()

    def body(spec, uid=uid1):
        typ, data = m.uid("FETCH", str(uid), f"({spec})")
        ok(typ, data, f"FETCH {spec}")
        return data[0][1]

    assert body("BODY.PEEK[]") == MSG1
    assert body("BODY.PEEK[1]") == b"The numbers are up: zebrafish 42."
    assert body("BODY.PEEK[2]") == b"AAECAwQFBgc="
    assert body("BODY.PEEK[1.MIME]") == b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    assert body("BODY.PEEK[]<0.20>") == MSG1[:20]
    assert body("BODY.PEEK[1]<4.7>") == b"numbers"
    assert body("BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)]") == b"Subject: quarterly report\r\nMessage-ID: <m1@example.com>\r\n\r\n"
    hdr_not = body("BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)]")
    assert b"Subject" not in hdr_not and b"From: Alice" in hdr_not, hdr_not
    assert body("BODY.PEEK[TEXT]").startswith(b"--BOUND\r\n")
    assert body("RFC822.HEADER").endswith(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n")
    # PEEK left \Seen alone; BODY[] sets it.
    assert b"\\Seen" not in ok(*m.uid("FETCH", str(uid1), "(FLAGS)"), "flags")[0]
    typ, data = m.uid("FETCH", str(uid1), "(BODY[1])")
    ok(typ, data, "BODY[1]")
    assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in data), data
    seqdata = ok(*m.fetch("1:*", "(UID FLAGS)"), "FETCH 1:*")
    assert len(seqdata) == 6, seqdata

    # STORE: flags and keywords.
    all_uids = uids_of(m)
    assert len(all_uids) == 6 and all_uids[0] == uid1, all_uids
    u2, u3, u4 = all_uids[1], all_uids[2], all_uids[3]
    data = ok(*m.uid("STORE", f"{u2}:{u3}", "+FLAGS", r"(\Answered todo)"), "STORE +FLAGS")
    assert b"\\Answered" in data[0] and b"todo" in data[0], data
    ok(*m.uid("STORE", str(u3), "-FLAGS", r"(todo)"), "STORE -FLAGS keyword")
    data = ok(*m.uid("STORE", str(u4), "FLAGS.SILENT", r"(\Draft)"), "STORE FLAGS.SILENT")
    f4 = ok(*m.uid("FETCH", str(u4), "(FLAGS)"), "flags")[0]
    # \Recent is the session's, not a stored flag: STORE leaves it.
    assert b"(\\Recent \\Draft)" in f4, f4

    # SEARCH with RFC 3501 keys (scan of the store; TEXT/BODY read bodies).
    assert uids_of(m, "BODY zebrafish") == [uid1]
    assert uids_of(m, "TEXT zebrafish") == [uid1]
    assert uids_of(m, 'SUBJECT "quarterly"') == [uid1]
    assert uids_of(m, "FROM sender3") == [u3]
    assert uids_of(m, "KEYWORD todo") == [u2]
    assert uids_of(m, "UNKEYWORD todo") == [x for x in all_uids if x != u2]
    assert uids_of(m, "ANSWERED") == [u2, u3]
    assert uids_of(m, "DRAFT") == [u4]
    assert uids_of(m, "FLAGGED") == [uid1]
    assert uids_of(m, "UNSEEN") == all_uids[2:5]  # \Draft replaced \Seen on u4
    assert uids_of(m, f"LARGER {len(MSG1) - 1}") == [uid1]
    assert uids_of(m, "SMALLER 200") == all_uids[1:]
    assert uids_of(m, f"UID {u2}:{u4}") == [u2, u3, u4]
    assert uids_of(m, f"OR UID {u2} FLAGGED") == [uid1, u2]
    assert uids_of(m, f"NOT UID 1:{u4}") == all_uids[4:]
    assert uids_of(m, "SENTON 2-Mar-2026") == [uid1]
    assert uids_of(m, 'HEADER Message-ID "<n5@example.com>"') == [all_uids[4]]
    assert uids_of(m, "SINCE 1-Jan-2026 BEFORE 1-Jan-2100") == all_uids
    seq = ok(*m.search(None, "2:3"), "SEARCH seq")[0].split()
    assert seq == [b"2", b"3"], seq
    typ, data = m.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0], (typ, data)

    # CONDSTORE: ENABLE, MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE.
    d = ok(*m.uid("FETCH", str(u2), "(MODSEQ)"), "MODSEQ")[0]
    ms2 = int(re.search(rb"MODSEQ \((\d+)\)", d).group(1))
    data = ok(*m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {ms2})"), "CHANGEDSINCE")
    changed = [x for x in data if x]
    assert all(b"MODSEQ" in x for x in changed), changed
    assert not any(f"UID {u2} ".encode() in x for x in changed), "u2 unchanged since its modseq"
    typ, data = tagged(m, "UID", "STORE", str(u2), f"(UNCHANGEDSINCE {ms2 - 1}) +FLAGS", r"(\Flagged)")
    ok(typ, data, "conditional STORE")
    assert f"[MODIFIED {u2}]".encode() in data[-1], data
    typ, data = tagged(m, "UID", "STORE", str(u2), f"(UNCHANGEDSINCE {ms2}) +FLAGS", r"(\Flagged)")
    ok(typ, data, "conditional STORE that applies")
    assert b"MODIFIED" not in data[-1], data
    d = ok(*m.uid("FETCH", str(u2), "(MODSEQ FLAGS)"), "MODSEQ after")[0]
    assert int(re.search(rb"MODSEQ \((\d+)\)", d).group(1)) > ms2 and b"\\Flagged" in d, d

    # COPY and MOVE with COPYUID.
    typ, data = tagged(m, "UID", "COPY", f"{u2}:{u3}", "Work")
    ok(typ, data, "COPY")
    assert re.search(rb"COPYUID \d+ \d+:\d+ \d+:\d+", data[0]), data
    typ, data = tagged(m, "UID", "MOVE", str(u4), "Work")
    ok(typ, data, "MOVE")
    assert u4 not in uids_of(m)
    # MOVE reports COPYUID in an untagged OK, then the EXPUNGE.
    moved = m.untagged_responses.get("COPYUID", [])
    assert any(re.match(rb"\d+ %d \d+$" % u4, r) for r in moved), m.untagged_responses
    assert m.untagged_responses.get("EXPUNGE") == [b"4"], m.untagged_responses
    typ, data = tagged(m, "UID", "COPY", str(u2), "Nowhere")
    assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)
    st = ok(*m.status("Work", "(MESSAGES)"), "STATUS Work")[0]
    assert b"MESSAGES 3" in st, st

    # EXPUNGE and UID EXPUNGE.
    u5, u6 = all_uids[4], all_uids[5]
    ok(*m.uid("STORE", f"{u5}:{u6}", "+FLAGS.SILENT", r"(\Deleted)"), "flag deleted")
    typ, data = m.uid("EXPUNGE", str(u6))
    ok(typ, data, "UID EXPUNGE")
    left = uids_of(m)
    assert u6 not in left and u5 in left, left
    typ, data = m.expunge()
    ok(typ, data, "EXPUNGE")
    left = uids_of(m)
    assert u5 not in left, left
    assert left == [uid1, u2, u3], left

    # EXAMINE is read-only.
    ok(*m.select("Work", readonly=True), "EXAMINE")
    typ, data = m.store("1", "+FLAGS", r"(\Deleted)")
    assert typ == "NO", (typ, data)
    ok(*m.unselect(), "UNSELECT")
    ok(*m.select("INBOX"), "SELECT again")
    ok(*m.close(), "CLOSE")
    ok(*m.noop(), "NOOP")

    # A large message (written to the client without the output buffer) keeps
    # the items around it in order.
    big = msg(8, "big one", "".join(f"line {i:06} of a long text\r\n" for i in range(8000)))
    ok(*m.append("Work", None, None, big), "APPEND big")
    ok(*m.select("Work", readonly=True), "EXAMINE Work")
    typ, data = m.fetch("1:*", "(UID BODY.PEEK[] RFC822.SIZE)")
    ok(typ, data, "FETCH bodies")
    bodies = [d for d in data if isinstance(d, tuple)]
    assert len(bodies) == 4, data
    assert bodies[-1][1] == big, len(bodies[-1][1])
    tail = data[data.index(bodies[-1]) + 1]
    assert tail == f" RFC822.SIZE {len(big)})".encode(), tail
    m.logout()
    out["inbox_uids"] = left
    out["uidvalidity"] = uidvalidity
    print(json.dumps(out))


class Raw:
    """A line-oriented raw IMAP connection for what imaplib cannot do."""

    def __init__(self, host, port, sock=None):
        self.s = sock or socket.create_connection((host, port), timeout=20)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data)

    def line(self, timeout=20):
        self.s.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode())
        return self.until_tagged(tag)


def idle(host, port, user, password):
    a = Raw(host, port)
    assert b"OK" in a.cmd("a1", f"LOGIN {user} {password}")[-1]
    sel = a.cmd("a2", "SELECT INBOX")
    exists = [int(l.split()[1]) for l in sel if l.endswith(b" EXISTS")][0]
    a.send(b"a3 IDLE\r\n")
    assert a.line().startswith(b"+"), "IDLE continuation"

    b = login(host, port, user, password)
    typ, data = b.append("INBOX", None, None, msg(100, "pushed"))
    ok(typ, data, "APPEND in B")
    t0 = time.monotonic()
    line = a.line(timeout=10)
    push_ms = int((time.monotonic() - t0) * 1000)
    assert line == f"* {exists + 1} EXISTS".encode(), line
    # A saw the message first: it is recent there.
    line = a.line(timeout=10)
    assert line == b"* 1 RECENT", line

    ok(*b.select("INBOX"), "B SELECT")
    ok(*b.store(str(exists + 1), "+FLAGS", r"(\Flagged)"), "B STORE")
    line = a.line(timeout=10)
    assert re.match(rb"\* %d FETCH \(UID \d+ FLAGS \(\\Recent \\Flagged\)\)" % (exists + 1), line), line

    ok(*b.store(str(exists + 1), "+FLAGS", r"(\Deleted)"), "B flag deleted")
    ok(*b.expunge(), "B EXPUNGE")
    lines = []
    while True:
        line = a.line(timeout=10)
        lines.append(line)
        if line == f"* {exists + 1} EXPUNGE".encode():
            break
    a.send(b"DONE\r\n")
    assert a.until_tagged("a3")[-1].startswith(b"a3 OK"), "IDLE ends with OK"

    # Outside IDLE, changes arrive with the next command (NOOP).
    ok(*b.append("INBOX", None, None, msg(101, "second")), "APPEND 2")
    noop = a.cmd("a4", "NOOP")
    assert f"* {exists + 1} EXISTS".encode() in noop, noop
    b.logout()
    a.cmd("a5", "LOGOUT")
    print(json.dumps({"push_ms": push_ms, "exists_before": exists}))


def idle_delivery(host, port, lmtp_port, user, password, count):
    """Deliveries over LMTP reach a session in IDLE: the time from each LMTP
    reply to the idling session's EXISTS, in milliseconds."""
    import smtplib

    a = Raw(host, port)
    assert b"OK" in a.cmd("a1", f"LOGIN {user} {password}")[-1]
    sel = a.cmd("a2", "SELECT INBOX")
    exists = [int(l.split()[1]) for l in sel if l.endswith(b" EXISTS")][0]
    a.send(b"a3 IDLE\r\n")
    assert a.line().startswith(b"+"), "IDLE continuation"
    lmtp = smtplib.LMTP(host, int(lmtp_port))
    lat = []
    for i in range(int(count)):
        refused = lmtp.sendmail("sender@example.net", [user], msg(500 + i, f"delivered {i}"))
        assert not refused, refused
        t0 = time.monotonic()
        line = a.line(timeout=10)
        lat.append((time.monotonic() - t0) * 1000)
        assert line == f"* {exists + i + 1} EXISTS".encode(), line
        line = a.line(timeout=10)
        assert line.endswith(b" RECENT"), line
        # Deliveries at uneven moments: a poll's phase would show in the mean.
        time.sleep(0.013 * (i % 7))
    lmtp.quit()
    a.send(b"DONE\r\n")
    assert a.until_tagged("a3")[-1].startswith(b"a3 OK"), "IDLE ends with OK"
    a.cmd("a4", "LOGOUT")
    print(json.dumps({
        "count": len(lat),
        "mean_ms": sum(lat) / len(lat),
        "max_ms": max(lat),
    }))


def tls(host, port, imaps_port, user, password, locked, maint):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = {}

    # Plaintext: no login before STARTTLS (the server's default).
    m = imaplib.IMAP4(host, port)
    assert "LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities, m.capabilities
    try:
        m.login(user, password)
        raise AssertionError("plaintext LOGIN must be refused")
    except imaplib.IMAP4.error as e:
        out["plain_login"] = str(e)
        assert "PRIVACYREQUIRED" in str(e) or "unencrypted" in str(e), e
    ok(*m.starttls(ssl_context=ctx), "STARTTLS")
    assert "LOGINDISABLED" not in m.capabilities and "AUTH=PLAIN" in m.capabilities, m.capabilities
    ok(*m.login(user, password), "LOGIN after STARTTLS")
    ok(*m.select("INBOX"), "SELECT over STARTTLS")
    m.logout()

    # IMAPS with AUTHENTICATE PLAIN.
    s = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
    out["tls_version"] = s.sock.version()
    ok(*s.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode()), "AUTHENTICATE PLAIN")
    ok(*s.list(), "LIST over IMAPS")
    s.logout()

    # Refusals: wrong password, locked account, maintenance.
    for who, pw, expect in ((user, "wrong", "AUTHENTICATIONFAILED"), (locked, password, "AUTHENTICATIONFAILED"), (maint, password, "UNAVAILABLE"), ("nobody@example.com", password, "AUTHENTICATIONFAILED")):
        s = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
        try:
            s.login(who, pw)
            raise AssertionError(f"login of {who} must be refused")
        except imaplib.IMAP4.error as e:
            assert expect in str(e), (who, str(e))
            out[f"refused_{who}"] = str(e)
        s.logout()
    print(json.dumps(out))


def hostile(host, port, user, password):
    out = {}
    r = Raw(host, port)
    # Commands in the wrong state.
    out["select_before_login"] = r.cmd("h1", "SELECT INBOX")[-1].decode()
    assert out["select_before_login"].startswith("h1 BAD"), out
    assert r.cmd("h2", f"LOGIN {user} {password}")[-1].startswith(b"h2 OK")
    out["fetch_unselected"] = r.cmd("h3", "FETCH 1 FLAGS")[-1].decode()
    assert out["fetch_unselected"].startswith("h3 BAD"), out
    # Malformed commands.
    for i, bad in enumerate([b"h4 FROBNICATE", b"h5 FETCH", b"h6 SELECT \"unterminated", b"h7 STORE 1 +FLAGS (\\Seen", b"(((", b"h8 SEARCH " + b"(" * 200 + b"ALL" + b")" * 200]):
        r.send(bad + b"\r\n")
        line = r.line()
        # A command without a readable tag is answered with an untagged BAD.
        while line.startswith(b"* ") and not line.startswith(b"* BAD "):
            line = r.line()
        assert b" BAD " in line, (bad[:40], line)
    # A 1 GB literal announcement: refused at once, nothing is read or buffered.
    t0 = time.monotonic()
    r.send(b"h9 APPEND INBOX {1073741824}\r\n")
    line = r.line()
    out["huge_literal_ms"] = int((time.monotonic() - t0) * 1000)
    assert line.startswith(b"h9 NO [TOOBIG]"), line
    # Unbalanced literal: announced 10 bytes, sends fewer and a new command;
    # the literal swallows them, the command is malformed.
    r.send(b"h11 LOGIN {10}\r\n")
    assert r.line().startswith(b"+"), "continuation for a small literal"
    r.send(b"ab\r\nh12 NO")
    r.send(b"OP\r\n")
    line = r.line()
    assert line.startswith(b"h11 BAD"), line
    # Deep BODY[] section path.
    assert r.cmd("h13", "SELECT INBOX")[-1].startswith(b"h13 OK")
    deep = ".".join(["1"] * 100)
    line = r.cmd("h14", f"FETCH 1 BODY.PEEK[{deep}]")[-1]
    assert line.startswith(b"h14 BAD"), line
    # Invalid modified UTF-7 mailbox names.
    for i, name in enumerate(["&Jjo", "&Jjo!-", "caf\u00e9", "&AGE-"]):
        line = r.cmd(f"u{i}", f'CREATE "{name}"')[-1]
        assert line.startswith(f"u{i} BAD".encode()) or line.startswith(f"u{i} NO".encode()), (name, line)
    # A sequence number that does not exist.
    line = r.cmd("h15", "STORE 999999 +FLAGS (\\Deleted)")[-1]
    assert line.startswith(b"h15 BAD"), line
    # An over-long line.
    r.send(b"h16 NOOP " + b"x" * 70000 + b"\r\n")
    line = r.line()
    assert line.startswith(b"h16 BAD"), line
    # The connection still works.
    assert r.cmd("h17", "NOOP")[-1].startswith(b"h17 OK")
    assert r.cmd("h18", "LOGOUT")[-1].startswith(b"h18 OK")
    # And the server still accepts new connections.
    m = login(host, port, user, password)
    ok(*m.select("INBOX"), "SELECT after hostile session")
    m.logout()
    print(json.dumps(out))


def limit(host, port, max_connections):
    """max_connections sessions are served; one more gets BYE; a freed slot is reused."""
    n = int(max_connections)
    held = [Raw(host, port) for _ in range(n)]
    for r in held:
        assert r.greeting.startswith(b"* OK"), r.greeting
    extra = Raw(host, port)
    assert extra.greeting.startswith(b"* BYE"), extra.greeting
    held.pop().cmd("l1", "LOGOUT")
    deadline = time.monotonic() + 5
    while True:
        r = Raw(host, port)
        if r.greeting.startswith(b"* OK"):
            break
        assert time.monotonic() < deadline, "a freed connection slot is reused"
        time.sleep(0.05)
    assert r.cmd("l2", "NOOP")[-1].startswith(b"l2 OK")
    print(json.dumps({"refused": extra.greeting.decode()}))


def imaps(host, port, user, password):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
    ok(*m.login(user, password), "login")
    return m


MAILDIR_FLAGS = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered", "D": "\\Draft"}


def server_state(m):
    """{mailbox: sorted [(message-id, flags)]} of every mailbox."""
    state = {}
    for line in ok(*m.list(), "LIST"):
        name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
        if name in ("Sent", "Drafts", "Junk", "Trash"):
            continue
        ok(*m.select(f'"{name}"', readonly=True), f"EXAMINE {name}")
        items = []
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for d in data:
            if not isinstance(d, tuple):
                continue
            flags = sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).decode().split() if f != "\\Recent")
            mid = d[1].decode().split(":", 1)[1].strip()
            items.append([mid, flags])
        state[name] = sorted(items)
    return state


def maildir_state(root):
    import os
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) not in ("cur", "new"):
            continue
        folder = os.path.relpath(os.path.dirname(dirpath), root)
        folder = "INBOX" if folder in (".", "INBOX") else folder
        if folder in ("Sent", "Drafts", "Junk", "Trash"):
            continue
        items = state.setdefault(folder, [])
        for f in filenames:
            flags = f.split(":2,", 1)[1] if ":2," in f else ""
            if "T" in flags:
                continue
            with open(os.path.join(dirpath, f), "rb") as fh:
                mid = re.search(rb"^Message-ID:\s*(.+?)\r?$", fh.read(), re.M | re.I).group(1).decode().strip()
            items.append([mid, sorted(MAILDIR_FLAGS[c] for c in flags if c in MAILDIR_FLAGS)])
    return {k: sorted(v) for k, v in state.items()}


def mbsync_server_changes(host, port, user, password):
    m = imaps(host, port, user, password)
    ok(*m.select("INBOX"), "SELECT")
    # Flag, move away, delete one; add a new one.
    ok(*m.uid("STORE", "1", "+FLAGS", r"(\Flagged)"), "flag")
    ok(*m.uid("MOVE", "2", "Work"), "move")
    ok(*m.uid("STORE", "3", "+FLAGS", r"(\Deleted)"), "delete")
    ok(*m.expunge(), "expunge")
    ok(*m.append("Work", r"(\Seen)", None, msg(500, "server side new")), "append")
    m.logout()
    print(json.dumps({"ok": True}))


def mbsync_local_changes(root):
    import os
    files = [os.path.join(root, "INBOX", d, f) for d in ("new", "cur") for f in os.listdir(os.path.join(root, "INBOX", d))]
    assert len(files) >= 4, files
    changed = {}
    # Mark one seen, trash one (deleted on the next sync), move one to Work.
    def rename_flags(path, flags):
        # A flagged message belongs in cur/.
        base = os.path.basename(path).split(":2,", 1)[0]
        new = os.path.join(os.path.dirname(os.path.dirname(path)), "cur", f"{base}:2,{flags}")
        os.rename(path, new)
        return new
    def mid_of(path):
        with open(path, "rb") as fh:
            return re.search(rb"^Message-ID:\s*(.+?)\r?$", fh.read(), re.M | re.I).group(1).decode().strip()
    by_mid = {mid_of(f): f for f in files}
    seen = by_mid["<n4@example.com>"]
    changed["seen"] = "<n4@example.com>"
    rename_flags(seen, "S")
    trash = by_mid["<n5@example.com>"]
    rename_flags(trash, "T")
    changed["trashed"] = "<n5@example.com>"
    move = by_mid["<n6@example.com>"]
    dest = os.path.join(root, "Work", "cur", os.path.basename(move).split(",U=")[0] + ":2,")
    with open(move, "rb") as fh:
        data = fh.read()
    # A moved message loses mbsync's UID in its name: the copy is new on the far side.
    os.remove(move)
    with open(dest, "wb") as fh:
        fh.write(data)
    changed["moved"] = "<n6@example.com>"
    print(json.dumps(changed))


def mbsync_compare(host, port, user, password, root):
    m = imaps(host, port, user, password)
    server = server_state(m)
    m.logout()
    local = maildir_state(root)
    assert server == local, f"server {server} != maildir {local}"
    print(json.dumps(server))

# Messages for SEARCH through the index: the words sit in decoded text (quoted-
# printable soft breaks, base64, HTML), in headers only, and in substrings.
SEARCH_MSGS = [
    b"From: Carol <carol@example.com>\r\nTo: bob@example.com\r\nSubject: Invoice March\r\n\r\n"
    b"The quick brown fox jumps.\r\n",
    b"From: dan@example.com\r\nTo: bob@example.com\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 and qu=\r\nick brown bread\r\n",
    b"From: erin@example.com\r\nTo: bob@example.com\r\nSubject: plans\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"TWVldGluZyBhYm91dCB6ZWJyYWZpc2ggdG9tb3Jyb3c=\r\n",
    b"From: erin@example.com\r\nTo: bob@example.com\r\nSubject: lunch\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/html\r\n\r\n<p>Lunch <b>menu</b>: fish</p>\r\n",
    b"From: frank@example.com\r\nTo: bob@example.com\r\nCc: Dave <dave@example.com>\r\n"
    b"Subject: note\r\nX-Note: platypus\r\n\r\nnothing here\r\n",
    b"From: gina@example.com\r\nTo: bob@example.com\r\nSubject: Re: Invoice\r\n\r\n"
    b"brownie recipe\r\n",
]
# Delivered last, searched at once (the index has not seen it yet).
SEARCH_LATE = b"From: hal@example.com\r\nTo: bob@example.com\r\nSubject: late\r\n\r\nA quick brown owl.\r\n"


def search_index(host, port, user, password, phase):
    m = login(host, port, user, password)
    if phase == "fill":
        for raw in SEARCH_MSGS:
            ok(*m.append("INBOX", None, None, raw), "APPEND")
    ok(*m.select("INBOX"), "SELECT")
    if phase == "fill":
        ok(*m.uid("STORE", str(uids_of(m)[0]), "+FLAGS", "(\\Seen)"), "STORE")
    u = uids_of(m)
    out = {}
    if phase == "fill":
        before = uids_of(m, 'BODY "quick brown"')
        assert before == [u[0], u[1]], before
        ok(*m.append("INBOX", None, None, SEARCH_LATE), "APPEND late")
        u = uids_of(m)
        got = uids_of(m, 'BODY "quick brown"')
        assert got == [u[0], u[1], u[6]], f"right after delivery: {got} (uids {u})"
    assert len(u) == 7, u
    by = lambda *ix: [u[i] for i in ix]
    cases = [
        ('BODY "quick brown"', by(0, 1, 6)),
        ('TEXT QUICK', by(0, 1, 6)),
        ("BODY rown", by(0, 1, 5, 6)),
        ("BODY zebrafish", by(2)),
        ("BODY menu", by(3)),
        ("TEXT platypus", by(4)),
        ("BODY platypus", []),
        ("BODY café", by(1)),
        ("SUBJECT invoice", by(0, 5)),
        ("FROM carol", by(0)),
        ("CC dave", by(4)),
        ("TO bob", by(0, 1, 2, 3, 4, 5, 6)),
        ("NOT BODY brown", by(2, 3, 4)),
        ("OR SUBJECT hello BODY zebrafish", by(1, 2)),
        ("UNSEEN BODY brown", by(1, 5, 6)),
        (f"UID {u[0]}:{u[1]} BODY brown", by(0, 1)),
        ("SMALLER 10000 TEXT erin NOT BODY menu", by(2)),
        ('HEADER X-Note "platypus"', by(4)),
    ]
    for crit, want in cases:
        if "é" in crit:
            # Non-ASCII goes as a UTF-8 literal.
            m.literal = crit.split(" ", 1)[1].encode()
            data = ok(*m.uid("SEARCH", "CHARSET", "UTF-8", "BODY"), "SEARCH café")
            got = [int(x) for x in data[0].split()]
            assert got == want, f"SEARCH {crit}: got {got}, want {want}"
            out[crit] = len(got)
            continue
        got = uids_of(m, crit)
        assert got == want, f"SEARCH {crit}: got {got}, want {want}"
        out[crit] = len(got)
    m.logout()
    print(json.dumps(out))


if __name__ == "__main__":
    scenario, args = sys.argv[1], sys.argv[2:]
    {
        "commands": commands,
        "idle": idle,
        "idle_delivery": idle_delivery,
        "tls": tls,
        "hostile": hostile,
        "search_index": search_index,
        "limit": limit,
        "mbsync_server_changes": mbsync_server_changes,
        "mbsync_local_changes": mbsync_local_changes,
        "mbsync_compare": mbsync_compare,
    }[scenario](*args)

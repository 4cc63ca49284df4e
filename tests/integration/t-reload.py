#!/usr/bin/env python3
"""Hot reload under live traffic loses nothing.

A client bound to alice@corp.example sends 10,000 messages without pause
to bot@echo.example (the SDK's echo connector, built here).  While it
sends: (a) the echo community's configuration changes (prefix = >) and
imgwd gets SIGHUP; (b) a version 2.0 echo.so replaces the file on disk and
imgwd gets SIGHUP again.  Every message must be answered exactly once, in
order, without errors; the corp connection stays up.  Then an invalid
configuration is refused by `imgwctl reload` with FILE:LINE and the
gateway keeps serving; a community added by reload serves, one removed by
reload is gone.
"""

import os
import threading
import time

import imgwtest as T

N = 10000
RELOAD_A = 3000		# config change + SIGHUP right after ids RELOAD_A..+BIG are written
RELOAD_B = 6000		# echo.so replaced + SIGHUP right after ids RELOAD_B..+BIG are written
BATCH = 50
BIG = 1500		# lines sent at once just before each reload
ALICE = "alice@corp.example"
BOT = "bot@echo.example"


def body(i):
    return "m%07d" % i


def main(t):
    conn = t.path("conn")
    os.mkdir(conn)
    rc, out = T.build_echo(os.path.join(conn, "echo.so"))
    if not t.is_(rc, 0, "echo connector (1.0) builds"):
        t.diag(out)
        return
    os.symlink(os.path.join(T.CONNECTORS, "jsonl.so"), os.path.join(conn, "jsonl.so"))
    v2 = os.path.join(conn, ".echo-v2.so.tmp")
    rc, out = T.build_echo(v2, version="2.0")
    if not t.is_(rc, 0, "echo connector (2.0) builds"):
        t.diag(out)
        return

    port = T.free_port()
    corp = {"connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % port}
    echo = {"connector": "echo", "domains": "echo.example"}
    conf = {"gateway": {"connectors": conn}, "community corp": corp,
            "community echo": echo}
    gw = t.gateway(conf)
    st = gw.status()
    e = gw.community("echo", st) or {}
    t.is_(e.get("connector_version"), "1.0", "echo 1.0 is loaded")
    t.is_(e.get("state"), "running", "echo community is running")
    reloads0 = st.get("reloads", 0)

    alice = t.client(gw.listen("corp"))
    alice.bind(ALICE)
    alice.send({"type": "message", "from": ALICE, "to": BOT, "id": "hello",
                "body": "d\u00e9j\u00e0 vu \U0001F600!"})
    ans = alice.expect(lambda o: o.get("id") == "hello")
    t.ok(ans is not None and ans.get("type") == "message" and
         ans.get("body") == "!\U0001F600 uv \u00e0j\u00e9d" and
         ans.get("from") == BOT and (ans.get("to") or "").split("/")[0] == ALICE,
         "echo answers a message with its body reversed by code point, from the "
         "original to", "answer: %r" % (ans,))

    # --- 10,000 messages, two reloads while they are sent ---------------
    conf_a = {"gateway": {"connectors": conn}, "community corp": corp,
              "community echo": dict(echo, prefix=">")}
    sent = {"n": 0, "error": None}

    def sender():
        # Lines go out in small batches, except that at each reload point
        # a big batch goes out first and the reload follows at once, so
        # that the signal lands while a backlog is in flight.
        try:
            i = 0
            while i < N:
                size = BIG if i in (RELOAD_A, RELOAD_B) else BATCH
                chunk = []
                for j in range(i, min(i + size, N)):
                    chunk.append(T.json.dumps({"type": "message", "from": ALICE,
                                               "to": BOT, "id": str(j),
                                               "body": body(j)}))
                alice.send_raw(("\n".join(chunk) + "\n").encode())
                if i == RELOAD_A:
                    gw.write_config(conf_a)
                    gw.hup()
                elif i == RELOAD_B:
                    os.rename(v2, os.path.join(conn, "echo.so"))
                    gw.hup()
                i += len(chunk)
                sent["n"] = i
        except Exception as ex:  # reported by the main thread
            sent["error"] = repr(ex)

    th = threading.Thread(target=sender, daemon=True)
    t0 = time.monotonic()
    th.start()
    answers, errors, other = [], [], []
    deadline = time.monotonic() + 90
    while len(answers) < N and time.monotonic() < deadline:
        o = alice.recv(timeout=15)
        if o is None:
            break
        if o.get("type") == "message" and o.get("from") == BOT:
            answers.append(o)
        elif o.get("type") == "error":
            errors.append(o)
        else:
            other.append(o)
    elapsed = time.monotonic() - t0
    th.join(30)
    t.ok(sent["error"] is None and sent["n"] == N, "the client sent all %d messages" % N,
         "sent %d; error %s" % (sent["n"], sent["error"]))
    t.diag("%d answers in %.2f s" % (len(answers), elapsed))
    t.is_(errors[:5], [], "no error events (%d in all)" % len(errors))
    t.is_(other[:5], [], "nothing else arrived (%d in all)" % len(other))
    ids = [a.get("id") for a in answers]
    want = [str(i) for i in range(N)]
    t.is_(len(answers), N, "%d answers" % N)
    dups = len(ids) - len(set(ids))
    t.is_(dups, 0, "no message answered twice")
    missing = sorted(set(want) - set(ids), key=int)
    t.is_(missing[:10], [], "no message unanswered (%d missing)" % len(missing))
    first_bad = next((k for k, (a, b) in enumerate(zip(ids, want)) if a != b), None)
    t.ok(ids == want, "answers arrive in the order sent",
         None if first_bad is None else
         "position %d: got id %s, expected %s" % (first_bad, ids[first_bad], want[first_bad]))

    # bodies: reversed, with the prefix from the reload on: once it shows, it stays
    wrong, first_pref, unprefixed_after = [], None, []
    for a in answers:
        i = int(a["id"]) if a.get("id", "").isdigit() else -1
        rev = T.reverse_cp(body(i))
        b = a.get("body")
        if b == ">" + rev:
            if first_pref is None:
                first_pref = i
        elif b == rev:
            if first_pref is not None:
                unprefixed_after.append(i)
        else:
            wrong.append((a.get("id"), b))
    t.is_(wrong[:5], [], "every answer's body is the reversed message body")
    t.ok(first_pref is not None, "after the reload the answers carry the new prefix")
    t.is_(unprefixed_after[:5], [], "once the new configuration answers, the old never does")
    t.diag("first prefixed answer: id %s (reload (a) signalled once ids 0..%d were written)"
           % (first_pref, RELOAD_A + BIG - 1))
    t.ok(all(a.get("to", "").split("/")[0] == ALICE for a in answers),
         "every answer is addressed to alice")

    st = gw.wait_status(lambda s: s.get("reloads", 0) >= reloads0 + 2, 10)
    t.is_(st.get("reloads", 0) - reloads0, 2, "status counts two reloads")
    e = gw.community("echo", st) or {}
    t.is_(e.get("connector_version"), "2.0", "the replaced echo.so (2.0) is running")
    t.is_(e.get("state"), "running", "echo community is running")
    c = gw.community("corp", st) or {}
    t.is_(c.get("state"), "running", "corp community is running")
    t.ok(alice.alive(), "the corp client connection was never dropped")
    t.is_(c.get("counters", {}).get("received"), N + 1,
          "corp received exactly the %d messages sent" % (N + 1),)

    # the same connection still works, with the new code and config
    alice.send({"type": "message", "from": ALICE, "to": BOT, "id": "after", "body": "abc"})
    ans = alice.expect(lambda o: o.get("id") == "after")
    t.is_((ans or {}).get("body"), ">cba", "the kept connection is answered by the new echo")

    # --- an invalid configuration changes nothing ------------------------
    bad = {"gateway": {"connectors": conn}, "community corp": corp,
           "community echo": dict(echo, prefix="!", prefx="typo")}
    path = gw.write_config(bad)
    badline = next(i for i, l in enumerate(gw.text.splitlines(), 1) if l.startswith("prefx"))
    rc, out, err = gw.ctl("reload")
    t.cmp_ok(rc, "!=", 0, "imgwctl reload with an invalid config exits non-zero")
    t.like(out + err, "%s:%d:" % (path, badline),
           "imgwctl reload prints the FILE:LINE message")
    t.ok(gw.alive(), "imgwd still runs after a refused reload")
    alice.send({"type": "message", "from": ALICE, "to": BOT, "id": "bad1", "body": "xyz"})
    ans = alice.expect(lambda o: o.get("id") == "bad1")
    t.is_((ans or {}).get("body"), ">zyx",
          "after a refused reload the old configuration still serves")
    gw.hup()
    time.sleep(0.3)
    alice.send({"type": "message", "from": ALICE, "to": BOT, "id": "bad2", "body": "uvw"})
    ans = alice.expect(lambda o: o.get("id") == "bad2")
    t.is_((ans or {}).get("body"), ">wvu",
          "after SIGHUP with an invalid config the old configuration still serves")
    t.ok(alice.alive(), "the corp connection survived the refused reloads")
    st = gw.status()
    t.is_((gw.community("echo", st) or {}).get("connector_version"), "2.0",
          "echo 2.0 still runs after refused reloads")

    # --- communities added and removed by reload -------------------------
    added = {"gateway": {"connectors": conn}, "community corp": corp,
             "community echo": dict(echo, prefix=">"),
             "community echo2": {"connector": "echo", "domains": "echo2.example",
                                 "prefix": "2:"}}
    gw.write_config(added)
    rc, out, err = gw.ctl("reload")
    t.is_(rc, 0, "imgwctl reload with a valid config exits 0")
    if rc != 0:
        t.diag(out + err)
    st = gw.status()
    t.ok(gw.community("echo2", st) is not None, "the added community shows in status")
    alice.send({"type": "message", "from": ALICE, "to": "bot@echo2.example", "id": "n1",
                "body": "new"})
    ans = alice.expect(lambda o: o.get("id") == "n1", timeout=10)
    t.is_((ans or {}).get("body"), "2:wen", "a community added by reload answers")

    gw.write_config(conf_a)
    rc, out, err = gw.ctl("reload")
    t.is_(rc, 0, "imgwctl reload removing a community exits 0")
    st = gw.wait_status(lambda s: gw.community("echo2", s) is None, 10)
    t.ok(gw.community("echo2", st) is None, "the removed community is gone from status")
    alice.send({"type": "message", "from": ALICE, "to": "bot@echo2.example", "id": "n2",
                "body": "gone"})
    ans = alice.expect(lambda o: o.get("id") == "n2", timeout=10)
    t.is_((ans or {}).get("condition"), "remote-server-not-found",
          "a message to a removed community's domain gets remote-server-not-found")
    alice.send({"type": "message", "from": ALICE, "to": BOT, "id": "n3", "body": "kept"})
    ans = alice.expect(lambda o: o.get("id") == "n3")
    t.is_((ans or {}).get("body"), ">tpek", "the untouched echo community still answers")
    # a community renamed: its domain moves from the old to the new one
    renamed = {"gateway": {"connectors": conn}, "community corp": corp,
               "community bots": dict(echo, prefix="b>")}
    gw.write_config(renamed)
    rc, out, err = gw.ctl("reload")
    t.is_(rc, 0, "imgwctl reload renaming a community exits 0")
    if rc != 0:
        t.diag(out + err)
    alice.send({"type": "message", "from": ALICE, "to": BOT, "id": "r1", "body": "moved"})
    ans = alice.expect(lambda o: o.get("id") == "r1", timeout=10)
    t.is_((ans or {}).get("body"), "b>devom", "the renamed community serves the domain")
    st = gw.wait_status(lambda s: gw.community("echo", s) is None, 10)
    t.ok(gw.community("echo", st) is None and gw.community("bots", st) is not None,
         "status shows the new name only")

    t.ok(alice.alive(), "the corp connection survived every reload")
    t.is_(alice.skipped, [], "nothing unexpected arrived")
    t.is_(gw.term(), 0, "SIGTERM: exit status 0")


T.Test(alarm=240).run(main)

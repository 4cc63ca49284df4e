#!/usr/bin/env python3
"""SIGHUP that changes the XMPP community's options restarts only it.

A private Prosody, imgwd with the XMPP community (component mode) and the
jsonl community corp.example.  While the jsonl user bob sends a stream of
messages to the Prosody user alice, the XMPP community's reconnect-max
changes and imgwd gets SIGHUP: the core restarts the XMPP community alone
(its log says so, "1 kept, 1 restarted"), bob's jsonl connection is not
touched (it keeps sending and receiving on the same socket), the component
stream is closed and opened again, and every message sent meanwhile waits
in the core's queue and reaches alice, in the order sent, exactly once
(the old stream is closed cleanly, so nothing is unconfirmed).  Then a
reload that changes nothing restarts nothing.
"""

import threading
import time

import imgwtest as T
import xmpptest as X
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"
N = 400


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    pro = X.Prosody(t, users={"alice": "alice-pw"})
    corp = T.free_port()
    conf = X.gateway_config(pro, corp)
    gw = t.gateway(conf, name="gw-reload")
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running", timeout=10)
    bob = t.client("tcp:127.0.0.1:%d" % corp)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "pre", "body": "hi"})
    t.ok(alice.expect(lambda e: e.get("id") == "pre") is not None, "a first message "
         "arrives")
    connects0 = gw.log().count("component 'gw.xmpp.example' connected")
    t.is_(connects0, 1, "one component stream so far")

    ids = ["h-%03d" % i for i in range(N)]
    state = {"error": None}

    def sender():
        try:
            for i, id_ in enumerate(ids):
                bob.send({"type": "message", "from": BOB + "/bot", "to": ALICE,
                          "id": id_, "body": "message %d" % i})
                time.sleep(0.003)
        except Exception as ex:
            state["error"] = repr(ex)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    time.sleep(0.3)
    conf["community xmpp"]["reconnect-max"] = 2000
    gw.write_config(conf)
    gw.hup()
    th.join(30)
    t.ok(state["error"] is None, "bob sent all %d messages on the same connection"
         % N, state["error"])
    st = gw.wait_status(lambda s: s.get("reloads", 0) >= 1 and
                        gw.community("xmpp", s)["state"] == "running", timeout=10)
    t.is_(gw.community("xmpp", st)["state"], "running", "the XMPP community runs again")
    log = gw.log()
    t.like(log, "1 kept, 1 restarted", "the reload kept one community, restarted one")
    restarts = [l for l in log.splitlines() if "restarting (configuration changed)" in l]
    t.ok(len(restarts) == 1 and "xmpp" in restarts[0] and "corp" not in restarts[0],
         "only the XMPP community restarted", repr(restarts))
    t.is_(log.count("component 'gw.xmpp.example' connected"), 2,
          "the component stream was opened again")

    got = []
    deadline = time.monotonic() + 20
    while len(got) < N and time.monotonic() < deadline:
        e = alice.expect(lambda e: e.tag == C("message") and
                         (e.get("id") or "").startswith("h-"),
                         timeout=deadline - time.monotonic())
        if e is None:
            break
        got.append(e.get("id"))
    missing = [i for i in ids if i not in got]
    t.ok(not missing, "nothing lost across the restart of the XMPP community",
         "missing %d: %s" % (len(missing), missing[:20]))
    t.ok(got == sorted(got), "in the order sent", repr(got[:50]))
    t.is_(len(got) - len(set(got)), 0, "and none twice")

    # the jsonl connection is the one from before the reload
    t.ok(bob.alive(), "bob's jsonl connection survived")
    alice.send(X.stanza("message", {"to": X.gwjid(BOB), "type": "chat", "id": "back"},
                        X.el("body", "still there?")))
    got = bob.expect(lambda o: o.get("id") == "back")
    t.ok(got is not None, "and gets alice's answer through the new component stream")

    # a reload that changes nothing restarts nothing
    gw.hup()
    gw.wait_status(lambda s: s.get("reloads", 0) >= 2, timeout=10)
    t.like(gw.log(), "2 kept, 0 restarted", "an unchanged reload restarts nothing")
    t.is_(gw.log().count("component 'gw.xmpp.example' connected"), 2,
          "and the component stream stays")
    t.is_(gw.term(), 0, "imgwd exits cleanly on SIGTERM (a sanitizer build fails "
          "here on a leak)")


T.Test(alarm=120).run(main)

#!/usr/bin/env python3
"""The xmpp connector when the XMPP server misbehaves or dies.

- A wrong component secret: the XMPP community stays down with a clear log
  line naming the refusal, the rest of the gateway keeps routing, and a
  reload with the right secret brings the community up and delivers what
  waited for it.
- Prosody killed (SIGKILL) and restarted in the middle of a stream of
  messages from a jsonl user: the connector notices, reconnects with
  back-off, and every message reaches the XMPP user, first arrivals in the
  order sent (stanzas the server had not confirmed are sent again, so a
  duplicate is allowed, a loss is not).
"""

import threading
import time

import imgwtest as T
import xmpptest as X
from componentchecks import state, wrong_secret
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"


def server_restart(t, pro):
    corp = T.free_port()
    gw = t.gateway(X.gateway_config(pro, corp), name="gw-restart")
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running", timeout=5)
    bob = t.client("tcp:127.0.0.1:%d" % corp)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="r2")
    # alice is reachable: a first message arrives live
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "pre", "body": "hello"})
    t.ok(alice.expect(lambda e: e.get("id") == "pre") is not None,
         "before the restart a message arrives live")

    n = 300
    ids = ["r-%03d" % i for i in range(n)]
    sent = threading.Event()

    def sender():
        for i, id_ in enumerate(ids):
            bob.send({"type": "message", "from": BOB + "/bot", "to": ALICE, "id": id_,
                      "body": "message %d" % i})
            time.sleep(0.004)
        sent.set()

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    time.sleep(0.35)
    pro.kill()  # SIGKILL, mid-traffic
    t.ok(not pro.alive(), "prosody killed mid-traffic")
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] != "running", timeout=5)
    t.ok(gw.community("xmpp", st)["state"] != "running",
         "the connector notices and the community is down",
         repr(gw.community("xmpp", st)))
    time.sleep(1.0)
    pro.start()
    t.ok(sent.wait(10), "the jsonl user sent all %d messages" % n)
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running", timeout=10)
    t.is_(gw.community("xmpp", st)["state"], "running",
          "after the restart the connector reconnects")

    # collect everything: live before the kill, then offline + live
    got = []

    def take(client, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(set(got)) < n:
            e = client.expect(lambda e: e.tag == C("message") and
                              (e.get("id") or "").startswith("r-"),
                              timeout=deadline - time.monotonic())
            if e is None:
                break
            got.append(e.get("id"))

    take(alice, 0.2)  # what reached alice before prosody died
    alice2 = X.Client(t, pro, "alice", "alice-pw", resource="r3")
    take(alice2, 20)
    first = []
    seen = set()
    for id_ in got:
        if id_ not in seen:
            seen.add(id_)
            first.append(id_)
    missing = [i for i in ids if i not in seen]
    t.ok(not missing, "nothing lost: all %d messages reach alice" % n,
         "missing %d: %s" % (len(missing), missing[:20]))
    t.ok(first == sorted(first), "first arrivals are in the order sent",
         "order: %s" % first)
    t.diag("%d duplicates (stanzas in flight when prosody died, sent again)"
           % (len(got) - len(seen)))
    c = gw.community("xmpp")["counters"]
    t.diag("connector counters: %r" % c)
    t.like(gw.log(), "component stream to", "the lost stream is logged")
    t.ok(gw.alive(), "imgwd is alive after the reconnect (the libstrophe "
         "workaround holds on the new stream)")


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    pro = X.Prosody(t, users={"alice": "alice-pw"})
    wrong_secret(t, pro)
    server_restart(t, pro)


T.Test(alarm=120).run(main)

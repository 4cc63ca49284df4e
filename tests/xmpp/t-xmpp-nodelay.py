#!/usr/bin/env python3
"""Stanzas to the XMPP server leave at once, not after the server's
delayed ACK.

The component stream carries our barrier pings and their answers, so the
server's side of it delays its ACKs (Linux: up to 40 ms), and with Nagle
on, every stanza written while one was unacknowledged waited for that ACK:
SIP -> XMPP messages took 20-40 ms at 500/s (bench/bench-sip-xmpp.py).
Here a jsonl user sends to a Prosody user one message at a time, the next
as soon as the last arrived (which is when Nagle holds the next one), and
the median time from write to receipt must stay far below the delayed ACK:
under 25 ms (it is about 0.5 ms; with Nagle it was about 40 ms; the
margin is wide so that a loaded or sanitizer build does not fail it).
"""

import time

import imgwtest as T
import xmpptest as X

ROUNDS = 41


def main(t):
    if not X.have_prosody():
        t.skip("stanzas leave at once", "prosody is not installed (apt-get install prosody)")
        return
    pro = X.Prosody(t, users={"alice": "alice-pw"})
    corp = T.free_port()
    gw = t.gateway(X.gateway_config(pro, corp))
    gw.wait_status(lambda s: (gw.community("xmpp", s) or {}).get("state") == "running")
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")
    bob = t.client("tcp:127.0.0.1:%d" % corp)
    bob.bind("bob@corp.example")
    lat, lost = [], 0
    for i in range(ROUNDS):
        t0 = time.monotonic()
        bob.send({"type": "message", "to": "alice@xmpp.example", "body": "n%d" % i})
        got = alice.expect(lambda e: e.tag == X.C("message") and
                           X.text_of(e, "body") == "n%d" % i, timeout=5)
        if got is None:
            lost += 1
        else:
            lat.append(time.monotonic() - t0)
    t.is_(lost, 0, "all %d messages arrive" % ROUNDS)
    lat.sort()
    median = lat[len(lat) // 2] if lat else float("inf")
    t.cmp_ok(median * 1e3, "<", 25, "median write-to-receipt time under 25 ms "
             "(no wait for the server's delayed ACK)")
    t.diag("median %.2f ms, max %.2f ms" % (median * 1e3, lat[-1] * 1e3 if lat else 0))


T.Test(alarm=120).run(main)

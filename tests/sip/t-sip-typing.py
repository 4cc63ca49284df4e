#!/usr/bin/env python3
"""isComposing refresh (RFC 3994 section 4), both ways.

SIP -> jsonl: bob's active state with <refresh>1</refresh> reaches alice
as composing and, not refreshed, becomes paused a second later; refreshed
in time it stays composing until the refresh ends; a message from bob
ends the wait (no paused follows).
jsonl -> SIP: with iscomposing-refresh = 12, alice's composing reaches bob
as active with <refresh>12</refresh>, and again after two thirds of it
(8 s) while it lasts; her paused reaches bob as idle and stops the
refreshes.
"""

import time

import siptest as S
import imgwtest as T

ISC = ('<?xml version="1.0" encoding="UTF-8"?>\n'
       '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
       '<state>%s</state>%s</isComposing>')


def isc(state, refresh=None):
    return ISC % (state, "<refresh>%d</refresh>" % refresh if refresh else "")


def send(t, gw, ep, body, ctype="application/im-iscomposing+xml", what=""):
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep, body=body,
                      ctype=ctype), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 202, "%s: 202" % what)


def states(alice, seconds):
    """alice's chat states and messages over `seconds`, with their times."""
    got = []
    start = time.monotonic()
    alice.expect(lambda e: got.append((time.monotonic() - start, e)) and False,
                 timeout=seconds)
    return [(round(at, 2), e.get("state") or e.get("type")) for at, e in got
            if e.get("type") in ("chatstate", "message")]


def from_sip(t, gw, ep, alice):
    send(t, gw, ep, isc("active", 1), what="active, refresh 1")
    seen = states(alice, 2.5)
    t.is_([s for _, s in seen], ["composing", "paused"],
          "not refreshed: composing, then paused")
    t.ok(len(seen) == 2 and 0.7 <= seen[1][0] - seen[0][0] <= 2.0,
         "paused about a second after composing", repr(seen))

    send(t, gw, ep, isc("active", 2), what="active, refresh 2")
    time.sleep(1.0)
    send(t, gw, ep, isc("active", 2), what="the refresh")
    seen = states(alice, 1.5)
    t.ok("paused" not in [s for _, s in seen],
         "refreshed in time: no paused at the first deadline", repr(seen))
    seen = states(alice, 2.0)
    t.is_([s for _, s in seen], ["paused"], "paused once the refresh ends")

    send(t, gw, ep, isc("active", 1), what="active again")
    send(t, gw, ep, b"done typing", ctype="text/plain", what="the message")
    seen = states(alice, 2.0)
    t.is_([s for _, s in seen], ["composing", "message"],
          "a message ends the wait: no paused after it")


def from_jsonl(t, gw, ep, alice):
    def docs(seconds):
        out = []
        start = time.monotonic()
        deadline = start + seconds
        while time.monotonic() < deadline:
            m = ep.recv(max(0.05, deadline - time.monotonic()))
            if m is None or m[0] != "MESSAGE":
                continue
            ep.send(S.answer(m, 200, "OK"), gw.sip_port)
            body = m[2].decode("utf-8", "replace")
            state = "active" if "<state>active</state>" in body else \
                "idle" if "<state>idle</state>" in body else "other"
            out.append((round(time.monotonic() - start, 1), state, body))
        return out

    alice.send({"type": "chatstate", "to": "bob@sip.example", "state": "composing"})
    got = docs(10.0)
    t.ok(got and got[0][1] == "active" and "<refresh>12</refresh>" in got[0][2],
         "composing -> active with <refresh>12</refresh>", repr(got[:1]))
    t.is_([s for _, s, _ in got], ["active", "active"], "sent again while it lasts")
    t.ok(len(got) == 2 and 7.0 <= got[1][0] - got[0][0] <= 9.5,
         "after two thirds of the refresh interval (8 s)", repr([g[:2] for g in got]))
    alice.send({"type": "chatstate", "to": "bob@sip.example", "state": "paused"})
    got = docs(9.0)
    t.is_([s for _, s, _ in got], ["idle"], "paused -> idle, and no refresh after it")
    st = gw.status()
    ctr = gw.community("sipc", st).get("counters", {})
    t.ok(ctr.get("typing-refreshed", 0) >= 1 and ctr.get("typing-expired", 0) >= 2,
         "counters typing-refreshed and typing-expired", repr(ctr))


def main(t):
    ep = S.Endpoint("udp")
    gw = S.gateway(t, {"route": "sip.example=udp:127.0.0.1:%d" % ep.port,
                       "iscomposing-refresh": "12"})
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    from_sip(t, gw, ep, alice)
    from_jsonl(t, gw, ep, alice)
    ep.close()
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test(alarm=90).run(main)

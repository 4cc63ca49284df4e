#!/usr/bin/env python3
"""A SIP watcher subscribes to a jsonl presentity through imgwd.

A raw SIP endpoint (bob@sip.example) SUBSCRIBEs to alice@corp.example:
200 with Expires and Contact, an immediate NOTIFY pending; alice gets a
subscribe event and answers subscribed -> NOTIFY active; alice's presence
-> NOTIFY with PIDF (RFC 8048 mapping: away -> open + rpid:away, note
with xml:lang); a refresh gets a NOTIFY; Expires 0 ends it (NOTIFY
terminated, unsubscribe at alice).  Refusals: Event other than presence
489, Expires under 60 423, in-dialog SUBSCRIBE for an unknown dialog 481,
NOTIFY for no subscription 481.
"""

import re

import siptest as S
import imgwtest as T


def notify(t, ep, what, timeout=3):
    """The next NOTIFY at ep, answered 200; None when none came."""
    while True:
        m = ep.recv(timeout)
        if m is None:
            t.diag("%s: no NOTIFY" % what)
            return None
        if m[0] == "NOTIFY":
            ep.send(S.answer(m, 200, "OK"), ep.gw_port)
            return m


def main(t):
    gw = S.gateway(t)
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    ep = S.Endpoint("udp")
    ep.gw_port = gw.sip_port
    contact = "Contact: <sip:bob@127.0.0.1:%d>" % ep.port

    sub = S.request("SUBSCRIBE", "sip:alice@corp.example", ep, body=b"",
                    headers=["Event: presence", "Expires: 600", contact,
                             "Accept: application/pidf+xml"], callid="sub-1@t")
    ep.send(sub, gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 200, "SUBSCRIBE: 200")
    t.is_(r and r[1].get("expires"), "600", "200 grants the Expires asked")
    t.like(r and r[1].get("contact"), "sip:imgw@127.0.0.1", "200 carries our Contact")
    totag = re.search(r"tag=([^;>\s]+)", r[1]["to"]).group(1) if r else ""
    n = notify(t, ep, "pending")
    t.like(n and n[1].get("subscription-state"), "pending",
           "an immediate NOTIFY says pending")
    t.is_(n and n[1].get("event"), "presence", "NOTIFY Event: presence")
    got = alice.expect({"type": "subscribe"})
    t.is_(got and got.get("from"), "bob@sip.example",
          "alice gets a subscribe event from the SIP watcher")

    alice.send({"type": "subscribed", "to": "bob@sip.example"})
    n = notify(t, ep, "active")
    t.like(n and n[1].get("subscription-state"), "active",
           "subscribed -> NOTIFY active")

    alice.send({"type": "presence", "to": "bob@sip.example", "show": "away",
                "status": "busy <day> & more", "lang": "en"})
    n = notify(t, ep, "presence")
    body = n[2].decode() if n else ""
    t.like(n and n[1].get("content-type"), "application/pidf+xml", "PIDF body")
    t.like(body, "<basic>open</basic>", "away is basic open")
    t.like(body, "<rpid:away/>", "away is rpid:away (RFC 8048)")
    t.like(body, 'xml:lang="en">busy &lt;day&gt; &amp; more</note>',
           "the note, escaped, with its language")
    alice.send({"type": "presence", "to": "bob@sip.example", "show": "unavailable"})
    n = notify(t, ep, "unavailable")
    t.like(n and n[2].decode(), "<basic>closed</basic>", "unavailable is basic closed")

    # refresh inside the dialog
    ref = sub.replace(b"Expires: 600", b"Expires: 300").replace(
        b"CSeq: 1 ", b"CSeq: 2 ").replace(b"branch=", b"branch=z9hG4bK-r2").replace(
        b"To: <sip:alice@corp.example>",
        b"To: <sip:alice@corp.example>;tag=" + totag.encode())
    ep.send(ref, gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 200, "refresh: 200")
    t.is_(r and r[1].get("expires"), "300", "refresh: the new Expires")
    n = notify(t, ep, "refresh")
    t.like(n and n[1].get("subscription-state"), "active", "refresh: NOTIFY active")

    # unsubscribe
    uns = ref.replace(b"Expires: 300", b"Expires: 0").replace(
        b"CSeq: 2 ", b"CSeq: 3 ").replace(b"branch=z9hG4bK-r2", b"branch=z9hG4bK-r3")
    ep.send(uns, gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 200, "Expires 0: 200")
    n = notify(t, ep, "terminated")
    t.like(n and n[1].get("subscription-state"), "terminated",
           "Expires 0: NOTIFY terminated")
    got = alice.expect({"type": "unsubscribe"})
    t.is_(got and got.get("from"), "bob@sip.example", "alice gets unsubscribe")
    ep.send(uns.replace(b"CSeq: 3 ", b"CSeq: 4 ").replace(b"-r3", b"-r4"), gw.sip_port)
    t.is_((ep.recv() or [None])[0], 481, "the ended dialog: 481")

    # refusals
    ep.send(S.request("SUBSCRIBE", "sip:alice@corp.example", ep, body=b"",
                      headers=["Event: dialog", contact]), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 489, "Event dialog: 489 Bad Event")
    t.is_(r and r[1].get("allow-events"), "presence", "489 names presence")
    ep.send(S.request("SUBSCRIBE", "sip:alice@corp.example", ep, body=b"",
                      headers=["Event: presence", "Expires: 10", contact]), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 423, "Expires 10: 423 Interval Too Brief")
    t.is_(r and r[1].get("min-expires"), "60", "423 names Min-Expires")
    ep.send(S.request("NOTIFY", "sip:imgw@127.0.0.1", ep, body=b"",
                      headers=["Event: presence", "Subscription-State: active"]).replace(
        b"To: <sip:imgw@127.0.0.1>", b"To: <sip:imgw@127.0.0.1>;tag=nope"), gw.sip_port)
    t.is_((ep.recv() or [None])[0], 481, "NOTIFY for no subscription: 481")
    ep.close()
    t.ok(gw.alive(), "imgwd is alive")
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test().run(main)

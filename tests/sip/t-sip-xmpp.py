#!/usr/bin/env python3
"""SIP <-> XMPP end to end through imgwd: a Prosody user and a SIP user.

A private Prosody (xmpp.example, component gw.xmpp.example; helpers of
tests/xmpp/xmpptest.py) is the XMPP community, the sip community routes
sip.example to a raw SIP endpoint in this test.  alice@xmpp.example
writes to bob@sip.example (at the component: bob\\40sip.example@...): a
MESSAGE with body, subject and thread arrives at the endpoint; bob's
MESSAGE comes back to alice as a chat message with body, subject and
language; a 404 from the SIP side reaches alice as an error stanza.  bob
SUBSCRIBEs to alice: she gets a presence subscription request, approves
it (NOTIFY active) and her dnd presence with a German status arrives as
PIDF (RFC 8048).
"""

import os
import sys

import siptest as S
import imgwtest as T

sys.path.insert(0, os.path.join(S.SRCDIR, "tests", "xmpp"))
import xmpptest as X  # noqa: E402


def main(t):
    if not X.have_prosody():
        t.skip("SIP <-> XMPP", "prosody is not installed (apt-get install prosody)")
        return
    pro = X.Prosody(t, users={"alice": "alice-pw"})
    ep = S.Endpoint("udp")
    port = S.free_port_both()
    conf = X.gateway_config(pro, T.free_port())
    conf["community sipc"] = {
        "connector": "sip", "domains": "sip.example",
        "listen": "udp:127.0.0.1:%d" % port,
        "route": "sip.example=udp:127.0.0.1:%d" % ep.port,
        "trusted": "127.0.0.1/32",
    }
    gw = S.SipGateway(t, conf)
    gw.sip_port = port
    t.gateways.append(gw)
    gw.start()
    st = gw.wait_status(lambda s: (gw.community("xmpp", s) or {}).get("state") == "running")
    t.is_((gw.community("xmpp", st) or {}).get("state"), "running",
          "the XMPP community is up")
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")
    bobj = X.gwjid("bob@sip.example")

    alice.send(X.stanza("message", {"to": bobj, "type": "chat", "id": "x1"},
                        X.el("subject", "Hallo") + X.el("body", "Gr\u00fc\u00dfe von XMPP") +
                        X.el("thread", "th-x")))
    m = ep.recv(5)
    t.ok(m is not None and m[0] == "MESSAGE", "XMPP -> SIP: a MESSAGE arrives")
    if m is not None:
        t.is_(m[2].decode("utf-8"), "Gr\u00fc\u00dfe von XMPP", "the body, UTF-8")
        t.is_(m[1].get("subject"), "Hallo", "the subject")
        t.is_(m[1].get("call-id"), "th-x", "the thread as Call-ID")
        t.like(m[1].get("from"), "sip:alice@xmpp.example", "From is alice's address")
        ep.send(S.answer(m, 200, "OK"), port)

    ep.send(S.request("MESSAGE", "sip:alice@xmpp.example", ep, frm="bob@sip.example",
                      body="Antwort aus SIP", headers=["Subject: Re", "Content-Language: de"]),
            port)
    r = ep.recv(3)
    t.is_(r and r[0], 202, "SIP -> XMPP: 202")
    got = alice.expect(lambda e: e.tag == X.C("message") and
                       X.text_of(e, "body") == "Antwort aus SIP")
    t.ok(got is not None, "SIP -> XMPP: alice gets the message")
    if got is not None:
        t.is_(got.get("from"), bobj, "from is bob's address at the component")
        t.is_(X.text_of(got, "subject"), "Re", "the subject")
        t.is_(got.get(X.XML_LANG), "de", "the language")

    alice.send(X.stanza("message", {"to": X.gwjid("nobody@sip.example"), "type": "chat",
                                    "id": "x2"}, X.el("body", "anyone?")))
    m = ep.recv(5)
    if m is not None:
        ep.send(S.answer(m, 404, "Not Found"), port)
    err = alice.expect(lambda e: e.tag == X.C("message") and e.get("type") == "error"
                       and e.get("id") == "x2", timeout=5)
    t.ok(err is not None, "SIP 404 -> an error stanza for alice's message")
    if err is not None:
        t.ok(err.find(".//{%s}item-not-found" % X.NS_STANZAS) is not None,
             "with item-not-found (RFC 7247 7.2)")
    # --- presence: a SIP watcher of an XMPP user -------------------------
    contact = "Contact: <sip:bob@127.0.0.1:%d>" % ep.port
    ep.send(S.request("SUBSCRIBE", "sip:alice@xmpp.example", ep, frm="bob@sip.example",
                      headers=["Event: presence", "Expires: 600", contact]), port)

    def sip_next(kind, timeout=5):
        while True:
            m = ep.recv(timeout)
            if m is None or m[0] == kind:
                if m is not None and kind == "NOTIFY":
                    ep.send(S.answer(m, 200, "OK"), port)
                return m
            if m[0] == "NOTIFY":
                ep.send(S.answer(m, 200, "OK"), port)

    r = sip_next(200)
    t.ok(r is not None, "SUBSCRIBE to an XMPP user: 200")
    got = alice.expect(lambda e: e.tag == X.C("presence") and e.get("type") == "subscribe")
    t.ok(got is not None and got.get("from", "").startswith(bobj),
         "alice gets a presence subscription request from bob", repr(got))
    alice.send(X.stanza("presence", {"to": bobj, "type": "subscribed"}))
    n = sip_next("NOTIFY")
    while n is not None and "active" not in n[1].get("subscription-state", ""):
        n = sip_next("NOTIFY")
    t.ok(n is not None, "alice's subscribed -> NOTIFY active")
    alice.send(X.stanza("presence", {}, X.el("show", "dnd") +
                        X.el("status", "im Meeting", {"xml:lang": "de"})))
    # Prosody first sends her current (available) presence to the new
    # subscriber; the dnd one follows
    n = sip_next("NOTIFY")
    while n is not None and b"im Meeting" not in n[2]:
        n = sip_next("NOTIFY")
    body = n[2].decode() if n else ""
    t.like(body, "<rpid:busy/>", "alice's dnd -> PIDF open + rpid:busy")
    t.like(body, 'xml:lang="de">im Meeting</note>', "her status with its language")
    ep.close()
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM")


if __name__ == "__main__":
    T.Test(alarm=120).run(main)

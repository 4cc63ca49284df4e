#!/usr/bin/env python3
"""Pinned peer certificates in s2s mode (`pin = DOMAIN=sha256:VALUE`).

Prosody (xmpp.example) presents a certificate of the test CA that
verifies and names its domain.  With imgwd pinning another certificate of
the same CA for xmpp.example, both directions are refused with a log line
that names the pin (the CA verifying does not override it): imgwd's
outbound stream to Prosody, whose waiting message comes back to the jsonl
sender as an error, and Prosody's inbound stream to imgwd, whose message
never reaches the jsonl user.  After a reload that pins Prosody's real
certificate (a second pin, by the certificate's digest in hex, beside the
wrong key pin) messages cross both ways.
"""

import imgwtest as T
import xmpptest as X
import s2stest as S
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    pki = S.Pki(t)
    gw_port = T.free_port()
    corp_port = T.free_port()
    pro = S.S2SProsody(t, gw_port, pki=pki, users={"alice": "alice-pw"})
    real, _ = pki.cert(X.DOMAIN)			# what Prosody presents
    other, _ = pki.cert(X.DOMAIN, tag="-2")	# same CA, same name, another key
    wrong = pki.spki_pin(other)
    t.ok(wrong != pki.spki_pin(real), "two certificates of the same CA, two keys")
    conf = S.gateway_config(pro, corp_port, gw_port, pki=pki)
    conf["community xmpp"]["pin"] = "%s=%s" % (X.DOMAIN, wrong)
    gw = t.gateway(conf, name="gw-pin")
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running")
    bob = t.client("tcp:127.0.0.1:%d" % corp_port)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")

    # --- outbound: imgwd -> Prosody refused --------------------------------
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "o-1", "body": "hi"})
    got = bob.expect(lambda o: o.get("type") == "error" and o.get("id") == "o-1",
                     timeout=15)
    t.ok(got is not None and got.get("condition") == "remote-server-not-found",
         "outbound: the message comes back remote-server-not-found", repr(got))
    t.like(got.get("text", "") if got else "", "matches no pin",
           "the error text says the certificate matches no pin")
    t.like(gw.log(), "s2s: refusing outbound stream to xmpp.example",
           "the refusal is logged")
    t.like(gw.log(), "the certificate matches no pin of xmpp.example (its key is "
           + pki.spki_pin(real) + ")", "the log line names the pin mismatch and the "
           "key the peer showed")
    t.ok(alice.expect(lambda e: e.tag == C("message") and e.get("id") == "o-1",
                      timeout=1) is None, "alice gets nothing")

    # --- inbound: Prosody -> imgwd refused ------------------------------------
    alice.send(X.stanza("message", {"to": BOB, "type": "chat", "id": "i-1"},
                        X.el("body", "hello")))
    deadline = T.time.monotonic() + 15
    while "refusing inbound stream from xmpp.example" not in gw.log() and \
            T.time.monotonic() < deadline:
        T.time.sleep(0.1)
    t.ok(any("refusing inbound stream from xmpp.example" in line and
             "matches no pin" in line for line in gw.log().splitlines()),
         "inbound: Prosody's stream is refused with a log line naming the pin")
    t.ok(bob.expect(lambda o: o.get("id") == "i-1", timeout=2) is None,
         "bob gets nothing over the refused stream")
    c = gw.community("xmpp")["counters"]
    t.cmp_ok(c.get("s2s-cert-refused", 0), ">=", 2, "s2s-cert-refused counts both")

    # --- the right pin (certificate digest, hex), beside the wrong one -----
    conf["community xmpp"]["pin"] = "%s=%s %s=%s" % (X.DOMAIN, wrong, X.DOMAIN,
                                                      pki.cert_pin(real))
    gw.write_config(conf)
    gw.hup()
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running" and
                   s.get("reloads", 0) >= 1, timeout=10)
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "o-2", "body": "again"})
    got = alice.expect(lambda e: e.tag == C("message") and e.get("id") == "o-2",
                       timeout=20)
    t.ok(got is not None, "with Prosody's certificate pinned, imgwd -> Prosody works")
    alice.send(X.stanza("message", {"to": BOB, "type": "chat", "id": "i-2"},
                        X.el("body", "hello again")))
    got = bob.expect(lambda o: o.get("id") == "i-2", timeout=20)
    t.ok(got is not None, "and Prosody -> imgwd too")
    t.ok(gw.alive(), "imgwd is alive")
    t.is_(gw.term(), 0, "imgwd exits cleanly on SIGTERM (a sanitizer build fails "
          "here on a leak)")


T.Test(alarm=120).run(main)

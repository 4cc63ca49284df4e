#!/usr/bin/env python3
"""The xmpp connector in server-to-server mode against a real Prosody, in
clear text on loopback (allow-plaintext = yes, Prosody with
s2s_require_encryption = false and no certificate), authenticated by
dialback (XEP-0220) both ways with the full round trip: Prosody's key is
checked with Prosody over imgwd's outbound stream (db:verify), and imgwd's
key is checked by Prosody calling imgwd's listener back.

Also: a peer claiming xmpp.example with a key Prosody never made is
refused; a stanza before authentication and a forged from get the right
stream errors; imgwd answers db:verify for a key it did not make with
type='invalid'.
"""

import imgwtest as T
import xmpptest as X
import s2stest as S
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"


def is_type(kind, id_=None):
    return lambda o: o.get("type") == kind and (id_ is None or o.get("id") == id_)


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    gw_port = T.free_port()
    corp_port = T.free_port()
    pro = S.S2SProsody(t, gw_port, pki=None, users={"alice": "alice-pw"})
    gw = t.gateway(S.gateway_config(pro, corp_port, gw_port, pki=None,
                                    **{"dialback-secret": "test-secret"}))
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running")
    bob = t.client("tcp:127.0.0.1:%d" % corp_port)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")

    alice.send(X.stanza("message", {"to": BOB, "type": "chat", "id": "d-1"},
                        X.el("body", "over dialback")))
    got = bob.expect(is_type("message", "d-1"), timeout=20)
    t.ok(got is not None and got.get("body") == "over dialback"
         and got.get("from") == ALICE + "/desk",
         "message Prosody -> imgwd after dialback", repr(got))
    t.like(gw.log(), "s2s inbound stream from xmpp.example (", "inbound stream authenticated")
    t.like(gw.log(), "by dialback in clear text",
           "... by dialback (key checked with Prosody), in clear text")

    bob.send({"type": "message", "from": BOB + "/r", "to": ALICE + "/desk", "id": "d-2",
              "body": "back over dialback"})
    got = alice.expect(lambda e: e.tag == C("message") and e.get("id") == "d-2", timeout=20)
    t.ok(got is not None and X.text_of(got, "body") == "back over dialback"
         and got.get("from") == BOB + "/r", "message imgwd -> Prosody after dialback",
         repr(got is not None and X.ET.tostring(got)))
    ctr = gw.community("xmpp").get("counters", {})
    t.cmp_ok(ctr.get("s2s-dialback-verified", 0), ">=", 1,
             "Prosody asked imgwd to verify its key, and it was valid")

    bob.send({"type": "presence", "from": BOB + "/r", "to": ALICE + "/desk", "id": "d-3",
              "show": "chat"})
    got = alice.expect(lambda e: e.tag == C("presence") and e.get("id") == "d-3", timeout=10)
    t.ok(got is not None and X.text_of(got, "show") == "chat", "presence imgwd -> Prosody")
    alice.send(X.stanza("presence", {"to": BOB, "id": "d-4"}, X.el("show", "xa")))
    got = bob.expect(is_type("presence", "d-4"), timeout=10)
    t.ok(got is not None and got.get("show") == "xa", "presence Prosody -> imgwd", repr(got))

    # --- a stanza before authentication ---------------------------------------
    raw = S.RawPeer(gw_port, X.DOMAIN)
    raw.send("<message xmlns='jabber:server' from='alice@xmpp.example' to='%s' "
             "id='x'><body>x</body></message>" % BOB)
    t.is_(raw.stream_error(), "not-authorized", "stanza before dialback -> not-authorized")
    raw.close()

    # --- a key Prosody never made -------------------------------------------
    raw = S.RawPeer(gw_port, X.DOMAIN)
    raw.send("<db:result from='%s' to='%s'>%s</db:result>" % (X.DOMAIN, S.GW_DOMAIN,
                                                              "ab" * 32))
    res = raw.next(10)
    t.ok(res is not None and res.tag == "{%s}result" % S.NS_DB
         and res.get("type") == "invalid",
         "a dialback key xmpp.example's server does not know -> db:result invalid",
         repr(res is not None and S.ET.tostring(res)))
    t.is_(raw.stream_error(), "not-authorized", "... and the stream ends not-authorized")
    raw.close()

    # --- db:verify for a key imgwd did not make ----------------------------------
    raw = S.RawPeer(gw_port, X.DOMAIN)
    raw.send("<db:verify from='%s' to='%s' id='abc'>%s</db:verify>"
             % (X.DOMAIN, S.GW_DOMAIN, "cd" * 32))
    res = raw.next(10)
    t.ok(res is not None and res.tag == "{%s}verify" % S.NS_DB
         and res.get("type") == "invalid" and res.get("id") == "abc",
         "db:verify of a key imgwd never sent -> type='invalid'",
         repr(res is not None and S.ET.tostring(res)))
    # forged from after a (fake) authentication is covered over TLS; here a
    # stream claiming a domain it was never authenticated for:
    raw.send("<message xmlns='jabber:server' from='eve@other.example' to='%s' "
             "id='f'><body>f</body></message>" % BOB)
    t.is_(raw.stream_error(), "not-authorized",
          "stanza on a stream with no authenticated domain -> not-authorized")
    raw.close()
    # --- bad XML before authentication ---------------------------------------
    for data, cond, what in (
            ("<!-- a comment -->", "restricted-xml", "a comment"),
            ("<message><<>", "not-well-formed", "garbage"),
            ("<message a='" + "x" * 400000, "policy-violation",
             "an unterminated 400 kB attribute"),
            ("<a>" * 100, "policy-violation", "elements nested 100 deep")):
        raw = S.RawPeer(gw_port, X.DOMAIN)
        raw.send(data)
        t.is_(raw.stream_error(), cond, "%s -> %s" % (what, cond))
        raw.close()
    got = bob.expect(lambda o: o.get("id") in ("x", "f"), timeout=1)
    t.ok(got is None, "nothing from the refused streams crossed")
    alice.send(X.stanza("message", {"to": BOB, "type": "chat", "id": "d-5"},
                        X.el("body", "still here")))
    got = bob.expect(is_type("message", "d-5"), timeout=10)
    t.ok(gw.alive() and got is not None, "the gateway keeps serving")

    # stop with streams open: the s2s shutdown path (ASan builds check leaks)
    rc = gw.term()
    t.is_(rc, 0, "imgwd stops cleanly with s2s streams open")
    t.ok("Sanitizer" not in gw.log() and "runtime error" not in gw.log(),
         "no sanitizer report")


if __name__ == "__main__":
    T.Test(alarm=180).run(main)

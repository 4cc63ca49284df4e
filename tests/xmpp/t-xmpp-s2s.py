#!/usr/bin/env python3
"""The xmpp connector in server-to-server mode against a real Prosody, over
TLS with a test CA.

imgwd serves corp.example on the XMPP network (a jsonl community behind
it); a private Prosody serves xmpp.example with s2s_secure_auth, its s2s
for corp.example routed to imgwd's s2s port.  Both directions run
STARTTLS with certificates from the test CA and SASL EXTERNAL.  The
Prosody user alice and the jsonl user bob exchange messages, presence and
subscriptions both ways.  Then, with a hand-made peer: a forged from
domain gets invalid-from, malformed XML not-well-formed, an oversized
stanza policy-violation, a certificate from another CA is refused with a
log line that says why (inbound, and outbound against a fake server) —
and the gateway keeps serving alice and bob after each.
"""

import socket
import ssl
import threading

import imgwtest as T
import xmpptest as X
import s2stest as S
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"


def is_type(kind, id_=None):
    return lambda o: o.get("type") == kind and (id_ is None or o.get("id") == id_)


def is_msg(id_=None):
    return lambda e: e.tag == C("message") and (id_ is None or e.get("id") == id_)


def bare(j):
    return (j or "").split("/", 1)[0]


def roundtrip(t, alice, bob, tag):
    """A message each way; True when both arrive."""
    alice.send(X.stanza("message", {"to": BOB, "type": "chat", "id": "a-" + tag},
                        X.el("body", "ping " + tag)))
    got1 = bob.expect(is_type("message", "a-" + tag), timeout=10)
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "b-" + tag,
              "body": "pong " + tag})
    got2 = alice.expect(is_msg("b-" + tag), timeout=10)
    return got1 is not None and got2 is not None


def fake_server(t, pki, domain, ready):
    """A peer server for `domain` presenting a certificate from the other
    CA: header, STARTTLS, then TLS with the wrong certificate."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    port = ls.getsockname()[1]
    crt, key = pki.cert(domain, ca=pki.other_ca)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    seen = {"tls": 0}

    def serve():
        ls.settimeout(30)
        try:
            c, _ = ls.accept()
            c.settimeout(10)
            buf = b""
            while b"<stream:stream" not in buf or not buf.rstrip().endswith(b">"):
                buf += c.recv(4096)
            c.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                       "xmlns:stream='%s' from='%s' id='fake1' version='1.0'>"
                       "<stream:features><starttls xmlns='%s'><required/></starttls>"
                       "</stream:features>" % (S.NS_STREAM, domain, S.NS_TLS)).encode())
            buf = b""
            while b"starttls" not in buf:
                buf += c.recv(4096)
            c.sendall(("<proceed xmlns='%s'/>" % S.NS_TLS).encode())
            try:
                tc = ctx.wrap_socket(c, server_side=True)
                seen["tls"] = 1
                tc.recv(100)
            except (ssl.SSLError, OSError):
                seen["tls"] = 2
        except OSError:
            pass
        finally:
            ls.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    ready.append(port)
    return th, seen


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    pki = S.Pki(t)
    gw_port = T.free_port()
    corp_port = T.free_port()
    pro = S.S2SProsody(t, gw_port, pki=pki, users={"alice": "alice-pw"})
    ready = []
    fake_th, fake_seen = fake_server(t, pki, "evil.example", ready)
    conf = S.gateway_config(pro, corp_port, gw_port, pki=pki)
    conf["community xmpp"]["domains"] = "%s evil.example" % X.DOMAIN
    conf["community xmpp"]["peer"] += " evil.example=127.0.0.1:%d" % ready[0]
    gw = t.gateway(conf)
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running")
    t.is_(gw.community("xmpp", st)["state"], "running", "the s2s community is running")

    bob = t.client("tcp:127.0.0.1:%d" % corp_port)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")

    # --- XMPP -> jsonl: Prosody opens s2s to imgwd (inbound) ----------------
    body = "Gr\u00fc\u00dfe \u2713 <tags> & \"quotes\"\nline two\U0001F600"
    alice.send(X.stanza("message", {"to": BOB + "/phone", "type": "chat", "id": "m-1",
                                    "xml:lang": "de"},
                        X.el("subject", "Betreff") + X.el("body", body) +
                        X.el("thread", "th-1")))
    got = bob.expect(is_type("message", "m-1"), timeout=20)
    want = {"from": ALICE + "/desk", "to": BOB + "/phone", "id": "m-1",
            "subject": "Betreff", "body": body, "thread": "th-1", "lang": "de"}
    t.ok(got is not None and all(got.get(k) == v for k, v in want.items()),
         "message Prosody -> imgwd over s2s: from, to, id, subject, body, thread, lang",
         "got %r" % (got,))
    log = gw.log()
    t.like(log, "s2s inbound stream from xmpp.example", "inbound s2s stream authenticated")
    t.like(log, "over TLS", "... over TLS")

    # --- jsonl -> XMPP: imgwd opens s2s to Prosody (outbound) ---------------
    m2 = {"type": "message", "from": BOB + "/laptop", "to": ALICE + "/desk",
          "id": "m-2", "thread": "th-1", "subject": "Re: <x>", "lang": "en",
          "body": "Thanks \u2014 & <more>\n\U0001F44D"}
    bob.send(m2)
    got = alice.expect(is_msg("m-2"), timeout=20)
    t.ok(got is not None, "message imgwd -> Prosody over s2s arrives")
    if got is not None:
        t.is_(got.get("from"), BOB + "/laptop", "from is bob's own JID (no escaping)")
        t.is_(X.text_of(got, "body"), m2["body"], "body intact")
        t.is_(X.text_of(got, "subject"), m2["subject"], "subject intact")
        t.is_(X.text_of(got, "thread"), "th-1", "thread intact")
        t.is_(got.get(X.XML_LANG), "en", "xml:lang kept")
    t.like(gw.log(), "s2s outbound stream corp.example -> xmpp.example",
           "outbound s2s stream authenticated")

    # --- presence and subscriptions both ways ---------------------------------
    alice.send(X.stanza("presence", {"to": BOB, "id": "p-1"},
                        X.el("show", "dnd") + X.el("status", "busy") +
                        X.el("priority", "5")))
    got = bob.expect(is_type("presence", "p-1"), timeout=10)
    t.ok(got is not None and got.get("show") == "dnd" and got.get("status") == "busy"
         and got.get("priority") == 5, "directed presence Prosody -> imgwd", repr(got))
    bob.send({"type": "presence", "from": BOB + "/laptop", "to": ALICE + "/desk",
              "id": "p-2", "show": "away", "status": "lunch"})
    got = alice.expect(lambda e: e.tag == C("presence") and e.get("id") == "p-2",
                       timeout=10)
    t.ok(got is not None and X.text_of(got, "show") == "away"
         and X.text_of(got, "status") == "lunch", "presence imgwd -> Prosody",
         repr(got is not None and X.ET.tostring(got)))
    alice.send(X.stanza("presence", {"to": BOB, "type": "subscribe", "id": "s-1"}))
    got = bob.expect(is_type("subscribe"), timeout=10)
    t.ok(got is not None and bare(got.get("from")) == ALICE, "subscribe Prosody -> imgwd",
         repr(got))
    bob.send({"type": "subscribed", "from": BOB, "to": ALICE, "id": "s-2"})
    bob.send({"type": "subscribe", "from": BOB, "to": ALICE, "id": "s-3"})
    got = alice.expect(lambda e: e.tag == C("presence") and e.get("type") == "subscribe",
                       timeout=10)
    t.ok(got is not None and bare(got.get("from")) == BOB, "subscribe imgwd -> Prosody",
         repr(got))
    alice.send(X.stanza("presence", {"to": BOB, "type": "subscribed", "id": "s-4"}))
    got = bob.expect(is_type("subscribed"), timeout=10)
    t.ok(got is not None, "subscribed Prosody -> imgwd", repr(got))

    # --- chat state and a stanza error back -----------------------------------
    alice.send(X.stanza("message", {"to": BOB, "type": "chat", "id": "cs-1"},
                        "<composing xmlns='%s'/>" % X.NS_CHATSTATES))
    got = bob.expect(is_type("chatstate", "cs-1"), timeout=10)
    t.ok(got is not None and got.get("state") == "composing", "chat state crosses", repr(got))
    alice.send(X.stanza("message", {"to": "nobody@corp.example", "type": "chat",
                                    "id": "m-nobody"}, X.el("body", "hello?")))
    got = alice.expect(is_msg("m-nobody"), timeout=10)
    t.ok(got is not None and X.error_of(got) is not None,
         "a message to an unknown jsonl user comes back as a stanza error over s2s",
         repr(got is not None and X.ET.tostring(got)))

    # --- forged from on an authenticated inbound stream -----------------------
    crt = pki.cert(X.DOMAIN)
    raw = S.RawPeer(gw_port, X.DOMAIN, cert=crt, ca=pki.ca_file())
    raw.starttls()
    r = raw.sasl_external()
    t.ok(r is not None and r.tag == "{%s}success" % S.NS_SASL,
         "a peer with a good certificate authenticates by SASL EXTERNAL")
    raw.send("<message xmlns='jabber:server' from='alice@xmpp.example/x' to='%s' "
             "id='raw-1' type='chat'><body>from the raw peer</body></message>" % BOB)
    got = bob.expect(is_type("message", "raw-1"), timeout=10)
    t.ok(got is not None, "a stanza from the authenticated domain crosses")
    raw.send("<message xmlns='jabber:server' from='mallory@evil.example' to='%s' "
             "id='forged'><body>forged</body></message>" % BOB)
    t.is_(raw.stream_error(), "invalid-from", "forged from domain -> stream error invalid-from")
    raw.close()
    got = bob.expect(is_type("message", "forged"), timeout=1)
    t.ok(got is None, "the forged stanza did not cross")
    t.ok(gw.alive() and roundtrip(t, alice, bob, "after-forged"),
         "the gateway keeps serving after a forged from")

    # --- malformed XML, oversized stanza -------------------------------------
    raw = S.RawPeer(gw_port, X.DOMAIN, cert=crt, ca=pki.ca_file())
    raw.starttls()
    raw.sasl_external()
    raw.send("<message xmlns='jabber:server' from='alice@xmpp.example' to='%s'>"
             "<body>x</bod></message>" % BOB)
    t.is_(raw.stream_error(), "not-well-formed", "malformed XML -> not-well-formed")
    raw.close()
    raw = S.RawPeer(gw_port, X.DOMAIN, cert=crt, ca=pki.ca_file())
    raw.starttls()
    raw.sasl_external()
    raw.send("<message xmlns='jabber:server' from='alice@xmpp.example' to='%s'><body>"
             % BOB + "y" * 300000 + "</body></message>")
    t.is_(raw.stream_error(), "policy-violation", "oversized stanza -> policy-violation")
    raw.close()
    raw = S.RawPeer(gw_port, X.DOMAIN)
    raw.send("<message xmlns='jabber:server' from='alice@xmpp.example' to='%s'>"
             "<body>clear</body></message>" % BOB)
    t.is_(raw.stream_error(), "policy-violation",
          "a stanza before STARTTLS (allow-plaintext off) -> policy-violation")
    raw.close()

    # --- a certificate from another CA ----------------------------------------
    raw = S.RawPeer(gw_port, X.DOMAIN, cert=pki.cert(X.DOMAIN, ca=pki.other_ca),
                    ca=pki.ca_file())
    try:
        feats = raw.starttls()
        err = S.stream_condition(feats) or raw.stream_error()
    except (S.StreamClosed, ssl.SSLError, OSError) as e:
        err = "closed: %s" % e
    raw.close()
    t.is_(err, "not-authorized", "inbound peer with another CA's certificate -> "
          "not-authorized")
    t.like(gw.log(), "refusing inbound stream from xmpp.example",
           "... and the log says whom it refused")
    t.like(gw.log(), "certificate verify failed", "... and why")

    bob.send({"type": "message", "from": BOB, "to": "eve@evil.example", "id": "m-evil",
              "body": "hello evil"})
    got = bob.expect(lambda o: o.get("type") == "error" and o.get("id") == "m-evil",
                     timeout=15)
    t.ok(got is not None and got.get("condition") == "remote-server-not-found",
         "outbound to a server with another CA's certificate: bob gets "
         "remote-server-not-found", repr(got))
    t.like(gw.log(), "refusing outbound stream to evil.example",
           "... and the log names the refused server")
    fake_th.join(5)
    t.ok(gw.alive() and roundtrip(t, alice, bob, "final"),
         "alice and bob still talk after all that")
    ctr = gw.community("xmpp").get("counters", {})
    t.cmp_ok(ctr.get("s2s-cert-refused", 0), ">=", 2, "s2s-cert-refused counted")
    t.cmp_ok(ctr.get("s2s-forged-from", 0), ">=", 1, "s2s-forged-from counted")

    # stop with streams open: the s2s shutdown path (ASan builds check leaks)
    rc = gw.term()
    t.is_(rc, 0, "imgwd stops cleanly with s2s streams open")
    t.ok("Sanitizer" not in gw.log() and "runtime error" not in gw.log(),
         "no sanitizer report")


if __name__ == "__main__":
    T.Test(alarm=240).run(main)

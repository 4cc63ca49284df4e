#!/usr/bin/env python3
"""MESSAGE from SIP into imgwd, to a jsonl user.

sipp sends MESSAGEs over UDP and over TCP (202 expected) and the jsonl
user gets body, subject, thread (the Call-ID) and lang intact; a raw
MESSAGE with a GRUU, percent-escapes, a Latin-1 body and isComposing
checks the address, charset and chat state mappings; OPTIONS is answered
with Allow and Accept.
"""

import siptest as S
import imgwtest as T


def main(t):
    if S.SIPP is None:
        t.skip("sipp MESSAGE", "sipp is not installed (apt-get install sip-tester)")
        return
    gw = S.gateway(t)
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    for proto in ("udp", "tcp"):
        body = "Hallo Alice \u2713 via %s" % proto
        rc, out = S.sipp(t, "uac-message.xml", gw.sip_port, proto=proto, keys={
            "from": "bob@sip.example", "to": "alice@corp.example",
            "body": body, "subject": "Greetings %s" % proto, "lang": "de"},
            extra=["-m", "1"])
        t.is_(rc, 0, "sipp %s: MESSAGE answered 202" % proto)
        if rc != 0:
            t.diag(out[-1500:])
            t.diag(S.sipp_errors(t, "uac-message.xml"))
        got = alice.expect({"type": "message"})
        t.ok(got is not None, "%s: the message reaches the jsonl user" % proto)
        got = got or {}
        t.is_(got.get("from"), "bob@sip.example", "%s: from is the SIP user" % proto)
        t.is_(got.get("to"), "alice@corp.example", "%s: to is the jsonl user" % proto)
        # sipp ends every scenario line, the body's last one too, with CRLF
        t.is_(got.get("body"), body + "\r\n", "%s: body intact (UTF-8)" % proto)
        t.is_(got.get("subject"), "Greetings %s" % proto, "%s: Subject -> subject" % proto)
        t.is_(got.get("lang"), "de", "%s: Content-Language -> lang" % proto)
        t.ok(isinstance(got.get("thread"), str) and len(got.get("thread")) > 3,
             "%s: Call-ID -> thread" % proto, repr(got))

    ep = S.Endpoint("udp")
    # GRUU and escapes: sip:b%40x@... with gr -> resource
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep,
                      frm="b%20ob@sip.example;gr=urn:uuid:1234",
                      body="escaped", callid="thread-42@host"), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 202, "escaped From with gr: 202")
    got = alice.expect({"type": "message", "body": "escaped"}) or {}
    t.is_(got.get("from"), "b\\20ob@sip.example/urn:uuid:1234",
          "percent-escaped user and gr parameter map to user and resource")
    t.is_(got.get("thread"), "thread-42@host", "Call-ID is the thread")

    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep,
                      body="Gr\xfc\xdfe".encode("latin-1"),
                      ctype="text/plain; charset=ISO-8859-1"), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 202, "ISO-8859-1 body: 202")
    got = alice.expect({"type": "message"}) or {}
    t.is_(got.get("body"), "Gr\u00fc\u00dfe", "ISO-8859-1 body converted to UTF-8")

    isc = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
           '<state>active</state><contenttype>text/plain</contenttype>'
           '</isComposing>')
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep, body=isc,
                      ctype="application/im-iscomposing+xml"), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 202, "isComposing: 202")
    got = alice.expect({"type": "chatstate"}) or {}
    t.is_(got.get("state"), "composing", "isComposing active -> chat state composing")

    ep.send(S.request("OPTIONS", "sip:gw@sip.example", ep, to="gw@sip.example"),
            gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 200, "OPTIONS: 200")
    t.like(r and r[1].get("allow"), "MESSAGE", "OPTIONS: Allow names MESSAGE")
    t.like(r and r[1].get("accept"), "text/plain", "OPTIONS: Accept names text/plain")

    # a retransmission gets the same answer, and no second event
    req = S.request("MESSAGE", "sip:alice@corp.example", ep, body="once")
    ep.send(req, gw.sip_port)
    r1 = ep.recv()
    ep.send(req, gw.sip_port)
    r2 = ep.recv()
    t.ok(r1 and r2 and r1[0] == r2[0] == 202 and r1[1]["to"] == r2[1]["to"],
         "a retransmitted MESSAGE gets the same 202 (same To tag)")
    got = alice.expect({"type": "message", "body": "once"})
    again = alice.expect({"type": "message", "body": "once"}, timeout=0.5)
    t.ok(got is not None and again is None, "a retransmission is not a second message")
    ep.close()
    st = gw.community("sipc")
    t.ok(st is not None and st.get("state") == "running",
         "the sip community is up", repr(st))
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test().run(main)

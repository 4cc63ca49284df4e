#!/usr/bin/env python3
"""What imgwd answers to bad or refused SIP requests, and that it lives.

Malformed datagrams (garbage, missing headers, bad CSeq, a huge one, a
truncated body), TCP without Content-Length, an untrusted source
(127.0.0.2), Max-Forwards 0, a loop through our own Via, unknown methods,
INVITE, Require, foreign From, own-domain target, unsupported content
type and charset, bad isComposing; with answer-wait, errors the core
reports at once (unknown domain, nobody bound) become SIP codes
(RFC 7247 7.1).  After all of it a valid MESSAGE still goes through.
"""

import siptest as S
import imgwtest as T


def code(ep, timeout=2):
    r = ep.recv(timeout)
    return r[0] if r else None


def main(t):
    gw = S.gateway(t, {"answer-wait": 300})
    port = gw.sip_port
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    ep = S.Endpoint("udp")

    def req(*a, **kw):
        return S.request(*a, **kw)

    # --- malformed -----------------------------------------------------
    for name, data in (
        ("garbage", b"\x00\xff garbage \r\n\r\n"),
        ("empty lines", b"\r\n\r\n"),
        ("a start line only", b"MESSAGE sip:a@b SIP/2.0\r\n\r\n"),
        ("binary noise", bytes(range(256)) * 4),
    ):
        ep.send(data, port)
        t.is_(code(ep, 0.5), None, "%s: no answer (nothing to answer to)" % name)
    for name, mangle in (
        ("no Call-ID", lambda r: r.replace(b"Call-ID:", b"X-Call-ID:")),
        ("no From", lambda r: r.replace(b"From:", b"X-From:")),
        ("no CSeq", lambda r: r.replace(b"CSeq:", b"X-CSeq:")),
        ("CSeq method differs", lambda r: r.replace(b"CSeq: 1 MESSAGE", b"CSeq: 1 INFO")),
        ("bad CSeq number", lambda r: r.replace(b"CSeq: 1 ", b"CSeq: x1 ")),
    ):
        ep.send(mangle(req("MESSAGE", "sip:alice@corp.example", ep, body="x")), port)
        t.is_(code(ep), 400, "%s: 400" % name)
    huge = req("MESSAGE", "sip:alice@corp.example", ep, body="x" * 70000)
    ep.s.setsockopt(S.socket.SOL_SOCKET, S.socket.SO_SNDBUF, 1 << 20)
    try:
        ep.send(huge[:65000], port)   # Content-Length says more than came
        t.ok(code(ep) in (400, None), "truncated body: 400 or dropped")
    except OSError as e:
        t.ok(False, "sending a large datagram: %s" % e)
    gw2big = req("MESSAGE", "sip:alice@corp.example", ep, body="y" * 64000)
    ep.send(gw2big, port)
    t.is_(code(ep), 202, "a 64000-byte MESSAGE under max-message is taken")
    alice.expect({"type": "message"}, timeout=2)

    tcp = S.Endpoint("tcp")
    tcp.send(req("MESSAGE", "sip:alice@corp.example", tcp, body="").replace(
        b"Content-Length: 0\r\n", b""), port)
    t.is_(code(tcp), 400, "TCP without Content-Length: 400")
    tcp.close()
    tcp = S.Endpoint("tcp")
    tcp.send(req("MESSAGE", "sip:alice@corp.example", tcp, body="").replace(
        b"Content-Length: 0", b"Content-Length: 99999999"), port)
    t.is_(code(tcp), 513, "TCP with a Content-Length past max-message: 513")
    tcp.close()

    # --- refused by the stack -----------------------------------------
    other = S.Endpoint("udp", host="127.0.0.2")
    other.send(req("MESSAGE", "sip:alice@corp.example", other, body="hi"), port)
    t.is_(code(other), 403, "a source outside `trusted`: 403")
    other.close()
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="x").replace(
        b"Max-Forwards: 70", b"Max-Forwards: 0"), port)
    t.is_(code(ep), 483, "Max-Forwards 0: 483")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="x").replace(
        b"Max-Forwards: 70", b"Max-Forwards: many"), port)
    t.is_(code(ep), 400, "Max-Forwards not a number: 400")
    loop = req("MESSAGE", "sip:alice@corp.example", ep, body="x").replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-imgw0001\r\n"
        b"Max-Forwards" % port, 1)
    ep.send(loop, port)
    t.is_(code(ep), 482, "our own Via in the request: 482 Loop Detected")
    ep.send(req("PUBLISH", "sip:alice@corp.example", ep, body="x"), port)
    r = ep.recv()
    t.is_(r and r[0], 405, "a method outside Allow: 405")
    t.like(r and r[1].get("allow"), "MESSAGE", "405 carries Allow")
    ep.send(req("INVITE", "sip:alice@corp.example", ep), port)
    t.is_(code(ep), 405, "INVITE: 405")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="x",
                headers=["Require: foo"]), port)
    r = ep.recv()
    t.is_(r and r[0], 420, "Require: 420 Bad Extension")
    t.is_(r and r[1].get("unsupported"), "foo", "420 names it in Unsupported")

    # --- refused by the connector -------------------------------------
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, frm="eve@evil.example",
                body="x"), port)
    t.is_(code(ep), 403, "From outside the community's domains: 403")
    ep.send(req("MESSAGE", "sip:carol@sip.example", ep, body="x"), port)
    t.is_(code(ep), 404, "a target in the community's own domain: 404")
    ep.send(req("MESSAGE", "tel:+1234", ep, to="alice@corp.example", body="x"), port)
    t.is_(code(ep), 416, "a tel: Request-URI: 416")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="<b>x</b>",
                ctype="text/html"), port)
    r = ep.recv()
    t.is_(r and r[0], 415, "text/html: 415")
    t.like(r and r[1].get("accept"), "text/plain", "415 carries Accept")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="x",
                ctype="text/plain;charset=x-no-such"), port)
    t.is_(code(ep), 415, "a charset iconv does not know: 415")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body=b"\xff\xfe bad",
                ctype="text/plain;charset=UTF-8"), port)
    t.is_(code(ep), 400, "invalid UTF-8: 400")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="<isComposing",
                ctype="application/im-iscomposing+xml"), port)
    t.is_(code(ep), 400, "broken isComposing XML: 400")

    # --- errors the core reports during answer-wait -------------------
    ep.send(req("MESSAGE", "sip:x@nowhere.example", ep, body="x"), port)
    t.is_(code(ep), 404, "unknown domain (remote-server-not-found): 404")
    ep.send(req("MESSAGE", "sip:nobody@corp.example", ep, body="x"), port)
    t.is_(code(ep), 480, "nobody bound (recipient-unavailable): 480")

    # --- and it still works -------------------------------------------
    t.ok(gw.alive(), "imgwd is alive")
    ep.send(req("MESSAGE", "sip:alice@corp.example", ep, body="still here"), port)
    t.is_(code(ep), 202, "a valid MESSAGE afterwards: 202 (after answer-wait)")
    got = alice.expect({"type": "message", "body": "still here"}, timeout=3)
    t.ok(got is not None, "and it reaches the jsonl user")
    ep.close()
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test().run(main)

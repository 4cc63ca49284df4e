#!/usr/bin/env python3
"""Messages from a jsonl user out to SIP, and SIP failures back as errors.

A sipp UAS on the static route of sip.example checks the MESSAGE imgwd
sends (body, Content-Type, Via) and answers 200, then 404 and 480: the
jsonl sender gets nothing for 200 and error events with item-not-found
and recipient-unavailable (RFC 7247 7.2) carrying the message's id.  A
peer that never answers (a bound UDP socket that reads nothing) gives
remote-server-timeout (timer F); a UDP port nobody listens on gives
service-unavailable at once (ICMP port unreachable is a transport error);
a domain without a route gives remote-server-not-found.  A raw UAS over TCP checks
the mapping of resource -> gr, thread -> Call-ID, subject, lang.
"""

import json
import socket
import time

import siptest as S
import imgwtest as T


def main(t):
    uas_port = S.free_port_both()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    gw = S.gateway(t, {
        "route": "sip.example=udp:127.0.0.1:%d tcp.example=tcp:127.0.0.1:%d "
                 "silent.example=udp:127.0.0.1:%d gone.example=udp:127.0.0.1:%d"
                 % (uas_port, uas_port, silent.getsockname()[1], S.free_udp_port()),
        "domains": "sip.example tcp.example silent.example gone.example",
    })
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    if S.SIPP is None:
        t.skip("sipp UAS", "sipp is not installed (apt-get install sip-tester)")
    else:
        for code, cond in ((200, None), (404, "item-not-found"),
                           (480, "recipient-unavailable")):
            uas = S.sipp(t, "uas-message.xml", None, local_port=uas_port,
                         code=code, keys={"expect": "hello sip %d" % code},
                         extra=["-m", "1"], background=True)
            time.sleep(0.3)
            mid = "m%d" % code
            alice.send({"type": "message", "to": "bob@sip.example", "id": mid,
                        "body": "hello sip %d" % code})
            try:
                out, _ = uas.communicate(timeout=20)
            except Exception:
                uas.kill()
                out, _ = uas.communicate()
            t.is_(uas.returncode, 0, "sipp UAS took the MESSAGE and answered %d" % code)
            if uas.returncode != 0:
                t.diag(out.decode("utf-8", "replace")[-1500:])
                t.diag(S.sipp_errors(t, "uas-message.xml"))
            err = alice.expect({"type": "error", "id": mid}, timeout=2)
            if cond is None:
                t.ok(err is None, "200: no error comes back", repr(err))
            else:
                t.is_(err and err.get("condition"), cond,
                      "SIP %d -> error %s with the message's id" % (code, cond))
                t.is_(err and err.get("from"), "bob@sip.example",
                      "SIP %d: the error comes from the recipient" % code)

    # a raw UAS over TCP: the request's mapping
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", uas_port))
    ls.listen(4)
    ls.settimeout(5)
    alice.send({"type": "message", "to": "carol@tcp.example/phone 1", "id": "t1",
                "thread": "th-7", "subject": "Sub", "lang": "fr",
                "body": "caf\u00e9"})
    try:
        c, _ = ls.accept()
    except socket.timeout:
        c = None
    t.ok(c is not None, "imgwd connects over TCP to the route of tcp.example")
    if c is not None:
        ep = S.Endpoint.__new__(S.Endpoint)
        ep.proto, ep.buf, ep.s, ep.connected = "tcp", b"", c, True
        msg = ep.recv(5)
        t.ok(msg is not None and msg[0] == "MESSAGE", "a MESSAGE arrives over TCP")
        if msg is not None:
            h = msg[1]
            t.like(h.get("via"), "SIP/2.0/TCP", "Via names TCP")
            t.like(h.get("to"), "sip:carol@tcp.example;gr=phone%201",
                   "resource -> gr parameter, percent-encoded")
            t.is_(h.get("call-id"), "th-7", "thread -> Call-ID")
            t.is_(h.get("subject"), "Sub", "subject -> Subject")
            t.is_(h.get("content-language"), "fr", "lang -> Content-Language")
            t.is_(msg[2].decode("utf-8"), "caf\u00e9", "body in UTF-8")
            c.sendall(S.answer(msg, 503, "Service Unavailable"))
            err = alice.expect({"type": "error", "id": "t1"}, timeout=3)
            t.is_(err and err.get("condition"), "service-unavailable",
                  "SIP 503 over TCP -> service-unavailable")
        c.close()
    ls.close()

    # no route: refused at once
    alice.send({"type": "message", "to": "x@nowhere.example", "id": "n1", "body": "?"})
    err = alice.expect({"type": "error", "id": "n1"}, timeout=3)
    t.is_(err and err.get("condition"), "remote-server-not-found",
          "a domain nobody serves -> remote-server-not-found")

    # nobody on the port: ICMP port unreachable -> a transport error at once
    t0 = time.monotonic()
    alice.send({"type": "message", "to": "y@gone.example", "id": "g1", "body": "?"})
    err = alice.expect({"type": "error", "id": "g1"}, timeout=10)
    t.is_(err and err.get("condition"), "service-unavailable",
          "a UDP port nobody listens on -> service-unavailable")
    t.cmp_ok(time.monotonic() - t0, "<", 5, "at once (ICMP), not after timer F")

    # a peer that never answers: timer F (32 s) -> remote-server-timeout
    alice.send({"type": "message", "to": "y@silent.example", "id": "s1", "body": "?"})
    err = alice.expect({"type": "error", "id": "s1"}, timeout=40)
    t.is_(err and err.get("condition"), "remote-server-timeout",
          "no answer within timer F -> remote-server-timeout")
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")
    silent.close()


if __name__ == "__main__":
    T.Test(alarm=120).run(main)

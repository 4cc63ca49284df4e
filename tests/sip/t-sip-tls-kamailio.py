#!/usr/bin/env python3
"""SIP over TLS with a real peer: sipp <-UDP-> Kamailio <-TLS-> imgwd.

Debian's sipp has no TLS, so a private Kamailio (tls module,
tests/sip/kamailio-tls.cfg.in) relays between sipp's UDP and imgwd's
TLS with tm.  Mutual TLS, certificates from a private CA (siptest.make_certs):
Kamailio (sip.example) requires and verifies imgwd's certificate
(corp.example) both ways; imgwd requires client certificates
(tls-client-cert), trusts Kamailio by its certificate name only
(tls-names, no `trusted` address: Kamailio's connections come from
127.0.0.1, its route host is 127.0.0.2) and verifies Kamailio's server
certificate for sip.example on its route.

  sipp UAC -> Kamailio -> TLS -> imgwd: 202 at sipp; the jsonl user gets
    from, to and body
  jsonl -> imgwd -> TLS -> Kamailio -> sipp UAS: it arrives, no error;
    the UAS answering 404 / 486 / 503 -> the sender's error condition
    (RFC 7247 7.2: item-not-found, recipient-unavailable,
    service-unavailable)
  a Kamailio whose certificate names evil.example -> 403, nothing
    arrives; one whose certificate comes from another CA -> the handshake
    fails (counted), no 2xx, nothing arrives
  malformed input over TLS straight from a Python TLS client (Kamailio's
    own checks would stop it first): no CSeq -> 400 and the connection
    stays usable; no Via -> dropped, the next request on the connection
    is answered; a Content-Length past max-message -> 513 and the
    connection closes; garbage -> closed without an answer; imgwd stays
    up and answers the next connection.
SUBSCRIBE/NOTIFY through Kamailio needs dialog route sets (being done
separately); t-sip-tls.py covers them over TLS from a Python peer.
"""

import re
import socket
import ssl
import time

import siptest as S
import imgwtest as T


class E:
    """What S.request needs of an endpoint, for requests sent over TLS."""
    proto = "tls"
    port = 5061


def closed(ep, timeout=3):
    """True when the peer closes ep's connection within timeout (any
    bytes before that are read and dropped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ep.s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not ep.s.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ssl.SSLError, OSError):
            return True
    return False


def final(ep, timeout=8):
    """The first final response (>= 200) at ep, as its code, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = ep.recv(max(0.1, deadline - time.monotonic()))
        if r is None:
            return None
        if isinstance(r[0], int) and r[0] >= 200:
            return r[0]
    return None


def finish(uas, timeout=15):
    """sipp's exit status, killing it after timeout."""
    try:
        return uas.wait(timeout)
    except S.subprocess.TimeoutExpired:
        uas.kill()
        return uas.wait()


def counter(gw, name):
    return (gw.community("sipc") or {}).get("counters", {}).get(name, 0)


def main(t):
    why = S.kamailio_missing(("tls.so", "tm.so"), "kamailio-tls-modules")
    if why or S.SIPP is None or S.shutil.which("openssl") is None:
        t.skip("SIP over TLS through Kamailio", why or
               "sipp (sip-tester) and openssl are needed")
        return
    S.make_certs(t, ("corp.example", "sip.example", "evil.example"))
    S.make_certs(t, ("sip.example",), ca="ca2")
    gw_tls = S.free_port_both()
    uas_port = S.free_udp_port()
    kam = t.track(S.kamailio_tls_relay(t, "sip.example", gw_tls, uas_port=uas_port))
    gw = S.gateway(t, {
        "listen": "tls:127.0.0.1:%d" % gw_tls,
        "trusted": None,
        "route": "sip.example=tls:127.0.0.2:%d" % kam.tls_port,
        "tls-cert": t.path("corp.example.pem"), "tls-key": t.path("corp.example.key"),
        "tls-ca": t.path("ca.pem"), "tls-client-cert": "yes",
        "tls-names": "sip.example",
    }, start=False)
    gw.sip_port, gw.tls_port = None, gw_tls
    gw.start()
    kam.start()
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    # sipp -> Kamailio -> TLS -> imgwd -> jsonl
    body = "Hallo Alice \u2713 over TLS"
    rc, out = S.sipp(t, "uac-message.xml", kam.port, keys={
        "from": "bob@sip.example", "to": "alice@corp.example", "body": body,
        "subject": "via Kamailio", "lang": "de"}, extra=["-m", "1"])
    t.is_(rc, 0, "sipp -> Kamailio -> TLS -> imgwd: 202 back at sipp")
    if rc != 0:
        t.diag(out[-1500:])
        t.diag(S.sipp_errors(t, "uac-message.xml"))
    got = alice.expect({"type": "message"}) or {}
    t.is_(got.get("from"), "bob@sip.example", "the jsonl user gets it: from")
    t.is_(got.get("to"), "alice@corp.example", "to")
    t.is_(got.get("body"), body + "\r\n", "body intact (UTF-8)")
    t.is_(got.get("subject"), "via Kamailio", "subject")
    t.cmp_ok(counter(gw, "sip-tls-handshakes"), ">=", 1,
             "a TLS handshake with Kamailio was counted")

    # jsonl -> imgwd -> TLS -> Kamailio -> sipp UAS
    uas = S.sipp(t, "uas-message.xml", None, keys={"expect": "to sipp over TLS"},
                 extra=["-m", "1"], local_port=uas_port, background=True)
    time.sleep(0.3)
    alice.send({"type": "message", "to": "carol@sip.example", "id": "o1",
                "body": "to sipp over TLS"})
    rc = finish(uas)
    t.is_(rc, 0, "the sipp UAS behind Kamailio got the MESSAGE (body, "
          "Content-Type, Via checked) and answered 200")
    if rc != 0:
        t.diag(uas.stdout.read().decode("utf-8", "replace")[-1500:])
    err = alice.expect({"type": "error", "id": "o1"}, timeout=1)
    t.ok(err is None, "no error event for it", repr(err))

    for code, cond in ((404, "item-not-found"), (486, "recipient-unavailable"),
                       (503, "service-unavailable")):
        uas = S.sipp(t, "uas-message.xml", None, keys={"expect": "answer %d" % code},
                     extra=["-m", "1"], local_port=uas_port, background=True,
                     code=code)
        time.sleep(0.3)
        alice.send({"type": "message", "to": "carol@sip.example", "id": "e%d" % code,
                    "body": "answer %d" % code})
        err = alice.expect({"type": "error", "id": "e%d" % code}, timeout=8)
        t.is_(err and err.get("condition"), cond,
              "the UAS answers %d through Kamailio: %s" % (code, cond))
        finish(uas, 10)

    # Kamailio with a certificate imgwd does not trust
    evil = t.track(S.kamailio_tls_relay(t, "evil.example", gw_tls,
                                        name="kamailio-evil"))
    evil.start()
    ep = S.Endpoint("udp")
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep, body="from evil"),
            evil.port)
    t.is_(final(ep), 403, "a Kamailio certificate naming evil.example "
          "(verified, not in tls-names): 403 relayed back")
    t.ok(alice.expect({"type": "message", "body": "from evil"}, timeout=1) is None,
         "and the message does not arrive")
    evil.stop()

    rogue = t.track(S.kamailio_tls_relay(t, "ca2-sip.example", gw_tls,
                                         name="kamailio-ca2"))
    rogue.start()
    failures = counter(gw, "sip-tls-failures")
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep, body="other CA"),
            rogue.port)
    code = final(ep)
    t.ok(code is None or code >= 300, "a certificate for sip.example from another "
         "CA: no 2xx (Kamailio answers %r)" % code)
    t.ok(alice.expect({"type": "message", "body": "other CA"}, timeout=1) is None,
         "and the message does not arrive")
    t.cmp_ok(counter(gw, "sip-tls-failures"), ">", failures,
             "imgwd counts the failed handshake")
    rogue.stop()
    ep.close()

    # malformed input over TLS, straight from a Python TLS client
    msg = S.request("MESSAGE", "sip:alice@corp.example", E, body="after junk")
    ep = S.tls_connect(t, gw_tls, "sip.example")
    ep.s.sendall(S.request("MESSAGE", "sip:alice@corp.example", E, body="x").replace(
        b"CSeq: 1 MESSAGE\r\n", b""))
    r = ep.recv(5)
    t.is_(r and r[0], 400, "no CSeq: 400")
    ep.s.sendall(S.request("MESSAGE", "sip:alice@corp.example", E, body="no via")
                 .replace(b"Via: ", b"X-Via: "))
    ep.s.sendall(msg)
    r = ep.recv(5)
    t.is_(r and r[0], 202, "no Via: dropped; the next request on the same "
          "connection is framed and answered 202")
    t.is_([o.get("body") for o in alice.quiet(1) if o.get("type") == "message"],
          ["after junk"], "only the request after the one without Via arrives")
    ep.s.sendall(S.request("MESSAGE", "sip:alice@corp.example", E, body="x").replace(
        b"Content-Length: 1", b"Content-Length: 70000"))
    r = ep.recv(5)
    t.is_(r and r[0], 513, "Content-Length past max-message: 513")
    t.ok(closed(ep), "and the connection is closed")
    ep.close()

    ep = S.tls_connect(t, gw_tls, "sip.example")
    ep.s.sendall(b"\x00\x01garbage \xff\xfe not SIP at all\r\n\r\n")
    t.ok(closed(ep), "garbage (no Content-Length to frame it): closed, no answer")
    ep.close()

    t.ok(gw.proc.poll() is None, "imgwd is still running")
    # libosip2 5.3 starts a stdout logger of its own at the first message
    # it cannot parse, unless the stack set one (stack.c)
    t.ok(not re.search(r"\| ERROR \||<osip_", gw.log()), "and libosip2 wrote "
         "nothing of its own to imgwd's output (a peer must not be able to)")
    ep = S.tls_connect(t, gw_tls, "sip.example")
    ep.s.sendall(S.request("MESSAGE", "sip:alice@corp.example", E, body="still here"))
    r = ep.recv(5)
    t.is_(r and r[0], 202, "and answers a new TLS connection: 202")
    ep.close()
    t.ok(alice.expect({"type": "message", "body": "still here"}) is not None,
         "its message arrives")
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (no leaks under ASan)")


if __name__ == "__main__":
    T.Test().run(main)

#!/usr/bin/env python3
"""RFC 3263: a SIP peer without a static route, found through DNS SRV.

A private dnsmasq (`dns-server = 127.0.0.1:PORT`) knows
_sip._udp.srv.example -> uas.test on a sipp UAS's port, and uas.test's
address; _sip._tcp is NXDOMAIN.  imgwd has no `route`:

- a MESSAGE from the jsonl user to bob@srv.example reaches the sipp UAS
  (asked: the SRV records of TCP and UDP (not _sips._tcp: no tls-ca to
  check a server's certificate), then uas.test's
  A/AAAA; the log names the next hop, UDP uas.test[127.0.0.1]:PORT);
- a second message goes out from the cache of the answer (TTL, at least
  a second) or a fresh lookup, and arrives too;
- a domain with no record at all gives remote-server-not-found to the
  sender, naming the DNS failure;
- a SUBSCRIBE for a presentity of a domain without a route finds its
  server through SRV too (_sip._udp.pres.example -> a UDP endpoint); the
  200's Contact names a host (pres-host.test), and the refresh inside
  the dialog goes there through its A record (RFC 3263 for the remote
  target);
- dns = no: a domain without a route is remote-server-not-found at once,
  and DNS is not asked.
"""

import os
import time

import siptest as S
import imgwtest as T


def main(t):
    if S.SIPP is None:
        t.ok(True, "# SKIP sipp is not installed (apt-get install sip-tester)")
        return
    if not os.access(S.DNSMASQ, os.X_OK):
        t.ok(True, "# SKIP dnsmasq is not installed (Debian: dnsmasq-base)")
        return
    uas_port = S.free_udp_port()
    pres = S.Endpoint("udp")
    dns = S.Dnsmasq(t, [
        "--srv-host=_sip._udp.srv.example,uas.test,%d,10,0" % uas_port,
        "--host-record=uas.test,127.0.0.1",
        "--srv-host=_sip._udp.pres.example,uas.test,%d,10,0" % pres.port,
        "--host-record=pres-host.test,127.0.0.1",
    ])
    try:
        run(t, dns, uas_port, pres)
    finally:
        dns.stop()
        pres.close()


def send_to_uas(t, alice, uas_port, mid, to, label):
    uas = S.sipp(t, "uas-message.xml", None, local_port=uas_port,
                 keys={"expect": "hello %s" % mid}, extra=["-m", "1"], background=True)
    time.sleep(0.3)
    alice.send({"type": "message", "to": to, "id": mid, "body": "hello %s" % mid})
    try:
        out, _ = uas.communicate(timeout=20)
    except Exception:
        uas.kill()
        out, _ = uas.communicate()
    t.is_(uas.returncode, 0, label)
    if uas.returncode != 0:
        t.diag(out.decode("utf-8", "replace")[-1500:])
        t.diag(S.sipp_errors(t, "uas-message.xml"))
    err = alice.expect({"type": "error", "id": mid}, timeout=1)
    t.ok(err is None, "%s: no error comes back" % mid, repr(err))


def subscribe_by_dns(t, gw, alice, dns, pres):
    alice.send({"type": "subscribe", "to": "dave@pres.example", "id": "p1"})
    m = pres.recv(10)
    t.is_(m and m[0], "SUBSCRIBE", "the SUBSCRIBE reaches the server SRV names")
    if not m:
        return
    h = m[1]
    pres.send(("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=p1\r\n"
               "Call-ID: %s\r\nCSeq: %s\r\nExpires: 600\r\n"
               "Contact: <sip:dave@pres-host.test:%d>\r\nContent-Length: 0\r\n\r\n"
               % (h["via"], h["from"], h["to"], h["call-id"], h["cseq"], pres.port)
               ).encode(), gw.sip_port)
    pres.send(("NOTIFY %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p1\r\n"
               "From: <sip:dave@pres.example>;tag=p1\r\nTo: %s\r\nCall-ID: %s\r\n"
               "CSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n"
               "Contact: <sip:dave@pres-host.test:%d>\r\nEvent: presence\r\n"
               "Subscription-State: active;expires=600\r\nContent-Length: 0\r\n\r\n"
               % (h["contact"].strip("<>"), pres.port, h["from"], h["call-id"],
                  pres.port)).encode(), gw.sip_port)
    r = pres.recv(5)
    t.is_(r and r[0], 200, "our answer to the NOTIFY")
    got = alice.expect({"type": "subscribed", "from": "dave@pres.example"}, timeout=5)
    t.ok(got is not None, "alice is subscribed to dave")
    alice.send({"type": "probe", "to": "dave@pres.example"})
    r = pres.recv(10)
    t.is_(r and r[0], "SUBSCRIBE", "the refresh reaches the Contact's host")
    t.like(r and r[1].get("to") or "", "tag=p1", "inside the dialog")
    t.like(dns.text(), "query[A] pres-host.test",
           "the Contact's host name was looked up")
    if r:
        pres.send(S.answer(r, 200, "OK"), gw.sip_port)


def run(t, dns, uas_port, pres):
    gw = S.gateway(t, {
        "domains": "srv.example nothing.example pres.example",
        "dns-server": "127.0.0.1:%d" % dns.port,
    })
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    send_to_uas(t, alice, uas_port, "d1", "bob@srv.example",
                "the MESSAGE reaches the UAS found through SRV _sip._udp")
    q = dns.text()
    for name in ("_sip._tcp", "_sip._udp"):
        t.like(q, "query[SRV] %s.srv.example" % name, "SRV %s asked" % name)
    t.ok("_sips._tcp" not in q, "no _sips._tcp without tls-ca to check a server")
    t.like(q, "query[A] uas.test", "then the target's address")
    t.like(gw.log(), "RFC 3263: srv.example -> UDP uas.test[127.0.0.1]:%d"
           % uas_port, "the log names the next hop and its transport")

    send_to_uas(t, alice, uas_port, "d2", "carol@srv.example",
                "a second MESSAGE to the domain arrives too")

    alice.send({"type": "message", "to": "x@nothing.example", "id": "n1", "body": "?"})
    err = alice.expect({"type": "error", "id": "n1"}, timeout=10)
    t.is_(err and err.get("condition"), "remote-server-not-found",
          "a domain DNS does not know -> remote-server-not-found")
    t.like(err and err.get("text") or "", "no address for nothing.example",
           "the error names the DNS failure")
    t.like(dns.text(), "query[A] nothing.example",
           "without SRV records the domain's own address was asked (RFC 3263 4.2)")

    subscribe_by_dns(t, gw, alice, dns, pres)
    t.is_(gw.term(), 0, "imgwd stops cleanly (no leaks under ASan)")

    # dns = no: no lookup at all
    gw2 = S.gateway(t, {
        "domains": "x-srv.example",
        "dns-server": "127.0.0.1:%d" % dns.port,
        "dns": "no",
    })
    bob = t.client(gw2.listen("corp"))
    bob.bind("bob@corp.example")
    before = dns.text().count("x-srv.example")
    bob.send({"type": "message", "to": "x@x-srv.example", "id": "n2", "body": "?"})
    err = bob.expect({"type": "error", "id": "n2"}, timeout=3)
    t.is_(err and err.get("condition"), "remote-server-not-found",
          "dns = no: no route -> remote-server-not-found at once")
    t.is_(dns.text().count("x-srv.example"), before, "and DNS is not asked")
    t.is_(gw2.term(), 0, "imgwd stops cleanly")


if __name__ == "__main__":
    T.Test(alarm=120).run(main)

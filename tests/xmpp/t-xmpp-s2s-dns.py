#!/usr/bin/env python3
"""s2s name resolution: SRV _xmpp-server._tcp, then A/AAAA, off the loop.

A private DNS server (dnsmasq, Debian package dnsmasq-base, on a free port
of 127.0.0.1 with only the test's records) and imgwd in s2s mode with
`dns-server = 127.0.0.1:PORT` and no `peer` route for xmpp.example:

- _xmpp-server._tcp.xmpp.example has two SRV records: priority 10 to
  dead.test on a port where nothing listens, priority 20 to pro.test on
  Prosody's s2s port (RFC 2782: the lower priority first).  A message from
  the jsonl user reaches the Prosody user: imgwd found the targets, tried
  dead.test, was refused, went on to pro.test (log lines say so);
- while the lookup runs the loop is not blocked (the gateway answers its
  control socket; the jsonl line is served);
- a domain without any record (nowhere.example, NXDOMAIN) comes back to
  the sender as remote-server-not-found naming the DNS failure;
- a static `peer` route wins: after a reload that adds one and with the
  DNS server stopped, messages still cross and no lookup is counted.
"""

import os
import shutil
import subprocess
import time

import imgwtest as T
import xmpptest as X
import s2stest as S
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"
DNSMASQ = T.DNSMASQ
Dnsmasq = T.Dnsmasq


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    if not os.access(DNSMASQ, os.X_OK):
        t.ok(True, "# SKIP dnsmasq is not installed (Debian: dnsmasq-base)")
        return
    pki = S.Pki(t)
    gw_port = T.free_port()
    corp_port = T.free_port()
    dead_port = T.free_port()
    pro = S.S2SProsody(t, gw_port, pki=pki, users={"alice": "alice-pw"})
    dns = Dnsmasq(t, [
        "--srv-host=_xmpp-server._tcp.xmpp.example,dead.test,%d,10,0" % dead_port,
        "--srv-host=_xmpp-server._tcp.xmpp.example,pro.test,%d,20,0" % pro.s2s_port,
        "--host-record=dead.test,127.0.0.1",
        "--host-record=pro.test,127.0.0.1",
    ])
    try:
        run(t, pki, pro, dns, gw_port, corp_port, dead_port)
    finally:
        dns.stop()


def run(t, pki, pro, dns, gw_port, corp_port, dead_port):
    conf = S.gateway_config(pro, corp_port, gw_port, pki=pki)
    xc = conf["community xmpp"]
    del xc["peer"]
    xc["domains"] = "%s nowhere.example" % X.DOMAIN
    xc["dns-server"] = "127.0.0.1:%d" % dns.port
    gw = t.gateway(conf, name="gw-dns")
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running")
    bob = t.client("tcp:127.0.0.1:%d" % corp_port)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")

    t0 = time.monotonic()
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "d-1", "body": "via SRV"})
    rc, _, _ = gw.ctl("status")
    t.is_(rc, 0, "the control socket answers while the lookup runs")
    got = alice.expect(lambda e: e.tag == C("message") and e.get("id") == "d-1",
                       timeout=20)
    t.ok(got is not None, "a message crosses to Prosody found through DNS SRV")
    t.diag("first message after %.2f s" % (time.monotonic() - t0))
    q = dns.text()
    t.like(q, "query[SRV] _xmpp-server._tcp.xmpp.example", "the SRV record was asked")
    t.like(q, "query[A] dead.test", "then the targets' addresses")
    log = gw.log()
    t.like(log, "xmpp.example resolved to 2 addresses, first dead.test[127.0.0.1]:%d"
           % dead_port, "priority 10 (dead.test) is tried first")
    t.like(log, "trying pro.test[127.0.0.1]:%d" % pro.s2s_port,
           "refused there, the priority 20 target is next")
    t.like(log, "s2s outbound stream corp.example -> xmpp.example (pro.test[127.0.0.1]:%d)"
           % pro.s2s_port, "the stream to it authenticates")

    # --- no record at all --------------------------------------------------
    bob.send({"type": "message", "from": BOB, "to": "x@nowhere.example", "id": "d-2",
              "body": "lost"})
    got = bob.expect(lambda o: o.get("type") == "error" and o.get("id") == "d-2",
                     timeout=15)
    t.ok(got is not None and got.get("condition") == "remote-server-not-found" and
         "no address for nowhere.example" in got.get("text", ""),
         "a domain DNS does not know: remote-server-not-found naming DNS", repr(got))
    t.like(dns.text(), "query[SRV] _xmpp-server._tcp.nowhere.example",
           "(it was asked)")
    t.like(dns.text(), "query[A] nowhere.example", "(and the domain's own A record)")
    t.ok(bob.alive(), "the jsonl line is served throughout")
    lookups = gw.community("xmpp")["counters"].get("s2s-dns-lookups", 0)
    t.is_(lookups, 2, "two lookups (xmpp.example, nowhere.example)")

    # --- a static route wins ---------------------------------------------------
    dns.stop()
    xc["peer"] = "%s=127.0.0.1:%d" % (X.DOMAIN, pro.s2s_port)
    gw.write_config(conf)
    gw.hup()
    gw.wait_status(lambda s: s.get("reloads", 0) >= 1 and
                   gw.community("xmpp", s)["state"] == "running", timeout=10)
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "d-3", "body": "static"})
    got = alice.expect(lambda e: e.tag == C("message") and e.get("id") == "d-3",
                       timeout=20)
    t.ok(got is not None, "with a peer route (and no DNS server) messages cross")
    t.is_(gw.community("xmpp")["counters"].get("s2s-dns-lookups", 0), lookups,
          "and no lookup ran")
    t.ok(gw.alive(), "imgwd is alive")
    t.is_(gw.term(), 0, "imgwd exits cleanly on SIGTERM (a sanitizer build fails "
          "here on a leak)")


T.Test(alarm=120).run(main)

#!/usr/bin/env python3
"""RFC 3263: NAPTR -> SRV -> A, fail-over to the next address (4.3),
routes with several next hops and host names, malformed NAPTR answers.

Real peers: a private dnsmasq, Python TCP listeners acting as UASes
(they answer 200, or what the test says), TCP ports nobody listens on
(connection refused), and for the malformed answers a Python DNS server
that answers every NAPTR query with broken records.

- naptr.example: NAPTR SIPS+D2T (order 10; skipped: no tls-ca to check a
  server), an E2U record with flag "u" (skipped), SIP+D2T (order 20, pref
  10) -> _sip._tcp.tcpside.test -> the TCP UAS, SIP+D2U (order 20, pref
  20) -> a UDP decoy; plain SRV _sip._tcp.naptr.example points at a TCP
  decoy.  The MESSAGE reaches the TCP UAS and neither decoy: the NAPTR
  order was followed to SRV and A.
- fo.example: SRV _sip._tcp with a first target (priority 10) that
  refuses connections and a second (priority 20) that answers: the
  MESSAGE arrives at the second, the sender gets no error, sip-failovers
  counts it; the next MESSAGE goes to the second at once (the first is
  marked down: no new connection attempt to it).
- dead.example: both targets refuse: exactly one error event,
  service-unavailable (the stack's 503, RFC 7247 7.2).
- a 503 with Retry-After from the first target of 503.example: the
  MESSAGE goes on to the second.
- silent-fo.example: SRV _sip._udp whose first target is a bound UDP
  socket that never answers: after timer F (32 s; sent first, checked
  last, so the rest runs meanwhile) the MESSAGE reaches the second
  target, with no error to the sender.
- udp-fo.example: SRV _sip._udp whose first target is a UDP port nobody
  listens on: the ICMP port unreachable (IP_RECVERR) is a transport
  error, so the MESSAGE reaches the second target within seconds, not
  after timer F (32 s).
- route named.example=tcp:peer.test:PORT (a host name) delivers; route
  multi.example=tcp:127.0.0.1:DEAD,tcp:peer.test:PORT2 fails over to its
  second hop; with dns = no the route's name still resolves; with only
  another address trusted, a request from the address peer.test
  resolves to gets 403 (host names in routes are not trusted).
- a bad route value is refused naming the option and the value.
- a DNS server answering NAPTR with malformed records: no crash, the
  domain's SRV/A are asked as without NAPTR, remote-server-not-found.
"""

import os
import socket
import struct
import threading
import time

import siptest as S
import imgwtest as T


class TcpUas:
    """A TCP listener on 127.0.0.1 answering each request with `code`."""

    def __init__(self, code=200, headers=()):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.code = code
        self.headers = list(headers)
        self.msgs = []
        self.conns = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        ep = S.Endpoint.__new__(S.Endpoint)
        ep.proto, ep.buf, ep.s, ep.connected = "tcp", b"", c, True
        while not self.stopped:
            m = ep.recv(30)
            if m is None:
                break
            if not isinstance(m[0], str):
                continue
            self.msgs.append(m)
            resp = S.answer(m, self.code, "Answer")
            if self.headers:
                resp = resp.replace(b"Content-Length: 0",
                                    "\r\n".join(self.headers + ["Content-Length: 0"]).encode())
            try:
                c.sendall(resp)
            except OSError:
                break
        c.close()

    def bodies(self):
        return [m[2].decode("utf-8", "replace") for m in self.msgs if m[0] == "MESSAGE"]

    def stop(self):
        self.stopped = True
        self.ls.close()


class UdpServer:
    """A UDP socket on 127.0.0.1 whose thread answers each datagram with
    what self.reply(data) returns (None: nothing)."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopped:
            try:
                data, src = self.s.recvfrom(70000)
            except OSError:
                return
            try:
                out = self.reply(data)
                if out is not None:
                    self.s.sendto(out, src)
            except Exception:
                pass

    def stop(self):
        self.stopped = True
        self.s.close()


class UdpUas(UdpServer):
    """Answers each SIP request with 200."""

    def __init__(self):
        self.msgs = []
        super().__init__()

    def reply(self, data):
        m = S.parse(data)
        if not isinstance(m[0], str):
            return None
        self.msgs.append(m)
        return S.answer(m, 200, "OK")

    def bodies(self):
        return [m[2].decode("utf-8", "replace") for m in self.msgs if m[0] == "MESSAGE"]


def dead_port():
    """A TCP port on 127.0.0.1 nobody listens on (connection refused)."""
    return T.free_port()


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class BadNaptrDns(UdpServer):
    """A DNS server answering NAPTR queries with malformed records and
    everything else NXDOMAIN."""

    def __init__(self):
        self.naptr = 0
        self.queries = []
        super().__init__()

    def reply(self, q):
        qid = q[:2]
        i = 12
        while i < len(q) and q[i] != 0:
            i += q[i] + 1
        question = q[12:i + 5]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        name = []
        j = 12
        while j < i:
            name.append(q[j + 1:j + 1 + q[j]].decode("ascii", "replace"))
            j += q[j] + 1
        self.queries.append((qtype, ".".join(name)))
        if qtype != 35:
            return qid + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question
        self.naptr += 1
        rrs = [
            # FLAGS length past RDLENGTH
            b"\x00\x0a\x00\x0a\xc8s",
            # a replacement pointing at itself (offset patched below)
            None,
            # RDLENGTH 2
            b"\x00\x01",
            # SERVICES with a NUL, then a name of a 200-byte label
            b"\x00\x01\x00\x01\x01s\x07SIP\x00D2T\x00" + b"\xc8" + b"a" * 40,
        ]
        body = b""
        n = 0
        base = 12 + len(question)
        for rd in rrs:
            off = base + len(body)
            if rd is None:
                rd = b"\x00\x01\x00\x01\x01s\x07SIP+D2U\x00"
                ptr = off + 12 + len(rd)
                rd += struct.pack("!H", 0xc000 | ptr)
            body += b"\xc0\x0c\x00\x23\x00\x01\x00\x00\x00\x3c" + struct.pack("!H", len(rd)) + rd
            n += 1
        return qid + b"\x81\x80\x00\x01" + struct.pack("!H", n) + b"\x00\x00\x00\x00" + \
            question + body


def main(t):
    if not os.access(S.DNSMASQ, os.X_OK):
        t.ok(True, "# SKIP dnsmasq is not installed (Debian: dnsmasq-base)")
        return
    uas = TcpUas()
    decoy_tcp = TcpUas()
    decoy_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    decoy_udp.bind(("127.0.0.1", 0))
    decoy_udp.setblocking(False)
    alive = TcpUas()
    busy = TcpUas(503, ["Retry-After: 60"])
    after_busy = TcpUas()
    named = TcpUas()
    named2 = TcpUas()
    dead1, dead2, dead3 = dead_port(), dead_port(), dead_port()
    udp_uas = UdpUas()
    udp_dead = S.free_udp_port()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    after_silent = UdpUas()
    dns = S.Dnsmasq(t, [
        "--naptr-record=naptr.example,10,10,S,SIPS+D2T,,_sips._tcp.naptr.example",
        "--naptr-record=naptr.example,15,10,U,E2U+sip,!^.*$!sip:x@naptr.example!",
        "--naptr-record=naptr.example,20,10,S,SIP+D2T,,_sip._tcp.tcpside.test",
        "--naptr-record=naptr.example,20,20,S,SIP+D2U,,_sip._udp.udpside.test",
        "--srv-host=_sips._tcp.naptr.example,decoy.test,%d,0,0" % decoy_tcp.port,
        "--srv-host=_sip._tcp.tcpside.test,uas.test,%d,0,0" % uas.port,
        "--srv-host=_sip._udp.udpside.test,decoy.test,%d,0,0" % decoy_udp.getsockname()[1],
        "--srv-host=_sip._tcp.naptr.example,decoy.test,%d,0,0" % decoy_tcp.port,
        "--srv-host=_sip._tcp.fo.example,dead.test,%d,10,0" % dead1,
        "--srv-host=_sip._tcp.fo.example,uas.test,%d,20,0" % alive.port,
        "--srv-host=_sip._tcp.dead.example,dead.test,%d,10,0" % dead2,
        "--srv-host=_sip._tcp.dead.example,dead.test,%d,20,0" % dead3,
        "--srv-host=_sip._tcp.503.example,uas.test,%d,10,0" % busy.port,
        "--srv-host=_sip._tcp.503.example,uas.test,%d,20,0" % after_busy.port,
        "--srv-host=_sip._udp.udp-fo.example,dead.test,%d,10,0" % udp_dead,
        "--srv-host=_sip._udp.udp-fo.example,uas.test,%d,20,0" % udp_uas.port,
        "--srv-host=_sip._udp.silent-fo.example,dead.test,%d,10,0" % silent.getsockname()[1],
        "--srv-host=_sip._udp.silent-fo.example,uas.test,%d,20,0" % after_silent.port,
        "--host-record=uas.test,127.0.0.1",
        "--host-record=decoy.test,127.0.0.1",
        "--host-record=dead.test,127.0.0.1",
        "--host-record=peer.test,127.0.0.1",
    ])
    bad = BadNaptrDns()
    try:
        run(t, dns, bad, uas, decoy_tcp, decoy_udp, alive, busy, after_busy, named,
            named2, dead1, dead2, dead3, udp_uas, after_silent)
    finally:
        dns.stop()
        bad.stop()
        for u in (uas, decoy_tcp, alive, busy, after_busy, named, named2, udp_uas,
                  after_silent):
            u.stop()
        decoy_udp.close()
        silent.close()


def deliver(t, alice, uas, mid, to, label):
    alice.send({"type": "message", "to": to, "id": mid, "body": "hello %s" % mid})
    got = wait_for(lambda: "hello %s" % mid in uas.bodies(), 15)
    t.ok(got, label)
    err = alice.expect({"type": "error", "id": mid}, timeout=1)
    t.ok(err is None, "%s: no error comes back" % mid, repr(err))


def run(t, dns, bad, uas, decoy_tcp, decoy_udp, alive, busy, after_busy, named,
        named2, dead1, dead2, dead3, udp_uas, after_silent):
    gw = S.gateway(t, {
        "domains": "naptr.example fo.example dead.example 503.example named.example "
                   "multi.example udp-fo.example silent-fo.example",
        "dns-server": "127.0.0.1:%d" % dns.port,
        "route": "named.example=tcp:peer.test:%d multi.example=tcp:127.0.0.1:%d,"
                 "tcp:peer.test:%d" % (named.port, dead1, named2.port),
    })
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    # timer F: sent now, looked at last
    t_silent = time.monotonic()
    alice.send({"type": "message", "to": "bob@silent-fo.example", "id": "s1",
                "body": "hello s1"})

    # NAPTR -> SRV -> A
    deliver(t, alice, uas, "n1", "bob@naptr.example",
            "NAPTR SIP+D2T -> SRV -> A: the MESSAGE reaches the TCP UAS")
    q = dns.text()
    t.like(q, "query[NAPTR] naptr.example", "NAPTR asked first")
    t.like(q, "query[SRV] _sip._tcp.tcpside.test", "then the SRV its replacement names")
    t.ok("_sips._tcp.naptr.example" not in q,
         "SIPS+D2T skipped: no tls-ca to check a server")
    t.ok("query[SRV] _sip._tcp.naptr.example" not in q,
         "with usable NAPTR records the domain's own SRV names are not asked")
    t.is_(decoy_tcp.bodies(), [], "the plain-SRV decoy got nothing")
    try:
        d = decoy_udp.recv(65536)
    except BlockingIOError:
        d = None
    t.ok(d is None, "the UDP decoy got nothing")
    t.ok("RFC 3263: naptr.example -> TCP uas.test[127.0.0.1]:%d" % uas.port in gw.log(),
           "the log names the next hop and its transport")

    # fail-over: the first SRV target refuses connections
    deliver(t, alice, alive, "f1", "bob@fo.example",
            "first target refuses: the MESSAGE arrives at the second")
    c = (gw.community("sipc") or {}).get("counters", {})
    t.cmp_ok(c.get("sip-failovers", 0), ">=", 1, "the fail-over is counted (sip-failovers)")
    refused = gw.log().count("cannot connect to tcp:127.0.0.1:%d" % dead1)
    t.is_(refused, 1, "one connection attempt to the dead target")
    deliver(t, alice, alive, "f2", "carol@fo.example",
            "a second MESSAGE arrives at the second target")
    t.is_(gw.log().count("cannot connect to tcp:127.0.0.1:%d" % dead1), refused,
          "the dead target is marked down: not tried again at once")

    # every target dead
    alice.send({"type": "message", "to": "x@dead.example", "id": "d1", "body": "?"})
    err = alice.expect({"type": "error", "id": "d1"}, timeout=15)
    t.is_(err and err.get("condition"), "service-unavailable",
          "all targets refuse -> one error, service-unavailable (503, RFC 7247 7.2)")
    again = alice.expect({"type": "error", "id": "d1"}, timeout=1.5)
    t.ok(again is None, "exactly one error event", repr(again))
    t.like(gw.log(), "cannot connect to tcp:127.0.0.1:%d" % dead3,
           "both targets were tried")

    # a 503 with Retry-After from the peer goes on to the next target
    deliver(t, alice, after_busy, "b1", "bob@503.example",
            "503 + Retry-After from the first target: the MESSAGE goes to the second")
    t.is_(len(busy.bodies()), 1, "the first target had it once")

    # UDP: the ICMP port unreachable of the first target
    t0 = time.monotonic()
    deliver(t, alice, udp_uas, "u1", "bob@udp-fo.example",
            "UDP: first target unreachable (ICMP), the MESSAGE reaches the second")
    t.cmp_ok(time.monotonic() - t0, "<", 10, "within seconds, not timer F's 32")
    t.like(gw.log(), "unreachable (ICMP)", "the ICMP error is logged")

    # routes with host names, several hops
    deliver(t, alice, named, "r1", "bob@named.example",
            "route with a host name (A via the DNS client) delivers")
    t.like(dns.text(), "query[A] peer.test", "the route's host name was asked")
    deliver(t, alice, named2, "r2", "bob@multi.example",
            "route with two hops: the first refuses, the second delivers")

    # the silent first target: timer F, then the second
    got = wait_for(lambda: "hello s1" in after_silent.bodies(),
                   max(1, 45 - (time.monotonic() - t_silent)))
    t.ok(got, "UDP target that never answers: after timer F the MESSAGE reaches the second")
    t.cmp_ok(time.monotonic() - t_silent, ">=", 30, "(it took timer F's 32 s)")
    err = alice.expect({"type": "error", "id": "s1"}, timeout=0.5)
    t.ok(err is None, "s1: no error comes back", repr(err))
    t.like(gw.log(), "failed (408, no answer): trying the next address",
           "the timeout and the fail-over are logged")
    t.is_(gw.term(), 0, "imgwd stops cleanly (no leaks under ASan)")

    # host names in routes are not trusted; bad values are refused
    gw2 = S.gateway(t, {
        "domains": "named.example",
        "dns-server": "127.0.0.1:%d" % dns.port,
        "dns": "no",
        "trusted": "192.0.2.1",
        "route": "named.example=tcp:peer.test:%d" % named.port,
    })
    carol = t.client(gw2.listen("corp"))
    carol.bind("carol@corp.example")
    deliver(t, carol, named, "r3", "dave@named.example",
            "dns = no: a route's host name is still resolved (dns-server)")
    ep = S.Endpoint("udp")
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep, frm="bob@named.example",
                      body="hi"), gw2.sip_port)
    m = ep.recv(3)
    ep.close()
    t.is_(m and m[0], 403, "a request from what a route's host name resolves to: 403")
    t.is_(gw2.term(), 0, "imgwd stops cleanly")
    for value, text in (
            ("x.example=tcp:bad_name.example:5060", "route: x.example: 'tcp:bad_name.example:5060'"),
            ("x.example=tcp:1.2.3.4:5060 x.example=tcp:1.2.3.5:5060", "given twice"),
            ("tcp:1.2.3.4:5060", "route: 'tcp:1.2.3.4:5060': want DOMAIN="),
    ):
        gw3 = S.gateway(t, {"route": value}, start=False)
        gw3.start(wait=False)
        ok = wait_for(lambda: text in gw3.log(), 5)
        t.ok(ok, "route = %s is refused naming it" % value, gw3.log()[-800:])
        gw3.term()

    # malformed NAPTR answers
    gw4 = S.gateway(t, {"domains": "broken.example", "dns-server": "127.0.0.1:%d" % bad.port})
    bob = t.client(gw4.listen("corp"))
    bob.bind("bob@corp.example")
    bob.send({"type": "message", "to": "x@broken.example", "id": "m1", "body": "?"})
    err = bob.expect({"type": "error", "id": "m1"}, timeout=15)
    t.is_(err and err.get("condition"), "remote-server-not-found",
          "malformed NAPTR records: skipped, remote-server-not-found")
    t.cmp_ok(bad.naptr, ">=", 1, "the NAPTR query was answered with the broken records")
    t.ok((33, "_sip._tcp.broken.example") in bad.queries,
         "then the SRV of the domain were asked, as without NAPTR")
    t.is_(gw4.term(), 0, "imgwd stops cleanly after them")


if __name__ == "__main__":
    T.Test(alarm=150).run(main)

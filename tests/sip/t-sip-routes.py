#!/usr/bin/env python3
"""Presence dialogs through record-routing proxies (RFC 3261 12, RFC 6665).

SIP watcher, our presentity: a sipp watcher (uac-subscribe-rr.xml)
SUBSCRIBEs with two Record-Route values, the first (;lr) naming a proxy
played by a Python socket here.  imgwd's 200 copies both (sipp checks);
every NOTIFY goes to the proxy's address with Route headers for the
whole route set and the watcher's Contact as Request-URI; the watcher's
in-dialog un-SUBSCRIBE with a pre-loaded Route naming imgwd is taken,
not forwarded.

Our watcher, SIP presentity: the static route leads to a Python
notifier, whose 200 carries Record-Route (two proxies, the nearer one a
Python socket): the refresh (a probe) and the un-SUBSCRIBE follow the
route set reversed, loose routing, Request-URI the 200's Contact.  A
second subscription gets its NOTIFY before the 200 (RFC 6665 4.1.2.4):
that NOTIFY's Record-Route (in order; the first a strict router) is the
route set, the 200's later one changes nothing.  imgwd restarts: the
restored dialogs, ours and a SIP watcher's, still follow their route
sets (the store).
A watcher whose Record-Route names a host (edge.test) gets its NOTIFYs
where a private dnsmasq's SRV and A records say.  A MESSAGE whose Route
names imgwd and then another host is taken by its
Request-URI, not forwarded (imgwd is a UA), and counted.  A stored row
of the format before route sets (six lines) still loads, with an empty
route set.
"""

import os
import re
import socket
import sqlite3

import siptest as S
import imgwtest as T


class Sock:
    """A UDP socket that receives whole SIP messages with every header
    line kept (a proxy or notifier played by the test)."""

    def __init__(self, port=0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", port))
        self.port = self.s.getsockname()[1]

    def close(self):
        self.s.close()

    def recv(self, timeout=3, skip=()):
        """(first line, [(name, value)], source) of the next request
        whose method is not in skip (those are answered 200), or None."""
        deadline = T.time.monotonic() + timeout
        while True:
            left = deadline - T.time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                data, src = self.s.recvfrom(70000)
            except (socket.timeout, OSError):
                return None
            head = data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
            lines = head.split("\r\n")
            hdrs = []
            for l in lines[1:]:
                k, _, v = l.partition(":")
                hdrs.append((k.strip().lower(), v.strip()))
            m = (lines[0], hdrs, src)
            if lines[0].startswith("SIP/2.0 "):
                continue        # answers to the test's own NOTIFYs
            if lines[0].split(" ", 1)[0] in skip:
                self.reply(m, 200)
                continue
            return m

    def send(self, data, port):
        self.s.sendto(data, ("127.0.0.1", port))

    def reply(self, m, code, extra=(), totag=None):
        """Answer request m back to where it came from."""
        first, hdrs, src = m
        out = ["SIP/2.0 %d Answer" % code]
        for k, v in hdrs:
            if k == "to" and totag and "tag=" not in v:
                v += ";tag=" + totag
            if k in ("via", "from", "to", "call-id", "cseq"):
                out.append("%s: %s" % (k.title(), v))
        out += list(extra) + ["Content-Length: 0"]
        self.s.sendto(("\r\n".join(out) + "\r\n\r\n").encode(), src)


def get(m, name):
    return [v for k, v in m[1] if k == name] if m else []


def one(m, name):
    v = get(m, name)
    return v[0] if v else None


def routes(m):
    """Every Route value of m, split at commas between values."""
    out = []
    for v in get(m, "route"):
        out += [x.strip() for x in re.split(r",(?=\s*<)", v)]
    return out


def starts(m, prefix):
    """Whether m's first line starts with prefix."""
    return bool(m) and m[0].startswith(prefix)


def ruri(m):
    return m[0].split(" ")[1] if m else None


def watcher_behind_proxies(t, gw, alice):
    proxy = Sock()
    sipp_port = S.free_udp_port()
    run = S.sipp(t, "uac-subscribe-rr.xml", gw.sip_port, local_port=sipp_port,
                 keys={"proxy": proxy.port}, extra=["-m", "1"],
                 background=True)
    contact = "sip:bob@127.0.0.1:%d" % sipp_port
    want_routes = ["<sip:127.0.0.1:%d;lr;r=p1>" % proxy.port,
                   "<sip:192.0.2.99:5099;lr;r=p2>"]
    n = proxy.recv(5)
    t.ok(starts(n, "NOTIFY "), "the first NOTIFY goes to the proxy (first route)")
    t.is_(ruri(n), contact, "its Request-URI is the watcher's Contact (loose routing)")
    t.is_(routes(n), want_routes, "its Route headers are the route set, in order")
    t.like(one(n, "subscription-state"), "pending", "it says pending")
    if n:
        proxy.reply(n, 200)
    got = alice.expect({"type": "subscribe"})
    t.is_(got and got.get("from"), "bob@sip.example", "alice gets the subscribe")
    alice.send({"type": "subscribed", "to": "bob@sip.example"})
    n = proxy.recv(5)
    t.like(one(n, "subscription-state"), "active", "NOTIFY active through the proxy")
    t.is_(routes(n), want_routes, "with the same Route headers")
    if n:
        proxy.reply(n, 200)
    # the watcher's un-SUBSCRIBE (Route naming imgwd) ends the dialog
    n = proxy.recv(8)
    t.like(one(n, "subscription-state"), "terminated",
           "the un-SUBSCRIBE (with a Route naming imgwd) was taken: NOTIFY terminated")
    t.is_(ruri(n), contact, "terminated NOTIFY: Request-URI the watcher's Contact")
    if n:
        proxy.reply(n, 200)
    out, _ = run.communicate(timeout=30)
    out = out.decode("utf-8", "replace")
    t.ok(run.returncode == 0, "sipp: 200 with both Record-Route values in order, "
         "no NOTIFY straight to the watcher, un-SUBSCRIBE answered 200",
         S.sipp_errors(t, "uac-subscribe-rr.xml") or out[-1500:])
    got = alice.expect({"type": "unsubscribe"})
    t.ok(got is not None, "alice gets the unsubscribe")
    t.ok(proxy.recv(0.5) is None, "nothing else reaches the proxy")
    proxy.close()


def watcher_behind_named_proxy(t, gw, alice, port):
    """A route set whose first route is a host name: DNS (RFC 3263)."""
    proxy = Sock(port)
    ep = S.Endpoint("udp")
    sub = S.request("SUBSCRIBE", "sip:alice@corp.example", ep, frm="carl@sip.example",
                    headers=["Event: presence", "Expires: 600",
                             "Contact: <sip:carl@127.0.0.1:%d>" % ep.port,
                             "Record-Route: <sip:edge.test;lr>"], callid="dns-1@t")
    ep.send(sub, gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 200, "named route: SUBSCRIBE 200")
    n = proxy.recv(5)
    t.ok(starts(n, "NOTIFY "), "the NOTIFY reaches the proxy DNS names for edge.test "
         "(SRV _sip._udp, then A)")
    t.is_(routes(n), ["<sip:edge.test;lr>"], "with the named route as Route")
    t.is_(ruri(n), "sip:carl@127.0.0.1:%d" % ep.port, "and the Contact as Request-URI")
    if n:
        proxy.reply(n, 200)
    got = alice.expect({"type": "subscribe", "from": "carl@sip.example"})
    t.ok(got is not None, "alice gets carl's subscribe")
    totag = re.search(r"tag=([^;>\s]+)", r[1]["to"]).group(1) if r else ""
    uns = sub.replace(b"Expires: 600", b"Expires: 0").replace(
        b"CSeq: 1 ", b"CSeq: 2 ").replace(b"branch=", b"branch=z9hG4bK-u2").replace(
        b"To: <sip:alice@corp.example>",
        b"To: <sip:alice@corp.example>;tag=" + totag.encode())
    ep.send(uns, gw.sip_port)
    t.is_((ep.recv() or [None])[0], 200, "carl unsubscribes: 200")
    n = proxy.recv(5)
    t.like(one(n, "subscription-state"), "terminated", "NOTIFY terminated, through DNS")
    if n:
        proxy.reply(n, 200)
    alice.expect({"type": "unsubscribe", "from": "carl@sip.example"})
    ep.close()
    proxy.close()


def presentity_behind_proxies(t, gw, alice, notifier, near, near2):
    """Our SUBSCRIBEs: 200 with Record-Route; NOTIFY before 200."""
    far = "<sip:192.0.2.98:5098;lr;r=far>"
    target = "sip:bob@192.0.2.50:5070"
    alice.send({"type": "subscribe", "to": "bob@sip.example", "id": "s1"})
    s = notifier.recv(5)
    t.ok(starts(s, "SUBSCRIBE sip:bob@sip.example "),
           "the first SUBSCRIBE goes the static route (no dialog yet)")
    t.is_(routes(s), [], "without Route headers")
    # proxies insert Record-Route on top: the nearer one comes last
    notifier.reply(s, 200, ["Expires: 600", "Contact: <%s>" % target,
                            "Record-Route: %s" % far,
                            "Record-Route: <sip:127.0.0.1:%d;lr;r=near>" % near.port],
                   totag="n1")
    ftag = re.search(r"tag=([^;>\s]+)", one(s, "from") or "").group(1)
    notifier.send(("NOTIFY %s SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-n1\r\n"
                   "From: <sip:bob@sip.example>;tag=n1\r\n"
                   "To: <sip:alice@corp.example>;tag=%s\r\n"
                   "Call-ID: %s\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n"
                   "Contact: <%s>\r\nEvent: presence\r\n"
                   "Subscription-State: active;expires=600\r\n"
                   "Content-Length: 0\r\n\r\n" % (
                       one(s, "contact").strip("<>"), notifier.port, ftag,
                       one(s, "call-id"), target)).encode(), gw.sip_port)
    got = alice.expect({"type": "subscribed"}, timeout=5)
    t.ok(got is not None, "subscribed")
    alice.send({"type": "probe", "to": "bob@sip.example"})
    r = near.recv(5, skip=())
    t.ok(starts(r, "SUBSCRIBE "), "the refresh goes to the nearer proxy")
    t.is_(ruri(r), target, "Request-URI: the 200's Contact")
    t.is_(routes(r), ["<sip:127.0.0.1:%d;lr;r=near>" % near.port, far],
          "Route: the 200's Record-Route reversed")
    t.like(one(r, "to") or "", "tag=n1", "inside the dialog (To tag)")
    if r:
        near.reply(r, 200, ["Expires: 600", "Contact: <%s>" % target])
    t.ok(notifier.recv(0.5, skip=("NOTIFY",)) is None,
         "nothing in the dialog takes the static route any more")

    # NOTIFY before the 200 (RFC 6665 4.1.2.4), a strict router first
    alice.send({"type": "subscribe", "to": "carol@sip.example", "id": "s2"})
    s = notifier.recv(5)
    t.ok(starts(s, "SUBSCRIBE sip:carol@sip.example "), "carol: SUBSCRIBE")
    ftag = re.search(r"tag=([^;>\s]+)", one(s, "from") or "").group(1)
    target2 = "sip:carol@192.0.2.51"
    notifier.send(("NOTIFY %s SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-n2\r\n"
                   "Record-Route: <sip:127.0.0.1:%d;r=strict>\r\n"
                   "Record-Route: %s\r\n"
                   "From: <sip:carol@sip.example>;tag=n2\r\n"
                   "To: <sip:alice@corp.example>;tag=%s\r\n"
                   "Call-ID: %s\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n"
                   "Contact: <%s>\r\nEvent: presence\r\n"
                   "Subscription-State: active;expires=600\r\n"
                   "Content-Length: 0\r\n\r\n" % (
                       one(s, "contact").strip("<>"), notifier.port, near2.port, far,
                       ftag, one(s, "call-id"), target2)).encode(), gw.sip_port)
    got = alice.expect({"type": "subscribed", "from": "carol@sip.example"}, timeout=5)
    t.ok(got is not None, "carol: NOTIFY before 200 -> subscribed")
    notifier.reply(s, 200, ["Expires: 600", "Contact: <%s>" % target2,
                            "Record-Route: <sip:127.0.0.1:%d;lr>" % notifier.port],
                   totag="n2")
    T.time.sleep(0.3)
    alice.send({"type": "probe", "to": "carol@sip.example"})
    r = near2.recv(5)
    t.ok(starts(r, "SUBSCRIBE "), "carol's refresh goes to the NOTIFY's first route")
    t.is_(ruri(r), "sip:127.0.0.1:%d;r=strict" % near2.port,
          "strict router: it is the Request-URI")
    t.is_(routes(r), [far, "<%s>" % target2],
          "Route: the rest of the route set, then the remote target")
    if r:
        near2.reply(r, 200, ["Expires: 600"])
    return target, far


def main(t):
    if S.SIPP is None:
        t.skip("record-routed dialogs", "sipp is not installed (apt-get install sip-tester)")
        return
    notifier, near, near2 = Sock(), Sock(), Sock()
    # edge.test: a proxy known by name only, its SRV record pointing at a
    # socket of the test (the port is taken before the socket is bound)
    edge_port = S.free_udp_port()
    dns = None
    if os.access(S.DNSMASQ, os.X_OK):
        dns = S.Dnsmasq(t, ["--srv-host=_sip._udp.edge.test,proxy.test,%d,10,0" % edge_port,
                            "--host-record=proxy.test,127.0.0.1"])
    extra = {"route": "sip.example=udp:127.0.0.1:%d" % notifier.port}
    if dns:
        extra["dns-server"] = "127.0.0.1:%d" % dns.port
    gw = S.gateway(t, extra)
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    watcher_behind_proxies(t, gw, alice)
    if dns:
        try:
            watcher_behind_named_proxy(t, gw, alice, edge_port)
        finally:
            dns.stop()
    else:
        t.skip("a named route found through DNS", "dnsmasq is not installed "
               "(Debian: dnsmasq-base)")
    target, far = presentity_behind_proxies(t, gw, alice, notifier, near, near2)

    # dave, a SIP watcher behind the nearer proxy, with an active
    # subscription when imgwd restarts
    dave = S.Endpoint("udp")
    dave_route = "<sip:127.0.0.1:%d;lr;r=d>" % near.port
    dave.send(S.request("SUBSCRIBE", "sip:alice@corp.example", dave, frm="dave@sip.example",
                        headers=["Event: presence", "Expires: 600",
                                 "Contact: <sip:dave@127.0.0.1:%d>" % dave.port,
                                 "Record-Route: " + dave_route], callid="dave-1@t"),
              gw.sip_port)
    t.is_((dave.recv() or [None])[0], 200, "dave subscribes: 200")
    n = near.recv(5)
    if n:
        near.reply(n, 200)
    alice.expect({"type": "subscribe", "from": "dave@sip.example"})
    alice.send({"type": "subscribed", "to": "dave@sip.example"})
    n = near.recv(5)
    t.like(one(n, "subscription-state"), "active", "dave: NOTIFY active through the proxy")
    if n:
        near.reply(n, 200)

    # a restart keeps the route set (the store): the in-place refresh of
    # bob's dialog still goes through the nearer proxy
    t.is_(gw.term(), 0, "imgwd stops (subscriptions stay in the store)")
    alice.close()
    gw.start()
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    seen = {}
    for _ in range(2):
        for sock in (near, near2):
            r = sock.recv(3)
            if r:
                seen[sock.port] = r
                sock.reply(r, 200, ["Expires: 600"])
    r = seen.get(near.port)
    t.ok(starts(r, "SUBSCRIBE "), "after the restart bob's refresh reaches the nearer proxy")
    t.is_(ruri(r), target, "Request-URI: the stored remote target")
    t.is_(routes(r), ["<sip:127.0.0.1:%d;lr;r=near>" % near.port, far],
          "Route: the stored route set")
    r = seen.get(near2.port)
    t.is_(ruri(r), "sip:127.0.0.1:%d;r=strict" % near2.port,
          "carol's refresh: the stored strict route")

    # dave's restored dialog (a SIP watcher's) keeps its route set too
    alice.send({"type": "presence", "to": "dave@sip.example", "show": "away"})
    n = near.recv(5)
    t.ok(starts(n, "NOTIFY "), "after the restart dave's NOTIFY goes to the proxy")
    t.is_(ruri(n), "sip:dave@127.0.0.1:%d" % dave.port, "Request-URI: dave's Contact")
    t.is_(routes(n), [dave_route], "Route: the stored route set")
    if n:
        near.reply(n, 200)
    dave.close()

    alice.send({"type": "unsubscribe", "to": "bob@sip.example"})
    r = near.recv(5)
    t.ok(starts(r, "SUBSCRIBE "), "un-SUBSCRIBE goes to the nearer proxy")
    t.is_(one(r, "expires"), "0", "with Expires: 0")
    t.is_(routes(r), ["<sip:127.0.0.1:%d;lr;r=near>" % near.port, far],
          "and the route set")
    if r:
        near.reply(r, 200, ["Expires: 0"])
    t.ok(notifier.recv(0.5, skip=("NOTIFY",)) is None,
         "nothing in a dialog took the static route")

    # a Route naming us, then one naming someone else: we are a UA, the
    # request is taken by its Request-URI and never forwarded
    ep = S.Endpoint("udp")
    ep.send(S.request("MESSAGE", "sip:alice@corp.example", ep, body="routed",
                      headers=["Route: <sip:127.0.0.1:%d;lr>, <sip:127.0.0.1:%d;lr>"
                               % (gw.sip_port, near.port)]), gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 202, "MESSAGE with our Route and a foreign one: 202")
    got = alice.expect({"type": "message"})
    t.is_(got and got.get("body"), "routed", "it reaches alice")
    t.ok(near.recv(0.5) is None, "nothing is forwarded to the foreign Route")
    ep.close()
    c = (gw.community("sipc") or {}).get("counters", {})
    t.is_(c.get("sip-foreign-routes"), 1, "the foreign Route is counted")
    t.ok(gw.alive(), "imgwd is alive")
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")

    # a row stored before route sets were kept (six lines of data) still
    # loads: carol's dialog then has an empty route set, and its refresh
    # takes the static route with the remote target as Request-URI
    db = sqlite3.connect(os.path.join(t.dir, "imgwd.state", "imgw.db"))
    row = db.execute("SELECT data FROM imgw_subscription WHERE "
                     "presentity = 'carol@sip.example'").fetchone()
    t.is_(row and len(row[0].split("\n")), 8, "carol's stored dialog has its "
          "route set (two lines after the six)")
    if row:
        db.execute("UPDATE imgw_subscription SET data = ? WHERE presentity = "
                   "'carol@sip.example'", ("\n".join(row[0].split("\n")[:6]),))
        db.commit()
    db.close()
    gw.start()
    r = notifier.recv(5)
    t.ok(starts(r, "SUBSCRIBE "), "an old row loads: carol's refresh takes the static route")
    t.is_(ruri(r), "sip:carol@192.0.2.51", "Request-URI: the stored remote target")
    t.is_(routes(r), [], "no Route headers")
    t.like(one(r, "to") or "", "tag=n2", "in the stored dialog")
    if r:
        notifier.reply(r, 200, ["Expires: 600"])
    t.is_(gw.term(), 0, "imgwd stops cleanly again")
    for s in (notifier, near, near2):
        s.close()


if __name__ == "__main__":
    T.Test().run(main)
